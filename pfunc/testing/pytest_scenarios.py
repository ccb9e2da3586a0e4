"""Scenario files as pytest items: the plugin collects every `*.test.toml` it meets, one
item per scenario, so `pytest`, `-k`, IDEs, JUnit and pytest-xdist (`-n auto`) see and
spread them like any test. Each runs as `pfunc test` runs it (run_scenario: its own
fresh store, fixed clock and seed); `pfunc test -n N` goes through this path too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pfunc.errors import PfuncUsageError

SUFFIX = ".test.toml"
# On a scenario's report (user_properties travel from pytest-xdist's workers): a step
# that cannot run as written, which `pfunc test` answers with exit code 2, not 1.
MALFORMED = ("pfunc", "malformed")
# (CASE, JSON text of report.junit_case(...)): a scenario's JUnit testcase, as text so that
# pytest's own --junitxml, which writes user properties as they are, shows it readably.
CASE = "pfunc-case"


class ScenarioFailed(Exception):
    """A scenario's expectation did not hold (its report is the failure's text)."""


def add_scenario_options(group: pytest.OptionGroup) -> None:
    """The options `pfunc test -n` passes, so that it selects and answers as `pfunc test`."""
    group.addoption(
        "--pfunc-select",
        metavar="TEXT",
        help="only scenarios whose name or file contains TEXT (pfunc test -k)",
    )
    group.addoption(
        "--pfunc-junit",
        metavar="PATH",
        help="write the scenarios' JUnit XML as pfunc test --junit does (pfunc test -n)",
    )
    group.addoption(
        "--pfunc-files",
        metavar="PATH",
        help="collect only the scenario files listed in PATH, one per line, in that order "
        "(pfunc test -n: pytest refuses paths with [ or :: as arguments)",
    )
    group.addoption(
        "--pfunc-exit-codes",
        action="store_true",
        help="exit as pfunc test does: 2 when a step cannot run as written, 1 when any "
        "scenario failed (with -x too)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from pfunc.testing.scenario import selected

    if config.getoption("pfunc_files", None) is not None:
        # pfunc test -n: run the files in the order they were named (pytest collects a
        # folder's in the order of their paths), so -x stops where pfunc test would.
        named = _named_files(config)
        items.sort(key=lambda item: named.get(item.path.resolve(), len(named)))  # stable
    pattern = config.getoption("pfunc_select", None)
    if pattern is None:
        return
    keep = [i for i in items if not isinstance(i, ScenarioItem) or selected(i.scenario, pattern)]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("pfunc_exit_codes", False):
        junit = config.getoption("pfunc_junit", None)
        plugin = PfuncExitCodes(None if junit is None else Path(junit))
        config.pluginmanager.register(plugin, "pfunc-exit-codes")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """The scenarios' warm sandboxes (Python workers among them) end with the session."""
    from pfunc.sandbox.pool import close_warm

    close_warm()


class PfuncExitCodes:
    """`pfunc test -n`'s exit code as `pfunc test`'s: 2 when a step cannot run as written,
    1 when a scenario failed (pytest-xdist's -x answers "interrupted", 2, instead)."""

    def __init__(self, junit: Path | None) -> None:
        self.malformed: set[str] = set()  # node ids
        self.junit = junit
        self.cases: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if MALFORMED in report.user_properties:
            self.malformed.add(report.nodeid)
        if report.when == "call":  # (teardown's report carries the same properties)
            self.cases += [json.loads(v) for key, v in report.user_properties if key == CASE]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.malformed:
            terminalreporter.write_line(
                f"{len(self.malformed)} scenario(s) have a step that cannot run as written "
                "(marked malformed above); fix the step"
            )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        _in_file_order(session)  # (the terminal's summary follows this hook)
        if self.junit is not None and not hasattr(session.config, "workerinput"):
            # pfunc test's own JUnit, in the files' order, by the controller only
            from pfunc.testing.report import write_junit_cases

            config = session.config
            named = _named_files(config)
            start = config.invocation_params.dir

            def file_order(case: dict[str, Any]) -> tuple[int, int, int]:
                where = named.get((start / case["file"]).resolve(), len(named))
                return where, case["line"], case.get("place", 0)

            try:
                write_junit_cases(sorted(self.cases, key=file_order), self.junit)
            except OSError as error:  # (a full disk): one line and exit 2, as pfunc test
                import sys

                reason = error.strerror or error
                sys.stderr.write(f"Error: --junit {self.junit}: cannot write it: {reason}\n")
                session.exitstatus = 2
                return
        if self.malformed:
            session.exitstatus = 2
        elif session.testsfailed:
            session.exitstatus = 1


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name.endswith(SUFFIX) or _named(file_path, parent.config):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


def _named(file_path: Path, config: pytest.Config) -> bool:
    """A .toml file named on the command line is a scenario file, whatever its name, as
    `pfunc test FILE` reads it (folders are searched for *.test.toml only)."""
    if file_path.suffix != ".toml" or file_path.name == "pfunc.toml":
        return False
    return file_path in _named_files(config)


_LISTED = pytest.StashKey[dict[Path, int]]()


def _named_files(config: pytest.Config) -> dict[Path, int]:
    """The paths named on the command line (or listed by --pfunc-files), resolved, and
    their order there (pfunc test -n names its files in the order it reports them)."""
    listing = config.getoption("pfunc_files", None)
    if listing is None:
        start = config.invocation_params.dir
        return {(start / arg.split("::")[0]).resolve(): n for n, arg in enumerate(config.args)}
    if _LISTED not in config.stash:
        lines = Path(listing).read_text(encoding="utf-8").splitlines()
        config.stash[_LISTED] = {Path(line): n for n, line in enumerate(lines) if line}
    return config.stash[_LISTED]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With --pfunc-files, everything but the listed files and the folders above them."""
    if config.getoption("pfunc_files", None) is None:
        return None
    if collection_path.is_symlink():  # reached by its own path too, as pfunc test reads
        return True  # it (a link to a folder above would run its scenarios twice)
    listed = _named_files(config)
    where = collection_path.resolve()
    if where in listed:
        return False
    return not any(where in file.parents for file in listed)


def _in_file_order(session: pytest.Session) -> None:
    """Failures reported in the order of the files and their scenarios, as `pfunc test`
    prints them, not in the order pytest-xdist's workers finished them (sorted before
    the terminal's summary, which follows the session's end)."""
    config = session.config
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    named = _named_files(config)

    def file_order(report: Any) -> tuple[int, str, int, int]:
        path, line, _ = getattr(report, "location", None) or (report.nodeid, 0, "")
        where = (config.rootpath / str(path)).resolve()
        cases = [json.loads(v) for key, v in getattr(report, "user_properties", ()) if key == CASE]
        place = cases[0].get("place", 0) if cases else 0  # (copies of one scenario share a line)
        return named.get(where, len(named)), str(path), line or 0, place

    for kind in ("failed", "error"):
        reports = getattr(reporter, "stats", {}).get(kind)
        if reports:
            reports.sort(key=file_order)


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from pfunc.project import relative_to_cwd
        from pfunc.testing.scenario import load_scenarios

        try:
            # Named as `pfunc test` names it (from the folder it runs in), in failures too.
            scenarios = load_scenarios(relative_to_cwd(self.path))
        except PfuncUsageError as error:
            raise self.CollectError(str(error)) from None
        for scenario in scenarios:
            yield ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self) -> None:
        from pfunc.aio import run_on_new_loop
        from pfunc.testing.report import crashed_case, failure_text, junit_case
        from pfunc.testing.runner import run_scenario

        try:
            result = run_on_new_loop(run_scenario(self.scenario))
        except Exception as error:  # still a case of the JUnit file, as a failure
            self.user_properties.append((CASE, json.dumps(crashed_case(self.scenario, error))))
            raise
        self.user_properties.append((CASE, json.dumps(junit_case(result))))
        if result.malformed:
            self.user_properties.append(MALFORMED)
        if not result.passed:
            raise ScenarioFailed(failure_text(result))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, ScenarioFailed | PfuncUsageError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.scenario.line - 1, f"scenario: {self.scenario.name}"
