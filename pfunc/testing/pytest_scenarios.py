"""Scenario files as pytest items: the plugin collects every `*.test.toml` it meets, one
item per scenario, so `pytest`, `-k`, IDEs, JUnit and pytest-xdist (`-n auto`) see and
spread them like any test. Each runs as `pfunc test` runs it (run_scenario: its own
fresh store, fixed clock and seed); `pfunc test -n N` goes through this path too."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pfunc.errors import PfuncUsageError

SUFFIX = ".test.toml"
# On a scenario's report (user_properties travel from pytest-xdist's workers): a step
# that cannot run as written, which `pfunc test` answers with exit code 2, not 1.
MALFORMED = ("pfunc", "malformed")


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
        "--pfunc-exit-codes",
        action="store_true",
        help="exit as pfunc test does: 2 when a step cannot run as written, 1 when any "
        "scenario failed (with -x too)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from pfunc.testing.scenario import selected

    pattern = config.getoption("pfunc_select", None)
    if pattern is None:
        return
    keep = [i for i in items if not isinstance(i, ScenarioItem) or selected(i.scenario, pattern)]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("pfunc_exit_codes", False):
        config.pluginmanager.register(PfuncExitCodes(), "pfunc-exit-codes")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """The scenarios' warm sandboxes (Python workers among them) end with the session."""
    from pfunc.sandbox.pool import close_warm

    close_warm()


class PfuncExitCodes:
    """`pfunc test -n`'s exit code as `pfunc test`'s: 2 when a step cannot run as written,
    1 when a scenario failed (pytest-xdist's -x answers "interrupted", 2, instead)."""

    def __init__(self) -> None:
        self.malformed: set[str] = set()  # node ids

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if MALFORMED in report.user_properties:
            self.malformed.add(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.malformed:
            terminalreporter.write_line(
                f"{len(self.malformed)} scenario(s) have a step that cannot run as written "
                "(marked malformed above); fix the step"
            )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.malformed:
            session.exitstatus = 2
        elif session.testsfailed:
            session.exitstatus = 1


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name.endswith(SUFFIX):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from pfunc.testing.scenario import load_scenarios

        try:
            scenarios = load_scenarios(self.path)
        except PfuncUsageError as error:
            raise self.CollectError(str(error)) from None
        for scenario in scenarios:
            yield ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self) -> None:
        from pfunc.testing.report import failure_text
        from pfunc.testing.runner import run_scenario

        result = asyncio.run(run_scenario(self.scenario))
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
