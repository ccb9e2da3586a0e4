"""JavaScript values as a Python handler's worker sees and sends them: JSON as
JSON.stringify writes it, what a module call's arguments become, and the objects that
stand for JavaScript ones (an object whose fields read as attributes, a Promise settled
at once, xhr.fetch's response)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from pfunc import jsonio
from pfunc.jsonio import number_text


def strict_json(value: Any) -> str:
    """JSON text as JavaScript's JSON.stringify writes it: a NaN or Infinity inside is null,
    a float as JavaScript writes the number (2.0 is 2, 1e-07 is 1e-7: a Python handler's
    division would otherwise weigh more against the KV limit than JavaScript's), and a
    lone surrogate as its \\u escape."""
    try:
        text = jsonio.STRICT_COMPACT.encode(value)
    except ValueError as error:
        if "Out of range float" not in str(error):
            raise
        text = jsonio.COMPACT.encode(_finite(value))
    text = jsonio.js_form(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # (a Python str holds surrogates only as lone ones)
        return _SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def js_string(value: Any) -> str:
    """What JavaScript's String(value) gives for the value as a JavaScript handler would
    have it (a response header, a status in an error): True is "true", None "null"."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return number_text(value)
    if isinstance(value, list | tuple):
        return ",".join("" if item is None else js_string(item) for item in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


# JavaScript's StringToNumber: a decimal literal (ASCII digits, no "_"), or 0x/0o/0b
# digits, or Infinity, around whitespace; "" is 0, anything else NaN.
_JS_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?Infinity")
_JS_RADIX = {"0x": (16, "0123456789abcdefABCDEF"), "0o": (8, "01234567"), "0b": (2, "01")}


def js_number(value: Any) -> float:
    """What JavaScript's Number(value) gives for the value as a JavaScript handler would
    have it: 201.0 and "201" are 201, "0xC8" 200, [200] 200, True 1, "2_00" NaN."""
    if value is None or isinstance(value, bool):
        return float(value or 0)
    if isinstance(value, int | float):
        return float(value) if abs(value) < 1e308 else float("inf") * (1 if value > 0 else -1)
    if isinstance(value, list | tuple):
        return js_number(js_string(value))
    if not isinstance(value, str):
        return float("nan")
    text = value.strip(
        " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
        "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
    )
    if not text:
        return 0.0
    radix = _JS_RADIX.get(text[:2].lower())
    if radix is not None and len(text) > 2 and all(c in radix[1] for c in text[2:]):
        return float(int(text[2:], radix[0]))
    if _JS_DECIMAL.fullmatch(text):
        return float(text.replace("Infinity", "inf"))
    return float("nan")


def status_code(value: Any, call: str) -> int:
    """The HTTP status a handler gave, read as JavaScript's Number() reads it (201, 201.0
    and "201" alike), or the TypeError JavaScript's send() raises."""
    number = js_number(value)
    if 200 <= number <= 599 and number.is_integer():  # (a 1xx is no final answer)
        return int(number)
    raise TypeError(
        f"{call}: status must be an HTTP status code (200 to 599), got {js_string(value)}"
    )


def encode(value: Any) -> dict[str, Any]:
    if value is UNDEFINED:
        return {"t": "undefined"}
    if callable(value):
        return {"t": "function"}
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return {"t": number_text(value)}  # JavaScript's names: NaN, Infinity, -Infinity
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return {"v": int(number_text(value))}  # 2.0 as JavaScript's 2 reaches the host
    if value is None or isinstance(value, bool | int | float | str):
        return {"v": value}
    try:
        return {"j": strict_json(value)}
    except ValueError as error:
        return {"t": "cyclic" if "ircular" in str(error) else "NaN"}
    except RecursionError:
        return {"t": "deep"}
    except TypeError as error:  # bytes, a set, a datetime: JavaScript has no such value
        raise TypeError(
            f"{error}: a module takes what JSON holds (text, numbers, true/false, None, lists "
            "and dicts); decode bytes, turn sets into lists and times into text"
        ) from None


UNDEFINED = object()


class JsObject(dict):  # type: ignore[type-arg]
    """A JavaScript object as a Python handler sees it: a dict whose fields read as
    attributes too (response.status, crypto.ALGORITHM.HMAC_SHA256)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Settled:
    """What a JavaScript Promise settled at once is in Python: awaitable, or `.result()`."""

    def __init__(self, value: Any = None, error: Exception | None = None) -> None:
        self._value, self._error = value, error

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value

    def __await__(self):  # type: ignore[no-untyped-def]
        future = asyncio.get_event_loop().create_future()
        if self._error is not None:
            future.set_exception(self._error)
        else:
            future.set_result(self._value)
        return future.__await__()


def _no_constant(name: str) -> Any:
    raise ValueError(f"unexpected token: {name}, which JSON has no literal for")


class FetchResponse(JsObject):
    """xhr.fetch's answer as JavaScript handlers get it (prelude.js __pfunc_xhrResponse):
    its fields by key or attribute, json() and text() as methods (so that, as with
    JSON.stringify in JavaScript, json.dumps and console.log show the fields only)."""

    def __init__(self, raw: Any) -> None:
        super().__init__({key: raw.get(key) for key in ("status", "statusText", "headers")})
        self["body"], self["url"] = raw.get("body"), raw.get("url")
        self["ok"] = isinstance(raw.get("status"), int) and 200 <= raw["status"] < 300
        self["$buffer"] = {"type": "Buffer", "data": raw.get("buffer") or []}

    def json(self) -> Settled:
        try:  # as JSON.parse reads it: no NaN or Infinity literal (1e400 is infinite)
            return Settled(json.loads(self["body"], parse_constant=_no_constant))
        except (TypeError, ValueError) as error:  # a JSONDecodeError, reported as SyntaxError
            why = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
            text = f"xhr response.json(): the body of {self['url']} is not valid JSON: {why}"
            body = self["body"] if isinstance(self["body"], str) else ""
            position = error.pos if isinstance(error, json.JSONDecodeError) else 0
            return Settled(error=json.JSONDecodeError(text, body, position))

    def text(self) -> Settled:
        return Settled(self["body"])
