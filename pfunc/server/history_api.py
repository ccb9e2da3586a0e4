"""PubNub's Message Persistence API over the project's history (pfunc/history.py):
history v2, fetch messages v3, message counts and delete, in the SDKs' wire shapes
(taken from the recorded exchanges in ../shared/wire)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pfunc.history import StoredMessage, grouped_actions
from pfunc.numbers import whole_number
from pfunc.server.state import DevState
from pfunc.server.wire import flag, names, pubnub_error, query_count, wire_json, wrong_key

SUB = "/sub-key/{sub}"
OK = {"status": 200, "error": False, "error_message": ""}


def _timetoken(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if text in (None, ""):
        return None
    return parse_timetoken(name, text)


def parse_timetoken(name: str, text: str) -> int:
    """A timetoken from a query or path: ASCII digits, at most 10**18 (SQLite's range);
    a 400 otherwise."""
    number = whole_number(text, 18)
    if number is None:
        raise web.HTTPBadRequest(reason=f"{name} must be a timetoken, got {text[:30]!r}")
    return number


class HistoryAPI:
    def __init__(self, state: DevState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(f"/v2/history{SUB}/channel/{{channel}}", self.history),
            web.get(f"/v3/history{SUB}/message-counts/{{channels}}", self.message_counts),
            web.get(f"/v3/history{SUB}/channel/{{channels}}", self.fetch),
            web.get(f"/v3/history-with-actions{SUB}/channel/{{channels}}", self.fetch),
            web.delete(f"/v3/history{SUB}/channel/{{channel}}", self.delete),
        ]

    def _refused(self, request: web.Request) -> web.Response | None:
        return wrong_key(request, self.state.engine.runtime.keyset.subscribe_key, "History")

    async def history(self, request: web.Request) -> web.Response:
        """v2: [messages, first timetoken, last timetoken]; messages as they were, or with
        include_token as {message, timetoken} (and meta with include_meta)."""
        refused = self._refused(request)
        if refused:
            return refused
        start, end = _timetoken(request, "start"), _timetoken(request, "end")
        found = await self.state.engine.history.read(
            request.match_info["channel"],
            count=query_count(request, "count", 100, 100),
            start=start,
            end=end,
            # The SDK's own words: "If both start and end arguments are provided, reverse
            # is ignored and messages are returned starting with the newest message."
            reverse=flag(request, "reverse") and (start is None or end is None),
            now_ms=self.state.engine.runtime.clock.now_ms(),
        )
        with_token, with_meta = flag(request, "include_token"), flag(request, "include_meta")
        # As text on request (JavaScript holds a 17-digit number to ~16 digits): each
        # message's timetoken (string_message_token, the JS SDK's stringifiedTimeToken),
        # the page's first and last (stringtoken), as PubNub's REST reference says.
        message_token: Any = str if flag(request, "string_message_token") else int
        page_token: Any = str if flag(request, "stringtoken") else int
        messages: list[Any] = []
        for stored in found:
            if not (with_token or with_meta):
                messages.append(stored.message)
                continue
            entry: dict[str, Any] = {"message": stored.message}
            if with_token:
                entry["timetoken"] = message_token(stored.timetoken)
            if with_meta:
                entry["meta"] = stored.meta if stored.meta is not None else ""
            messages.append(entry)
        first = found[0].timetoken if found else 0
        last = found[-1].timetoken if found else 0
        return wire_json([messages, page_token(first), page_token(last)])

    async def fetch(self, request: web.Request) -> web.Response:
        """v3: {channels: {name: [{message, timetoken, ...}]}} for one or more channels."""
        refused = self._refused(request)
        if refused:
            return refused
        channels = names(request.match_info["channels"])
        with_actions = "history-with-actions" in request.path
        # PubNub's defaults and ceilings: 100 for one channel, 25 for several or with actions.
        most = 100 if len(channels) == 1 and not with_actions else 25
        count = query_count(request, "max", most, most)
        start, end = _timetoken(request, "start"), _timetoken(request, "end")
        reverse = flag(request, "reverse")
        answer: dict[str, list[dict[str, Any]]] = {}
        for channel in channels:
            found = await self.state.engine.history.read(
                channel,
                count=count,
                start=start,
                end=end,
                reverse=reverse,
                now_ms=self.state.engine.runtime.clock.now_ms(),
            )
            if found:
                answer[channel] = [self._fetched(request, stored) for stored in found]
                if with_actions:
                    await self._with_actions(channel, answer[channel])
        # No `more` for a page its max cut: PubNub's recordings have none (120 stored,
        # max 25, with actions); a client asks for the next from the oldest timetoken.
        return wire_json({"status": 200, "channels": answer, "error_message": "", "error": False})

    async def _with_actions(self, channel: str, entries: list[dict[str, Any]]) -> None:
        """fetchMessages with actions: {type: {value: [{uuid, actionTimetoken}]}} per message."""
        history = self.state.engine.history
        for entry in entries:
            grouped = grouped_actions(await history.actions_on(channel, int(entry["timetoken"])))
            if grouped:
                entry["actions"] = grouped

    @staticmethod
    def _fetched(request: web.Request, stored: StoredMessage) -> dict[str, Any]:
        entry: dict[str, Any] = {"message": stored.message, "timetoken": str(stored.timetoken)}
        if flag(request, "include_meta"):
            entry["meta"] = stored.meta if stored.meta is not None else ""
        if flag(request, "include_message_type"):
            entry["message_type"] = stored.message_type  # None: a plain message
        if flag(request, "include_uuid") and stored.publisher:
            entry["uuid"] = stored.publisher
        if flag(request, "include_custom_message_type") and stored.custom_type:
            entry["custom_message_type"] = stored.custom_type
        return entry

    async def message_counts(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused:
            return refused
        channels = names(request.match_info["channels"])
        if "channelsTimetoken" in request.query:
            tokens = request.query["channelsTimetoken"].split(",")
            if len(tokens) == 1:
                tokens = tokens * len(channels)
        else:
            tokens = [request.query.get("timetoken", "")] * len(channels)
        if len(tokens) != len(channels):
            return pubnub_error(
                400, "give one timetoken, or one per channel in channelsTimetoken", "History"
            )
        tokens = [str(parse_timetoken("timetoken", token)) for token in tokens]
        now = self.state.engine.runtime.clock.now_ms()
        counts = {
            channel: await self.state.engine.history.count_after(channel, int(token), now)
            for channel, token in zip(channels, tokens, strict=True)
        }
        return wire_json({**OK, "channels": counts})

    async def delete(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused:
            return refused
        await self.state.engine.history.delete(
            request.match_info["channel"], _timetoken(request, "start"), _timetoken(request, "end")
        )
        return wire_json(dict(OK))
