"""xhr against a real HTTP server on 127.0.0.1, mocks and offline refusal; vault; the budget."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from pfunc.events import MessageEvent
from pfunc.limits import resolve_profile
from pfunc.modules.calls import CallContext, HandlerCallError, JSArg
from pfunc.modules.xhr import XhrModule
from tests.conftest import local_http_server, run_cli


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        if self.path.startswith("/slow"):
            time.sleep(2)
        status = 404 if self.path.startswith("/missing") else 200
        answer = {
            "method": self.command,
            "path": self.path,
            "body": body,
            "token": self.headers.get("x-token"),
        }
        if self.path.startswith("/type"):
            answer = {"content_type": self.headers.get("content-type")}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("x-served-by", "test-server")
        if self.path.startswith("/multi"):
            # Headers a response repeats: each value must survive, in order.
            for name, value in (("X-Multi", "a"), ("Vary", "Accept"), ("X-Multi", "b")):
                self.send_header(name, value)
            self.send_header("Vary", "Origin")
            self.send_header("Set-Cookie", "one=1")
            self.send_header("Set-Cookie", "two=2")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with local_http_server(_Handler) as url:
        yield url


FETCH = """
const xhr = require("xhr");
export default async (request) => {
  const { url, options } = request.message;
  try {
    const res = await xhr.fetch(url, options);
    let parsed = null;
    try { parsed = await res.json(); } catch (e) { parsed = "not json: " + e.name; }
    return request.ok({ status: res.status, ok: res.ok, headers: res.headers, body: res.body,
                        parsed, url: res.url });
  } catch (error) {
    return request.ok({ rejected: error.message });
  }
};
"""


def fetch(harness, write_handler, url: str, options: dict | None = None):
    harness.offline = False
    handler = write_handler(FETCH, "fetch.js")
    return harness.run(handler, message={"url": url, "options": options or {}})


def test_get_resolves_status_headers_body_and_json(harness, write_handler, server):
    result = fetch(harness, write_handler, f"{server}/item?id=7", {"headers": {"X-Token": "t"}})
    answer = result.message
    assert answer["status"] == 200 and answer["ok"] is True
    assert answer["headers"]["x-served-by"] == "test-server"
    assert answer["parsed"] == {"method": "GET", "path": "/item?id=7", "body": "", "token": "t"}
    assert answer["url"] == f"{server}/item?id=7"
    assert result.operations["calls"] == [
        {"module": "xhr", "method": "fetch", "key": f"{server}/item?id=7", "status": "ok"}
    ]


def test_repeated_response_headers_are_combined_in_order(harness, write_handler, server):
    """Fetch's Headers (which PubNub's xhr mirrors) join a repeated header's values with
    ", " in the order they came; none is dropped."""
    headers = fetch(harness, write_handler, f"{server}/multi").message["headers"]
    assert headers["x-multi"] == "a, b"
    assert headers["vary"] == "Accept, Origin"
    assert headers["set-cookie"] == "one=1, two=2"
    assert headers["x-served-by"] == "test-server"


def test_a_body_is_labelled_as_fetch_labels_it(harness, write_handler, server):
    """A string body goes as text/plain;charset=UTF-8 (fetch's and node-fetch's label), an
    object as JSON, and a Content-Type the handler set is kept."""
    types = [
        fetch(harness, write_handler, f"{server}/type", options).message["parsed"]
        for options in (
            {"method": "POST", "body": "a=1&b=2"},
            {"method": "POST", "body": {"a": 1}},
            {
                "method": "POST",
                "body": "a=1",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
        )
    ]
    assert [answer["content_type"] for answer in types] == [
        "text/plain;charset=UTF-8",
        "application/json",
        "application/x-www-form-urlencoded",
    ]


def test_post_sends_method_and_body(harness, write_handler, server):
    answer = fetch(
        harness, write_handler, f"{server}/echo", {"method": "POST", "body": '{"a":1}'}
    ).message
    assert answer["parsed"]["method"] == "POST"
    assert answer["parsed"]["body"] == '{"a":1}'


def test_non_2xx_resolves_with_ok_false(harness, write_handler, server):
    answer = fetch(harness, write_handler, f"{server}/missing").message
    assert answer["status"] == 404 and answer["ok"] is False


def test_timeout_rejects(harness, write_handler, server):
    answer = fetch(harness, write_handler, f"{server}/slow", {"timeout": 200}).message
    assert "timed out after 200 ms" in answer["rejected"]


def test_connection_refused_rejects(harness, write_handler):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    answer = fetch(harness, write_handler, f"http://127.0.0.1:{port}/x").message
    assert answer["rejected"].startswith(f"xhr.fetch: GET http://127.0.0.1:{port}/x failed")


def test_execution_time_limit_bounds_a_slow_request(harness, write_handler, server):
    handler = write_handler(
        """
        const xhr = require("xhr");
        export default async (request) => { await xhr.fetch(request.message.url); return request.ok(); };
    """,
        "slow.js",
    )
    profile = resolve_profile("classic", {"timeout": 0.5})

    harness.offline = False  # the request really goes to the slow local server

    async def go():
        async with harness.engine() as engine:
            engine.runtime.profile = profile
            executor = engine.functions.executor_for_file(handler)
            return await executor.run(MessageEvent("before-publish", {"url": f"{server}/slow"}))

    result = asyncio.run(go())
    # The profile's 0.5 s limit ends it, not the request's 10 s default timeout: either
    # the execution's deadline stops it, or the fetch's own timeout was cut to what was left.
    assert result.outcome == "error"
    assert (
        "0.5 s time limit" in result.error.message
        or "bounded by the execution's time limit" in result.error.message
    ), result.error.message


def test_a_timeout_without_a_timeout_option_names_no_option(harness):
    """A fetch the handler gave no `timeout`, cut short by the execution's time limit,
    says it was the default bounded by the time left, not a timeout option it never
    gave. The module is called directly, with the deadline a call sees, so the fetch's
    own timeout (not the execution's, which lands at the same moment) ends it."""
    silent = socket.socket()  # accepts connections (the backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/"

    async def fetch_until_deadline(options: dict | None) -> str:
        async with harness.engine() as engine:
            runtime = engine.runtime
            context = CallContext(
                runtime.store, "demo", runtime.profile, runtime.clock, lambda _: None
            )
            context.deadline = time.monotonic() + 0.3
            xhr = XhrModule()
            args = [JSArg({"v": url})] + ([JSArg({"j": json.dumps(options)})] if options else [])
            try:
                with pytest.raises(HandlerCallError) as rejected:
                    await xhr.call("fetch", args, context)
            finally:
                await xhr.close()
            return rejected.value.message

    try:
        defaulted = asyncio.run(fetch_until_deadline(None))
        given = asyncio.run(fetch_until_deadline({"timeout": 5000}))
    finally:
        silent.close()
    assert "timed out after" in defaulted, defaulted
    assert "timeout option 10000" not in defaulted, defaulted
    assert "no timeout option was given" in defaulted, defaulted
    assert "default 10000 ms was bounded by the execution's time limit" in defaulted, defaulted
    # A timeout the handler did pass is still named as its option.
    assert "timeout option 5000 ms, bounded by the execution's time limit" in given, given


def test_an_unawaited_request_past_the_time_limit_leaves_the_handlers_ending_alone(
    harness, write_handler, server
):
    """The handler finished (ok) while a request it did not await still ran: at the time
    limit pfunc stops waiting for it and says so; the message is delivered, as the
    handler asked (PubNub only guarantees awaited work)."""
    handler = write_handler(
        """
        const xhr = require("xhr");
        export default (request) => { xhr.fetch(request.message.url); return request.ok(); };
    """,
        "unawaited_slow.js",
    )
    harness.offline = False

    async def go():
        async with harness.engine() as engine:
            engine.runtime.profile = resolve_profile("classic", {"timeout": 0.5})
            executor = engine.functions.executor_for_file(handler)
            return await executor.run(MessageEvent("before-publish", {"url": f"{server}/slow"}))

    result = asyncio.run(go())
    assert (result.outcome, result.delivered, result.error) == ("ok", True, None)
    assert any(
        "was still under way at the 0.5 s time limit" in warning for warning in result.warnings
    ), result.warnings


def test_mocks_answer_and_unmatched_requests_are_refused_offline(harness, write_handler, tmp_path):
    harness.use_project(
        """
        [project]
        name = "m"
        [[mocks]]
        url = "https://api.example.com/users/*"
        method = "GET"
        status = 201
        json = { name = "Ada" }
        [[mocks]]
        url = "https://api.example.com/text"
        body = "plain"
        headers = { "X-Mocked" = "yes" }
    """,
        tmp_path,
    )
    handler = write_handler(FETCH, "fetch.js")
    harness.offline = True
    mocked = harness.run(handler, message={"url": "https://api.example.com/users/1"}).message
    assert mocked["status"] == 201
    assert mocked["parsed"] == {"name": "Ada"}
    assert mocked["headers"]["content-type"] == "application/json"
    text = harness.run(handler, message={"url": "https://api.example.com/text"}).message
    assert (text["body"], text["headers"]["x-mocked"]) == ("plain", "yes")
    refused_run = harness.run(handler, message={"url": "https://api.example.com/other"})
    refused = refused_run.message
    assert "no mock matches GET https://api.example.com/other" in refused["rejected"]
    # The handler's error is one line, as a network error's; the mock is the report's.
    assert "\n" not in refused["rejected"] and "[[mocks]]" not in refused["rejected"]
    assert any("[[mocks]]" in warning for warning in refused_run.warnings)
    wrong_method = harness.run(
        handler, message={"url": "https://api.example.com/users/1", "options": {"method": "POST"}}
    ).message
    assert "no mock matches POST" in wrong_method["rejected"]


def test_a_mock_answers_the_url_as_the_request_is_addressed(harness, write_handler, tmp_path):
    """A mock of https://api.example.com/* answers the same address written with its
    default port, user info or a host in capitals (a tutorial's
    https://user:pass@host:443/... could not be mocked), and says its status's reason
    phrase as a server would."""
    harness.use_project(
        '[project]\n[[mocks]]\nurl = "https://api.example.com/*"\nstatus = 404\n\n'
        '[[mocks]]\nurl = "http://localhost:*/health"\n\n'
        '[[mocks]]\nurl = "http://[::1]:8080/*"\nstatus = 202\n',
        tmp_path,
    )
    handler = write_handler(
        """
        const xhr = require("xhr");
        export default async (request) => {
          try {
            const res = await xhr.fetch(request.message.url);
            return request.ok(res.status + " " + res.statusText);
          } catch (e) { return request.ok("refused"); }
        };
        """,
        "addressed.js",
    )
    harness.offline = True
    urls = [
        "https://api.example.com/a",
        "https://api.example.com:443/a",
        "https://u:p@api.example.com/a",
        "HTTPS://API.example.com/a",
        "https://api.example.com:8443/a",  # another port: another address
        "http://api.example.com/a",
        "http://localhost:8080/health",
        "http://localhost:80/health",  # the pattern's * port, as written
        "http://[::1]:8080/x",  # an IPv6 host: its [ is no character class
    ]
    answers = [harness.run(handler, message={"url": url}).message for url in urls]
    assert answers == ["404 Not Found"] * 4 + ["refused", "refused"] + ["200 OK"] * 2 + [
        "202 Accepted"
    ]


def test_cli_offline_flag_refuses_unmocked_requests(tmp_path):
    handler = tmp_path / "h.js"
    handler.write_text(FETCH)
    run = run_cli(
        "run",
        handler,
        "--offline",
        "--json",
        "--kv",
        tmp_path / "kv.sqlite3",
        "--message",
        '{"url":"https://example.invalid/x"}',
        cwd=tmp_path,
    )
    assert "pfunc is offline" in run.json()["message"]["rejected"]
    # The report's mock can be pasted: its lines kept, indented under the warning's mark.
    human = run_cli(
        "run",
        handler,
        "--offline",
        "--kv",
        tmp_path / "kv.sqlite3",
        "--message",
        '{"url":"https://example.invalid/x"}',
        cwd=tmp_path,
    )
    assert '\n    [[mocks]]\n    url = "https://example.invalid/x"\n' in human.stdout, human.stdout


# --- vault ----------------------------------------------------------------------------


VAULT = """
const vault = require("vault");
export default async (request) => {
  const out = {};
  for (const name of request.message.names) {
    try { out[name] = await vault.get(name); } catch (e) { out[name] = "rejected: " + e.message; }
  }
  console.log("token is " + out.API_TOKEN);
  return request.ok(out);
};
"""


def test_vault_sources_precedence_and_masking(harness, write_handler, tmp_path):
    harness.use_project(
        '[project]\n[vault]\nAPI_TOKEN = "from-toml"\nONLY_TOML = "toml-only"\n', tmp_path
    )
    (tmp_path / ".env").write_text("FROM_DOTENV=dotenv-value\nAPI_TOKEN=from-dotenv\n")
    harness.environ = {"PFUNC_VAULT_API_TOKEN": "from-environment"}
    handler = write_handler(VAULT, "vault.js")
    result = harness.run(
        handler, message={"names": ["API_TOKEN", "ONLY_TOML", "FROM_DOTENV", "MISSING"]}
    )
    assert result.message["API_TOKEN"] == "from-environment"
    assert result.message["ONLY_TOML"] == "toml-only"
    assert result.message["FROM_DOTENV"] == "dotenv-value"
    assert 'no secret named "MISSING"' in result.message["MISSING"]
    assert "PFUNC_VAULT_MISSING" in result.message["MISSING"]
    # The log line carried the secret; the report masks it.
    assert result.logs[0]["text"] == "token is *****"
    assert result.operations["used"] == 0  # vault reads are free in classic


def test_a_short_secret_is_masked_as_a_word_a_long_one_anywhere(harness, write_handler, tmp_path):
    harness.use_project('[project]\n[vault]\nSHORT = "test"\nLONG = "k3y-0f-th1rty"\n', tmp_path)
    handler = write_handler(
        """
        const vault = require("vault");
        export default async (request) => {
          const short = await vault.get("SHORT"), long = await vault.get("LONG");
          console.log("the latest " + short + " run, test-" + short);
          console.log("key=" + long + "&x, glued" + long);
          throw new Error("bad input in tests: " + short);
        };
        """,
        "masks.js",
    )
    result = harness.run(handler)
    assert [entry["text"] for entry in result.logs] == [
        "the latest ***** run, *****-*****",
        "key=*****&x, glued*****",
    ]
    assert result.error.message == "bad input in tests: *****"


def test_a_secret_url_is_masked_in_the_operations_and_its_mock_hint(
    harness, write_handler, tmp_path
):
    """A webhook URL kept in vault (Slack's, whose path is the secret) is masked in the
    operations the report lists, not only in the console; the offline hint's mock writes
    it as `*`, which still matches, so it can be pasted as it is."""
    secret = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX"
    harness.use_project(f'[project]\n[vault]\nSLACK_URL = "{secret}"\n', tmp_path)
    handler = write_handler(
        """
        const vault = require("vault"), xhr = require("xhr");
        export default async (request) => {
          const url = await vault.get("SLACK_URL");
          await xhr.fetch(url, { method: "POST", body: "{}" });
          return request.ok();
        };
        """,
        "slack.js",
    )
    harness.offline = True
    result = harness.run(handler)
    call = result.operations["calls"][-1]
    assert call["module"] == "xhr" and call["key"] == "*****"
    assert secret not in json.dumps(result.to_json())
    assert "POST *****" in result.error.message
    hint = next(warning for warning in result.warnings if "[[mocks]]" in warning)
    assert 'url = "*"' in hint
    # The hint's mock answers the same request.
    mock = hint[hint.index("[[mocks]]") :]
    (tmp_path / "pfunc.toml").write_text(f'[project]\n[vault]\nSLACK_URL = "{secret}"\n\n{mock}\n')
    harness.use_project((tmp_path / "pfunc.toml").read_text(), tmp_path)
    assert harness.run(handler).outcome == "ok"


def test_vault_counts_in_pubnub_2026(harness, write_handler, tmp_path):
    harness.use_project('[project]\n[vault]\nA = "aaa"\n', tmp_path)
    harness.limits = "pubnub-2026"
    result = harness.run(write_handler(VAULT, "vault.js"), message={"names": ["A"]})
    assert result.operations["used_by_kind"] == {"vault": 1}


# --- the combined budget ------------------------------------------------------------------


def test_kv_xhr_publish_kv_fails_on_the_fourth(harness, write_handler, tmp_path):
    harness.use_project(
        """
        [project]
        [vault]
        S = "secret"
        [[mocks]]
        url = "https://api.example.com/*"
        json = { ok = true }
    """,
        tmp_path,
    )
    handler = write_handler(
        """
        const db = require("kvstore"), xhr = require("xhr"), pubnub = require("pubnub");
        const vault = require("vault");
        export default async (request) => {
          await vault.get("S");
          await db.set("a", 1);
          await xhr.fetch("https://api.example.com/x");
          await pubnub.publish({ channel: "elsewhere", message: { hi: 1 } });
          await db.set("b", 2);
          return request.ok();
        };
    """,
        "mixed.js",
    )
    result = harness.run(handler)
    assert result.outcome == "error"
    assert result.error.message.startswith(
        "operation limit exceeded: kvstore.set would be operation 4 "
        'of 3 allowed per execution (profile "classic")'
    )
    assert [(c["module"], c["status"]) for c in result.operations["calls"]] == [
        ("kvstore", "ok"),
        ("xhr", "ok"),
        ("pubnub", "ok"),
        ("kvstore", "refused"),
    ]


MOCK_ORDER_PROJECT = """
[project]
subscribe_key = "sub-c-order"
publish_key = "pub-c-order"
limits = "pubnub-2026"  # five requests

[[mocks]]
url = "https://api.example.com/*"
json = { ok = true }

[[functions]]
name = "order"
file = "order.js"
event = "on-request"
path = "order"
"""
MOCK_ORDER = """
const xhr = require("xhr");
export default async (request, response) => {
  const settled = [];
  const tagged = (tag) => xhr.fetch("https://api.example.com/" + tag).then(() => settled.push(tag));
  await Promise.all([tagged("a"), tagged("b"), tagged("c")]);
  const winner = await Promise.race([
    xhr.fetch("https://api.example.com/first").then(() => "first"),
    xhr.fetch("https://api.example.com/second").then(() => "second"),
  ]);
  return response.send({ settled: settled.join(""), winner });
};
"""
IN_CALL_ORDER = {"settled": "abc", "winner": "first"}


def test_mocked_requests_settle_in_the_order_they_were_made_in_every_driver(tmp_path):
    """A mocked request never waits on the network: it is answered as a local call is,
    at once and in call order, so Promise.race and .then order do not depend on the
    driver (pfunc run, pfunc test, pfunc dev on a thread or on its own loop)."""
    from tests.dev_harness import InProcessDev

    (tmp_path / "pfunc.toml").write_text(MOCK_ORDER_PROJECT)
    (tmp_path / "order.js").write_text(MOCK_ORDER)
    run = run_cli("run", "order", "--json", cwd=tmp_path)
    assert json.loads(run.json()["response"]["body"]) == IN_CALL_ORDER
    (tmp_path / "order.test.toml").write_text(
        '[[scenario]]\nname = "order"\nfunction = "order"\n\n'
        '[[scenario.step]]\nrequest = { path = "/" }\n'
        'expect = { json = { settled = "abc", winner = "first" } }\n'
    )
    tested = run_cli("test", "order.test.toml", cwd=tmp_path)
    assert tested.code == 0, tested.stdout + tested.stderr
    server = InProcessDev(tmp_path)
    try:
        answers = [server.request("GET", "/v1/blocks/sub-key/sub-c-order/order") for _ in range(30)]
    finally:
        server.stop()
    assert [json.loads(body) for _, _, body in answers] == [IN_CALL_ORDER] * 30


def test_refused_fetches_of_one_url_give_one_mock_hint(harness, write_handler):
    """Promise.allSettled over three fetches of one URL: three rejections for the
    handler, one mock to paste in the report."""
    handler = write_handler(
        """
        const xhr = require("xhr");
        export default async (request) => {
          const url = "https://api.example.com/same";
          await Promise.allSettled([xhr.fetch(url), xhr.fetch(url), xhr.fetch(url)]);
          return request.ok();
        };
        """,
        "thrice.js",
    )
    harness.offline = True
    harness.limits = "pubnub-2026"
    result = harness.run(handler)
    assert result.outcome == "ok", result.error
    assert sum("[[mocks]]" in warning for warning in result.warnings) == 1, result.warnings


def test_vault_sources_that_are_no_text_are_refused_and_a_bom_is_no_part_of_a_name(
    harness, write_handler, tmp_path
):
    """A .env saved with a byte-order mark lost its first secret (the mark read as part of
    its name); one that is not UTF-8 was a traceback of every command; [vault] numbers
    and booleans became Python's text ("False")."""
    harness.use_project('[project]\n[vault]\nFROM_TOML = "t"\n', tmp_path)
    (tmp_path / ".env").write_bytes(b"\xef\xbb\xbfFIRST=first-value\nSECOND=second\n")
    handler = write_handler(VAULT, "vault.js")
    result = harness.run(handler, message={"names": ["FIRST", "SECOND"]})
    assert (result.message["FIRST"], result.message["SECOND"]) == ("first-value", "second")
    (tmp_path / ".env").write_bytes(b"B=caf\xe9\n")
    run = run_cli("run", handler, "--message", '{"names": []}', cwd=tmp_path)
    assert (
        run.code == 2
        and run.stderr == f"Error: {tmp_path / '.env'}: not UTF-8 text; save it as UTF-8\n"
    )
    (tmp_path / ".env").unlink()
    (tmp_path / "pfunc.toml").write_text("[project]\n\n[vault]\nPORT = 8080\nDEBUG = false\n")
    run = run_cli("run", handler, "--message", '{"names": []}', cwd=tmp_path)
    assert run.code == 2 and 'pfunc.toml:4: vault.PORT is text: write PORT = "8080"' in run.stderr
