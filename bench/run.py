"""pfunc benchmark: prints numbers for the rate-limit example; asserts nothing.

    python bench/run.py [--cold-runs 15] [--warm-runs 3000]

* cold: wall time and peak memory of whole `pfunc run ... --json` processes;
* warm: one process running many executions through a reused handler;
* floor: the same handler on bare QuickJS with raw sqlite3 calls and no pfunc layers
  (no budget, no validation, no host-call queue, no asyncio), for the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import quickjs

from pfunc.clock import Clock
from pfunc.engine import open_engine
from pfunc.events import MessageEvent
from pfunc.limits import resolve_profile
from pfunc.project import Project

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "rate_limit.js"
PYTHON_EXAMPLE = REPO / "examples" / "rate_limit.py"
TARGETS: dict[str, float] = {
    "cold_ms": 150,
    "cold_mib": 60,
    "warm_per_s": 3000,
    "ratio": 2.0,
    "server_per_s": 1500,
    "server_p99_ms": 5.0,
    "reload_ms": 100.0,
    "python_per_s": 1000,
}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def cold(runs: int, folder: Path, example: Path = EXAMPLE) -> tuple[list[float], float]:
    """Wall seconds per `pfunc run` process, and the largest peak RSS in MiB."""
    pfunc = Path(sys.executable).with_name("pfunc")
    command = [str(pfunc) if pfunc.exists() else sys.executable]
    if not pfunc.exists():
        command += ["-m", "pfunc"]
    command += [
        "run",
        str(EXAMPLE),
        "--message",
        '{"userId":"bench"}',
        "--json",
        "--kv",
        str(folder / "cold.sqlite3"),
    ]
    times, peak_kib = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, cwd=folder)
        _, status, usage = os.wait4(process.pid, 0)
        times.append(time.perf_counter() - started)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode not in (0, 1):
            raise SystemExit(f"pfunc run failed with exit code {process.returncode}")
        peak_kib = max(peak_kib, usage.ru_maxrss)
    return times, peak_kib / 1024


async def warm(runs: int, folder: Path, example: Path = EXAMPLE) -> list[float]:
    project = Project(root=folder, config_file=None)
    kv_path = folder / f"warm-{example.suffix[1:]}.sqlite3"
    latencies = []
    async with open_engine(project, resolve_profile("classic"), Clock(), kv_path=kv_path) as engine:
        executor = engine.functions.executor_for_file(example)
        for number in range(runs):
            event = MessageEvent("before-publish", {"userId": f"user-{number}", "text": "hi"})
            started = time.perf_counter()
            result = await executor.run(event)
            latencies.append(time.perf_counter() - started)
            if result.outcome != "ok" or result.operations["used"] != 3:
                raise SystemExit(f"unexpected warm result: {result.to_json()}")
    return latencies


_FLOOR_SHIM = """
var __floor_handler;
const __db = {
  getItem: (key) => Promise.resolve(__floor_get(key)).then((text) =>
    text === null ? null : (text[0] === '"' ? JSON.parse(text) : text)),
  incrCounter: (key, n) => Promise.resolve(__floor_incr(key, n === undefined ? 1 : n)),
  set: (key, value, ttl) => Promise.resolve(__floor_set(key, JSON.stringify(value),
    ttl === undefined ? 1440 : ttl)),
};
function require(name) { return __db; }
function __floor_run(json) {
  const request = JSON.parse(json);
  request.ok = () => { globalThis.__floor_out = JSON.stringify(request.message);
                       return Promise.resolve(); };
  request.abort = () => { globalThis.__floor_out = "abort"; return Promise.resolve(); };
  __floor_handler(request);
}
"""


def floor(runs: int, folder: Path) -> list[float]:
    """The same handler on bare QuickJS + raw sqlite3 (same SQL, same pragmas)."""
    conn = sqlite3.connect(folder / "floor.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(
        "CREATE TABLE items (keyset TEXT, key TEXT, value TEXT, expires_at INTEGER,"
        " PRIMARY KEY (keyset, key)) WITHOUT ROWID;"
        "CREATE TABLE counters (keyset TEXT, key TEXT, value INTEGER,"
        " PRIMARY KEY (keyset, key)) WITHOUT ROWID;"
    )

    def get(key: str) -> str | None:
        row = conn.execute(
            "SELECT value FROM items WHERE keyset=? AND key=? AND expires_at>?",
            ("k", key, int(time.time() * 1000)),
        ).fetchone()
        return row[0] if row else None

    def incr(key: str, amount: int) -> int:
        return conn.execute(
            "INSERT INTO counters(keyset,key,value) VALUES(?,?,?) ON CONFLICT(keyset,key) "
            "DO UPDATE SET value=value+excluded.value RETURNING value",
            ("k", key, amount),
        ).fetchone()[0]

    def put(key: str, text: str, ttl: float) -> None:
        conn.execute(
            "INSERT INTO items(keyset,key,value,expires_at) VALUES(?,?,?,?) "
            "ON CONFLICT(keyset,key) DO UPDATE SET value=excluded.value, "
            "expires_at=excluded.expires_at",
            ("k", key, text, int(time.time() * 1000 + ttl * 60000)),
        )

    context = quickjs.Context()
    context.add_callable("__floor_get", get)
    context.add_callable("__floor_incr", incr)
    context.add_callable("__floor_set", put)
    context.eval(_FLOOR_SHIM)
    source = EXAMPLE.read_text().replace("export default", "__floor_handler =")
    context.module(source)
    run = context.get("__floor_run")
    latencies = []
    for number in range(runs):
        payload = json.dumps(
            {"message": {"userId": f"user-{number}", "text": "hi"}, "channels": ["default"]}
        )
        started = time.perf_counter()
        run(payload)
        while context.execute_pending_job():
            pass
        output = context.get("__floor_out")
        latencies.append(time.perf_counter() - started)
        if output == "abort":
            raise SystemExit("floor aborted unexpectedly")
    conn.close()
    return latencies


_SERVER_PROJECT = """
[project]
name = "bench"
subscribe_key = "sub-c-bench"
publish_key = "pub-c-bench"

[[functions]]
name = "hits"
file = "hits.js"
event = "on-request"
path = "hits"
"""
_HITS = """
const db = require("kvstore");
export default async (request, response) =>
  response.send({ n: await db.incrCounter("hits"), v: "VERSION" });
"""


class DevServerProcess:
    """`pfunc dev --json` on a free port in `folder`, until stopped."""

    def __init__(self, folder: Path) -> None:
        (folder / "pfunc.toml").write_text(_SERVER_PROJECT)
        (folder / "hits.js").write_text(_HITS.replace("VERSION", "0"))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pfunc", "dev", "--port", "0", "--json", "--no-intervals"],
            cwd=folder,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            event = json.loads(line)
            if event["type"] == "ready":
                self.url = f"http://127.0.0.1:{event['port']}/v1/blocks/sub-key/sub-c-bench/hits"
                break
        # Keep reading the server's log so that its pipe never fills up.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


async def server_load(url: str, requests: int, concurrency: int) -> tuple[float, list[float]]:
    """Requests/s and per-request latencies from a keep-alive client on this machine."""
    import aiohttp

    latencies: list[float] = []
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency, force_close=False)
    ) as session:
        for _ in range(50):  # warm the connections and the handler
            async with session.get(url) as response:
                await response.read()
        remaining = requests

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"server answered {response.status}")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies


def reload_latency(folder: Path, url: str, rounds: int) -> list[float]:
    """Seconds from writing a new version of the handler to the first answer from it."""
    import urllib.request

    seconds = []
    for version in range(1, rounds + 1):
        source = _HITS.replace("VERSION", str(version))
        started = time.perf_counter()
        (folder / "hits.js").write_text(source)
        while True:
            with urllib.request.urlopen(url, timeout=5) as response:
                if json.loads(response.read())["v"] == str(version):
                    break
            if time.perf_counter() - started > 5:
                raise SystemExit("the new version never served")
        seconds.append(time.perf_counter() - started)
        time.sleep(0.1)
    return seconds


def scenario_steps(folder: Path, steps: int) -> tuple[float, int]:
    """Seconds to run `steps` scenario steps (20 scenarios) through the real runner."""
    from pfunc.testing.runner import run_scenario
    from pfunc.testing.scenario import load_scenarios

    per = steps // 20
    text = ""
    for number in range(20):
        text += f'[[scenario]]\nname = "s{number}"\nfile = "{EXAMPLE}"\n\n'
        for step in range(per):
            text += (
                '[[scenario.step]]\npublish = { message = { userId = "u" } }\n'
                f'expect = {{ outcome = "{"ok" if step < 10 else "abort"}" }}\n\n'
            )
    path = folder / "bench.test.toml"
    path.write_text(text)

    async def run_all() -> int:
        ran = 0
        for scenario in load_scenarios(path):
            result = await run_scenario(scenario)
            if not result.passed:
                raise SystemExit(f"benchmark scenario failed: {result.failure}")
            ran += result.steps_run
        return ran

    started = time.perf_counter()
    ran = asyncio.run(run_all())
    return time.perf_counter() - started, ran


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold-runs", type=int, default=15)
    parser.add_argument("--warm-runs", type=int, default=3000)
    parser.add_argument("--server-requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--reloads", type=int, default=15)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        cold_times, peak_mib = cold(args.cold_runs, folder)
        warm_times = asyncio.run(warm(args.warm_runs, folder))
        floor_times = floor(args.warm_runs, folder)
        scenario_seconds, scenario_step_count = scenario_steps(folder, 200)
        python_cold, python_peak = cold(max(3, args.cold_runs // 3), folder, PYTHON_EXAMPLE)
        python_warm = asyncio.run(warm(args.warm_runs // 3, folder, PYTHON_EXAMPLE))
        project = folder / "server"
        project.mkdir()
        server = DevServerProcess(project)
        try:
            server_rate, server_times = asyncio.run(
                server_load(server.url, args.server_requests, args.concurrency)
            )
            reloads = reload_latency(project, server.url, args.reloads)
        finally:
            server.stop()

    cold_ms = statistics.median(cold_times) * 1000
    warm_rate = len(warm_times) / sum(warm_times)
    floor_rate = len(floor_times) / sum(floor_times)
    ratio = statistics.mean(warm_times) / statistics.mean(floor_times)

    def verdict(ok: bool) -> str:
        return "meets target" if ok else "MISSES target"

    print(
        f"pfunc benchmark: {EXAMPLE.relative_to(REPO)}, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}"
    )
    print(
        f"cold pfunc run : median {cold_ms:6.1f} ms  (p90 "
        f"{percentile(cold_times, 0.9) * 1000:.1f} ms, n={len(cold_times)})  "
        f"target <= {TARGETS['cold_ms']} ms: {verdict(cold_ms <= TARGETS['cold_ms'])}"
    )
    print(
        f"cold peak RSS  : {peak_mib:6.1f} MiB  target <= {TARGETS['cold_mib']} MiB: "
        f"{verdict(peak_mib <= TARGETS['cold_mib'])}"
    )
    print(
        f"warm pfunc     : {warm_rate:8.0f} exec/s  p50 {percentile(warm_times, 0.5) * 1e6:.0f} us"
        f"  p99 {percentile(warm_times, 0.99) * 1e6:.0f} us  (n={len(warm_times)})  "
        f"target >= {TARGETS['warm_per_s']}/s: {verdict(warm_rate >= TARGETS['warm_per_s'])}"
    )
    print(
        f"warm floor     : {floor_rate:8.0f} exec/s  p50 "
        f"{percentile(floor_times, 0.5) * 1e6:.0f} us  p99 "
        f"{percentile(floor_times, 0.99) * 1e6:.0f} us  (bare QuickJS + raw sqlite3)"
    )
    print(
        f"pfunc / floor  : {ratio:8.2f}x mean cost  target <= {TARGETS['ratio']}x: "
        f"{verdict(ratio <= TARGETS['ratio'])}"
    )
    p99_ms = percentile(server_times, 0.99) * 1000
    server_ok = server_rate >= TARGETS["server_per_s"] and p99_ms <= TARGETS["server_p99_ms"]
    print(
        f"dev server     : {server_rate:8.0f} req/s  p50 "
        f"{percentile(server_times, 0.5) * 1000:.2f} ms  p99 {p99_ms:.2f} ms  (on-request, "
        f"1 KV call, {args.concurrency} keep-alive connections, n={len(server_times)})  "
        f"target >= {TARGETS['server_per_s']}/s, p99 <= {TARGETS['server_p99_ms']:g} ms: "
        f"{verdict(server_ok)}"
    )
    print(
        f"pfunc test     : {scenario_step_count} scenario steps in {scenario_seconds:.2f} s "
        f"(20 scenarios, each on a fresh store)  target < 3 s: "
        f"{verdict(scenario_seconds < 3)}"
    )
    python_rate = len(python_warm) / sum(python_warm)
    print(
        f"python handler : {python_rate:8.0f} exec/s warm through a reused worker, p50 "
        f"{percentile(python_warm, 0.5) * 1e6:.0f} us  target >= {TARGETS['python_per_s']}/s: "
        f"{verdict(python_rate >= TARGETS['python_per_s'])}; cold pfunc run median "
        f"{statistics.median(python_cold) * 1000:.0f} ms, peak {python_peak:.1f} MiB"
    )
    reload_ms = statistics.median(reloads) * 1000
    print(
        f"reload         : median {reload_ms:6.1f} ms from save to serve (max "
        f"{max(reloads) * 1000:.1f} ms, n={len(reloads)})  target <= "
        f"{TARGETS['reload_ms']:g} ms: {verdict(reload_ms <= TARGETS['reload_ms'])}"
    )


if __name__ == "__main__":
    main()
