"""tests/conformance: handlers in the style of PubNub's documentation examples, one per
built-in module and event kind, each with scenarios. They all pass under `pfunc test`,
and together they cover every event kind and every module a handler can require."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pfunc.events import KINDS
from pfunc.modules import REQUIRE_NAMES
from tests.conftest import run_cli

FOLDER = Path(__file__).parent / "conformance"
# Step keys that imply an event kind when a step names none.
DEFAULT_KIND = {
    "publish": "before-publish",
    "signal": "before-signal",
    "request": "on-request",
    "presence": "after-presence",
    "interval": "on-interval",
    "publish-file": "before-publish-file",
}


def test_every_conformance_scenario_passes():
    run = run_cli("test", FOLDER, "--json")
    assert run.code == 0, run.stdout + run.stderr
    report = __import__("json").loads(run.stdout)
    assert report["failed"] == 0 and report["passed"] >= 12


def test_the_folder_covers_every_event_kind_and_every_module():
    kinds = set()
    for scenario_file in FOLDER.glob("*.test.toml"):
        for scenario in tomllib.loads(scenario_file.read_text())["scenario"]:
            for step in scenario["step"]:
                trigger = next(key for key in DEFAULT_KIND if key in step)
                kinds.add(step.get("event", DEFAULT_KIND[trigger]))
    assert kinds == set(KINDS)
    required = set()
    for handler in FOLDER.glob("*.js"):
        required |= set(re.findall(r'require\("([^"]+)"\)', handler.read_text()))
    # console and promise are globals handlers use without require.
    assert set(REQUIRE_NAMES) - required <= {"console", "promise"}
