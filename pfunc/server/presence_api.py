"""PubNub's presence queries: hereNow (global and per channel), whereNow, getState and
setState, in the wire shapes the SDKs parse (from the recorded exchanges in
../shared/wire). Joins, leaves and timeouts themselves come from subscribe, heartbeat and
leave (pubnub_api.py)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pfunc import jsonio
from pfunc.presence import here_now_page
from pfunc.server.pubnub_api import presence_event
from pfunc.server.state import DevState
from pfunc.server.wire import (
    changing_get,
    channel_groups,
    flag,
    names,
    presence_json,
    pubnub_error,
    wrong_key,
)

BASE = "/v2/presence/sub-key/{sub}"
OK = {"status": 200, "message": "OK", "service": "Presence"}


class PresenceAPI:
    def __init__(self, state: DevState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(BASE, self.here_now),
            web.get(BASE + "/channel/{channels}", self.here_now),
            web.get(BASE + "/uuid/{uuid}", self.where_now),
            web.get(BASE + "/channel/{channels}/uuid/{uuid}", self.get_state),
            changing_get(BASE + "/channel/{channels}/uuid/{uuid}/data", self.set_state),
        ]

    def _refused(self, request: web.Request) -> web.Response | None:
        return wrong_key(request, self.state.engine.runtime.keyset.subscribe_key, "Presence")

    async def _named(self, request: web.Request) -> tuple[list[str], bool]:
        """The channels a presence query names: those in the path, then the channels of
        the groups in `channel-group` (as the SDKs send `channelGroups`), each once; and
        whether any group was named (the SDKs then read the several-channel shape)."""
        named = names(request.match_info.get("channels") or "")
        groups = channel_groups(request)
        registry = self.state.engine.groups
        for group in groups:
            members = await registry.channels(group) if registry is not None else []
            named += [channel for channel in members if channel not in named]
        return named, bool(groups)

    def _occupants(self, request: web.Request, channel: str) -> dict[str, Any]:
        presence = self.state.presence
        entry: dict[str, Any] = {"occupancy": presence.occupancy(channel)}
        limit, offset = here_now_page(request.query.get("limit"), request.query.get("offset"))
        if flag(request, "disable_uuids") or limit == 0:  # limit=0: the count alone
            return entry
        # A page of the occupants (sorted by user id, so pages do not overlap); the
        # occupancy stays the whole count.
        members = presence.members(channel)[offset : offset + limit]
        if flag(request, "state"):
            uuids: list[Any] = []
            for uuid in members:
                item: dict[str, Any] = {"uuid": uuid}
                if presence.state(channel, uuid):
                    item["state"] = presence.state(channel, uuid)
                uuids.append(item)
            entry["uuids"] = uuids
        else:
            entry["uuids"] = members
        return {"uuids": entry["uuids"], "occupancy": entry["occupancy"]}

    async def here_now(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused:
            return refused
        channels, grouped = await self._named(request)
        if len(channels) == 1 and not grouped:  # one channel: its occupants at the top level
            return presence_json({**OK, **self._occupants(request, channels[0])})
        listed = channels if channels or grouped else self.state.presence.occupied()
        found = {channel: self._occupants(request, channel) for channel in listed}
        return presence_json(
            {
                "status": 200,
                "message": "OK",
                "payload": {
                    "channels": found,
                    "total_channels": len(found),
                    "total_occupancy": sum(entry["occupancy"] for entry in found.values()),
                },
                "service": "Presence",
            }
        )

    async def where_now(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused:
            return refused
        channels = self.state.presence.channels_of(request.match_info["uuid"])
        return presence_json({**OK, "payload": {"channels": channels}})

    async def get_state(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused:
            return refused
        uuid = request.match_info["uuid"]
        channels, grouped = await self._named(request)
        presence = self.state.presence
        if len(channels) == 1 and not grouped:
            return presence_json(
                {
                    **OK,
                    "uuid": uuid,
                    "payload": presence.state(channels[0], uuid),
                    "channel": channels[0],
                }
            )
        states = {channel: presence.state(channel, uuid) for channel in channels}
        return presence_json({**OK, "payload": {"channels": states}, "uuid": uuid})

    async def set_state(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused:
            return refused
        try:
            state = jsonio.loads(request.query.get("state", "{}"))
        except ValueError:
            return pubnub_error(400, "Invalid state: not JSON", "Presence")
        if not isinstance(state, dict):
            return pubnub_error(400, "Invalid state: it must be a JSON object", "Presence")
        uuid = request.match_info["uuid"]
        for channel in (await self._named(request))[0]:
            self.state.presence.set_state(channel, uuid, state)
            # PubNub tells the channel's presence subscribers and functions.
            presence_event(self.state, channel, "state-change", uuid, state)
        return presence_json({**OK, "payload": state})
