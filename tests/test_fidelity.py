"""Handlers written for production run here unchanged (issue 13): each test is a minimal
handler in the shape real handlers use, asserting what production does."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import run_cli
from tests.dev_harness import InProcessDev


def test_resolving_with_the_request_is_ok_with_the_message_as_it_stands(harness, write_handler):
    """PubNub's Promises documentation ends a before-publish chain with `return request`,
    and ok() is documented to resolve to the request."""
    for source in (
        "export default (request) => { request.message.seen = 1; return request; };",
        "export default (r) => { r.message.seen = 1; return Promise.resolve(r); };",
        """const db = require("kvstore");
           export default (request) => db.get("k").then(() => {
             request.message.seen = 1; return request; });""",
    ):
        result = harness.run(write_handler(source), message={"text": "hi"})
        assert result.outcome == "ok", result.error
        assert result.message == {"text": "hi", "seen": 1}


def test_a_python_handler_may_return_the_request_too(harness, write_handler):
    handler = write_handler(
        "async def handler(request):\n    request.message['seen'] = 1\n    return request\n",
        "returns.py",
    )
    result = harness.run(handler, message={"text": "hi"})
    assert result.outcome == "ok" and result.message == {"text": "hi", "seen": 1}


def test_returning_something_else_still_needs_a_completion(harness, write_handler):
    result = harness.run(write_handler("export default (request) => ({ ...request });"))
    assert result.outcome == "error"


BODY = """
export default (request, response) => {
  const data = JSON.parse(request.body || '{}');
  return response.send({
    type: typeof request.body, empty: request.body === '', data, userId: request.body.userId,
  });
};
"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", {"type": "string", "empty": True, "data": {}}),
        ("[1,2]", {"type": "string", "empty": False, "data": [1, 2]}),
        ('"text"', {"type": "string", "empty": False, "data": "text"}),
        (
            '{"userId":"u1"}',
            {"type": "object", "empty": False, "data": {"userId": "u1"}, "userId": "u1"},
        ),
    ],
)
def test_request_body_is_a_primitive_string_unless_it_is_a_json_object(
    harness, write_handler, body, expected
):
    result = harness.request(write_handler(BODY), method="GET" if not body else "POST", body=body)
    assert result.outcome == "response", result.error
    assert json.loads(result.response["body"]) == expected


ECHO = """
export default (request, response) => {
  console.log(request.body);
  response.headers["x-keys"] = Object.keys(request.body).join(",");
  return response.send(request.body);
};
"""


@pytest.mark.parametrize("body", ["", "[1,2]", '"text"', '{"event":"x","n":1}', "{not json"])
def test_request_body_echoed_logged_and_listed_is_the_raw_text(harness, write_handler, body):
    """Production's body is a primitive string: sent back and logged as it came, and its
    keys are its characters' indices (the fields pfunc attaches to a JSON object's body
    are not listed)."""
    result = harness.request(write_handler(ECHO), method="POST", body=body)
    assert result.outcome == "response", result.error
    assert result.response["body"] == body
    assert "content-type" not in result.response["headers"]
    assert result.response["headers"]["x-keys"] == ",".join(str(i) for i in range(len(body)))
    assert [line["text"] for line in result.logs] == [body]


@pytest.fixture
def echo_server():
    """A real local HTTP service: answers the request it got (method, content type, body)
    as JSON, or 256 raw bytes on /binary."""

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = json.dumps(
                {"type": self.headers.get("Content-Type"), "body": body.decode()}
            ).encode()
            self._send(answer, "application/json")

        def do_GET(self) -> None:
            self._send(bytes(range(256)), "application/octet-stream")

        def _send(self, data: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_object_body_is_sent_as_json_with_a_warning(harness, write_handler, echo_server):
    """Six real handlers (two of PubNub's own) post objects to JSON-only APIs (SendGrid v3),
    so production serialises them."""
    harness.offline = False
    handler = write_handler(
        f"""
        const xhr = require("xhr");
        export default async (request, response) => {{
          const sent = await xhr.fetch("{echo_server}/mail", {{
            method: "POST", body: {{ to: "a@example.com" }} }});
          const kept = await xhr.fetch("{echo_server}/mail", {{
            method: "POST", body: ["x"], headers: {{ "content-type": "text/plain" }} }});
          return response.send({{ sent: await sent.json(), kept: await kept.json() }});
        }};
        """
    )
    result = harness.request(handler)
    assert result.outcome == "response", result.error
    answer = json.loads(result.response["body"])
    assert answer["sent"] == {"type": "application/json", "body": '{"to":"a@example.com"}'}
    assert answer["kept"] == {"type": "text/plain", "body": '["x"]'}  # its own type kept
    assert sum("sent as JSON" in warning for warning in result.warnings) == 2


def test_xhr_responses_carry_their_raw_bytes_as_a_buffer(harness, write_handler, echo_server):
    """A text-to-speech relay base64-encodes res["$buffer"].data: the bytes as Node's
    Buffer.toJSON() gives them ({type: "Buffer", data: [...]})."""
    harness.offline = False
    handler = write_handler(
        f"""
        const xhr = require("xhr");
        export default async (request, response) => {{
          const res = await xhr.fetch("{echo_server}/binary");
          return response.send(res["$buffer"]);
        }};
        """
    )
    result = harness.request(handler)
    assert result.outcome == "response", result.error
    assert json.loads(result.response["body"]) == {"type": "Buffer", "data": list(range(256))}


def test_mock_answers_carry_a_buffer_of_their_body(harness, write_handler, tmp_path):
    harness.use_project(
        """
        [[mocks]]
        url = "https://api.example.com/x"
        status = 200
        body = "hé"
        """,
        tmp_path,
    )
    handler = write_handler(
        """
        const xhr = require("xhr");
        export default async (request, response) =>
          response.send((await xhr.fetch("https://api.example.com/x"))["$buffer"].data);
        """
    )
    result = harness.request(handler)
    assert json.loads(result.response["body"]) == list("hé".encode())


ERRORS = """
const db = require("kvstore");
export default async (request) => {
  const seen = {};
  try { request.reject("no"); } catch (e) { seen.call = e.message; seen.callStack = e.stack; }
  try { await db.setItem("k", { a: 1 }); } catch (e) {
    seen.json = JSON.stringify(e); seen.keys = Object.keys(e); seen.stack = e.stack;
    seen.code = e.code === undefined ? null : typeof e.code;
  }
  try { new Error("made"); throw new Error("made"); } catch (e) { seen.own = e.stack; }
  request.message = seen;
  return request.ok();
};
"""


@pytest.mark.parametrize(
    ("body", "message", "column"),
    [
        ("request.reject();", "request.reject is not a function", 39),
        ("null.boom;", "Cannot read properties of null (reading 'boom')", 36),  # at boom
        ("let u; u.boom = 1;", "Cannot set properties of undefined (setting 'boom')", 38),
        ("const f = 1; f();", "f is not a function", 44),
        ("throw new Error('x');", "x", 41),
    ],
)
def test_an_error_on_the_first_line_is_worded_and_placed_as_on_any_other(
    harness, write_handler, body, message, column
):
    """One-line handlers are common: QuickJS counted some columns of a module's first
    line one short, so `request.reject()` there read "request is not a function"."""
    for lines_above in (0, 1):
        source = "// a comment\n" * lines_above + "export default (request) => { " + body + " };\n"
        error = harness.run(write_handler(source, f"one{lines_above}.js")).error
        assert error is not None
        assert (error.message, error.line, error.column) == (message, 1 + lines_above, column)


def caught_messages(harness, handler) -> list[str]:
    """What each call of a handler's `calls` list threw, as the handler caught it."""
    result = harness.run(handler)
    assert result.outcome == "ok", result.error
    return result.message


CALLEES = """
const CHECKS = {};
export default (request) => {
  const name = "x";
  const o = { a: { b: 1 }, "a(": 1 };
  const calls = [
    () => CHECKS[name](1),
    () => o.a.b(),
    () => o.a["b"](),
    () => CHECKS[name + "y"](2),
    () => o?.a.b(),
    () => (o.a).b(),
    () => new o.a(),
    () => name?o.a.b():0,
    () => o['a(']() ,
  ];
  request.message = calls.map((call) => { try { call(); } catch (e) { return e.message; } });
  return request.ok();
};
"""


def test_a_call_of_a_non_function_names_the_callee_as_written(harness, write_handler):
    """The callee is read back from the source whole: `CHECKS[name](v)` once said
    "name is not a function" and `o.a["b"]()` "o.a is not a function"."""
    assert caught_messages(harness, write_handler(CALLEES, "callees.js")) == [
        "CHECKS[name] is not a function",
        "o.a.b is not a function",
        'o.a["b"] is not a function',
        'CHECKS[name + "y"] is not a function',
        "o?.a.b is not a function",
        "(o.a).b is not a function",
        "o.a is not a constructor",
        "o.a.b is not a function",  # a conditional's ? is no part of it
        "o['a('] is not a function",  # a ( inside a string key is no call
    ]


CALLS_WITH_ARGUMENTS = """
export default (request) => {
  const page = { keys: ["temp:a"] };
  const o = { a: {} };
  const f = () => 1;
  const calls = [
    () => page.filter(key => key.startsWith("temp:")),
    () => o.x(request.message),
    () => o.x(function (x) { return x; }),
    () => o.x(async function named() {}),
    () => page.map((x) => x),
    () => o.x(new Date(), typeof f, !f),
    () => o.x({ a: f }, [f]),
    () => o.x(JSON.stringify(o), String(f)),
    () => o.x(JSON.stringfy(o)),
    () => page.forEach(
      (key) => key,
    ),
    () => new o.a(f),
    () => Promise.resolve(1).then((v) => v).catchh((e) => e),
    () => Promise.resolve(page)
      .thenn((p) => p),
    () => o.x`tagged`,
    () => o.x(
      // see helper(
      f),
    () => Math.max(1)(2),
    () => o.x(f(1)),
    () => f(1)(2),
  ];
  request.message = calls.map((call) => { try { call(); } catch (e) { return e.message; } });
  return request.ok();
};
"""


def test_a_call_with_arguments_names_its_callee_not_an_argument(harness, write_handler):
    """QuickJS's column for a failed call is the last place the call recorded, which is
    inside its arguments when one of them is a name, a function or a nested call: the
    getKeys() page's `page.filter(key => ...)` once read "key is not a function"."""
    assert caught_messages(harness, write_handler(CALLS_WITH_ARGUMENTS, "arguments.js")) == [
        "page.filter is not a function",
        "o.x is not a function",
        "o.x is not a function",
        "o.x is not a function",
        "page.map is not a function",
        "o.x is not a function",
        "o.x is not a function",
        "o.x is not a function",  # JSON.stringify and String are functions: not them
        "JSON.stringfy is not a function",
        "page.forEach is not a function",  # its parenthesis a line up
        "o.a is not a constructor",
        # V8 shows each call's arguments as (...), and a chain broken over lines whole
        "Promise.resolve(...).then(...).catchh is not a function",
        "Promise.resolve(...).thenn is not a function",
        "o.x is not a function",  # a tagged template calls its tag
        "o.x is not a function",  # a ( in a comment is no call
        "Math.max(...) is not a function",  # a function of the globals': its result
        # A local call in another's arguments, or called in turn: the column cannot say
        # which failed, so QuickJS's words stand rather than a guess.
        "not a function",
        "not a function",
    ]
    # The report points where V8 does: at the callee's last name, not at the argument.
    source = "export default (request) => {\n  const page = {};\n  page.filter(k => k);\n};\n"
    error = harness.run(write_handler(source, "placed.js")).error
    assert (error.message, error.line, error.column) == ("page.filter is not a function", 3, 8)


def test_errors_show_the_handler_file_and_never_pfunc(harness, write_handler):
    """V8 prints {} for JSON.stringify(error) (stack and code are not enumerable), names
    the handler file in every frame, and words a call of a non-function with its
    expression ("request.reject is not a function")."""
    result = harness.run(write_handler(ERRORS, "errors.js"))
    assert result.outcome == "ok", result.error
    seen = result.message
    assert seen["call"] == "request.reject is not a function"
    assert seen["callStack"].splitlines() == [
        "TypeError: request.reject is not a function",
        "    at errors.js:4:17",
    ]
    assert seen["json"] == "{}" and seen["keys"] == []
    assert seen["stack"].startswith("TypeError: kvstore.setItem: value for key")
    assert seen["stack"].splitlines()[1:] == ["    at errors.js:5:18"]
    assert seen["own"].splitlines() == ["Error: made", "    at errors.js:9:38"]
    for stack in (seen["callStack"], seen["stack"], seen["own"]):
        assert "<input>" not in stack and "__pfunc" not in stack


def test_a_json_parse_error_points_at_the_call_site(harness, write_handler):
    handler = write_handler(
        """
        export default (request) => {
          const parsed = JSON.parse("{\\"a\\": 1,\\n bad}");
          return request.ok(parsed);
        };
        """,
        "parse.js",
    )
    result = harness.run(handler)
    assert result.outcome == "error"
    assert (result.error.file, result.error.line) == ("parse.js", 2)
    assert "position 10" in result.error.message


def test_why_an_unawaited_call_failed_is_in_the_report(harness, write_handler):
    handler = write_handler(
        """
        const db = require("kvstore");
        export default (request) => {
          db.setItem("k", { a: 1 }).then(() => request.ok());
        };
        """
    )
    result = harness.run(handler)
    assert result.outcome == "error"
    assert 'The un-awaited kvstore.setItem("k") failed' in result.error.message
    assert "use kvstore.set" in result.error.message
    (call,) = result.operations["calls"]
    assert call["status"] == "error" and "must be a string" in call["error"]


def test_a_refusal_under_classic_says_when_todays_limits_would_allow_the_call(
    harness, write_handler
):
    """Handlers written in 2024-2025 count on per-kind limits (10 KV, 5 xhr, 10 publish)."""
    source = """
        const db = require("kvstore");
        export default async (request) => {
          for (let i = 0; i < COUNT; i++) await db.set("k" + i, i);
          return request.ok();
        };
    """
    four = harness.run(write_handler(source.replace("COUNT", "4")))
    assert four.outcome == "error"
    assert "--limits pubnub-2026" in four.error.message
    assert 'limits = "pubnub-2026" under [project]' in four.error.message
    harness.limits = "pubnub-2026"
    assert harness.run(write_handler(source.replace("COUNT", "4"))).outcome == "ok"
    eleven = harness.run(write_handler(source.replace("COUNT", "11")))
    assert eleven.outcome == "error" and "--limits" not in eleven.error.message


def test_nan_is_named_once(harness, write_handler):
    handler = write_handler(
        'const db = require("kvstore");\n'
        'export default async (r) => { await db.set("k", 1, NaN); return r.ok(); };\n'
    )
    message = harness.run(handler).error.message
    assert message.endswith("got number NaN")


def test_reports_off_a_terminal_are_never_cut(tmp_path):
    long_text = "word " * 60 + "END"
    (tmp_path / "pfunc.toml").write_text(
        '[[functions]]\nname = "talk"\nfile = "talk.js"\nevent = "before-publish"\n'
        'channels = ["c"]\n'
    )
    (tmp_path / "talk.js").write_text(
        f'export default (r) => {{ console.log("{long_text}"); return r.ok(); }};\n'
    )
    run = run_cli("publish", "c", '{"tt": "' + "1" * 120 + '"}', cwd=tmp_path)
    assert run.code == 0, run.stderr
    assert long_text in run.stdout and "1" * 120 in run.stdout


def test_the_execution_clock_drives_performance_now(harness, write_handler):
    handler = write_handler(
        "export default (r) => { const a = performance.now(); let x = 0;\n"
        "  for (let i = 0; i < 200000; i++) x += i; return r.ok({ d: performance.now() - a }); };\n"
    )
    assert harness.run(handler).message == {"d": 0}  # the harness runs on a fixed clock


def test_a_presence_report_is_not_a_delivered_message(tmp_path):
    (tmp_path / "seen.js").write_text("export default (r) => r.ok();\n")
    run = run_cli("run", tmp_path / "seen.js", "--event", "after-presence", "--kv", tmp_path / "k")
    assert "Presence event on" in run.stdout and "delivered" not in run.stdout


def test_on_request_uri_and_user_agent_are_the_clients_in_pfunc_dev(tmp_path):
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-f"\npublish_key = "pub-c-f"\n\n'
        '[[functions]]\nname = "echo"\nfile = "echo.js"\nevent = "on-request"\npath = "api"\n'
    )
    (tmp_path / "echo.js").write_text(
        "export default (req, res) => res.send({ uri: req.uri, path: req.path, "
        "agent: req.meta.useragent, header: req.headers['user-agent'] });\n"
    )
    server = InProcessDev(tmp_path)
    try:
        status, _, body = server.request(
            "GET",
            "/v1/blocks/sub-key/sub-c-f/api/items/7",
            headers={"User-Agent": "my-app/1.0"},
        )
    finally:
        server.stop()
    assert status == 200, body
    assert json.loads(body) == {
        "uri": "/v1/blocks/sub-key/sub-c-f/api/items/7",
        "path": "/items/7",
        "agent": "my-app/1.0",
        "header": "my-app/1.0",
    }


def test_a_python_handler_traceback_shows_only_its_own_frames(harness, write_handler):
    handler = write_handler(
        "import traceback\nfrom pfunc import require\n\ndb = require('kvstore')\n\n\n"
        "async def handler(request):\n"
        "    try:\n"
        "        await db.set_item('k', {'a': 1})\n"
        "    except TypeError:\n"
        "        request.message = {'tb': traceback.format_exc()}\n"
        "    return request.ok()\n",
        "tb.py",
    )
    result = harness.run(handler)
    assert result.outcome == "ok", result.error
    frames = [line for line in result.message["tb"].splitlines() if line.startswith("  File ")]
    assert len(frames) == 1 and "tb.py" in frames[0] and "pfunc" not in result.message["tb"]


def test_a_call_that_fails_inside_pfunc_is_not_worded_as_the_handlers_call(harness, write_handler):
    """With Promise replaced, request.ok() fails inside pfunc's side: the error is not
    "request.ok is not a function" (it is one), and the warning names what was replaced."""
    source = (
        "export default (request) => {\n  globalThis.Promise = 5;\n  return request.ok();\n};\n"
    )
    result = harness.run(write_handler(source, "promise.js"))
    assert result.error is not None and result.error.line == 3
    assert "request.ok" not in result.error.message, result.error.message
    assert any("replaced globalThis.Promise" in warning for warning in result.warnings)


def test_answers_are_spaced_as_each_pubnub_service_writes_them(tmp_path):
    """Publish, subscribe and history answer compact JSON (`[1,"Sent","…"]` in every SDK's
    fixtures); Presence puts a space after its separators. A client logging the raw answer
    sees PubNub's bytes."""
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-f"\npublish_key = "pub-c-f"\n'
    )
    server = InProcessDev(tmp_path)
    try:
        _, _, published = server.request("GET", "/publish/pub-c-f/sub-c-f/0/room/0/%22hi%22")
        _, _, handshake = server.request("GET", "/v2/subscribe/sub-c-f/room/0?uuid=ada")
        _, _, history = server.request("GET", "/v2/history/sub-key/sub-c-f/channel/room")
        _, _, refused = server.request("GET", "/publish/pub-c-f/sub-c-wrong/0/room/0/1")
        _, _, heartbeat = server.request(
            "GET", "/v2/presence/sub-key/sub-c-f/channel/room/heartbeat?uuid=ada"
        )
    finally:
        server.stop()
    timetoken = json.loads(published)[2]
    assert published == f'[1,"Sent","{timetoken}"]'
    assert handshake.startswith('{"t":{"t":"') and handshake.endswith('"r":1},"m":[]}')
    assert history == f'[["hi"],{timetoken},{timetoken}]'
    assert ", " not in refused and json.loads(refused)["status"] == 400
    assert heartbeat == '{"status": 200, "message": "OK", "service": "Presence"}'


def test_a_failed_host_call_is_placed_at_the_call_not_inside_its_arguments(harness, write_handler):
    """QuickJS places a call at the last place its arguments recorded: a refused
    `xhr.fetch(url + encodeURIComponent(q))` pointed at `q`, which reads as if
    encodeURIComponent had failed. The report points at the method called, as V8 does."""
    source = (
        'const xhr = require("xhr"), db = require("kvstore");\n'
        "export default async (request) => {\n"
        "  if (request.message.kv) {\n"
        '    await db.set("k:" + String(request.message.q), undefined);\n'
        "  }\n"
        '  return xhr.fetch("https://api.example.com/x?q=" + encodeURIComponent('
        "request.message.q)).then(() => request.ok());\n"
        "};\n"
    )
    handler = write_handler(source, "placed_call.js")
    kv = harness.run(handler, message={"q": "hi", "kv": True}).error
    assert (kv.line, kv.column) == (4, 14), kv  # at set, not at undefined
    fetch = harness.run(handler, message={"q": "hi"}).error
    assert (fetch.line, fetch.column) == (6, 14), fetch  # at fetch, not at request.message.q


V8_NAMES = """
export default (request) => {
  const o = { f: () => o, q: 1 };
  const five = 5;
  const calls = [
    () => new five(),
    () => o.f(")").q(),
    () => o.f({ x: "(" }).q(),
    () => o.n(Object.prototype.hasOwnProperty.call(o, "a")),
    () => o.n(Math.max.apply(null, [1, 2])),
    () => "abc".foo(),
    () => o.f(1) // the next call
      .zz(),
  ];
  request.message = calls.map((call) => { try { call(); } catch (e) { return e.message; } });
  return request.ok();
};
"""


def test_callees_are_named_as_v8_names_them(harness, write_handler):
    """Found comparing with Node 20: QuickJS says "not a function" for `new five()`,
    where V8 says "five is not a constructor"; a ( inside a string argument is no call;
    a global's inherited call/apply is a function, so the enclosing o.n failed."""
    assert caught_messages(harness, write_handler(V8_NAMES, "v8_names.js")) == [
        "five is not a constructor",
        "o.f(...).q is not a function",
        "o.f(...).q is not a function",
        "o.n is not a function",
        "o.n is not a function",
        '"abc".foo is not a function',  # a literal's method
        "o.f(...).zz is not a function",  # a chain across a commented line
    ]


def test_columns_count_characters_as_v8_does_not_utf8_bytes(harness, write_handler):
    """QuickJS counts a column in UTF-8 bytes: five "é" earlier on the line moved a load
    error's caret, and a runtime error's, five places right (and named a later call)."""
    broken = 'export default (request) => {\n  const s = "ééééé"; const t = ;\n};\n'
    error = harness.run(write_handler(broken, "load_accents.js")).error
    assert (error.line, error.column) == (2, 32), error
    failing = (
        "export default (request) => {\n"
        '  const o = { f: () => 1 }; const s = "ééééé"; o.n(); o.f(1);\n'
        "};\n"
    )
    error = harness.run(write_handler(failing, "run_accents.js")).error
    assert (error.message, error.line, error.column) == ("o.n is not a function", 2, 50), error


def test_await_outside_an_async_handler_says_to_make_it_async(harness, write_handler):
    source = (
        "export default (request) => {\n  const x = await Promise.resolve(1);\n"
        "  return request.ok();\n};\n"
    )
    error = harness.run(write_handler(source, "not_async.js")).error
    assert (error.type, error.line, error.column) == ("SyntaxError", 2, 13), error
    assert error.message.endswith("export default async (request) =>"), error.message


def test_a_read_of_a_property_of_undefined_is_placed_at_the_property(harness, write_handler):
    """V8 places `request.message.user.name` (user undefined) at `name`; QuickJS placed it
    at `request`, which read as if the request were undefined."""
    source = (
        "export default (request) => {\n  const name = request.message.user.name;\n"
        "  return request.ok({ name });\n};\n"
    )
    error = harness.run(write_handler(source, "property.js")).error
    assert error.message == "Cannot read properties of undefined (reading 'name')"
    assert (error.line, error.column) == (2, 37), error


def test_error_prepare_stack_trace_works_as_v8s_and_can_be_put_back(harness, write_handler):
    """The callsites idiom saves Error.prepareStackTrace, sets its own, and puts the saved
    one back: that must leave stacks as they were (pfunc's dispatcher, read back and set
    again, once called itself until the stack ran out)."""
    handler = write_handler(
        """
        export default (request) => {
          const saved = Error.prepareStackTrace;
          Error.prepareStackTrace = (error, sites) => sites.length > 0;
          const custom = new Error("x").stack;
          Error.prepareStackTrace = saved;
          Error.prepareStackTrace = 5; // not a function: the default trace, as in V8
          const fallback = new Error("y").stack;
          Error.prepareStackTrace = saved;
          request.message = { saved: typeof saved, custom, fallback, after: new Error("z").stack };
          return request.ok();
        };
        """,
        "prepare.js",
    )
    result = harness.run(handler)
    assert result.outcome == "ok", result.error
    message = result.message
    assert (message["saved"], message["custom"]) == ("undefined", True)
    for name in ("fallback", "after"):
        assert message[name].startswith("Error: ") and "prepare.js:" in message[name], message
        assert "__pfunc" not in message[name]


def test_finalization_registry_keeps_its_shape_and_the_engines_own_out_of_reach(
    harness, write_handler
):
    handler = write_handler(
        """
        export default (request) => {
          class Mine extends FinalizationRegistry {}
          const mine = new Mine(() => {});
          request.message = {
            instance: mine instanceof FinalizationRegistry,
            register: typeof mine.register,
            parent: Object.getPrototypeOf(FinalizationRegistry) === Function.prototype,
            name: FinalizationRegistry.name,
          };
          return request.ok();
        };
        """,
        "registry.js",
    )
    result = harness.run(handler)
    assert result.message == {
        "instance": True,
        "register": "function",
        "parent": True,
        "name": "FinalizationRegistry",
    }, result.error
