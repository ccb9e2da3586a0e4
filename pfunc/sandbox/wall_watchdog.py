"""A thread that stops JavaScript at a wall-clock deadline without taking part in it.

The binding's own time limit (the one a context on a thread other than the main one is
held to: time_limit.py) is checked in C, with no GIL, but against the process's CPU
time: busy threads elsewhere in pfunc make it fire early (a 10 s runaway stopped after
~6 s while the dev server served other requests). The watchdog lets that C check stand
and moves its deadline instead: at the wall-clock deadline it calls the context's `stop`
(time_limit.py writes the binding's limit down to nothing), and again every POKE_EVERY
until the arming is withdrawn, since an entry into the engine that starts at that
moment copies the limit it read just before.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

POKE_EVERY = 0.005  # seconds between stops of an arming past its deadline


class WallWatchdog:
    """Armings (a deadline and a `stop` for each) and the one thread that keeps them.

    `stop` runs under the watchdog's lock, so once `withdraw` returns it never runs for
    that arming again: an arming withdrawn and armed anew is never stopped for the old
    deadline."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._armed: dict[int, tuple[float, Callable[[], None]]] = {}
        self._queue: list[tuple[float, int]] = []  # (deadline, arming): earliest first
        self._numbers = itertools.count(1)
        self._thread: threading.Thread | None = None

    def arm(self, deadline: float, stop: Callable[[], None]) -> int:
        """Call `stop` at `deadline` (time.monotonic) and after until withdrawn; the
        arming's number, for withdraw."""
        number = next(self._numbers)
        with self._lock:
            self._armed[number] = (deadline, stop)
            heapq.heappush(self._queue, (deadline, number))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._keep, name="pfunc-wall-watchdog", daemon=True
                )
                self._thread.start()
            elif self._queue[0][1] == number:
                self._lock.notify()  # earlier than what the thread sleeps towards
        return number

    def withdraw(self, number: int) -> None:
        with self._lock:
            self._armed.pop(number, None)  # (its queue entry is skipped when it comes up)
            if len(self._queue) > 2 * len(self._armed) + 64:
                # Withdrawn long before their deadlines (the usual case): dropped at once
                # every so often rather than kept until then.
                self._queue = [entry for entry in self._queue if entry[1] in self._armed]
                heapq.heapify(self._queue)

    def _keep(self) -> None:
        with self._lock:
            while True:
                while self._queue and self._queue[0][1] not in self._armed:
                    heapq.heappop(self._queue)
                if not self._queue:
                    self._lock.wait()
                    continue
                deadline, number = self._queue[0]
                late = time.monotonic() - deadline
                if late < 0:
                    self._lock.wait(-late)
                    continue
                heapq.heappop(self._queue)
                _, stop = self._armed[number]
                stop()
                heapq.heappush(self._queue, (time.monotonic() + POKE_EVERY, number))


WATCHDOG = WallWatchdog()
