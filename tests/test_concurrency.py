"""incrCounter is atomic across processes: real `pfunc run` subprocesses on one SQLite file."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import HANDLERS, run_cli

PROCESSES = 4
RUNS_EACH = 50


def test_four_processes_fifty_increments_each_end_at_exactly_200(tmp_path):
    kv = tmp_path / "shared.sqlite3"

    def worker(_: int) -> list[int]:
        values = []
        for _ in range(RUNS_EACH):
            run = run_cli("run", HANDLERS / "incr.js", "--kv", kv, "--json")
            assert run.code == 0, run.stderr
            values.append(run.json()["message"]["value"])
        return values

    with ThreadPoolExecutor(PROCESSES) as pool:
        seen = [value for values in pool.map(worker, range(PROCESSES)) for value in values]

    # Every increment returned a distinct value: none was lost or applied twice.
    assert sorted(seen) == list(range(1, PROCESSES * RUNS_EACH + 1))
    final = run_cli(
        "run",
        HANDLERS / "kv_errors.js",
        "--kv",
        kv,
        "--json",
        "--message",
        json.dumps({"call": "getCounter", "args": ["shared-counter"]}),
    )
    assert final.json()["message"]["result"] == PROCESSES * RUNS_EACH
