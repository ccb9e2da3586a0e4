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


class ScenarioFailed(Exception):
    """A scenario's expectation did not hold (its report is the failure's text)."""


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The scenarios' warm sandboxes (Python workers among them) end with the session."""
    from pfunc.sandbox.pool import close_warm

    close_warm()


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
        if not result.passed:
            raise ScenarioFailed(failure_text(result))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, ScenarioFailed | PfuncUsageError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.scenario.line - 1, f"scenario: {self.scenario.name}"
