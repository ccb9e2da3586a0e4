"""The dev server's log: one readable line (or NDJSON object with --json) per execution,
reload, console error and server fault."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.text import Text

from pfunc.render import code_frame, report_console
from pfunc.result import Result


class DevLog:
    """Prints server events: readable lines, or NDJSON with --json."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = report_console()

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
        sdk = event.get("sdk")
        if sdk:
            self.console.print(
                Text(
                    f"  SDK settings: origin: '{sdk['origin']}', ssl: false, publishKey: "
                    f"'{sdk['publishKey']}', subscribeKey: '{sdk['subscribeKey']}'",
                    style="cyan",
                )
            )
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

    def _not_emulated(self, event: dict[str, Any]) -> None:
        self.console.print(
            Text(
                f"not emulated by pfunc dev: {event['what']} ({event['method']} {event['path']})",
                style="yellow",
            )
        )

    def _push(self, event: dict[str, Any]) -> None:
        where = f" ({event['topic']}, {event['environment']})" if event.get("topic") else ""
        payload = json.dumps(event["payload"], ensure_ascii=False)
        self.console.print(
            Text(
                f"push that would be sent: {event['gateway']} device {event['device']}{where} "
                f"on {event['channel']}: {payload[:120]}",
                style="magenta",
            )
        )

    def _access_denied(self, event: dict[str, Any]) -> None:
        self.console.print(
            Text(
                f"access denied (403): {event['method']} {event['path']} "
                f"uuid {event.get('uuid')!r}: {event['missing']}",
                style="yellow",
            )
        )

    def _server_error(self, event: dict[str, Any]) -> None:
        where = f" on {event['path']}" if event.get("path") else ""
        self.console.print(Text(f"server error{where}: {event['error']}", style="red"))

    def _console_error(self, event: dict[str, Any]) -> None:
        self.console.print(Text(f"{event['command']}: {event['error']}", style="red"))

    def _stopped(self, event: dict[str, Any]) -> None:
        self.console.print("[dim]pfunc dev stopped[/]")

    def _other(self, event: dict[str, Any]) -> None:
        self.console.print(Text(json.dumps(event), style="dim"))


def execution_event(result: Result) -> dict[str, Any]:
    """One execution as the dev server logs it (a line, or an NDJSON object)."""
    event: dict[str, Any] = {
        "type": "execution",
        "time": time.strftime("%H:%M:%S"),
        "function": result.name or result.function,
        "file": result.function,
        "event": result.event,
        "outcome": result.outcome,
        "operations": {
            "used": result.operations.get("used", 0),
            "limit": result.operations.get("limit"),
        },
        "duration_ms": round(result.duration_ms, 2),
        "logs": result.logs,
        "warnings": result.warnings,
    }
    if result.channel is not None:
        event["channel"] = result.channel
    if result.path is not None:
        event["path"] = result.path
    if result.abort_reason is not None:
        event["abort_reason"] = result.abort_reason
    if result.error is not None:
        event["error"] = result.error.to_json()
    return event
