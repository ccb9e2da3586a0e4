"""Channel groups: named sets of channels a client subscribes to at once, kept in the
project's SQLite store. A group change takes effect for open subscriptions: its
listeners (the dev server's waiting long-polls) are told, and resolve their groups again."""

from __future__ import annotations

from collections.abc import Callable

from pfunc.store import KVStore

# PubNub's limit on one add: "up to 200 channels to a channel group per API call" (its
# channel groups reference). A larger add fails there, so it fails here.
MAX_CHANNELS_PER_ADD = 200
# PubNub: "a channel group that holds up to 2,000 channels" (its channel-group limits).
MAX_CHANNELS_PER_GROUP = 2000


class AddRefused(ValueError):
    """An add PubNub refuses (its message says why): nothing is added."""


class ChannelGroups:
    def __init__(self, store: KVStore, keyset: str) -> None:
        self.store = store
        self.keyset = keyset
        self.listeners: list[Callable[[], None]] = []  # called after every change

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    async def add(self, group: str, channels: list[str]) -> None:
        """Add `channels` to `group`, or AddRefused past PubNub's limits: per call, and
        per group."""
        if len(channels) > MAX_CHANNELS_PER_ADD:
            raise AddRefused(
                f"{len(channels)} channels in one call: PubNub adds at most "
                f"{MAX_CHANNELS_PER_ADD} to a channel group per call"
            )
        held = set(await self.channels(group))
        total = len(held | set(channels))
        if total > MAX_CHANNELS_PER_GROUP:
            raise AddRefused(
                f"channel group {group!r} would hold {total:,} channels: PubNub's groups "
                f"hold at most {MAX_CHANNELS_PER_GROUP:,}"
            )
        for channel in channels:
            await self.store.execute(
                "INSERT OR IGNORE INTO channel_groups(keyset,grp,channel) VALUES(?,?,?)",
                (self.keyset, group, channel),
            )
        self._changed()

    async def remove(self, group: str, channels: list[str]) -> None:
        for channel in channels:
            await self.store.execute(
                "DELETE FROM channel_groups WHERE keyset=? AND grp=? AND channel=?",
                (self.keyset, group, channel),
            )
        self._changed()

    async def channels(self, group: str) -> list[str]:
        rows = await self.store.execute(
            "SELECT channel FROM channel_groups WHERE keyset=? AND grp=? ORDER BY channel",
            (self.keyset, group),
        )
        return [row[0] for row in rows]

    async def groups(self) -> list[str]:
        rows = await self.store.execute(
            "SELECT DISTINCT grp FROM channel_groups WHERE keyset=? ORDER BY grp", (self.keyset,)
        )
        return [row[0] for row in rows]

    async def delete(self, group: str) -> None:
        await self.store.execute(
            "DELETE FROM channel_groups WHERE keyset=? AND grp=?", (self.keyset, group)
        )
        self._changed()
