"""The benchmark's floors (bench/floor.py) do the handler's work as pfunc does, and differ
from it where the benchmark says they do: the plain floor settles a KV call's Promise at
once, while the two diagnostic floors keep PubNub's order, as pfunc does."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from floor import FloorHandler  # noqa: E402

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


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_every_floor_runs_the_rate_limiter_to_its_limit(tmp_path: Path, ordering: str) -> None:
    handler = FloorHandler(RATE_LIMIT, tmp_path / "floor.sqlite3", ordering)
    outputs = [
        handler.run({"message": {"userId": "u1", "text": "hi"}, "channels": ["c"]})
        for _ in range(11)
    ]
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
