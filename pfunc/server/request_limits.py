"""What every request to pfunc dev must be, whatever it asks for: a body that arrives in
time, and a path whose escapes decode to text."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from pfunc.server.guards import Handler
from pfunc.server.wire import NOT_PUBNUB_PREFIXES, pubnub_error, undecodable

# aiohttp's keep-alive limit covers a request's line and headers, never its body, so a
# client announcing 100 bytes and sending 4 held its connection and handler for good (one
# client could use up the fds). A body must bring this much in each such window (as long
# as an idle connection is kept, serve.py), or its end: a slow upload goes on, a stalled
# one is cut.
BODY_SECONDS = 60.0
BODY_PROGRESS_BYTES = 1024

# Routes that answer an undecodable name in their own shape (publish's [0, "Invalid
# Channel", tt], subscribe's and presence's Invalid Channel), and those whose paths are
# not PubNub's names.
_OWN_ANSWER = (
    "/publish/",
    "/signal/",
    "/v1/files/publish-file/",
    "/v2/subscribe/",
    "/subscribe/",
    *NOT_PUBNUB_PREFIXES,
)
_OWN_ENDINGS = ("/heartbeat", "/leave")


class RequestLimits:
    def __init__(
        self, log: Callable[[dict[str, Any]], None], body_seconds: float = BODY_SECONDS
    ) -> None:
        self.log = log
        self.body_seconds = body_seconds

    @web.middleware
    async def body_deadline(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A body that brings less than BODY_PROGRESS_BYTES in `body_seconds` (and has not
        ended) ends its connection, logged: the read under way then fails as a client
        that left."""
        if not request.body_exists:
            return await handler(request)
        loop = asyncio.get_running_loop()
        content = request.content
        arrived = content.total_bytes

        def check_progress() -> None:
            nonlocal arrived, timer
            if content.is_eof() or request.transport is None:
                return
            if content.total_bytes - arrived < BODY_PROGRESS_BYTES:
                why = f"its body stopped arriving ({content.total_bytes:,} bytes in)"
                self.log({"type": "bad-request", "error": f"{request.path}: {why}; closed"})
                request.transport.close()
                return
            arrived = content.total_bytes
            timer = loop.call_later(self.body_seconds, check_progress)

        timer = loop.call_later(self.body_seconds, check_progress)
        try:
            return await handler(request)
        finally:
            timer.cancel()

    @web.middleware
    async def decodable_path(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A name whose escapes are no UTF-8 (`g%ffx`) is refused: the router keeps such
        an escape as it stands, so the group sent as the byte 0xFF and the one named
        "%ff" (sent as %25ff) were one, in groups, actions, App Context and state."""
        raw = request.raw_path.split("?", 1)[0]
        if (
            "%" in raw
            and not raw.startswith(_OWN_ANSWER)
            and not raw.endswith(_OWN_ENDINGS)
            and undecodable(raw)
        ):
            return pubnub_error(400, "Invalid path: its escapes do not decode to UTF-8 text")
        return await handler(request)
