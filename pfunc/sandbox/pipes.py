"""Reading the pipes between the host and a Python handler's worker process.

A host call is a round trip through two pipes, and each leg used to wake a sleeping
process: measured, ~120 us of the ~180 us a call took. While an execution runs, the
answer usually comes within tens of microseconds, so each side first reads without
sleeping for at most SPIN, and only then sleeps in poll(). Only with two CPUs or more:
on one, the side that spins would hold the CPU the other side needs.
"""

from __future__ import annotations

import os
import select
import time


def _cpus() -> float:
    """The CPUs this process may use: its affinity, and a cgroup quota if one is lower
    (a container started with --cpus=1 sees all the host's CPUs in its affinity)."""
    cpus: float = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    try:
        with open("/sys/fs/cgroup/cpu.max") as limits:
            quota, period = limits.read().split()[:2]
        if quota != "max":
            cpus = min(cpus, int(quota) / int(period))
    except (OSError, ValueError):
        pass
    return cpus


SPIN = 0.0002 if _cpus() >= 2 else 0.0  # seconds
# Between reads, the CPU goes to whatever else is ready on it: when the scheduler has put
# both sides on one CPU, the side that spins would otherwise hold it for the whole SPIN
# while the other waits to answer (measured: runs of executions at ~2 ms instead of 0.3).
_yield = getattr(os, "sched_yield", lambda: None)


def read_soon(fd: int) -> bytes | None:
    """What the non-blocking pipe `fd` holds within SPIN seconds (b"" at its end), or
    None when nothing came."""
    until = time.perf_counter() + SPIN
    while True:
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            if time.perf_counter() >= until:
                return None
            _yield()


def wait_readable(fd: int, seconds: float | None) -> bool:
    """Sleep until `fd` can be read (or `seconds` pass): whether it can. poll(), not
    select(): a busy server has descriptors past select's 1,024."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(None if seconds is None else max(seconds, 0) * 1000))
