"""`pfunc dev`: start the server, watch the files, read the console, print what happens
until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from pfunc.aio import kept_done
from pfunc.cli.session import Session
from pfunc.errors import PfuncUsageError
from pfunc.server.admin import describe_functions
from pfunc.server.app import DevServer
from pfunc.server.log import DevLog, execution_event
from pfunc.server.log_pump import EXIT_WAIT
from pfunc.server.reload import Reloader
from pfunc.server.state import LogEvent

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Request lines up to 1 MiB reach pfunc, which answers PubNub's own 413 for a message
# over 32 KiB (as escaped in the URL); only a line past this is refused by aiohttp.
MAX_LINE = 1024 * 1024
# A connection that sends nothing, or never finishes its request line and headers, is
# closed after this long (aiohttp's default is an hour). Long-polls are requests in
# progress, not idle, and are not affected.
IDLE_CONNECTION_SECONDS = 60.0
# When stopping: how long connections accepted just before get to read their request (see
# _stop_serving), and after how long a stop still waiting for requests says so.
ACCEPTED_SETTLE_SECONDS = 0.05
SLOW_STOP_SECONDS = 1.0
# Longest a stop waits for a request in progress when the profile sets no time limit.
UNLIMITED_STOP_SECONDS = 60.0


async def _stop_serving(runner: web.AppRunner) -> None:
    """Stop listening, let the connections accepted by then read what they were sent, and
    only then ask them to close. aiohttp's own cleanup asks at once, and a connection
    whose handler had not started yet then drops its request and is waited for until the
    shutdown timeout (measured: one stop in five under load took 60 s)."""
    for site in list(runner.sites):
        await site.stop()
    await asyncio.sleep(ACCEPTED_SETTLE_SECONDS)
    await runner.cleanup()


# The longest console line kept (a command is a name and some JSON); a longer one is said.
MAX_CONSOLE_LINE = 1024 * 1024


def _read_console(loop: asyncio.AbstractEventLoop, server: Any) -> None:
    """Console commands from standard input (run NAME [JSON], publish CHANNEL JSON)."""
    import threading

    def read(fd: int) -> None:
        # Bytes, from the descriptor itself: a line that is not UTF-8 is said (as text it
        # had stopped the console for good), and no buffered reader's lock is held while
        # it waits (a daemon thread holding one aborts the interpreter's exit). A line is
        # kept in the pieces it came in (joined once: not copied again at every read), up
        # to MAX_CONSOLE_LINE; past it, the rest of that line is read and dropped.
        parts: list[bytes] = []
        kept = 0

        def line_ends(piece: bytes) -> None:
            nonlocal kept
            if kept + len(piece) <= MAX_CONSOLE_LINE:
                typed = server.console_line(b"".join([*parts, piece]))
            else:
                typed = server.console_line_too_long(MAX_CONSOLE_LINE)
            parts.clear()
            kept = 0
            asyncio.run_coroutine_threadsafe(typed, loop)

        try:
            while chunk := os.read(fd, 65536):
                *ended, rest = chunk.split(b"\n")
                for piece in ended:
                    line_ends(piece)
                kept += len(rest)
                if rest and kept <= MAX_CONSOLE_LINE:
                    parts.append(rest)
            if kept:  # a last line with no newline (echo -n ... | pfunc dev)
                line_ends(b"")
        except (OSError, RuntimeError):
            return  # no console (closed stdin), or the loop has stopped

    try:
        fd = sys.stdin.fileno() if sys.stdin is not None and not sys.stdin.closed else -1
    except (OSError, ValueError, AttributeError):  # a stand-in stdin with no descriptor
        fd = -1
    if fd >= 0:
        threading.Thread(target=read, args=(fd,), name="pfunc-console", daemon=True).start()


class _AiohttpLog(logging.Handler):
    """aiohttp's own errors as one dev-log line each, instead of a traceback on the
    terminal: a request it could not read is the client's (`bad-request`); a client that
    left mid-request is no one's fault and not logged; anything else is pfunc's."""

    def __init__(self, log: LogEvent) -> None:
        super().__init__(logging.WARNING)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        from aiohttp import web
        from aiohttp.http_exceptions import HttpProcessingError

        cause = record.exc_info[1] if record.exc_info else None
        if isinstance(cause, ConnectionResetError) or getattr(cause, "pfunc_logged", False):
            return  # a client that left; or a request the middleware logged, with its path
        if isinstance(cause, (HttpProcessingError, web.RequestPayloadError)):
            self.log({"type": "bad-request", "error": " ".join(str(cause).split())})
            return
        self.log(
            {
                "type": "server-error",
                "path": "",
                "error": f"{record.getMessage()}: {cause!r}" if cause else record.getMessage(),
            }
        )


@asynccontextmanager
async def running_server(
    session: Session,
    host: str,
    port: int,
    *,
    intervals: bool,
    log: LogEvent,
    subscribe_timeout: float | None = None,
    record: Path | None = None,
    before_ready: Callable[[], None] | None = None,
) -> AsyncIterator[DevServer]:
    """The dev server listening, watching files and logging, until the block ends. It
    logs "ready" (with the bound port) once it serves, and "stopped" at the end;
    `before_ready` runs just before that line (what a reader of it may do next, such as
    Ctrl-C, is then in hand)."""
    aiohttp_log = logging.getLogger("aiohttp.server")
    aiohttp_log.addHandler(handler := _AiohttpLog(log))
    aiohttp_log.propagate = False
    async with session.engine(threaded=True) as engine:
        problems = engine.functions.read_sources()
        engine.runtime.observers.append(lambda result: log(execution_event(result)))
        options = {} if subscribe_timeout is None else {"subscribe_timeout": subscribe_timeout}
        server = DevServer(engine, on_event=log, intervals=intervals, **options)
        if record is not None:
            server.console.record(record)
        # Requests in progress at a stop finish first, each within its time limit.
        stop_timeout = (engine.runtime.profile.timeout or UNLIMITED_STOP_SECONDS) + 1.0
        runner = web.AppRunner(
            server.app(),
            access_log=None,
            max_line_size=MAX_LINE,
            max_field_size=MAX_LINE,
            keepalive_timeout=IDLE_CONNECTION_SECONDS,
            shutdown_timeout=stop_timeout,
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            raise PfuncUsageError(
                f"cannot listen on {host}:{port}: {error.strerror or error}; choose another "
                "--port, or a --host this machine has"
            ) from None
        bound = site._server.sockets[0].getsockname()  # type: ignore[union-attr]
        url = f"http://{host if ':' not in host else f'[{host}]'}:{bound[1]}"
        if engine.files is not None:
            engine.files.origin = url  # where functions' file URLs point
        reloader = Reloader(
            session.project.root,
            asyncio.get_running_loop(),
            server.files_changed,
            state_folder=session.kv_path.parent,
            on_save=server.reloader.note_save,
            function_files=lambda: [function.file for function in server.state.project.functions],
        )
        reloader.start()
        warnings = [problem.text for problem in problems]
        if host not in LOOPBACK:
            warnings.append(
                f"bound to {host}: other machines can reach this server and "
                "its functions; use --host 127.0.0.1 to keep it local"
            )
        # Everything built so far lives as long as the server: out of the collector's
        # sight, a full collection under load scans only what requests made (p99). What
        # is garbage already is collected first, and the freeze ends with the server.
        gc.collect()
        gc.freeze()
        if before_ready is not None:
            before_ready()
        log(
            {
                "type": "ready",
                "url": url,
                "console": url + "/",
                "root": str(session.project.root),
                "port": bound[1],
                "project": session.project.name,
                "subscribe_key": session.keyset.subscribe_key,
                "publish_key": session.keyset.publish_key,
                "kv": str(session.kv_path),
                "functions": describe_functions(server.state),
                "sdk": {
                    "origin": url.removeprefix("http://"),
                    "ssl": False,
                    "publishKey": session.keyset.publish_key,
                    "subscribeKey": session.keyset.subscribe_key,
                },
                "warnings": warnings,
            }
        )
        try:
            yield server
        finally:
            gc.unfreeze()
            reloader.stop()
            # A stop that waits for a long execution says so (and how to cut it short).
            slow_stop = asyncio.get_running_loop().call_later(
                SLOW_STOP_SECONDS, log, {"type": "stopping"}
            )
            try:
                await _stop_serving(runner)
                # Publishes still under way finish (and are logged) before the last line.
                await kept_done()
            finally:
                slow_stop.cancel()
            aiohttp_log.removeHandler(handler)
            log({"type": "stopped"})  # written at once, with any execution lines held


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates a malloc arena of its own (up to 8 per core);
    with a thread per sandbox, a long dev session holds memory in dozens of arenas (RSS
    +15 % after 10,000 executions, measured by bench/soak.py; +4 % with two). Elsewhere
    (musl, macOS) there is nothing to do."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not sys.platform.startswith("linux") or name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).mallopt(-8, arenas)  # M_ARENA_MAX


GIL_SWITCH_SECONDS = 0.001


async def serve(
    session: Session,
    host: str,
    port: int,
    *,
    intervals: bool,
    log: DevLog,
    subscribe_timeout: float | None = None,
    record: Path | None = None,
) -> None:
    """`pfunc dev`: serve until Ctrl-C (SIGINT) or SIGTERM, reading console commands."""
    limit_malloc_arenas()
    # A handler busy on a sandbox thread (a runaway retrying a refused call) holds the GIL
    # between the server loop's socket calls; the loop waits up to the switch interval
    # for it each time. 1 ms rather than Python's 5 halved the tail of the requests
    # served meanwhile (p99 8-12 ms against 11-26 ms, bench/run.py's retry loop).
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def stop_on_ctrl_c() -> None:
        # Before the ready line: a Ctrl-C sent once it is read stops the server as one
        # sent later does (it reached asyncio.run's own handler, which ended it as 130).
        # While it loads, Ctrl-C ends it at once (commands.py).
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)

    async with running_server(
        session,
        host,
        port,
        intervals=intervals,
        log=log,
        subscribe_timeout=subscribe_timeout,
        record=record,
        before_ready=stop_on_ctrl_c,
    ) as server:
        _read_console(loop, server)
        await stop.wait()

        def stop_now() -> None:
            """A second Ctrl-C while requests finish: stop without them. The store is
            consistent after every commit; Python workers end with their parent."""
            log({"type": "stopped", "forced": True})
            drain = getattr(log, "drain", None)  # (the dev log's thread writes it)
            if drain is not None:
                drain(EXIT_WAIT)
            os._exit(130)

        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop_now)
