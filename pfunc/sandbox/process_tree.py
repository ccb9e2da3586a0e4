"""The processes below one, read from /proc: what a Python handler started is killed by
pid as well as by process group, since a child may leave the group (setsid). Standard
library only: the worker imports it too."""

from __future__ import annotations

import contextlib
import os
import signal

SCANS = 50  # of /proc, at most, while stopping what is below a process


def descendants(pid: int) -> list[int]:
    """The processes below `pid`: from each one's children lists in /proc (a few reads,
    not a scan of every process: the worker counts them with a handler's threads still
    holding the interpreter), else from a scan; none where there is no /proc."""
    found: list[int] = []
    waiting = [pid]
    while waiting:
        children = children_of(waiting.pop())
        if children is None:
            return _scanned(pid)
        found += children
        waiting += children
    return found


def children_of(pid: int) -> list[int] | None:
    """`pid`'s children, from /proc/PID/task/*/children; None if the kernel lists none."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []  # gone meanwhile
    children: list[int] = []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as listed:
                children += [int(child) for child in listed.read().split()]
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{task}"):
                continue  # the thread ended
            return None  # a kernel without the lists
        except OSError:
            continue
    return children


def _scanned(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(name))
    found, waiting = [], [pid]
    while waiting:
        for child in children.get(waiting.pop(), []):
            found.append(child)
            waiting.append(child)
    return found


def kill_below(pid: int) -> None:
    """SIGKILL every process below `pid`. Stopped first, scan after scan, until a scan
    finds none new: a process that forks again and again (a daemon changing its pid)
    cannot slip out between the scan and the kill."""
    stopped: set[int] = set()
    for _ in range(SCANS):
        # Only those that run: an ended one may be reaped meanwhile, its pid another's.
        found = [child for child in descendants(pid) if child not in stopped and running(child)]
        if not found:
            break
        for child in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, signal.SIGSTOP)
            stopped.add(child)
    for child in stopped:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(child, signal.SIGKILL)


def running_below(pid: int) -> int:
    """How many processes below `pid` run (not ended): the most of a few scans, since one
    forking again and again may be between its pids when a scan passes."""
    return max((sum(running(child) for child in descendants(pid)) for _ in range(3)), default=0)


def running(pid: int) -> bool:
    """Whether `pid` is there and has not ended (a zombie waits only to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False
