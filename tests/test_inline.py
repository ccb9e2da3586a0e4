"""Quick JavaScript functions run on the dev server's own loop (no thread hop), held to
an in-line guard: a slice that outgrows it is stopped and the function goes back to a
thread of its own; an execution that changed nothing yet starts again there, so a
runaway still ends as production ends it, and other requests keep being served."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from pfunc.sandbox.inline import PROMOTE_AFTER
from tests.test_dev_server import InProcessDev

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
WORK = """
const db = require("kvstore");
export default async (request, response) => {
  if (request.query.mode === "spin") { while (true) {} }
  if (request.query.mode === "write-then-spin") {
    await db.incrCounter("writes");
    const until = Date.now() + 200;
    while (Date.now() < until) {}
    return response.send({ spun: true });
  }
  const seen = await db.get("seen");
  return response.send({ seen: seen || null });
};
"""
URL = "/v1/blocks/sub-key/sub-c-in/work"


def promoted(server: InProcessDev) -> bool:
    function = server.server.state.project.function("work")
    return server.server.state.engine.functions.executor(function).policy.inline


def warm(server: InProcessDev) -> None:
    """Quick requests until the function runs in line: PROMOTE_AFTER in a row, and some
    room for a slow one on a loaded machine (one over the CPU bound starts the count again)."""
    for _ in range(5 * PROMOTE_AFTER):
        status, _, _ = server.request("GET", URL)
        assert status == 200
        if promoted(server):
            return
    raise AssertionError(f"still on a thread after {5 * PROMOTE_AFTER} quick requests")


def test_a_quick_function_runs_in_line_and_a_runaway_is_moved_to_a_thread(tmp_path: Path):
    (tmp_path / "pfunc.toml").write_text(PROJECT)
    (tmp_path / "work.js").write_text(textwrap.dedent(WORK))
    server = InProcessDev(tmp_path)
    try:
        warm(server)
        assert promoted(server)
        status, _, body = server.request("GET", URL + "?mode=spin")
        # The runaway ran again on a thread, to the profile's time limit, as in production.
        assert status == 500 and "longer than the 1 s time limit" in json.loads(body)["message"]
        assert not promoted(server)
        status, _, body = server.request("GET", URL)
        assert status == 200 and json.loads(body) == {"seen": None}
    finally:
        server.stop()


def test_a_long_slice_after_a_write_is_stopped_and_says_why(tmp_path: Path):
    (tmp_path / "pfunc.toml").write_text(PROJECT)
    (tmp_path / "work.js").write_text(textwrap.dedent(WORK))
    server = InProcessDev(tmp_path)
    try:
        warm(server)
        status, _, body = server.request("GET", URL + "?mode=write-then-spin")
        assert status == 500 and "Send the event again" in json.loads(body)["message"]
        assert not promoted(server)
        # On a thread now, the same request completes; the write happened once per run.
        status, _, body = server.request("GET", URL + "?mode=write-then-spin")
        assert status == 200 and json.loads(body) == {"spun": True}
        import sqlite3

        with sqlite3.connect(tmp_path / ".pfunc" / "kv.sqlite3") as store:
            (count,) = store.execute("SELECT value FROM counters WHERE key='writes'").fetchone()
        assert count == 2
    finally:
        server.stop()


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


def test_a_re_run_never_repeats_a_write_however_many_reads_came_first(tmp_path: Path):
    (tmp_path / "pfunc.toml").write_text(PROJECT.replace("timeout = 1", "timeout = 5"))
    (tmp_path / "work.js").write_text(
        textwrap.dedent(WORK).replace(
            'if (request.query.mode === "spin") { while (true) {} }',
            'if (request.query.mode === "many") { for (let i = 0; i < 1100; i++) await db.get("k");'
            ' await db.incrCounter("writes"); const end = Date.now() + 200;'
            " while (Date.now() < end) {} return response.send({ done: true }); }",
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
        assert status == 500 and "Send the event again" in json.loads(body)["message"]
        import sqlite3

        with sqlite3.connect(tmp_path / ".pfunc" / "kv.sqlite3") as store:
            (count,) = store.execute("SELECT value FROM counters WHERE key='writes'").fetchone()
        assert count == 1
    finally:
        server.stop()


POISON = """
export default (request, response) => {
  Object.prototype.toJSON = function () { while (true) {} };
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
        assert status == 500 and "time limit" in json.loads(body)["message"]
        status, _, _ = server.request("GET", URL)
        assert status == 200
    finally:
        server.stop()
