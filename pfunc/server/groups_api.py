"""PubNub's Channel Groups API (channel registration): add and remove channels, list a
group's channels or every group, delete a group; in the wire shapes the SDKs parse (from
the recorded exchanges in ../shared/wire). Subscribing to a group is pubnub_api's."""

from __future__ import annotations

from aiohttp import web

from pfunc.channel_groups import AddRefused, ChannelGroups
from pfunc.channels import name_problem
from pfunc.server.state import DevState
from pfunc.server.wire import changing_get, names, pubnub_error, wire_json, wrong_key

BASE = "/v1/channel-registration/sub-key/{sub}/channel-group"
SERVICE = "channel-registry"
OK = {"status": 200, "message": "OK", "service": SERVICE, "error": False}


class GroupsAPI:
    def __init__(self, state: DevState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(BASE, self.list_groups),
            changing_get(BASE + "/{group}", self.group),  # ?add= and ?remove= change it
            changing_get(BASE + "/{group}/remove", self.delete),
        ]

    def _registry(self, request: web.Request) -> ChannelGroups | web.Response:
        refused = wrong_key(request, self.state.engine.runtime.keyset.subscribe_key, SERVICE)
        if refused:
            return refused
        group = request.match_info.get("group")
        if group is not None and name_problem(group):
            return pubnub_error(400, f"Invalid channel group name {group!r}", SERVICE)
        assert self.state.engine.groups is not None
        return self.state.engine.groups

    async def list_groups(self, request: web.Request) -> web.Response:
        registry = self._registry(request)
        if isinstance(registry, web.Response):
            return registry
        groups = await registry.groups()
        return wire_json(
            {
                "status": 200,
                "payload": {"groups": groups, "namespace": ""},
                "service": SERVICE,
                "error": False,
            }
        )

    async def group(self, request: web.Request) -> web.Response:
        """add=, remove= (comma-separated channels), or neither: the group's channels."""
        registry = self._registry(request)
        if isinstance(registry, web.Response):
            return registry
        group = request.match_info["group"]
        for action in ("add", "remove"):
            if action in request.query:
                channels = names(request.query[action])
                bad = [c for c in channels if name_problem(c)]
                if not channels or bad:
                    return pubnub_error(
                        400, f"Invalid channels: {', '.join(bad) or 'none'}", SERVICE
                    )
                try:
                    await (registry.add if action == "add" else registry.remove)(group, channels)
                except AddRefused as refused:
                    return pubnub_error(400, str(refused), SERVICE)
                return wire_json(OK)
        channels = await registry.channels(group)
        return wire_json(
            {
                "status": 200,
                "payload": {"channels": channels, "group": group},
                "service": SERVICE,
                "error": False,
            }
        )

    async def delete(self, request: web.Request) -> web.Response:
        registry = self._registry(request)
        if isinstance(registry, web.Response):
            return registry
        await registry.delete(request.match_info["group"])
        return wire_json(OK)
