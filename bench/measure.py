"""The benchmark's measurements, each with its floor where it has one (bench/run.py
prints them). Everything runs on this machine, in processes of its own where a user's
would be (cold runs, the dev server, the floor server)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

from floor import FloorHandler, SandboxFloor

from pfunc.clock import Clock
from pfunc.engine import open_engine
from pfunc.events import MessageEvent
from pfunc.limits import resolve_profile
from pfunc.project import Project

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "rate_limit.js"
PYTHON_EXAMPLE = REPO / "examples" / "rate_limit.py"
# Bytecode is written and reused, as on a user's machine (a test shell may turn it off).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _wall(command: list[str], folder: Path) -> tuple[float, float]:
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, cwd=folder, env=ENV)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{command[:4]} failed")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def cold(
    runs: int, folder: Path, example: Path = EXAMPLE
) -> tuple[list[float], list[float], float]:
    """Wall seconds per `pfunc run` process and per floor process (a bare interpreter
    importing QuickJS and sqlite3: what any Python tool pays), taken in turn so that both
    see the same machine, and the largest peak RSS of a run in MiB. The run is the `pfunc`
    command installed beside this Python, as a user types it (`python -m pfunc` where
    there is none)."""
    script = Path(sys.executable).with_name("pfunc")
    launcher = [str(script)] if script.exists() else [sys.executable, "-m", "pfunc"]
    command = [
        *launcher,
        "run",
        str(example),
        "--message",
        '{"userId":"bench"}',
        "--json",
        "--kv",
        str(folder / "cold.sqlite3"),
    ]
    floor_command = [sys.executable, "-c", "import quickjs, sqlite3"]
    _wall(command, folder)  # the first run writes the bytecode
    times, floor, peak = [], [], 0.0
    for _ in range(runs):
        seconds, mib = _wall(command, folder)
        times.append(seconds)
        peak = max(peak, mib)
        floor.append(_wall(floor_command, folder)[0])
    return times, floor, peak


async def warm(runs: int, folder: Path, example: Path = EXAMPLE) -> list[float]:
    """Seconds per execution through a reused handler (the in-process loop)."""
    project = Project(root=folder, config_file=None)
    kv_path = folder / f"warm-{example.suffix[1:]}.sqlite3"
    latencies = []
    async with open_engine(project, resolve_profile("classic"), Clock(), kv_path=kv_path) as engine:
        executor = engine.functions.executor_for_file(example)
        # Loading (a QuickJS context, or a Python worker process) is the cold figure's
        # business: one execution first, untimed.
        await executor.run(MessageEvent("before-publish", {"userId": "warm-up", "text": "hi"}))
        for number in range(runs):
            event = MessageEvent("before-publish", {"userId": f"user-{number}", "text": "hi"})
            started = time.perf_counter()
            result = await executor.run(event)
            latencies.append(time.perf_counter() - started)
            if result.outcome != "ok" or result.operations["used"] != 3:
                raise SystemExit(f"unexpected warm result: {result.to_json()}")
    return latencies


def warm_floor(runs: int, folder: Path, ordering: str = "immediate") -> list[float]:
    handler = FloorHandler(EXAMPLE, folder / f"floor-{ordering}.sqlite3", ordering)
    latencies = []
    for number in range(runs):
        request = {"message": {"userId": f"user-{number}", "text": "hi"}, "channels": ["c"]}
        started = time.perf_counter()
        output = handler.run(request)
        if output is None or output == "abort":  # None: the handler failed
            raise SystemExit(f"floor ({ordering}) did not complete: {output!r}")
        latencies.append(time.perf_counter() - started)
    return latencies


def warm_sandbox_floor(runs: int, folder: Path) -> list[float]:
    """Seconds per execution of pfunc's own sandbox with no Python layers (floor.py)."""
    handler = SandboxFloor(EXAMPLE, folder / "floor-sandbox.sqlite3")
    latencies = []
    for number in range(runs):
        request = {"message": {"userId": f"user-{number}", "text": "hi"}, "channels": ["c"]}
        started = time.perf_counter()
        report = handler.run(request)
        latencies.append(time.perf_counter() - started)
        completion = report.get("completion") or {}
        if completion.get("kind") != "ok":
            raise SystemExit(f"sandbox floor did not complete: {report}")
    return latencies


def scenario_file(folder: Path, name: str, scenarios: int, steps: int) -> Path:
    text = ""
    for number in range(scenarios):
        text += f'[[scenario]]\nname = "s{number}"\nfile = "{EXAMPLE}"\n\n'
        for step in range(steps):
            text += (
                f'[[scenario.step]]\npublish = {{ message = {{ userId = "u{step}" }} }}\n'
                'expect = { outcome = "ok" }\n\n'
            )
    path = folder / f"{name}.test.toml"
    path.write_text(text)
    return path


def run_scenarios(path: Path) -> float:
    """Seconds to run every scenario of `path` through the real runner, in this process
    (reading the file is not counted: a step is its event, execution and expectations)."""
    from pfunc.testing.runner import run_scenario
    from pfunc.testing.scenario import load_scenarios

    scenarios = load_scenarios(path)

    async def run_all() -> None:
        for scenario in scenarios:
            result = await run_scenario(scenario)
            if not result.passed:
                raise SystemExit(f"benchmark scenario failed: {result.failure}")

    started = time.perf_counter()
    asyncio.run(run_all())
    return time.perf_counter() - started


def scale_out(path: Path, workers: int) -> float:
    """Seconds for `pfunc test -n WORKERS` over the file (processes started included)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pfunc", "test", "-n", str(workers), str(path)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=path.parent,
    )
    if done.returncode != 0:
        raise SystemExit(f"pfunc test -n failed: {done.stdout[-500:]}")
    return time.perf_counter() - started


def kv_pages(folder: Path, items: int) -> dict[str, float]:
    """Seconds for one page of `kv list --prefix` and of getKeys in a store of `items`."""
    import sqlite3

    from pfunc.modules.calls import CallContext, JSArg
    from pfunc.modules.kvstore import KVStoreModule
    from pfunc.store import KVStore

    path = folder / "big.sqlite3"
    store = KVStore.open(path)
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO items(keyset,key,value,expires_at) VALUES('k',?,'1',?)",
            ((f"{('user', 'room', 'sess')[i % 3]}:{i:07d}", 10**15) for i in range(items)),
        )
    context = CallContext(store, "k", resolve_profile("classic"), Clock(), lambda _: None)

    async def pages() -> dict[str, float]:
        found = {}
        for prefix in ("", "user:", "sess:09"):
            started = time.perf_counter()
            await store.items("k", prefix, 0, limit=1000)
            found[f"kv list --prefix {prefix or '(none)'}"] = time.perf_counter() - started
        started = time.perf_counter()
        await KVStoreModule().call("getKeys", [JSArg({"t": "undefined"})], context)
        found["getKeys"] = time.perf_counter() - started
        await store.close()
        return found

    return asyncio.run(pages())


def log_cost(events: int = 5000) -> tuple[float, float]:
    """Seconds per execution line of the dev log: human, and NDJSON."""
    import io

    from pfunc.server.log import DevLog

    event = {
        "type": "execution",
        "time": "12:00:00",
        "function": "rate-limit",
        "file": "x.js",
        "event": "before-publish",
        "outcome": "ok",
        "operations": {"used": 3, "limit": 3},
        "duration_ms": 0.42,
        "logs": [],
        "warnings": [],
        "channel": "chat",
        "message": {"text": "hello", "userId": "u1"},
    }
    costs = []
    for as_json in (False, True):
        # Written to the sink at once (pfunc dev hands the same text to its output thread).
        log = DevLog(as_json, io.StringIO())
        started = time.perf_counter()
        for _ in range(events):
            log(event)
        costs.append((time.perf_counter() - started) / events)
    return costs[0], costs[1]


_PROJECT = """
[project]
subscribe_key = "sub-c-bench"
publish_key = "pub-c-bench"

[[functions]]
name = "hits"
file = "hits.js"
event = "on-request"
path = "hits"

[[functions]]
name = "spin"
file = "spin.js"
event = "on-request"
path = "spin"

[[functions]]
name = "retry"
file = "retry.js"
event = "on-request"
path = "retry"

[[functions]]
name = "rate-limit"
file = "{example}"
event = "before-publish"
channels = ["chat"]
"""
HITS = """
const db = require("kvstore");
export default async (request, response) =>
  response.send({ n: await db.incrCounter("hits"), v: "VERSION" });
"""
SPIN = "export default () => { while (true) {} };\n"
# Quick (so pfunc dev runs it on its own loop) until asked to retry a refused call forever:
# many rounds answered at once, none of them long.
RETRY = """
const db = require("kvstore");
export default async (request, response) => {
  while (request.query.forever) { try { await db.get("k"); } catch (error) {} }
  return response.send({ quick: true });
};
"""


class Server:
    """A server process (pfunc dev, or the floor) on a free port in `folder`."""

    def __init__(self, folder: Path, floor: bool = False) -> None:
        (folder / "pfunc.toml").write_text(_PROJECT.format(example=EXAMPLE))
        (folder / "hits.js").write_text(HITS.replace("VERSION", "0"))
        (folder / "spin.js").write_text(SPIN)
        (folder / "retry.js").write_text(RETRY)
        if floor:
            command = [
                sys.executable,
                str(Path(__file__).with_name("floor_server.py")),
                str(folder),
            ]
        else:
            command = [sys.executable, "-m", "pfunc", "dev", "--port", "0", "--no-intervals"]
        self.process = subprocess.Popen(
            command, cwd=folder, stdout=subprocess.PIPE, text=True, env=ENV
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if floor:
                self.port = int(line)
                break
            if "serving" in line and "http://127.0.0.1:" in line:
                self.port = int(line.split("http://127.0.0.1:")[1].split()[0].rstrip("/"))
                break
        # Keep reading the server's output so that its pipe never fills up.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.port}"
        self.hits = self.base + "/v1/blocks/sub-key/sub-c-bench/hits"
        self.spin = self.base + "/v1/blocks/sub-key/sub-c-bench/spin"
        self.retry = self.base + "/v1/blocks/sub-key/sub-c-bench/retry"

    def publish_url(self) -> str:
        message = json.dumps({"userId": f"u{random.randrange(10**9)}", "text": "hi"})
        return f"{self.base}/publish/pub-c-bench/sub-c-bench/0/chat/0/{quote(message, safe='')}"

    def usage(self) -> tuple[int, float]:
        """The server process's threads and resident MiB."""
        fields = dict(
            line.split(":", 1)
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
            if ":" in line
        )
        return int(fields["Threads"]), int(fields["VmRSS"].split()[0]) / 1024

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


async def load(url_of, requests: int, concurrency: int) -> tuple[float, list[float]]:
    """Requests/s and latencies from `concurrency` keep-alive connections."""
    import aiohttp

    latencies: list[float] = []
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency, force_close=False)
    ) as session:
        remaining = requests

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with session.get(url_of()) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"server answered {response.status}")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies


def rounds(url_of, requests: int, concurrency: int, count: int) -> list[tuple[float, list[float]]]:
    asyncio.run(load(url_of, 200, concurrency))  # warm: handlers loaded, functions in line
    return [asyncio.run(load(url_of, requests, concurrency)) for _ in range(count)]


def during_runaway(
    server: Server, requests: int, concurrency: int, kind: str = "spin"
) -> list[float]:
    """Latencies of healthy requests while a handler loops to its time limit: `spin`, one
    endless slice of JavaScript from its first execution; `retry`, a function that has
    been quick (pfunc dev runs it on its own loop) retrying a refused call forever."""
    url = server.spin
    if kind == "retry":
        for _ in range(40):
            urllib.request.urlopen(server.retry, timeout=30).read()
        url = server.retry + "?forever=1"

    def spin() -> None:
        with contextlib.suppress(Exception):  # the runaway's 500 is the point
            urllib.request.urlopen(url, timeout=30).read()

    runaway = threading.Thread(target=spin, daemon=True)
    runaway.start()
    time.sleep(0.3)
    _, latencies = asyncio.run(load(lambda: server.hits, requests, concurrency))
    runaway.join(timeout=30)
    return latencies
