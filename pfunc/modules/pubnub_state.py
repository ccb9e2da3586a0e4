"""The pubnub module's calls on the project's state: history, fetchMessages,
messageCounts, deleteMessages, hereNow, whereNow, getState, setState and message actions.

They read and change the same history, actions and presence the dev server's REST API
serves, and answer with what the JavaScript SDK answers an application (the `pubnub`
module of PubNub Functions is that SDK). Each is an operation of kind "pubnub".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pfunc.announcement import presence_payload
from pfunc.events import presence_message
from pfunc.history import (
    ACTION_EVENT,
    FILE_MESSAGE,
    MAX_ACTION_TYPE,
    MessageAction,
    action_event,
    actions_refusal,
    grouped_actions,
)
from pfunc.modules.calls import (
    CallContext,
    HandlerCallError,
    required_text,
    service_status,
    user_id,
)
from pfunc.numbers import whole_number
from pfunc.presence import here_now_page
from pfunc.pubnub_data import PubNubData

# A call of the pubnub module's table: (options, the project's state, the context).
Call = Callable[[Any, PubNubData, CallContext], Awaitable[Any]]


def _names(options: dict[str, Any], name: str, method: str) -> list[str]:
    value = options.get(name)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise HandlerCallError("TypeError", f"pubnub.{method}: {name} must list channel names")
    return value


async def _presence_channels(
    options: dict[str, Any], data: PubNubData, method: str, required: bool
) -> list[str] | None:
    """The channels a presence call names: `channels`, then the channels of its
    `channelGroups`, each once, as the SDK's calls take them; None when it names neither
    (a TypeError when it must)."""
    named = _names(options, "channels", method) if options.get("channels") else []
    groups = _names(options, "channelGroups", method) if options.get("channelGroups") else []
    if groups and data.groups is None:
        raise HandlerCallError("Error", "channel groups are not available here")
    for group in groups:
        named += [channel for channel in await data.groups.channels(group) if channel not in named]
    if not named and not groups:
        if required:
            raise HandlerCallError(
                "TypeError", f"pubnub.{method}: channels or channelGroups must list names"
            )
        return None
    return named


def _timetoken(options: dict[str, Any], name: str, method: str) -> int | None:
    value = options.get(name)
    if value is None:
        return None
    try:
        return int(str(value))
    except ValueError:
        raise HandlerCallError(
            "TypeError", f"pubnub.{method}: {name} must be a timetoken, got {value!r}"
        ) from None


def _count(options: dict[str, Any], name: str, default: int, most: int) -> int:
    """A count as the SDK reads it: a falsy one (0, absent) is the default; a number, or
    text of one ("3"), at most `most`."""
    value = options.get(name)
    if isinstance(value, str):
        value = whole_number(value.strip(), 6)  # "3"; not "²" nor "٣"
    if not value or not isinstance(value, int | float) or isinstance(value, bool):
        return default
    return max(1, min(int(value), most))


class PubNubState:
    """One method per pubnub call; `call` dispatches by name."""

    async def call(self, method: str, options: dict[str, Any], context: CallContext) -> Any:
        data = context.pubnub_data
        if data is None:
            raise HandlerCallError("Error", f"pubnub.{method}: no project state is attached")
        return await getattr(self, "_" + method)(options, data, context)

    # --- history ------------------------------------------------------------------------

    async def _history(self, options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
        found = await data.history.read(
            required_text(options, "channel", "history"),
            count=_count(options, "count", 100, 100),
            start=_timetoken(options, "start", "history"),
            end=_timetoken(options, "end", "history"),
            reverse=bool(options.get("reverse")),
            now_ms=ctx.clock.now_ms(),
        )
        # As the SDK's history gives them: numbers (a JavaScript number holds 17 digits only
        # roughly), a message's as text with stringifiedTimeToken.
        as_text = bool(options.get("stringifiedTimeToken"))
        messages = []
        for stored in found:
            token = str(stored.timetoken) if as_text else stored.timetoken
            entry: dict[str, Any] = {"entry": stored.message, "timetoken": token}
            if options.get("includeMeta") and stored.meta is not None:
                entry["meta"] = stored.meta
            messages.append(entry)
        return {
            "messages": messages,
            "startTimeToken": found[0].timetoken if found else 0,
            "endTimeToken": found[-1].timetoken if found else 0,
        }

    async def _fetchMessages(
        self, options: dict[str, Any], data: PubNubData, ctx: CallContext
    ) -> Any:
        channels = _names(options, "channels", "fetchMessages")
        if options.get("includeMessageActions") and len(channels) > 1:
            raise HandlerCallError(  # the JavaScript SDK's words
                "TypeError",
                "pubnub.fetchMessages: History can return actions data for a single channel "
                "only. Either pass a single channel or disable the includeMessageActions flag.",
            )
        with_actions = bool(options.get("includeMessageActions"))
        # The SDK's ceilings: 100 for one channel, 25 for several or with actions.
        most = 100 if len(channels) == 1 and not with_actions else 25
        count = _count(options, "count", most, most)
        start = _timetoken(options, "start", "fetchMessages")
        end = _timetoken(options, "end", "fetchMessages")
        answer: dict[str, list[dict[str, Any]]] = {}
        for channel in channels:
            found = await data.history.read(
                channel, count=count, start=start, end=end, now_ms=ctx.clock.now_ms()
            )
            entries = []
            for stored in found:
                # As the JavaScript SDK gives them: a message type (-1 a message, 4 a
                # file, whose file gets its URL), a custom type when there is one.
                message = stored.message
                if stored.message_type == FILE_MESSAGE and isinstance(message, dict):
                    file = message.get("file")
                    if isinstance(file, dict) and data.files is not None:
                        url = data.files.file_url(
                            channel, str(file.get("id")), str(file.get("name"))
                        )
                        message = {**message, "file": {**file, "url": url}}
                entry: dict[str, Any] = {
                    "channel": channel,
                    "message": message,
                    "timetoken": str(stored.timetoken),
                }
                # Asked of the service unless turned off, as the SDK does.
                if options.get("includeMessageType", True) is not False:
                    entry["messageType"] = (
                        -1 if stored.message_type is None else stored.message_type
                    )
                if options.get("includeUUID", True) is not False:
                    entry["uuid"] = stored.publisher
                if stored.custom_type and options.get("includeCustomMessageType"):
                    entry["customMessageType"] = stored.custom_type
                if options.get("includeMeta") and stored.meta is not None:
                    entry["meta"] = stored.meta
                actions = (
                    await data.history.actions_on(channel, stored.timetoken) if with_actions else []
                )
                if actions:  # the SDK sets them only when the service sent some
                    entry["actions"] = grouped_actions(actions)
                    entry["data"] = entry["actions"]  # the SDK's older name, kept by it too
                entries.append(entry)
            if entries:
                answer[channel] = entries
        # No `more` for a page its count cut: PubNub's recordings have none.
        return {"channels": answer}

    async def _messageCounts(
        self, options: dict[str, Any], data: PubNubData, ctx: CallContext
    ) -> Any:
        channels = _names(options, "channels", "messageCounts")
        # As the SDK's check: an empty list is given (JavaScript's [] is truthy).
        if not options.get("timetoken") and options.get("channelTimetokens") is None:
            raise HandlerCallError(  # the JavaScript SDK's words
                "TypeError",
                "pubnub.messageCounts: `timetoken` or `channelTimetokens` need to be set",
            )
        tokens = options.get("channelTimetokens") or [options.get("timetoken")]
        if len(tokens) == 1:
            tokens = tokens * len(channels)
        if len(tokens) != len(channels):
            raise HandlerCallError(
                "TypeError", "pubnub.messageCounts: give one timetoken, or one per channel"
            )
        counts = {}
        for channel, token in zip(channels, tokens, strict=True):
            after = _timetoken({"t": token}, "t", "messageCounts") or 0
            counts[channel] = await data.history.count_after(channel, after, ctx.clock.now_ms())
        return {"channels": counts}

    async def _deleteMessages(
        self, options: dict[str, Any], data: PubNubData, ctx: CallContext
    ) -> Any:
        await data.history.delete(
            required_text(options, "channel", "deleteMessages"),
            _timetoken(options, "start", "deleteMessages"),
            _timetoken(options, "end", "deleteMessages"),
        )
        return {}

    # --- presence -----------------------------------------------------------------------

    async def _hereNow(self, options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
        presence = data.presence
        listed = await _presence_channels(options, data, "hereNow", required=False)
        channels = {}
        limit, offset = here_now_page(options.get("limit"), options.get("offset"))
        for channel in presence.occupied() if listed is None else listed:
            occupants = []
            if options.get("includeUUIDs", True) and limit:
                # As the SDK maps the service's answer: without state asked, each uuid
                # with state null; with it, a state only where there is one. A page of
                # them, as the service answers limit and offset.
                for uuid in presence.members(channel)[offset : offset + limit]:
                    occupant: dict[str, Any] = {"uuid": uuid}
                    state = presence.state(channel, uuid)
                    if not options.get("includeState"):
                        occupant["state"] = None
                    elif state:
                        occupant["state"] = state
                    occupants.append(occupant)
            channels[channel] = {
                "name": channel,
                "occupancy": presence.occupancy(channel),
                "occupants": occupants,
            }
        return {
            "totalChannels": len(channels),
            "totalOccupancy": sum(entry["occupancy"] for entry in channels.values()),
            "channels": channels,
        }

    async def _whereNow(self, options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
        return {"channels": data.presence.channels_of(user_id(options, "whereNow"))}

    async def _getState(self, options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
        uuid = user_id(options, "getState")
        channels = await _presence_channels(options, data, "getState", required=True) or []
        return {"channels": {channel: data.presence.state(channel, uuid) for channel in channels}}

    async def _setState(self, options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
        state = options.get("state")
        if not isinstance(state, dict):
            raise HandlerCallError("TypeError", "pubnub.setState: state must be an object")
        uuid = user_id(options, "setState")
        for channel in await _presence_channels(options, data, "setState", required=True) or []:
            data.presence.set_state(channel, uuid, state)
            event = presence_message(
                "state-change",
                uuid,
                data.presence.occupancy(channel),
                ctx.clock.now_ms() // 1000,
                state,
            )
            data.announce((f"{channel}-pnpres", presence_payload(event), None, None))
        return {"state": state}

    # --- message actions ----------------------------------------------------------------

    async def _addMessageAction(
        self, options: dict[str, Any], data: PubNubData, ctx: CallContext
    ) -> Any:
        channel = required_text(options, "channel", "addMessageAction")
        action = options.get("action")
        message = _timetoken(options, "messageTimetoken", "addMessageAction")
        if message is None or not isinstance(action, dict):
            raise HandlerCallError(
                "TypeError",
                "pubnub.addMessageAction: give messageTimetoken and action: { type, value }",
            )
        if len(required_text(action, "type", "addMessageAction")) > MAX_ACTION_TYPE:
            raise HandlerCallError(
                "Error",
                f"pubnub.addMessageAction: Action.type value exceed maximum length of "
                f"{MAX_ACTION_TYPE}",  # the JavaScript SDK's words
            )
        added = MessageAction(
            message,
            required_text(action, "type", "addMessageAction"),
            required_text(action, "value", "addMessageAction"),
            user_id(options, "addMessageAction"),
            int(ctx.timetoken()) if ctx.timetoken else 0,
        )
        if not await data.history.add_action(channel, added):
            raise HandlerCallError(
                "Error",
                "pubnub.addMessageAction: Action Already Added",
                status=service_status(409, actions_refusal(409, "Action Already Added")),
            )
        data.announce((channel, action_event("added", added), ACTION_EVENT, added.uuid))
        return {"data": added.to_json()}

    async def _getMessageActions(
        self, options: dict[str, Any], data: PubNubData, ctx: CallContext
    ) -> Any:
        page = await data.history.actions_page(
            required_text(options, "channel", "getMessageActions"),
            start=_timetoken(options, "start", "getMessageActions"),
            end=_timetoken(options, "end", "getMessageActions"),
            limit=_count(options, "limit", 100, 100),
        )
        # The SDK adds the page's bounds, what a handler pages with (start: page.start).
        actions = page.get("data") or []
        first, last = (actions[0], actions[-1]) if actions else ({}, {})
        return {**page, "start": first.get("actionTimetoken"), "end": last.get("actionTimetoken")}

    async def _removeMessageAction(
        self, options: dict[str, Any], data: PubNubData, ctx: CallContext
    ) -> Any:
        channel = required_text(options, "channel", "removeMessageAction")
        message = _timetoken(options, "messageTimetoken", "removeMessageAction")
        action = _timetoken(options, "actionTimetoken", "removeMessageAction")
        if message is None or action is None:
            raise HandlerCallError(
                "TypeError", "pubnub.removeMessageAction: give messageTimetoken and actionTimetoken"
            )
        removed = await data.history.remove_action(channel, message, action)
        if removed is not None:
            data.announce((channel, action_event("removed", removed), ACTION_EVENT, removed.uuid))
        return {"data": {}}


STATE_METHODS = tuple(
    name[1:] for name in vars(PubNubState) if name.startswith("_") and not name.startswith("__")
)


def _state_call(method: str) -> Call:
    async def call(options: Any, data: PubNubData, context: CallContext) -> Any:
        return await PubNubState().call(
            method, options if isinstance(options, dict) else {}, context
        )

    return call


# The same calls in the pubnub module's one table of calls (modules/pubnub.py).
STATE_CALLS: dict[str, Call] = {method: _state_call(method) for method in STATE_METHODS}
