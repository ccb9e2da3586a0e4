"""What a Python handler's execution finds around it in its worker, put back around each
one (python_worker.py): the working folder, print() going nowhere, what each signal
does, and Python's builtins, so that what one execution changed cannot act in the next."""

from __future__ import annotations

import _signal
import builtins
import operator
import os
import signal
import sys
from typing import Any


class Surroundings:
    """What an execution finds around it: the working folder the worker started in and
    print() going nowhere (put back before each one; a handler that closed its standard
    error or changed folder broke every later execution of its worker), and the signals'
    handling and the builtins (put back after each one, with a warning)."""

    def __init__(self) -> None:
        self.folder = os.getcwd()
        self.sink = open(os.devnull, "w")  # noqa: SIM115 - the worker's life long
        # What each signal does in the worker, read through _signal (the C module: 1.5 us
        # for all of them, signal.getsignal 28 us).
        catchable = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}
        self.signals = [(int(number), _signal.getsignal(number)) for number in catchable]
        self.builtins: dict[str, Any] = {}

    def put_back_signals(self) -> tuple[list[str], str | None]:
        """The signals whose handling the execution changed (a handler's signal.signal
        would otherwise act in later executions), put back as the worker had them: a
        warning naming them, if any, and why the worker must be replaced, if one cannot
        be put back (its handling was set outside Python: faulthandler, say)."""
        changed = [
            (number, was) for number, was in self.signals if _signal.getsignal(number) != was
        ]
        if not changed:
            return [], None
        stuck = [number for number, was in changed if was is None]
        for number, was in changed:
            if was is not None:
                signal.signal(number, was)
        names = ", ".join(_signal_name(number) for number, _ in changed)
        said = f"the handler changed what {names} does in its worker (signal.signal)"
        if stuck:
            which = ", ".join(map(_signal_name, stuck))
            return [said], f"what {which} does cannot be put back; the worker was replaced"
        return [
            f"{said}; pfunc put the worker's handling back, so that it cannot act in a "
            "later execution"
        ], None

    def keep_builtins(self) -> None:
        """Python's builtins as the handler's load left them (what top-level code adds, a
        polyfill, is the handler's own and kept)."""
        self.builtins = dict(builtins.__dict__)

    def put_back_builtins(self) -> list[str]:
        """The builtins an execution changed (`builtins.str = int` broke every later
        execution of its worker, pfunc's own code in it too), put back: a warning, if any."""
        now = builtins.__dict__
        kept = self.builtins
        # The same objects in the same places (by identity, in C: ~3 us; == would call a
        # handler's __eq__): unchanged. A name deleted and set again is looked at below.
        if (
            len(now) == len(kept)
            and all(map(operator.is_, now.keys(), kept.keys()))
            and all(map(operator.is_, now.values(), kept.values()))
        ):
            return []
        changed = [name for name, value in kept.items() if now.get(name, now) is not value]
        added = [name for name in now if name not in kept]
        if not changed and not added:
            return []
        for name in added:
            del now[name]
        now.update(kept)
        names = ", ".join(sorted(changed + added)[:5])
        return [
            f"the handler changed Python's builtins ({names}) in its worker; pfunc put them "
            "back, so that the change cannot act in a later execution"
        ]

    def restore(self) -> None:
        try:
            os.fstat(self.sink.fileno())  # closed (the file or its descriptor)?
        except (OSError, ValueError):
            self.sink = open(os.devnull, "w")  # noqa: SIM115
        sys.stdout = sys.stderr = self.sink
        try:
            if os.getcwd() != self.folder:
                os.chdir(self.folder)
        except OSError:
            os.chdir(self.folder)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:  # real-time signals have no name of their own
        return f"signal {number}"
