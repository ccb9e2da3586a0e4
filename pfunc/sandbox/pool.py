"""Loaded sandboxes of one handler file: reuse between executions, and reload generations.

A sandbox serves one execution at a time; when a handler's publish triggers the same
function again (or the dev server runs it concurrently), another one is loaded. Each
successful reload bumps the generation: a sandbox built from an older source that
finishes an execution after the reload is closed, not pooled again.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pfunc.errors import HandlerLoadError
from pfunc.sandbox import Sandbox
from pfunc.sandbox.inline import INLINE_GUARD, InlineGuardStop

if TYPE_CHECKING:
    from concurrent.futures import Future

    from pfunc.runtime import Runtime
    from pfunc.sandbox.threads import SandboxThread


# Loaded sandboxes kept for reuse: up to as many as run at once (the executor allows 8),
# so steady load reuses them; those unused for IDLE_SECONDS are closed (all but one), so a
# burst (a subscribe naming 700 channels, a load test) leaves no threads or workers behind.
MAX_IDLE = 8
IDLE_SECONDS = 2.0

# Warm sandboxes handed from one engine to the next (scenarios), by what they
# were built from: (thread, file, source, memory, timeout, clock). A JavaScript context
# costs ~4 ms to make, a Python worker ~70 ms. By thread too: what a test run on one
# thread parks (the console's scenario replays run on the server's) stays with it.
WarmKey = tuple[threading.Thread, str, str, int | None, float | None, int | None]
_WARM: dict[WarmKey, list[Sandbox]] = {}
MAX_WARM = 16


def close_warm() -> None:
    """Close every parked warm sandbox (their threads, their Python workers): at the end
    of a test run, and at exit."""
    for parked in _WARM.values():
        for sandbox in parked:
            sandbox.close()
    _WARM.clear()


atexit.register(close_warm)


def _discard(loading: Future[Sandbox], home: SandboxThread) -> None:
    """A load whose caller has gone: close what it built, then its thread."""
    try:
        if not loading.cancelled() and loading.exception() is None:
            loading.result().close()
    finally:
        home.close()


def _move(sandbox: Sandbox, inline: bool) -> None:
    """Put an idle sandbox where the next execution runs: on the server's loop, or on a
    thread of its own. The context itself moves, with its module state, as a warm
    instance keeps its state whichever way pfunc drives it (QuickJS takes each call's
    stack from the thread that makes it, so a context may change threads between calls)."""
    if inline and sandbox.home is not None:
        sandbox.home.close()
        sandbox.home = None
    elif not inline and sandbox.home is None:
        from pfunc.sandbox.threads import SandboxThread

        sandbox.home = SandboxThread()


def undecodable(error: UnicodeDecodeError, display_path: str) -> HandlerLoadError:
    """The load error of a handler file that is not UTF-8: where, as line and column (as
    every other load error says it, so reports show a code frame), not a byte offset."""
    data = bytes(error.object)
    line = data.count(b"\n", 0, error.start) + 1
    line_start = data.rfind(b"\n", 0, error.start) + 1
    # Columns count characters; what precedes the first bad byte decoded fine.
    column = len(data[line_start : error.start].decode("utf-8")) + 1
    where = f"{display_path}:{line}:{column}"
    return HandlerLoadError(
        "LoadError",
        f"{where}: the handler file is not valid UTF-8 (byte 0x{data[error.start]:02x}: "
        f"{error.reason}); save it as UTF-8 text",
        stack=f"    at {where}",
        line=line,
        column=column,
    )


class SandboxPool:
    def __init__(self, handler: Path, display_path: str, runtime: Runtime) -> None:
        self.handler = handler
        self.display_path = display_path
        self.runtime = runtime
        self.source: str | None = None  # the last source that loaded (what is serving)
        self.generation = 0
        self._idle: list[Sandbox] = []
        self._idle_since: dict[int, float] = {}  # id(sandbox) -> when it was last released
        self._loaded_at: dict[int, int | None] = {}  # id(sandbox) -> the clock when it loaded
        self.closed = False  # set by close(): sandboxes still running are closed on release
        self.loaded_source: str | None = None  # the last source that did load
        # When (wall-clock ms) the serving source first loaded: what the console shows.
        self.loaded_since: int | None = None
        self.reload_failed = False  # the last reload's file did not load

    def _read_source(self) -> str:
        try:
            # A byte-order mark (some editors save one) is no part of the code: CPython
            # skips it in a .py file and QuickJS would read it as a stray character.
            return self.handler.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise HandlerLoadError(
                "LoadError",
                f"{self.display_path}: the handler file does not exist; create it or fix the "
                "file = ... entry in pfunc.toml",
            ) from None
        except UnicodeDecodeError as error:
            raise undecodable(error, self.display_path) from None
        except OSError as error:
            raise HandlerLoadError(
                "LoadError",
                f"{self.display_path}: cannot read the handler file "
                f"({error.strerror or error}); check that it is a file you can read",
            ) from None

    def read(self) -> None:
        """Read the source now (the dev server does, at start), so that the first execution
        cannot read the file while an editor is half-way through saving it. An unreadable
        file is left for the first execution to report."""
        if self.source is None:
            with contextlib.suppress(HandlerLoadError):
                self.source = self._read_source()

    def _build(self, source: str, load_limit: float | None = None) -> Sandbox:
        profile = self.runtime.profile
        timeout = profile.timeout
        if load_limit is not None:
            timeout = load_limit if timeout is None else min(timeout, load_limit)
        settings = (
            self.display_path,
            profile.memory,
            timeout,
            self.runtime.clock.fixed_ms_or_none(),
            self.runtime.random_seed,
        )
        if self.handler.suffix == ".py":
            from pfunc.sandbox.python_host import PythonSandbox

            return PythonSandbox(source, str(self.handler.resolve()), *settings)
        from pfunc.sandbox.quickjs_host import JavaScriptSandbox

        # One handed from scenario to scenario records its built-ins before its handler
        # loads, to be checked before it is handed on (reusable()).
        return JavaScriptSandbox(
            source,
            *settings,
            reused=self.runtime.warm_sandboxes,
            guarded_load=load_limit is not None,
        )

    def _warm_key(self, source: str, clock: int | None) -> WarmKey | None:
        """What a parked sandbox must match: the thread, the file itself (a worker's
        imports come from its folder), the source, the limits, and the clock its top-level
        code read (`clock`: the fixed execution clock when it loaded)."""
        if not self.runtime.warm_sandboxes:
            return None
        profile = self.runtime.profile
        thread = threading.current_thread()  # the object: an ident is reused, it is not
        # The path as given, made absolute: no file system look-ups (resolve() costs a
        # stat per folder, twice a scenario); another spelling of it only misses the cache.
        handler = str(self.handler.absolute())
        return (thread, handler, source, profile.memory, profile.timeout, clock)

    async def _load(self, source: str, inline: bool = False) -> Sandbox:
        clock = self.runtime.clock.fixed_ms_or_none()
        key = self._warm_key(source, clock)
        if key is not None and _WARM.get(key):
            sandbox = _WARM[key].pop()
            try:
                sandbox.renew(self.runtime.random_seed)  # loaded again in it, as new
            except Exception:  # what its last load left (a non-configurable global) is in the
                sandbox.close()  # way, or its worker is gone: a new load answers for itself
            else:
                self._loaded_at[id(sandbox)] = clock
                self.runtime.renewed_sandboxes += 1
                return sandbox
        sandbox = await self._load_new(source, inline)
        if key is not None:  # only runs that park their sandboxes need to know
            self._loaded_at[id(sandbox)] = clock
        return sandbox

    async def _load_new(self, source: str, inline: bool) -> Sandbox:
        if not self.runtime.threaded:
            return self._build(source)
        if inline:  # on the server's loop: its top-level code is held to the in-line guard
            try:
                return self._build(source, INLINE_GUARD)
            except HandlerLoadError as failure:
                if failure.error_type == "TimeoutError":
                    raise InlineGuardStop() from None
                raise
        # The dev server gives each sandbox a thread and event loop of its own: QuickJS
        # releases the GIL while it runs, so a runaway handler does not stall the server.
        import asyncio

        from pfunc.sandbox.threads import SandboxThread

        home = SandboxThread()

        async def load() -> Sandbox:
            return self._build(source)

        loading = home.submit(load())
        try:
            # Shielded: a caller cancelled meanwhile (a stop, a client gone) must not drop
            # a sandbox the thread has built (a Python handler's worker process).
            sandbox = await asyncio.shield(asyncio.wrap_future(loading))
        except BaseException:
            loading.add_done_callback(lambda _: _discard(loading, home))
            raise
        sandbox.home = home
        return sandbox

    async def acquire(self, inline: bool = False, source: str | None = None) -> Sandbox:
        """An idle sandbox of the current generation, or a newly loaded one; in the dev
        server, one on the server's own loop (`inline`) or on a thread of its own.
        `source`: the code an execution started with, should a reload have come since
        (an execution started again runs the code it began with); not pooled after."""
        if source is not None and source != self.source:
            sandbox = await self._load_new(source, inline)
            sandbox.generation = -1  # closed on release: no longer the function's code
            return sandbox
        while self._idle:
            sandbox = self._idle.pop()  # the most recently used: the others age out
            self._idle_since.pop(id(sandbox), None)
            if not sandbox.broken and sandbox.generation == self.generation:
                if self.runtime.threaded:
                    _move(sandbox, inline)
                return sandbox
            sandbox.close()
        if self.source is None:
            self.source = self._read_source()
        generation = self.generation
        sandbox = await self._load(self.source, inline)
        sandbox.generation = generation
        if self.loaded_source != self.source or self.loaded_since is None:
            self.loaded_since = int(time.time() * 1000)
        self.loaded_source = self.source
        return sandbox

    def release(self, sandbox: Sandbox) -> None:
        """Pool it again, unless it broke or a reload made it stale."""
        if (
            self.closed
            or sandbox.broken
            or sandbox.generation != self.generation
            or len(self._idle) >= MAX_IDLE
        ):
            sandbox.close()
        else:
            self._idle.append(sandbox)
            self._idle_since[id(sandbox)] = time.monotonic()

    def trim(self, older_than: float = IDLE_SECONDS) -> None:
        """Close idle sandboxes unused for `older_than` seconds, keeping the newest one
        warm (the dev server calls this every second)."""
        cutoff = time.monotonic() - older_than
        keep = self._idle[-1:]
        for sandbox in self._idle[:-1]:
            if self._idle_since.get(id(sandbox), 0.0) < cutoff:
                self._idle_since.pop(id(sandbox), None)
                sandbox.close()
            else:
                keep.insert(len(keep) - 1, sandbox)
        self._idle = keep

    def unchanged(self) -> bool:
        """The file holds the code that is serving (saved again as it was: `touch`, an
        editor's save), and no reload since has failed: a reload would only reset the
        warm instances' module state. Never for Python: a save of a helper module beside
        it reloads it too (server/reload.py), with its own file as it was."""
        if self.loaded_source is None or self.reload_failed or self.handler.suffix == ".py":
            return False
        try:
            return self._read_source() == self.loaded_source
        except HandlerLoadError:
            return False

    async def reload(self) -> HandlerLoadError | None:
        """Load the file again; on success it serves the next execution, else the last
        good version keeps serving and the load error is returned."""
        self.reload_failed = True  # until it has loaded
        try:
            source = self._read_source()
            fresh = await self._load(source)
        except HandlerLoadError as failure:
            return failure
        except Exception as fault:  # the host could not start a sandbox (fds, fork...)
            return HandlerLoadError("LoadError", f"{self.display_path}: could not load: {fault!r}")
        if self.closed:  # the function went (a reload of pfunc.toml) while this loaded
            fresh.close()
            return None
        self.reload_failed = False
        self.loaded_source = source
        self.loaded_since = int(time.time() * 1000)
        for sandbox in self._idle:
            sandbox.close()
        self.generation += 1
        fresh.generation = self.generation
        self._idle = [fresh]
        self.source = source
        return None

    def close(self) -> None:
        self.closed = True
        for stale in [k for k in _WARM if not k[0].is_alive()]:  # their threads ended
            for sandbox in _WARM.pop(stale):
                sandbox.close()
        for sandbox in self._idle:
            clock = self._loaded_at.pop(id(sandbox), None)
            key = self._warm_key(self.source, clock) if self.source is not None else None
            parked = _WARM.setdefault(key, []) if key is not None else None
            if (
                parked is not None
                and sandbox.generation == self.generation
                and sandbox.reusable()
                and (len(parked) < MAX_IDLE and sum(map(len, _WARM.values())) < MAX_WARM)
            ):
                parked.append(sandbox)
            else:
                sandbox.close()
        self._idle.clear()
