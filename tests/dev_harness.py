"""The dev server as the tests drive it: a project of handlers, `pfunc dev` in this
process (InProcessDev) or as a subprocess (DevProcess), the official Python SDK as its
client, and a gate that orders a handler's steps against a test's. Shared by the dev
server's test files and by the SDK, console and fuzz suites."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PROJECT = """
[project]
name = "devtest"
subscribe_key = "sub-c-t"
publish_key = "pub-c-t"

[limits]
timeout = 1

[[functions]]
name = "shout"
file = "shout.js"
event = "before-publish"
channels = ["chat.*"]

[[functions]]
name = "typing"
file = "typing.js"
event = "before-signal"
channels = ["typing.*"]

[[functions]]
name = "echo"
file = "echo.js"
event = "on-request"
path = "echo"

[[functions]]
name = "count"
file = "count.js"
event = "on-request"
path = "count"

[[functions]]
name = "spin"
file = "spin.js"
event = "on-request"
path = "spin"

[[functions]]
name = "presence"
file = "presence.js"
event = "after-presence"
channels = ["lobby"]
"""

HANDLERS = {
    "shout.js": """
        export default (request) => {
          if (request.message.text === "blocked") return request.abort("blocked word");
          request.message.text = String(request.message.text).toUpperCase();
          return request.ok();
        };
    """,
    "typing.js": "export default (request) => request.ok();",
    "echo.js": """
        export default (request, response) => {
          response.headers["x-echo"] = request.headers["x-token"] || "none";
          return response.send({ method: request.method, path: request.path,
                                 query: request.query, body: request.body.toString() },
                               request.query.status ? Number(request.query.status) : 200);
        };
    """,
    "count.js": """
        const db = require("kvstore");
        export default async (request, response) => response.send({ n: await db.incrCounter("hits") });
    """,
    "spin.js": "export default (request, response) => { for (;;) {} };",
    "presence.js": """
        const db = require("kvstore");
        export default async (request) => {
          await db.set("last-presence", request.message);
          return request.ok();
        };
    """,
}


class DevHarness:
    """What the tests drive: the server's events, HTTP requests, its console."""

    folder: Path
    port: int
    base: str
    events: queue.Queue[dict[str, Any]]

    def wait_for(self, predicate, timeout: float = 5) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if predicate(event):
                return event
        raise AssertionError("the dev server did not report the expected event in time")

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(
            self.base + path, data=body, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()


class InProcessDev(DevHarness):
    """The dev server as `pfunc dev` runs it (the same running_server: real socket, file
    watcher, threaded sandboxes), on a thread of this process: no interpreter start per
    test. Its log events arrive as the NDJSON objects `--json` would print."""

    def __init__(self, folder: Path, intervals: bool = False, port: int = 0) -> None:
        import asyncio

        from pfunc.cli.session import prepare_session
        from pfunc.server.serve import running_server

        self.folder = folder
        self.events = queue.Queue()
        session = prepare_session({"as_json": True}, start=folder)
        started = threading.Event()
        self._failure: BaseException | None = None

        async def main() -> None:
            self._stop = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            try:
                async with running_server(
                    session,
                    "127.0.0.1",
                    port,
                    intervals=intervals,
                    log=self.events.put,
                    subscribe_timeout=2,
                ) as server:
                    self.server = server
                    started.set()
                    await self._stop.wait()
            except BaseException as error:
                self._failure = error
                started.set()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        self._thread.start()
        started.wait(15)
        if self._failure is not None:
            raise self._failure
        ready = self.ready = self.wait_for(lambda e: e["type"] == "ready", timeout=15)
        self.port = ready["port"]
        self.base = f"http://127.0.0.1:{self.port}"

    def type(self, line: str) -> None:
        """Type a line into the server's console (as its standard input's bytes)."""
        import asyncio

        typed = self.server.console_line(line.encode("utf-8", "surrogateescape") + b"\n")
        asyncio.run_coroutine_threadsafe(typed, self._loop)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


class DevProcess(DevHarness):
    """A running `pfunc dev --json` subprocess and the events it printed."""

    def __init__(self, folder: Path, *extra: str) -> None:
        self.folder = folder
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pfunc",
                "dev",
                "--port",
                "0",
                "--json",
                "--subscribe-timeout",
                "2",
                *extra,
            ],
            cwd=folder,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        ready = self.ready = self.wait_for(lambda e: e["type"] == "ready", timeout=15)
        self.port = ready["port"]
        self.base = f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.put(json.loads(line))

    def type(self, line: str) -> None:
        """Type a line into the server's console (its standard input)."""
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def make_project(folder: Path) -> Path:
    (folder / "pfunc.toml").write_text(PROJECT)
    for name, source in HANDLERS.items():
        (folder / name).write_text(textwrap.dedent(source))
    return folder


def make_ticking_project(folder: Path) -> None:
    """The test project plus an interval function that runs every second."""
    make_project(folder)
    (folder / "tick.js").write_text("export default (event) => event.ok();")
    with (folder / "pfunc.toml").open("a") as config:
        config.write(
            '\n[[functions]]\nname = "tick"\nfile = "tick.js"\nevent = "on-interval"\n'
            "interval = 1\n"
        )


def python_sdk(port: int, user: str, publish_key: str, subscribe_key: str):
    """The official Python SDK pointed at a dev server on `port`."""
    from pubnub.pnconfiguration import PNConfiguration
    from pubnub.pubnub import PubNub

    config = PNConfiguration()
    config.publish_key, config.subscribe_key, config.user_id = publish_key, subscribe_key, user
    config.origin = f"127.0.0.1:{port}"
    config.ssl = False
    return PubNub(config)


def sdk(dev: DevHarness, user: str = "tester"):
    """The SDK on the test project's keys (PROJECT)."""
    return python_sdk(dev.port, user, "pub-c-t", "sub-c-t")


class Collector:
    """A subscribe listener that keeps what arrives."""

    def __init__(self) -> None:
        from pubnub.callbacks import SubscribeCallback
        from pubnub.enums import PNStatusCategory

        self.messages: list[tuple[str, Any]] = []
        self.signals: list[tuple[str, Any]] = []
        self.connected = threading.Event()
        outer = self

        class Listener(SubscribeCallback):
            def status(self, pubnub, status):
                if status.category == PNStatusCategory.PNConnectedCategory:
                    outer.connected.set()

            def message(self, pubnub, message):
                outer.messages.append((message.channel, message.message))

            def signal(self, pubnub, signal):
                outer.signals.append((signal.channel, signal.message))

        self.listener = Listener()

    def wait(self, predicate, timeout: float = 5) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return False


class Gate:
    """A local HTTP endpoint a handler's xhr.fetch reaches: it tells the test that the
    handler got there, and answers only when the test opens it. Orders a handler's steps
    against the test's without sleeping."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.reached = threading.Event()
        self.opened = threading.Event()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gate.reached.set()
                gate.opened.wait(10)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/gate"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.opened.set()
        self.server.shutdown()
