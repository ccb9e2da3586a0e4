"""PubNub's App Context API (Objects v2): users' and channels' metadata, memberships and
members, in the wire shapes the SDKs parse (from the recorded exchanges in ../shared/wire).
Each endpoint reads the request and calls the engine's AppContext, the same API the
functions' `pubnub.objects` uses; its answers and ObjectsErrors are PubNub's bodies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from pfunc import jsonio
from pfunc.app_context import AppContext
from pfunc.app_context_shapes import ObjectsError, invalid
from pfunc.server.state import DevState
from pfunc.server.wire import flag, wire_json

BASE = "/v2/objects/{sub}"
Handler = Callable[[AppContext, web.Request], Awaitable[dict]]


class ObjectsAPI:
    def __init__(self, state: DevState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        answer = self._answer
        return [
            web.get(BASE + "/uuids", answer(_all_users)),
            web.get(BASE + "/uuids/{uuid}", answer(_get_user)),
            web.patch(BASE + "/uuids/{uuid}", answer(_set_user)),
            web.delete(BASE + "/uuids/{uuid}", answer(_remove_user)),
            web.get(BASE + "/channels", answer(_all_channels)),
            web.get(BASE + "/channels/{channel}", answer(_get_channel)),
            web.patch(BASE + "/channels/{channel}", answer(_set_channel)),
            web.delete(BASE + "/channels/{channel}", answer(_remove_channel)),
            web.get(BASE + "/uuids/{uuid}/channels", answer(_memberships)),
            web.patch(BASE + "/uuids/{uuid}/channels", answer(_memberships)),
            web.get(BASE + "/channels/{channel}/uuids", answer(_members)),
            web.patch(BASE + "/channels/{channel}/uuids", answer(_members)),
        ]

    def _answer(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        """The handler's answer, or PubNub's error body for a refusal."""

        async def respond(request: web.Request) -> web.Response:
            objects = self.state.engine.objects
            assert objects is not None
            try:
                if request.match_info["sub"] != self.state.engine.runtime.keyset.subscribe_key:
                    raise ObjectsError(400, "Invalid Subscribe Key")
                return wire_json(await handler(objects, request))
            except ObjectsError as error:
                return wire_json(error.to_json(), status=error.status)

        return respond


def _listing(request: web.Request) -> dict[str, Any]:
    """A list call's query parameters, as AppContext.listing takes them."""
    query = request.query
    return {
        "include": query.get("include", ""),
        "filter": query.get("filter") or None,
        "sort": query.getall("sort", []),
        "limit": query.get("limit"),
        "start": query.get("start"),
        "end": query.get("end"),
        "count": flag(request, "count"),
    }


async def _body(request: web.Request) -> Any:
    text = await request.read()
    if not text.strip():
        return {}
    try:
        return jsonio.loads(text)
    except ValueError as error:
        raise invalid(f"the body is not JSON: {error}", "body") from None


def _include(request: web.Request) -> str:
    return request.query.get("include", "")


def _if_match(request: web.Request) -> str | None:
    return request.headers.get("If-Match") or None


async def _all_users(objects: AppContext, request: web.Request) -> dict:
    return await objects.get_all_uuid_metadata(**_listing(request))


async def _get_user(objects: AppContext, request: web.Request) -> dict:
    return await objects.get_uuid_metadata(request.match_info["uuid"], include=_include(request))


async def _set_user(objects: AppContext, request: web.Request) -> dict:
    return await objects.set_uuid_metadata(
        request.match_info["uuid"],
        await _body(request),
        include=_include(request),
        if_match=_if_match(request),
    )


async def _remove_user(objects: AppContext, request: web.Request) -> dict:
    return await objects.remove_uuid_metadata(request.match_info["uuid"])


async def _all_channels(objects: AppContext, request: web.Request) -> dict:
    return await objects.get_all_channel_metadata(**_listing(request))


async def _get_channel(objects: AppContext, request: web.Request) -> dict:
    return await objects.get_channel_metadata(
        request.match_info["channel"], include=_include(request)
    )


async def _set_channel(objects: AppContext, request: web.Request) -> dict:
    return await objects.set_channel_metadata(
        request.match_info["channel"],
        await _body(request),
        include=_include(request),
        if_match=_if_match(request),
    )


async def _remove_channel(objects: AppContext, request: web.Request) -> dict:
    return await objects.remove_channel_metadata(request.match_info["channel"])


async def _changes(request: web.Request) -> dict[str, list[Any]]:
    """The `set` and `delete` lists of a PATCH of memberships or members (none on GET)."""
    if request.method != "PATCH":
        return {}
    body = await _body(request)
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object with set and delete lists", "body")
    changes = {}
    for name in ("set", "delete"):
        items = body.get(name) or []
        if not isinstance(items, list):
            raise invalid(f"{name} must be a list", name)
        changes[name] = items
    return changes


async def _memberships(objects: AppContext, request: web.Request) -> dict:
    changes = await _changes(request)
    return await objects.manage_memberships(
        request.match_info["uuid"], **changes, **_listing(request)
    )


async def _members(objects: AppContext, request: web.Request) -> dict:
    changes = await _changes(request)
    return await objects.manage_channel_members(
        request.match_info["channel"], **changes, **_listing(request)
    )
