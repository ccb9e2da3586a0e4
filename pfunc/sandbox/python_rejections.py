"""A module call's rejection, raised in a Python handler as the JavaScript error it is:
`TypeError`, `RangeError` (a ValueError) or `HandlerError` (JavaScript's Error), with a
class of its own name under it for the named ones (TokenExpiredError...). A handler
catches them as `from pfunc import HandlerError, RangeError`."""

from __future__ import annotations

import json
from functools import cache
from typing import Any


class HandlerError(Exception):
    """What a rejected JavaScript Promise is as a Python exception (name Error)."""


class RangeError(ValueError):
    """JavaScript's RangeError: a ValueError to catch, reported by its JavaScript name,
    so one scenario's `error` fits both languages."""


@cache
def _error_class(name: str) -> type[HandlerError]:
    """The class of a rejection by its JavaScript name (TokenExpiredError...), a
    HandlerError to catch; a plain Error is HandlerError itself."""
    if name == "Error" or not name.isidentifier():
        return HandlerError
    return type(name, (HandlerError,), {"__module__": __name__})


def answered(reply: dict[str, Any]) -> Any:
    """A call's value, or its rejection raised as the JavaScript error it is."""
    if reply["ok"]:
        return None if reply.get("payload") is None else json.loads(reply["payload"])
    info = json.loads(reply["payload"])
    name = info["name"]
    kind = {"TypeError": TypeError, "RangeError": RangeError}.get(name) or _error_class(name)
    error = kind(info["message"])
    error.code = info.get("code")  # type: ignore[attr-defined]
    error.status = info.get("status")  # type: ignore[attr-defined]
    raise error
