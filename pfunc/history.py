"""Message persistence: every stored publish of a project, and the actions (reactions,
receipts) added to messages, in its SQLite store.

What PubNub keeps: publishes (not signals, not fires, not `store=0`), with timetoken,
publisher, meta, custom message type and an optional TTL in hours. Time windows follow
PubNub's History API: `start` is exclusive and `end` inclusive (end <= timetoken < start)
when reading; deleting takes start < timetoken <= end, as PubNub documents for deleting
one message (its timetoken as end, one less as start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pfunc import jsonio
from pfunc.store import KVStore

MAX_TIMETOKEN = 10**18  # later than any 17-digit timetoken
ACTION_EVENT = 3  # the subscribe envelope's "e" for message actions
MAX_ACTION_TYPE = 15  # characters of a message action's type (the service refuses more)


def actions_refusal(status: int, message: str) -> dict[str, Any]:
    """PubNub's body for a message-actions call it refuses."""
    return {"status": status, "error": {"source": "actions", "message": message}}


FILE_MESSAGE = 4  # the message type of a file message: the envelope's "e", history's type


@dataclass
class StoredMessage:
    channel: str
    timetoken: int
    message: Any
    meta: Any
    publisher: str | None
    custom_type: str | None
    message_type: int | None = None  # PubNub's: None for a message, FILE_MESSAGE for a file


class MessageHistory:
    def __init__(self, store: KVStore, keyset: str) -> None:
        self.store = store
        self.keyset = keyset

    async def add(
        self,
        channel: str,
        timetoken: int,
        message: Any,
        *,
        meta: Any = None,
        publisher: str | None = None,
        custom_type: str | None = None,
        expires_at: int | None = None,
        message_type: int | None = None,
    ) -> None:
        await self.store.execute(
            "INSERT OR REPLACE INTO messages(keyset,channel,timetoken,message,meta,publisher,"
            "custom_type,expires_at,message_type) VALUES(?,?,?,?,?,?,?,?,?)",
            (
                self.keyset,
                channel,
                timetoken,
                jsonio.dumps(message),
                None if meta is None else jsonio.dumps(meta),
                publisher,
                custom_type,
                expires_at,
                message_type,
            ),
        )

    async def read(
        self,
        channel: str,
        *,
        count: int,
        start: int | None = None,
        end: int | None = None,
        reverse: bool = False,
        now_ms: int,
    ) -> list[StoredMessage]:
        """At most `count` messages with end <= timetoken < start, oldest first: the
        newest of the window, or with `reverse` the oldest."""
        rows = await self.store.execute(
            "SELECT channel,timetoken,message,meta,publisher,custom_type,message_type "
            "FROM messages "
            "WHERE keyset=? AND channel=? AND timetoken<? AND timetoken>=? "
            "AND (expires_at IS NULL OR expires_at>?) "
            f"ORDER BY timetoken {'ASC' if reverse else 'DESC'} LIMIT ?",
            (self.keyset, channel, start or MAX_TIMETOKEN, end or 0, now_ms, count),
        )
        found = [_stored(row) for row in rows]
        return found if reverse else found[::-1]

    async def newest_timetoken(self) -> int:
        """The newest timetoken stored, of a message or an action (0: none), so that a
        fixed clock's timetokens, which repeat from run to run, follow it (a scan of
        both tables: asked only on a fixed clock and a store on disk)."""
        rows = await self.store.execute(
            "SELECT MAX(t) FROM (SELECT MAX(timetoken) AS t FROM messages "
            "UNION ALL SELECT MAX(action_timetoken) FROM message_actions)"
        )
        return int(rows[0][0] or 0)

    async def count_after(self, channel: str, timetoken: int, now_ms: int) -> int:
        """Messages newer than `timetoken` (PubNub's message counts)."""
        rows = await self.store.execute(
            "SELECT COUNT(*) FROM messages WHERE keyset=? AND channel=? AND timetoken>? "
            "AND (expires_at IS NULL OR expires_at>?)",
            (self.keyset, channel, timetoken, now_ms),
        )
        return int(rows[0][0])

    async def delete(self, channel: str, start: int | None, end: int | None) -> None:
        """Delete what PubNub's delete does: between the two timetokens, the message at
        `end` but not the one at `start`, whichever is the larger (one message T: end=T,
        start=T+1); `start` alone, everything before it; `end` alone, it and everything
        after; equal bounds, nothing; neither, the whole channel."""
        if start is not None and end is not None:
            low, high = (start + 1, end) if start < end else (end, start - 1)
        else:
            low = 0 if end is None else end
            high = MAX_TIMETOKEN if start is None else start - 1
        await self.store.execute(
            "DELETE FROM messages WHERE keyset=? AND channel=? AND timetoken>=? AND timetoken<=?",
            (self.keyset, channel, low, high),
        )

    # --- message actions ----------------------------------------------------------------

    async def add_action(self, channel: str, action: MessageAction) -> bool:
        """Store an action; False when the same user already added that type and value to
        that message (PubNub's 409)."""
        rows = await self.store.execute(
            "SELECT 1 FROM message_actions WHERE keyset=? AND channel=? AND message_timetoken=? "
            "AND type=? AND value=? AND uuid=?",
            (
                self.keyset,
                channel,
                action.message_timetoken,
                action.type,
                action.value,
                action.uuid,
            ),
        )
        if rows:
            return False
        await self.store.execute(
            "INSERT INTO message_actions(keyset,channel,action_timetoken,message_timetoken,type,"
            "value,uuid) VALUES(?,?,?,?,?,?,?)",
            (
                self.keyset,
                channel,
                action.action_timetoken,
                action.message_timetoken,
                action.type,
                action.value,
                action.uuid,
            ),
        )
        return True

    async def actions(
        self, channel: str, *, start: int | None, end: int | None, limit: int
    ) -> list[MessageAction]:
        """At most `limit` actions with end <= actionTimetoken < start, the newest of the
        window, oldest first (PubNub's getMessageActions)."""
        rows = await self.store.execute(
            "SELECT message_timetoken,type,value,uuid,action_timetoken FROM message_actions "
            "WHERE keyset=? AND channel=? AND action_timetoken<? AND action_timetoken>=? "
            "ORDER BY action_timetoken DESC LIMIT ?",
            (self.keyset, channel, start or MAX_TIMETOKEN, end or 0, limit),
        )
        return [MessageAction(int(r[0]), r[1], r[2], r[3], int(r[4])) for r in rows][::-1]

    async def actions_page(
        self, channel: str, *, start: int | None, end: int | None, limit: int
    ) -> dict[str, Any]:
        """getMessageActions' answer: the newest `limit` actions of the window. No `more`
        when the limit cut it: PubNub's recordings have none (ruby's message_actions
        get_006 to get_009; get_002's, to "https://pubnub.com", is the fixture's own);
        a client asks for the next page from the oldest action's timetoken."""
        found = await self.actions(channel, start=start, end=end, limit=limit)
        return {"data": [action.to_json() for action in found]}

    async def actions_on(self, channel: str, message_timetoken: int) -> list[MessageAction]:
        rows = await self.store.execute(
            "SELECT message_timetoken,type,value,uuid,action_timetoken FROM message_actions "
            "WHERE keyset=? AND channel=? AND message_timetoken=? ORDER BY action_timetoken",
            (self.keyset, channel, message_timetoken),
        )
        return [MessageAction(int(r[0]), r[1], r[2], r[3], int(r[4])) for r in rows]

    async def remove_action(
        self, channel: str, message_timetoken: int, action_timetoken: int
    ) -> MessageAction | None:
        """Remove one action; the action removed, or None when there was none."""
        rows = await self.store.execute(
            "DELETE FROM message_actions WHERE keyset=? AND channel=? AND message_timetoken=? "
            "AND action_timetoken=? RETURNING message_timetoken,type,value,uuid,action_timetoken",
            (self.keyset, channel, message_timetoken, action_timetoken),
        )
        return (
            MessageAction(int(rows[0][0]), rows[0][1], rows[0][2], rows[0][3], int(rows[0][4]))
            if rows
            else None
        )


@dataclass
class MessageAction:
    message_timetoken: int
    type: str
    value: str
    uuid: str
    action_timetoken: int

    def to_json(self) -> dict[str, str]:
        """As PubNub sends an action: timetokens as strings."""
        return {
            "messageTimetoken": str(self.message_timetoken),
            "type": self.type,
            "uuid": self.uuid,
            "value": self.value,
            "actionTimetoken": str(self.action_timetoken),
        }


def action_event(event: str, action: MessageAction) -> dict[str, Any]:
    """What subscribers receive when an action is "added" or "removed"."""
    return {"source": "actions", "version": "1.0", "data": action.to_json(), "event": event}


def grouped_actions(actions: list[MessageAction]) -> dict[str, dict[str, list[dict[str, str]]]]:
    """Actions as fetchMessages carries them: {type: {value: [{uuid, actionTimetoken}]}}."""
    grouped: dict[str, dict[str, list[dict[str, str]]]] = {}
    for action in actions:
        grouped.setdefault(action.type, {}).setdefault(action.value, []).append(
            {"uuid": action.uuid, "actionTimetoken": str(action.action_timetoken)}
        )
    return grouped


def _stored(row: tuple[Any, ...]) -> StoredMessage:
    channel, timetoken, message, meta, publisher, custom_type, message_type = row
    return StoredMessage(
        channel,
        int(timetoken),
        jsonio.loads(message),
        None if meta is None else jsonio.loads(meta),
        publisher,
        custom_type,
        message_type,
    )
