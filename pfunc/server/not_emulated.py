"""PubNub endpoints `pfunc dev` does not emulate yet: one table, so that an SDK call
answers with PubNub's error shape naming what is missing (and the dev log says so)
instead of a 404 that reads like a missing function. docs/sdk-operations.md lists the
same operations for users."""

from __future__ import annotations

import re

from aiohttp import web

from pfunc.server.wire import pubnub_error

NOT_EMULATED_STATUS = 400

# (method or None for any, path pattern, what the SDKs call it). First match wins.
NOT_EMULATED: list[tuple[str | None, re.Pattern[str], str]] = [
    (method, re.compile(pattern), what)
    for method, pattern, what in (
        (None, r"^/v2/auth/audit", "Access Manager audit (v2)"),
        (None, r"^/v1/message-persistence|^/v1/history", "message persistence"),
        # The endpoints older SDKs used, before the ones pfunc serves (v2 subscribe,
        # v2/v3 history, sub-key presence, v2 and v3 Access Manager).
        (None, r"^/v1/auth/", "Access Manager v1 (grant and audit)"),
        (None, r"^/subscribe/", "subscribe v1 (SDKs since 2016 use /v2/subscribe)"),
        (None, r"^/history/", "history v1 (SDKs use /v2/history and /v3/history)"),
        (None, r"^/v2/presence/sub_key/", "presence under sub_key (SDKs use /sub-key/)"),
    )
]


def not_emulated(method: str, path: str) -> str | None:
    """What the SDKs call the operation at `method path`, when pfunc does not emulate it."""
    for wanted, pattern, what in NOT_EMULATED:
        if (wanted is None or wanted == method) and pattern.search(path):
            return what
    return None


def not_emulated_answer(what: str, method: str, path: str) -> web.Response:
    # A 4xx, not 501: the SDKs retry a 5xx (the JavaScript SDK 11 for about two minutes,
    # with backoff) where a 400 fails at once; the message says what is missing.
    return pubnub_error(NOT_EMULATED_STATUS, f"not emulated by pfunc dev: {what} ({method} {path})")
