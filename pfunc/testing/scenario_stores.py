"""The temporary folders of scenarios' disk stores (`store = "disk"`).

Ctrl-C ends `pfunc test` at once (the terminal's default, so that a handler's endless
loop cannot put it off), and `pfunc test -n` ends its pytest workers so too: neither
removes the folder of the scenario it stopped. Each folder is named with the id of the
process it belongs to, and the first disk scenario of a run removes those of processes
that have ended since.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

_PREFIX = "pfunc-scenario-"
_swept = False  # once a process


@contextlib.contextmanager
def scenario_store_folder() -> Iterator[Path]:
    """A new folder for one scenario's store, removed after it."""
    global _swept
    if not _swept:
        _swept = True
        _remove_those_of_ended_processes()
    with tempfile.TemporaryDirectory(prefix=f"{_PREFIX}{os.getpid()}-") as folder:
        yield Path(folder)


def _remove_those_of_ended_processes() -> None:
    for folder in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*-*"):
        owner = folder.name.removeprefix(_PREFIX).split("-", 1)[0]
        if owner.isdigit() and not _running(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's: running
        return True
    return True
