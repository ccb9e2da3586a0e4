"""Hostile Python handlers: full isolation of Python is out of scope for a local tool
(docs/handlers.md, "Isolation and limits"), but no one execution takes pfunc down, what a
handler leaves running dies with its worker, and the protocol cannot be corrupted."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from pfunc.events import MessageEvent
from tests.conftest import (
    HANDLERS,
    process_descendants,
    process_ended,
    process_stat,
    run_cli,
    start_cli,
)
from tests.dev_harness import InProcessDev

HOSTILE = HANDLERS / "hostile"
FUNCTIONS = (
    "kill_parent",
    "fork",
    "thread",
    "raw_thread",
    "signals",
    "to_thread",
    "busy_executor",
    "stdout",
    "nan",
    "builtins_load",
    "background",
)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("hostile-python")
    config = [
        '[project]\nsubscribe_key = "sub-c-h"\npublish_key = "pub-c-h"\n[limits]\ntimeout = 2\n'
    ]
    for name in FUNCTIONS:
        shutil.copy(HOSTILE / f"{name}.py", folder / f"{name}.py")
        config.append(
            f'[[functions]]\nname = "{name}"\nfile = "{name}.py"\nevent = "on-request"\n'
            f'path = "{name}"\n'
        )
    (folder / "pfunc.toml").write_text("\n".join(config))
    server = InProcessDev(folder)
    yield server
    server.stop()


def call(dev, name: str, query: str = "") -> tuple[int, str]:
    status, _, body = dev.request("GET", f"/v1/blocks/sub-key/sub-c-h/{name}{query}")
    return status, body


def trigger(dev, name: str) -> dict:
    status, _, body = dev.request("POST", f"/pfunc/run/{name}", b"{}")
    assert status == 200, body
    return json.loads(body)


def healthy(dev) -> bool:
    status, body = call(dev, "builtins_load", "?n=7")
    return status == 200 and json.loads(body)["n"] == "7"


def test_killing_its_parent_does_not_reach_pfunc(dev):
    result = trigger(dev, "kill_parent")
    assert result["outcome"] == "response", result
    assert healthy(dev)
    assert healthy(dev)


def test_a_forked_child_dies_with_the_execution(dev):
    status, body = call(dev, "fork")
    assert status == 200 and json.loads(body)["child"] > 0
    result = trigger(dev, "fork")
    assert any("child process" in warning for warning in result["warnings"]), result
    assert healthy(dev)


@pytest.mark.parametrize("name", ["thread", "raw_thread"])
def test_a_thread_left_running_replaces_the_worker(dev, name):
    """Started with threading or with _thread (which threading does not list)."""
    status, body = call(dev, name)
    assert status == 200
    first_worker = json.loads(body)["pid"]
    result = trigger(dev, name)
    assert any("1 thread(s) running" in warning for warning in result["warnings"]), result
    status, body = call(dev, name)
    assert status == 200 and json.loads(body)["pid"] != first_worker
    assert healthy(dev)


def test_a_thread_that_finished_its_work_is_not_left_running(dev):
    """asyncio.to_thread's executor keeps its thread, idle: not a thread left running,
    and the worker is kept."""
    pids = set()
    for _ in range(3):
        result = trigger(dev, "to_thread")
        assert result["outcome"] == "response" and result["warnings"] == [], result
        pids.add(json.loads(result["response"]["body"])["pid"])
    assert len(pids) == 1


def test_executor_threads_still_at_work_cost_no_more_than_the_execution_has(dev):
    """Six executor threads at work when the handler answers, near its 2 s limit: they
    are left running (the worker is replaced), and waiting for idle ones to end takes
    what is left of the execution's time at most, never past the limit."""
    result = trigger(dev, "busy_executor")
    assert result["outcome"] == "response", result
    assert any("6 thread(s) running" in warning for warning in result["warnings"]), result
    assert healthy(dev)


def test_signal_handling_a_handler_changes_is_put_back_after_its_execution(dev):
    """A handler's signal.signal would act in its worker's later executions."""
    result = trigger(dev, "signals")
    changed = [warning for warning in result["warnings"] if "signal.signal" in warning]
    assert changed and "SIGINT" in changed[0] and "SIGUSR1" in changed[0], result
    assert f"signal {int(signal.SIGRTMIN) + 3}" in changed[0]
    status, body = call(dev, "signals", "?check=1")
    assert status == 200
    checked = json.loads(body)
    assert checked["pid"] == json.loads(result["response"]["body"])["pid"]  # the same worker
    assert checked["default"] is True


def test_output_on_stdout_cannot_corrupt_the_protocol(dev):
    result = trigger(dev, "stdout")
    # The handler's own answer, not the forged completion it wrote to fd 1.
    assert result["outcome"] == "response", result
    assert json.loads(result["response"]["body"])["pid"] > 0
    assert healthy(dev)


def test_nan_inside_a_value_is_null_as_json_stringify_writes_it(harness, tmp_path):
    """As in a JavaScript handler (decisions.md): a NaN inside an object is null."""
    result = harness.request(HOSTILE / "nan.py")
    assert result.outcome == "response", result.error
    assert json.loads(result.response["body"]) == {"x": None}


def test_forked_children_are_killed_not_left_behind(harness, tmp_path):
    result = harness.request(HOSTILE / "fork.py")
    child = json.loads(result.response["body"])["child"]
    assert any("child process" in warning for warning in result.warnings)
    deadline = time.monotonic() + 5
    while not process_ended(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process_ended(child)


def test_eight_clients_call_synchronous_builtins_at_once(dev):
    """The shared host context once crashed the server (GIL errors) under this load."""
    failures: list[str] = []
    ids: set[str] = set()
    lock = threading.Lock()

    def client(number: int) -> None:
        for n in range(60):
            status, body = call(dev, "builtins_load", f"?n={number}-{n}")
            answer = json.loads(body) if status == 200 else {}
            with lock:
                if answer.get("n") != f"{number}-{n}":
                    failures.append(f"{status} {body[:80]}")
                ids.add(answer.get("id", ""))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert len(ids) == 8 * 60  # every uuid.v4 distinct
    assert healthy(dev)


def test_the_workers_are_gone_when_the_server_stops(tmp_path):
    (tmp_path / "pfunc.toml").write_text(
        '[[functions]]\nname = "t"\nfile = "thread.py"\nevent = "on-request"\npath = "t"\n'
    )
    shutil.copy(HOSTILE / "thread.py", tmp_path / "thread.py")
    server = InProcessDev(tmp_path)
    try:
        pid = json.loads(trigger(server, "t")["response"]["body"])["pid"]
    finally:
        server.stop()
    assert pid != os.getpid()
    deadline = time.monotonic() + 5
    while not process_ended(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process_ended(pid)


def test_a_handler_that_closes_the_protocol_pipes_is_ended_not_waited_for(harness):
    result = harness.request(HOSTILE / "closes_pipes.py")
    assert result.outcome == "error"
    assert "stopped unexpectedly" in result.error.message
    assert harness.request(HOSTILE / "nan.py").outcome == "response"  # the next one runs


def test_a_worker_that_exits_is_a_crash_not_a_memory_error(harness):
    result = harness.request(HOSTILE / "exits.py")
    assert result.outcome == "error"
    assert "stopped unexpectedly" in result.error.message
    assert "memory" not in result.error.message


def test_asyncio_tasks_left_running_finish_in_their_own_execution_not_the_next(harness):

    from pfunc.events import RequestEvent

    async def go():
        async with harness.engine() as engine:
            executor = engine.functions.executor_for_file(HOSTILE / "leaves_task.py")
            first = await executor.run(RequestEvent())
            second = await executor.run(RequestEvent())
            late = await engine.runtime.store.get_counter(
                engine.runtime.keyset.subscribe_key, "late"
            )
            return first, second, late

    first, second, late = asyncio.run(go())
    assert any("asyncio task" in warning for warning in first.warnings)
    # Each execution's task ran in it, reported as un-awaited: none spilled into the next.
    for result in (first, second):
        assert [(c["method"], c.get("unawaited")) for c in result.operations["calls"]] == [
            ("incrCounter", True)
        ]
    assert late == 2


def test_a_handler_flooding_the_protocol_pipe_is_stopped_at_its_time_limit(harness):
    harness.limit_overrides = {"timeout": 1}
    result = harness.request(HOSTILE / "floods_pipe.py")
    assert result.outcome == "error"
    assert result.error.type == "TimeoutError"
    assert harness.request(HOSTILE / "nan.py").outcome == "response"  # the next one runs


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
def test_a_handler_still_running_when_pfunc_is_stopped_goes_with_it(tmp_path, signum):
    """The worker has a process group of its own (a handler's kill must not reach pfunc),
    so a terminal's Ctrl-C never reaches it, and a killed pfunc cannot end it: it sees its
    host go and ends its group itself, rather than spin on for nobody."""
    (tmp_path / "spin.py").write_text("def handler(request):\n    while True:\n        pass\n")
    running = start_cli("run", "spin.py", "--message", "{}", "--timeout", "30", cwd=tmp_path)
    workers: list[int] = []
    deadline = time.monotonic() + 30
    while len(workers) < 2 and time.monotonic() < deadline:  # the worker and its parent
        time.sleep(0.1)
        workers = process_descendants(running.pid)
    assert len(workers) >= 2, "the handler's worker never started"
    running.send_signal(signum)
    running.wait(60)
    deadline = time.monotonic() + 10
    while not all(map(process_ended, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(map(process_ended, workers)), workers


def clean_bad_clean(handler: Path) -> list:
    """Three executions of `handler` in one worker: {}, {"bad": true}, {} (the results)."""
    from pfunc.clock import Clock
    from pfunc.engine import open_engine
    from pfunc.limits import resolve_profile
    from pfunc.project import Project

    async def go():
        project = Project(root=handler.parent, config_file=None)
        async with open_engine(
            project, resolve_profile("classic"), Clock(), kv_path=handler.parent / "kv.db"
        ) as engine:
            function = engine.functions.executor_for_file(handler)
            return [
                await function.run(MessageEvent("before-publish", message))
                for message in ({}, {"bad": True}, {})
            ]

    return asyncio.run(go())


def test_what_one_execution_does_to_its_surroundings_never_reaches_the_next(tmp_path):
    """A handler that closes its standard error or output, or changes folder, in one
    execution: the next execution of the same worker prints, and finds itself in the
    same folder, as before it."""

    handler = tmp_path / "surroundings.py"
    handler.write_text(
        "import os, sys\n\n"
        "def handler(request):\n"
        "    if request.message.get('bad'):\n"
        "        os.close(2)\n"
        "        sys.stdout.close()\n"
        "        os.chdir('/')\n"
        "        return request.ok()\n"
        "    print('printing works')\n"
        "    request.message['folder'] = os.getcwd()\n"
        "    return request.ok()\n"
    )

    before, bad, after = clean_bad_clean(handler)
    assert (before.outcome, bad.outcome) == ("ok", "ok")
    assert (after.outcome, after.message) == ("ok", before.message), after.to_json()


def test_builtins_an_execution_changes_are_put_back_for_the_next(tmp_path):
    """`builtins.str = int` broke every later execution of its worker, pfunc's own side of
    it too, until the file was saved again; what top-level code adds stays."""
    handler = tmp_path / "builtins_tamper.py"
    handler.write_text(
        "import builtins\n\nbuiltins.polyfill = lambda: 'kept'\n\n\n"
        "def handler(request):\n"
        "    if request.message.get('bad'):\n"
        "        builtins.str = int\n"
        "        builtins.extra = 1\n"
        "        return request.ok()\n"
        "    request.message['text'] = str(12) + polyfill()\n"
        "    request.message['extra'] = hasattr(builtins, 'extra')\n"
        "    return request.ok()\n"
    )

    before, bad, after = clean_bad_clean(handler)
    assert before.message == {"text": "12kept", "extra": False}, before.to_json()
    assert any("changed Python's builtins (extra, str)" in w for w in bad.warnings), bad.warnings
    assert (after.outcome, after.message) == ("ok", before.message), after.to_json()


def test_an_exception_whose_str_raises_is_the_handlers_error(harness, tmp_path):
    """Its __str__ raises: the handler's error, named by its class, not a worker that
    'stopped unexpectedly'."""
    handler = tmp_path / "unreadable.py"
    handler.write_text(
        "class Odd(Exception):\n    def __str__(self):\n        raise ValueError('s')\n\n"
        "def handler(request):\n    raise Odd()\n"
    )
    result = harness.run(handler)
    assert result.outcome == "error"
    assert (result.error.type, result.error.message) == ("Odd", "(its str() raised ValueError)")
    assert result.error.line == 6


LEAVER = """
import os
import time


def handler(request):
    read, write = os.pipe()
    if os.fork() == 0:  # a daemon: a new session, forked again, its parent gone
        os.setsid()
        daemon = os.fork()
        if daemon == 0:
            time.sleep(60)
            os._exit(0)
        os.write(write, str(daemon).encode())
        os._exit(0)
    daemon = int(os.read(read, 32))
    session = os.fork()
    if session == 0:  # a child in a session (and group) of its own
        os.setsid()
        time.sleep(60)
        os._exit(0)
    time.sleep(0.2)
    request.message = {"pids": [daemon, session]}
    return request.ok()
"""


def test_children_that_leave_the_workers_group_die_with_it(harness, tmp_path):
    """setsid took a child out of the process group the worker's end kills: it ran on
    while the report said it was killed (200 executions left 3,952 processes)."""
    handler = tmp_path / "leaver.py"
    handler.write_text(LEAVER)
    _left_and_killed(harness.run(handler), 2)


RESPAWNER = """
import os
import time


def handler(request):
    session = os.fork()
    if session == 0:  # a daemon that forks again and again, its pid never the same
        os.setsid()
        while True:
            if os.fork():
                os._exit(0)
            time.sleep(0.02)
    time.sleep(0.2)
    request.message = {"session": session}
    return request.ok()
"""


def _wait_until(check, tries: int = 200) -> bool:
    for _ in range(tries):
        if check():
            return True
        time.sleep(0.05)
    return check()


def _left_and_killed(result, count: int) -> None:
    """`result` ended ok, says `count` child processes were left and killed, and each pid
    its message names ("pid" or "pids") has ended."""
    assert result.outcome == "ok", result.error
    assert result.warnings == [
        f"the handler left {count} child process(es) running; they were killed with the worker"
    ]
    pids = result.message.get("pids") or [result.message["pid"]]
    assert _wait_until(lambda: all(process_ended(pid) for pid in pids)), pids


def test_a_daemon_that_keeps_changing_its_pid_is_found_and_killed(harness, tmp_path):
    """It slipped between the scan of /proc and the kill, and was not counted either."""
    handler = tmp_path / "respawner.py"
    handler.write_text(RESPAWNER)
    result = harness.run(handler)
    assert result.outcome == "ok", result.error
    assert any("child process(es) running" in w for w in result.warnings), result.warnings
    session = str(result.message["session"])

    def session_gone() -> bool:  # field 4 of stat after the name: the session id
        alive = [
            p for p in os.listdir("/proc") if p.isdigit() and process_stat(p)[3:4] == [session]
        ]
        return all(process_stat(p)[:1] == ["Z"] for p in alive)

    assert _wait_until(session_gone)


def test_children_that_end_after_leaving_their_parent_are_reaped(dev):
    """Adopted by the worker's parent (a subreaper), they stayed zombies for the worker's
    life: one more each execution."""
    results = [trigger(dev, "background") for _ in range(4)]
    assert all(result["outcome"] == "response" and not result["warnings"] for result in results)
    parents = {str(json.loads(result["response"]["body"])["parent"]) for result in results}
    assert len(parents) == 1  # one worker served them all

    def no_zombies() -> bool:
        return not [
            p
            for p in os.listdir("/proc")
            if p.isdigit() and process_stat(p)[:2] in [["Z", parent] for parent in parents]
        ]

    assert _wait_until(no_zombies)


ORPHANER = """
import os
import time


def handler(request):
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # forks a grandchild and ends: the grandchild is adopted above the worker
        grandchild = os.fork()
        if grandchild == 0:
            time.sleep(60)
            os._exit(0)
        os.write(write, str(grandchild).encode())
        os._exit(0)
    grandchild = int(os.read(read, 32))
    os.waitpid(child, 0)  # reaped: the worker itself has no child left
    request.message = {"pid": grandchild}
    return request.ok()
"""


def test_a_grandchild_adopted_above_the_worker_is_found_and_killed(harness, tmp_path):
    """The worker has no child left, but the one it reaped left a child of its own, which
    the worker's intermediate parent adopted: still found, named and killed, and again by
    the worker that replaces it (under a parent of its own)."""
    handler = tmp_path / "orphaner.py"
    handler.write_text(ORPHANER)
    for _ in range(2):
        _left_and_killed(harness.run(handler), 1)


CLONER = """
import ctypes
import os
import time

libc = ctypes.CDLL(None, use_errno=True)


def handler(request):
    pid = libc.syscall(56, 0, 0, 0, 0, 0)  # clone(2) with no exit signal (x86_64's number)
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    request.message = {"pid": pid}
    return request.ok()
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="clone's system call number is x86_64's")
def test_a_child_cloned_to_signal_nothing_when_it_ends_is_found_and_killed(harness, tmp_path):
    """A raw clone(2) whose end sends no SIGCHLD: waitid sees it only with __WALL."""
    handler = tmp_path / "cloner.py"
    handler.write_text(CLONER)
    _left_and_killed(harness.run(handler), 1)


# ORPHANER, after it puts an empty file on the worker's open list of its parent's children.
SWAPPER = ORPHANER.replace(
    "def handler(request):\n",
    """def handler(request):
    if request.message.get("calm"):  # the first execution: the worker opens its list after
        return request.ok()
    for name in os.listdir("/proc/self/fd"):
        try:
            kept = os.readlink(f"/proc/self/fd/{name}").endswith("/children")
        except OSError:
            continue
        if kept:
            empty = os.open("/dev/null", os.O_RDONLY)
            os.dup2(empty, int(name))
            os.close(empty)
""",
)


def test_a_descriptor_the_handler_swaps_does_not_hide_what_it_leaves(harness, tmp_path):
    """The worker keeps its parent's list of children open between executions; a handler
    that puts an empty file on that descriptor still has its adopted grandchild found."""
    swapper = tmp_path / "swapper.py"
    swapper.write_text(SWAPPER)

    calm, swapped = harness.runs(swapper, [{"calm": True}, {}])
    assert calm.outcome == "ok" and calm.warnings == [], (calm.error, calm.warnings)
    _left_and_killed(swapped, 1)


@pytest.mark.parametrize(
    "where",
    ['(__file__, "abc", 2.5, "text")', '(5, 1, 1, "text")'],
    ids=["a position no file has", "a file name that is no text"],
)
def test_a_syntax_error_a_handler_makes_up_is_reported_not_a_traceback(tmp_path, where):
    """A SyntaxError raised by top-level code carries what the handler put in it: a
    line that is a string and a column that is a float crashed pfunc run with a traceback
    (the code frame read them), a file name that is a number crashed the worker."""
    handler = tmp_path / "made_up.py"
    handler.write_text(
        f'raise SyntaxError("made up", {where})\n\ndef handler(request):\n    return request.ok()\n'
    )
    run = run_cli("run", handler, "--kv", tmp_path / "kv.db", "--json")
    assert run.code == 1 and "Traceback" not in run.stderr, run.stderr
    error = run.json()["error"]
    assert error["type"] == "SyntaxError" and "made up" in error["message"], error
    assert error["line"] == 1


ENDER = """
import asyncio
import signal
import sys


def on_alarm(number, frame):
    sys.exit(3)


async def ender():
    await asyncio.sleep(0.01)
    sys.exit(4)


async def handler(request):
    if request.message.get("signal"):  # a signal handler ends the loop while it waits
        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, 0.02)
        await asyncio.sleep(5)
    if request.message.get("left"):  # a task it leaves ends the loop after it returned
        asyncio.create_task(ender())
    return request.ok()
"""


def test_what_ends_the_workers_loop_is_reported_not_a_crash(harness, tmp_path):
    """A signal handler's SystemExit out of the worker's loop is the execution's error,
    worded as the handler's own sys.exit is; a task the handler left that exits has its
    ending kept and the worker replaced; neither reads as a worker that crashed."""
    handler = tmp_path / "ender.py"
    handler.write_text(ENDER)

    by_signal, by_task, after = harness.runs(handler, [{"signal": True}, {"left": True}, {}])
    assert by_signal.outcome == "error" and by_signal.error.message.startswith(
        "the handler called sys.exit(3)"
    ), by_signal.error
    assert by_task.outcome == "ok", by_task.error
    assert by_task.warnings[-1] == (
        "the worker's event loop was ended by a task the handler left; it was replaced"
    )
    assert (after.outcome, after.warnings) == ("ok", [])


ALARMER = """
import signal
import time


def handler(request):
    if request.message.get("alarm"):
        signal.setitimer(signal.ITIMER_REAL, 0.2)  # its default action ends the process
    time.sleep(request.message.get("pause", 0))
    return request.ok()
"""


def test_a_timer_the_handler_leaves_is_cancelled_not_left_to_go_off_later(harness, tmp_path):
    """signal.setitimer (or alarm) left running went off in whatever came next: while the
    worker waited for its next execution, SIGALRM's default action ended it, and that
    execution read as a crash."""
    handler = tmp_path / "alarmer.py"
    handler.write_text(ALARMER)

    # The second waits past the timer: one left running would end the worker in it.
    alarmed, after = harness.runs(handler, [{"alarm": True}, {"pause": 0.4}])
    assert alarmed.outcome == "ok" and alarmed.warnings == [
        "the handler left a timer running (signal.alarm or signal.setitimer); pfunc "
        "cancelled it, so that it cannot go off in a later execution"
    ], (alarmed.error, alarmed.warnings)
    assert (after.outcome, after.warnings) == ("ok", []), after.error


INTERRUPTED_CALL = """
import signal

from pfunc import require

db = require("kvstore")
xhr = require("xhr")


class Tick(Exception):
    pass


def on_alarm(number, frame):
    raise Tick()


async def handler(request):
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.05)  # while the fetch below is under way
    try:
        await xhr.fetch(request.message["url"])
    except Tick:
        pass
    await db.set("k", "v")
    return request.ok({"value": await db.get("k")})
"""


def test_a_call_whose_wait_a_signal_handler_cut_short_gets_no_later_calls_answer(harness, tmp_path):
    """A signal handler that raises while the worker waits for a call's answer ends that
    wait; the answer still comes, and was read as the answer to the handler's next call
    (each call after it got the one before's: db.get read set's)."""
    from http.server import BaseHTTPRequestHandler

    from tests.conftest import local_http_server

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(0.5)  # well past the handler's 50 ms timer
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"late")

    handler = tmp_path / "interrupted.py"
    handler.write_text(INTERRUPTED_CALL)
    harness.offline = False
    with local_http_server(Slow) as url:
        result = harness.run(handler, message={"url": url})
    assert result.outcome == "ok", result.error
    assert result.message == {"value": "v"}
    assert [call["method"] for call in result.operations["calls"]] == ["fetch", "set", "get"]


TASK_GROUP = """
import asyncio


async def fails(number):
    raise ValueError(f"bad input {number}")


async def handler(request):
    async with asyncio.TaskGroup() as group:
        for number in range(request.message["failing"]):
            group.create_task(fails(number))
        group.create_task(asyncio.sleep(0.01))
    return request.ok()
"""


@pytest.mark.parametrize("failing", [1, 5])
def test_a_task_group_s_error_names_what_failed_in_it_and_where(harness, tmp_path, failing):
    """A TaskGroup whose task raised reported only "unhandled errors in a TaskGroup (1
    sub-exception)" at the `async with` line: nothing said what failed, or where."""
    handler = tmp_path / "group.py"
    handler.write_text(TASK_GROUP)
    result = harness.run(handler, message={"failing": failing})
    error = result.error
    assert result.outcome == "error" and error.type == "ExceptionGroup"
    assert error.message.startswith("unhandled errors in a TaskGroup")
    assert "ValueError: bad input 0" in error.message
    if failing > 3:  # three are named, the rest counted
        assert "ValueError: bad input 2" in error.message and "; and 2 more" in error.message
        assert "bad input 3" not in error.message
    assert error.line == 6  # the raise in fails(), where the handler's code failed
    assert error.stack.splitlines() == [
        "    at fails (group.py:6:5)",
        "    at handler (group.py:10:5)",
    ]


THREADS_CALLING = """
import asyncio
import base64
import threading

from pfunc import require

codec = require("codec/base64")
db = require("kvstore")


async def handler(request):
    answers = {}

    def work(name):
        answers[name] = [codec.btoa(f"{name}{i}") for i in range(150)]

    threads = [threading.Thread(target=work, args=(name,)) for name in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    wrong = sum(
        answer != base64.b64encode(f"{name}{i}".encode()).decode()
        for name, got in answers.items()
        for i, answer in enumerate(got)
    )
    await db.set("k", "v")
    both = await asyncio.gather(*(asyncio.to_thread(lambda: db.get("k").result()) for _ in "ab"))
    return request.ok({"answered": sum(map(len, answers.values())), "wrong": wrong, "got": both})
"""


def test_calls_from_the_handler_s_own_threads_get_their_own_answers(harness, tmp_path):
    """Two threads calling at once both waited on the pipe: most answers went to the
    other thread's call (390 of 400 wrong), and once calls set aside other calls'
    answers, the thread that read its neighbour's waited to the time limit."""
    handler = tmp_path / "threads.py"
    handler.write_text(THREADS_CALLING)
    result = harness.run(handler)
    assert result.outcome == "ok", result.error
    assert result.message == {"answered": 300, "wrong": 0, "got": ["v", "v"]}


@pytest.mark.parametrize(
    ("built", "message"),
    [
        (  # flattened by recursion, it ran out of Python's recursion limit
            "ValueError('innermost')\n    for _ in range(5000):\n"
            "        error = ExceptionGroup('nested', [error])",
            "nested (1 sub-exception): ValueError: innermost",
        ),
        (  # 2**40 exceptions by count: walked whole, past the memory limit
            "ExceptionGroup('g', [ValueError('leaf'), ValueError('other')])\n"
            "    for _ in range(40):\n        error = ExceptionGroup('g', [error, error])",
            "g (2 sub-exceptions): ValueError: leaf; ValueError: other",
        ),
    ],
    ids=["nested-5000-deep", "a-subgroup-held-twice-at-40-levels"],
)
def test_a_group_built_to_be_hard_to_walk_is_reported_at_once(harness, tmp_path, built, message):
    handler = tmp_path / "group.py"
    handler.write_text(f"async def handler(request):\n    error = {built}\n    raise error\n")
    result = harness.run(handler)
    assert result.outcome == "error" and result.error.type == "ExceptionGroup"
    assert result.error.message == message


def test_a_group_s_exception_raised_in_a_helper_shows_the_helper_s_frames(harness, tmp_path):
    (tmp_path / "helper.py").write_text(
        "async def check(value):\n    raise ValueError(f'bad {value}')\n"
    )
    handler = tmp_path / "uses.py"
    handler.write_text(
        "import asyncio\n"
        "import helper\n\n\n"
        "async def handler(request):\n"
        "    async with asyncio.TaskGroup() as group:\n"
        "        group.create_task(helper.check(7))\n"
        "    return request.ok()\n"
    )
    result = harness.run(handler)
    assert "ValueError: bad 7" in result.error.message
    assert result.error.line == 6  # the handler's own line: the helper's is not its file
    assert result.error.stack.splitlines() == [
        "    at check (helper.py:2:5)",
        "    at handler (uses.py:6:5)",
    ]
