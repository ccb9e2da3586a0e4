"""The processes below one, read from /proc: what a Python handler started is killed by
pid as well as by process group, since a child may leave the group (setsid). Standard
library only: the worker imports it too."""

from __future__ import annotations

import contextlib
import os
import signal


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (from /proc; none where there is no /proc)."""
    children: dict[int, list[int]] = {}
    try:
        stats = os.listdir("/proc")
    except OSError:
        return []
    for name in stats:
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
    """SIGKILL every process below `pid` (each that is still there)."""
    for child in descendants(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(child, signal.SIGKILL)


def running(pid: int) -> bool:
    """Whether `pid` is there and has not ended (a zombie waits only to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False
