"""Where a QuickJS context's JavaScript hands its host calls to Python as it makes them
(where pfunc's own time limit lets it call Python: cpu_limit.py), read after each slice
instead of a queue the prelude would serialise and Python poll."""

from __future__ import annotations

from typing import Any

from pfunc.jsonio import plain_loads
from pfunc.sandbox import CORRUPTED, SandboxInterrupted


class HostInbox:
    """Where a context's JavaScript hands its host calls to Python as it makes them, and
    says that the execution in progress settled: read after each slice (poll)."""

    __slots__ = ("calls", "settled")

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any, Any, Any]] = []
        self.settled = False

    def received(self, call_id: Any, module: Any, method: Any, args_json: Any) -> None:
        self.calls.append((call_id, module, method, args_json))

    def settle(self) -> None:
        self.settled = True

    def take(self) -> tuple[bool, list[Any]]:
        """(settled?, the calls made since the last take, their arguments read)."""
        calls = self.calls
        if not calls:
            return self.settled, []
        self.calls = []
        try:
            return self.settled, [
                [call_id, module, method, plain_loads(args_json)]
                for call_id, module, method, args_json in calls
            ]
        except (TypeError, ValueError):
            raise SandboxInterrupted(CORRUPTED, "") from None
