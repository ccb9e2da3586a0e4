"""`pfunc run` without an event loop (pfunc/aio.py): asyncio stays unimported for local
work, and what does wait (network calls, another process's write lock) still works,
concurrently where production is concurrent. Real subprocesses, real SQLite files."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, local_http_server, run_cli


def test_a_local_handler_runs_without_importing_asyncio(tmp_path: Path) -> None:
    # The command in-process through its entry point, then a look at what it imported,
    # and at the garbage collector (paused while the command line was imported: on again).
    code = (
        "import gc, sys\n"
        "from pfunc.cli.entry import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    code = done.code\n"
        "print(code, 'asyncio' in sys.modules, 'aiohttp' in sys.modules, gc.isenabled(),\n"
        "      gc.get_freeze_count() > 10_000, file=sys.stderr)\n"
    )
    message = json.dumps({"userId": "u1"})
    completed = subprocess.run(
        [
            *(sys.executable, "-c", code, "run", str(EXAMPLES / "rate_limit.js")),
            *("--message", message, "--json", "--kv", str(tmp_path / "kv.sqlite3")),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    report = json.loads(completed.stdout)
    assert report["outcome"] == "ok"
    assert report["message"]["rateLimitRemaining"] == 9
    assert completed.stderr.split() == ["0", "False", "False", "True", "True"]


class _Pairs(BaseHTTPRequestHandler):
    """Answers /pair only once two requests are in flight at the same time: requests
    made one after the other both fail (the barrier breaks), whatever the timing."""

    barrier = threading.Barrier(2, timeout=5)

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        try:
            self.barrier.wait()
            status, body = 200, b'{"paired":true}'
        except threading.BrokenBarrierError:
            self.barrier.reset()
            status, body = 503, b'{"paired":false}'
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def pair_server() -> Iterator[str]:
    with local_http_server(_Pairs) as url:
        yield url


def test_network_calls_still_run_concurrently(tmp_path: Path, pair_server: str) -> None:
    handler = tmp_path / "pair.js"
    handler.write_text(
        'const xhr = require("xhr");\n'
        "export default async (request) => {\n"
        "  const answers = await Promise.all([\n"
        f'    xhr.fetch("{pair_server}/pair?a"), xhr.fetch("{pair_server}/pair?b")]);\n'
        "  request.message.statuses = answers.map((a) => a.status);\n"
        "  return request.ok();\n"
        "};\n"
    )
    run = run_cli("run", handler, "--message", "{}", "--json", cwd=tmp_path)
    report = run.json()
    assert report["outcome"] == "ok", report
    assert report["message"]["statuses"] == [200, 200]


def test_a_publish_from_a_handler_runs_the_functions_it_reaches(tmp_path: Path) -> None:
    (tmp_path / "pfunc.toml").write_text(
        '[[functions]]\nname = "relay"\nfile = "relay.js"\nevent = "before-publish"\n'
        'channels = ["in"]\n\n'
        '[[functions]]\nname = "count"\nfile = "count.js"\nevent = "after-publish"\n'
        'channels = ["out"]\n'
    )
    (tmp_path / "relay.js").write_text(
        'const pubnub = require("pubnub");\n'
        "export default async (request) => {\n"
        '  await pubnub.publish({ channel: "out", message: request.message });\n'
        "  return request.ok();\n"
        "};\n"
    )
    (tmp_path / "count.js").write_text(
        'const db = require("kvstore");\n'
        'export default async (request) => { await db.incrCounter("relayed"); '
        "return request.ok(); };\n"
    )
    run = run_cli("run", "relay", "--message", '{"n":1}', "--json", cwd=tmp_path)
    assert run.json()["outcome"] == "ok", run.stdout + run.stderr
    counted = run_cli("kv", "counters", "--json", cwd=tmp_path)
    assert counted.code == 0, counted.stderr
    assert json.loads(counted.stdout) == [{"key": "relayed", "value": 1}]


class _Signal(BaseHTTPRequestHandler):
    """Tells the test that a handler got as far as fetching it."""

    reached = threading.Event()

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.reached.set()
        self.send_response(204)
        self.end_headers()


_WRITES_AFTER_THE_SIGNAL = {
    # A KV write, made by the loop-free drive itself: it waits on the store's connection.
    "kv": 'await require("kvstore").incrCounter("mine");',
    # A publish: run on the side loop (aio.py), with its history write and the chained
    # function's KV write, which wait on the store's slow connection, closed at the end.
    "publish": 'await require("pubnub").publish({ channel: "out", message: 1 });',
}


@pytest.mark.parametrize("write", sorted(_WRITES_AFTER_THE_SIGNAL))
def test_a_run_waits_for_another_process_holding_the_write_lock(tmp_path: Path, write: str) -> None:
    (tmp_path / "pfunc.toml").write_text(
        '[[functions]]\nname = "first"\nfile = "first.js"\nevent = "before-publish"\n'
        'channels = ["in"]\n\n'
        '[[functions]]\nname = "count"\nfile = "count.js"\nevent = "after-publish"\n'
        'channels = ["out"]\n'
    )
    (tmp_path / "count.js").write_text(
        'const db = require("kvstore");\n'
        'export default async (request) => { await db.incrCounter("relayed"); '
        "return request.ok(); };\n"
    )
    assert run_cli("kv", "incr", "created", cwd=tmp_path).code == 0  # the store exists
    _Signal.reached.clear()
    with local_http_server(_Signal) as signal_url:
        (tmp_path / "first.js").write_text(
            "export default async (request) => {\n"
            f'  await require("xhr").fetch("{signal_url}/reached");\n'
            f"  {_WRITES_AFTER_THE_SIGNAL[write]}\n"
            "  return request.ok();\n"
            "};\n"
        )
        holder = sqlite3.connect(tmp_path / ".pfunc" / "kv.sqlite3", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the write lock, as another writer holds it
        running = subprocess.Popen(
            [sys.executable, "-m", "pfunc", "run", "first", "--message", "{}", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        try:
            assert _Signal.reached.wait(60), "the handler never ran"
            time.sleep(0.5)  # its write meets the lock (it waits up to 10 s for it)
            assert running.poll() is None, "the run ended while the lock was held"
        finally:
            holder.execute("COMMIT")
            holder.close()
        stdout, stderr = running.communicate(timeout=60)
    assert running.returncode == 0, stderr
    report = json.loads(stdout)
    assert report["outcome"] == "ok", report
    assert [call["status"] for call in report["operations"]["calls"]] == ["ok", "ok"]
    counters = json.loads(run_cli("kv", "counters", "--json", cwd=tmp_path).stdout)
    expected = {"kv": {"mine": 1}, "publish": {"relayed": 1}}[write]
    assert {c["key"]: c["value"] for c in counters if c["key"] != "created"} == expected


RUN = [sys.executable, "-m", "pfunc", "run"]


def opened_store(pid: int, store: Path, within: float = 60) -> None:
    """Wait until process `pid` has the store's file open."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if Path(os.readlink(fd)) == store.resolve():
                        return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} never opened {store}")


def test_a_write_waiting_for_the_lock_past_the_time_limit_never_commits(tmp_path):
    """Another process holds the store's write lock past the execution's time limit (and
    lets go well within the store's own wait of 10 s): the write stops waiting at the
    execution's deadline, the execution ends as a timeout, and nothing commits after it."""
    assert run_cli("kv", "incr", "hits", cwd=tmp_path).code == 0  # the store exists
    (tmp_path / "count.js").write_text(
        'const db = require("kvstore");\n'
        'export default async (request) => { await db.incrCounter("hits"); return request.ok(); };\n'
    )
    holder = sqlite3.connect(tmp_path / ".pfunc" / "kv.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as another writer holds it
    try:
        running = subprocess.Popen(
            [*RUN, "count.js", "--message", "{}", "--timeout", "0.5", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        # Past the run's limit, counted from when it opened the store (a busy machine
        # can take seconds to start a process): a write still waiting would now go through.
        opened_store(running.pid, tmp_path / ".pfunc" / "kv.sqlite3")
        time.sleep(2)
    finally:
        holder.execute("COMMIT")
        holder.close()
    stdout, stderr = running.communicate(timeout=60)
    report = json.loads(stdout)
    assert running.returncode == 1 and report["error"]["type"] == "TimeoutError", stderr
    assert [call["status"] for call in report["operations"]["calls"]] == ["error"]
    counters = json.loads(run_cli("kv", "counters", "--json", cwd=tmp_path).stdout)
    assert counters == [{"key": "hits", "value": 1}]


@pytest.mark.parametrize("driven", ["without a loop", "on a loop"])
def test_kept_work_runs_even_when_its_caller_is_cancelled_before_it_starts(driven):
    """A publish is started with start_kept: cancelling the future its execution waits on
    (the execution's deadline), even before the work's first step, does not stop it, and
    kept_done waits for it (the engine does before closing the store)."""
    import asyncio

    from pfunc.aio import kept_done, run_without_loop, start_kept

    ran: list[str] = []

    async def publish() -> str:
        ran.append("published")
        return "sent"

    async def execution() -> None:
        answer = start_kept(publish())
        answer.cancel()  # the deadline passed before the loop took another turn
        await kept_done()

    if driven == "on a loop":
        asyncio.run(execution())
    else:
        run_without_loop(execution())
    assert ran == ["published"]


def test_a_coroutine_run_on_a_new_loop_hands_back_its_result_without_wording_it() -> None:
    """pfunc test and the plugin's scenario items run each on a loop of its own; asyncio.run
    (Python 3.11) wrote repr() of the finished task's result in full, twice, as it put
    Ctrl-C's handler back: 60 ms for a scenario of 3,000 steps."""
    from pfunc.aio import run_on_new_loop

    worded: list[str] = []

    class Outcome:
        def __repr__(self) -> str:
            worded.append("repr")
            return "Outcome()"

    outcome = Outcome()

    async def scenario() -> Outcome:
        return outcome

    assert run_on_new_loop(scenario()) is outcome
    assert worded == []

    async def failing() -> None:
        raise LookupError("the scenario's own error")

    with pytest.raises(LookupError, match="the scenario's own error"):
        run_on_new_loop(failing())
