"""PubNub's Message Actions API: add, get (paged), remove, each change delivered to the
channel's subscribers as an action event (e = 3), in the SDKs' wire shapes (from the
recorded exchanges in ../shared/wire)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pfunc import jsonio
from pfunc.channels import name_problem
from pfunc.history import (
    ACTION_EVENT,
    MAX_ACTION_TYPE,
    MessageAction,
    action_event,
    actions_refusal,
)
from pfunc.numbers import whole_number
from pfunc.server.state import DevState
from pfunc.server.wire import query_count, wire_json, wrong_key

BASE = "/v1/message-actions/{sub}/channel/{channel}"


def actions_error(status: int, message: str) -> web.Response:
    return wire_json(actions_refusal(status, message), status=status)


class ActionsAPI:
    def __init__(self, state: DevState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(BASE + "/message/{message}", self.add),
            web.get(BASE, self.get),
            web.delete(BASE + "/message/{message}/action/{action}", self.remove),
        ]

    def _refused(self, request: web.Request) -> web.Response | None:
        return wrong_key(request, self.state.engine.runtime.keyset.subscribe_key, "actions")

    def _announce(self, channel: str, event: str, action: MessageAction) -> None:
        self.state.engine.announce(
            (channel, action_event(event, action), ACTION_EVENT, action.uuid)
        )

    async def add(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused:
            return refused
        channel = request.match_info["channel"]
        if problem := name_problem(channel):  # an action on a message no publish could make
            return actions_error(400, f"Invalid channel {channel[:60]!r}: {problem}")
        message = whole_number(request.match_info["message"], 18)
        try:
            body: Any = jsonio.loads(await request.read())
        except ValueError:
            return actions_error(400, "Invalid JSON body")
        if (
            message is None
            or not isinstance(body, dict)
            or not isinstance(body.get("type"), str)
            or not isinstance(body.get("value"), str)
            or not body["type"]
            or not body["value"]
        ):
            return actions_error(400, "Missing or invalid message timetoken, type or value")
        if len(body["type"]) > MAX_ACTION_TYPE:
            return actions_error(
                400, f"Action type too long ({MAX_ACTION_TYPE} characters at most)"
            )
        action = MessageAction(
            message,
            body["type"],
            body["value"],
            request.query.get("uuid") or "anonymous",
            int(self.state.timetoken()),
        )
        if not await self.state.engine.history.add_action(channel, action):
            return actions_error(409, "Action Already Added")
        self._announce(channel, "added", action)
        return wire_json({"status": 200, "data": action.to_json()})

    async def get(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused:
            return refused
        bounds = {}
        for name in ("start", "end"):
            text = request.query.get(name, "")
            bounds[name] = whole_number(text, 18)
            if text and bounds[name] is None:
                return actions_error(400, f"{name} must be a timetoken")
        limit = query_count(request, "limit", 100, 100)
        page = await self.state.engine.history.actions_page(
            request.match_info["channel"], start=bounds["start"], end=bounds["end"], limit=limit
        )
        return wire_json({"status": 200, **page})

    async def remove(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused:
            return refused
        message = whole_number(request.match_info["message"], 18)
        action = whole_number(request.match_info["action"], 18)
        if message is None or action is None:
            return actions_error(400, "Invalid message or action timetoken")
        channel = request.match_info["channel"]
        removed = await self.state.engine.history.remove_action(channel, message, action)
        if removed is not None:
            self._announce(channel, "removed", removed)
        return wire_json({"status": 200, "data": {}})
