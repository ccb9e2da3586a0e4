"""Presence state: who is subscribed where, by heartbeats, leaves and timeouts, and the
state each user set. The engine holds one (the dev server and functions read the same);
what a change of it does (a `channel-pnpres` delivery, after-presence functions) is
`server/pubnub_api.presence_event`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Presence:
    """Who is on which channel, by the heartbeats of their subscribe requests."""

    default_heartbeat: int = 300
    _expires: dict[str, dict[str, float]] = field(default_factory=dict)
    # channel -> uuid -> the heartbeat period the user last announced there: a subscribe
    # long-poll, which carries none (the SDKs' event engine sends it on /heartbeat only),
    # keeps the user for that long, not for the default.
    _periods: dict[str, dict[str, int]] = field(default_factory=dict)
    # channel -> uuid -> the state that user set there (setState, or subscribe's state).
    _state: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # Interval mode: channel -> action -> uuids since its last interval announcement.
    _pending: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    _announced: dict[str, float] = field(default_factory=dict)  # channel -> when

    def hold(self, channel: str, action: str, uuid: str) -> None:
        """Keep a join, leave or timeout for the channel's next interval announcement."""
        self._pending.setdefault(channel, {}).setdefault(action, []).append(uuid)

    def intervals_due(self, announce_max: int, every: float) -> list[tuple[str, dict[str, Any]]]:
        """(channel, what changed) for channels in interval mode whose interval is up."""
        now, due = time.monotonic(), []
        for channel in [c for c in self._announced if c not in self._expires]:
            if channel not in self._pending and now - self._announced[channel] >= every:
                del self._announced[channel]  # emptied, announced, its interval over
        crowded = {c for c, members in self._expires.items() if len(members) > announce_max}
        for channel in sorted(crowded | set(self._pending)):
            if now - self._announced.get(channel, 0.0) < every:
                continue
            self._announced[channel] = now
            due.append((channel, self._pending.pop(channel, {})))
        return due

    def occupancy(self, channel: str) -> int:
        return len(self._expires.get(channel, {}))

    def members(self, channel: str) -> list[str]:
        return sorted(self._expires.get(channel, {}))

    def occupied(self) -> list[str]:
        """Channels with someone present, sorted."""
        return sorted(channel for channel, members in self._expires.items() if members)

    def channels_of(self, uuid: str) -> list[str]:
        return sorted(channel for channel, members in self._expires.items() if uuid in members)

    def set_state(self, channel: str, uuid: str, state: dict[str, Any]) -> None:
        if state:
            self._state.setdefault(channel, {})[uuid] = state
        else:  # an empty state clears it, as in PubNub
            self._state.get(channel, {}).pop(uuid, None)

    def state(self, channel: str, uuid: str) -> dict[str, Any]:
        return self._state.get(channel, {}).get(uuid, {})

    def beat(self, channel: str, uuid: str, heartbeat: int | None) -> bool:
        """Record a heartbeat; True when this is a join (the user was not present)."""
        members = self._expires.setdefault(channel, {})
        joined = uuid not in members
        if heartbeat:
            self._periods.setdefault(channel, {})[uuid] = heartbeat
        else:
            heartbeat = self._periods.get(channel, {}).get(uuid, self.default_heartbeat)
        members[uuid] = time.monotonic() + heartbeat
        return joined

    def leave(self, channel: str, uuid: str) -> bool:
        left = uuid in self._expires.get(channel, {})
        self._forget(channel, uuid)
        return left

    def expired(self) -> Iterator[tuple[str, str]]:
        """(channel, uuid) pairs whose heartbeat ran out, each removed just before it is
        given: the timeout event made for it then reads the occupancy of its own moment
        (three users timing out together are 3, 2 and 1 left, not 1, 1 and 1), and tells
        whether it is above announce_max as it was then."""
        now = time.monotonic()
        gone = [
            (channel, uuid)
            for channel, members in self._expires.items()
            for uuid, expires in members.items()
            if expires <= now
        ]
        for channel, uuid in gone:
            self._forget(channel, uuid)
            yield channel, uuid

    def _forget(self, channel: str, uuid: str) -> None:
        """The user is no longer on the channel, nor its state (which lives while the user
        is there); a channel left empty is dropped, or every channel that ever had a
        heartbeat would be walked every second for as long as the server runs."""
        for table in (self._expires, self._state, self._periods):
            entries = table.get(channel)
            if entries is not None:
                entries.pop(uuid, None)
                if not entries:
                    del table[channel]


HERE_NOW_MAXIMUM = 1000  # occupants per channel in one answer: the SDKs' default limit


def here_now_page(limit: Any, offset: Any) -> tuple[int, int]:
    """Here Now's limit (0 to 1000, default 1000; 0: the count alone) and offset (from 0),
    as the REST query or a function's options give them: a value that is no whole number
    is the default, one out of range the nearest bound (PubNub's errors for them are not
    recorded)."""

    def whole(value: Any, default: int, highest: int) -> int:
        try:
            number = int(value if value is not None else default)
        except (TypeError, ValueError):
            return default
        if isinstance(value, float) and not value.is_integer():
            return default
        return min(max(number, 0), highest)

    return whole(limit, HERE_NOW_MAXIMUM, HERE_NOW_MAXIMUM), whole(offset, 0, 2**31)
