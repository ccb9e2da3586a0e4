"""Comparing what an execution did with what a scenario step expects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pfunc.result import Result

ABSENT, PRESENT = "absent", "present"


@dataclass
class Mismatch:
    field: str  # e.g. "message.count" or "kv.session:abc"
    expected: Any
    actual: Any
    note: str = ""

    def describe(self) -> str:
        if self.note == "malformed":  # a step that cannot run: what is wrong with it
            return f"cannot run as written: {self.actual}"
        text = f"{self.field}: expected {_show(self.expected)}, got {_show(self.actual)}"
        return f"{text} ({self.note})" if self.note else text


_MISSING = object()


def _show(value: Any) -> str:
    if value is _MISSING:
        return "nothing"
    return (
        json.dumps(value, ensure_ascii=False, sort_keys=True)
        if not isinstance(value, str) or value in (ABSENT, PRESENT)
        else json.dumps(value, ensure_ascii=False)
    )


def contains(expected: Any, actual: Any, field: str) -> list[Mismatch]:
    """Objects match when every expected key matches (extra keys are fine); lists and
    scalars must be equal, element by element."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [Mismatch(field, expected, actual, "not an object")]
        found: list[Mismatch] = []
        for key, value in expected.items():
            if value == ABSENT and actual.get(key) in (None, ABSENT):
                continue  # TOML has no null: "absent" expects a field missing or null
            if key not in actual:
                found.append(Mismatch(f"{field}.{key}", value, _MISSING))
            else:
                found.extend(contains(value, actual[key], f"{field}.{key}"))
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [Mismatch(field, expected, actual)]
        found = []
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            found.extend(contains(want, got, f"{field}[{index}]"))
        return found
    # true == 1 in Python; a scenario that says true means a boolean.
    same = expected == actual and isinstance(expected, bool) == isinstance(actual, bool)
    return [] if same else [Mismatch(field, expected, actual)]


def _texts(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _absent(want: Any, got: Any) -> bool:
    """`"absent"` expects a value that is missing or null (TOML has no null)."""
    return want == ABSENT and got in (None, _MISSING)


def check(
    expect: dict[str, Any], result: Result, kv: dict[str, Any], counters: dict[str, int]
) -> list[Mismatch]:
    """Every difference between `expect` and the result (and the store afterwards)."""
    found: list[Mismatch] = []
    reported = result.verdict()  # (what to_json says of these three, without the rest)
    for key in ("outcome", "delivered", "abort_reason"):
        got = reported.get(key, _MISSING)
        if key in expect and got != expect[key] and not _absent(expect[key], got):
            found.append(Mismatch(key, expect[key], got))
    if result.outcome == "error" and not {"outcome", "error"} & set(expect):
        # A handler that failed fails its step, as a test that raises fails, unless the
        # step says it should fail: its other expectations may well hold all the same.
        reason = f"{result.error.type}: {result.error.message}" if result.error else "an error"
        note = f'the execution failed, {reason}; expect outcome = "error" if it should'
        found.append(Mismatch("outcome", "no error", "error", note))
    if "message" in expect and not _absent(expect["message"], result.message):
        found.extend(contains(expect["message"], result.message, "message"))
    response = result.response or {}
    if "status" in expect and response.get("status", _MISSING) != expect["status"]:
        found.append(Mismatch("status", expect["status"], response.get("status", _MISSING)))
    if "headers" in expect:
        headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
        wanted = {k.lower(): v for k, v in expect["headers"].items()}
        found.extend(contains(wanted, headers, "headers"))
    if "body" in expect and response.get("body", _MISSING) != expect["body"]:
        found.append(Mismatch("body", expect["body"], response.get("body", _MISSING)))
    if "json" in expect:
        try:
            body = json.loads(response.get("body", ""))
        except ValueError:
            found.append(
                Mismatch(
                    "json", expect["json"], response.get("body", _MISSING), "the body is not JSON"
                )
            )
        else:
            found.extend(contains(expect["json"], body, "json"))
    for key, want in expect.get("kv", {}).items():
        got = kv.get(key, _MISSING)
        if want == ABSENT:
            if got is not _MISSING:
                found.append(Mismatch(f"kv.{key}", ABSENT, got))
        elif want == PRESENT:
            if got is _MISSING:
                found.append(Mismatch(f"kv.{key}", PRESENT, ABSENT))
        elif got is _MISSING:
            found.append(Mismatch(f"kv.{key}", want, ABSENT))
        else:
            found.extend(contains(want, got, f"kv.{key}"))
    for key, want in expect.get("counters", {}).items():
        if counters.get(key, 0) != want:
            found.append(Mismatch(f"counters.{key}", want, counters.get(key, 0)))
    if "operations" in expect and result.operations.get("used") != expect["operations"]:
        found.append(Mismatch("operations", expect["operations"], result.operations.get("used")))
    # The step's execution and those of the functions its publishes triggered, in order:
    # a chain's console lines and warnings (a hop dropped) are the step's to check too.
    executions = list(chain(result))
    lines = [entry["text"] for execution in executions for entry in execution.logs]
    warnings = [warning for execution in executions for warning in execution.warnings]
    for key, seen, what in (("logs", lines, "console line"), ("warnings", warnings, "warning")):
        if expect.get(key) == [] and seen:  # an empty list: none at all
            found.append(Mismatch(key, [], seen, f"expected no {what}"))
        for text in _texts(expect.get(key, [])):
            if not any(text in line for line in seen):
                found.append(Mismatch(key, text, seen, f"no {what} contains it"))
    if "error" in expect:
        want = (
            expect["error"] if isinstance(expect["error"], dict) else {"message": expect["error"]}
        )
        error = result.error
        if error is None:
            found.append(Mismatch("error", want, None, "the execution did not fail"))
        else:
            if "type" in want and error.type != want["type"]:
                found.append(Mismatch("error.type", want["type"], error.type))
            if "message" in want and want["message"] not in error.message:
                found.append(
                    Mismatch(
                        "error.message", want["message"], error.message, "expected text not found"
                    )
                )
    return found


def chain(result: Result) -> Iterator[Result]:
    """An execution, then those of the functions its publishes triggered, in order."""
    yield result
    for report in result.triggered:
        for execution in report.executions:
            yield from chain(execution)
