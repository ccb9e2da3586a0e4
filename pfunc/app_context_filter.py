"""App Context filter expressions: the `filter` parameter of the list calls (all users,
all channels, memberships, members), in PubNub's App Context filter language.

    name LIKE 'Ada*' && status == "active"
    custom.level >= 3 || !(type == 'bot')
    channel.name LIKE '*general*'              (memberships: fields of the channel)
    updated > '2025-01-01T00:00:00Z'

Comparisons are `==`, `!=`, `<`, `<=`, `>`, `>=` and `LIKE` (`*` matches any run of
characters, `\\*` a star; case-insensitive); values are quoted strings (single or
double quotes), numbers, `true`, `false` and `null`; `&&` binds tighter than `||`, `!`
negates, parentheses group. Field names are those of the record the call lists, checked
when the expression is read: a malformed expression or an unknown field is a
FilterError, which the endpoints answer with PubNub's 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from pfunc.like_patterns import like_matcher

Record = dict[str, Any]
Predicate = Callable[[Record], bool]

USER_FIELDS = frozenset(
    {"id", "name", "externalId", "profileUrl", "email", "status", "type", "updated"}
)
CHANNEL_FIELDS = frozenset({"id", "name", "description", "status", "type", "updated"})
LINK_FIELDS = frozenset({"status", "type", "updated"})

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[<>!()])"
    r"|(?P<word>[A-Za-z_$][\w$\-]*(?:\.[A-Za-z_$\d][\w$\-]*)*))"
)
_COMPARISONS = {"==", "!=", "<", "<=", ">", ">="}
MAX_DEPTH = 50


class FilterError(ValueError):
    """The expression is not PubNub's App Context filter language; the message says why."""


def fields_of(kind: str) -> Callable[[list[str]], bool]:
    """Which dotted paths a filter (or a sort) may name for records of `kind`: "uuid",
    "channel", "membership" (a uuid's channels) or "member" (a channel's uuids)."""

    def object_path(parts: list[str], names: Collection[str]) -> bool:
        if parts[0] == "custom":
            return len(parts) == 2
        return len(parts) == 1 and parts[0] in names

    def check(parts: list[str]) -> bool:
        if kind == "uuid":
            return object_path(parts, USER_FIELDS)
        if kind == "channel":
            return object_path(parts, CHANNEL_FIELDS)
        other, names = ("uuid", USER_FIELDS) if kind == "member" else ("channel", CHANNEL_FIELDS)
        if parts[0] == other and len(parts) > 1:
            return object_path(parts[1:], names)
        return object_path(parts, LINK_FIELDS)

    return check


def parse_filter(text: str, kind: str) -> Predicate:
    """The predicate `text` describes, over records of `kind` (see fields_of)."""
    if not text.strip():
        raise FilterError("the filter expression is empty")
    return _Parser(text, fields_of(kind)).parse()


def _tokens(text: str) -> list[tuple[str, str]]:
    found, position, end = [], 0, len(text.rstrip())
    while position < end:
        match = _TOKEN.match(text, position)
        if match is None:
            raise FilterError(f"cannot read the filter at {text[position : position + 20]!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


class _Parser:
    def __init__(self, text: str, allowed: Callable[[list[str]], bool]) -> None:
        self.tokens = _tokens(text)
        self.index = 0
        self.allowed = allowed
        self.depth = 0  # of parentheses and negations, bounded: Python's stack is not

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("the filter expression ends too early")
        self.index += 1
        return token

    def parse(self) -> Predicate:
        predicate = self.either()
        extra = self.peek()
        if extra is not None:
            raise FilterError(f"unexpected {extra[1]!r} in the filter expression")
        return predicate

    # A chain of || (or &&) is one list, not nested closures: a long flat filter must not
    # reach Python's recursion limit when it is evaluated.
    def either(self) -> Predicate:
        terms = [self.both()]
        while self.peek() == ("op", "||"):
            self.take()
            terms.append(self.both())
        if len(terms) == 1:
            return terms[0]
        return lambda record: any(term(record) for term in terms)

    def both(self) -> Predicate:
        terms = [self.unary()]
        while self.peek() == ("op", "&&"):
            self.take()
            terms.append(self.unary())
        if len(terms) == 1:
            return terms[0]
        return lambda record: all(term(record) for term in terms)

    def unary(self) -> Predicate:
        token = self.take()
        if token in (("op", "!"), ("op", "(")):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise FilterError(f"the filter nests deeper than {MAX_DEPTH} levels")
        if token == ("op", "!"):
            inner = self.unary()
            self.depth -= 1
            return lambda r: not inner(r)
        if token == ("op", "("):
            inner = self.either()
            if self.take() != ("op", ")"):
                raise FilterError("a parenthesis is not closed in the filter expression")
            self.depth -= 1
            return inner
        if token[0] != "word":
            raise FilterError(f"expected a field name in the filter expression, not {token[1]!r}")
        return self.comparison(token[1])

    def comparison(self, name: str) -> Predicate:
        parts = name.split(".")
        if not self.allowed(parts):
            raise FilterError(f"{name!r} is not a field that can be filtered on here")
        kind, operator = self.take()
        if kind == "word" and operator.upper() == "LIKE":
            operator = "LIKE"
        elif kind != "op" or operator not in _COMPARISONS:
            raise FilterError(f"expected a comparison after {name!r}, not {operator!r}")
        value_kind, text = self.take()
        if operator == "LIKE":
            if value_kind != "string":
                raise FilterError(f"LIKE takes a quoted pattern, not {text!r}")
            like = like_matcher(text[1:-1])
            return lambda r: isinstance(got := _lookup(r, parts), str) and like(got)
        wanted = _value(value_kind, text)
        return lambda r: _compare(_lookup(r, parts), operator, wanted, parts[-1] == "updated")


def _value(kind: str, text: str) -> Any:
    if kind == "string":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    if kind == "number":
        number = float(text)
        return int(number) if number.is_integer() and "." not in text else number
    if kind == "word" and text in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[text]
    raise FilterError(f"expected a quoted string, a number, true, false or null, not {text!r}")


def _lookup(record: Record, parts: list[str]) -> Any:
    value: Any = record
    for part in parts:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _compare(got: Any, operator: str, wanted: Any, is_time: bool) -> bool:
    got, wanted = _comparable(got, wanted, is_time)
    same = got == wanted and isinstance(got, bool) is isinstance(wanted, bool)  # True != 1
    if operator == "==":
        return same
    if operator == "!=":
        return not same
    if got is None or wanted is None or type(got) is not type(wanted):
        return False
    if operator == "<":
        return got < wanted
    if operator == "<=":
        return got <= wanted
    if operator == ">":
        return got > wanted
    return got >= wanted


def _comparable(got: Any, wanted: Any, is_time: bool) -> tuple[Any, Any]:
    """Both sides in one type where they can be: times as datetimes, a number and its
    text as numbers, booleans as booleans (never as 0 and 1)."""
    if is_time and isinstance(got, str) and isinstance(wanted, str):
        try:
            return _time(got), _time(wanted)
        except ValueError:
            return got, wanted
    if isinstance(got, bool) or isinstance(wanted, bool):
        return got, wanted
    numbers = (int, float)
    if isinstance(got, numbers) and isinstance(wanted, str):
        wanted = _number(wanted, wanted)
    elif isinstance(got, str) and isinstance(wanted, numbers):
        got = _number(got, got)
    if isinstance(got, numbers) and isinstance(wanted, numbers):
        return float(got), float(wanted)
    return got, wanted


def _number(text: str, otherwise: Any) -> Any:
    try:
        return float(text)
    except ValueError:
        return otherwise


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
