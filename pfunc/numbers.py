"""Whole numbers read from text a client or a handler chose (a query parameter, a TTL,
a timestamp): ASCII digits only, and no more of them than the caller allows; and the
64-bit range a KV counter holds.

str.isdigit() accepts characters such as "²" that int() refuses, and int() refuses text
of more than 4,300 digits: a check of isdigit() before int() let either through to a
ValueError, which the dev server answered with a 500.
"""

from __future__ import annotations


def whole_number(text: str, digits: int) -> int | None:
    """`text` as a whole number when it is 1 to `digits` ASCII digits, else None."""
    if 0 < len(text) <= digits and text.isascii() and text.isdigit():
        return int(text)
    return None


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def fits_counter(value: int) -> bool:
    return _INT64_MIN <= value <= _INT64_MAX


def is_counter(value: object) -> bool:
    """Whether `value` is what a counter holds: a whole number (no bool), 64-bit."""
    return isinstance(value, int) and not isinstance(value, bool) and fits_counter(value)
