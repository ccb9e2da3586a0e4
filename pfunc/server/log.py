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

_ANSI = {"green": "32", "yellow": "33", "cyan": "36", "red": "31", "dim": "2"}
# Control characters in text a handler or a client chose (a \r would overwrite the line,
# an escape sequence restyle the terminal) are shown escaped.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0, 9), *range(10, 32), *range(127, 160))}
_OUTCOME_STYLES = {"ok": "green", "abort": "yellow", "response": "cyan", "error": "red"}


class DevLog:
    """Prints server events: readable lines, or NDJSON with --json."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = report_console()
        self.root = Path(".")  # the project's folder, where error files are found

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
        self.root = Path(event.get("root", "."))
        self.console.print(
            f"[bold green]pfunc dev[/] serving [bold]{event['project']}[/] at "
            f"{event['url']} (keyset {event['subscribe_key']}, KV {event['kv']})"
        )
        if event.get("console"):
            self.console.print(f"  [bold]console[/]: {event['console']}")
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

    def _paint(self, text: str, style: str) -> str:
        """`text` in `style` for the terminal (plain when colour is off), its control
        characters escaped: the execution line is written directly, as rich's rendering
        cost 10x the NDJSON line."""
        text = text.translate(_CONTROL)
        code = _ANSI.get(style)
        if code is None or self.console.no_color or not self.console.color_system:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"

    def _execution(self, event: dict[str, Any]) -> None:
        """One line per execution; indented below it what a developer needs at once: the
        abort reason, console lines, warnings, and an error with its file, line and code
        frame. Written as text (this runs for every execution); an error's code frame,
        rare, goes through rich."""
        outcome = event["outcome"]
        style = _OUTCOME_STYLES.get(outcome, "")
        if "method" in event:
            where = f"{event['method']} {event.get('path', '')}"
        else:
            where = event.get("channel") or event.get("path") or ""
        ops = event["operations"]
        limit = ops["limit"] if isinstance(ops["limit"], int) else "-"
        status = f" {event['status']}" if "status" in event else ""
        head = f"{event['time']} {event['function']:<16} {event['event']:<15} {where:<14} "
        parts = [
            self._paint(head, ""),
            self._paint(f"{outcome:<8}{status}", style),
            f" ops {ops['used']}/{limit}  {event['duration_ms']:.1f} ms",
        ]
        shown = _compact(event)
        if shown:
            parts.append(self._paint(f"  {shown}", "dim"))
        lines = ["".join(parts)]
        if event.get("abort_reason") is not None:
            lines.append(self._paint(f"    abort: {event['abort_reason']}", "yellow"))
        for entry in event["logs"]:
            lines.append(self._paint(f"    {entry['level']:<5} {entry['text']}", "dim"))
        for warning in event["warnings"]:
            lines.append(self._paint(f"    ! {warning}", "yellow"))
        if not self.console.quiet:
            self.console.file.write("\n".join(lines) + "\n")
            self.console.file.flush()
        if "error" in event:
            self._error(event["error"])

    def _error(self, error: dict[str, Any]) -> None:
        self.console.print(Text(f"    {error['type']}: {error['message']}", style="red"))
        if not error.get("line"):
            return
        where = f"{error['file']}:{error['line']}:{error.get('column') or 1}"
        self.console.print(Text(f"    at {where}", style="red"))
        path = Path(error["file"])
        frame = code_frame(
            path if path.is_absolute() else self.root / path,
            error["line"],
            error.get("column") or 1,
        )
        if frame:
            self.console.print(Text("      " + frame.replace("\n", "\n      ")))

    def _reload(self, event: dict[str, Any]) -> None:
        if event["ok"]:
            self.console.print(f"[cyan]reloaded[/] {event['file']} ({event['ms']:.0f} ms)")
            for warning in event.get("warnings", []):
                self.console.print(Text(f"  ! {warning}", style="yellow"))
            return
        # Only say an older version serves when one does (it loaded, or still loads).
        serving = (
            "the last good version keeps serving"
            if event.get("serving", True)
            else "no version of it has loaded yet; its executions fail until one does"
        )
        self.console.print(Text(f"reload of {event['file']} failed; {serving}:", style="bold red"))
        self.console.print(
            Text(f"  {event.get('error_type', 'Error')}: {event['error']}", style="red")
        )
        if event.get("line"):
            path = Path(event["file"])
            frame = code_frame(
                path if path.is_absolute() else self.root / path,
                event["line"],
                event.get("column") or 1,
            )
            if frame:
                self.console.print(Text(frame))

    def _unrouted(self, event: dict[str, Any]) -> None:
        self.console.print(
            Text(
                f"{event['method']} {event['path']}: {event['status']}, no function or "
                "endpoint answers this path",
                style="yellow",
            )
        )

    def _recorded(self, event: dict[str, Any]) -> None:
        dropped = f" ({len(event['relaxed'])} expectation(s) left out)" if event["relaxed"] else ""
        self.console.print(Text(f"    recorded in {event['file']}{dropped}", style="dim"))

    def _record_error(self, event: dict[str, Any]) -> None:
        self.console.print(Text(f"    not recorded: {event['error']}", style="yellow"))

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


COMPACT = 80  # characters of a message or response body on an execution's line


def _compact(event: dict[str, Any]) -> str:
    """The message (or response body) in a few words, for the execution's line."""
    if "message" in event:
        text = json.dumps(event["message"], ensure_ascii=False, separators=(",", ":"))
    elif isinstance(event.get("body"), str):
        text = event["body"]
    else:
        return ""
    return text if len(text) <= COMPACT else text[: COMPACT - 1] + "…"


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
    if result.is_message_event and result.outcome == "ok":
        event["message"] = result.message
    received = result.received
    if result.family == "request" and received is not None:
        event["method"] = received.method
    if result.response is not None:
        event["status"] = result.response.get("status")
        event["body"] = result.response.get("body")
    if result.error is not None:
        event["error"] = result.error.to_json()
    return event
