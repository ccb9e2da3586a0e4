"""PubNub's Mobile Push API (device registrations) in the SDKs' wire shapes, from the
recorded exchanges in ../shared/wire: v1 for APNs and FCM/GCM, v2 for APNs2."""

from __future__ import annotations

from aiohttp import web

from pfunc.channels import name_problem
from pfunc.push import ENVIRONMENTS, GATEWAYS, Device, device_problem
from pfunc.server.state import DevState
from pfunc.server.wire import changing_get, names, wire_json, wrong_key

V1 = "/v1/push/sub-key/{sub}/devices/{token}"
V2 = "/v2/push/sub-key/{sub}/devices-apns2/{token}"


def push_error(message: str) -> web.Response:
    return wire_json({"error": message}, status=400)


class PushAPI:
    def __init__(self, state: DevState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            changing_get(V1, self.registrations),  # ?add= and ?remove= change them
            changing_get(V1 + "/remove", self.remove_device),
            changing_get(V2, self.registrations),
            changing_get(V2 + "/remove", self.remove_device),
        ]

    def _device(self, request: web.Request) -> Device | web.Response:
        refused = wrong_key(request, self.state.engine.runtime.keyset.subscribe_key, "push")
        if refused:
            return refused
        token = request.match_info["token"]
        if "devices-apns2" in request.path:
            topic = request.query.get("topic", "")
            if not topic:
                return push_error("Missing topic argument")
            environment = request.query.get("environment", "development")
            if environment not in ENVIRONMENTS:
                return push_error("Invalid environment argument")
            kind = "apns2"
        else:
            kind = GATEWAYS.get(request.query.get("type", ""), "")
            if kind not in ("apns", "gcm"):
                return push_error("Invalid type argument")
            topic, environment = "", ""
        return Device(kind, token, topic, environment)

    async def registrations(self, request: web.Request) -> web.Response:
        """add=, remove= (comma-separated channels), or neither: the device's channels."""
        device = self._device(request)
        if isinstance(device, web.Response):
            return device
        registry = self.state.engine.push
        assert registry is not None
        for action in ("add", "remove"):
            if action in request.query:
                channels = names(request.query[action])
                if not channels or any(name_problem(c) for c in channels):
                    return push_error("Invalid channels")
                problem = device_problem(device)
                if action == "add" and problem:
                    return push_error(problem)
                await (registry.add if action == "add" else registry.remove)(device, channels)
                return wire_json([1, "Modified Channels"])
        return wire_json(await registry.channels(device))

    async def remove_device(self, request: web.Request) -> web.Response:
        device = self._device(request)
        if isinstance(device, web.Response):
            return device
        assert self.state.engine.push is not None
        await self.state.engine.push.remove_device(device)
        return wire_json([1, "Removed Device"])
