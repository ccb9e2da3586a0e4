"""Quick JavaScript functions run on the dev server's own loop (no thread hop), held to
an in-line guard: a slice that outgrows it is stopped and the function goes back to a
thread of its own; an execution that changed nothing yet starts again there, so a
runaway still ends as production ends it, and other requests keep being served."""

from __future__ import annotations

import contextlib
import json
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pfunc.sandbox.inline import PROMOTE_AFTER
from tests.dev_harness import InProcessDev

# A long slice of JavaScript by CPU time, which the in-line guard counts (a wait on
# Date.now() is shorter in CPU on a busy machine): ~90 ms here.
BURN = "function burn() { let x = 0; for (let i = 0; i < 2e6; i++) x += i; return x; }\n"

PROJECT = """
[project]
subscribe_key = "sub-c-in"
publish_key = "pub-c-in"

[limits]
timeout = 1

[[functions]]
name = "work"
file = "work.js"
event = "on-request"
path = "work"
"""
# For tests whose point is not the time limit: room for a machine busy with the suite.
ROOMY_PROJECT = PROJECT.replace("timeout = 1", "timeout = 5")
WORK = (
    BURN
    + """
const db = require("kvstore");
export default async (request, response) => {
  if (request.query.mode === "spin") { while (true) {} }
  if (request.query.mode === "write-then-spin") {
    await db.incrCounter("writes");
    burn();
    return response.send({ spun: true });
  }
  const seen = await db.get("seen");
  return response.send({ seen: seen || null });
};
"""
)
URL = "/v1/blocks/sub-key/sub-c-in/work"


def promoted(server: InProcessDev) -> bool:
    function = server.server.state.project.function("work")
    return server.server.state.engine.functions.executor(function).policy.inline


def warm(server: InProcessDev) -> None:
    """Quick requests until the function runs in line: PROMOTE_AFTER in a row, and some
    room for a slow one on a loaded machine (one over the CPU bound starts the count again)."""
    function = server.server.state.project.function("work")
    needed = server.server.state.engine.functions.executor(function).policy.promote_after
    for _ in range(5 * needed):  # twice as many after each time it was sent back
        status, _, _ = server.request("GET", URL)
        assert status == 200
        if promoted(server):
            return
    raise AssertionError(f"still on a thread after {5 * needed} quick requests")


def test_a_quick_function_runs_in_line_and_a_runaway_is_moved_to_a_thread(tmp_path: Path):
    (tmp_path / "pfunc.toml").write_text(PROJECT)
    (tmp_path / "work.js").write_text(textwrap.dedent(WORK))
    server = InProcessDev(tmp_path)
    try:
        warm(server)
        assert promoted(server)
        status, _, body = server.request("GET", URL + "?mode=spin")
        # The runaway ran again on a thread, to the profile's time limit, as in production.
        assert status == 503 and "longer than the 1 s time limit" in json.loads(body)["message"]
        assert not promoted(server)
        status, _, body = server.request("GET", URL)
        assert status == 200 and json.loads(body) == {"seen": None}
    finally:
        server.stop()


@contextmanager
def promoted_server(folder: Path, source: str, project: str = PROJECT) -> Iterator[InProcessDev]:
    """A dev server whose function `work` (`source`) already runs in line."""
    (folder / "pfunc.toml").write_text(project)
    (folder / "work.js").write_text(source)
    server = InProcessDev(folder)
    try:
        warm(server)
        yield server
    finally:
        server.stop()


def count_of(folder: Path, key: str) -> int:
    import sqlite3

    with sqlite3.connect(folder / ".pfunc" / "kv.sqlite3") as store:
        row = store.execute("SELECT value FROM counters WHERE key=?", (key,)).fetchone()
    return 0 if row is None else row[0]


def test_a_long_slice_after_a_write_completes_on_a_thread_without_repeating_it(tmp_path: Path):
    """Production runs a handler that writes and then computes for 200 ms to its end: so
    does pfunc dev, though it had been running the function in line. The attempt that
    starts again on a thread is given the write's answer instead of writing again."""
    (tmp_path / "pfunc.toml").write_text(PROJECT)
    (tmp_path / "work.js").write_text(textwrap.dedent(WORK))
    server = InProcessDev(tmp_path)
    try:
        warm(server)
        status, _, body = server.request("GET", URL + "?mode=write-then-spin")
        assert status == 200 and json.loads(body) == {"spun": True}
        assert count_of(tmp_path, "writes") == 1
        assert not promoted(server)
        # On a thread now: the same request completes, one write per execution.
        status, _, body = server.request("GET", URL + "?mode=write-then-spin")
        assert status == 200 and json.loads(body) == {"spun": True}
        assert count_of(tmp_path, "writes") == 2
    finally:
        server.stop()


DIVERGING = (
    BURN
    + """
const db = require("kvstore");
const pubnub = require("pubnub");
let executions = 0;  // module state: another count in another context
export default async (request, response) => {
  executions += 1;
  if (request.query.mode === "stamp-then-spin") {  // the clock and randomness are replayed
    await db.incrCounter(`stamp-${Date.now()}-${Math.random()}-${new Date().toISOString()}`);
    burn();
    return response.send({ spun: true });
  }
  if (request.query.mode === "many-reads-then-spin") {  // more reads than values kept
    for (let i = 0; i < 21000; i++) { Date.now(); Math.random(); }
    await db.incrCounter(`stamp-${Date.now()}-${Math.random()}`);
    burn();
    return response.send({ spun: true });
  }
  if (request.query.mode === "count-then-spin") {  // module state is not
    await db.incrCounter("count-" + executions);
    burn();
    return response.send({ spun: true });
  }
  if (request.query.mode === "publish-then-spin") {
    pubnub.publish({ channel: "side", message: { n: 1 } });  // still in flight at the stop:
    await db.get("seen");  // answered at once, with no turn of the loop for the publish
    burn();
    return response.send({ spun: true });
  }
  return response.send({ seen: (await db.get("seen")) || null });
};
"""
)


def keys_like(folder: Path, pattern: str) -> list[str]:
    import sqlite3

    with sqlite3.connect(folder / ".pfunc" / "kv.sqlite3") as store:
        return [
            key for (key,) in store.execute("SELECT key FROM counters WHERE key LIKE ?", (pattern,))
        ]


def test_a_re_run_reads_the_clock_and_randomness_the_first_attempt_read(tmp_path: Path):
    """A write keyed by Date.now(), Math.random() and new Date(), then a long slice: the
    attempt on a thread reads the same values, makes the same call, and is given its
    answer; the write happens once and the execution completes."""
    with promoted_server(tmp_path, DIVERGING, ROOMY_PROJECT) as server:
        status, _, body = server.request("GET", URL + "?mode=stamp-then-spin")
        assert status == 200 and json.loads(body) == {"spun": True}
        assert len(keys_like(tmp_path, "stamp-%")) == 1
        assert not promoted(server)


def test_a_re_run_reads_them_again_however_many_the_first_attempt_read(tmp_path: Path):
    """Tens of thousands of clock and random reads before the write: the clock is kept as
    runs of one value, and Math.random() as its generator's state, so the attempt on a
    thread still reads what the first read (once, past 20,000 values it read live ones,
    and a write built from them ended as an error)."""
    # The two attempts of 21,000 reads each fit 1 s alone, not always on a machine busy
    # with the rest of the suite (the point here is what is read again).
    with promoted_server(tmp_path, DIVERGING, ROOMY_PROJECT) as server:
        status, _, body = server.request("GET", URL + "?mode=many-reads-then-spin")
        assert status == 200 and json.loads(body) == {"spun": True}
        assert len(keys_like(tmp_path, "stamp-%")) == 1
        assert not promoted(server)


def test_a_re_run_that_makes_other_calls_ends_as_an_error_not_a_second_change(tmp_path: Path):
    with promoted_server(tmp_path, DIVERGING) as server:
        for _ in range(2):  # the in-line context counts these; a new one on a thread would not
            assert server.request("GET", URL)[0] == 200
        status, _, body = server.request("GET", URL + "?mode=count-then-spin")
        message = json.loads(body)["message"]
        assert status == 500 and "made other calls" in message
        assert "send the event again" in message.lower()
        assert len(keys_like(tmp_path, "count-%")) == 1  # the first attempt's, and only it
        assert not promoted(server)


def test_a_publish_under_way_at_the_stop_finishes_and_is_not_repeated(tmp_path: Path):
    with promoted_server(tmp_path, DIVERGING) as server:
        status, _, body = server.request("GET", URL + "?mode=publish-then-spin")
        assert status == 200 and json.loads(body) == {"spun": True}
        status, _, body = server.request("GET", "/v2/history/sub-key/sub-c-in/channel/side")
        messages = json.loads(body)[0]
        assert status == 200 and messages == [{"n": 1}]


def test_a_request_still_under_way_at_the_deadline_ends_as_an_error(tmp_path: Path):
    """Whether a request that never answered reached its server is unknown: the execution
    is neither started again (it would send it twice) nor given an answer."""
    import socket

    silent = socket.socket()  # accepts connections (the backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    fetching = DIVERGING.replace(
        'pubnub.publish({ channel: "side", message: { n: 1 } });',
        f'require("xhr").fetch("http://127.0.0.1:{silent.getsockname()[1]}/");',
    )
    try:
        with promoted_server(tmp_path, fetching) as server:
            status, _, body = server.request("GET", URL + "?mode=publish-then-spin")
            message = json.loads(body).get("message", body)
            # The fetch's own timeout is bounded by the same deadline: whichever is seen
            # first, the execution ends as an error at the deadline.
            assert status == (503 if "time limit" in message else 500), message
            assert "still under way" in message or "time limit" in message, message
            assert not promoted(server)
        silent.settimeout(0)
        connections = []
        with contextlib.suppress(BlockingIOError):
            while True:
                connections.append(silent.accept()[0])
        assert len(connections) == 1  # sent once, never again by a second attempt
        for connection in connections:
            connection.close()
    finally:
        silent.close()


def test_an_in_line_loop_of_instant_calls_lets_other_requests_in(tmp_path: Path):
    """Calls answered at once (refused ones, local reads) never leave the loop by
    themselves: an in-line execution hands it back every few milliseconds."""
    import threading

    (tmp_path / "pfunc.toml").write_text(PROJECT)
    (tmp_path / "work.js").write_text(
        textwrap.dedent(WORK).replace(
            'if (request.query.mode === "spin") { while (true) {} }',
            'if (request.query.mode === "retry") { for (;;) { try { await db.get("k"); }'
            " catch (e) {} } }",
        )
    )
    server = InProcessDev(tmp_path)
    try:
        warm(server)
        finished: list[str] = []

        def retry() -> None:
            server.request("GET", URL + "?mode=retry")
            finished.append("retry")

        looping = threading.Thread(target=retry)
        looping.start()
        status, _, _ = server.request("GET", "/time/0")
        finished.append("time")
        looping.join()
        assert status == 200 and finished == ["time", "retry"]
    finally:
        server.stop()


COUNTING = """
let executions = 0;  // module state, as a warm PubNub instance keeps it
console.log("loaded");
export default async (request, response) => {
  executions += 1;
  return response.send({ executions });
};
"""


def logged(server: InProcessDev) -> list[dict]:
    """The log events the server has reported so far."""
    import queue

    events = []
    while True:
        try:
            events.append(server.events.get_nowait())
        except queue.Empty:
            return events


def executor_of(server: InProcessDev):
    function = server.server.state.project.function("work")
    return server.server.state.engine.functions.executor(function)


def test_a_function_keeps_its_module_state_when_it_moves_to_the_loop_and_back(tmp_path: Path):
    """Moving between a thread and the server's loop is pfunc's business, not the
    handler's: the same context moves, so module state goes on and top-level code does
    not run again (once, it reset every function at its 21st execution)."""
    (tmp_path / "pfunc.toml").write_text(PROJECT)
    (tmp_path / "work.js").write_text(COUNTING)
    server = InProcessDev(tmp_path)
    try:
        answers = []
        for _ in range(5 * PROMOTE_AFTER):  # as warm() does: room for a slow one
            answers.append(json.loads(server.request("GET", URL)[2])["executions"])
            if promoted(server):
                break
        assert promoted(server)
        for _ in range(3):  # in line now
            answers.append(json.loads(server.request("GET", URL)[2])["executions"])
        executor_of(server).policy.demote()  # as a slice that neared the guard would
        answers.append(json.loads(server.request("GET", URL)[2])["executions"])
        assert answers == list(range(1, len(answers) + 1))
        loads = [
            event
            for event in logged(server)
            if event.get("type") == "execution" and "loaded" in json.dumps(event["logs"])
        ]
        assert len(loads) == 1  # the top-level code's line, with the first execution only
    finally:
        server.stop()


SLOW_TOP_LEVEL = """
const db = require("kvstore");
let sum = 0;  // about 90 ms of CPU (the guard counts CPU time) every time it loads
for (let i = 0; i < 2e6; i++) sum += i;
export default async (request, response) => {
  if (request.query.url) await require("xhr").fetch(request.query.url);
  return response.send({ n: await db.incrCounter("n") });
};
"""


class SlowServer:
    """A local HTTP server that answers after `seconds`; `reached` is set once a request
    has arrived (the execution that made it is waiting on the network by then)."""

    def __init__(self, seconds: float) -> None:
        import http.server
        import threading
        import time

        reached = self.reached = threading.Event()

        class Slow(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                reached.set()
                time.sleep(seconds)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"

    def close(self) -> None:
        self._server.shutdown()


@contextmanager
def slow_http(seconds: float) -> Iterator[SlowServer]:
    server = SlowServer(seconds)
    try:
        yield server
    finally:
        server.close()


def test_a_function_slow_to_load_keeps_working_once_it_has_been_quick(tmp_path: Path):
    """Its executions are quick, so it is promoted: its loaded context moves to the loop
    (no load to outgrow the guard there). A second context, for an execution that
    overlaps one waiting on the network, would load in line and outgrow the guard: it is
    loaded on a thread, and the function stays on threads until new code loads."""
    import threading

    # (a limit past the slow server's second)
    (tmp_path / "pfunc.toml").write_text(ROOMY_PROJECT)
    (tmp_path / "work.js").write_text(SLOW_TOP_LEVEL)
    server = InProcessDev(tmp_path)
    try:
        answers = [server.request("GET", URL) for _ in range(3 * PROMOTE_AFTER)]
        assert [status for status, _, _ in answers] == [200] * len(answers), answers[-1]
        assert json.loads(answers[-1][2]) == {"n": len(answers)}
        assert promoted(server)
        with slow_http(1.0) as slow:
            waiting: list[tuple[int, dict, str]] = []
            asking = threading.Thread(
                target=lambda: waiting.append(server.request("GET", f"{URL}?url={slow.url}"))
            )
            asking.start()
            # The first holds the loaded context, waiting on the network.
            assert slow.reached.wait(10)
            overlapping = server.request("GET", URL)
            asking.join(10)
        assert overlapping[0] == 200 and waiting[0][0] == 200
        assert not promoted(server)
    finally:
        server.stop()


RELOADED = (
    BURN
    + """
const db = require("kvstore");
export default async (request, response) => {
  if (request.query.mode === "slow") {
    await db.incrCounter("writes");
    await require("xhr").fetch(request.query.url);  // the file is saved meanwhile
    burn();
  }
  return response.send({ version: VERSION });
};
"""
)


def test_an_execution_started_again_runs_the_code_it_began_with(tmp_path: Path):
    """Saved while an execution waits, then the guard stops it: it starts again on a
    thread with its own code, not the new version."""
    import threading

    project = ROOMY_PROJECT
    with (
        slow_http(1.0) as slow,
        promoted_server(tmp_path, RELOADED.replace("VERSION", "1"), project) as server,
    ):
        answer: list[tuple[int, dict, str]] = []
        asking = threading.Thread(
            target=lambda: answer.append(server.request("GET", f"{URL}?mode=slow&url={slow.url}"))
        )
        asking.start()
        assert slow.reached.wait(10)  # it waits on the network: save the file now
        (tmp_path / "work.js").write_text(RELOADED.replace("VERSION", "2"))
        server.wait_for(lambda e: e["type"] == "reload" and e["ok"], timeout=10)
        asking.join(10)
        status, _, body = answer[0]
        assert status == 200 and json.loads(body) == {"version": 1}
        assert count_of(tmp_path, "writes") == 1
        assert json.loads(server.request("GET", URL)[2]) == {"version": 2}


def test_a_re_run_never_repeats_a_write_however_many_reads_came_first(tmp_path: Path):
    """1,100 reads, a write, then a long slice: the attempt on a thread is given all their
    answers in order and performs only what comes after."""
    (tmp_path / "pfunc.toml").write_text(ROOMY_PROJECT)
    (tmp_path / "work.js").write_text(
        textwrap.dedent(WORK).replace(
            'if (request.query.mode === "spin") { while (true) {} }',
            'if (request.query.mode === "many") { for (let i = 0; i < 1100; i++) await db.get("k");'
            ' await db.incrCounter("writes"); burn();'
            " return response.send({ done: true }); }",
        )
    )
    (tmp_path / "pfunc.toml").write_text(
        (tmp_path / "pfunc.toml")
        .read_text()
        .replace("timeout = 5", "timeout = 5\noperations = 2000")
    )
    server = InProcessDev(tmp_path)
    try:
        warm(server)
        status, _, body = server.request("GET", URL + "?mode=many")
        assert status == 200 and json.loads(body) == {"done": True}
        assert count_of(tmp_path, "writes") == 1
    finally:
        server.stop()


# pfunc sets a toJSON on every object aside while it writes its own envelopes, but it
# reads the property to know: a getter there runs the handler's code.
POISON = """
export default (request, response) => {
  Object.defineProperty(Object.prototype, "toJSON", {
    configurable: true,
    get() { while (true) {} },
  });
  return response.send("never");
};
"""


def test_a_handler_code_run_while_pfunc_serialises_is_held_to_the_time_limit(tmp_path: Path):
    """A toJSON of the handler's own on Object.prototype runs when pfunc serialises the
    host-call queue or the report: it is stopped like any runaway, on a thread or in line."""
    (tmp_path / "pfunc.toml").write_text(
        PROJECT + '\n[[functions]]\nname = "poison"\nfile = "poison.js"\n'
        'event = "on-request"\npath = "poison"\n'
    )
    (tmp_path / "work.js").write_text(textwrap.dedent(WORK))
    (tmp_path / "poison.js").write_text(POISON)
    server = InProcessDev(tmp_path)
    try:
        status, _, body = server.request("GET", "/v1/blocks/sub-key/sub-c-in/poison")
        assert status == 503 and "time limit" in json.loads(body)["message"]
        status, _, _ = server.request("GET", URL)
        assert status == 200
    finally:
        server.stop()


REPLAYED = (
    BURN
    + """
const db = require("kvstore");
const pubnub = require("pubnub");
const vault = require("vault");
export default async (request, response) => {
  if (request.query.mode === "secret") {  // a vault read, then a write, then a long slice
    const secret = await vault.get("SECRET");
    await db.incrCounter("w");
    console.log("secret is " + secret);
    burn();
  } else if (request.query.mode === "publish") {  // a publish awaited, then a long slice
    await pubnub.publish({ channel: "side", message: { n: 1 } });
    burn();
  } else if (request.query.mode === "order") {  // a publish's continuation after two writes
    const later = pubnub.publish({ channel: "side", message: 1 }).then(() => db.incrCounter("z"));
    await db.incrCounter("x");
    await db.incrCounter("y");
    burn();
    await later;
  } else if (request.query.mode === "unawaited") {  // the long slice after the handler ended
    pubnub.publish({ channel: "side", message: 1 }).then(() => burn());
    await db.get("k");
  }
  return response.send({ done: true });
};
"""
)


def test_a_replayed_execution_reports_what_the_same_execution_on_a_thread_reports(
    tmp_path: Path,
):
    """Secrets stay masked, publishes stay in the report, a publish's continuation runs
    where it ran, an unawaited call is still called so: the answers given again change
    nothing the report shows. Each mode runs in line (stopped, replayed), then on a thread."""
    (tmp_path / "pfunc.toml").write_text(
        ROOMY_PROJECT.replace(
            "[limits]", 'limits = "pubnub-2026"\n\n[vault]\nSECRET = "hunter2"\n\n[limits]'
        )
    )
    (tmp_path / "work.js").write_text(REPLAYED)
    server = InProcessDev(tmp_path)
    seen: list = []
    server.server.state.engine.runtime.observers.append(seen.append)

    def report(mode: str) -> dict:
        seen.clear()
        status, _, body = server.request("GET", f"{URL}?mode={mode}")
        (result,) = [r for r in seen if r.event == "on-request"]
        return {
            "status": status,
            "body": json.loads(body),
            "logs": [line["text"] for line in result.logs],
            "warnings": result.warnings,
            "triggered": [t.channel for t in result.triggered],
            "calls": result.operations["calls"],
        }

    try:
        for mode in ("secret", "publish", "order", "unawaited"):
            warm(server)
            replayed = report(mode)
            assert not promoted(server)
            on_a_thread = report(mode)
            assert replayed == on_a_thread, mode
            assert replayed["status"] == 200 and replayed["body"] == {"done": True}
        assert report("secret")["logs"] == ["secret is *****"]
        assert count_of(tmp_path, "w") == 3  # once per execution, never twice
    finally:
        server.stop()


STATEFUL = (
    BURN
    + """
const db = require("kvstore");
const early = db.get("config");  // a read the module's top-level code makes, once per load
let cached = null;  // filled once per context
export default async (request, response) => {
  const mode = request.query.mode;
  if (cached === null) cached = (await db.get("config")) || { prefix: "k" };
  await early;
  if (mode === "cached") {
    await db.incrCounter(cached.prefix + "-cached");
    burn();
  } else if (mode === "perf") {
    await db.incrCounter("perf-" + performance.now());
    burn();
  } else if (mode === "draws") {  // many draws (uuid.v4 takes 16 each)
    const draws = [];
    for (let i = 0; i < 15000; i++) draws.push(Math.random());
    await db.incrCounter("draw-" + draws[14999]);
    burn();
  }
  return response.send({ mode: mode || "quick" });
};
"""
)


@pytest.mark.parametrize(
    ("mode", "pattern"),
    [("cached", "k-cached"), ("perf", "perf-%"), ("draws", "draw-%")],
)
def test_a_re_run_in_a_new_context_may_read_more_and_still_completes(tmp_path: Path, mode, pattern):
    """Its new context reads what the in-line one had cached, and what its top-level code
    reads: reads are performed live, changes are matched; performance.now() and many
    Math.random() draws are read again as the first attempt read them."""
    with promoted_server(tmp_path, STATEFUL, ROOMY_PROJECT) as server:
        assert server.request("GET", URL)[0] == 200  # the in-line context fills its cache
        status, _, body = server.request("GET", f"{URL}?mode={mode}")
        assert status == 200 and json.loads(body) == {"mode": mode}, body
        assert len(keys_like(tmp_path, pattern)) == 1
        assert not promoted(server)


PERFORMANCE_WAIT = """
const db = require("kvstore");
export default async (request, response) => {
  if (request.query.mode === "wait") {  // a write, then a wait on performance.now()
    await db.incrCounter("waited");
    const start = performance.now();
    while (performance.now() - start < 200) {}
  }
  return response.send({ done: true });
};
"""


def test_performance_now_goes_on_from_the_replayed_values(tmp_path: Path):
    """performance.now() counts from its context's start: the attempt on a thread, in a
    newer context, reads the first attempt's values, then live ones on the same origin,
    so a wait on it ends as it would have (it never goes back)."""
    import time

    with promoted_server(tmp_path, PERFORMANCE_WAIT, ROOMY_PROJECT) as server:
        assert server.request("GET", URL)[0] == 200
        time.sleep(2)  # the in-line context's clock is now well past a new one's
        status, _, body = server.request("GET", f"{URL}?mode=wait")
        assert status == 200 and json.loads(body) == {"done": True}, body
        assert count_of(tmp_path, "waited") == 1


def test_a_function_that_became_steadily_slower_goes_back_to_threads(tmp_path: Path):
    """In line, each execution holds every other request on the loop. One that would not
    have been promoted (~13 ms of CPU a request: a slice over the 5 ms bar, but well
    under the guard; a machine over 3x faster would not see it) counts a strike, and after
    three (or one, on a machine slow enough to near the guard) the function goes back to
    threads,
    to run in line again only after twice as many quick executions as the first time."""
    from pfunc.sandbox.inline import SLOW_STRIKES

    source = (
        "function work(n) { let x = 0; for (let i = 0; i < n; i++) x += i; return x; }\n"
        "export default (request, response) =>\n"
        "  response.send({ x: work(Number(request.query.n || 0)) });\n"
    )
    with promoted_server(tmp_path, source) as server:
        policy = executor_of(server).policy
        answers = []
        for _ in range(int(SLOW_STRIKES)):
            answers.append(server.request("GET", URL + "?n=500000")[0])
        assert answers == [200] * len(answers)
        assert not promoted(server)
        assert policy.promote_after == 2 * PROMOTE_AFTER
        for _ in range(PROMOTE_AFTER):  # quick again, but not yet for long enough
            assert server.request("GET", URL)[0] == 200
        assert not promoted(server)


def test_the_in_line_policy_forgives_a_pause_but_not_a_steady_slowdown():
    """The arithmetic behind the test above, in CPU seconds as the executor reports them."""
    from pfunc.sandbox.inline import FAST_SLICE, InlinePolicy

    policy = InlinePolicy(allowed=True)
    quick, slow = (FAST_SLICE / 2, FAST_SLICE), (FAST_SLICE * 2, FAST_SLICE * 2)
    for _ in range(PROMOTE_AFTER):
        policy.observed(*quick)
    assert policy.inline
    policy.observed(*slow)  # a pause: a strike...
    for _ in range(4):
        policy.observed(*quick)  # ...taken away again
    policy.observed(*slow)
    policy.observed(*slow)
    assert policy.inline  # two strikes, after the first was forgiven
    policy.observed(*slow)
    assert not policy.inline and policy.promote_after == 2 * PROMOTE_AFTER
    for _ in range(2 * PROMOTE_AFTER - 1):
        policy.observed(*quick)
    assert not policy.inline
    policy.observed(*quick)
    assert policy.inline
    policy.reloaded()  # new code: threads, and the first bar again
    assert not policy.inline and policy.promote_after == PROMOTE_AFTER
