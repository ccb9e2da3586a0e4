"""Handler shapes common in PubNub's documentation and demos, written here in our own code.

Each runs unchanged: promise chains without async/await, top-level require, mutation
then request.ok(), JSON.parse(request.body), xhr with res.json(), fire-and-forget
publishes, webhook signatures with vault secrets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from pfunc.events import MessageEvent
from pfunc.project_file import parse_project


def _project(harness, tmp_path, extra: str = "") -> None:
    (tmp_path / "pfunc.toml").write_text("[project]\n" + extra)
    harness.project = parse_project(tmp_path / "pfunc.toml")


def test_promise_chain_counter_with_top_level_require(harness, write_handler):
    handler = write_handler("""
        const kvstore = require('kvstore');

        export default (request) => {
            const key = 'votes-' + request.message.choice;
            return kvstore.incrCounter(key, 1)
                .then((votes) => {
                    request.message.votes = votes;
                    return request.ok();
                })
                .catch((err) => {
                    console.error(err);
                    return request.abort('could not count');
                });
        };
    """)
    first = harness.run(handler, message={"choice": "red"})
    second = harness.run(handler, message={"choice": "red"})
    assert (first.outcome, first.message["votes"]) == ("ok", 1)
    assert second.message["votes"] == 2


def test_mutate_the_message_then_ok(harness, write_handler):
    handler = write_handler("""
        export default (request) => {
            const words = ['darn', 'heck'];
            let text = request.message.text;
            words.forEach((w) => { text = text.replace(new RegExp(w, 'gi'), '*'.repeat(w.length)); });
            request.message.text = text;
            request.message.filtered = text !== request.message.original;
            return request.ok();
        };
    """)
    result = harness.run(handler, message={"text": "Darn it, heck!", "original": "Darn it, heck!"})
    assert result.message == {
        "text": "**** it, ****!",
        "original": "Darn it, heck!",
        "filtered": True,
    }


def test_on_request_json_parse_body_status_and_headers(harness, write_handler):
    handler = write_handler("""
        export default (request, response) => {
            const body = JSON.parse(request.body);
            if (!body.email) {
                response.status = 400;
                return response.send({ error: 'email required' });
            }
            response.status = 200;
            response.headers['X-Handled-By'] = 'pfunc-test';
            return response.send(JSON.stringify({ welcome: body.email.split('@')[0] }));
        };
    """)
    ok = harness.request(handler, method="POST", body='{"email":"ada@example.com"}')
    assert ok.response == {
        "status": 200,
        "headers": {"X-Handled-By": "pfunc-test"},
        "body": '{"welcome":"ada"}',
    }
    bad = harness.request(handler, method="POST", body="{}")
    assert bad.response["status"] == 400
    assert json.loads(bad.response["body"]) == {"error": "email required"}


def test_xhr_then_res_json_enriches_a_message(harness, write_handler, tmp_path):
    _project(
        harness,
        tmp_path,
        """
[[mocks]]
url = "https://translate.example.com/*"
method = "POST"
json = { translated = "hola" }
""",
    )
    handler = write_handler("""
        const xhr = require('xhr');
        export default (request) => {
            const options = {
                method: 'POST',
                headers: { 'Content-Type': 'application/json' },
                body: JSON.stringify({ q: request.message.text, target: 'es' }),
            };
            return xhr.fetch('https://translate.example.com/v2', options)
                .then((res) => res.json())
                .then((data) => {
                    request.message.es = data.translated;
                    return request.ok();
                });
        };
    """)
    result = harness.run(handler, message={"text": "hello"})
    assert result.message == {"text": "hello", "es": "hola"}
    assert result.operations["used"] == 1


def test_fire_and_forget_publish_from_after_publish(harness, write_handler, tmp_path):
    _project(
        harness,
        tmp_path,
        """
[[functions]]
name = "audit"
file = "audit.js"
event = "after-publish"
channels = ["audit"]
""",
    )
    (tmp_path / "audit.js").write_text("""
        const db = require('kvstore');
        export default (request) => db.incrCounter('audited').then(() => request.ok());
    """)
    handler = write_handler("""
        const pubnub = require('pubnub');
        export default (request) => {
            pubnub.fire({ channel: 'audit', message: { seen: request.message.id } });
            return request.ok();
        };
    """)
    result = harness.run(handler, MessageEvent("after-publish", {"id": 7}, "chat"))
    assert result.outcome == "ok"
    assert any('pubnub.fire("audit") was not awaited' in w for w in result.warnings)
    # The un-awaited fire still ran the audit function (pfunc lets started work finish).
    audit = result.triggered[0].executions[0]
    assert (audit.function, audit.outcome) == ("audit.js", "ok")


def test_webhook_signature_checked_with_a_vault_secret(harness, write_handler, tmp_path):
    secret = base64.b64encode(b"webhook-signing-key").decode()
    _project(harness, tmp_path, f'[vault]\nWEBHOOK_KEY = "{secret}"\n')
    handler = write_handler("""
        const vault = require('vault');
        const crypto = require('crypto');
        export default async (request, response) => {
            const key = await vault.get('WEBHOOK_KEY');
            const expected = await crypto.hmac(key, request.body.toString(), crypto.ALGORITHM.HMAC_SHA256);
            if (expected !== request.headers['x-signature']) {
                return response.send('bad signature', 401);
            }
            return response.send({ accepted: JSON.parse(request.body).event });
        };
    """)
    body = '{"event":"order.paid"}'
    signature = base64.urlsafe_b64encode(
        hmac.new(b"webhook-signing-key", body.encode(), hashlib.sha256).digest()
    ).decode()
    good = harness.request(handler, method="POST", body=body, headers={"X-Signature": signature})
    assert good.response["status"] == 200
    assert json.loads(good.response["body"]) == {"accepted": "order.paid"}
    forged = harness.request(handler, method="POST", body=body, headers={"X-Signature": "nope"})
    assert forged.response["status"] == 401


def test_named_async_function_default_export_with_params(harness, write_handler):
    handler = write_handler("""
        const db = require('kvstore');
        async function handler(request, response) {
            const id = request.params.id;
            const item = await db.get('item:' + id);
            if (item === null) {
                response.status = 404;
                return response.send();
            }
            return response.send(item);
        }
        export default handler;
    """)
    missing = harness.request(handler, query={"id": "9"})
    assert (missing.response["status"], missing.response["body"]) == (404, "")
