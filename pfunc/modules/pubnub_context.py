"""The pubnub module's App Context and Access Manager calls: `pubnub.objects.*`,
`pubnub.grantToken` and `pubnub.revokeToken`, over the same App Context and token state
the dev server's REST API keeps, with the JavaScript SDK's parameters and answers.
(`parseToken` is local and synchronous: sandbox/builtins.js.) Each call is an operation
of kind "pubnub"."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pfunc.access import AccessProblem
from pfunc.app_context_shapes import ObjectsError
from pfunc.modules.calls import (
    CallContext,
    HandlerCallError,
    required_text,
    service_status,
    user_id,
)
from pfunc.pubnub_data import PubNubData

Call = Callable[[dict[str, Any], PubNubData, CallContext], Awaitable[Any]]

# The JavaScript SDK's include flags -> PubNub's include words on the wire.
_INCLUDE_WORDS = {
    "customFields": "custom",
    "statusField": "status",
    "typeField": "type",
    "channelFields": "channel",
    "customChannelFields": "channel.custom",
    "channelStatusField": "channel.status",
    "channelTypeField": "channel.type",
    "UUIDFields": "uuid",
    "customUUIDFields": "uuid.custom",
    "UUIDStatusField": "uuid.status",
    "UUIDTypeField": "uuid.type",
}


def _include(options: dict[str, Any], defaults: dict[str, bool]) -> list[str]:
    """The include words for the SDK's `include` object, with the SDK's defaults
    (metadata calls always ask for status and type, as the SDK does)."""
    given = options.get("include") if isinstance(options.get("include"), dict) else {}
    flags = {**defaults, **{k: bool(v) for k, v in given.items()}}
    return [word for flag, word in _INCLUDE_WORDS.items() if flags.get(flag)]


def _listing(options: dict[str, Any], defaults: dict[str, bool]) -> dict[str, Any]:
    include = options.get("include") if isinstance(options.get("include"), dict) else {}
    sort = options.get("sort")
    if isinstance(sort, dict):
        sort = [f"{key}:{order}" if order else key for key, order in sort.items()]
    page = options.get("page") if isinstance(options.get("page"), dict) else {}
    return {
        "include": _include(options, defaults),
        "filter": options.get("filter"),
        "sort": sort or (),
        "limit": options.get("limit"),
        "start": page.get("next"),
        "end": page.get("prev"),
        "count": bool(include.get("totalCount")),
    }


_METADATA = {"statusField": True, "typeField": True}
_ONE = {**_METADATA, "customFields": True}  # get and set of one record include custom


def _objects(data: PubNubData) -> Any:
    if data.objects is None:
        raise HandlerCallError("Error", "App Context is not available here")
    return data.objects


def _metadata(kind: str, action: str) -> Call:
    """get/set/remove/getAll of UUID or channel metadata."""
    method = f"objects.{action}{'UUID' if kind == 'uuid' else 'Channel'}Metadata"
    api = f"{action}_{kind}_metadata".replace("getAll", "get_all")

    async def call(options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
        target = getattr(_objects(data), api)
        if action == "getAll":
            return await target(**_listing(options, _METADATA))
        id_ = user_id(options, method) if kind == "uuid" else required_text(options, kind, method)
        if action == "remove":
            return await target(id_)
        include = _include(options, _ONE)
        if action == "get":
            return await target(id_, include=include)
        record = options.get("data")
        if not isinstance(record, dict):
            raise HandlerCallError("TypeError", f"pubnub.{method}: data must be an object")
        return await target(id_, record, include=include, if_match=options.get("ifMatchesEtag"))

    return call


def _links(side: str, action: str) -> Call:
    """get/set/remove of a user's memberships or a channel's members."""
    owner, items, api_name = (
        ("uuid", "channels", "memberships")
        if side == "memberships"
        else ("channel", "uuids", "channel_members")
    )
    method = f"objects.{action}{'Memberships' if side == 'memberships' else 'ChannelMembers'}"

    async def call(options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
        target = getattr(_objects(data), f"{action}_{api_name}")
        id_ = user_id(options, method) if owner == "uuid" else required_text(options, owner, method)
        listing = _listing(options, {})
        if action == "get":
            return await target(id_, **listing)
        listed = options.get(items)
        if not isinstance(listed, list):
            raise HandlerCallError("TypeError", f"pubnub.{method}: {items} must be a list")
        if not listed:  # the JavaScript SDK refuses to send none
            named = "Channels" if items == "channels" else "UUIDs"
            raise HandlerCallError("TypeError", f"pubnub.{method}: {named} cannot be empty")
        return await target(id_, listed, **listing)

    return call


async def _grant_token(options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
    if data.access is None:
        raise HandlerCallError("Error", "Access Manager is not available here")
    try:
        return data.access.grant_token(options)
    except AccessProblem as problem:
        status = service_status(400, problem.body("grant"))
        raise HandlerCallError("Error", f"pubnub.grantToken: {problem}", status=status) from None


async def _revoke_token(options: Any, data: PubNubData, ctx: CallContext) -> Any:
    if data.access is None:
        raise HandlerCallError("Error", "Access Manager is not available here")
    # revokeToken(token), as the JavaScript SDK takes it (or { token }).
    token = options.get("token") if isinstance(options, dict) else options
    if not isinstance(token, str):
        raise HandlerCallError("TypeError", "pubnub.revokeToken: pass the token text")
    try:
        await data.access.revoke_token(token)
    except AccessProblem as problem:
        status = service_status(400, problem.body("revoke"))
        raise HandlerCallError("Error", f"pubnub.revokeToken: {problem}", status=status) from None
    return {}


def _app_context_errors(call: Call, method: str) -> Call:
    async def guarded(options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
        try:
            return await call(options, data, ctx)
        except ObjectsError as error:
            detail = "; ".join(d.get("message", "") for d in error.details if d.get("message"))
            raise HandlerCallError(
                "Error",
                f"pubnub.{method}: {error.message}"
                + (f" {detail}" if detail else "")
                + f" (status {error.status})",
                status=service_status(error.status, error.to_json()),
            ) from None

    return guarded


CONTEXT_CALLS: dict[str, Call] = {
    **{
        f"objects.{action}{name}Metadata": _app_context_errors(
            _metadata(kind, action), f"objects.{action}{name}Metadata"
        )
        for kind, name in (("uuid", "UUID"), ("channel", "Channel"))
        for action in ("get", "set", "remove", "getAll")
    },
    **{
        f"objects.{action}{name}": _app_context_errors(
            _links(side, action), f"objects.{action}{name}"
        )
        for side, name in (("memberships", "Memberships"), ("members", "ChannelMembers"))
        for action in ("get", "set", "remove")
    },
    "grantToken": _grant_token,
    "revokeToken": _revoke_token,
}
