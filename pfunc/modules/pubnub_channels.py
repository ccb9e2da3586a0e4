"""The pubnub module's channel-group and mobile-push calls: `pubnub.channelGroups.*` and
`pubnub.push.*`, over the same registrations the dev server's REST API keeps, answering
what the JavaScript SDK answers an application. Each is an operation of kind "pubnub"."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pfunc.channel_groups import AddRefused
from pfunc.channels import name_problem
from pfunc.modules.calls import CallContext, HandlerCallError, service_status
from pfunc.pubnub_data import PubNubData
from pfunc.push import GATEWAYS, Device, device_problem

Call = Callable[[dict[str, Any], PubNubData, CallContext], Awaitable[Any]]


def _name(options: dict[str, Any], field: str, method: str) -> str:
    value = options.get(field)
    if not isinstance(value, str) or not value or name_problem(value):
        raise HandlerCallError(
            "TypeError", f"pubnub.{method}: {field} must be a channel or group name"
        )
    return value


def _channels(options: dict[str, Any], method: str) -> list[str]:
    value = options.get("channels")
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(c, str) and c and not name_problem(c) for c in value)
    ):
        raise HandlerCallError("TypeError", f"pubnub.{method}: channels must list channel names")
    return value


def _device(options: dict[str, Any], method: str, adding: bool = False) -> Device:
    token, gateway = options.get("device"), options.get("pushGateway")
    if not isinstance(token, str) or not token:
        raise HandlerCallError("TypeError", f"pubnub.{method}: device must be the device token")
    kind = GATEWAYS.get(str(gateway))
    if kind is None:
        raise HandlerCallError(
            "TypeError", f"pubnub.{method}: pushGateway must be apns2, fcm, apns or gcm"
        )
    topic = str(options.get("topic") or "") if kind == "apns2" else ""
    environment = str(options.get("environment") or "development") if kind == "apns2" else ""
    device = Device(kind, token, topic, environment)
    problem = device_problem(device)
    if problem and (adding or kind == "apns2"):
        raise HandlerCallError("Error", f"pubnub.{method}: {problem}")
    return device


def _groups(data: PubNubData) -> Any:
    if data.groups is None:
        raise HandlerCallError("Error", "channel groups are not available here")
    return data.groups


def _push(data: PubNubData) -> Any:
    if data.push is None:
        raise HandlerCallError("Error", "push registrations are not available here")
    return data.push


async def _add_channels(options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
    method = "channelGroups.addChannels"
    group, channels = _name(options, "channelGroup", method), _channels(options, method)
    try:
        await _groups(data).add(group, channels)
    except AddRefused as refused:
        problem = str(refused)
        raise HandlerCallError(
            "Error", f"pubnub.{method}: {problem}", status=service_status(400, problem)
        ) from None
    return {}


async def _remove_channels(options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
    method = "channelGroups.removeChannels"
    await _groups(data).remove(_name(options, "channelGroup", method), _channels(options, method))
    return {}


async def _list_channels(options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
    group = _name(options, "channelGroup", "channelGroups.listChannels")
    return {"channels": await _groups(data).channels(group)}


async def _list_groups(options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
    return {"groups": await _groups(data).groups()}


async def _delete_group(options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
    await _groups(data).delete(_name(options, "channelGroup", "channelGroups.deleteGroup"))
    return {}


async def _push_add(options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
    method = "push.addChannels"
    await _push(data).add(_device(options, method, adding=True), _channels(options, method))
    return {}


async def _push_remove(options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
    method = "push.removeChannels"
    await _push(data).remove(_device(options, method), _channels(options, method))
    return {}


async def _push_list(options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
    return {"channels": await _push(data).channels(_device(options, "push.listChannels"))}


async def _push_delete(options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
    await _push(data).remove_device(_device(options, "push.deleteDevice"))
    return {}


CHANNEL_CALLS: dict[str, Call] = {
    "channelGroups.addChannels": _add_channels,
    "channelGroups.removeChannels": _remove_channels,
    "channelGroups.listChannels": _list_channels,
    "channelGroups.listGroups": _list_groups,
    "channelGroups.deleteGroup": _delete_group,
    "push.addChannels": _push_add,
    "push.removeChannels": _push_remove,
    "push.listChannels": _push_list,
    "push.deleteDevice": _push_delete,
}
