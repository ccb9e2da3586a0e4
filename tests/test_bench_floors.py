"""The benchmark's floors (bench/floor.py) do the handler's work as pfunc does, and differ
from it where the benchmark says they do: the plain floor settles a KV call's Promise at
once, while the two diagnostic floors keep PubNub's order, as pfunc does."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import quickjs

REPO = Path(__file__).resolve().parent.parent
# Loaded from its file: bench/ on sys.path would shadow modules named like its scripts.
_spec = importlib.util.spec_from_file_location("bench_floor", REPO / "bench" / "floor.py")
assert _spec is not None and _spec.loader is not None
bench_floor = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_floor)
FloorHandler = bench_floor.FloorHandler

ORDERINGS = ("immediate", "rounds", "queued")
RATE_LIMIT = REPO / "examples" / "rate_limit.js"

# Which runs first: a KV call's `then`, or the handler's own next turn?
ORDER_PROBE = """
const db = require("kvstore");
export default async (request) => {
  const order = [];
  const call = db.incrCounter("x").then(() => order.push("call settled"));
  await null;
  order.push("next turn");
  await call;
  request.message.order = order;
  return request.ok();
};
"""


def _eleven_in_one_minute(run: Callable[[dict], Any]) -> list[Any]:
    """Eleven messages from one user through `run`, all within one minute: the limiter
    counts per minute, so runs that crossed into the next one start again (another user)."""
    for user in ("u1", "u2"):
        minute = time.time() // 60
        outputs = [
            run({"message": {"userId": user, "text": "hi"}, "channels": ["c"]}) for _ in range(11)
        ]
        if time.time() // 60 == minute:
            break
    return outputs


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_every_floor_runs_the_rate_limiter_to_its_limit(tmp_path: Path, ordering: str) -> None:
    handler = FloorHandler(RATE_LIMIT, tmp_path / "floor.sqlite3", ordering)
    outputs = _eleven_in_one_minute(handler.run)
    remaining = [json.loads(text)["rateLimitRemaining"] for text in outputs[:10]]
    assert remaining == list(range(9, -1, -1))
    assert outputs[10] == "abort"


def _floor_order(tmp_path: Path, ordering: str) -> list[str]:
    probe = tmp_path / "probe.js"
    probe.write_text(ORDER_PROBE)
    handler = FloorHandler(probe, tmp_path / "floor.sqlite3", ordering)
    return json.loads(handler.run({"message": {}, "channels": ["c"]}))["order"]


def test_the_plain_floor_settles_a_call_at_once(tmp_path: Path) -> None:
    assert _floor_order(tmp_path, "immediate") == ["call settled", "next turn"]


@pytest.mark.parametrize("ordering", ["rounds", "queued"])
def test_the_diagnostic_floors_keep_pfuncs_order(
    tmp_path: Path, ordering: str, harness, write_handler
) -> None:
    result = harness.run(write_handler(ORDER_PROBE))
    assert result.outcome == "ok"
    pfunc_order = result.message["order"]
    assert pfunc_order == ["next turn", "call settled"]
    assert _floor_order(tmp_path, ordering) == pfunc_order


def test_the_queued_floor_holds_every_entry_to_its_time_limit(tmp_path: Path) -> None:
    runaway = tmp_path / "runaway.js"
    runaway.write_text(
        'const db = require("kvstore");\n'
        "export default async (request) => { await db.get('x'); for (;;) {} };\n"
    )
    handler = FloorHandler(runaway, tmp_path / "floor.sqlite3", "queued", time_limit=0.2)
    outcome: list[BaseException | str] = []

    def run() -> None:
        try:
            outcome.append(handler.run({"message": {}, "channels": ["c"]}))
        except BaseException as error:
            outcome.append(error)

    # On a thread of its own, so that a floor without the limit fails here, not hangs.
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert outcome, "the runaway handler was not stopped"
    assert isinstance(outcome[0], quickjs.JSException) and "interrupted" in str(outcome[0])


def test_the_sandbox_floor_runs_the_rate_limiter_as_pfunc_does(tmp_path: Path) -> None:
    """pfunc's own sandbox with no Python layers answers the limiter's calls as pfunc's
    kvstore does: the remaining count falls to 0, then the 11th message is aborted."""
    handler = bench_floor.SandboxFloor(RATE_LIMIT, tmp_path / "floor.sqlite3")
    reports = _eleven_in_one_minute(handler.run)
    completions = [report["completion"] for report in reports]
    remaining = [json.loads(done["message"])["rateLimitRemaining"] for done in completions[:10]]
    assert remaining == list(range(9, -1, -1))
    assert completions[10]["kind"] == "abort" and reports[10]["logs"][0]["level"] == "warn"
