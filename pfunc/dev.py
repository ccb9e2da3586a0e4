"""`pfunc dev`: start the server, watch the files, print what happens until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from pfunc.errors import PfuncUsageError
from pfunc.plans import Session
from pfunc.render import code_frame

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class DevLog:
    """Prints server events: readable lines, or NDJSON with --json."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False, soft_wrap=True)

    def __call__(self, event: dict[str, Any]) -> None:
        try:
            if self.as_json:
                sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
                sys.stdout.flush()
                return
            getattr(self, "_" + event["type"].replace("-", "_"), self._other)(event)
        except BrokenPipeError:
            self.as_json = False  # nobody reads the log any more; keep serving
            self.console.quiet = True

    def _ready(self, event: dict[str, Any]) -> None:
        self.console.print(
            f"[bold green]pfunc dev[/] serving [bold]{event['project']}[/] at "
            f"{event['url']} (keyset {event['subscribe_key']}, KV {event['kv']})"
        )
        for function in event["functions"]:
            where = (function.get("url") and event["url"] + function["url"]) or (
                f"every {function['interval']:g} s"
                if "interval" in function
                else ", ".join(function.get("channels", []))
            )
            self.console.print(f"  {function['name']:<16} {function['event']:<15} {where}")
        for warning in event.get("warnings", []):
            self.console.print(Text(f"  ! {warning}", style="yellow"))
        self.console.print(
            "[dim]Type run NAME [JSON] or publish CHANNEL JSON here to trigger "
            "functions; Ctrl-C stops the server.[/]"
        )

    def _execution(self, event: dict[str, Any]) -> None:
        style = {"ok": "green", "abort": "yellow", "response": "cyan", "error": "red"}.get(
            event["outcome"], ""
        )
        where = event.get("channel") or event.get("path") or ""
        ops = event["operations"]
        limit = ops["limit"] if isinstance(ops["limit"], int) else "-"
        line = Text(f"{event['time']} {event['function']:<16} {event['event']:<15} {where:<14} ")
        line.append(f"{event['outcome']:<8}", style=style)
        line.append(f" ops {ops['used']}/{limit}  {event['duration_ms']:.1f} ms")
        self.console.print(line)
        for entry in event["logs"]:
            self.console.print(Text(f"    {entry['level']:<5} {entry['text']}", style="dim"))
        for warning in event["warnings"]:
            self.console.print(Text(f"    ! {warning}", style="yellow"))
        if "error" in event:
            error = event["error"]
            self.console.print(Text(f"    {error['type']}: {error['message']}", style="red"))

    def _reload(self, event: dict[str, Any]) -> None:
        if event["ok"]:
            self.console.print(f"[cyan]reloaded[/] {event['file']} ({event['ms']:.0f} ms)")
            return
        self.console.print(
            Text(
                f"reload of {event['file']} failed; the last good version keeps serving:",
                style="bold red",
            )
        )
        self.console.print(
            Text(f"  {event.get('error_type', 'Error')}: {event['error']}", style="red")
        )
        if event.get("line"):
            frame = code_frame(Path(event["file"]), event["line"], event.get("column") or 1)
            if frame:
                self.console.print(Text(frame))

    def _console_error(self, event: dict[str, Any]) -> None:
        self.console.print(Text(f"{event['command']}: {event['error']}", style="red"))

    def _stopped(self, event: dict[str, Any]) -> None:
        self.console.print("[dim]pfunc dev stopped[/]")

    def _other(self, event: dict[str, Any]) -> None:
        self.console.print(Text(json.dumps(event), style="dim"))


def _read_console(loop: asyncio.AbstractEventLoop, server: Any) -> None:
    """Console commands from standard input (run NAME [JSON], publish CHANNEL JSON)."""
    import threading

    def read() -> None:
        try:
            for line in sys.stdin:
                asyncio.run_coroutine_threadsafe(server.console_command(line), loop)
        except (OSError, ValueError, RuntimeError):
            return  # no console (closed stdin), or the loop has stopped

    if sys.stdin is not None and not sys.stdin.closed:
        threading.Thread(target=read, name="pfunc-console", daemon=True).start()


async def serve(
    session: Session,
    host: str,
    port: int,
    *,
    intervals: bool,
    log: DevLog,
    subscribe_timeout: float | None = None,
) -> None:
    from aiohttp import web

    from pfunc.reload import Reloader
    from pfunc.server import DevServer, execution_event

    async with session.runtime() as runtime:
        runtime.threaded = True
        runtime.observers.append(lambda result: log(execution_event(result)))
        options = {} if subscribe_timeout is None else {"subscribe_timeout": subscribe_timeout}
        server = DevServer(runtime, session.project, on_event=log, intervals=intervals, **options)
        runner = web.AppRunner(server.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            raise PfuncUsageError(
                f"cannot listen on {host}:{port}: {error.strerror or error}; choose another --port"
            ) from None
        bound = site._server.sockets[0].getsockname()  # type: ignore[union-attr]
        url = f"http://{host if ':' not in host else f'[{host}]'}:{bound[1]}"
        loop = asyncio.get_running_loop()
        reloader = Reloader(session.project.root, loop, server.files_changed)
        reloader.start()
        warnings = []
        if host not in LOOPBACK:
            warnings.append(
                f"bound to {host}: other machines can reach this server and "
                "its functions; use --host 127.0.0.1 to keep it local"
            )
        log(
            {
                "type": "ready",
                "url": url,
                "port": bound[1],
                "project": session.project.name,
                "subscribe_key": session.keyset.subscribe_key,
                "publish_key": session.keyset.publish_key,
                "kv": str(session.kv_path),
                "functions": server.describe_functions(),
                "warnings": warnings,
            }
        )
        stop = asyncio.Event()
        _read_console(loop, server)
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            reloader.stop()
            await runner.cleanup()
            log({"type": "stopped"})
