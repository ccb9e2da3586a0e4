"""The execution clock: what `Date.now()` returns inside a handler, and what KV expiry uses."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """Real time unless fixed; a fixed clock can be advanced by tests."""

    def __init__(self, fixed_ms: int | None = None) -> None:
        self._fixed_ms = fixed_ms

    def now_ms(self) -> int:
        if self._fixed_ms is not None:
            return self._fixed_ms
        return int(time.time() * 1000)

    def fixed_ms_or_none(self) -> int | None:
        """The value the sandbox freezes `Date` at, or None for real time."""
        return self._fixed_ms

    def advance(self, seconds: float) -> None:
        if self._fixed_ms is None:
            raise ValueError("only a fixed clock can be advanced; fix it first (e.g. --now)")
        self._fixed_ms += int(seconds * 1000)

    @classmethod
    def parse_fixed(cls, text: str) -> Clock:
        """Build a fixed clock from ISO-8601 text; a time without zone is UTC."""
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return cls(int(moment.timestamp() * 1000))


class Timetokens:
    """PubNub timetokens: 17 digits, 100-ns units since the epoch, strictly increasing
    within a process (publishes, subscribe cursors, pubnub.time()). On a fixed clock
    (--now, scenarios) they count from its moment, so a run's timetokens repeat."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._last = 0
        self._clock = clock

    def at_least(self, timetoken: int) -> None:
        """Every next timetoken comes after `timetoken` (one a store already holds)."""
        self._last = max(self._last, timetoken)

    def next(self) -> str:
        fixed_ms = None if self._clock is None else self._clock.fixed_ms_or_none()
        now = int(time.time() * 10_000_000) if fixed_ms is None else fixed_ms * 10_000
        self._last = max(now, self._last + 1)
        return str(self._last)
