"""Scenario files (`*.test.toml`): parsing and validation, with the line of every step.

A file holds `[[scenario]]` tables; each has `[[scenario.step]]` tables that send one
event and check what happened. Mistakes in a file are reported with its path and line
(exit code 2), so a broken scenario is never mistaken for a broken handler.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pfunc.clock import Clock
from pfunc.errors import PfuncUsageError
from pfunc.events import KINDS, TRIGGERS, EventSpec
from pfunc.limits import PROFILES
from pfunc.numbers import is_counter
from pfunc.project import relative_to_cwd
from pfunc.project_file import MOCK_KEYS, parse_mock, read_toml
from pfunc.result import OUTCOMES
from pfunc.testing.scenario_lines import ScenarioLines
from pfunc.testing.spans import parse_span
from pfunc.testing.toml_text import json_misfit, shown

SCENARIO_KEYS = {"name", "function", "file", "now", "limits", "seed", "kv", "counters"}
SCENARIO_KEYS |= {"vault", "mocks", "store", "step"}
STORES = ("memory", "disk")  # where a scenario's fresh KV store lives
EVENT_KEYS = TRIGGERS  # a step sends one event, named by what triggers it
STEP_KEYS = {"name", "function", "file", "event", "advance", "expect", "save", *EVENT_KEYS}


def _texts(v: Any) -> bool:  # a text, or a list of texts
    return isinstance(v, str) or (isinstance(v, list) and all(isinstance(i, str) for i in v))


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _error_shape(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, dict)
        and set(value) <= {"type", "message"}
        and all(isinstance(item, str) for item in value.values())
    )


# Each expectation, what it takes, and how to say so (one table: the keys are its keys).
def _header_value(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(item, str) for item in value)
    )


EXPECTATIONS: dict[str, tuple[Any, str]] = {
    "outcome": (lambda v: v in OUTCOMES, f"one of {', '.join(OUTCOMES)}"),
    "delivered": (lambda v: isinstance(v, bool), "true or false"),
    "abort_reason": (lambda v: isinstance(v, str), "text"),
    "message": (lambda v: True, "any value"),
    "status": (lambda v: _whole(v) and 100 <= v <= 599, "an HTTP status code"),
    "headers": (
        lambda v: isinstance(v, dict) and all(_header_value(i) for i in v.values()),
        "a table of texts (a list for a header of several lines), e.g. headers = "
        '{ "content-type" = "text/plain", "set-cookie" = ["a=1", "b=2"] }',
    ),
    "body": (lambda v: isinstance(v, str), "text"),
    "json": (lambda v: True, "any value"),
    "kv": (lambda v: isinstance(v, dict), 'a table, e.g. kv = { key = "absent" }'),
    "counters": (
        lambda v: isinstance(v, dict) and all(_whole(i) for i in v.values()),
        "a table of whole numbers, e.g. counters = { hits = 2 }",
    ),
    "logs": (_texts, "text, or a list of texts"),
    "operations": (_whole, "a whole number (the operations used)"),
    "warnings": (_texts, "text, or a list of texts"),
    "error": (_error_shape, 'text, or { type = "...", message = "..." }'),
}
EXPECT_KEYS = set(EXPECTATIONS)
DEFAULT_NOW = "2026-01-01T00:00:00Z"


@dataclass
class Step:
    number: int  # 1-based within its scenario
    line: int  # where the step starts in the file
    expect_line: int  # where its expectations are written
    name: str | None
    trigger: str  # what the step sends: one of EVENT_KEYS (publish, request...)
    payload: Any
    function: str | None
    file: Path | None
    event: str | None
    advance: float  # seconds to move the clock before the event
    expect: dict[str, Any]
    save: dict[str, str] = field(default_factory=dict)  # name -> path in the result: json.x
    templated: bool = True  # "${" in its event or expectations (a key too): substituted


@dataclass
class Scenario:
    path: Path
    line: int
    name: str
    function: str | None
    file: Path | None
    now: str
    limits: str | None
    seed: int
    kv: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    vault: dict[str, str] = field(default_factory=dict)
    mocks: list[dict[str, Any]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    store: str = "memory"  # "disk": a SQLite file in a temporary folder
    # (table, key) -> the line of each kv and counters seed, to name a refused one.
    seed_lines: dict[tuple[str, str], int] = field(default_factory=dict)
    # Its place among its file's scenarios: the copies of one [[scenario]] that names
    # several functions share its line, and are reported in this order.
    place: int = 0

    @property
    def id(self) -> str:
        return f"{self.path}::{self.name}"


def load_scenarios(path: Path) -> list[Scenario]:
    """Parse one scenario file; raise PfuncUsageError naming the file and line."""
    data, text = read_toml(path)
    lines = ScenarioLines(text)
    for unknown in sorted(set(data) - {"scenario"}):
        # A misspelt table ([[scenarios]]) would silently hold scenarios nobody runs.
        found = re.search(rf"^[ \t]*\[*[ \t]*{re.escape(unknown)}\b", text, re.MULTILINE)
        line = text.count("\n", 0, found.start()) + 1 if found else 1
        raise _fail(path, line, f"unknown key '{unknown}'; a scenario file holds [[scenario]]")
    entries = data.get("scenario")
    if not isinstance(entries, list) or not entries:
        raise PfuncUsageError(
            f"{path}:1: no [[scenario]] tables; a scenario file holds one or more, each with "
            "[[scenario.step]] tables"
        )
    scenarios: list[Scenario] = []
    for index, entry in enumerate(entries):
        functions = entry.get("function") if isinstance(entry, dict) else None
        if isinstance(functions, list):
            # One scenario, run against each function named (e.g. a JS and a Python version).
            _named(path, lines.scenario(index), entry)
            if not functions:
                raise _fail(path, lines.scenario(index), "function = [] names no function")
            if len(set(map(str, functions))) != len(functions):
                raise _fail(path, lines.scenario(index), "function = [...] names each one once")
            for function in functions:
                variant = {**entry, "function": function, "name": f"{entry['name']} [{function}]"}
                scenarios.append(_scenario(path, lines, index, variant))
        else:
            scenarios.append(_scenario(path, lines, index, entry))
    first_line: dict[str, int] = {}
    for place, scenario in enumerate(scenarios):
        scenario.place = place
        # pytest, IDEs and JUnit tell scenarios apart by name: one name, one scenario.
        if (earlier := first_line.get(scenario.name)) is not None:
            message = f'a scenario named "{scenario.name}" is already on line {earlier}'
            raise _fail(path, scenario.line, f"{message}; give each scenario its own name")
        first_line[scenario.name] = scenario.line
    return scenarios


def selected(scenario: Scenario, pattern: str | None) -> bool:
    """`pfunc test -k` (and -n): the name or file holds the text, in any case (pytest's)."""
    wanted = (pattern or "").casefold()
    return wanted in scenario.name.casefold() or wanted in str(scenario.path).casefold()


def _named(path: Path, line: int, entry: Any) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    if not isinstance(name, str) or not name:
        raise _fail(path, line, 'every [[scenario]] needs a name = "..."')
    return name


def _fail(path: Path, line: int, message: str) -> PfuncUsageError:
    return PfuncUsageError(f"{path}:{line}: {message}")


def _scenario(path: Path, lines: ScenarioLines, index: int, entry: dict[str, Any]) -> Scenario:
    line = lines.scenario(index)
    if unknown := sorted(set(entry) - SCENARIO_KEYS):
        keys = ", ".join(sorted(SCENARIO_KEYS))
        raise _fail(
            path, line, f"unknown scenario key(s) {', '.join(unknown)}; the keys are {keys}"
        )
    name = _named(path, line, entry)
    # A `now` may be a TOML date-time; every other value becomes JSON (steps: _step).
    if misfit := json_misfit({k: entry[k] for k in entry if k not in ("now", "step")}, ""):
        # Where: "kv.k = nan ...", "mocks[1].json.x = nan ...": table, which one, key.
        found = re.match(r"(\w+)(?:\[(\d+)\])?(?:\.(\w+))?", misfit)
        table, nth, key = found.groups() if found else ("", None, None)
        at = lines.key(index, table, key, int(nth or 0))
        raise _fail(path, at, f'scenario "{name}": {misfit}')
    for key in ("function", "file"):
        if not isinstance(entry.get(key, ""), str):
            raise _fail(
                path,
                lines.key(index, key),
                f"{key} must be text: a function's name, or a handler file",
            )
    if "file" in entry and "function" in entry:
        raise _fail(path, line, f'scenario "{name}" names both function and file; name one')
    steps = entry.get("step")
    if isinstance(steps, dict):  # [scenario.step]: a table, where a step is one of a list
        raise _fail(path, line, f'scenario "{name}": write its steps as [[scenario.step]]')
    if not isinstance(steps, list) or not steps:
        raise _fail(path, line, f'scenario "{name}" has no [[scenario.step]] tables')
    seed = entry.get("seed", 1)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise _fail(path, lines.key(index, "seed"), "seed must be a whole number, 0 to 2^32-1")
    for table in ("kv", "counters", "vault"):
        if not isinstance(entry.get(table, {}), dict):
            at = lines.key(index, table)
            raise _fail(path, at, f"{table} must be a table, e.g. {table} = {{ key = 1 }}")
    for key, value in entry.get("counters", {}).items():
        if not is_counter(value):
            raise _fail(
                path,
                lines.key(index, "counters", key),
                f"counters.{key} = {shown(value)}: counters take whole numbers, 64-bit (at most "
                "9223372036854775807)",
            )
    limits = entry.get("limits")
    if limits is not None and (not isinstance(limits, str) or limits not in PROFILES):
        raise _fail(
            path,
            lines.key(index, "limits"),
            f"limits names a profile: one of {', '.join(PROFILES)} (single limits are set "
            "under [limits] in pfunc.toml)",
        )
    mocks = entry.get("mocks", [])
    if not isinstance(mocks, list) or not all(isinstance(mock, dict) for mock in mocks):
        raise _fail(
            path, lines.key(index, "mocks"), "mocks is a list of tables ([[scenario.mocks]])"
        )
    for number, mock in enumerate(mocks):
        unknown = sorted(set(mock) - MOCK_KEYS)
        if unknown:
            raise _fail(
                path,
                lines.key(index, "mocks", unknown[0], number),
                f"mocks[{number}]: unknown key(s) {', '.join(unknown)}; a mock has "
                f"{', '.join(sorted(MOCK_KEYS))}",
            )
        try:
            parse_mock(path, mock, number)
        except PfuncUsageError as error:  # said again with the line in this file
            said = str(error).split(": ", 1)[-1]
            field = re.match(r"mocks\[\d+\]\.(\w+)", said)
            at = lines.key(index, "mocks", field.group(1) if field else None, number)
            raise _fail(path, at, said) from None
    for key, value in entry.get("vault", {}).items():
        if not isinstance(value, str):
            raise _fail(
                path,
                lines.key(index, "vault", key),
                f'vault.{key} = {shown(value)}: vault values are text, e.g. API_KEY = "test-key"',
            )
    now = entry.get("now", DEFAULT_NOW)
    try:
        Clock.parse_fixed(str(now))
    except ValueError:
        raise _fail(
            path,
            lines.key(index, "now"),
            f"now = {now!r} is not an ISO-8601 time; write it like 2026-01-01T12:00:00Z",
        ) from None
    store = entry.get("store", "memory")
    if store not in STORES:
        at = lines.key(index, "store")
        raise _fail(path, at, f'store must be "memory" or "disk", got {shown(store)}')
    scenario = Scenario(
        path=path,
        line=line,
        name=name,
        function=entry.get("function"),
        file=(path.parent / entry["file"]) if isinstance(entry.get("file"), str) else None,
        now=str(entry.get("now", DEFAULT_NOW)),
        limits=entry.get("limits"),
        seed=seed,
        kv=dict(entry.get("kv", {})),
        counters=dict(entry.get("counters", {})),
        vault={str(k): str(v) for k, v in entry.get("vault", {}).items()},
        mocks=list(entry.get("mocks", [])),
        store=store,
        seed_lines={
            (table, key): lines.key(index, table, key)
            for table in ("kv", "counters")
            for key in entry.get(table, {})
        },
    )
    for number, step in enumerate(steps):
        scenario.steps.append(_step(path, lines, index, number, step, scenario))
    return scenario


def _step(
    path: Path,
    lines: ScenarioLines,
    scenario_index: int,
    index: int,
    entry: Any,
    scenario: Scenario,
) -> Step:
    line, expect_line = lines.step(scenario_index, index)
    where = f'step {index + 1} of "{scenario.name}"'
    if not isinstance(entry, dict):
        raise _fail(path, line, f"{where} must be a table")
    unknown = sorted(set(entry) - STEP_KEYS)
    if unknown:
        raise _fail(
            path,
            line,
            f"{where}: unknown key(s) {', '.join(unknown)}; a step has one "
            f"of {', '.join(EVENT_KEYS)}, and optionally advance, expect, "
            "function, file, event, name",
        )
    if misfit := json_misfit(entry, ""):
        raise _fail(path, line, f"{where}: {misfit}")
    kinds = [key for key in EVENT_KEYS if key in entry]
    if len(kinds) != 1:
        raise _fail(
            path,
            line,
            f"{where} must send exactly one event ({', '.join(EVENT_KEYS)}); "
            f"found {', '.join(kinds) or 'none'}",
        )
    expect = entry.get("expect", {})
    if not isinstance(expect, dict):
        raise _fail(path, expect_line, f"{where}: expect must be a table")
    unknown = sorted(set(expect) - EXPECT_KEYS)
    if unknown:
        raise _fail(
            path,
            expect_line,
            f"{where}: unknown expectation(s) {', '.join(unknown)}; "
            f"expectations are {', '.join(sorted(EXPECT_KEYS))}",
        )
    for key, v in expect.items():
        takes, words = EXPECTATIONS[key]
        if not takes(v):
            raise _fail(path, expect_line, f"{where}: expect.{key} takes {words}; got {shown(v)}")
    if kinds[0] == "interval" and entry["interval"] is not True:
        raise _fail(
            path,
            line,
            f"{where}: interval = {json.dumps(entry['interval'], default=str)}; write "
            "interval = true (the function's timer firing once), or leave the step out",
        )
    if kinds[0] != "interval" and not isinstance(entry[kinds[0]], dict):
        raise _fail(
            path,
            line,
            f"{where}: {kinds[0]} must be a table, e.g. {kinds[0]} = {{ message = ... }}",
        )
    if kinds[0] != "interval":  # a misspelt field is found before any step runs
        try:
            EventSpec.from_mapping(entry[kinds[0]], f"{where}: {kinds[0]}")
        except PfuncUsageError as error:
            raise _fail(path, line, str(error)) from None
    if kinds[0] == "presence" and "message" in entry["presence"]:
        why = "the event is built from action, uuid, occupancy, state and channel"
        raise _fail(path, line, f"{where}: presence takes no message ({why})")
    event = entry.get("event")
    if event is not None and event not in KINDS:
        raise _fail(path, line, f"{where}: event = {event!r}; use one of: {', '.join(KINDS)}")
    try:
        advance = parse_span(entry.get("advance", 0))
    except ValueError as error:
        raise _fail(path, line, f"{where}: advance: {error}") from None
    if "file" in entry and "function" in entry:
        raise _fail(path, line, f"{where} names both function and file; name one")
    if isinstance(entry.get("file"), str):
        function, file = None, path.parent / entry["file"]
    elif "function" in entry:
        function, file = entry["function"], None
    elif scenario.file is not None:
        function, file = None, scenario.file
    else:
        function, file = scenario.function, None
    if function is None and file is None:
        raise _fail(
            path,
            line,
            f'{where}: say which handler runs: function = "name" (from '
            'pfunc.toml) or file = "handler.js", on the scenario or step',
        )
    return Step(
        number=index + 1,
        line=line,
        expect_line=expect_line,
        name=entry.get("name"),
        trigger=kinds[0],
        payload=entry[kinds[0]],
        function=function,
        file=file,
        event=event,
        advance=advance,
        expect=expect,
        save=_save_table(path, line, where, entry.get("save", {})),
        templated="${" in json.dumps([entry[kinds[0]], expect], default=str),
    )


def _save_table(path: Path, line: int, where: str, save: Any) -> dict[str, str]:
    if not isinstance(save, dict) or not all(isinstance(v, str) for v in save.values()):
        raise _fail(
            path,
            line,
            f'{where}: save maps names to result paths, e.g. save = {{ token = "json.token" }}',
        )
    for name, where_in in save.items():
        if where_in.split(".")[0] not in ("json", "message", "response", "body"):
            raise _fail(
                path,
                line,
                f"{where}: save.{name} = {where_in!r} must start with json., "
                "message., response. or body",
            )
    return dict(save)


def nothing_to_run(found: int, pattern: str | None) -> PfuncUsageError:
    """Why a test run has no scenario: none found, or none that -k selects."""
    if found and pattern:
        return PfuncUsageError(f"no scenario matches -k {pattern!r} (of {found} found)")
    return PfuncUsageError("no scenarios found (files named *.test.toml)")


def discover(paths: list[Path]) -> list[Path]:
    """Scenario files under the given files and folders, in a stable order."""
    # Below the working folder a path is shown relative to it, elsewhere whole: as pytest
    # names them under -n (it has only the resolved path), so both reports agree.
    paths = [relative_to_cwd(path.resolve()) for path in paths]
    found: dict[Path, Path] = {}  # by resolved path: overlapping arguments name a file once
    for path in paths:
        if path.is_file():
            found.setdefault(path.resolve(), path)
        elif path.is_dir():
            for file in sorted(p for p in path.rglob("*.test.toml") if ".pfunc" not in p.parts):
                found.setdefault(file.resolve(), file)
    return list(found.values())
