"""Subscribe filter expressions (`filter-expr`): which messages a subscriber receives,
decided with PubNub's filter language on the publish's payload (`data.`) and `meta`.

    data.score > 80 && meta.priority == "high"
    meta.user["role"] == 'admin'           (a key in brackets; [0] for a list's item)
    uuid != 'ada'                          (uuid: the publisher)
    region == "east" && (priority > 2 || urgent == true)
    name LIKE 'ad*'                        (* matches any run of characters, any case)
    tags CONTAINS 'news'                   (an array holding it, or a string containing it)
    !(muted == true)

`data.` reads the message as published; `meta.` and a bare name (PubNub's older form)
read `meta`, dotted or bracketed for nested fields. A name that is not there compares as
missing (every comparison but != is false). A malformed expression is a FilterError,
which the subscribe endpoint answers with a 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Message = tuple[dict[str, Any] | None, str | None, Any]  # (meta, publisher, payload)
Predicate = Callable[[Message], bool]

_KEY = r"""\[(?:(?P<quoted>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<index>\d+))\]"""
_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<number>-?\d+(?:\.\d+)?)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[<>!()])"
    r"|(?P<word>[A-Za-z_][\w\-]*(?:\.[A-Za-z_][\w\-]*|" + _KEY + r")*))"
)
# One step of a name's path: .field, ["field"], ['field'] or [index].
_STEP = re.compile(r"\.(?P<field>[A-Za-z_][\w\-]*)|" + _KEY)
_MISSING = object()


class FilterError(ValueError):
    """The expression is not PubNub's filter language; the message says where."""


def _tokens(text: str) -> list[tuple[str, str]]:
    found, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FilterError(f"filter-expr: cannot read {text[position : position + 20]!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("filter-expr: the expression ends too early")
        self.index += 1
        return token

    def parse(self) -> Predicate:
        predicate = self.either()
        if self.peek() is not None:
            raise FilterError(f"filter-expr: unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return predicate

    # A chain of || (or &&) is one predicate over a list: nested one per term, a chain
    # of a thousand overflowed Python's stack when a message was checked.
    def either(self) -> Predicate:
        terms = [self.both()]
        while self.peek() == ("op", "||"):
            self.take()
            terms.append(self.both())
        return terms[0] if len(terms) == 1 else lambda m: any(term(m) for term in terms)

    def both(self) -> Predicate:
        terms = [self.unary()]
        while self.peek() == ("op", "&&"):
            self.take()
            terms.append(self.unary())
        return terms[0] if len(terms) == 1 else lambda m: all(term(m) for term in terms)

    def unary(self) -> Predicate:
        if self.peek() == ("op", "!"):
            self.take()
            inner = self.unary()
            return lambda m: not inner(m)
        if self.peek() == ("op", "("):
            self.take()
            inner = self.either()
            if self.take() != ("op", ")"):
                raise FilterError("filter-expr: a ( is not closed")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        kind, name = self.take()
        if kind != "word":
            raise FilterError(f"filter-expr: expected a name, got {name!r}")
        kind, operator = self.take()
        if kind == "word" and operator.upper() in ("LIKE", "CONTAINS"):
            operator = operator.upper()
        elif kind != "op" or operator not in ("==", "!=", "<", ">", "<=", ">="):
            raise FilterError(f"filter-expr: expected an operator after {name}, got {operator!r}")
        if operator == "LIKE":  # compiled once here, not at each message
            token = self.peek()
            raw = token is not None and token[0] == "string"
            # A string's escapes kept for the pattern (\* is a star); another value's text.
            value: Any = _like(self.take()[1][1:-1] if raw else str(self.literal()))
        else:
            value = self.literal()
        read = _reader(name)
        return lambda m: _compare(read(m), operator, value)

    def literal(self) -> Any:
        kind, text = self.take()
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "number":
            try:
                return float(text) if "." in text else int(text)
            except ValueError:  # more digits than int() reads (4,300)
                raise FilterError(f"filter-expr: the number {text[:20]}... is too long") from None
        if kind == "word" and text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text]
        raise FilterError(f"filter-expr: expected a value, got {text!r}")


def _reader(name: str) -> Callable[[Message], Any]:
    if name == "uuid":
        return lambda message: message[1] if message[1] is not None else _MISSING
    path: list[str | int] = []
    for step in _STEP.finditer("." + name):
        if step.group("index") is not None:
            path.append(int(step.group("index")))
        else:
            quoted = step.group("quoted")
            path.append(re.sub(r"\\(.)", r"\1", quoted[1:-1]) if quoted else step.group("field"))
    # Its first step says where to read (data: the payload; meta) when more follow; a
    # bare name is a field of meta (PubNub's older form).
    source = 0
    if len(path) > 1 and path[0] in ("data", "meta"):
        source = 2 if path[0] == "data" else 0
        path = path[1:]

    def read(message: Message) -> Any:
        value: Any = message[source]
        for key in path:
            found = (isinstance(value, list) and isinstance(key, int) and key < len(value)) or (
                isinstance(value, dict) and isinstance(key, str) and key in value
            )
            if not found:
                return _MISSING
            value = value[key]
        return value

    return read


def _compare(actual: Any, operator: str, expected: Any) -> bool:
    if actual is _MISSING:
        return operator == "!="
    if operator == "LIKE":
        # PubNub's LIKE ignores case; * is any run of characters, \\* a star itself.
        return isinstance(actual, str) and expected.fullmatch(actual) is not None
    if operator == "CONTAINS":
        if isinstance(actual, list):
            return expected in actual
        return isinstance(actual, str) and str(expected) in actual
    if operator in ("==", "!="):
        same = actual == expected or (
            isinstance(actual, str) != isinstance(expected, str) and str(actual) == str(expected)
        )
        return same if operator == "==" else not same
    try:
        left, right = float(actual), float(expected)
    except (TypeError, ValueError):
        return False
    return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[
        operator
    ]


def _like(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\\.|\*)", pattern)  # \* is a star itself
    return re.compile(
        "".join(
            ".*" if part == "*" else re.escape(part[-1:] if part.startswith("\\") else part)
            for part in parts
        ),
        re.IGNORECASE | re.DOTALL,
    )


def compile_filter(text: str) -> Predicate:
    """A predicate over (meta, publisher, payload); FilterError when `text` is malformed."""
    if not text.strip():
        return lambda message: True
    try:
        return _Parser(text).parse()
    except RecursionError:  # thousands of ( or !: refused as any malformed expression is
        raise FilterError("filter-expr: nested too deeply") from None
