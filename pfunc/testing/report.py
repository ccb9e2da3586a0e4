"""What `pfunc test` prints: a summary for the terminal, JUnit XML for CI systems, or JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from pfunc.testing.expect import chain
from pfunc.testing.runner import ScenarioResult, describe_step


def summary_line(results: list[ScenarioResult]) -> str:
    passed = sum(result.passed for result in results)
    return f"{passed} passed, {len(results) - passed} failed"


def failure_text(result: ScenarioResult) -> str:
    """The failure as plain text: where, what differs, and what the handler said."""
    failure = result.failure
    assert failure is not None
    step, scenario = failure.step, result.scenario
    # A step that cannot run is wrong where it is written; a failed one, in what it expects.
    line = step.line if result.malformed else step.expect_line
    lines = [
        f"step {step.number} ({describe_step(step, failure.result)}) at {scenario.path}:{line}"
    ]
    lines += [f"  {mismatch.describe()}" for mismatch in failure.mismatches]
    execution = failure.result
    if execution is not None:
        if not any(mismatch.field == "outcome" for mismatch in failure.mismatches):
            lines.append(f"  outcome: {execution.outcome}")  # not said above already
        if execution.error is not None:
            error = execution.error
            lines.append(f"  error: {error.type}: {error.message}{error.place()}")
        for chained in chain(execution):  # the functions its publishes triggered too
            whose = "" if chained is execution else f" ({chained.name or chained.function})"
            for entry in chained.logs:
                lines.append(f"  console.{entry['level']}{whose}: {entry['text']}")
            for warning in chained.warnings:
                lines.append(f"  warning{whose}: {warning}")
    return "\n".join(lines)


def render(results: list[ScenarioResult]) -> None:
    from pfunc.terminal import Terminal

    out = Terminal()
    for result in results:
        mark, style = ("✔", "green") if result.passed else ("✘", "bold red")
        out.line(
            (f"{mark} ", style),
            result.scenario.name,
            (
                f"  {result.scenario.path}  {result.steps_run} step(s), "
                f"{result.duration_ms:.0f} ms",
                "dim",
            ),
        )
        if not result.passed:
            out.line((failure_text(result), "red"))
    out.line("")
    failed = sum(not result.passed for result in results)
    out.line((summary_line(results), "bold red" if failed else "bold green"))


def to_json(results: list[ScenarioResult]) -> dict[str, Any]:
    scenarios = []
    for result in results:
        entry: dict[str, Any] = {
            "file": str(result.scenario.path),
            "name": result.scenario.name,
            "status": "passed" if result.passed else "failed",
            "steps": result.steps_run,
            "duration_ms": round(result.duration_ms, 2),
        }
        if result.malformed:  # a step that cannot run as written: the run's exit 2
            entry["malformed"] = True
        if result.failure is not None:
            step = result.failure.step
            entry["failure"] = {
                "step": step.number,
                "line": step.line if result.malformed else step.expect_line,
                "mismatches": [
                    {
                        "field": m.field,
                        "expected": m.expected,
                        "actual": None if m.actual is _missing() else m.actual,
                        "note": m.note,
                    }
                    for m in result.failure.mismatches
                ],
                "result": result.failure.result.to_json() if result.failure.result else None,
            }
        scenarios.append(entry)
    passed = sum(result.passed for result in results)
    return {"passed": passed, "failed": len(results) - passed, "scenarios": scenarios}


def _missing() -> object:
    from pfunc.testing import expect

    return expect._MISSING


def junit_case(result: ScenarioResult) -> dict[str, Any]:
    """One scenario's testcase for JUnit, as plain data: `pfunc test -n` carries it from
    pytest-xdist's workers (user_properties) to the one writer below."""
    return {
        "file": str(result.scenario.path),
        "name": result.scenario.name,
        "line": result.scenario.line,
        "place": result.scenario.place,  # (orders the cases, not written)
        "seconds": result.duration_ms / 1000,
        "failure": None if result.failure is None else failure_text(result),
        # A step that cannot run is JUnit's error (the test could not run), not a failure.
        "error": "MalformedStep" if result.malformed else None,
    }


def crashed_case(scenario: Any, error: BaseException) -> dict[str, Any]:
    """The testcase of a scenario whose run raised instead of ending."""
    return {
        "file": str(scenario.path),
        "name": scenario.name,
        "line": scenario.line,
        "place": scenario.place,
        "seconds": 0.0,
        "failure": f"the scenario could not run: {type(error).__name__}: {error}",
        "error": type(error).__name__,
    }


def write_junit(results: list[ScenarioResult], path: Path) -> None:
    write_junit_cases([junit_case(result) for result in results], path)


# What XML 1.0 cannot hold: control characters but tab, newline and carriage return (a
# coloured console line's ESC), lone surrogates, and U+FFFE/U+FFFF.
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    """`text` as XML can hold it: each character it cannot written #xHH, as pytest's
    --junitxml writes it (a handler's coloured log made a file no CI could read)."""
    return _NOT_XML.sub(lambda found: f"#x{ord(found.group()):02X}", text)


def write_junit_cases(cases: list[dict[str, Any]], path: Path) -> None:
    import os

    cases = [
        {key: _xml_safe(value) if isinstance(value, str) else value for key, value in case.items()}
        for case in cases
    ]
    suites = ElementTree.Element("testsuites", name="pfunc")
    by_file: dict[str, list[dict[str, Any]]] = {}
    for case in cases:
        by_file.setdefault(case["file"], []).append(case)
    # Class names from the folder above the working one and every file, so that files
    # away from it keep their own path's last parts, not the machine's whole path.
    root = os.path.commonpath([os.getcwd(), *(str(Path(f).resolve().parent) for f in by_file)])
    for file, group in by_file.items():
        suite = ElementTree.SubElement(
            suites,
            "testsuite",
            name=file,
            tests=str(len(group)),
            failures=str(sum(case["failure"] is not None and not case["error"] for case in group)),
            errors=str(sum(case["error"] is not None for case in group)),
            time=f"{sum(case['seconds'] for case in group):.3f}",
        )
        for case in group:
            element = ElementTree.SubElement(
                suite,
                "testcase",
                # As pytest's --junitxml names it (folders as dots), so a CI's history
                # of a scenario is one whether pfunc test ran it with -n or without.
                classname=Path(os.path.relpath(Path(file).resolve(), root))
                .as_posix()
                .replace("/", "."),
                name=case["name"],
                file=file,
                line=str(case["line"]),
                time=f"{case['seconds']:.3f}",
            )
            text = case["failure"]
            if text is not None:
                failure = ElementTree.SubElement(  # JUnit's error: the test could not run
                    element,
                    "error" if case["error"] else "failure",
                    message=text.splitlines()[1].strip() if "\n" in text else text,
                    type=case["error"] or "ExpectationFailed",
                )
                failure.text = text
    path.parent.mkdir(parents=True, exist_ok=True)
    ElementTree.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def dump_json(results: list[ScenarioResult]) -> str:
    return json.dumps(to_json(results), ensure_ascii=False, default=str)
