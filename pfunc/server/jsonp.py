"""JSONP: PubNub's REST API wraps a JSON answer in the callback a request names (the
publish and subscribe paths' `{callback}` segment, `callback=` elsewhere; "0" for none),
for script-tag clients. The SDKs always send "0"."""

from __future__ import annotations

import re

from aiohttp import web

from pfunc.server.guards import Handler
from pfunc.server.wire import NOT_PUBNUB_PREFIXES

# A callback is a JavaScript name, or a dotted path of names: anything else is script a
# page did not mean to run (the name is echoed into the answer), and is not wrapped.
_CALLBACK = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*")


def callback_of(request: web.Request) -> str | None:
    """The callback to wrap the answer in; None for PubNub's "0", for a name that is no
    JavaScript name, and on a function's own route or pfunc's own (their answers are
    their own)."""
    if request.path.startswith(NOT_PUBNUB_PREFIXES):
        return None
    named = request.match_info.get("callback") or request.query.get("callback", "")
    if named in ("", "0") or len(named) > 128 or not _CALLBACK.fullmatch(named):
        return None
    return named


@web.middleware
async def jsonp(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    callback = callback_of(request)
    if (
        callback is None
        or not isinstance(response, web.Response)
        or response.content_type != "application/json"
        or not isinstance(response.body, bytes)
    ):
        return response
    wrapped = web.Response(
        body=callback.encode() + b"(" + response.body + b")",
        status=response.status,
        content_type="text/javascript",
        charset="utf-8",
    )
    for name, value in response.headers.items():
        if name.lower() not in ("content-type", "content-length"):
            wrapped.headers.add(name, value)
    return wrapped
