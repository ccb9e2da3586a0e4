"""The Python worker's event loop, which says when nothing can ever end its wait.

A JavaScript handler awaiting a Promise that nothing will settle ends at once, with an
error that says so (no host call is pending). A Python handler's host calls are answered
in line, so its loop waits in select() with no timeout only when it has nothing to run
and no timer: if then no descriptor but the loop's own wake-up pipe is watched, no other
thread runs and no signal handler is set, nothing can end the wait, and the loop raises
NothingCanWake rather than sleep to the time limit. A wait given a deadline
(`run_until`) tells the two apart the same way: tasks a handler left that nothing can
end raise NothingCanWake at once, those that could end raise DeadlinePassed at it.
Standard library only: the worker imports it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import selectors
import signal
import threading
import time
import weakref
from typing import Any

# A signal with one of these is no Python code's: it cannot end a wait by raising.
_NO_HANDLER = (signal.SIG_DFL, signal.SIG_IGN, None, signal.default_int_handler)


class NothingCanWake(Exception):
    """The loop would wait for ever: nothing it could be woken by is there."""


class DeadlinePassed(Exception):
    """The loop reached the deadline `run_until` gave it with work still under way."""


def _one_thread() -> bool:
    """Whether this process runs one thread (threads started outside `threading` too);
    False when it cannot be told (no /proc, or no descriptor left to list it with)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _signal_handlers_set() -> bool:
    """Whether Python code handles a signal (asyncio's add_signal_handler sets one too):
    a signal could then end the wait."""
    return any(signal.getsignal(number) not in _NO_HANDLER for number in signal.valid_signals())


class _WatchfulSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    deadline: float | None = None  # time.monotonic() past which a wait raises DeadlinePassed

    def select(self, timeout: float | None = None) -> list[Any]:
        # Checked only on a wait with no end (none in an execution that completes).
        if (
            timeout is None
            and len(self.get_map()) <= 1  # the loop's own wake-up pipe
            and _one_thread()
            and not _signal_handlers_set()
        ):
            # A thread that woke the loop (call_soon_threadsafe) and ended between the
            # loop's choice to wait and the count above left its byte in the pipe.
            ready: list[Any] = super().select(0)
            if ready:
                return ready
            raise NothingCanWake
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise DeadlinePassed
            timeout = left if timeout is None else min(timeout, left)
        events: list[Any] = super().select(timeout)
        return events


_SELECTORS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _WatchfulSelector] = (
    weakref.WeakKeyDictionary()
)


def new_loop() -> asyncio.AbstractEventLoop:
    """An event loop that raises NothingCanWake (out of run_until_complete) instead of
    waiting on what nothing can complete."""
    selector = _WatchfulSelector()
    loop = asyncio.SelectorEventLoop(selector)
    _SELECTORS[loop] = selector
    loop.set_default_executor(CountingExecutor())  # (see end_default_executor)
    return loop


def run_until(loop: asyncio.AbstractEventLoop, work: Any, deadline: float | None) -> None:
    """Run `work` on a loop of new_loop's to its end, or raise DeadlinePassed at
    `deadline` (time.monotonic()), NothingCanWake as soon as nothing could end it."""
    selector = _SELECTORS[loop]
    selector.deadline = deadline
    try:
        loop.run_until_complete(work)
    finally:
        selector.deadline = None


def cancel_all(loop: asyncio.AbstractEventLoop, rounds: int = 3) -> bool:
    """Cancel every task on `loop` and let each end, as asyncio.run does with what is left
    (a `finally` runs), again for tasks started meanwhile; False when one goes on waiting,
    ends the loop (SystemExit, loop.stop(), a signal handler's exception), or tasks keep
    being started: the worker is replaced."""
    for _ in range(rounds):
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        if not pending:
            return True
        for task in pending:
            task.cancel()
        try:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        except BaseException:  # a wait nothing ends, or the loop itself ended (a signal's)
            return False
    return not any(not task.done() for task in asyncio.all_tasks(loop))


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """The worker loop's default executor (asyncio.to_thread, run_in_executor(None, ...)),
    which knows whether any of its work is unfinished: its threads cannot tell (one whose
    work has just ended is still in its work item's frame when the handler goes on)."""

    def __init__(self) -> None:
        super().__init__(thread_name_prefix="asyncio")
        self.unfinished = 0
        self._counting = threading.Lock()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        with self._counting:
            self.unfinished += 1
        future.add_done_callback(self._finished)  # (before the loop's own: it is first)
        return future

    def _finished(self, _: concurrent.futures.Future[Any]) -> None:
        with self._counting:
            self.unfinished -= 1


def end_default_executor(
    loop: asyncio.AbstractEventLoop, busy: float, idle: float, until: float | None
) -> int:
    """End the threads the loop's default executor keeps, idle, after their work, so that
    only one still at work counts as left running; the next to_thread starts a new one.
    They are waited for `busy` seconds in all when any work is unfinished, else `idle`,
    and never past `until` (time.monotonic()). How many threads it had."""
    # (asyncio's own: a handler's shutdown_default_executor() would refuse later to_thread)
    loop._executor_shutdown_called = False  # type: ignore[attr-defined]
    executor = getattr(loop, "_default_executor", None)
    threads = list(getattr(executor, "_threads", ()))
    if isinstance(executor, CountingExecutor) and not threads:
        return 0  # unused: kept
    loop._default_executor = CountingExecutor()  # type: ignore[attr-defined]
    if executor is None:
        return 0
    finished = isinstance(executor, CountingExecutor) and executor.unfinished == 0
    executor.shutdown(wait=False)  # idle threads end at once; one at work goes on
    end = time.monotonic() + (idle if finished else busy)
    end = end if until is None else min(end, until)
    for thread in threads:
        thread.join(max(end - time.monotonic(), 0.0))
    return len(threads)
