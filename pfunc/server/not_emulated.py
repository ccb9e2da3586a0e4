"""PubNub endpoints `pfunc dev` does not emulate yet: one table, so that an SDK call
answers with PubNub's error shape naming what is missing (and the dev log says so)
instead of a 404 that reads like a missing function. docs/sdk-operations.md lists the
same operations for users."""

from __future__ import annotations

import re

from aiohttp import web

from pfunc.server.wire import pubnub_error

# (method or None for any, path pattern, what the SDKs call it). First match wins.
NOT_EMULATED: list[tuple[str | None, re.Pattern[str], str]] = [
    (method, re.compile(pattern), what)
    for method, pattern, what in (
        (None, r"^/v2/auth/audit", "Access Manager audit (v2)"),
        (None, r"^/v1/message-persistence|^/v1/history", "message persistence"),
    )
]


def not_emulated(method: str, path: str) -> str | None:
    """What the SDKs call the operation at `method path`, when pfunc does not emulate it."""
    for wanted, pattern, what in NOT_EMULATED:
        if (wanted is None or wanted == method) and pattern.search(path):
            return what
    return None


def not_emulated_answer(what: str, method: str, path: str) -> web.Response:
    # 501 reads as a failure in every SDK, and says the server lacks the feature.
    return pubnub_error(501, f"not emulated by pfunc dev: {what} ({method} {path})")
