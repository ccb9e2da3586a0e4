"""Running scenarios: each on a fresh temporary KV store, with a fixed clock, seeded
randomness and xhr offline, through the real executor and engine."""

from __future__ import annotations

import contextlib
import difflib
import functools
import json
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pfunc.channels import DEFAULT_CHANNEL
from pfunc.clock import Clock
from pfunc.engine import Engine, open_engine
from pfunc.errors import PfuncUsageError
from pfunc.events import (
    MESSAGE,
    TRIGGERS,
    Event,
    EventSpec,
    build_event,
    kind_for_trigger,
    kinds_triggered_by,
)
from pfunc.executor import Executor, refused_before_functions
from pfunc.limits import resolve_profile
from pfunc.project import PROJECT_FILE, FunctionConfig, Project, relative_to_cwd
from pfunc.project_file import load_project, parse_mock
from pfunc.result import Result
from pfunc.testing.expect import Mismatch, check
from pfunc.testing.scenario import Scenario, Step
from pfunc.testing.scenario_stores import scenario_store_folder
from pfunc.testing.seeds import SeedRefused, seed_store

KINDS_BY_TRIGGER = {trigger: kinds_triggered_by(trigger)[0] for trigger in TRIGGERS}


@dataclass
class StepFailure:
    step: Step
    mismatches: list[Mismatch]
    result: Result | None


@dataclass
class ScenarioResult:
    scenario: Scenario
    failure: StepFailure | None = None
    steps_run: int = 0
    duration_ms: float = 0.0
    malformed: bool = False  # a step could not be built from the file (exit code 2)
    results: list[Result] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.failure is None


def describe_step(step: Step, result: Result | None = None) -> str:
    payload = step.payload if isinstance(step.payload, dict) else {}
    if KINDS_BY_TRIGGER[step.trigger].family == MESSAGE:
        channel = (
            result.channel
            if result is not None and result.channel
            else payload.get("channel", "the default channel")
        )
        return f"{step.trigger} on {channel}"
    if step.trigger == "request":
        # As events.build_event sends it: a body, even an empty one, means POST.
        given_body = "body" in payload or "json" in payload
        method = payload.get("method")
        method = method if method is not None else ("POST" if given_body else "GET")
        return f"request {str(method).upper()} {payload.get('path', '/')}"
    return "interval"


class ScenarioRun:
    """One scenario on its engine: a temporary store, the project's functions, saved values."""

    def __init__(self, scenario: Scenario, engine: Engine) -> None:
        self.scenario = scenario
        self.engine = engine
        self.runtime = engine.runtime
        self.project = engine.project
        self.saved: dict[str, Any] = {}  # values earlier steps saved, for ${name}
        # Each step's executor, by the function or file it names: found once (run() has
        # checked every step's before any runs), not again at each of 1,000 steps.
        self._targets: dict[tuple[str | None, Path | None], tuple[Executor, FunctionConfig | None]]
        self._targets = {}

    def _function_of(self, step: Step) -> FunctionConfig | None:
        """The pfunc.toml function a step runs (None: a file), or why it names none."""
        if step.file is not None:
            if not step.file.is_file():
                raise PfuncUsageError(
                    f"{self.scenario.path}:{step.line}: {step.file} does not exist"
                )
            return None
        function = self.project.function(step.function or "")
        if function is None and self.project.config_file is None:
            raise PfuncUsageError(
                f"{self.scenario.path}:{step.line}: no function {step.function!r}: there is no "
                f"pfunc.toml in {self.scenario.path.resolve().parent} or above it (a scenario "
                "runs the functions of the pfunc.toml around its own file, or a file = handler)"
            )
        if function is None:
            names = [f.name for f in self.project.functions]
            close = difflib.get_close_matches(step.function or "", names, 1)
            raise PfuncUsageError(
                f"{self.scenario.path}:{step.line}: no function {step.function!r}"
                f"{f' (did you mean {close[0]}?)' if close else ''} in "
                f"{self.project.config_file}; functions: {', '.join(names) or 'none'}"
            )
        return function

    def _target(self, step: Step) -> tuple[Executor, FunctionConfig | None]:
        named = (step.function, step.file)
        if named not in self._targets:
            self._targets[named] = self._find_target(step)
        return self._targets[named]

    def _find_target(self, step: Step) -> tuple[Executor, FunctionConfig | None]:
        function = self._function_of(step)
        if function is None:
            assert step.file is not None
            # Named as pfunc run names it, so its errors read "handlers/x.js:3", not "x.js:3".
            shown = _shown(step.file, os.getcwd())
            return self.engine.functions.executor_for_file(step.file, shown), None
        return self.engine.functions.executor(function), function

    def _event(self, step: Step, function: FunctionConfig | None) -> Event:
        where = f"{self.scenario.path}:{step.line}"
        payload = step.payload if isinstance(step.payload, dict) else {}
        try:
            kind = kind_for_trigger(step.trigger, step.event, function.event if function else None)
            event = build_event(
                kind,
                EventSpec.from_mapping(payload, f"the {step.trigger} of this step"),
                default_channel=function.default_channel if function else DEFAULT_CHANNEL,
                now_ms=self.runtime.clock.now_ms(),
            )
            if function is not None:
                function.place_request(event, self.runtime.keyset.subscribe_key)
            return event
        except (PfuncUsageError, TypeError) as error:
            raise PfuncUsageError(f"{where}: {error}") from None

    async def seed(self) -> None:
        await seed_store(self.runtime, self.scenario.kv, self.scenario.counters)

    async def state(self, step: Step) -> tuple[dict[str, Any], dict[str, int]]:
        store, keyset = self.runtime.store, self.runtime.keyset.subscribe_key
        now = self.runtime.clock.now_ms()
        items: dict[str, Any] = {}
        for key in step.expect.get("kv", {}):
            text = await store.get_item(keyset, key, now)
            if text is not None:
                items[key] = json.loads(text)
        counters = {
            key: await store.get_counter(keyset, key) for key in step.expect.get("counters", {})
        }
        return items, counters

    async def run(self) -> ScenarioResult:
        outcome = ScenarioResult(self.scenario)
        for step in self.scenario.steps:  # every step's handler exists before any runs
            try:
                self._function_of(step)
            except PfuncUsageError as error:
                return _malformed(outcome, step, error)
        try:
            await self.seed()
        except SeedRefused as refused:
            line = self.scenario.seed_lines.get((refused.table, refused.key), self.scenario.line)
            problem = PfuncUsageError(f"{refused} (line {line} of {self.scenario.path.name})")
            return _malformed(outcome, self.scenario.steps[0], problem)
        for original in self.scenario.steps:
            step = original
            try:
                if original.templated:  # (only then: a walk of each value, ~10 us a step)
                    step = replace(
                        original,
                        payload=self.substitute(original.payload, original),
                        expect=self.substitute(original.expect, original),
                    )
                if step.advance:
                    self.runtime.clock.advance(step.advance)
                executor, function = self._target(step)
                event = self._event(step, function)
            except PfuncUsageError as error:
                return _malformed(outcome, step, error)
            result = await executor.run(event)
            result.warnings += refused_before_functions(event, self.runtime.profile)
            outcome.results.append(result)
            outcome.steps_run += 1
            items, counters = await self.state(step)
            mismatches = check(step.expect, result, items, counters) or self.remember(step, result)
            if mismatches:
                outcome.failure = StepFailure(step, mismatches, result)
                break
        return outcome

    def _check_marker(self, name: str, step: Step) -> None:
        """A ${name} no step has saved yet: malformed when some step saves it (used too
        early) or saves a name this one is a slip of (${tokn} for ${token}); any other
        ${...} text is the scenario's own (a template a handler renders), sent as written."""
        saved_anywhere = [saved for s in self.scenario.steps for saved in s.save]
        where = f"{self.scenario.path}:{step.line}: ${{{name}}}"
        if name in saved_anywhere:
            raise PfuncUsageError(
                f"{where}: no earlier step saved {name!r} (saved so far: "
                f"{', '.join(self.saved) or 'nothing'})"
            )
        close = difflib.get_close_matches(name, saved_anywhere, n=1, cutoff=0.75)
        if close:
            raise PfuncUsageError(
                f"{where}: no step saves {name!r}; did you mean ${{{close[0]}}}? (Text that "
                "only looks like a saved name is sent as written: rename it if it is meant so)"
            )

    def substitute(self, value: Any, step: Step) -> Any:
        """Replace ${name} in strings with what an earlier step saved. A ${name} that a
        later step saves is a mistake (used before it is saved): malformed, not sent as
        it is written."""
        if isinstance(value, str):
            for name, saved in self.saved.items():
                marker = "${" + name + "}"
                if value == marker:
                    return saved
                value = value.replace(marker, saved if isinstance(saved, str) else _text(saved))
            for unknown in _MARKER.finditer(value):
                self._check_marker(unknown.group(1), step)
            return value
        if isinstance(value, dict):
            return {
                self._key(key, step): self.substitute(item, step) for key, item in value.items()
            }
        if isinstance(value, list):
            return [self.substitute(item, step) for item in value]
        return value

    def _key(self, key: str, step: Step) -> str:
        """A table's key with what was saved put in: always text (a key that is only a
        saved object or number is its JSON, as inside a longer text)."""
        text = self.substitute(key, step)
        return text if isinstance(text, str) else _text(text)

    def remember(self, step: Step, result: Result) -> list[Mismatch]:
        """Save what the step names; a path the result does not have fails the step."""
        missing = []
        for name, path in step.save.items():
            root, *keys = path.split(".")
            value: Any
            if root == "json":
                body = (result.response or {}).get("body")
                try:
                    value = json.loads(body) if body else _NOTHING
                except ValueError:
                    value = _NOTHING
            elif root == "body":
                value = (result.response or {}).get("body", _NOTHING)
            elif root == "response":
                value = result.response if result.response is not None else _NOTHING
            else:
                value = result.message if result.message is not None else _NOTHING
            for at, key in enumerate(keys):
                if isinstance(value, list):  # an item by its index: json.items.0.id
                    index = int(key) if key.isascii() and key.isdigit() else len(value)
                    value = value[index] if index < len(value) else _NOTHING
                elif not isinstance(value, dict):
                    value = _NOTHING
                elif root == "response" and keys[:at] == ["headers"]:
                    # A header's name in any case, as expect.headers reads it.
                    named = [v for k, v in value.items() if k.lower() == key.lower()]
                    value = named[0] if named else _NOTHING
                    if isinstance(value, list):  # several lines (Set-Cookie): the first
                        value = value[0] if value else _NOTHING
                else:
                    value = value.get(key, _NOTHING)
            if value is _NOTHING:
                missing.append(Mismatch(f"save.{name}", path, None, "the result has no such value"))
            else:
                self.saved[name] = value
        return missing


def _malformed(outcome: ScenarioResult, step: Step, error: PfuncUsageError) -> ScenarioResult:
    """This scenario cannot run; the others still do, and the report (JUnit included)
    says which step is malformed. pfunc test then exits 2."""
    # Said once: the report already names the step's file and line.
    problem = Mismatch("step", None, re.sub(r"^\S*:\d+: ", "", str(error)), "malformed")
    outcome.failure = StepFailure(step, [problem], None)
    outcome.malformed = True
    return outcome


@functools.lru_cache(maxsize=256)
def _shown(file: Path, cwd: str) -> str:
    """A handler file as reports name it: once per file and folder (resolving a path costs
    system calls, and a scenario of 1,000 steps would pay them at each)."""
    return str(relative_to_cwd(file))


_MARKER = re.compile(r"\$\{([A-Za-z_][\w-]*)\}")
_NOTHING = object()  # a saved path the result does not have


async def run_scenario(
    scenario: Scenario,
    inspect: Callable[[Engine], Awaitable[None]] | None = None,
    *,
    warm: bool = True,
) -> ScenarioResult:
    """Run one scenario; `inspect` looks at its engine (its store) before it closes.
    `warm`: share loaded contexts with the run's other scenarios (a test run); a one-off
    replay (the dev console's) leaves nothing parked."""
    started = time.perf_counter()
    outcome, renewed = await _run_once(scenario, inspect, warm)
    if renewed and not outcome.passed and any(_reuse_may_explain(r) for r in outcome.results):
        # A reused context keeps what earlier loads allocated (up to an eighth of the
        # memory limit): a scenario that fails on an error in one is run again in new
        # ones, so that its outcome is what it would be alone (one near its memory limit
        # passes so). A plain mismatch is not: a new Python worker costs ~100 ms.
        outcome, _ = await _run_once(scenario, inspect, warm=False)
    outcome.duration_ms = (time.perf_counter() - started) * 1000
    return outcome


def _text(saved: Any) -> str:
    """A saved value that is not text, put into text: its JSON as JavaScript's
    JSON.stringify writes it (a handler's keys are made so)."""
    return json.dumps(saved, separators=(",", ":"), ensure_ascii=False)


def _reuse_may_explain(result: Result) -> bool:
    """An error that a reused context might have caused. Not the time limit: a handler
    that runs out of time does so in a new context too, and running it again doubled
    the wait (20 s a scenario at the default limit)."""
    return result.outcome == "error" and (
        result.error is None or result.error.type != "TimeoutError"
    )


_PROJECTS: dict[str, tuple[tuple[int, int, int] | None, Project]] = {}  # by scenario folder


_UNLINKED: set[str] = set()  # scenario folders whose path holds no symbolic link


def _resolved(folder: str) -> str:
    """A scenario folder's real path: resolved once for a path with no symbolic link in
    it (a system call a level: 18 us, a third of finding a project already read), every
    time for one with a link, which may be pointed elsewhere between scenarios."""
    if folder in _UNLINKED:
        return folder
    real = os.path.realpath(folder)
    if real == folder and len(_UNLINKED) < 256:
        _UNLINKED.add(folder)
    return real


def _project_of(folder: Path) -> Project:
    """The project around a scenario's folder, read again only when its pfunc.toml
    changed, or one was written between the folder and it, or above a folder that had
    none (finding and parsing it cost each scenario 0.56 ms for the demo's 15 functions,
    and 70 us to find none, against ~1 ms of its own)."""
    key = os.path.abspath(folder)  # a relative folder is another one in another cwd
    here = _resolved(key)
    known = _PROJECTS.get(key)
    if known is not None:
        signature, project = known
        if _signature(project.config_file) == signature and not _closer_file(here, project):
            return project
    project = load_project(Path(here))
    _PROJECTS[key] = (_signature(project.config_file), project)
    return project


def _closer_file(here: str, project: Project) -> bool:
    """Whether a pfunc.toml now stands between the folder `here` and the project's (or,
    for a folder that had none, anywhere above it): one check a folder level, on text
    paths (pathlib's objects cost more than the checks)."""
    outer = None if project.config_file is None else str(project.config_file.parent)
    while here != outer:
        # lexists: a link to nothing is a pfunc.toml too, one that load_project refuses.
        if os.path.lexists(os.path.join(here, PROJECT_FILE)):
            return True
        parent = os.path.dirname(here)
        if parent == here:
            return False
        here = parent
    return False


def _signature(path: Path | None) -> tuple[int, int, int] | None:
    """What tells a file's edits apart (None: no file, or gone)."""
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


async def _run_once(
    scenario: Scenario, inspect: Callable[[Engine], Awaitable[None]] | None, warm: bool
) -> tuple[ScenarioResult, bool]:
    """The scenario's outcome, and whether it ran in a context an earlier one had used."""
    project = _project_of(scenario.path.parent)
    try:
        profile = resolve_profile(scenario.limits or project.limits, project.limit_overrides)
        clock = Clock.parse_fixed(scenario.now)
    except ValueError as error:
        raise PfuncUsageError(f"{scenario.path}:{scenario.line}: {error}") from None
    mocks = [parse_mock(scenario.path, entry, index) for index, entry in enumerate(scenario.mocks)]
    scenario_project = replace(
        project, mocks=[*mocks, *project.mocks], vault={**project.vault, **scenario.vault}
    )
    with contextlib.ExitStack() as stack:
        # A fresh store per scenario: in memory unless the scenario asks for a file.
        kv_path = Path(":memory:")
        if scenario.store == "disk":
            kv_path = stack.enter_context(scenario_store_folder()) / "kv.sqlite3"
        async with open_engine(
            scenario_project,
            profile,
            clock,
            kv_path=kv_path,
            offline=True,
            environ={},
            random_seed=scenario.seed,
            warm_sandboxes=warm,
        ) as engine:
            outcome = await ScenarioRun(scenario, engine).run()
            if inspect is not None:
                await inspect(engine)
            renewed = engine.runtime.renewed_sandboxes > 0
    return outcome, renewed
