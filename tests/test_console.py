"""The dev console's server side without a browser: the KV API's validation (hostile
input is a 4xx in PubNub's shape), the console's loopback and same-origin rule, the
blocks-output log stream, and the terminal log's new lines (unrouted requests, errors
with their file and line, reload states that are true). The browser tests are in
test_console_browser.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.dev_harness import InProcessDev
from tests.sdk.pysdk import Recorder, py_client

GREET = """const db = require("kvstore");
export default async (request) => {
  const greeting = (await db.get("greeting")) || { word: "hi" };
  const n = await db.incrCounter("greets");
  console.log("greeting", request.message.text);
  await db.set("last", { text: request.message.text });
  request.message.greeting = greeting.word;
  request.message.n = n;
  return request.ok();
};
"""
API = """export default (request, response) => {
  if (request.query.fail) { null.x; }
  return response.send({ method: request.method }, 201);
};
"""


def write_project(folder: Path) -> None:
    (folder / "handlers").mkdir(exist_ok=True)
    (folder / "handlers" / "greet.js").write_text(GREET)
    (folder / "handlers" / "api.js").write_text(API)
    (folder / "pfunc.toml").write_text(
        '[project]\nname = "demo"\npublish_key = "pub-c-demo"\nsubscribe_key = "sub-c-demo"\n\n'
        '[[functions]]\nname = "greet"\nfile = "handlers/greet.js"\nevent = "before-publish"\n'
        'channels = ["chat"]\n\n'
        '[[functions]]\nname = "api"\nfile = "handlers/api.js"\nevent = "on-request"\npath = "api"\n'
    )


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("console-api")
    write_project(folder)
    server = InProcessDev(folder)
    yield server
    server.stop()


def kv(dev: InProcessDev, body: bytes, headers: dict[str, str] | None = None):
    status, _, text = dev.request("POST", "/pfunc/console/kv", body, headers)
    return status, json.loads(text)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"op": "set"}',
        b'{"op": "set", "key": "k", "value": "{bad"}',
        b'{"op": "set", "key": "k", "value": {"a": 1}}',
        b'{"op": "set", "key": "k", "value": "1", "ttl": "soon"}',
        b'{"op": "set", "key": "", "value": "1"}',
        b'{"op": "set", "key": "' + b"k" * 5000 + b'", "value": "1"}',
        b'{"op": "set", "key": "big", "value": "\\"' + b"x" * 40000 + b'\\""}',
        b'{"op": "incr", "key": "c", "amount": 1.5}',
        b'{"op": "incr", "key": "c", "amount": 100000000000000000000000}',
        b'{"op": "drop", "key": "k"}',
        b'{"op": "delete", "key": 7}',
    ],
)
def test_hostile_kv_changes_are_refused_in_pubnubs_shape(dev: InProcessDev, body: bytes) -> None:
    status, answer = kv(dev, body)
    assert status == 400, answer
    assert answer["error"] is True and answer["message"]


def test_kv_changes_use_kvstores_limits_and_list_with_size_and_ttl(dev: InProcessDev) -> None:
    status, answer = kv(dev, b'{"op": "set", "key": "cfg", "value": "{\\"on\\": true}", "ttl": 5}')
    assert status == 200, answer
    status, answer = kv(dev, b'{"op": "set", "key": "cfg2", "value": "1", "ttl": 999999999}')
    assert status == 200 and "clamped" in answer["warnings"][0]
    status, _, text = dev.request("GET", "/pfunc/console/kv?space=items&prefix=cfg&limit=1")
    page = json.loads(text)
    assert page["rows"][0]["key"] == "cfg" and page["rows"][0]["value"] == {"on": True}
    assert 0 < page["rows"][0]["ttl_seconds"] <= 300 and page["rows"][0]["size"] == 11
    assert page["next"] == "cfg"
    status, _, text = dev.request("GET", "/pfunc/console/kv?space=items&prefix=cfg&after=cfg")
    assert [row["key"] for row in json.loads(text)["rows"]] == ["cfg2"]
    assert kv(dev, b'{"op": "incr", "key": "hits", "amount": 3}')[1]["value"] == 3
    assert kv(dev, b'{"op": "delete", "key": "cfg2"}')[0] == 200
    assert dev.request("GET", "/pfunc/console/kv?space=nope")[0] == 400
    assert dev.request("GET", "/pfunc/console/kv?limit=x")[0] == 400


def test_the_console_answers_its_own_page_only(dev: InProcessDev) -> None:
    status, _, text = dev.request(
        "POST", "/pfunc/console/kv", b'{"op":"delete","key":"k"}', {"Origin": "http://evil.test"}
    )
    assert status == 403 and "evil.test" in json.loads(text)["message"]
    status, _, _ = dev.request("GET", "/", headers={"Host": "attacker.example:80"})
    assert status == 403  # a DNS-rebound name is not this machine
    status, _, text = dev.request("GET", "/")
    assert status == 200 and "pfunc/console/assets/app.js" in text
    assert dev.request("GET", "/pfunc/console/assets/../../state.py")[0] == 404


def test_running_a_function_by_hand_answers_no_other_sites_page(dev: InProcessDev) -> None:
    """POST /pfunc/run is for curl and the console: a page of another site (a plain
    text POST needs no preflight) or a DNS-rebound name must not run functions."""
    foreign = {"Origin": "http://evil.test", "Content-Type": "text/plain"}
    status, _, text = dev.request("POST", "/pfunc/run/greet", b"{}", foreign)
    assert status == 403 and "evil.test" in json.loads(text)["message"]
    rebound = {"Host": f"rebind.evil.test:{dev.port}"}
    assert dev.request("POST", "/pfunc/run/greet", b"{}", rebound)[0] == 403
    assert dev.request("GET", "/pfunc/status", headers={"Origin": "http://evil.test"})[0] == 403
    status, _, _ = dev.request("POST", "/pfunc/run/greet", b"{}")  # curl sends no Origin
    assert status == 200
    own = {"Origin": f"http://127.0.0.1:{dev.port}"}  # the console's page
    assert dev.request("POST", "/pfunc/run/greet", b"{}", own)[0] == 200


def test_console_lines_stream_to_blocks_output(dev: InProcessDev) -> None:
    watcher = py_client(dev.port, ("pub-c-demo", "sub-c-demo"), "watcher")
    recorder = Recorder()
    watcher.add_listener(recorder)
    watcher.subscribe().channels(["blocks-output-greet"]).execute()
    try:
        time.sleep(0.5)  # the subscribe's first long-poll is under way
        dev.type('run greet {"message": {"text": "logged"}}')
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            lines = [e.message for kind, e in recorder.events if kind == "message"]
            if lines:
                break
            time.sleep(0.05)
        assert lines[0] == {
            "function": "greet",
            "event": "before-publish",
            "level": "log",
            "message": "greeting logged",
        }
    finally:
        watcher.unsubscribe_all()
        watcher.stop()
    _, _, text = dev.request("GET", "/v3/history/sub-key/sub-c-demo/channel/blocks-output-greet")
    assert json.loads(text)["channels"] == {}  # the log stream is not stored


def test_terminal_events_for_unrouted_requests_and_errors(dev: InProcessDev) -> None:
    assert dev.request("GET", "/nowhere/at/all")[0] == 404
    dev.wait_for(lambda e: e["type"] == "unrouted" and e["path"] == "/nowhere/at/all")
    dev.request("GET", "/v1/blocks/sub-key/sub-c-demo/api?fail=1")
    failed = dev.wait_for(lambda e: e["type"] == "execution" and e["outcome"] == "error")
    assert failed["method"] == "GET" and failed["error"]["line"] == 2
    assert failed["status"] == 500  # what its client was answered (the log had none)
    dev.request("POST", "/v1/blocks/sub-key/sub-c-demo/api", b"{}")
    answered = dev.wait_for(lambda e: e["type"] == "execution" and e["outcome"] == "response")
    assert answered["status"] == 201 and answered["method"] == "POST"


def test_reload_states_are_true(dev: InProcessDev) -> None:
    handler = dev.folder / "handlers" / "api.js"
    handler.write_text("export default (request, response) => {\n  return response.send(;\n};\n")
    failed = dev.wait_for(lambda e: e["type"] == "reload" and not e["ok"], timeout=10)
    assert failed["serving"] is True  # the older version loads and keeps serving
    handler.write_text(API)
    dev.wait_for(lambda e: e["type"] == "reload" and e["ok"], timeout=10)
    # A save that does not load leaves the last good version serving: its errors show
    # the code that ran, not the file as it now is (two lines longer, and broken).
    handler.write_text("// a\n// b\n" + API.replace("201);", "201;"))
    dev.wait_for(lambda e: e["type"] == "reload" and not e["ok"], timeout=10)
    dev.request("GET", "/v1/blocks/sub-key/sub-c-demo/api?fail=1")
    failed = dev.wait_for(lambda e: e["type"] == "execution" and e["outcome"] == "error")
    marked = next(line for line in failed["frame"].splitlines() if line.startswith("  > 2 |"))
    assert "null.x" in marked, failed["frame"]
    handler.write_text(API)
    dev.wait_for(lambda e: e["type"] == "reload" and e["ok"], timeout=10)
    config = dev.folder / "pfunc.toml"
    text = config.read_text()
    config.write_text(
        text + '\n[[functions]]\nname = "later"\nfile = "handlers/later.js"\n'
        'event = "after-publish"\nchannels = ["x"]\n'
    )
    reloaded = dev.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith("pfunc.toml"))
    assert "handlers/later.js does not exist" in reloaded["warnings"][0]
    config.write_text(text)
    dev.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith("pfunc.toml"))


def test_an_errors_code_frame_is_the_code_that_ran_not_the_file_as_edited_since(
    harness, write_handler
) -> None:
    import io

    from pfunc.code_frames import error_frame
    from pfunc.server.console_hub import ConsoleHub
    from pfunc.server.log import DevLog, execution_event

    padding = "// " + "x" * 100_000 + "\n"
    handler = write_handler(
        'export default () => {\n  throw new Error("boom");\n};\n' + padding, "boom.js"
    )
    result = harness.run(handler)
    assert result.error is not None and result.error.line == 2
    # What the result keeps is the frame, not the code: the console keeps 1,000 results,
    # and a handler saved again and again would otherwise stay in memory in every version.
    assert not any(isinstance(v, str) and len(v) > 10_000 for v in vars(result).values())
    # Saved since (or before it ended, with a failed reload leaving this version serving):
    # two lines above, so line 2 of the file is now a comment.
    handler.write_text("// one\n// two\n" + handler.read_text())
    hub = ConsoleHub()
    hub.frame_of = error_frame
    hub.add_result(result)
    frame = hub.entries[-1].to_json()["frame"]
    assert 'throw new Error("boom")' in frame.splitlines()[1]  # the line of the frame's mark
    # The dev log's line shows the same frame; its NDJSON form has no frame.
    event = execution_event(result)
    for as_json in (False, True):
        out = io.StringIO()
        log = DevLog(as_json, out)
        log(event)
        log._flush()
        text = out.getvalue()
        if as_json:
            assert "frame" not in json.loads(text) and json.loads(text)["error"]["line"] == 2
        else:
            marked = next(line for line in text.splitlines() if "> 2 |" in line)
            assert 'throw new Error("boom")' in marked, text


def test_the_console_keeps_what_fits_its_byte_budget_not_1000_floods(harness, write_handler):
    """1,000 kept executions of megabytes of logs each grew pfunc dev past a gigabyte."""
    from pfunc.server.console_hub import ConsoleHub

    handler = write_handler(
        "export default (request) => {\n"
        "  for (let i = 0; i < 100; i++) console.log('y'.repeat(10000));\n"
        "  return request.ok();\n};\n",
        "chatty.js",
    )
    result = harness.run(handler)
    hub = ConsoleHub(keep_bytes=10 << 20)  # ~1 MB each: about ten fit
    for _ in range(50):
        hub.add_result(result)
    assert 5 <= len(hub.entries) <= 10
    ids = [entry.id for entry in hub.entries]
    assert ids == sorted(ids) and ids[-1] - ids[0] == len(ids) - 1  # the newest, in order
    # A message grown into an object of megabytes weighs what it holds (it weighed 512).
    grower = write_handler(
        "export default (request) => {\n"
        "  request.message = { big: 'x'.repeat(1 << 20) };\n"
        "  return request.ok();\n};\n",
        "grower.js",
    )
    hub = ConsoleHub(keep_bytes=10 << 20)
    grown = harness.run(grower)
    for _ in range(50):
        hub.add_result(grown)
    assert 3 <= len(hub.entries) <= 10


def test_the_console_weighs_what_the_event_and_the_calls_hold_not_only_the_report(
    harness, write_handler
):
    """Weighed from the texts the sandbox exchanged (not by walking the result), an
    execution still weighs the body it was sent and the keys of the calls it made, though
    its report is small."""
    from pfunc.result import Result
    from pfunc.server.console_hub import ConsoleHub, Entry, weight

    quiet = write_handler("export default (request, response) => response.send('ok');\n", "q.js")
    big_body = harness.request(quiet, method="POST", body="b" * (1 << 20))
    assert big_body.outcome == "response" and big_body.held_size is not None
    assert weight(Entry(1, 0, big_body)) > 1 << 20
    hub = ConsoleHub(keep_bytes=10 << 20)
    for _ in range(50):
        hub.add_result(big_body)
    assert 5 <= len(hub.entries) <= 10

    def looking_up(length: int) -> Result:
        handler = write_handler(
            "const db = require('kvstore');\n"
            "export default async (request) => {\n"
            f"  for (let i = 0; i < 3; i++) await db.get(i + 'k'.repeat({length}))"
            ".catch(() => null);\n"
            "  return request.ok();\n};\n",
            f"keys{length}.js",
        )
        return harness.run(handler)

    long_keys, short_keys = looking_up(400), looking_up(1)
    assert len(long_keys.operations["calls"]) == 3 == len(short_keys.operations["calls"])
    assert weight(Entry(2, 0, long_keys)) - weight(Entry(3, 0, short_keys)) >= 3 * 399


@pytest.mark.parametrize(
    "items",
    [[{}] * 10_000, list(range(10_000)), [{"a": [1]}] * 5_000],
    ids=["empty-objects", "small-ints", "nested"],
)
def test_a_message_of_many_small_items_weighs_what_walking_it_gave(harness, write_handler, items):
    """Weighed by its texts' characters alone, a message of 10,000 {} (30 KB of JSON)
    weighed less than half what walking it gave, and the console kept twice as many."""
    from pfunc.server.console_hub import KEEP_BYTES, Entry, size_of, weight

    handler = write_handler("export default (request) => request.ok();\n", "pass.js")
    result = harness.run(handler, message={"items": items})
    assert result.outcome == "ok" and result.held_size is not None
    walked = size_of(
        (result.message, result.received.message, result.logs, result.operations), KEEP_BYTES
    )
    assert weight(Entry(1, 0, result)) >= walked


@pytest.mark.parametrize(
    ("saved", "read", "reloaded", "started", "current"),
    [
        (0, 0, 0, 200, True),  # nothing saved since the server started
        (100, 100, 130, 200, True),  # saved and reloaded before it started
        (100, 0, 50, 105, False),  # saved just before, its reload not yet done: old code ran
        (100, 100, 210, 150, False),  # reloaded only after it started
        (300, 100, 130, 200, False),  # saved after it started
        (100, 60, 130, 200, False),  # the reload that ended read an earlier save only
    ],
)
def test_an_execution_ran_the_files_as_they_are_only_if_every_save_was_reloaded_before(
    saved, read, reloaded, started, current
):
    """A request 5 ms after a save ran the old code (the reload is debounced) and was
    recorded against the new file, an expectation dropped. A save made while a reload
    ran is read by the next one, not by that one."""
    from types import SimpleNamespace

    from pfunc.server.state import DevState

    state = SimpleNamespace(last_save_ms=saved, reloaded_save_ms=read, last_reload_ms=reloaded)
    assert DevState.ran_current_code(state, started) is current  # type: ignore[arg-type]


def test_weighing_a_message_of_millions_of_items_stops_early_and_counts_it_big():
    """A handler's message of a million small items took a second to weigh, on the
    server's loop, at every execution: it is taken to be as big as allowed instead."""
    from pfunc.server.console_hub import ITEMS_WALKED, size_of

    limit = 64 << 20
    assert size_of([[] for _ in range(3 * ITEMS_WALKED)], limit) > limit
    assert size_of({"text": "x" * 1000, "n": [1, 2, 3]}, limit) < 2000


def _resident_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_pages_that_never_read_hold_no_copy_of_the_backlog_and_are_counted(tmp_path):
    """The backlog is written entry by entry from the texts every page shares: ten pages
    that open the stream and never read (a stuck tab, a hostile client) cost one entry
    each, where each had held its own copy of the whole backlog (50 such pages over ~60
    MB of executions took pfunc dev to 4 GB). Past MAX_PAGES, a page is told so, as an
    event its EventSource reconnects after (a refused answer would stop it for good)."""
    import socket

    from pfunc.server.console_api import MAX_PAGES

    write_project(tmp_path)
    server = InProcessDev(tmp_path)
    hub = server.server.console.hub
    sockets: list[socket.socket] = []
    request = b"GET /pfunc/console/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    def open_pages(count: int) -> None:
        for _ in range(count):
            connection = socket.create_connection(("127.0.0.1", server.port))
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            connection.sendall(request)
            sockets.append(connection)
        deadline = time.monotonic() + 10
        while len(hub.clients) < len(sockets):  # each page's stream has begun
            assert time.monotonic() < deadline, "the pages' streams did not begin"
            time.sleep(0.05)

    try:
        body = json.dumps({"text": "x" * 1_000_000}).encode()
        for _ in range(30):  # ~60 MB of kept text: the body as received and as logged
            assert server.request("POST", "/v1/blocks/sub-key/sub-c-demo/api", body)[0] == 201
        before = _resident_mib()
        open_pages(10)
        time.sleep(0.5)  # each has been written what its socket takes, and waits on it
        assert _resident_mib() - before < 150
        open_pages(MAX_PAGES - 10)
        probe = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        probe.sendall(request)
        answer = b""
        while b"event: refused" not in answer and b"event: backlog" not in answer:
            chunk = probe.recv(65536)
            assert chunk, answer
            answer += chunk
        assert b"200 OK" in answer and b"event: refused" in answer, answer[:300]
        probe.close()
    finally:
        for connection in sockets:
            connection.close()
        server.stop()


def test_a_functions_load_time_is_when_it_loaded_not_when_the_page_asked(tmp_path):
    """The Functions view said "loaded at" the moment the page first asked, later than
    the executions the function had already served."""
    write_project(tmp_path)
    server = InProcessDev(tmp_path)
    try:
        status, _, _ = server.request("POST", "/v1/blocks/sub-key/sub-c-demo/api", b"{}")
        assert status == 201
        served_by = time.time() * 1000
        time.sleep(1.0)
        _, _, body = server.request("GET", "/pfunc/console/functions")
        api = next(f for f in json.loads(body)["functions"] if f["name"] == "api")
        assert api["state"] == "loaded" and api["loaded_at"] <= served_by, api
    finally:
        server.stop()


def test_a_function_put_back_in_pfunc_toml_shows_how_its_file_loads_now(tmp_path):
    """A function taken out of pfunc.toml and put back after its file changed: the view
    kept the state from before (loaded, while every request failed to compile; or failed,
    while it served)."""
    write_project(tmp_path)
    config, handler = tmp_path / "pfunc.toml", tmp_path / "handlers" / "api.js"
    served = config.read_text()
    without_api = served[: served.index('[[functions]]\nname = "api"')]
    server = InProcessDev(tmp_path)

    def api_state() -> str:
        _, _, body = server.request("GET", "/pfunc/console/functions")
        return next(f for f in json.loads(body)["functions"] if f["name"] == "api")["state"]

    def reload_config(text: str) -> None:
        config.write_text(text)
        server.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith("pfunc.toml"))

    try:
        assert api_state() == "loaded"
        for source, state in (("export default () => { return (; };\n", "failed"), (API, "loaded")):
            reload_config(without_api)
            handler.write_text(source)  # no function uses it: nothing reloads it
            reload_config(served)
            assert api_state() == state
            status, _, _ = server.request("POST", "/v1/blocks/sub-key/sub-c-demo/api", b"{}")
            assert status == (201 if state == "loaded" else 500)
    finally:
        server.stop()


def test_a_stored_value_too_deep_to_read_back_shows_as_a_note_not_a_500(
    dev: InProcessDev,
) -> None:
    """A value an older pfunc let a handler store (~1,000 deep) made the KV page a 500."""
    import sqlite3

    from pfunc.project import DEFAULT_KV

    assert kv(dev, b'{"op": "set", "key": "deepnote0", "value": "1"}')[0] == 200
    with sqlite3.connect(dev.folder / DEFAULT_KV) as conn:
        conn.execute(
            "INSERT INTO items SELECT keyset, 'deepnote1', ?, expires_at FROM items "
            "WHERE key = 'deepnote0'",
            ("[" * 1000 + "0" + "]" * 1000,),
        )
    status, _, text = dev.request("GET", "/pfunc/console/kv?space=items&prefix=deepnote")
    assert status == 200, text
    rows = json.loads(text)["rows"]
    assert rows[0]["value"] == 1
    assert rows[1]["value"].startswith("(cannot be read back: nested more deeply")


def test_a_recorder_gets_every_entry_even_those_the_hub_no_longer_keeps(harness, write_handler):
    """--record looked each execution up among the hub's newest 1,000 entries when its
    turn came: behind by more, it skipped them without a word (11,000 of 13,639 under
    load). The recorder is now given the entry itself."""
    from pfunc.server.console_hub import ConsoleHub

    handler = write_handler("export default (request) => request.ok();")
    hub = ConsoleHub(keep=2)
    given = []
    hub.recorders.append(given.append)
    results = [harness.run(handler, message={"n": n}) for n in range(5)]
    for result in results:
        hub.add_result(result)
    assert len(hub.entries) == 2
    assert [entry.result for entry in given] == results


def test_a_failed_requests_status_is_the_one_its_client_got(harness, write_handler) -> None:
    """The dev log and the console showed no status for an on-request execution that
    failed: its client's 500 and a time limit's 503 looked alike."""
    from pfunc.events import EventSpec, build_event
    from pfunc.server.console_hub import ConsoleHub
    from pfunc.server.log import execution_event

    harness.limit_overrides = {"timeout": 0.2}

    def request(source: str, name: str):
        return harness.run(write_handler(source, name), build_event("on-request", EventSpec()))

    thrown = request("export default () => { null.x; };", "thrown.js")
    looped = request("export default () => { for (;;) {} };", "loop.js")
    answered = request("export default (q, r) => r.send('no', 404);", "answered.js")
    hub = ConsoleHub()
    for result, status in ((thrown, 500), (looped, 503), (answered, 404)):
        assert result.http_status == status
        assert execution_event(result)["status"] == status
        hub.add_result(result)
        assert hub.entries[-1].to_json()["status"] == status


def test_an_execution_no_page_watched_is_not_saved_with_a_made_up_store(
    dev: InProcessDev,
) -> None:
    """With no console page open nothing notes what an execution finds in the store, and
    its scenario had taken its seeds and the KV expected from the replay: a counter the
    execution left at 3 was expected at 1. It is refused, saying why."""
    dev.type('run greet {"message": {"text": "unwatched"}}')
    dev.wait_for(
        lambda e: e["type"] == "execution" and e.get("message", {}).get("text") == "unwatched"
    )
    entry = dev.server.console.hub.entries[-1]
    body = json.dumps({"id": entry.id, "file": "tests/unwatched.test.toml"}).encode()
    status, _, text = dev.request("POST", "/pfunc/console/scenario", body)
    assert status == 400 and "while no console page was open" in text, text
    assert not (dev.folder / "tests" / "unwatched.test.toml").exists()


def test_the_functions_list_does_not_wait_for_a_load_that_runs_long(
    tmp_path: Path, monkeypatch
) -> None:
    """The list waited for each function whose top-level code loops, one after another,
    to its time limit (20 s for two): the page showed nothing, the good function neither.
    It answers in a moment, such a function "loading", and the page is told when its
    state is known."""
    from pfunc.server import console_api

    monkeypatch.setattr(console_api, "LOAD_WAIT_SECONDS", 0.3, raising=False)
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-l"\n\n[limits]\ntimeout = 1\n'
        + "".join(
            f'[[functions]]\nname = "{name}"\nfile = "{name}.js"\nevent = "on-request"\n'
            f'path = "{name}"\n'
            for name in ("spin1", "spin2", "good")
        )
    )
    for name in ("spin1", "spin2"):
        (tmp_path / f"{name}.js").write_text("for (;;) {}\nexport default (q, r) => r.send('x');\n")
    (tmp_path / "good.js").write_text("export default (q, r) => r.send('ok');\n")
    server = InProcessDev(tmp_path)
    try:
        listed = json.loads(server.request("GET", "/pfunc/console/functions")[2])["functions"]
        # Answered while both loads still ran (each ends only at its 1 s limit).
        states = {f["name"]: f["state"] for f in listed}
        assert states == {"spin1": "loading", "spin2": "loading", "good": "loaded"}, states
        deadline = time.monotonic() + 10
        while states["spin1"] == "loading" or states["spin2"] == "loading":
            assert time.monotonic() < deadline, states
            time.sleep(0.1)
            listed = json.loads(server.request("GET", "/pfunc/console/functions")[2])
            states = {f["name"]: f["state"] for f in listed["functions"]}
        assert states == {"spin1": "failed", "spin2": "failed", "good": "loaded"}, states
    finally:
        server.stop()


def test_a_file_saved_as_it_was_keeps_its_load_time(dev: InProcessDev) -> None:
    """A save that changes nothing reloads nothing (the warm instances keep their state),
    yet the log said "reloaded" and the Functions view "loaded at" the save's time."""

    def loaded_at() -> int:
        listed = json.loads(dev.request("GET", "/pfunc/console/functions")[2])["functions"]
        return next(f["loaded_at"] for f in listed if f["name"] == "api")

    before = loaded_at()
    handler = dev.folder / "handlers" / "api.js"
    handler.write_text(handler.read_text())
    event = dev.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith("api.js"))
    assert event.get("unchanged") is True, event
    assert loaded_at() == before


def test_a_load_the_page_waits_for_never_overwrites_a_newer_reload(
    tmp_path: Path, monkeypatch
) -> None:
    """A function listed "loading" (its top-level code loops) and then fixed: the fix's
    reload said loaded, then the old load ended at its limit and wrote "failed" over it,
    for good, while requests answered the fix."""
    from pfunc.server import console_api

    monkeypatch.setattr(console_api, "LOAD_WAIT_SECONDS", 0.2)
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-l"\n\n[limits]\ntimeout = 1.5\n'
        '[[functions]]\nname = "a"\nfile = "a.js"\nevent = "on-request"\npath = "a"\n'
    )
    (tmp_path / "a.js").write_text("for (;;) {}\nexport default (q, r) => r.send('x');\n")
    server = InProcessDev(tmp_path)

    def state() -> str:
        listed = json.loads(server.request("GET", "/pfunc/console/functions")[2])["functions"]
        return listed[0]["state"]

    try:
        assert state() == "loading"
        assert state() == "loading"  # a second page, while the first one's load runs
        (tmp_path / "a.js").write_text("export default (q, r) => r.send('fixed');\n")
        server.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith("a.js"))
        assert state() == "loaded"
        time.sleep(1.5)  # the looping load has ended at its limit meanwhile
        assert state() == "loaded"
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-l/a")[2] == "fixed"
    finally:
        server.stop()


def test_an_encrypted_file_message_is_not_saved_as_a_scenario_of_another_event(
    tmp_path: Path,
) -> None:
    """The file functions see an SDK's encrypted file message as the one text it is; a
    scenario's publish-file message is a file message's own text, so the saved step
    sent another event (relaxed until it passed). It is refused, saying why."""
    import urllib.parse

    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-p"\npublish_key = "pub-c-p"\n'
        '[[functions]]\nname = "vet"\nfile = "vet.js"\nevent = "before-publish-file"\n'
        'channels = ["docs"]\n'
    )
    (tmp_path / "vet.js").write_text("export default (request) => request.ok();\n")
    server = InProcessDev(tmp_path)
    try:
        cipher = urllib.parse.quote(json.dumps("U2FsdGVkX1+CIPHERTEXT=="))
        path = f"/v1/files/publish-file/pub-c-p/sub-c-p/0/docs/0/{cipher}?uuid=w"
        assert server.request("GET", path)[0] == 200
        server.wait_for(lambda e: e["type"] == "execution")
        entry = server.server.console.hub.entries[-1]
        body = json.dumps({"id": entry.id, "file": "tests/enc.test.toml"}).encode()
        status, _, text = server.request("POST", "/pfunc/console/scenario", body)
        assert status == 400 and "encrypted" in text, text
    finally:
        server.stop()
