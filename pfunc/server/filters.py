"""Subscribe filter expressions (`filter-expr`): which messages a subscriber receives,
decided with PubNub's filter language on the publish's payload (`data.`) and `meta`.

    data.score > 80 && meta.priority == "high"
    meta.user["role"] == 'admin'           (a key in brackets; [0] for a list's item)
    uuid != 'ada'                          (uuid: the publisher)
    region == "east" && (priority > 2 || urgent == "true")
    name LIKE 'ad*'                        (* matches any run of characters, any case)
    tags CONTAINS 'news'                   (an array holding it, or a string containing it)
    ('a','b') CONTAINS meta.kind           (a set of values; LIKE takes one too)
    meta.eventId % 100 == 0                (arithmetic: + - * / %, and | & ^ ~ on integers)
    data.value > meta.threshold            (a field on either side)
    !(muted == true)

`data.` reads the message as published; `meta.` and a bare name (PubNub's older form)
read `meta`, dotted or bracketed for nested fields. A name that is not there compares as
missing (every comparison but != is false). Equality takes strings and numbers: a number
and its text are equal, and `true`, `false` and `null` are equal to their JSON text
("true"); ordering and arithmetic take numbers (or their text) only. A malformed
expression is a FilterError, which the subscribe endpoint answers with a 400.

The expression is parsed once into closures; nothing in checking a message backtracks
(LIKE is matched piece by piece), so no filter or message can hold the server's loop.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from operator import ge, gt, le, lt
from typing import Any

from pfunc.jsonio import number_text
from pfunc.like_patterns import like_matcher

Message = tuple[dict[str, Any] | None, str | None, Any]  # (meta, publisher, payload)
Predicate = Callable[[Message], bool]
Value = Callable[[Message], Any]

_KEY = r"""\[(?:(?P<quoted>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<index>[0-9]{1,9}))\]"""
_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<number>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[<>!()+\-*/%|&^~,])"
    r"|(?P<word>[A-Za-z_][\w\-]*(?:\.[A-Za-z_][\w\-]*|" + _KEY + r")*))"
)
# One step of a name's path: .field, ["field"], ['field'] or [index].
_STEP = re.compile(r"\.(?P<field>[A-Za-z_][\w\-]*)|" + _KEY)
# A number's text, as JavaScript's Number() reads a decimal one (no "1_000", no "inf").
_NUMBER_TEXT = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")
_MISSING = object()
MAX_DEPTH = 100  # levels of operations a message is checked through
# JavaScript's numbers are doubles: an integer past this many bits is Infinity to it, and
# arithmetic on it would take Python's time (a product of 4,000-digit numbers a message).
_DOUBLE_BITS = 1024
_COMPARISONS = ("==", "!=", "<", ">", "<=", ">=")
_ORDER = {"<": lt, ">": gt, "<=": le, ">=": ge}
# Arithmetic by precedence, loosest first (JavaScript's: | then ^ then & then + - then
# * / %), each a binary operation on numbers.
_LEVELS: tuple[tuple[str, ...], ...] = (("|",), ("^",), ("&",), ("+", "-"), ("*", "/", "%"))


class FilterError(ValueError):
    """The expression is not PubNub's filter language; the message says where."""


class _Node:
    """A parsed part: its value for a message, and what it is (a test, a set of values
    written in parentheses, a literal's text for LIKE's pattern)."""

    def __init__(
        self, value: Value, *, test: bool = False, members: int = 0, below: tuple[Any, ...] = ()
    ) -> None:
        self.value, self.test, self.members = value, test, members
        self.literal: str | None = None  # a literal's text, as LIKE's pattern reads it
        # How deep checking a message calls (each level a few Python frames): refused past
        # MAX_DEPTH when parsed, never a RecursionError (a 500) at each message.
        self.depth = 1 + max((node.depth for node in below), default=0)
        if self.depth > MAX_DEPTH:
            raise FilterError("filter-expr: nested too deeply")


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
        node = self.either()
        if self.peek() is not None:
            raise FilterError(f"filter-expr: unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return _test(node, "the expression").value

    # A chain of || (or &&) is one predicate over a list: nested one per term, a chain
    # of a thousand overflowed Python's stack when a message was checked.
    def either(self) -> _Node:
        terms = [self.both()]
        while self.peek() == ("op", "||"):
            self.take()
            terms.append(self.both())
        if len(terms) == 1:
            return terms[0]
        tests = [_test(term, "each side of ||").value for term in terms]
        return _Node(lambda m: any(test(m) for test in tests), test=True, below=tuple(terms))

    def both(self) -> _Node:
        terms = [self.negation()]
        while self.peek() == ("op", "&&"):
            self.take()
            terms.append(self.negation())
        if len(terms) == 1:
            return terms[0]
        tests = [_test(term, "each side of &&").value for term in terms]
        return _Node(lambda m: all(test(m) for test in tests), test=True, below=tuple(terms))

    def negation(self) -> _Node:
        if self.peek() == ("op", "!"):
            self.take()
            negated = _test(self.negation(), "what ! negates")
            inner = negated.value
            return _Node(lambda m: not inner(m), test=True, below=(negated,))
        return self.comparison()

    def comparison(self) -> _Node:
        left = self.arithmetic(0)
        token = self.peek()
        if token is None:
            return left
        kind, operator = token
        if kind == "word" and operator.upper() in ("LIKE", "CONTAINS"):
            operator = operator.upper()
        elif kind != "op" or operator not in _COMPARISONS:
            return left
        self.take()
        right = self.arithmetic(0)
        if left.test or right.test:
            raise FilterError(f"filter-expr: {operator} compares values, not tests")
        if right.members:
            raise FilterError(f"filter-expr: a set of values goes before {operator}")
        if left.members and operator not in ("LIKE", "CONTAINS"):
            raise FilterError(f"filter-expr: a set takes CONTAINS or LIKE, not {operator}")
        return _Node(_compared(left, operator, right), test=True, below=(left, right))

    def arithmetic(self, level: int) -> _Node:
        if level == len(_LEVELS):
            return self.prefix()
        node = self.arithmetic(level + 1)
        operators = _LEVELS[level]
        while (token := self.peek()) is not None and token[0] == "op" and token[1] in operators:
            self.take()
            node = _operation(token[1], node, self.arithmetic(level + 1))
        return node

    def prefix(self) -> _Node:
        token = self.peek()
        if token in (("op", "-"), ("op", "~")):
            self.take()
            operand = self.prefix()
            inner = _number_of(operand)
            if token[1] == "-":
                return _Node(
                    lambda m: _MISSING if (n := inner(m)) is _MISSING else -n, below=(operand,)
                )
            return _Node(
                lambda m: _MISSING if (n := inner(m)) is _MISSING else ~_int32(n), below=(operand,)
            )
        return self.primary()

    def primary(self) -> _Node:
        kind, text = self.take()
        if kind == "op" and text == "(":
            inner = [self.either()]
            while self.peek() == ("op", ","):
                self.take()
                inner.append(self.either())
            if self.take() != ("op", ")"):
                raise FilterError("filter-expr: a ( is not closed")
            if len(inner) == 1:
                return inner[0]
            if any(node.test or node.members for node in inner):
                raise FilterError("filter-expr: a set holds values, not tests")
            values = [node.value for node in inner]
            return _Node(
                lambda m: [value(m) for value in values], members=len(values), below=tuple(inner)
            )
        if kind == "word" and text not in ("true", "false", "null"):
            return _Node(_reader(text))
        value = _literal(kind, text)
        node = _Node(lambda m: value)
        # LIKE's pattern keeps a string's escapes (\* is a star itself); another value's text.
        node.literal = text[1:-1] if kind == "string" else _text(value)
        return node


def _literal(kind: str, text: str) -> Any:
    if kind == "string":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    if kind == "number":
        if re.fullmatch(r"[0-9]+", text):
            if len(text) > 4000:  # more digits than int() reads
                raise FilterError(f"filter-expr: the number {text[:20]}... is too long")
            return int(text)
        return float(text)
    if kind == "word":
        return {"true": True, "false": False, "null": None}[text]
    raise FilterError(f"filter-expr: expected a value, got {text!r}")


def _test(node: _Node, where: str) -> _Node:
    if not node.test:
        raise FilterError(f"filter-expr: {where} must be a comparison, e.g. meta.x == 1")
    return node


def _number_of(node: _Node) -> Value:
    if node.test or node.members:
        raise FilterError("filter-expr: arithmetic takes values, not tests or sets")
    value = node.value
    return lambda m: _number(value(m))


def _operation(operator: str, left: _Node, right: _Node) -> _Node:
    first, second = _number_of(left), _number_of(right)

    def value(message: Message) -> Any:
        a, b = _double(first(message)), _double(second(message))
        if a is _MISSING or b is _MISSING:
            return _MISSING
        try:
            return _double(_arithmetic(operator, a, b))
        except OverflowError:  # (a number past a float's range, mixed with a float)
            return _MISSING

    return _Node(value, below=(left, right))


def _double(number: Any) -> Any:
    """An integer past a double's range as JavaScript holds it: an infinity."""
    if isinstance(number, int) and number.bit_length() > _DOUBLE_BITS:
        return math.inf if number > 0 else -math.inf
    return number


def _arithmetic(operator: str, a: float, b: float) -> Any:
    if operator in "|^&":
        x, y = _int32(a), _int32(b)
        return {"|": x | y, "^": x ^ y, "&": x & y}[operator]
    if operator == "+":
        return a + b
    if operator == "-":
        return a - b
    if operator == "*":
        return a * b
    if b == 0:  # JavaScript's: a division by nothing is infinite (or NaN), never an error
        if operator == "%" or a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1, b)
    if operator == "/":
        return a / b if isinstance(a, float) or isinstance(b, float) or a % b else a // b
    return math.fmod(a, b) if isinstance(a, float) or isinstance(b, float) else _int_fmod(a, b)


def _int_fmod(a: int, b: int) -> int:
    """JavaScript's % on whole numbers: the remainder takes the dividend's sign."""
    remainder = abs(a) % abs(b)
    return -remainder if a < 0 else remainder


def _int32(number: float) -> int:
    """JavaScript's ToInt32, which its bitwise operators apply."""
    if isinstance(number, float) and not math.isfinite(number):
        return 0
    whole = int(number) & 0xFFFFFFFF
    return whole - (1 << 32) if whole & 0x80000000 else whole


def _number(value: Any) -> Any:
    """A number, or a number's text, as a number; _MISSING for anything else."""
    if isinstance(value, bool) or value is None:
        return _MISSING
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
        text = value.strip()
        try:
            return int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else float(text)
        except ValueError:  # more digits than int() reads
            return _MISSING
    return _MISSING


def _text(value: Any) -> str | None:
    """A scalar as a filter compares it with text: itself, or its JSON ("true", "3")."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        number = _double(value)
        return str(number) if isinstance(number, int) else number_text(number)  # as JS
    return None


def _same(a: Any, b: Any) -> bool:
    if a is _MISSING or b is _MISSING:
        return False
    if isinstance(a, str) != isinstance(b, str):  # a value and a text: the text of both
        if isinstance(a, str) and (n := _number(a)) is not _MISSING and _number(b) is not _MISSING:
            return bool(n == b)
        if isinstance(b, str) and (n := _number(b)) is not _MISSING and _number(a) is not _MISSING:
            return bool(a == n)
        text = _text(b) if isinstance(a, str) else _text(a)
        return text is not None and text == (a if isinstance(a, str) else b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b  # true is not 1
    if isinstance(a, list | dict) or isinstance(b, list | dict):
        return type(a) is type(b) and bool(a == b)
    return bool(a == b)


def _compared(left: _Node, operator: str, right: _Node) -> Predicate:
    first, second = left.value, right.value
    if operator == "LIKE":  # compiled once here, not at each message
        if right.literal is None:
            raise FilterError("filter-expr: LIKE takes a quoted pattern")
        matches = like_matcher(right.literal)
        if left.members:
            return lambda m: any(isinstance(v, str) and matches(v) for v in first(m))
        return lambda m: isinstance(v := first(m), str) and matches(v)
    if operator == "CONTAINS":
        if left.members:
            return lambda m: any(_same(member, second(m)) for member in first(m))
        return lambda m: _contains(first(m), second(m))
    if operator == "==":
        return lambda m: _same(first(m), second(m))
    if operator == "!=":
        return lambda m: not _same(first(m), second(m))
    order = _ORDER[operator]
    return lambda m: _ordered(order, _number(first(m)), _number(second(m)))


def _ordered(order: Callable[[Any, Any], bool], a: Any, b: Any) -> bool:
    if a is _MISSING or b is _MISSING:
        return False
    return bool(order(a, b))  # (an int and a float compare exactly, whatever their size)


def _contains(whole: Any, part: Any) -> bool:
    if whole is _MISSING or part is _MISSING:
        return False
    if isinstance(whole, list):
        return any(_same(item, part) for item in whole)
    text = _text(part)
    return isinstance(whole, str) and text is not None and text in whole


def _reader(name: str) -> Value:
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


def compile_filter(text: str) -> Predicate:
    """A predicate over (meta, publisher, payload); FilterError when `text` is malformed."""
    if not text.strip():
        return lambda message: True
    try:
        return _Parser(text).parse()
    except RecursionError:  # thousands of ( or !: refused as any malformed expression is
        raise FilterError("filter-expr: nested too deeply") from None
