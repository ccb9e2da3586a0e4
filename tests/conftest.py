"""Shared helpers: run the real CLI in a subprocess, or the real executor in-process.

Both use the real QuickJS engine and a real SQLite file under the test's tmp_path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pfunc.clock import Clock
from pfunc.engine import open_engine
from pfunc.events import Event, Keyset, MessageEvent, RequestEvent
from pfunc.limits import resolve_profile
from pfunc.project import Project
from pfunc.project_file import parse_project
from pfunc.result import PublishReport, Result
from tests.sdk.jsdk import JsSdk, SdkUnavailable, install

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent
HANDLERS = Path(__file__).resolve().parent / "handlers"
EXAMPLES = REPO / "examples"


class _QuietHTTPServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on purpose (a test of fetch's timeout) is no server fault.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


# The test files that take longest, handed out first. `--dist loadfile` (pyproject.toml)
# gives whole files to workers in collection order, and a long file handed out last
# holds the run open alone (the reload test, last of the alphabet's counts, added ~10 s).
LONGEST_FIRST = (  # by each file's wall time in a run with four workers (2026-11-30)
    "test_pytest_plugin.py",
    "test_pfunc_test.py",
    "test_dev_server_edges.py",
    "test_inline.py",
    "test_dev_server.py",
    "test_hostile_python.py",
    "test_python_handlers.py",
    "test_console_browser.py",
    "test_cli_run.py",
    "test_hostile.py",
    "test_reload_under_load.py",
    "test_loop_free_run.py",
    "test_store_safety.py",
    "test_readme.py",
    "test_watcher.py",
    "test_console.py",
    "test_kv_cli.py",
    "test_sdk_js.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept


@contextlib.contextmanager
def local_http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (a thread per request); yields its base URL."""
    httpd = _QuietHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


@dataclass
class CliRun:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)


def run_cli(
    *args: str | Path, cwd: Path | None = None, stdin: str | None = None, timeout: float = 60
) -> CliRun:
    """`pfunc ARGS...` as a real subprocess, with colour off."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    completed = subprocess.run(
        [sys.executable, "-m", "pfunc", *map(str, args)],
        cwd=cwd or REPO,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    return CliRun(completed.returncode, completed.stdout, completed.stderr)


def invoke_cli(*args: str | Path, cwd: Path, stdin: str | None = None) -> CliRun:
    """`pfunc ARGS...` in this process (click's runner), for the many CLI tests whose
    subject is the command's answer rather than the process around it (run_cli is)."""
    from click.testing import CliRunner

    from pfunc.cli.commands import main

    previous = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(
            main, [str(arg) for arg in args], input=stdin, env={"NO_COLOR": "1", "COLUMNS": "200"}
        )
    finally:
        os.chdir(previous)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliRun(result.exit_code, result.stdout, result.stderr)


def start_cli(*args: str | Path, cwd: Path) -> subprocess.Popen[str]:
    """`pfunc ARGS...` started in the background (output discarded), for a test that
    signals or kills it while it runs."""
    return subprocess.Popen(
        [sys.executable, "-m", "pfunc", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def run_cli_unread(*args: str | Path, cwd: Path | None = None) -> CliRun:
    """`pfunc ARGS...` whose standard output nobody reads (`pfunc ... | head` once head
    has gone): the pipe's reading end is closed before pfunc writes at all."""
    reading, writing = os.pipe()
    os.close(reading)
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "pfunc", *map(str, args)],
            cwd=cwd or REPO,
            stdout=writing,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(writing)
    return CliRun(completed.returncode, "", completed.stderr)


needs_two_cpus = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two CPUs busy at once")


@contextlib.contextmanager
def second_cpu_busy() -> Iterator[None]:
    """Another thread running JavaScript meanwhile (QuickJS runs it without the GIL: a
    second CPU's worth), as a busy pfunc dev's other threads are: the process's CPU time
    then runs ahead of the wall clock."""
    import quickjs

    done = threading.Event()

    def keep_busy() -> None:
        context = quickjs.Context()
        while not done.is_set():
            context.eval("for (let i = 0; i < 1e6; i++) {}")

    helper = threading.Thread(target=keep_busy)
    helper.start()
    try:
        yield
    finally:
        done.set()
        helper.join()


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., CliRun]:
    """run_cli with a fresh KV file for this test unless the test passes --kv."""
    kv = tmp_path / "kv.sqlite3"

    def call(*args: str | Path, **kwargs: Any) -> CliRun:
        extra = [] if "--kv" in args or not args or args[0] != "run" else ["--kv", str(kv)]
        return run_cli(*args, *extra, **kwargs)

    return call


@pytest.fixture
def write_handler(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a handler file from a dedented source string."""

    def write(source: str, name: str = "handler.js") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
        return path

    return write


class Harness:
    """The real executor over a real SQLite file, driven in-process for speed."""

    def __init__(self, kv_path: Path) -> None:
        self.kv_path = kv_path
        self.clock = Clock(1_767_225_600_000)  # 2026-01-01T00:00:00Z
        self.limits = "classic"
        self.limit_overrides: dict[str, Any] = {}
        self.project: Project | None = None
        self.offline = True
        self.environ: dict[str, str] = {}

    def use_project(self, toml: str, folder: Path) -> Project:
        (folder / "pfunc.toml").write_text(textwrap.dedent(toml))
        self.project = parse_project(folder / "pfunc.toml")
        return self.project

    def run(self, handler: Path, event: Event | None = None, **message: Any) -> Result:
        event = event or MessageEvent("before-publish", message.get("message", {}))
        return asyncio.run(self._run(handler, event))

    def request(self, handler: Path, **fields: Any) -> Result:
        return self.run(handler, RequestEvent(**fields))

    def runs(self, handler: Path, messages: list[dict[str, Any]]) -> list[Result]:
        """One function's before-publish executions, one per message, in order, in one
        engine (a Python handler's in one worker, while it is not replaced); the handler
        is named by its file name, as the report shows it."""

        async def go() -> list[Result]:
            async with self.engine() as engine:
                function = engine.functions.executor_for_file(handler, handler.name)
                return [await function.run(MessageEvent("before-publish", m)) for m in messages]

        return asyncio.run(go())

    def publish(self, channel: str, message: Any, verb: str = "publish") -> PublishReport:
        async def go() -> PublishReport:
            async with self.engine() as engine:
                return await engine.publish(channel, message, verb=verb)

        return asyncio.run(go())

    def engine(self):  # an async context manager yielding an Engine
        return open_engine(
            self.project or Project(root=self.kv_path.parent, config_file=None),
            resolve_profile(self.limits, self.limit_overrides),
            self.clock,
            kv_path=self.kv_path,
            keyset=Keyset(),
            offline=self.offline,
            environ=self.environ,
        )

    async def _run(self, handler: Path, event: Event) -> Result:
        async with self.engine() as engine:
            executor = engine.functions.executor_for_file(handler, handler.name)
            return await executor.run(event)


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path / "kv.sqlite3")


@pytest.fixture(scope="module")
def sdk() -> Iterator[JsSdk]:
    """The official JavaScript SDK in one Node process per test file (skips, saying why,
    where Node or npm is missing)."""
    try:
        node_modules = install()
    except SdkUnavailable as why:
        pytest.skip(str(why))
    driver = JsSdk(node_modules)
    yield driver
    driver.close()


def serve_project(
    tmp_path_factory: pytest.TempPathFactory, name: str, toml: str, handlers: dict | None = None
) -> Iterator[Any]:
    """A real dev server (in this process) on a new project folder: pfunc.toml and the
    handler files (dedented); stopped when the module's tests are done."""
    from tests.dev_harness import InProcessDev

    folder = tmp_path_factory.mktemp(name)
    (folder / "pfunc.toml").write_text(toml)
    for file, source in (handlers or {}).items():
        (folder / file).write_text(textwrap.dedent(source))
    server = InProcessDev(folder)
    yield server
    server.stop()


@pytest.fixture
def clients(sdk: JsSdk, dev: Any, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """Makes JavaScript SDK clients of the test module's `dev` server, with its KEYS;
    destroyed after the test."""
    made = []

    def make(user: str, **options: Any) -> Any:
        name = f"{request.node.name}-{user}"
        client = sdk.client(name, dev.port, request.module.KEYS, user, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.destroy()


# --- processes, read from /proc (tests of what pfunc starts and stops) ---------------


def process_ended(pid: int) -> bool:
    """Whether `pid` is gone, or ended and waits only to be reaped (a zombie)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return "\nState:\tZ" in status.read()
    except FileNotFoundError:
        return True


def process_descendants(pid: int) -> list[int]:
    """The processes below `pid`, from the kernel's children lists: each of its threads
    has its own, of the processes that thread started (one gone meanwhile has none)."""
    children: list[str] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []
    for task in tasks:
        try:
            children += (task / "children").read_text().split()
        except OSError:
            continue
    found: list[int] = []
    for child in children:
        found += [int(child), *process_descendants(int(child))]
    return found


def process_command(pid: int) -> str:
    """`pid`'s command line ("" once it is gone)."""
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_text()
    except OSError:
        return ""


def process_stat(pid: str) -> list[str]:
    """/proc/PID/stat's fields after the command name (state, parent, group, session...)."""
    try:
        return (Path("/proc") / pid / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


# --- the dev server's fixtures (tests/dev_harness.py) ------------------------------------------


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Any]:
    """A dev server in this process on the test project; a file may define its own."""
    from tests.dev_harness import InProcessDev, make_project

    server = InProcessDev(make_project(tmp_path))
    yield server
    server.stop()


@pytest.fixture
def dev_process(tmp_path: Path) -> Iterator[Any]:
    """The real `pfunc dev` subprocess, for the few tests of the command itself."""
    from tests.dev_harness import DevProcess, make_project

    server = DevProcess(make_project(tmp_path), "--no-intervals")
    yield server
    server.stop()


@pytest.fixture
def gate() -> Iterator[Any]:
    from tests.dev_harness import Gate

    opened = Gate()
    yield opened
    opened.close()
