"""Presence state: who is subscribed where, by heartbeats, leaves and timeouts, and the
state each user set. The engine holds one (the dev server and functions read the same);
what a change of it does (a `channel-pnpres` delivery, after-presence functions) is
`server/pubnub_api.presence_event`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Presence:
    """Who is on which channel, by the heartbeats of their subscribe requests."""

    default_heartbeat: int = 300
    _expires: dict[str, dict[str, float]] = field(default_factory=dict)
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
        for channel in sorted(set(self._pending) | set(self._expires)):
            if self.occupancy(channel) <= announce_max and channel not in self._pending:
                continue
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
        members[uuid] = time.monotonic() + (heartbeat or self.default_heartbeat)
        return joined

    def leave(self, channel: str, uuid: str) -> bool:
        members = self._expires.get(channel, {})
        self._state.get(channel, {}).pop(uuid, None)  # state lives while the user is there
        return members.pop(uuid, None) is not None

    def expired(self) -> list[tuple[str, str]]:
        """(channel, uuid) pairs whose heartbeat ran out, removed as they are returned."""
        now, gone = time.monotonic(), []
        for channel, members in self._expires.items():
            for uuid, expires in list(members.items()):
                if expires <= now:
                    del members[uuid]
                    self._state.get(channel, {}).pop(uuid, None)
                    gone.append((channel, uuid))
        return gone
