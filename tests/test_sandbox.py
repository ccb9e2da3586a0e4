"""What a JavaScript handler sees (REFERENCE sections 1, 2, 5, 6), through the real engine."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re

import pytest

from pfunc.events import MessageEvent
from tests.conftest import needs_two_cpus, second_cpu_busy


def test_request_object_of_a_publish(harness, write_handler):
    handler = write_handler("""
        export default (request) => {
          request.message.seen = {
            channels: request.channels, verb: request.verb, uuid: request.params.uuid,
            clientip: request.meta.clientip, subkey: request.subkey, pubkey: request.pubkey,
          };
          return request.ok();
        };
    """)
    event = MessageEvent(
        "before-publish", {"text": "hi"}, channel="chat.room1", params={"uuid": "alice"}
    )
    result = harness.run(handler, event)
    assert result.outcome == "ok"
    assert result.message["seen"] == {
        "channels": ["chat.room1"],
        "verb": "publish",
        "uuid": "alice",
        "clientip": "127.0.0.1",
        "subkey": "sub-c-local",
        "pubkey": "pub-c-local",
    }


def test_ok_with_a_value_replaces_the_message(harness, write_handler):
    handler = write_handler("export default (request) => request.ok({ replaced: true });")
    result = harness.run(handler, message={"original": 1})
    assert result.message == {"replaced": True}
    assert result.delivered is True


def test_first_completion_wins_and_later_ones_warn(harness, write_handler):
    handler = write_handler("""
        export default (request) => {
          request.abort("stop");
          return request.ok();
        };
    """)
    result = harness.run(handler)
    assert result.outcome == "abort"
    assert result.abort_reason == "stop"
    assert result.delivered is False
    assert any("ok() was called after abort()" in w for w in result.warnings)


def test_no_completion_is_an_error_naming_the_expected_call(harness, write_handler):
    handler = write_handler("export default async (request) => { request.message.x = 1; };")
    result = harness.run(handler)
    assert result.outcome == "error"
    assert "without calling request.ok() or request.abort()" in result.error.message
    assert result.delivered is False


def test_completion_only_from_unawaited_work_is_an_error(harness, write_handler):
    handler = write_handler("""
        const db = require("kvstore");
        export default (request) => { db.get("x").then(() => request.ok()); };
    """)
    result = harness.run(handler)
    assert result.outcome == "error"
    assert "only after the handler had finished" in result.error.message


def test_unawaited_operations_finish_and_are_reported(harness, write_handler):
    writer = write_handler(
        """
        const db = require("kvstore");
        export default (request) => { db.set("bg", 42); return request.ok(); };
    """,
        "writer.js",
    )
    result = harness.run(writer)
    assert result.outcome == "ok"
    assert result.operations["calls"][0]["unawaited"] is True
    assert any('kvstore.set("bg") was not awaited' in w for w in result.warnings)
    reader = write_handler(
        """
        const db = require("kvstore");
        export default async (request) => request.ok({ bg: await db.get("bg") });
    """,
        "reader.js",
    )
    assert harness.run(reader).message == {"bg": 42}


def test_an_unawaited_call_that_failed_says_so_in_the_warnings(harness, write_handler):
    """pfunc publish and the dev log show a publish's warnings, not its operations: an
    un-awaited kvstore.setItem of an object read there as if it had worked."""
    handler = write_handler(
        """
        const db = require("kvstore");
        export default (request) => { db.setItem("k", { an: "object" }); return request.ok(); };
        """,
        "unawaited.js",
    )
    result = harness.run(handler)
    assert result.outcome == "ok"
    said = [w for w in result.warnings if "not awaited" in w]
    assert len(said) == 1, said  # one warning says both: not awaited, and failed
    assert "was not awaited, and failed" in said[0] and "got object" in said[0]


def test_a_promise_nothing_settles_is_an_error_not_a_hang(harness, write_handler):
    handler = write_handler("export default async (request) => { await new Promise(() => {}); };")
    result = harness.run(handler)
    assert result.outcome == "error"
    assert "waiting on a Promise that nothing will settle" in result.error.message


def test_a_callback_given_to_a_module_is_named_where_the_handler_waits_on_it(
    harness, write_handler
):
    """The JavaScript SDK's callback form, written in a Function: the module answers with a
    Promise and calls no callback. The report says so, as a warning and as a reason for
    the wait, not only the failure of an earlier call the handler caught."""
    handler = write_handler(
        """
        const pubnub = require("pubnub"), db = require("kvstore");
        export default async (request) => {
          try { await db.get(42); } catch (handled) {}
          await new Promise((resolve) => {
            pubnub.publish({ channel: "news", message: { text: "hi" } }, (status) => resolve(status));
          });
          return request.ok();
        };
        """,
        "callback.js",
    )
    result = harness.run(handler)
    assert result.outcome == "error"
    message = result.error.message
    # Both possible causes are named, the callback first: pfunc cannot see which one the
    # handler waits on (here the callback; a caught failure otherwise).
    assert "It passed a function to pubnub.publish, as an SDK callback" in message
    assert message.index("SDK callback") < message.index("A call it made failed")
    (warning,) = [w for w in result.warnings if "argument 2 is a function" in w]
    assert warning.startswith("pubnub.publish: ") and "not a callback" in warning


def test_a_promise_left_waiting_by_a_failed_call_names_the_failure(harness, write_handler):
    """A `then` on a call that rejects, inside a Promise only that `then` would resolve
    (a Giphy block with its key missing from vault): the report says which call failed
    and why, not only that a Promise was left waiting."""
    handler = write_handler(
        """
        const vault = require("vault"), db = require("kvstore");
        export default (request) => new Promise((resolve) => {
          db.set("seen", 1).then(() => vault.get("giphy-key")).then((key) => {
            resolve(request.ok({ key }));
          });
        });
        """,
        "giphy.js",
    )
    result = harness.run(handler)
    assert result.outcome == "error"
    message = result.error.message
    assert "nothing will settle" in message
    assert "A call it made failed" in message and 'no secret named "giphy-key"' in message
    assert message.count("vault.get") == 1  # the rejection's own words name the call
    # pfunc cannot see whether a rejection was caught: the failure is a possibility.
    assert "if nothing handled that rejection" in message


def test_caught_limit_error_lets_the_handler_complete(harness, write_handler):
    handler = write_handler("""
        const db = require("kvstore");
        export default async (request) => {
          for (let i = 0; i < 3; i++) await db.incrCounter("n");
          try { await db.incrCounter("n"); } catch (e) { request.message.caught = e.message; }
          return request.ok();
        };
    """)
    result = harness.run(handler)
    assert result.outcome == "ok"
    assert result.message["caught"].startswith(
        "operation limit exceeded: kvstore.incrCounter would be operation 4 of 3"
    )
    assert result.operations["exceeded"] is True
    assert any("the call was not performed" in w for w in result.warnings)


def test_pubnub_2026_budget_is_per_kind(harness, write_handler):
    handler = write_handler("""
        const db = require("kvstore");
        export default async (request) => {
          for (let i = 0; i < 11; i++) {
            try { await db.incrCounter("n"); } catch (e) { request.message.error = e.message; }
          }
          return request.ok();
        };
    """)
    harness.limits = "pubnub-2026"
    result = harness.run(handler)
    assert result.operations["used"] == 10
    assert result.message["error"] == (
        "operation limit exceeded: kvstore.incrCounter would be kvstore operation 11 of 10 "
        'allowed per execution (profile "pubnub-2026")'
    )


def test_after_publish_cannot_change_delivery(harness, write_handler):
    handler = write_handler("export default (request) => request.ok({ changed: true });")
    result = harness.run(handler, MessageEvent("after-publish", {"original": True}))
    assert result.outcome == "ok"
    assert result.message == {"original": True}
    assert result.delivered is True
    assert any("cannot change the message" in w for w in result.warnings)


def test_date_reads_the_execution_clock(harness, write_handler):
    handler = write_handler("""
        export default (request) => request.ok({
          now: Date.now(), iso: new Date().toISOString(), explicit: new Date(0).getTime(),
          isDate: new Date() instanceof Date, text: typeof Date(),
        });
    """)
    result = harness.run(handler)
    assert result.message == {
        "now": 1_767_225_600_000,
        "iso": "2026-01-01T00:00:00.000Z",
        "explicit": 0,
        "isDate": True,
        "text": "string",
    }


def test_console_lines_are_captured_with_level_and_format(harness, write_handler):
    handler = write_handler("""
        console.log("loaded");
        export default (request) => {
          console.info("object", { a: 1 }, [1, 2]);
          console.warn(new TypeError("bad thing"));
          console.error(undefined, null, 3);
          console.debug("dbg");
          return request.ok();
        };
    """)
    result = harness.run(handler)
    assert [(e["level"], e["text"]) for e in result.logs] == [
        ("log", "loaded"),
        ("info", 'object {"a":1} [1,2]'),
        ("warn", "TypeError: bad thing"),
        ("error", "undefined null 3"),
        ("debug", "dbg"),
    ]
    assert all(e["time"] == "2026-01-01T00:00:00.000Z" for e in result.logs)


def test_require_of_an_unknown_module_lists_the_available_ones(harness, write_handler):
    handler = write_handler('const fs = require("fs");\nexport default (r) => r.ok();')
    result = harness.run(handler)
    assert result.outcome == "error"
    assert 'require("fs"): no such module' in result.error.message
    assert "kvstore" in result.error.message and "crypto" in result.error.message
    assert result.error.line == 1


def test_no_file_system_process_or_network_globals(harness, write_handler):
    handler = write_handler("""
        export default async (request) => {
          const globals = ["std", "os", "process", "fetch", "XMLHttpRequest", "setTimeout"]
            .filter((name) => typeof globalThis[name] !== "undefined");
          let imported = "no";
          try { await import("/etc/passwd"); imported = "yes"; } catch (e) { imported = e.message; }
          return request.ok({ globals, imported });
        };
    """)
    result = harness.run(handler)
    assert result.message["globals"] == []
    assert "could not load module" in result.message["imported"]


def test_top_level_code_runs_once_per_load_and_can_require(harness, write_handler):
    handler = write_handler("""
        const db = require("kvstore");
        const loadedAt = Date.now();
        export default async function handler(request) {
          return request.ok({ loadedAt, count: await db.incrCounter("c") });
        }
    """)
    result = harness.run(handler)
    assert result.message == {"loadedAt": 1_767_225_600_000, "count": 1}


def test_default_export_by_name(harness, write_handler):
    handler = write_handler("""
        const handle = (request) => request.ok({ named: true });
        export default handle;
    """)
    assert harness.run(handler).message == {"named": True}


def test_error_thrown_at_top_level_is_a_load_error_with_location(harness, write_handler):
    handler = write_handler(
        "const x = 1;\nthrow new Error('config missing');\nexport default (r) => r.ok();"
    )
    result = harness.run(handler)
    assert result.outcome == "error"
    assert "config missing" in result.error.message
    assert result.error.line == 2


def test_throwing_a_non_error_value(harness, write_handler):
    handler = write_handler('export default () => { throw "plain string"; };')
    result = harness.run(handler)
    assert result.error.message == "the handler threw a non-Error value: plain string"


# --- on-request -------------------------------------------------------------------


def test_on_request_request_object(harness, write_handler):
    handler = write_handler("""
        export default async (request, response) => {
          return response.send({
            method: request.method, path: request.path, query: request.query,
            paramsIsQuery: request.params === request.query, header: request.headers["x-token"],
            parsed: JSON.parse(request.body).userId, field: request.body.userId,
            viaJson: (await request.json()).userId,
          });
        };
    """)
    result = harness.request(
        handler,
        method="post",
        path="/session",
        query={"a": "1"},
        headers={"X-Token": "t1"},
        body='{"userId":"u1"}',
    )
    assert result.outcome == "response"
    assert json.loads(result.response["body"]) == {
        "method": "POST",
        "path": "/session",
        "query": {"a": "1"},
        "paramsIsQuery": True,
        "header": "t1",
        "parsed": "u1",
        "field": "u1",
        "viaJson": "u1",
    }


def test_request_json_rejects_on_malformed_body(harness, write_handler):
    handler = write_handler("""
        export default async (request, response) => {
          try { await request.json(); } catch (e) { return response.send(e.name, 400); }
          return response.send("parsed");
        };
    """)
    result = harness.request(handler, method="POST", body="{not json")
    assert result.response == {"status": 400, "headers": {}, "body": "SyntaxError"}


@pytest.mark.parametrize(
    ("send", "status", "content_type", "body"),
    [
        ("response.send({ a: 1 })", 200, "application/json", '{"a":1}'),
        ("response.send([1, 2], 201)", 201, "application/json", "[1,2]"),
        ("response.send('plain')", 200, None, "plain"),
        ("response.send(42)", 200, None, "42"),
        ("response.send(true)", 200, None, "true"),
        ("response.send()", 200, None, ""),
        ("(response.status = 418, response.send('teapot'))", 418, None, "teapot"),
        ("(response.status = 500, response.send('x', 202))", 202, None, "x"),
        (
            "(response.headers['Content-Type'] = 'text/csv', response.send({a: 1}))",
            200,
            "text/csv",
            '{"a":1}',
        ),
    ],
)
def test_response_send_forms(harness, write_handler, send, status, content_type, body):
    handler = write_handler(f"export default (request, response) => {send};")
    result = harness.request(handler)
    assert result.response["status"] == status
    headers = {k.lower(): v for k, v in result.response["headers"].items()}
    assert headers.get("content-type") == content_type
    assert result.response["body"] == body


@pytest.mark.parametrize(
    ("name", "source"),
    [
        (
            "twice.js",
            "export default (request, response) => { response.send('a'); return response.send('b'); };",
        ),
        (
            "twice.py",
            "def handler(request, response):\n"
            "    response.send('a')\n"
            "    return response.send('b')\n",
        ),
    ],
    ids=["js", "py"],
)
def test_a_second_response_send_is_named_as_the_handler_wrote_it(
    harness, write_handler, name, source
):
    """The warning names the call the handler made, response.send(), not the internal
    completion kind; the first send still wins."""
    result = harness.request(write_handler(source, name))
    assert result.outcome == "response" and result.response["body"] == "a"
    assert any(
        w.startswith("response.send() was called after response.send() had already completed")
        for w in result.warnings
    ), result.warnings


def test_a_send_only_after_the_handler_finished_is_named_response_send(harness, write_handler):
    handler = write_handler(
        "const db = require('kvstore');\n"
        "export default (request, response) => { db.get('k').then(() => response.send('late')); };"
    )
    result = harness.request(handler)
    assert result.outcome == "error"
    assert "response.send() was called only after the handler had finished" in (
        result.error.message
    )


def test_on_request_without_send_is_an_error(harness, write_handler):
    handler = write_handler("export default (request, response) => {};")
    result = harness.request(handler)
    assert result.outcome == "error"
    assert "without calling response.send()" in result.error.message


# --- crypto and uuid ----------------------------------------------------------------


def test_crypto_digests_match_the_published_vector_and_hashlib(harness, write_handler):
    handler = write_handler("""
        const crypto = require("crypto");
        export default async (request) => {
          const out = {};
          for (const text of request.message.texts) {
            out[text] = [await crypto.sha1(text), await crypto.sha256(text),
                         await crypto.sha512(text)];
          }
          return request.ok(out);
        };
    """)
    texts = ["secretPayload", "", "héllo wörld ✓", "a" * 1000]
    harness.limits = "classic"
    result = harness.run(handler, message={"texts": texts})
    assert result.message["secretPayload"][1] == "sx4yvIv4TM+p33je5wnxV8qnzekQvvvHaPZzGukC2RI="
    for text in texts:
        expected = [
            base64.b64encode(hashlib.new(a, text.encode()).digest()).decode()
            for a in ("sha1", "sha256", "sha512")
        ]
        assert result.message[text] == expected
    assert result.operations["used"] == 0  # crypto is not a counted operation


def test_crypto_hmac_is_url_safe_base64_with_a_base64_key(harness, write_handler):
    handler = write_handler("""
        const crypto = require("crypto");
        export default async (request) => request.ok({
          sig: await crypto.hmac(request.message.key, request.message.text,
                                 crypto.ALGORITHM.HMAC_SHA256),
          sig512: await crypto.hmac(request.message.key, request.message.text,
                                    crypto.ALGORITHM.HMAC_SHA512),
        });
    """)
    key = base64.b64encode(b"\xfa\xfb secret key bytes").decode()
    text = "sub-c-1\npub-c-1\ngrant\nauth=abc&r=1"
    result = harness.run(handler, message={"key": key, "text": text})
    raw_key = base64.b64decode(key)
    assert (
        result.message["sig"]
        == base64.urlsafe_b64encode(hmac.new(raw_key, text.encode(), "sha256").digest()).decode()
    )
    assert (
        result.message["sig512"]
        == base64.urlsafe_b64encode(hmac.new(raw_key, text.encode(), "sha512").digest()).decode()
    )


def test_uuid_v4_validate_and_version(harness, write_handler):
    handler = write_handler("""
        const uuid = require("uuid");
        export default (request) => {
          const ids = Array.from({ length: 200 }, () => uuid.v4());
          return request.ok({
            ids, allValid: ids.every(uuid.validate), versions: [...new Set(ids.map(uuid.version))],
            rejects: uuid.validate("not-a-uuid"),
          });
        };
    """)
    message = harness.run(handler).message
    pattern = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    assert all(pattern.match(i) for i in message["ids"])
    assert len(set(message["ids"])) == 200
    assert message["allValid"] is True and message["versions"] == [4]
    assert message["rejects"] is False


def test_random_values_in_a_recorded_execution_are_the_engines_kind():
    """An execution pfunc dev runs in line records its Math.random() values, and past the
    20,000 it keeps draws from a generator of its own: either way values in [0, 1) with
    the engine's 52 bits, and none repeated."""
    from pfunc.sandbox.quickjs_host import JavaScriptSandbox

    source = """export default (request) => {
      const values = Array.from({ length: 25000 }, () => Math.random());
      const kind = values.every((v) => v >= 0 && v < 1 && Number.isInteger(v * 2 ** 52));
      return request.ok({ kind, distinct: new Set(values).size });
    };"""
    sandbox = JavaScriptSandbox(source, "random.js", None, 10.0)
    event = {"kind": "before-publish", "message": {}, "channels": ["c"], "family": "message"}
    sandbox.advance(None, [], (json.dumps({**event, "recordTape": True}), None))
    completion = sandbox.finish()["completion"]
    assert json.loads(completion["message"]) == {"kind": True, "distinct": 25000}


def test_a_promise_left_in_the_message_is_said(harness, write_handler):
    """`request.message.count = db.incrCounter("n")` without await delivers {} as the
    count: the report says which field was a Promise."""
    handler = write_handler(
        """
        const db = require("kvstore");
        export default (request) => {
          request.message.count = db.incrCounter("n");
          return request.ok();
        };
        """,
        "promised.js",
    )
    result = harness.run(handler)
    assert result.outcome == "ok" and result.message == {"count": {}}
    assert any('"count" in the message is a Promise' in w for w in result.warnings)


def test_pfuncs_own_time_limit_stops_a_loop_and_leaves_the_context_usable():
    import quickjs

    from pfunc.sandbox.time_limit import TimeLimit

    context = quickjs.Context()
    limit = TimeLimit(context)
    assert limit.native, "the binding's layout was not recognised: pfunc fell back"
    limit.arm(0.05)
    with pytest.raises(quickjs.JSException, match="interrupted"):
        context.eval("for (;;) {}")
    limit.arm(None)
    assert context.eval("1 + 1") == 2


FIRST_LIMITS_AT_ONCE = """
import threading, quickjs
from pfunc.sandbox import time_limit
from pfunc.sandbox.time_limit import TimeLimit
start = threading.Barrier(8)
stopped, native = [], []
def run():
    start.wait()
    context = quickjs.Context()
    native.append(time_limit.native(context))  # the probe, wanted by all eight at once
    limit = TimeLimit(context)
    native.append(limit.native)
    for _ in range(20):
        limit.arm(0.002)
        try:
            context.eval("for (;;) {}")
        except quickjs.JSException as error:
            stopped.append("interrupted" in str(error))
threads = [threading.Thread(target=run) for _ in range(8)]
for thread in threads: thread.start()
for thread in threads: thread.join()
context = quickjs.Context()
main = TimeLimit(context)
main.arm(0.002)
try:
    context.eval("for (;;) {}")
except quickjs.JSException as error:
    stopped.append("interrupted" in str(error))
print(len(stopped), all(stopped), native.count(True), native.count(False), main.native)
"""


def test_contexts_made_on_many_threads_at_once_share_one_probe():
    """The dev server loads a project's functions on threads of their own, all at once:
    the first contexts must not each install a handler of their own that a later one
    replaces (a freed callback that QuickJS then calls: a segmentation fault). One probe
    runs; contexts on threads keep the binding's limit (pfunc's handler is Python and
    would wait for the GIL), the main thread's get pfunc's, and every one is held."""
    import subprocess
    import sys

    for _ in range(3):  # the probe runs once a process: a new process each time
        done = subprocess.run(
            [sys.executable, "-c", FIRST_LIMITS_AT_ONCE], capture_output=True, text=True
        )
        result = (done.returncode, done.stdout.strip())
        assert result == (0, "161 True 8 8 True"), done.stderr[-800:]


def test_the_executions_limit_counts_wall_time_and_pfuncs_guards_cpu_time():
    """PubNub's limit is wall time: JavaScript that waits (here on a slow host function,
    as it would behind a busy machine's other threads) is stopped when the time is up.
    pfunc's own guards count this thread's CPU time, which such waiting does not spend."""
    import time

    import quickjs

    from pfunc.sandbox.time_limit import TimeLimit

    context = quickjs.Context()
    limit = TimeLimit(context)
    context.add_callable("nap", lambda: time.sleep(0.02))
    loop = "(() => { let n = 0; for (; n < 100; n++) { nap(); for (let i = 0; i < 2e3; i++) {} } return n; })()"
    limit.arm(0.1)
    with pytest.raises(quickjs.JSException, match="interrupted"):
        context.eval(loop)
    limit.arm(0.1, on_cpu=True)
    # 2 s of naps, little CPU (a few ms of loops, far from 0.1 s on a busy machine too):
    # never stopped.
    assert context.eval(loop) == 100
    limit.arm(None)


def _run_away_on_a_thread(seconds: float, busy: bool) -> tuple[bool, float, int]:
    """A runaway on a thread of its own, held to `seconds`, with another thread busy
    running JavaScript (a second CPU's worth: it runs without the GIL) or not: whether
    it was interrupted, after how long, and what a bounded loop armed anew gives after."""
    import threading
    import time

    import quickjs

    from pfunc.sandbox.time_limit import TimeLimit

    outcome = []

    def run_away() -> None:
        context = quickjs.Context()
        limit = TimeLimit(context)
        began = time.monotonic()
        limit.arm(seconds)
        try:
            context.eval("for (;;) {}")
        except quickjs.JSException as error:
            outcome.extend(("interrupted" in str(error), time.monotonic() - began))
        finally:
            limit.arm(None)
        # The next arming is its own: the watchdog's stops of the last one have ended.
        limit.arm(5.0)
        try:
            outcome.append(context.eval("let n = 0; for (let i = 0; i < 3e6; i++) n++; n"))
        finally:
            limit.arm(None)

    with second_cpu_busy() if busy else contextlib.nullcontext():
        worker = threading.Thread(target=run_away)
        worker.start()
        worker.join()
    interrupted, elapsed, after = outcome
    return interrupted, elapsed, after


@needs_two_cpus
def test_a_threads_execution_limit_counts_wall_time_busy_or_not():
    """On a thread of its own (a dev-server function not in line) a context is held by
    the binding's limit, whose check counts the process's CPU time: with another thread
    busy it fired at about half the limit (a 10 s runaway stopped after ~6 s under load).
    It is armed where it cannot fire before the deadline (the limit times the CPUs), and
    the watchdog stops it at the deadline: not before it with a second CPU busy, and not
    at twice it with none."""
    interrupted, busy_stop, after = _run_away_on_a_thread(0.6, busy=True)
    assert interrupted and after == 3_000_000
    assert busy_stop >= 0.55, f"stopped after {busy_stop:.2f} s of a 0.6 s limit"
    interrupted, quiet_stop, after = _run_away_on_a_thread(0.6, busy=False)
    assert interrupted and after == 3_000_000
    limit_times_cpus = 0.6 * (os.cpu_count() or 1)
    assert quiet_stop < 0.6 + (limit_times_cpus - 0.6) / 2, (
        f"stopped after {quiet_stop:.2f} s: the CPU-time check, not the watchdog"
    )


class _Watched:
    """An owner of deadlines, as the watchdog sees a TimeLimit: it records its stops."""

    def __init__(self) -> None:
        import math
        import threading

        self.deadline = math.inf
        self.stops: list[float] = []
        self.stopped_twice = threading.Event()

    def stop_if_past(self, now: float) -> None:
        if self.deadline <= now:
            self.stops.append(now)
            if len(self.stops) >= 2:
                self.stopped_twice.set()


def test_a_watchdog_thread_that_could_not_start_is_started_by_the_next_arming(monkeypatch):
    """A burst can leave no thread to start for a moment: that arming falls back to the
    binding's limit (RuntimeError), and the next one starts the watchdog, not none."""
    import threading
    import time

    import pytest

    from pfunc.sandbox.wall_watchdog import WallWatchdog

    real_start = threading.Thread.start
    refusals = [RuntimeError("can't start new thread")]

    def start(thread: threading.Thread) -> None:
        if thread.name == "pfunc-wall-watchdog" and refusals:
            raise refusals.pop()
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    watchdog = WallWatchdog()
    owner = _Watched()
    watchdog.register(owner)
    owner.deadline = time.monotonic() + 0.01
    with pytest.raises(RuntimeError):
        watchdog.armed()
    owner.deadline = time.monotonic() + 0.01
    watchdog.armed()
    assert owner.stopped_twice.wait(10), "no watchdog after a thread could not be started"


def test_the_wall_watchdog_stops_owners_past_their_deadlines_only_and_holds_none():
    """The watchdog stops an owner past its deadline, again while it stands; never one
    disarmed (math.inf) or not yet due; and holds owners weakly (a context that is done
    with is not kept)."""
    import gc
    import math
    import time
    import weakref

    from pfunc.sandbox.wall_watchdog import WallWatchdog

    watchdog = WallWatchdog()
    due, later, after = _Watched(), _Watched(), _Watched()
    for owner in (due, later, after):
        watchdog.register(owner)
    later.deadline = time.monotonic() + 600
    due.deadline = time.monotonic() + 0.01
    watchdog.armed()
    assert due.stopped_twice.wait(10), "an owner past its deadline was not stopped again"
    due.deadline = math.inf  # disarmed
    stopped = len(due.stops)
    after.deadline = time.monotonic() + 0.01
    watchdog.armed()
    assert after.stopped_twice.wait(10)  # meanwhile a stop of `due` would have come too
    assert len(due.stops) == stopped and later.stops == []
    gone = weakref.ref(due)
    del due
    gc.collect()
    assert gone() is None


def test_the_wall_watchdogs_thread_ends_when_idle_and_starts_again(monkeypatch):
    """Idle pools shrink back after a burst: so does the watchdog's thread, and the next
    arming starts it again (and is stopped at its deadline)."""
    import math
    import time

    from pfunc.sandbox import wall_watchdog
    from pfunc.sandbox.wall_watchdog import WallWatchdog

    monkeypatch.setattr(wall_watchdog, "IDLE_END", 0.05)

    watchdog = WallWatchdog()
    owner = _Watched()
    watchdog.register(owner)
    for _ in range(2):
        owner.stops.clear()
        owner.stopped_twice.clear()
        owner.deadline = time.monotonic() + 0.01
        watchdog.armed()
        thread = watchdog._thread
        assert thread is not None and owner.stopped_twice.wait(10)
        owner.deadline = math.inf  # disarmed: idle from here
        thread.join(10)
        assert not thread.is_alive() and watchdog._thread is None


CTRL_C_DURING_A_RUNAWAY = """
import os, signal, threading
from pfunc.sandbox.quickjs_host import JavaScriptSandbox
sandbox = JavaScriptSandbox("export default () => { for (;;) {} };", "spin.js", None, 30.0)
threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
event = '{"kind":"before-publish","family":"message","phase":"before","message":{}}'
try:
    sandbox.advance(30.0, [], (event, None))
    print("ran to its end")
except KeyboardInterrupt:
    print("stopped by Ctrl-C")
"""


def test_ctrl_c_stops_a_runaway_handler_at_once():
    """A Ctrl-C arrives in the interrupt handler's Python code: it stops the JavaScript
    and is raised again, not swallowed until the 30 s limit."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", CTRL_C_DURING_A_RUNAWAY], capture_output=True, text=True
    )
    assert done.stdout.strip() == "stopped by Ctrl-C", done.stderr[-800:]


def test_a_context_moved_between_threads_is_held_by_the_limit_of_the_thread_it_runs_on():
    """pfunc dev moves idle contexts between its loop (the main thread) and threads of
    their own as functions are promoted or demoted: each arming takes the limit of the
    thread it runs on, pfunc's on the main thread, the binding's C handler (pinned with
    pfunc's data) elsewhere."""
    import threading

    import quickjs

    from pfunc.sandbox.time_limit import TimeLimit

    context = quickjs.Context()
    limit = TimeLimit(context)
    seen = []

    def spin_here() -> None:
        limit.arm(0.02)
        try:
            context.eval("for (;;) {}")
        except quickjs.JSException as error:
            seen.append(("interrupted" in str(error), limit.held_by))
        finally:
            limit.arm(None)

    spin_here()  # made here, on the main thread
    worker = threading.Thread(target=spin_here)
    worker.start()
    worker.join()
    spin_here()  # back on the main thread: pfunc's handler again, not the binding's
    assert seen == [(True, "python"), (True, "pinned"), (True, "python")]
