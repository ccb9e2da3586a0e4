"""The worker process that runs a Python handler (started by python_host.py).

It speaks JSON lines with the host over two pipes whose descriptors it is given (never
stdin or stdout, which the handler may use). Every module call (`require("kvstore")` and
the rest) is sent to the host, which passes it through the same choke point, budget and
modules that JavaScript handlers use, and answers. The worker never touches the store or
the network itself.
"""

from __future__ import annotations

import _thread
import asyncio
import gc
import inspect
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pfunc.sandbox import WORKER_MEMORY_EXIT, process_tree
from pfunc.sandbox.python_api import (
    CONNECTION,
    IntervalEvent,
    Request,
    Response,
    _Execution,
)
from pfunc.sandbox.python_errors import error_info
from pfunc.sandbox.python_loop import (
    DeadlinePassed,
    NothingCanWake,
    cancel_all,
    end_default_executor,
    new_loop,
    run_until,
)
from pfunc.sandbox.python_modules import (
    forget_handler_modules,
    load_handler,
    missing_module_advice,
)
from pfunc.sandbox.python_surroundings import Surroundings


def _load_reporting(handler_file: str, source: str) -> Callable[..., Any] | None:
    """The handler, loaded; the host is told whether it loaded, and why not. It is told
    first that the worker is ready: from then on, the handler's top-level code runs, held
    to the execution time limit as a JavaScript module's is."""
    CONNECTION.send({"op": "loading"})
    try:
        handler = load_handler(handler_file, source)
    except BaseException as failure:
        info = error_info(failure, handler_file)
        if isinstance(failure, ModuleNotFoundError):
            info["message"] = missing_module_advice(failure)
        # Where in the handler's own file; a helper module's (it names itself in the
        # message) leaves the handler's line that imported it.
        if (
            isinstance(failure, SyntaxError)
            and isinstance(failure.filename, str)  # (a handler may raise one of its own)
            and os.path.abspath(failure.filename) == handler_file
        ):
            info["line"] = failure.lineno
            info["column"] = failure.offset
        CONNECTION.send({"op": "loaded", "error": info})
        return None
    CONNECTION.send({"op": "loaded", "error": None})
    return handler


def _run(handler: Callable[..., Any], execution: _Execution, handler_file: str) -> dict[str, Any]:
    # The family (from pfunc's table of event kinds) decides what the handler receives.
    family = execution.event["family"]
    if family == "request":
        args: tuple[Any, ...] = (Request(execution), Response(execution))
    elif family == "interval":
        args = (IntervalEvent(execution),)
    else:
        args = (Request(execution),)
    error: dict[str, Any] | None = None
    message_family = family not in ("request", "interval")
    waiting = False  # on what nothing can complete (python_loop.py)
    cut_short = False  # by an exception raised outside any task (a signal handler's)

    def returned(outcome: Any, failure: BaseException | None) -> None:
        """The handler's own ending, the moment it returns (before any task it left takes
        a step): what stands even if those tasks are stopped at the time limit."""
        nonlocal error
        if waiting or cut_short:  # cancelled below: it never ended by itself
            return
        try:
            if failure is not None:
                raise failure
            # Returning the request itself is ok() with the message as it stands, as in
            # JavaScript (ok() resolves to the request).
            if outcome is args[0] and message_family and execution.completion is None:
                args[0].ok()
        except BaseException as caught:  # the handler's exception is the execution's error
            error = error_info(caught, handler_file)
        execution.settled = True
        mine = asyncio.current_task(_LOOP) if _LOOP.is_running() else None
        if any(not task.done() for task in asyncio.all_tasks(_LOOP) if task is not mine):
            ending = {"completion": execution.completion, "error": error}
            CONNECTION.send({"op": "returned", **ending, "warnings": list(execution.warnings)})

    try:
        outcome = handler(*args[: _arity(handler)])
    except BaseException as failure:
        returned(None, failure)
    else:
        if inspect.isawaitable(outcome):
            try:
                _LOOP.run_until_complete(_settling(outcome, returned))
            except NothingCanWake:  # the host words it, as a JavaScript Promise's
                waiting = True
            except BaseException as escaped:  # out of the loop itself (a signal handler's,
                # a task's SystemExit, loop.stop()): the execution's error
                error, cut_short = error_info(escaped, handler_file), True
        else:
            returned(outcome, None)
    # A task that will not end goes with the worker, which is replaced (why: `replaced`).
    if waiting or cut_short:
        replaced = None if cancel_all(_LOOP) else _NOT_ENDED
    else:
        replaced = _finish_leftover_tasks(execution)
    for call in execution.unperformed:
        execution.warnings.append(
            f"{call.label()} was never awaited, so it was not performed: in Python a "
            "module call runs when it is awaited (or .result() is called), unlike a "
            "JavaScript Promise; await it"
        )
    if signal.setitimer(signal.ITIMER_REAL, 0)[0]:  # it would go off in a later execution
        execution.warnings.append(
            "the handler left a timer running (signal.alarm or signal.setitimer); pfunc "
            "cancelled it, so that it cannot go off in a later execution"
        )
    until = _before_the_host_stops(execution)
    ended = end_default_executor(_LOOP, EXECUTOR_ENDS, IDLE_EXECUTOR_ENDS, until)
    left = _left_running(ended, until) + ([replaced] if replaced else [])
    return {
        "op": "done",
        "settled": not waiting,
        "completion": execution.completion,
        "warnings": execution.warnings,
        "error": error,
        "left_running": left,
    }


_NOT_ENDED = "an asyncio task did not end when cancelled; the worker was replaced"
# Seconds for the default executor's threads to end after an execution: all of them,
# when one is still at work; idle ones end once scheduled, which a busy machine puts off.
EXECUTOR_ENDS, IDLE_EXECUTOR_ENDS = 0.05, 1.0
BEFORE_THE_HOST_STOPS = 0.05  # the worker's own waits end so long before the deadline


def _before_the_host_stops(execution: _Execution) -> float | None:
    """When the worker's own waits end (time.monotonic()): a little before the deadline,
    at which the host stops the whole worker; None without a limit."""
    return None if execution.deadline is None else execution.deadline - BEFORE_THE_HOST_STOPS


def _finish_leftover_tasks(execution: _Execution) -> str | None:
    """asyncio tasks the handler started and did not await: as a JavaScript handler's
    un-awaited work, they may finish within the time limit (their module calls reported as
    un-awaited), and what is still running then is cancelled, so that none runs inside a
    later execution (and spends its operations). Why the worker must be replaced, if so."""
    pending = [task for task in asyncio.all_tasks(_LOOP) if not task.done()]
    if not pending:
        return None
    # Tasks that nothing could end are cancelled at once (a timer of the wait's own would
    # hide them).
    deadline = _before_the_host_stops(execution)
    at_limit = stopped = False
    try:
        run_until(_LOOP, asyncio.wait(pending), deadline)
        still: set[asyncio.Task[Any]] = set()
    except (NothingCanWake, DeadlinePassed) as stop:
        # (The wait's own task is left too, its last task maybe just ended: cancelled below.)
        still, stopped = {task for task in pending if not task.done()}, True
        at_limit = isinstance(stop, DeadlinePassed)
    except BaseException:  # one ended the loop itself (SystemExit, loop.stop(), a signal's)
        execution.warnings.append(
            f"the handler left {len(pending)} asyncio task(s) running after it finished, and "
            "one ended the worker's event loop (a SystemExit, loop.stop() or a signal "
            "handler's exception) (PubNub only guarantees awaited work: await them)"
        )
        return "the worker's event loop was ended by a task the handler left; it was replaced"
    replaced = _NOT_ENDED if stopped and not cancel_all(_LOOP) else None
    why = "still running at the time limit" if at_limit else "that nothing could end"
    cut = f"; {len(still)} {why} were cancelled" if still else ""
    execution.warnings.append(
        f"the handler left {len(pending)} asyncio task(s) running after it finished; pfunc "
        f"let them finish{cut} (PubNub only guarantees awaited work: await them)"
    )
    return replaced


_PARENTS_CHILDREN = process_tree.ParentsChildren()


def _os_threads() -> int:
    """This process's threads as Linux counts them (its task folder has two links more
    than it has threads): one system call; 1 where that cannot be read."""
    try:
        return max(os.stat("/proc/self/task").st_nlink - 2, 1)
    except OSError:
        return 1


def _threads_left(ended: int, until: float | None) -> int:
    """Every thread but the main one, started with threading or with _thread (which
    threading does not list): the interpreter counts them all once each has started
    running, the kernel one _thread.start_new_thread made that has not yet, and also one
    of the `ended` executor threads just joined, which a busy machine may not have let
    finish its exit. After those, the two are read again until they agree, for
    IDLE_EXECUTOR_ENDS at most, within the execution's limit."""
    end = time.monotonic() + (IDLE_EXECUTOR_ENDS if ended else 0.0)
    end = end if until is None else min(end, until)
    while True:
        counted, listed = _thread._count(), _os_threads() - 1
        if listed <= counted or time.monotonic() >= end:
            return max(counted, listed)
        time.sleep(0.001)


def _left_running(ended: int, until: float | None) -> list[str]:
    """Threads and child processes the execution left behind (the host then replaces this
    worker, killing its process group)."""
    left = []
    threads = _threads_left(ended, until)
    if threads:
        left.append(f"the handler left {threads} thread(s) running; the worker was replaced")
    # Below the intermediate parent (a subreaper: a child that left its own parent is
    # its now), all but this worker, and but those that ended (zombies, not reaped).
    # Counted only when this worker or its parent has a child besides it: most handlers
    # start none, and the two looks cost two system calls, where the count reads /proc.
    me, parent = os.getpid(), os.getppid()
    children = 0
    if process_tree.has_children() or _PARENTS_CHILDREN.others_than(parent, me):
        children = max(0, process_tree.running_below(parent) - 1)  # this worker is one
    if children:
        left.append(
            f"the handler left {children} child process(es) running; they were killed with "
            "the worker"
        )
    return left


async def _settling(awaitable: Any, returned: Callable[[Any, BaseException | None], None]) -> None:
    """The handler, awaited, and its ending told the moment it returns: the first step of
    a task it left runs in the same pass of the loop, after this."""
    try:
        outcome = await awaitable
    except BaseException as failure:
        returned(None, failure)
    else:
        returned(outcome, None)


# One event loop for the worker's life: a new one per execution costs more than the call.
_LOOP = new_loop()
_ARITY: dict[Callable[..., Any], int] = {}


def _arity(handler: Callable[..., Any]) -> int:
    """How many of (request, response) the handler takes (at least one)."""
    if handler not in _ARITY:
        _ARITY[handler] = max(1, len(inspect.signature(handler).parameters))
    return _ARITY[handler]


# How often the intermediate parent looks for its host (seconds).
HOST_CHECK_EVERY = 0.2


def _adopt_orphans() -> None:
    """Make the intermediate parent the subreaper of what the handler starts (Linux): a
    process that leaves its parent (fork, setsid, fork again) is then adopted here, not by
    init, so the host still finds it under the worker and kills it with the worker."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass  # not Linux: the process group is what is killed


def _stand_by(child: int, host: int) -> None:
    """The intermediate parent's life: wait for the worker, and should the host go first
    without closing it (killed, or ended by a Ctrl-C it heard alone: the worker's group is
    not the terminal's), take the worker's whole group with it, not leave a handler
    running on for nobody."""
    while True:
        # Any child: the worker, or one it left that this subreaper adopted and that has
        # ended since (reaped here, or it would stay a zombie for the worker's life).
        while True:
            try:
                done, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                done = 0
            if not done:
                break
            if done == child:
                code = os.waitstatus_to_exitcode(status)
                os._exit(128 - code if code < 0 else code)  # a signal as the shell shows it
        if os.getppid() != host:  # adopted by another process: the host has gone
            process_tree.kill_below(os.getpid())  # those that left the group (setsid) too
            os.killpg(0, signal.SIGKILL)  # this group: the worker, its children, and this
        time.sleep(HOST_CHECK_EVERY)


def main(incoming_fd: int, outgoing_fd: int) -> None:
    import resource

    # An intermediate parent: the handler's os.getppid() is this process, not the host
    # (killing it does not reach pfunc), and the host kills the whole group at the end.
    host = os.getppid()
    _adopt_orphans()
    child = os.fork()
    if child:
        os.close(incoming_fd)
        os.close(outgoing_fd)
        _stand_by(child, host)
    CONNECTION.incoming = incoming_fd
    os.set_blocking(incoming_fd, False)  # read_soon polls it
    CONNECTION.outgoing = os.fdopen(outgoing_fd, "w", encoding="utf-8")
    surroundings = Surroundings()  # print() goes nowhere (docs/handlers.md)
    surroundings.restore()

    handler: Callable[..., Any] | None = None
    handler_file = source = ""
    while True:
        message = CONNECTION.receive()
        if message["op"] == "load":
            handler_file, source = os.path.abspath(message["path"]), message["source"]
            sys.path.insert(0, str(Path(handler_file).parent))
            if message.get("memory"):
                # The handler may use this much more address space than the worker has now.
                with open("/proc/self/statm") as statm:
                    pages = int(statm.read().split()[0])
                limit = pages * resource.getpagesize() + int(message["memory"])
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            handler = _load_reporting(handler_file, source)
            surroundings.keep_builtins()
        elif message["op"] == "reload" and handler_file:  # another test run: a new module
            # Nothing of the last one may stay: its globals, its cycles, what it allocated.
            handler = None
            _ARITY.clear()
            forget_handler_modules(handler_file)
            gc.collect()
            handler = _load_reporting(handler_file, source)
            surroundings.keep_builtins()
        elif message["op"] == "run" and handler is not None:
            surroundings.restore()
            now = message.get("now") or time.time() * 1000
            execution = _Execution(message["event"], now, message.get("seconds"))
            CONNECTION.execution = execution
            done = _run(handler, execution, handler_file)
            said, stuck = surroundings.put_back_signals()
            done["warnings"].extend(said + surroundings.put_back_builtins())
            if stuck:
                done["left_running"].append(stuck)
            CONNECTION.send(done)
            CONNECTION.execution = None


if __name__ == "__main__":
    try:
        main(int(sys.argv[1]), int(sys.argv[2]))
    except MemoryError:  # past RLIMIT_AS outside the handler's own code
        os._exit(WORKER_MEMORY_EXIT)
