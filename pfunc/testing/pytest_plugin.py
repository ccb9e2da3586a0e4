"""pfunc's pytest plugin (registered through the `pytest11` entry point).

The `pfunc` fixture gives each test a runtime of its own: a temporary SQLite store, a
fixed clock (2026-01-01T00:00:00Z) that the test can advance, seeded randomness, xhr
offline with mocks, and vault secrets. It runs on a thread with its own event loop, so
the same fixture serves plain and `async def` tests (`await pfunc.apublish(...)`).
Results are the same Result objects `pfunc run --json` prints (`.to_json()`).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from pfunc.engine import Engine
    from pfunc.executor import Executor
    from pfunc.project import FunctionConfig
    from pfunc.result import Result
    from pfunc.runtime import Runtime

T = TypeVar("T")
DEFAULT_NOW = "2026-01-01T00:00:00Z"


class PfuncHarness:
    """Send events to handler files or pfunc.toml functions; read and seed the store."""

    def __init__(self, folder: Path, project_root: Path | None = None, seed: int = 1) -> None:
        from pfunc.clock import Clock
        from pfunc.engine import open_engine
        from pfunc.limits import resolve_profile
        from pfunc.project_file import load_project
        from pfunc.sandbox.threads import SandboxThread

        self.project = load_project(project_root)
        self.clock = Clock.parse_fixed(DEFAULT_NOW)
        self._thread = SandboxThread()
        self._opened = open_engine(
            self.project,
            resolve_profile(self.project.limits, self.project.limit_overrides),
            self.clock,
            kv_path=folder / "kv.sqlite3",
            offline=True,
            environ={},
            random_seed=seed,
        )
        self.engine: Engine = self._wait(self._opened.__aenter__())
        self.runtime: Runtime = self.engine.runtime

    # --- plumbing ------------------------------------------------------------------------

    def _wait(self, work: Coroutine[Any, Any, T]) -> T:
        return self._thread.submit(work).result()

    async def _await(self, work: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(self._thread.submit(work))

    def close(self) -> None:
        # Closing the engine ends its executors, and with them Python handlers' workers.
        self._wait(self._opened.__aexit__(None, None, None))
        self._thread.close()

    def _executor(self, target: str | Path) -> tuple[Executor, FunctionConfig | None]:
        function = self.project.function(str(target))
        if function is not None:
            return self.engine.functions.executor(function), function
        path = Path(target)
        if not path.is_file() and (self.project.root / path).is_file():
            path = self.project.root / path  # relative to the project, wherever pytest runs
        if not path.is_file():
            if self.project.config_file is None:
                raise FileNotFoundError(
                    f"{target}: no such handler file, and no pfunc.toml in "
                    f"{self.project.root} or above it to name functions (the pfunc_project "
                    "ini option names one elsewhere)"
                )
            known = ", ".join(f.name for f in self.project.functions) or "none"
            raise FileNotFoundError(
                f"{target}: no such handler file, and no function of that "
                f"name in {self.project.config_file} (functions: {known})"
            )
        return self.engine.functions.executor_for_file(path, str(path)), None

    async def _send(
        self, target: str | Path, trigger: str, event: str | None = None, **fields: Any
    ) -> Result:
        """One event through the one builder: `trigger` is the method called (publish,
        signal, request, presence, interval); the function's kind must be one it sends."""
        from pfunc.channels import DEFAULT_CHANNEL
        from pfunc.events import EventSpec, build_event, kind_for_trigger

        executor, function = self._executor(target)
        kind = kind_for_trigger(trigger, event, function.event if function else None)
        # A null message is a message (JSON null); other None arguments mean "not given".
        given = {k: v for k, v in fields.items() if v is not None or k == "message"}
        for name, value in given.items():
            # What the event carries as JSON (a body that is no text is sent as its JSON):
            # NaN, an object or bytes are a test's mistake, said as one. Query and header
            # values are the event builder's to check (it writes a date as text).
            if name in ("message", "meta", "params", "state", "json") or (
                name == "body" and not isinstance(value, str)
            ):
                _json_argument(value, f"{trigger}(): {name}")
        spec = EventSpec(**given)
        built = build_event(
            kind,
            spec,
            default_channel=function.default_channel if function else DEFAULT_CHANNEL,
            now_ms=self.clock.now_ms(),
        )
        return await executor.run(built)

    # --- events (sync) ------------------------------------------------------------------

    def publish(
        self,
        target: str | Path,
        message: Any,
        *,
        channel: str | None = None,
        event: str | None = None,
        params: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Result:
        """Run a message handler (before-publish unless the function says otherwise)."""
        return self._wait(
            self._publish(target, message, channel=channel, event=event, params=params, meta=meta)
        )

    def signal(
        self,
        target: str | Path,
        message: Any,
        *,
        channel: str | None = None,
        event: str | None = None,
        params: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Result:
        return self._wait(
            self._signal(target, message, channel=channel, event=event, params=params, meta=meta)
        )

    def publish_file(
        self,
        target: str | Path,
        message: Any = None,
        *,
        file: dict[str, str] | None = None,
        channel: str | None = None,
        event: str | None = None,
        params: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Result:
        """Run a file message handler (before-publish-file unless the function says
        otherwise): `message` is the text sent with the file, `file` its {"id", "name"}
        (default: a made-up file.txt)."""
        return self._wait(
            self._publish_file(
                target, message, file, channel=channel, event=event, params=params, meta=meta
            )
        )

    def request(
        self,
        target: str | Path,
        method: str | None = None,
        path: str = "/",
        *,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: str | None = None,
        json: Any = None,
    ) -> Result:
        return self._wait(
            self._request(target, method, path, query=query, headers=headers, body=body, json=json)
        )

    def _publish(
        self, target: str | Path, message: Any, **fields: Any
    ) -> Coroutine[Any, Any, Result]:
        return self._send(target, "publish", message=message, **fields)

    def _signal(
        self, target: str | Path, message: Any, **fields: Any
    ) -> Coroutine[Any, Any, Result]:
        return self._send(target, "signal", message=message, **fields)

    def _publish_file(
        self,
        target: str | Path,
        message: Any = None,
        file: dict[str, str] | None = None,
        **fields: Any,
    ) -> Coroutine[Any, Any, Result]:
        from pfunc.events import FILE
        from pfunc.file_messages import DEFAULT_FILE, file_message

        payload = file_message(message, file or DEFAULT_FILE)
        return self._send(target, FILE, message=payload, **fields)

    def _request(
        self,
        target: str | Path,
        method: str | None = None,
        path: str = "/",
        **fields: Any,
    ) -> Coroutine[Any, Any, Result]:
        return self._send(target, "request", method=method, path=path, **fields)

    def presence(
        self,
        target: str | Path,
        action: str = "join",
        uuid: str | None = None,
        *,
        occupancy: int = 1,
        state: Any = None,
        channel: str | None = None,
    ) -> Result:
        return self._wait(
            self._send(
                target,
                "presence",
                action=action,
                uuid=uuid,
                occupancy=occupancy,
                state=state,
                channel=channel,
            )
        )

    def interval(self, target: str | Path) -> Result:
        return self._wait(self._send(target, "interval"))

    # --- events (async): the same, awaited ---------------------------------------------------

    async def apublish(self, *args: Any, **kwargs: Any) -> Result:
        """publish(), for async tests."""
        return await self._await(self._publish(*args, **kwargs))

    async def asignal(self, *args: Any, **kwargs: Any) -> Result:
        """signal(), for async tests."""
        return await self._await(self._signal(*args, **kwargs))

    async def apublish_file(self, *args: Any, **kwargs: Any) -> Result:
        """publish_file(), for async tests."""
        return await self._await(self._publish_file(*args, **kwargs))

    async def arequest(self, *args: Any, **kwargs: Any) -> Result:
        """request(), for async tests."""
        return await self._await(self._request(*args, **kwargs))

    # --- the store, the clock, mocks, secrets ---------------------------------------------

    def kv_get(self, key: str) -> Any:
        async def read() -> Any:
            text = await self.runtime.store.get_item(self._keyset, key, self.clock.now_ms())
            return None if text is None else json.loads(text)

        return self._wait(read())

    def kv_set(self, key: str, value: Any, ttl_minutes: float = 1440) -> None:
        """Store `value` under `key` as a handler's db.set would: its TTL clamped to the
        profile's range (1..525,600 minutes in every profile)."""
        text = json.dumps(_json_argument(value, "kv_set(): value"))
        if isinstance(ttl_minutes, bool) or not isinstance(ttl_minutes, int | float):
            raise TypeError(f"pfunc.kv_set(): ttl_minutes is a number, got {ttl_minutes!r}")
        if ttl_minutes != ttl_minutes:  # NaN
            raise ValueError("pfunc.kv_set(): ttl_minutes is NaN")
        minutes = self.runtime.profile.clamped_ttl(ttl_minutes)
        expires = self.clock.now_ms() + int(minutes * 60_000)
        self._wait(self.runtime.store.set_item(self._keyset, key, text, expires))

    def counter(self, key: str) -> int:
        return self._wait(self.runtime.store.get_counter(self._keyset, key))

    def set_counter(self, key: str, value: int) -> None:
        from pfunc.numbers import is_counter

        if not is_counter(value):
            raise TypeError(
                f"pfunc.set_counter(): counters take whole numbers, 64-bit; got {value!r}"
            )
        self._wait(self.runtime.store.set_counter(self._keyset, key, value))

    def advance(self, span: float | str) -> None:
        """Move the clock: seconds, or text like "6m", "2h", "1d"."""
        from pfunc.testing.spans import parse_span

        self.clock.advance(parse_span(span))

    def mock(
        self,
        url: str,
        *,
        method: str | None = None,
        status: int = 200,
        json: Any = None,
        body: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer xhr.fetch requests to `url` (`*` wildcards); the newest mock wins."""
        import json as json_module

        if not isinstance(url, str) or not isinstance(body, str) or not isinstance(status, int):
            raise TypeError("pfunc.mock(): url and body are text, status a whole number")
        if json is not None and body:
            raise TypeError("pfunc.mock(): give json or body, not both")

        from pfunc.project import MockRule

        names = {k.lower(): v for k, v in (headers or {}).items()}
        if json is not None:
            body = json_module.dumps(_json_argument(json, "mock(): json"))
            names.setdefault("content-type", "application/json")
        rule = MockRule(url, method.upper() if method else None, status, names, body)
        self.runtime.mocks.insert(0, rule)

    def vault(self, **secrets: str) -> None:
        wrong = [name for name, value in secrets.items() if not isinstance(value, str)]
        if wrong:  # as a scenario file's vault: text only
            raise TypeError(f"pfunc.vault(): secrets are text; {', '.join(wrong)} is not")
        self.runtime.vault.update(secrets)

    @property
    def _keyset(self) -> str:
        return self.runtime.keyset.subscribe_key


# Scenario files (*.test.toml) as items: the hook lives with its collector classes.
from pfunc.testing.pytest_scenarios import (  # noqa: E402, F401
    add_scenario_options,
    pytest_collect_file,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_ignore_collect,
    pytest_sessionfinish,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_scenario_options(parser.getgroup("pfunc"))
    parser.addini(
        "pfunc_project",
        "pfunc.toml (or its folder) for the pfunc fixture, relative to rootdir; by default "
        "the nearest pfunc.toml above each test file, else rootdir's",
        default="",
    )


def project_root_for(request: pytest.FixtureRequest) -> Path:
    """Where the fixture looks for pfunc.toml: the ini option, else the test file's folder
    (load_project then walks up to the nearest pfunc.toml), never the working directory."""
    from pfunc.project_file import find_project_file

    named = str(request.config.getini("pfunc_project") or "")
    rootdir = Path(str(request.config.rootpath))
    if named:
        path = (rootdir / named).resolve()
        if path.is_file():
            return path.parent
        if not (path / "pfunc.toml").is_file():
            # Named, so meant: walking up from it could find some other project's file.
            pytest.fail(
                f"pfunc_project = {named}: there is no pfunc.toml at {path} (the ini option "
                "names pfunc.toml or its folder, relative to pytest's rootdir "
                f"{rootdir})",
                pytrace=False,
            )
        return path
    test_folder = Path(str(request.node.path)).parent
    return test_folder if find_project_file(test_folder) else rootdir


@pytest.fixture
def pfunc(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[PfuncHarness]:
    """A pfunc runtime for this test, on the project around the test file (see
    project_root_for): a temporary store, a fixed clock, seeded randomness, xhr offline."""
    from pfunc.errors import PfuncUsageError

    try:
        harness = PfuncHarness(tmp_path, project_root_for(request))
    except PfuncUsageError as error:  # a broken pfunc.toml: its one line, as pfunc test says
        raise pytest.fail.Exception(str(error), pytrace=False) from None
    try:
        yield harness
    finally:
        harness.close()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `async def` tests that use the pfunc fixture, unless pytest-asyncio takes them."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    if "pfunc" not in pyfuncitem.fixturenames or pyfuncitem.get_closest_marker("asyncio"):
        return None
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**arguments))
    return True


def _json_argument(value: Any, call: str) -> Any:
    """`value` as JSON carries it (a tuple as a list, as json writes it), if it can (as a
    scenario file's values are checked); a ValueError naming the argument otherwise (NaN
    reached the handler's sandbox, which read as pfunc's own fault)."""
    from pfunc import jsonio

    try:
        return jsonio.check(json.loads(json.dumps(value)))  # (NaN read back, then refused)
    except RecursionError:
        raise ValueError(f"pfunc.{call}: nested deeper than JSON parsers accept") from None
    except (TypeError, ValueError) as error:
        raise ValueError(f"pfunc.{call}: {error}") from None
