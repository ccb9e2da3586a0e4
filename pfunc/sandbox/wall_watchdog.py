"""A thread that stops JavaScript at a wall-clock deadline without taking part in it.

The C time limit (the one a context on a thread other than the main one is held to:
time_limit.py, the binding's handler) is checked with no GIL, but against the process's
CPU time: busy threads elsewhere in pfunc make it fire early (a 10 s runaway stopped after
~6 s while the dev server served other requests). The watchdog lets that C check stand
and moves its deadline instead: once an owner's deadline has passed it asks the owner to
stop (time_limit.py writes the C limit down to nothing), and again every TICK while the
deadline stands, since an entry into the engine that starts at that moment may copy the
limit it read just before (the binding's own limit does).

Arming costs the armed thread a lock of its own context and two attribute writes: each
slice of a threaded execution arms and disarms, and a queue of armings behind one shared
lock made four busy threads wait for one another (52 us a slice instead of 29). The
thread instead looks at each owner's deadline every TICK while one is set, sleeps while
none is, and ends after IDLE_END of that (the dev server's idle pools shrink back; the
next arming starts it again). Owners are held weakly: a context that is done with is
not kept for the watchdog.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import weakref
from typing import Protocol

TICK = 0.005  # seconds between looks at the deadlines, while one is set
IDLE_END = 2.0  # seconds with no deadline set after which the thread ends


class Watched(Protocol):
    """What the watchdog reads of an owner (time_limit.TimeLimit)."""

    @property
    def deadline(self) -> float:
        """When (time.monotonic) its JavaScript must stop; math.inf while not armed."""
        ...

    def stop_if_past(self, now: float) -> None:
        """Stop the JavaScript if the deadline (read again, atomically with disarming) is
        not after `now`."""
        ...

    def renew(self, now: float) -> None:
        """(Each TICK while the deadline is ahead.) Keep its C limit a short lease."""
        ...


class WallWatchdog:
    """The owners whose deadlines it keeps, and the one thread that keeps them."""

    def __init__(self) -> None:
        self._owners: weakref.WeakSet[Watched] = weakref.WeakSet()
        self._lock = threading.Lock()  # the owners' set
        self._life = threading.Lock()  # the thread's start and end
        self._wake = threading.Event()
        self._idle = True  # (so that the first arming starts the thread)
        self._thread: threading.Thread | None = None

    def register(self, owner: Watched) -> None:
        """Keep `owner`'s deadlines from now on (once for each owner)."""
        with self._lock:
            self._owners.add(owner)

    def armed(self) -> None:
        """An owner's deadline was just set: the thread looks at it if it was asleep, and
        is started if it had ended (idle for IDLE_END). Raises RuntimeError when it
        cannot be started."""
        if not self._idle:  # (read after the deadline was set: see _keep)
            return
        self._idle = False
        self._wake.set()
        with self._life:  # (an ending thread decides under it: see _keep)
            if self._thread is None:
                thread = threading.Thread(
                    target=self._keep, name="pfunc-wall-watchdog", daemon=True
                )
                try:
                    thread.start()
                except RuntimeError:  # no thread now: the next arming tries again
                    self._idle = True
                    raise
                self._thread = thread

    def _owners_now(self) -> list[Watched]:
        with self._lock:
            return list(self._owners)

    def _any_set(self) -> bool:
        """Whether any owner's deadline is set (its own frame: no owner held after)."""
        return any(owner.deadline < math.inf for owner in self._owners_now())

    def _look(self) -> float:
        """Stop every owner past its deadline; the earliest deadline still set (math.inf:
        none). Its own frame, so that no owner is held once it returns."""
        owners = self._owners_now()
        now = time.monotonic()
        earliest = math.inf
        for owner in owners:
            deadline = owner.deadline
            with contextlib.suppress(Exception):  # (the thread must outlive any one)
                if deadline <= now:
                    owner.stop_if_past(now)
                elif deadline < math.inf:
                    owner.renew(now)
            earliest = min(earliest, deadline)
        return earliest - now

    def _keep(self) -> None:
        while True:
            wait = self._look()
            if wait < math.inf:
                # Past a deadline (the stop is made again) or before the next one.
                time.sleep(min(wait, TICK) if wait > 0 else TICK)
                continue
            # Asleep until a deadline is set. One set before `_idle` is seen by the
            # second look; one set after it wakes the thread (armed()).
            self._idle = True
            if self._any_set():
                self._idle = False
                continue
            woken = self._wake.wait(IDLE_END)
            self._wake.clear()
            if woken:
                continue
            # Idle for IDLE_END: the thread ends, as the dev server's idle pools shrink.
            # Decided under `_life`, which an arming that finds the thread idle takes
            # to start it again: one that came since is seen here, or starts a new one.
            with self._life:
                if self._idle and not self._any_set():
                    self._thread = None
                    return


WATCHDOG = WallWatchdog()
