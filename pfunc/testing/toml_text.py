"""TOML text for the scenario files pfunc writes (save as scenario, pfunc dev --record):
values as inline tables and arrays, which `pfunc test` reads back as the same JSON.

TOML has no null: a value holding one cannot be written, and the caller decides what
that means (an expectation drops the field; an event cannot be saved)."""

from __future__ import annotations

import json
import math
import re
from datetime import date, time
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class NotTOML(ValueError):
    """A value TOML cannot hold (null, NaN, a lone surrogate); says where."""


def key(name: str) -> str:
    return name if _BARE_KEY.match(name) else string(name)


def string(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NotTOML("text holds a lone surrogate") from None
    # JSON's escapes are TOML's, except that TOML also wants DEL escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def value(data: Any, where: str = "value") -> str:
    if data is None:
        raise NotTOML(f"{where} is null, which TOML cannot write")
    if isinstance(data, bool):
        return "true" if data else "false"
    if isinstance(data, int):
        return str(data)
    if isinstance(data, float):
        if not math.isfinite(data):
            raise NotTOML(f"{where} is {data}, which TOML cannot write")
        return repr(data)
    if isinstance(data, str):
        return string(data)
    if isinstance(data, list):
        return "[" + ", ".join(value(item, f"{where}[{i}]") for i, item in enumerate(data)) + "]"
    if isinstance(data, dict):
        if not data:
            return "{}"
        parts = [f"{key(str(k))} = {value(v, f'{where}.{k}')}" for k, v in data.items()]
        return "{ " + ", ".join(parts) + " }"
    raise NotTOML(f"{where} is a {type(data).__name__}")


def shown(data: Any) -> str:
    """`data` as TOML writes it (true, { a = 1 }), for a message about a value read from a
    scenario file; Python's own spelling only for what TOML cannot hold."""
    try:
        return value(data)
    except NotTOML:
        return repr(data)


def json_misfit(data: Any, where: str) -> str | None:
    """Why a value read from TOML has no JSON form, naming where it is: a date or time
    (TOML's own type, a common slip for text) or nan/inf; None when it has one."""
    if isinstance(data, date | time):
        return (
            f"{where} = {data.isoformat()} is a TOML date or time, which JSON has no form "
            f'for: quote it ("{data.isoformat()}")'
        )
    if isinstance(data, float) and not math.isfinite(data):
        return f"{where} = {data} is not a number JSON can hold"
    if isinstance(data, dict | list):
        for name, item in data.items() if isinstance(data, dict) else enumerate(data):
            inner = f"{where}[{name}]" if isinstance(data, list) else f"{where}.{name}"
            inner = inner.lstrip(".")
            if found := json_misfit(item, inner):
                return found
    return None


def without_nulls(data: Any) -> Any:
    """Objects without their null fields; a list holding null is dropped whole (an
    expectation that says less still holds)."""
    if isinstance(data, dict):
        kept = {}
        for name, item in data.items():
            cleaned = without_nulls(item)
            if cleaned is not _DROP:
                kept[name] = cleaned
        return kept
    if data is None:
        return _DROP
    if isinstance(data, list):
        items = [without_nulls(item) for item in data]
        return _DROP if any(item is _DROP for item in items) else items
    return data


_DROP: Any = object()


def dropped(data: Any) -> bool:
    return data is _DROP
