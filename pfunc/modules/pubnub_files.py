"""The pubnub module's file-sharing calls: `pubnub.listFiles`, `publishFile` and
`deleteFile` over the files `pfunc dev` keeps, with the JavaScript SDK's parameters and
answers (`getFileUrl` is local and synchronous). As in PubNub, a function handles file
metadata only: uploading and downloading bytes is a client SDK's job. Each call is an
operation of kind "pubnub"; publishFile runs the project's file functions one hop on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pfunc.modules.calls import CallContext, HandlerCallError, required_text
from pfunc.modules.publish_options import check_channel, publish_params
from pfunc.pubnub_data import PubNubData

Call = Callable[[dict[str, Any], PubNubData, CallContext], Awaitable[Any]]


def _files(data: PubNubData) -> Any:
    if data.files is None:
        raise HandlerCallError("Error", "files are not available here")
    return data.files


def file_url(data: PubNubData, options: dict[str, Any]) -> str:
    """getFileUrl({channel, id, name}): where the file downloads from."""
    return _files(data).file_url(
        required_text(options, "channel", "getFileUrl"),
        required_text(options, "id", "getFileUrl"),
        required_text(options, "name", "getFileUrl"),
    )


async def _list_files(options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
    limit = options.get("limit")
    found, following = await _files(data).list_files(
        required_text(options, "channel", "listFiles"),
        limit if isinstance(limit, int) and not isinstance(limit, bool) else 100,
        options.get("next") if isinstance(options.get("next"), str) else None,
    )
    answer: dict[str, Any] = {
        "status": 200,
        "data": [shared.to_json() for shared in found],
        "count": len(found),
    }
    if following:
        answer["next"] = following
    return answer


async def _publish_file(options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
    channel = required_text(options, "channel", "publishFile")
    check_channel("publishFile", channel, ctx)
    meta = options.get("meta") if isinstance(options.get("meta"), dict) else None
    params = publish_params("publishFile", options)
    ttl = options.get("ttl")
    report = await _files(data).publish_file(
        channel,
        options.get("message"),
        required_text(options, "fileId", "publishFile"),
        required_text(options, "fileName", "publishFile"),
        meta=meta,
        store=params.get("store") != "0",
        ttl=ttl if isinstance(ttl, int) and not isinstance(ttl, bool) else None,
        custom_message_type=params.get("custom_message_type"),
        hop=ctx.hop + 1,
    )
    ctx.triggered.append(report)
    if report.drop is not None:
        raise HandlerCallError("Error", f"pubnub.publishFile: {report.drop.message}")
    if not report.delivered:
        raise HandlerCallError(
            "Error",
            f'pubnub.publishFile: the file message to "{channel}" was not delivered: '
            f'function "{report.stopped_by}" aborted or failed it',
        )
    # Text, as the SDK gives it (the service's answer's third element): 17 digits are past
    # what a JavaScript number holds exactly.
    return {"timetoken": str(report.timetoken or 0)}


async def _delete_file(options: dict[str, Any], data: PubNubData, ctx: CallContext) -> Any:
    await _files(data).delete_file(
        required_text(options, "channel", "deleteFile"),
        required_text(options, "id", "deleteFile"),
        required_text(options, "name", "deleteFile"),
    )
    return {"status": 200}


FILE_CALLS: dict[str, Call] = {
    "listFiles": _list_files,
    "publishFile": _publish_file,
    "deleteFile": _delete_file,
}
