"""JSON as RFC 8259 defines it, everywhere a value enters or leaves pfunc.

Python's `json` accepts `NaN`, `Infinity` and `1e999` (which becomes infinity), and
writes them back out; JavaScript's `JSON.parse` and every PubNub SDK reject them, so
one such value would poison every later read of a store or a subscribe response. It
also raises RecursionError on deeply nested text. `loads` refuses all of these with a
ValueError that says what was wrong; `dumps` never writes them; `check` does the same
for values that arrive already parsed (TOML allows `nan` and `inf`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Any

MAX_DEPTH = 500  # nesting deeper than this is refused (JavaScript engines allow ~1,000)


class JSONValueError(ValueError):
    """Text or a value that is not RFC 8259 JSON; the message says why."""


def _refuse_constant(name: str) -> Any:
    raise JSONValueError(f"{name} is not JSON (JSON has no NaN or Infinity)")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JSONValueError(f"the number {text[:20]} is too large for JSON (it is infinite)")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # Python's limit on digits in a conversion
        raise JSONValueError(f"the number {text[:20]}... has too many digits") from None


# One decoder for every call: json.loads with options builds a new one each time.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_float, parse_int=_int)
# Their scanners, called directly: json.loads and JSONDecoder.decode wrap the C scanner
# in two Python calls and two whitespace matches, ~1 us of the ~1.6 us that the short
# texts a sandbox exchanges at every host call take to parse.
_SCAN = json.scanner.make_scanner(_DECODER)
_SCAN_PLAIN = json.scanner.make_scanner(json.JSONDecoder())
_WHITESPACE = json.decoder.WHITESPACE  # what decode() allows after the value


def _decoded(scan: Any, read: Callable[[str], Any], text: str) -> Any:
    """What read(text) gives: a value with nothing but whitespace after it straight from
    the scanner; anything else (whitespace before it, extra data, a BOM, an error) from
    `read` itself, which words the error as json does."""
    try:
        value, end = scan(text, 0)
    except StopIteration:
        pass  # (read outside the handler: its error is not chained to this one)
    else:
        if end == len(text) or _WHITESPACE.match(text, end).end() == len(text):
            return value
    return read(text)


def parsed_size(text: str) -> int:
    """About what the value JSON `text` holds once parsed, at least as the dev console's
    walk measures it (console_hub.size_of: 8 an item, 8 a number): its characters and 16
    for each "," and ":" (those inside strings too). Counted in C: a parsed value of many
    small items holds far more than its text."""
    return len(text) + 16 * (text.count(",") + text.count(":"))


def plain_loads(text: str) -> Any:
    """json.loads(text) for a str, the same value or the same error, with less overhead:
    for the texts pfunc's own sandbox side writes (polls, reports, host-call values)."""
    return _decoded(_SCAN_PLAIN, json.loads, text)


def loads(text: str | bytes | bytearray, *, lone_surrogates: bool = False) -> Any:
    """Parse RFC 8259 JSON; JSONValueError (a ValueError) when it is not. With
    `lone_surrogates`, strings may hold them (what a handler's own strings may hold: the
    module that meets one words the error, as for JavaScript)."""
    try:
        if isinstance(text, bytes | bytearray):  # as json.loads reads them
            source = text.decode(json.detect_encoding(text), "surrogatepass")
        else:
            source = text
            if source.startswith("\ufeff"):  # as json.loads words it
                raise json.JSONDecodeError(
                    "Unexpected UTF-8 BOM (decode using utf-8-sig)", source, 0
                )
        value = _decoded(_SCAN, _DECODER.decode, source)
    except RecursionError:
        raise JSONValueError("nested more deeply than JSON parsers accept") from None
    except UnicodeDecodeError as error:
        raise JSONValueError(f"not UTF-8 text ({error.reason})") from None
    except JSONValueError:
        raise
    except json.JSONDecodeError:
        raise
    except ValueError as error:
        raise JSONValueError(str(error)) from None
    # Only a \u escape can make a lone surrogate; walk the value only when one may be there.
    if not lone_surrogates and ("\\ud" in source or "\\uD" in source):
        check(value)
    return value


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string, brackets and all
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SAME_BRACKETS = str.maketrans("{}", "[]")
_DEPTH_STEP = {ord("["): 1, ord("]"): -1}


def too_deep(text: str) -> bool:
    """Whether JSON `text` nests deeper than MAX_DEPTH (what no parser here could read
    back: Python's stops near 1,000, and a value stored past that broke every read of
    the store). Texts with fewer brackets than that in all are passed over at once; in
    the rest, strings are dropped and the depth is the largest running sum of the
    brackets left (C-level iterators, no Python loop: linear, ~40 ms for 2 MB)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).translate(_SAME_BRACKETS)
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets.encode()))) > MAX_DEPTH


def js_length(text: str) -> int:
    """What JavaScript's `text.length` is: UTF-16 code units, so an emoji counts 2 (a
    limit in characters, PubNub's, is checked as a handler's own `key.length` reads)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def well_formed(text: str) -> str:
    """`text` with lone surrogates (JavaScript and Python strings may hold them; UTF-8
    cannot) as U+FFFD, and pairs that arrived split joined again."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def check(value: Any, depth: int = 0) -> Any:
    """Return `value` if JSON can carry it (no NaN or infinity, not nested too deeply,
    strings that are valid Unicode); raise JSONValueError otherwise."""
    if depth > MAX_DEPTH:
        raise JSONValueError(f"nested deeper than JSON parsers accept ({MAX_DEPTH})")
    if isinstance(value, float) and not math.isfinite(value):
        raise JSONValueError(f"{value} is not JSON (JSON has no NaN or Infinity)")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(str(key))
            check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check(item, depth + 1)
    elif value is not None and not isinstance(value, bool | int | float):
        raise JSONValueError(f"a {type(value).__name__} is not a JSON value")
    return value


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JSONValueError(
            "a string holds a lone surrogate, which is not valid Unicode"
        ) from None


# Compact JSON as JSON.stringify writes it, by encoders made once: json.dumps with options
# makes one at each call (~0.8 us of the ~2.4 a small message takes), and a publish or a
# host call writes several. `COMPACT.encode(v)` is json.dumps(v, ensure_ascii=False,
# separators=(",", ":")), with allow_nan=False for `STRICT_COMPACT`.
COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
STRICT_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps(value: Any) -> str:
    """Compact JSON text, as JSON.stringify writes it (numbers too); JSONValueError for
    values JSON cannot carry."""
    try:
        return js_form(STRICT_COMPACT.encode(value))
    except RecursionError:
        raise JSONValueError(f"nested deeper than JSON parsers accept ({MAX_DEPTH})") from None
    except (TypeError, ValueError) as error:
        raise JSONValueError(str(error)) from None


# Where Python writes a float otherwise than JavaScript: a whole one (2.0) or one with an
# exponent (1e-07, 1.5e+16); between, Python's shortest digits are JavaScript's.
_PYTHON_FLOAT = re.compile(r"\d\.0(?![0-9])|\de[-+]")


def compact(value: Any) -> str:
    """COMPACT's JSON text (NaN and Infinity as their names) with numbers as JavaScript
    writes them: what pfunc measures, sends and records of a value it did not refuse."""
    return js_form(COMPACT.encode(value))


def shown(value: Any, indent: int | None = None) -> str:
    """JSON to read (a command's output, the console), numbers as JavaScript writes them,
    as the store and the wire hold them: 1e-7, not Python's 1e-07."""
    return js_form(json.dumps(value, indent=indent, ensure_ascii=False))


def js_form(text: str) -> str:
    """JSON `text` (the standard encoder's) with its numbers as JavaScript's
    JSON.stringify writes them (2.0 is 2, 1e-07 is 1e-7). Looked at only where Python's
    form may differ (one regex; most texts have none); then only the numbers between
    its strings are, and only those Python writes otherwise are written again."""
    if not _PYTHON_FLOAT.search(text):
        return text
    parts = _STRINGS.split(text)  # strings at the odd places, kept as they are
    parts[0::2] = [_PYTHON_NUMBER.sub(_js_number, part) for part in parts[0::2]]
    return "".join(parts)


_STRINGS = re.compile(r'("[^"\\]*(?:\\.[^"\\]*)*")')  # (the unrolled form: C-fast)
_PYTHON_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?[eE][-+]?[0-9]+|-?[0-9]+\.0(?![0-9])")


def _js_number(found: re.Match[str]) -> str:
    return number_text(float(found.group(0)))


def number_text(number: float) -> str:
    """A number as JavaScript's String() writes it (ECMA-262 Number::toString): 1.0 is
    "1", 1e-07 is "1e-7", 1e16 is "10000000000000000", NaN is "NaN"."""
    if isinstance(number, int):
        return str(number)
    if number != number:
        return "NaN"
    if number in (float("inf"), float("-inf")):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    # Python's repr has JavaScript's digits (the shortest that read back); only where the
    # point goes differs.
    mantissa, _, exponent = repr(abs(number)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + int(exponent or 0)  # digits before the decimal point
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    count = len(digits)
    if count <= point <= 21:
        text = digits + "0" * (point - count)
    elif 0 < point <= 21:
        text = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        power = point - 1
        text = digits[0] + ("." + digits[1:] if count > 1 else "")
        text += ("e+" if power >= 0 else "e-") + str(abs(power))
    return sign + text
