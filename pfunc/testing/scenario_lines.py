"""Where things sit in a scenario file's text, for errors that name a line: each
[[scenario]], its steps and their expectations, and a scenario's own keys (`vault`, a
counter, the second mock's `status`). tomllib gives values, not lines."""

from __future__ import annotations

import re

from pfunc.project_file import assignment_line


class ScenarioLines:
    def __init__(self, text: str) -> None:
        self.text = text.splitlines()
        self.scenarios: list[int] = []
        self.steps: list[list[int]] = []
        self.expects: list[list[int]] = []
        for number, line in enumerate(self.text, start=1):
            stripped = line.strip()
            if re.match(r"^\[\[\s*scenario\s*\]\]", stripped):
                self.scenarios.append(number)
                self.steps.append([])
                self.expects.append([])
            elif re.match(r"^\[\[\s*scenario\.step\s*\]\]", stripped) and self.steps:
                self.steps[-1].append(number)
                self.expects[-1].append(number)
            elif (
                (
                    re.match(r"^expect\s*=", stripped)
                    or re.match(r"^\[\s*scenario\.step\.expect\s*\]", stripped)
                )
                and self.expects
                and self.expects[-1]
            ):
                self.expects[-1][-1] = number

    def scenario(self, index: int) -> int:
        return self.scenarios[index] if index < len(self.scenarios) else 1

    def step(self, scenario: int, step: int) -> tuple[int, int]:
        try:
            return self.steps[scenario][step], self.expects[scenario][step]
        except IndexError:
            line = self.scenario(scenario)
            return line, line

    def key(self, scenario: int, table: str, key: str | None = None, nth: int = 0) -> int:
        """The line of scenario `scenario`'s `table` (`vault = {...}`, `[scenario.vault]`,
        the `nth` `[[scenario.mocks]]`), or of `key` within it; the scenario's own line
        when the text does not show it plainly."""
        first = self.scenario(scenario)
        last = self.scenarios[scenario + 1] - 1 if scenario + 1 < len(self.scenarios) else None
        span = list(enumerate(self.text[first - 1 : last], start=first))
        name = re.escape(table)
        header = re.compile(
            rf"^\s*(\[\s*scenario\.{name}\s*\]|\[\[\s*scenario\.{name}\s*\]\])\s*(#.*)?$"
        )
        assigned = re.compile(rf"^\s*{name}\s*=")
        # `table = ...` is the scenario's own only above its first sub-table ([[scenario.step]]
        # holds a step's keys, [scenario.step.expect] an expectation's own kv = ...).
        own = next((n for n, line in span[1:] if line.lstrip().startswith("[")), None)
        starts = [
            number
            for number, line in span
            if header.match(line) or (assigned.match(line) and (own is None or number < own))
        ]
        if nth >= len(starts):
            return first
        start = starts[nth]
        if key is None:
            return start
        quoted = re.escape(key)
        assignment = re.compile(rf"(^|[{{,]\s*)\s*(\"{quoted}\"|'{quoted}'|{quoted})\s*=")
        found = assignment_line(self.text, start - 1, assignment, last)  # (lines count from 1)
        return start if found is None else found + 1
