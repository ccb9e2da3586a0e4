"""The processes below one, read from /proc: what a Python handler started is killed by
pid as well as by process group, since a child may leave the group (setsid). Standard
library only: the worker imports it too."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable

SCANS = 50  # of /proc, at most, while stopping what is below a process


def descendants(pid: int) -> list[int]:
    """The processes below `pid`: from each one's children lists in /proc (a few reads,
    not a scan of every process: the worker counts them with a handler's threads still
    holding the interpreter), else from a scan; none where there is no /proc."""
    found = _below(pid, children_of)
    if found is None:  # a kernel without the lists: one scan of every process
        table = _children_table()
        found = _below(pid, lambda parent: table.get(parent, [])) or []
    return found


def _below(pid: int, children: Callable[[int], list[int] | None]) -> list[int] | None:
    found: list[int] = []
    waiting = [pid]
    while waiting:
        listed = children(waiting.pop())
        if listed is None:
            return None
        found += listed
        waiting += listed
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


# Linux's __WALL (not in Python's os): waitid sees every child, also one made by a clone
# whose end signals nothing or another signal than SIGCHLD (a raw clone(2) from ctypes).
_ALL_CHILDREN = 0x40000000


def has_children() -> bool:
    """Whether this process has a child (running, or ended and not reaped), whichever of
    its threads started it and however: one system call, which neither waits nor reaps."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT | _ALL_CHILDREN)
    except ChildProcessError:
        return False
    except OSError:  # no waitid, or no __WALL: count them
        return True
    return True


class ParentsChildren:
    """A parent's list of children in /proc (the Python worker's intermediate parent's),
    opened once and read again at each look (a read of an open list is ~1 us; opening it
    again, ~10). A handler runs in the worker and may put a file of its own on the
    descriptor's number (dup2): the descriptor is checked to be the list opened (its
    device and inode) before each read."""

    def __init__(self) -> None:
        self.parent = -1
        self.listed = -1
        self.identity = (-1, -1)

    def others_than(self, parent: int, me: int) -> bool:
        """Whether `parent` (one thread: one list) has a child besides `me`: in the
        worker, one the handler left, adopted; True when it cannot be read and there is
        /proc."""
        try:
            if parent != self.parent or self._identity() != self.identity:
                self._forget()
                listed = os.open(f"/proc/{parent}/task/{parent}/children", os.O_RDONLY)
                self.parent, self.listed = parent, listed
                self.identity = self._identity()
            return any(int(child) != me for child in os.pread(self.listed, 1 << 16, 0).split())
        except (OSError, ValueError):
            self._forget()
            return os.path.isdir("/proc/self/task")  # no list where there is /proc: count

    def _identity(self) -> tuple[int, int]:
        if self.listed < 0:
            return (-1, -1)
        try:
            status = os.fstat(self.listed)
        except OSError:
            return (-1, -1)
        return (status.st_dev, status.st_ino)

    def _forget(self) -> None:
        """Close the list if the descriptor is still it (else it is the handler's now)."""
        if self.listed >= 0 and self._identity() == self.identity:
            os.close(self.listed)
        self.parent, self.listed, self.identity = -1, -1, (-1, -1)


def _children_table() -> dict[int, list[int]]:
    """Every process's children, from one scan of /proc (each one's parent)."""
    table: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return table
    for name in names:
        fields = _stat_fields(name) if name.isdigit() else None
        if fields is not None and len(fields) > 1 and fields[1].isdigit():
            table.setdefault(int(fields[1]), []).append(int(name))
    return table


def _stat_fields(pid: int | str) -> list[bytes] | None:
    """/proc/PID/stat's fields after the command name (state, parent, ...); None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


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
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] != b"Z"
