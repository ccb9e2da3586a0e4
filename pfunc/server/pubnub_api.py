"""PubNub's REST API as the official SDKs speak it: time, publish, fire, signal,
subscribe v2, presence heartbeat and leave. Each endpoint parses the request, calls the
engine, and answers in PubNub's wire shape (errors included)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pfunc import jsonio
from pfunc.announcement import presence_payload
from pfunc.channels import custom_type_problem, name_problem
from pfunc.events import EventSpec, build_event, kinds_triggered_by
from pfunc.numbers import whole_number
from pfunc.result import TOO_LARGE, PublishReport
from pfunc.server.filters import FilterError, compile_filter
from pfunc.server.state import DevState
from pfunc.server.subscribers import Delivery
from pfunc.server.wire import (
    changing_get,
    channel_groups,
    client_meta,
    names,
    presence_json,
    pubnub_error,
    subscribe_refusal,
    undecodable,
    wire_json,
)

# PubNub's limit on a published message: 32 KiB, escaped, channel name included.
MAX_PUBLISH_URL_BYTES = 32 * 1024

# Publish query parameters a function sees in request.params (and the bus reads).
PUBLISH_PARAMS = ("uuid", "pnsdk", "seqn", "store", "ttl", "norep", "custom_message_type", "ptto")


def publish_error(status: int, message: str, timetoken: str) -> web.Response:
    # PubNub's publish answers errors as a non-200 status and [0, "description", timetoken].
    return wire_json([0, message, timetoken], status=status)


def _int(text: str | None, most: int = 86_400) -> int | None:
    """A small whole number from a query parameter (heartbeat seconds), else None."""
    number = whole_number(text or "", 18)
    return None if number is None else min(number, most)


def publish_answer(state: DevState, report: PublishReport) -> web.Response:
    """PubNub's answer to a publish (a file message's too): [1, "Sent", timetoken], or
    its error when the bus refused it or a before-* function aborted or failed it."""
    if report.drop is not None:
        too_large = report.drop.reason == TOO_LARGE
        return publish_error(
            413 if too_large else 400,
            "Message Too Large" if too_large else report.drop.message,
            state.timetoken(),
        )
    if not report.delivered:
        stopped = report.executions[-1] if report.executions else None
        why = (
            (stopped.abort_reason or "aborted")
            if stopped and stopped.outcome == "abort"
            else "the function failed"
        )
        return publish_error(
            400, f'Message aborted by function "{report.stopped_by}": {why}', state.timetoken()
        )
    return wire_json([1, "Sent", report.message_timetoken])


class PubNubAPI:
    def __init__(self, state: DevState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/time/0", self.time),
            web.route("*", "/publish/{pub}/{sub}/{sig}/{channel}/{callback}", self.publish),
            changing_get(
                "/publish/{pub}/{sub}/{sig}/{channel}/{callback}/{message:.*}", self.publish
            ),
            changing_get(
                "/signal/{pub}/{sub}/{sig}/{channel}/{callback}/{message:.*}", self.signal
            ),
            changing_get("/v2/subscribe/{sub}/{channels}/{callback}", self.subscribe),
            changing_get("/v2/presence/sub-key/{sub}/channel/{channels}/heartbeat", self.heartbeat),
            changing_get("/v2/presence/sub-key/{sub}/channel/{channels}/leave", self.leave),
        ]

    def _check_keys(self, request: web.Request) -> web.Response | None:
        keyset = self.state.engine.runtime.keyset
        if request.match_info.get("sub") != keyset.subscribe_key:
            # PubNub's recorded answer to a publish for an unknown keyset.
            return pubnub_error(400, "Invalid Subscribe Key", "Access Manager")
        pub = request.match_info.get("pub")
        if pub is not None and pub != keyset.publish_key:
            return publish_error(400, "Invalid Key", self.state.timetoken())
        if pub is None:  # subscribe, heartbeat, leave (a publish answers in its own shape)
            return subscribe_refusal(request)
        return None

    # --- time, publish, signal ------------------------------------------------------------

    async def time(self, request: web.Request) -> web.Response:
        return wire_json([int(self.state.timetoken())])

    async def publish(self, request: web.Request) -> web.Response:
        # A fire is a publish that is not replicated to subscribers: norep=true (the
        # JavaScript SDK) or norep=1 (the Python SDK), with store=0.
        fire = request.query.get("norep", "").lower() in ("true", "1")
        return await self._publish(request, "fire" if fire else "publish")

    async def signal(self, request: web.Request) -> web.Response:
        return await self._publish(request, "signal")

    async def _publish(self, request: web.Request, verb: str) -> web.Response:
        refused = self._check_keys(request)
        if refused:
            return refused
        raw_path = request.raw_path.split("?", 1)[0]
        if request.method == "POST":
            text: str | bytes = await request.read()
        elif request.method == "GET":
            text = request.match_info.get("message", "")
            # PubNub measures a message as sent: escaped in the URL, with its channel.
            escaped = raw_path.rsplit("/", 1)[-1]
            if len(escaped) + len(request.match_info["channel"]) > MAX_PUBLISH_URL_BYTES:
                return publish_error(413, "Message Too Large", self.state.timetoken())
            if "%" in text and undecodable(escaped):  # (escapes left as they were keep a %)
                return publish_error(400, "Invalid JSON", self.state.timetoken())
        else:
            return publish_error(405, "Method Not Allowed", self.state.timetoken())
        try:
            message = jsonio.loads(text)
        except ValueError:
            return publish_error(400, "Invalid JSON", self.state.timetoken())
        meta = None
        if "meta" in request.query:
            try:
                meta = jsonio.loads(request.query["meta"])
            except ValueError:
                return publish_error(400, "Invalid JSON in meta", self.state.timetoken())
        channel = request.match_info["channel"]  # aiohttp decoded it once; that is all
        if name_problem(channel) or ("%" in channel and undecodable(raw_path.split("/")[5])):
            return publish_error(400, "Invalid Channel", self.state.timetoken())
        if custom_type_problem(request.query.get("custom_message_type")):
            return publish_error(400, "Invalid Custom Message Type", self.state.timetoken())
        report = await self.state.bus.publish(
            channel,
            message,
            verb=verb,
            meta=meta if isinstance(meta, dict) else None,
            params={k: v for k, v in request.query.items() if k in PUBLISH_PARAMS},
            after_waits=False,  # PubNub answers once the message is published
            client=client_meta(request),
        )
        return publish_answer(self.state, report)

    # --- subscribe and presence ---------------------------------------------------------------

    @staticmethod
    def _channels(request: web.Request) -> list[str]:
        return names(request.match_info["channels"])

    async def subscribe(self, request: web.Request) -> web.Response:
        refused = self._check_keys(request)
        if refused:
            return refused
        channels = self._channels(request)
        groups = channel_groups(request)
        uuid = request.query.get("uuid") or "anonymous"
        heartbeat = _int(request.query.get("heartbeat"))
        try:
            accept = compile_filter(request.query.get("filter-expr", ""))
        except FilterError as error:
            return pubnub_error(400, str(error), "subscribe")
        patterns = await self._subscription(channels, groups)
        states = self._states(request, patterns)
        since = request.query.get("tt", "0")
        # A timetoken is digits (17 of them); int() would take "-1", " 1" or "١" too.
        after = 0 if since == "" else whole_number(since, 19)
        if after is None:
            return pubnub_error(400, f"Invalid timetoken {since[:40]!r}", "subscribe")
        # The handshake's timetoken comes before the join this subscribe announces, so the
        # subscriber's first long-poll delivers its own join, as PubNub's does.
        handshake = self.state.timetoken() if after == 0 else None
        for pattern, _ in patterns:
            if not pattern.endswith("-pnpres") and "*" not in pattern:
                self._beat(pattern, uuid, heartbeat, states.get(pattern))
        if handshake is not None:
            return wire_json({"t": {"t": handshake, "r": 1}, "m": []})
        messages = self.state.messages
        transport = request.transport
        found = await messages.wait(
            lambda: self._subscription(channels, groups),
            after,
            self.state.subscribe_timeout,
            accept,
            gone=lambda: transport is None or transport.is_closing(),
            dynamic=bool(groups),
        )
        envelopes = [messages.envelope(delivery, match) for delivery, match in found]
        latest = max((delivery.timetoken for delivery, _ in found), default=after)
        return wire_json({"t": {"t": str(latest), "r": 1}, "m": envelopes})

    async def _subscription(self, channels: list[str], groups: list[str]) -> list[tuple[str, str]]:
        """(pattern, subscription) pairs: each channel as itself, each group's channels
        named by the group (and `g-pnpres` by their presence channels)."""
        pairs = [(channel, channel) for channel in channels]
        registry = self.state.engine.groups
        for group in groups:
            base = group.removesuffix("-pnpres")
            suffix = "-pnpres" if group.endswith("-pnpres") else ""
            members = await registry.channels(base) if registry is not None else []
            pairs += [(member + suffix, group) for member in members]
        return pairs

    async def heartbeat(self, request: web.Request) -> web.Response:
        refused = self._check_keys(request)
        if refused:
            return refused
        uuid = request.query.get("uuid") or "anonymous"
        groups = channel_groups(request)
        patterns = await self._subscription(self._channels(request), groups)
        states = self._states(request, patterns)
        for channel, _ in patterns:
            if channel.endswith("-pnpres") or "*" in channel:
                continue
            self._beat(channel, uuid, _int(request.query.get("heartbeat")), states.get(channel))
        return presence_json({"status": 200, "message": "OK", "service": "Presence"})

    async def leave(self, request: web.Request) -> web.Response:
        refused = self._check_keys(request)
        if refused:
            return refused
        uuid = request.query.get("uuid") or "anonymous"
        groups = channel_groups(request)
        for channel, _ in await self._subscription(self._channels(request), groups):
            if self.state.presence.leave(channel, uuid):
                presence_event(self.state, channel, "leave", uuid)
        return presence_json(
            {"status": 200, "message": "OK", "action": "leave", "service": "Presence"}
        )

    @staticmethod
    def _states(request: web.Request, patterns: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
        """The `state` query parameter of subscribe and heartbeat, as each of the
        (channel, subscription) `patterns` gets it. The SDKs key it by channel and by
        group (a group's is its channels'; the event engine's holds channels of other
        requests too, which are not this one's). JS SDK 11's setState({withHeartbeat:
        true}) sends the state itself: one with a value that is not an object (no state
        is) is read so, for every channel."""
        try:
            given = jsonio.loads(request.query.get("state", "{}"))
        except ValueError:
            raise web.HTTPBadRequest(reason="state must be a JSON object") from None
        if not isinstance(given, dict):
            raise web.HTTPBadRequest(reason="state must be a JSON object")
        if not all(isinstance(value, dict) for value in given.values()):
            return {channel: given for channel, _ in patterns}
        resolved = {}
        for channel, subscription in patterns:
            state = given.get(channel, given.get(subscription))
            if state is not None:
                resolved[channel] = state
        return resolved

    def _beat(
        self, channel: str, uuid: str, heartbeat: int | None, user_state: dict | None = None
    ) -> None:
        presence = self.state.presence
        changed = user_state is not None and user_state != presence.state(channel, uuid)
        if user_state is not None:
            presence.set_state(channel, uuid, user_state)
        if presence.beat(channel, uuid, heartbeat):
            presence_event(self.state, channel, "join", uuid, presence.state(channel, uuid))
        elif changed:  # PubNub: state-change "fires anytime the user's state is changed"
            presence_event(self.state, channel, "state-change", uuid, user_state)


def presence_event(
    state: DevState,
    channel: str,
    action: str,
    uuid: str,
    user_state: dict[str, Any] | None = None,
) -> None:
    """A presence change: delivered to `channel-pnpres` subscribers, and run through the
    after-presence functions bound to `channel`. Above the project's announce_max a join,
    leave or timeout waits for the channel's next interval announcement instead."""
    project, presence = state.project, state.presence
    before = presence.occupancy(channel) + (1 if action in ("leave", "timeout") else 0)
    if action in ("join", "leave", "timeout") and before > project.presence_announce_max:
        presence.hold(channel, action, uuid)
        return
    spec = EventSpec(
        action=action,
        uuid=uuid,
        occupancy=state.presence.occupancy(channel),
        state=user_state or None,
    )
    event: Any = build_event(
        kinds_triggered_by("presence")[0],
        spec,
        default_channel=channel,
        now_ms=state.engine.runtime.clock.now_ms(),
    )
    announce(state, channel, event.message)


def interval_events(state: DevState) -> None:
    """PubNub's interval mode: for each channel above announce_max whose interval is up,
    one `interval` event with the occupancy and who joined, left or timed out since."""
    project = state.project
    due = state.presence.intervals_due(project.presence_announce_max, project.presence_interval)
    for channel, changes in due:
        message: dict[str, Any] = {
            "action": "interval",
            "timestamp": state.engine.runtime.clock.now_ms() // 1000,
            "occupancy": state.presence.occupancy(channel),
        }
        message.update({action: uuids for action, uuids in changes.items() if uuids})
        announce(state, channel, message)


def announce(state: DevState, channel: str, message: dict[str, Any]) -> None:
    """One presence event to `channel-pnpres` subscribers (a user's state under "data",
    as PubNub sends it) and after-presence functions (under `state`, the contract)."""
    delivered = presence_payload(message)
    state.messages.add(
        Delivery(int(state.timetoken()), f"{channel}-pnpres", delivered, None, presence=True)
    )
    state.spawn(state.bus.presence(channel, EventSpec(message=message)))
