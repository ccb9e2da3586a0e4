"""pfunc soak benchmark: what failing executions, long-polls and fan-out cost a running
`pfunc dev`, and whether it gives it back. Prints numbers; asserts nothing but the
server being up. Targets (issue "Hardening"):

* 10,000 failing executions (mixed causes, JS and Python) through `pfunc dev`: after the
  pool idles, the server's threads, file descriptors and RSS are back within 10 % of
  what they were before (after a warm-up).
* 1,000 concurrent subscribe long-polls, then a subscribe naming 700 channels that an
  after-presence function matches: memory stays bounded and every long-poll answers.
* Reload under load: 8 clients while the handler is saved 20 times; the last version
  serves within 200 ms of the last save.

    python bench/soak.py [--failures 10000] [--polls 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT = """
[project]
subscribe_key = "sub-c-soak"
publish_key = "pub-c-soak"
[limits]
timeout = 1

[[functions]]
name = "throws"
file = "throws.js"
event = "on-request"
path = "throws"

[[functions]]
name = "loops"
file = "loops.js"
event = "on-request"
path = "loops"

[[functions]]
name = "nan"
file = "nan.js"
event = "on-request"
path = "nan"

[[functions]]
name = "tamper"
file = "tamper.js"
event = "on-request"
path = "tamper"

[[functions]]
name = "pythrows"
file = "pythrows.py"
event = "on-request"
path = "pythrows"

[[functions]]
name = "ok"
file = "ok.js"
event = "on-request"
path = "ok"

[[functions]]
name = "pybuiltins"
file = "pybuiltins.py"
event = "on-request"
path = "pybuiltins"

[[functions]]
name = "joined"
file = "ok_presence.js"
event = "after-presence"
channels = ["room.*"]
"""

HANDLERS = {
    "throws.js": "export default () => { throw new Error('boom'); };",
    "loops.js": "export default async () => { for (let i = 0; i < 1e4; i++) await null; "
    "throw new Error('spun'); };",
    "nan.js": "export default (request, response) => response.send('x', NaN);",
    "tamper.js": "export default async (request) => { JSON.stringify = () => 'x'; "
    "Map.prototype.get = () => { throw new Error('t'); }; "
    "await require('kvstore').get('k'); };",
    "pythrows.py": "def handler(request, response):\n    raise ValueError('boom')\n",
    "ok.js": "export default (request, response) => response.send('ok');",
    "pybuiltins.py": "from pfunc import require\n"
    "uuid, jwt = require('uuid'), require('jwt')\n"
    "def handler(request, response):\n"
    "    token = jwt.sign({'n': request.query['n']}, 'soak-secret')\n"
    "    return response.send({'n': jwt.verify(token, 'soak-secret')['n'], 'id': uuid.v4()})\n",
    "ok_presence.js": "export default (request) => request.ok();",
}
FAILING = ["throws", "loops", "nan", "tamper", "pythrows"]


def resources(pid: int) -> dict[str, float]:
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status if ":" in line)
    return {
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "rss_mib": int(fields["VmRSS"].split()[0]) / 1024,
    }


class Server:
    def __init__(self, folder: Path) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pfunc",
                "dev",
                "--port",
                "0",
                "--json",
                "--no-intervals",
                "--subscribe-timeout",
                "30",
            ],
            cwd=folder,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            event = json.loads(line)
            if event["type"] == "ready":
                self.base = f"http://127.0.0.1:{event['port']}"
                break
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


async def failing_load(base: str, total: int, concurrency: int = 8) -> dict[int, int]:
    import aiohttp

    statuses: dict[int, int] = {}
    remaining = total
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                name = FAILING[remaining % len(FAILING)]
                async with session.get(f"{base}/v1/blocks/sub-key/sub-c-soak/{name}") as answer:
                    await answer.read()
                    statuses[answer.status] = statuses.get(answer.status, 0) + 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


async def long_polls(base: str, polls: int) -> tuple[int, float]:
    """`polls` subscribers waiting at once; one publish wakes them all."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(f"{base}/v2/subscribe/sub-c-soak/lobby/0?tt=0") as first:
            cursor = (await first.json())["t"]["t"]

        async def poll(number: int) -> int:
            url = f"{base}/v2/subscribe/sub-c-soak/lobby/0?tt={cursor}&uuid=p{number}"
            async with session.get(url) as answer:
                return len((await answer.json())["m"])

        waiting = [asyncio.ensure_future(poll(n)) for n in range(polls)]
        await asyncio.sleep(2)  # let them all arrive
        started = time.perf_counter()
        async with session.get(f"{base}/publish/pub-c-soak/sub-c-soak/0/lobby/0/%22hi%22") as p:
            await p.read()
        delivered = await asyncio.gather(*waiting)
        return sum(1 for count in delivered if count == 1), time.perf_counter() - started


def fan_out(base: str, channels: int) -> int:
    import urllib.request

    names = ",".join(f"room.{n}" for n in range(channels))
    with urllib.request.urlopen(f"{base}/v2/subscribe/sub-c-soak/{names}/0?tt=0&uuid=fan") as r:
        return r.status


def get(url: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def concurrent_python(base: str, clients: int, each: int) -> tuple[int, int, float]:
    """`clients` threads x `each` requests to a Python handler using synchronous
    built-ins (one shared context once crashed the server here): (right, total, seconds)."""
    right = 0
    lock = threading.Lock()

    def client(number: int) -> None:
        nonlocal right
        for n in range(each):
            status, body = get(f"{base}/v1/blocks/sub-key/sub-c-soak/pybuiltins?n={number}-{n}")
            if status == 200 and json.loads(body)["n"] == f"{number}-{n}":
                with lock:
                    right += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return right, clients * each, time.perf_counter() - started


def reload_under_load(folder: Path, base: str, saves: int) -> float:
    """Seconds from the last of `saves` saves (8 clients calling meanwhile) to its answer."""
    url = f"{base}/v1/blocks/sub-key/sub-c-soak/ok"
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            get(url)

    clients = [threading.Thread(target=client) for _ in range(8)]
    for thread in clients:
        thread.start()
    try:
        for version in range(1, saves + 1):
            (folder / "ok.js").write_text(
                f"export default (request, response) => response.send('v{version}');"
            )
            saved = time.perf_counter()
            time.sleep(0.05)
        while get(url)[1] != f"v{saves}":
            time.sleep(0.002)
        return time.perf_counter() - saved
    finally:
        stop.set()
        for thread in clients:
            thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failures", type=int, default=10_000)
    parser.add_argument("--polls", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pfunc-soak-") as temporary:
        folder = Path(temporary)
        (folder / "pfunc.toml").write_text(PROJECT)
        for name, source in HANDLERS.items():
            (folder / name).write_text(source)
        server = Server(folder)
        pid = server.process.pid
        try:
            # Warm-up: every pool loaded, and the allocator at the size this load needs
            # (RSS grows for the first ~2,000 executions, then stays flat).
            asyncio.run(failing_load(server.base, 2000))
            time.sleep(1)
            before = resources(pid)
            started = time.perf_counter()
            statuses: dict[int, int] = {}
            series = []
            for _ in range(5):  # RSS after each fifth shows a plateau, or a leak
                for status, count in asyncio.run(
                    failing_load(server.base, args.failures // 5)
                ).items():
                    statuses[status] = statuses.get(status, 0) + count
                series.append(f"{resources(pid)['rss_mib']:.1f}")
            elapsed = time.perf_counter() - started
            during = resources(pid)
            time.sleep(4)  # let the pools idle (sandboxes unused for 2 s are closed)
            after = resources(pid)
            print(
                f"failing executions: {args.failures} in {elapsed:.1f} s "
                f"({args.failures / elapsed:.0f}/s), statuses {statuses}; RSS after each "
                f"fifth: {', '.join(series)} MiB"
            )
            for key in ("threads", "fds", "rss_mib"):
                growth = (after[key] - before[key]) / before[key] * 100
                verdict = "meets" if growth <= 10 else "MISSES"
                print(
                    f"  {key:<8} before {before[key]:8.1f}  right after {during[key]:8.1f}  "
                    f"idle {after[key]:8.1f}  ({growth:+.1f} %; target <= +10 %: {verdict})"
                )
            status, body = get(f"{server.base}/v1/blocks/sub-key/sub-c-soak/ok")
            print(f"  then a healthy request: {status} {body!r}")

            before = resources(pid)
            answered, wake = asyncio.run(long_polls(server.base, args.polls))
            peak = resources(pid)
            print(
                f"long-polls: {answered} of {args.polls} woken by one publish in "
                f"{wake * 1000:.0f} ms; RSS {before['rss_mib']:.1f} -> {peak['rss_mib']:.1f} MiB, "
                f"fds {before['fds']} -> {peak['fds']}"
            )
            before = resources(pid)
            status = fan_out(server.base, 700)
            time.sleep(3)
            after = resources(pid)
            print(
                f"fan-out subscribe of 700 channels: {status}; threads {before['threads']} -> "
                f"{after['threads']}, RSS {before['rss_mib']:.1f} -> {after['rss_mib']:.1f} MiB, "
                f"fds {before['fds']} -> {after['fds']}"
            )
            right, total, spent = concurrent_python(server.base, 8, 500)
            print(
                f"concurrent Python (8 clients x 500, synchronous built-ins): {right} of "
                f"{total} right in {spent:.1f} s; server up: "
                f"{get(server.base + '/time/0')[0] == 200}"
            )
            seconds = reload_under_load(folder, server.base, 20)
            verdict = "meets" if seconds <= 0.2 else "MISSES"
            print(
                f"reload under load (8 clients, 20 saves): last version served "
                f"{seconds * 1000:.0f} ms after the last save; target <= 200 ms: {verdict}"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
