"""Runs one event through one handler and returns one Result.

The loop alternates between the sandbox (run JavaScript until it waits) and the host
(perform the calls it queued). Every host call passes through `_dispatch`, the single
choke point that charges the Budget, records the call and reaches the module.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pfunc.bus import Bus
from pfunc.clock import Clock
from pfunc.errors import HandlerLoadError
from pfunc.events import Event, Keyset, MessageEvent, RequestEvent
from pfunc.limits import Budget, CallRecord, OperationLimitExceeded, Profile
from pfunc.modules import CallContext, HandlerCallError, HostModule, JSArg, host_modules
from pfunc.project import MockRule, Project, load_secrets
from pfunc.result import ExecutionError, Result
from pfunc.sandbox.quickjs_host import JavaScriptSandbox, SandboxInterrupted
from pfunc.sandbox.source import Location, map_stack
from pfunc.sandbox.threads import SandboxThread
from pfunc.store import KVStore


@dataclass
class Runtime:
    """The services executions share: store, limits, clock, keyset, secrets, mocks, bus."""

    store: KVStore
    profile: Profile
    clock: Clock
    keyset: Keyset = field(default_factory=Keyset)
    modules: dict[str, HostModule] = field(default_factory=host_modules)
    vault: dict[str, str] = field(default_factory=dict)
    mocks: list[MockRule] = field(default_factory=list)
    offline: bool = False  # xhr requests no mock answers are refused instead of sent
    bus: Bus | None = None
    threaded: bool = False  # run each sandbox on a thread of its own (the dev server)
    main_loop: asyncio.AbstractEventLoop | None = None  # where network and bus calls run
    random_seed: int | None = None  # seeds Math.random in new sandboxes (test runs)
    # Called with every finished execution, chained ones included (the dev server's log).
    observers: list[Callable[[Result], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.bus is None:
            self.bus = Bus(None)
        self.bus.attach(self)

    async def close(self) -> None:
        if self.bus is not None:
            self.bus.close()
        for module in self.modules.values():
            closer = getattr(module, "close", None)
            if closer is not None:
                await closer()
        await self.store.close()


class Executor:
    """Runs events through one handler file, reusing loaded sandboxes between runs.

    A sandbox serves one execution at a time; when a handler's publish triggers the same
    function again (or the dev server runs it concurrently), another one is loaded.
    """

    def __init__(
        self,
        handler: Path,
        runtime: Runtime,
        display_path: str | None = None,
        name: str | None = None,
    ) -> None:
        self.handler = handler
        self.runtime = runtime
        self.display_path = display_path or str(handler)
        self.name = name or self.display_path
        self.source: str | None = None  # the last source that loaded (what is serving)
        # Bumped by each successful reload; a sandbox built from an older source that
        # finishes an execution after the reload is closed, not pooled again.
        self.generation = 0
        self._idle: list[JavaScriptSandbox] = []

    def _read_source(self) -> str:
        try:
            return self.handler.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise HandlerLoadError(
                "LoadError",
                f"{self.display_path}: cannot read the handler file ({error}); save it as "
                "UTF-8 text",
            ) from None

    async def _new_sandbox(self, source: str) -> JavaScriptSandbox:
        profile = self.runtime.profile
        language: Any = JavaScriptSandbox
        if self.handler.suffix == ".py":  # a worker process reads the file itself
            from pfunc.sandbox.python_host import PythonSandbox

            language, source = PythonSandbox, str(self.handler.resolve())
        build = partial(
            language,
            source,
            self.display_path,
            profile.memory,
            profile.timeout,
            self.runtime.clock.fixed_ms_or_none(),
            self.runtime.random_seed,
        )
        if not self.runtime.threaded:
            return build()
        # The dev server gives each sandbox a thread and event loop of its own: QuickJS
        # releases the GIL while it runs, so a runaway handler does not stall the server.
        home = SandboxThread()

        async def load() -> JavaScriptSandbox:
            return build()

        try:
            sandbox = await home.run(load())
        except BaseException:
            home.close()
            raise
        sandbox.home = home
        return sandbox

    def _stamp(self, sandbox: JavaScriptSandbox, generation: int) -> JavaScriptSandbox:
        sandbox.generation = generation
        return sandbox

    async def _acquire(self) -> JavaScriptSandbox:
        while self._idle:
            sandbox = self._idle.pop()
            if not sandbox.broken and sandbox.generation == self.generation:
                return sandbox
            sandbox.close()
        if self.source is None:
            self.source = self._read_source()
        generation = self.generation
        return self._stamp(await self._new_sandbox(self.source), generation)

    async def reload(self) -> HandlerLoadError | None:
        """Load the file again; on success it serves the next execution, else the last
        good version keeps serving and the load error is returned."""
        try:
            source = self._read_source()
            fresh = await self._new_sandbox(source)
        except HandlerLoadError as failure:
            return failure
        for sandbox in self._idle:
            sandbox.close()
        self.generation += 1
        self._idle = [self._stamp(fresh, self.generation)]
        self.source = source
        return None

    def close(self) -> None:
        for sandbox in self._idle:
            sandbox.close()
        self._idle.clear()

    async def run(self, event: Event) -> Result:
        runtime = self.runtime
        profile = runtime.profile
        family = (
            "message"
            if isinstance(event, MessageEvent)
            else "request"
            if isinstance(event, RequestEvent)
            else "interval"
        )
        budget = Budget(profile)
        host_warnings: list[str] = []
        context = CallContext(
            runtime.store,
            runtime.keyset.subscribe_key,
            profile,
            runtime.clock,
            host_warnings.append,
            runtime=runtime,
            hop=event.hop if isinstance(event, MessageEvent) else 1,
            deadline=None if profile.timeout is None else time.monotonic() + profile.timeout,
        )
        result = Result(
            function=self.display_path,
            event=event.kind,
            outcome="error",
            family=family,
            name=self.name if self.name != self.display_path else None,
        )
        if isinstance(event, RequestEvent):
            result.path = event.path
        if isinstance(event, MessageEvent):
            result.message = event.message
            result.channel = event.channel
            result.hop = context.hop
            result.delivered = not event.kind.startswith("before-")
        started = time.perf_counter()
        try:
            sandbox = await self._acquire()
        except HandlerLoadError as failure:
            result.error = ExecutionError(
                failure.error_type,
                failure.message,
                failure.stack,
                self.display_path if failure.line else None,
                failure.line,
                failure.column,
            )
            result.operations = budget.to_json()
            result.duration_ms = (time.perf_counter() - started) * 1000
            for observer in runtime.observers:
                observer(result)
            return result

        work = self._execute(sandbox, event, budget, context, result, host_warnings)
        await (work if sandbox.home is None else sandbox.home.run(work))
        result.duration_ms = (time.perf_counter() - started) * 1000
        if sandbox.broken or sandbox.generation != self.generation:
            sandbox.close()
        else:
            self._idle.append(sandbox)
        _mask_secrets(result, context.secrets_read)
        for observer in runtime.observers:
            observer(result)
        return result

    async def _execute(
        self,
        sandbox: JavaScriptSandbox,
        event: Event,
        budget: Budget,
        context: CallContext,
        result: Result,
        host_warnings: list[str],
    ) -> None:
        """Drive the execution and fill in the result; runs on the sandbox's own loop."""
        loop = _ExecutionLoop(self, sandbox, budget, context)
        failure = await loop.run(event)
        details = sandbox.finish() or {}
        result.logs = details.get("logs", [])
        result.warnings = [*details.get("warnings", []), *host_warnings, *loop.warnings]
        result.operations = budget.to_json()
        result.triggered = context.triggered
        self._conclude(
            result, event, failure or self._js_error(details.get("error"), sandbox), details
        )

    def _js_error(
        self, info: dict[str, Any] | None, sandbox: JavaScriptSandbox
    ) -> ExecutionError | None:
        if not info:
            return None
        if info.get("mapped"):  # a Python handler's error: frames already name its file
            if info["type"] == "MemoryError":
                return memory_error(self.display_path, self.runtime.profile)
            line = info.get("line")
            return _error_at(
                info["type"],
                info["message"],
                info.get("stack", ""),
                self.display_path,
                Location(line, 1) if line else None,
                info.get("code"),
            )
        stack, location = map_stack(info.get("stack", ""), self.display_path)
        if info["type"] == "InternalError" and info["message"] == "out of memory":
            # The engine raised it inside the handler's own code, where it was caught.
            sandbox.broken = True
            failure = memory_error(self.display_path, self.runtime.profile)
            failure.stack = stack
            return failure
        return _error_at(
            info["type"], info["message"], stack, self.display_path, location, info.get("code")
        )

    def _conclude(
        self,
        result: Result,
        event: Event,
        failure: ExecutionError | None,
        details: dict[str, Any],
    ) -> None:
        completion = details.get("completion")
        expected = {
            "message": "request.ok() or request.abort()",
            "request": "response.send()",
            "interval": "event.ok() or event.abort()",
        }[result.family]
        if failure is None and completion is None:
            failure = ExecutionError(
                "Error",
                f"{self.display_path}: the handler finished without calling {expected}; "
                f"call {expected} (and return or await it) on every path",
            )
        elif failure is None and completion is not None and completion.get("late"):
            failure = ExecutionError(
                "Error",
                f"{self.display_path}: {completion['kind']}() was called only after the handler "
                "had finished, by work it did not await; PubNub only guarantees awaited work, "
                f"so return or await the Promise chain that calls {expected}",
            )
        if failure is not None:
            result.outcome = "error"
            result.error = failure
            return
        assert completion is not None  # no completion is a failure, handled above
        result.outcome = completion["kind"]
        if completion["kind"] == "response":
            result.response = {
                "status": completion["status"],
                "headers": completion["headers"],
                "body": completion["body"],
            }
        elif completion["kind"] == "ok":
            if event.kind.startswith("before-"):
                result.message = json.loads(completion["message"])
            if result.is_message_event:
                result.delivered = True
        else:
            result.abort_reason = completion.get("reason")


def _mask_secrets(result: Result, secrets: set[str]) -> None:
    """Replace vault values the handler read wherever the report would show them as text."""
    secrets = {secret for secret in secrets if len(secret) >= 3}
    if not secrets:
        return

    def mask(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "*****")
        return text

    for entry in result.logs:
        entry["text"] = mask(entry["text"])
    result.warnings = [mask(warning) for warning in result.warnings]
    if result.error is not None:
        result.error.message = mask(result.error.message)
        result.error.stack = mask(result.error.stack)


def memory_error(display_path: str, profile: Profile) -> ExecutionError:
    limit = (profile.memory or 0) // (1024 * 1024)
    return ExecutionError(
        "MemoryError",
        f"{display_path}: the handler used more than the {limit} MiB memory limit "
        f"({profile.describe()}) and was stopped; keep less data in memory at once, or raise "
        "the limit with memory_mb under [limits] in pfunc.toml",
    )


def _error_at(
    error_type: str,
    message: str,
    stack: str,
    display_path: str,
    location: Location | None,
    code: str | None = None,
) -> ExecutionError:
    return ExecutionError(
        error_type,
        message,
        stack,
        display_path if location else None,
        location.line if location else None,
        location.column if location else None,
        code,
    )


class _ExecutionLoop:
    """The slice-by-slice drive of one execution; collects host-side warnings."""

    def __init__(
        self,
        executor: Executor,
        sandbox: JavaScriptSandbox,
        budget: Budget,
        context: CallContext,
    ) -> None:
        self.executor = executor
        self.sandbox = sandbox
        self.budget = budget
        self.context = context
        self.modules = executor.runtime.modules
        self.warnings: list[str] = []
        self.timeout = budget.profile.timeout
        self.deadline = None if self.timeout is None else time.monotonic() + self.timeout
        self.open: dict[int, CallRecord] = {}  # drained, not yet settled (by call id)
        self.tasks: dict[asyncio.Future[tuple[bool, str | None]], tuple[int, CallRecord]] = {}
        self.handler_settled = False
        self.limit_warned = False

    def _remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()

    async def _advance(
        self,
        settlements: list[tuple[int, bool, str | None]],
        start: tuple[str, int | None] | None = None,
    ) -> tuple[bool, list[Any]]:
        """One round of JavaScript (on whatever thread this execution runs on)."""
        return self.sandbox.advance(self._remaining(), settlements, start)

    async def run(self, event: Event) -> ExecutionError | None:
        payload = json.dumps(event.to_sandbox(self.executor.runtime.keyset))
        try:
            settled, calls = await self._advance(
                [], (payload, self.context.clock.fixed_ms_or_none())
            )
            while True:
                if settled and not self.handler_settled:
                    self.handler_settled = True
                    for record in self.open.values():
                        self._mark_unawaited(record)
                settlements: list[tuple[int, bool, str | None]] = []
                for call in calls:
                    await self._dispatch(call, settlements)
                if settlements:
                    settled, calls = await self._advance(settlements)
                    continue
                if not self.tasks:
                    if self.handler_settled:
                        return None
                    return ExecutionError(
                        "Error",
                        f"{self.executor.display_path}: the handler is waiting on a Promise that "
                        "nothing will settle (no host call is pending); resolve it or remove the "
                        "await",
                    )
                remaining = self._remaining()
                if remaining is not None and remaining <= 0:
                    return self._timeout_error(None)
                done, _ = await asyncio.wait(
                    self.tasks, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    return self._timeout_error(None)
                for task in done:
                    call_id, record = self.tasks.pop(task)
                    ok, result_payload = task.result()
                    self.open.pop(call_id, None)
                    record.status = "ok" if ok else "error"
                    settlements.append((call_id, ok, result_payload))
                settled, calls = await self._advance(settlements)
        except SandboxInterrupted as stop:
            if stop.reason == "timeout":
                return self._timeout_error(stop)
            if stop.reason == "crashed":
                return ExecutionError(
                    "Error",
                    f"{self.executor.display_path}: the handler's worker process stopped "
                    "unexpectedly; it is replaced for the next execution",
                )
            return memory_error(self.executor.display_path, self.budget.profile)
        finally:
            for task in self.tasks:
                task.cancel()

    def _timeout_error(self, stop: SandboxInterrupted | None) -> ExecutionError:
        """The time limit ran out: in the engine (stop says where) or awaiting a host call."""
        display_path = self.executor.display_path
        stack, location = map_stack(stop.engine_text if stop else "", display_path)
        # QuickJS reports the running function's position, not the exact loop line.
        where = f" inside the function that starts at line {location.line}" if location else ""
        cause = "a loop that never ends" if stop else "a slow call"
        return _error_at(
            "TimeoutError",
            f"{display_path}: the handler ran longer than the {self.timeout or 0:g} s time "
            f"limit ({self.budget.profile.describe()}) and was stopped{where}; look for "
            f"{cause}, or raise the limit with --timeout",
            stack,
            display_path,
            location,
        )

    async def _dispatch(
        self, call: list[Any], settlements: list[tuple[int, bool, str | None]]
    ) -> None:
        """Charge, record and perform one host call; in-line results join `settlements`."""
        call_id, module_name, method, raw_args = call
        args = [JSArg(arg) for arg in raw_args]
        module = self.modules[module_name]
        try:
            record = self.budget.charge(module_name, method, module.key_of(method, args))
        except OperationLimitExceeded as refused:
            self._warn_limit(str(refused))
            error = HandlerCallError("Error", str(refused), "OPERATION_LIMIT")
            settlements.append((call_id, False, error.to_payload()))
            return
        if self.handler_settled:
            self._mark_unawaited(record)
        if not module.inline:
            self.open[call_id] = record
            work = _invoke(module, method, args, self.context)
            main_loop = self.executor.runtime.main_loop
            if main_loop is None or main_loop is asyncio.get_running_loop():
                task: asyncio.Future[tuple[bool, str | None]] = asyncio.ensure_future(work)
            else:  # network and bus calls belong to the server's loop
                task = asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, main_loop))
            self.tasks[task] = (call_id, record)
            return
        # Local work (SQLite, hashing): awaited in line, no task and no event-loop turn.
        try:
            payload = await module.call(method, args, self.context)
        except Exception as error:
            record.status = "error"
            settlements.append((call_id, False, _rejection(error)))
        else:
            record.status = "ok"
            settlements.append((call_id, True, payload))

    def _mark_unawaited(self, record: CallRecord) -> None:
        if record.unawaited:
            return
        record.unawaited = True
        self.warnings.append(
            f"{record.label()} was not awaited: the handler finished before it completed. pfunc "
            "let it finish, but PubNub only guarantees awaited work; await or return its Promise"
        )

    def _warn_limit(self, message: str) -> None:
        if self.limit_warned:
            return
        self.limit_warned = True
        self.warnings.append(
            f"{message}; the call was not performed. Combine work into fewer calls (e.g. one "
            "object under one key), or choose another profile with --limits"
        )


async def _invoke(
    module: HostModule, method: str, args: list[JSArg], context: CallContext
) -> tuple[bool, str | None]:
    try:
        return True, await module.call(method, args, context)
    except Exception as error:
        return False, _rejection(error)


def _rejection(error: Exception) -> str:
    """The payload a failed call's Promise rejects with."""
    if isinstance(error, HandlerCallError):
        return error.to_payload()
    # A fault below the module (e.g. the disk): reject the call, don't crash the run.
    return HandlerCallError("Error", f"pfunc could not complete the call: {error}").to_payload()


@asynccontextmanager
async def open_runtime(
    kv_path: Path,
    profile: Profile,
    clock: Clock,
    keyset: Keyset,
    *,
    project: Project | None = None,
    offline: bool = False,
    environ: Mapping[str, str] | None = None,
    random_seed: int | None = None,
) -> AsyncIterator[Runtime]:
    """A Runtime over the project's store, secrets, mocks and functions; closed on exit."""
    store = KVStore.open(kv_path)
    runtime = Runtime(
        store,
        profile,
        clock,
        keyset,
        vault=load_secrets(project, dict(environ or {})) if project else {},
        mocks=list(project.mocks) if project else [],
        offline=offline,
        bus=Bus(project),
        main_loop=asyncio.get_running_loop(),
        random_seed=random_seed,
    )
    store.home = runtime.main_loop
    try:
        yield runtime
    finally:
        await runtime.close()
