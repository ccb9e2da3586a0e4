"""The dev server's log: one readable line (or NDJSON object with --json) per execution,
reload, console error and server fault."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, TextIO

from pfunc import jsonio
from pfunc.aio import running_loop
from pfunc.code_frames import code_frame
from pfunc.result import Result
from pfunc.server.log_pump import StdoutPump
from pfunc.terminal import Terminal

_OUTCOME_STYLES = {"ok": "green", "abort": "yellow", "response": "cyan", "error": "red"}
# Execution lines reach the stream within this many seconds, in one write for all those
# made meanwhile: a write to a pipe per execution (a system call, and the reader it
# wakes) cost ~25 us of a request's ~370 under load. Other events are written at once.
FLUSH_AFTER = 0.02


class DevLog:
    """Prints server events: readable lines, or NDJSON with --json."""

    def __init__(self, as_json: bool, stream: TextIO | None = None) -> None:
        self.as_json = as_json
        self.out = Terminal(stream)  # stdout unless told
        self.out.held = []  # written below: at once, or in batches (FLUSH_AFTER)
        self.root = Path(".")  # the project's folder, where error files are found
        self._flush_due = False
        # Standard output is written by a thread of its own (log_pump.py); a stream the
        # caller gives (a test's) is written at once.
        self._pump = (
            StdoutPump(lambda: self.out.stream, on_closed=self._stop_writing)
            if stream is None
            else None
        )

    def __call__(self, event: dict[str, Any]) -> None:
        if self.as_json:
            if "frame" in event:  # for the readable line only: NDJSON has file, line, column
                event = {key: value for key, value in event.items() if key != "frame"}
            self.out.write(json.dumps(event, ensure_ascii=False))
        else:
            getattr(self, "_" + event["type"].replace("-", "_"), self._other)(event)
        if event["type"] == "execution":
            self._flush_soon()
        else:
            self._flush()

    def _flush_soon(self) -> None:
        loop = running_loop()
        if loop is None:  # not on the server's loop: nothing would flush later
            self._flush()
        elif not self._flush_due:
            self._flush_due = True
            loop.call_later(FLUSH_AFTER, self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        held = self.out.held
        stream = self.out.stream
        if not held or stream is None:
            return
        text = "".join(held)
        held.clear()
        if self._pump is not None:
            self._pump.put(text)
            return
        try:
            stream.write(text)
            stream.flush()
        except BrokenPipeError:
            self._stop_writing()

    def drain(self, seconds: float) -> None:
        """Write what is held, and wait up to `seconds` for standard output to take it
        (before the process ends without Python's own exit)."""
        self._flush()
        if self._pump is not None:
            self._pump.drain(seconds)

    def _stop_writing(self) -> None:
        self.as_json = False  # nobody reads the log any more; keep serving
        self.out.quiet = True

    def _ready(self, event: dict[str, Any]) -> None:
        self.root = Path(event.get("root", "."))
        self.out.line(
            ("pfunc dev", "bold green"),
            " serving ",
            (event["project"], "bold"),
            f" at {event['url']} (keyset {event['subscribe_key']}, KV {event['kv']})",
        )
        if event.get("console"):
            self.out.line("  ", ("console", "bold"), f": {event['console']}")
        for function in event["functions"]:
            where = (function.get("url") and event["url"] + function["url"]) or (
                f"every {function['interval']:g} s"
                if "interval" in function
                else ", ".join(function.get("channels", []))
            )
            self.out.line(f"  {function['name']:<16} {function['event']:<15} {where}")
        sdk = event.get("sdk")
        if sdk:
            self.out.line(
                (
                    f"  SDK settings: origin: '{sdk['origin']}', ssl: false, publishKey: "
                    f"'{sdk['publishKey']}', subscribeKey: '{sdk['subscribeKey']}'",
                    "cyan",
                )
            )
        for warning in event.get("warnings", []):
            self.out.line((f"  ! {warning}", "yellow"))
        self.out.line(
            (
                "Type run NAME [JSON] or publish CHANNEL JSON here to trigger "
                "functions; Ctrl-C stops the server.",
                "dim",
            )
        )

    def _execution(self, event: dict[str, Any]) -> None:
        """One line per execution; indented below it what a developer needs at once: the
        abort reason, console lines, warnings, and an error with its file, line and code
        frame."""
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
            self.out.paint(head, "", one_line=True),
            self.out.paint(f"{outcome:<8}{status}", style, one_line=True),
            f" ops {ops['used']}/{limit}  {event['duration_ms']:.1f} ms",
        ]
        shown = _compact(event)
        if shown:
            parts.append(self.out.paint(f"  {shown}", "dim", one_line=True))
        lines = ["".join(parts)]
        if event.get("abort_reason") is not None:
            lines.append(
                self.out.paint(f"    abort: {event['abort_reason']}", "yellow", one_line=True)
            )
        for entry in event["logs"]:
            lines.append(
                self.out.paint(f"    {entry['level']:<5} {entry['text']}", "dim", one_line=True)
            )
        for warning in event["warnings"]:
            # A warning of several lines (a [[mocks]] block to paste) keeps them, indented
            # under its "!"; each is still one line, its control characters escaped.
            first, *rest = str(warning).split("\n")
            lines.append(self.out.paint(f"    ! {first}", "yellow", one_line=True))
            lines += [self.out.paint(f"      {more}", "yellow", one_line=True) for more in rest]
        self.out.write("\n".join(lines))
        if "error" in event:
            self._error(event["error"], event.get("frame"))

    def _error(self, error: dict[str, Any], frame: str | None = None) -> None:
        self.out.line((f"    {error['type']}: {error['message']}", "red"))
        if not error.get("line"):
            return
        where = f"{error['file']}:{error['line']}:{error.get('column') or 1}"
        self.out.line((f"    at {where}", "red"))
        if frame is None:
            path = Path(error["file"])
            frame = code_frame(
                path if path.is_absolute() else self.root / path,
                error["line"],
                error.get("column") or 1,
            )
        if frame:
            self.out.line("      " + frame.replace("\n", "\n      "))

    def _reload(self, event: dict[str, Any]) -> None:
        if event.get("unchanged"):
            self.out.line(("saved", "cyan"), f" {event['file']} as it was: nothing to reload")
            return
        if event["ok"]:
            self.out.line(("reloaded", "cyan"), f" {event['file']} ({event['ms']:.0f} ms)")
            for warning in event.get("warnings", []):
                self.out.line((f"  ! {warning}", "yellow"))
            return
        # Only say an older version serves when one does (it loaded, or still loads).
        serving = (
            "the last good version keeps serving"
            if event.get("serving", True)
            else "no version of it has loaded yet; its executions fail until one does"
        )
        self.out.line((f"reload of {event['file']} failed; {serving}:", "bold red"))
        self.out.line((f"  {event.get('error_type', 'Error')}: {event['error']}", "red"))
        for warning in event.get("warnings", []):
            self.out.line((f"  ! {warning}", "yellow"))
        if event.get("line"):
            path = Path(event["file"])
            frame = code_frame(
                path if path.is_absolute() else self.root / path,
                event["line"],
                event.get("column") or 1,
            )
            if frame:
                self.out.line(frame)

    def _reload_slow(self, event: dict[str, Any]) -> None:
        self.out.line(
            (
                f"reloading {event['file']}: its top-level code has run for "
                f"{event['seconds']:g} s; saves made meanwhile are read when it ends "
                "(at the latest at the time limit)",
                "yellow",
            )
        )

    def _unrouted(self, event: dict[str, Any]) -> None:
        self.out.line(
            (
                f"{event['method']} {event['path']}: {event['status']}, no function or "
                "endpoint answers this path",
                "yellow",
            )
        )

    def _recorded(self, event: dict[str, Any]) -> None:
        dropped = f" ({len(event['relaxed'])} expectation(s) left out)" if event["relaxed"] else ""
        self.out.line((f"    recorded in {event['file']}{dropped}", "dim"))

    def _record_error(self, event: dict[str, Any]) -> None:
        self.out.line((f"    not recorded: {event['error']}", "yellow"))

    def _not_emulated(self, event: dict[str, Any]) -> None:
        self.out.line(
            (
                f"not emulated by pfunc dev: {event['what']} ({event['method']} {event['path']})",
                "yellow",
            )
        )

    def _push(self, event: dict[str, Any]) -> None:
        where = f" ({event['topic']}, {event['environment']})" if event.get("topic") else ""
        payload = json.dumps(event["payload"], ensure_ascii=False)
        self.out.line(
            (
                f"push that would be sent: {event['gateway']} device {event['device']}{where} "
                f"on {event['channel']}: {payload[:120]}",
                "magenta",
            )
        )

    def _access_denied(self, event: dict[str, Any]) -> None:
        self.out.line(
            (
                f"access denied (403): {event['method']} {event['path']} "
                f"uuid {event.get('uuid')!r}: {event['missing']}",
                "yellow",
            )
        )

    def _server_error(self, event: dict[str, Any]) -> None:
        where = f" on {event['path']}" if event.get("path") else ""
        self.out.line((f"server error{where}: {event['error']}", "red"))

    def _bad_request(self, event: dict[str, Any]) -> None:
        self.out.line((f"a request that could not be read was refused: {event['error']}", "dim"))

    def _console_published(self, event: dict[str, Any]) -> None:
        what = f"{event['verb']} on {event['channel']}"
        if event["dropped"]:
            self.out.line((f"{what}: not sent, {event['dropped']}", "yellow"))
        else:
            self.out.line(
                (f"{what}: sent (timetoken {event['timetoken']}), no function runs on it", "dim")
            )

    def _console_error(self, event: dict[str, Any]) -> None:
        self.out.line((f"{event['command']}: {event['error']}", "red"))

    def _stopping(self, event: dict[str, Any]) -> None:
        self.out.line(
            (
                "stopping: requests in progress, and the functions they started, finish first "
                "(each within its time limit); Ctrl-C again stops at once",
                "dim",
            )
        )

    def _stopped(self, event: dict[str, Any]) -> None:
        if event.get("forced"):
            self.out.line(("pfunc dev stopped at once: requests in progress were dropped", "dim"))
        else:
            self.out.line(("pfunc dev stopped", "dim"))

    def _other(self, event: dict[str, Any]) -> None:
        self.out.line((json.dumps(event), "dim"))


COMPACT = 80  # characters of a message or response body on an execution's line


def _compact(event: dict[str, Any]) -> str:
    """The message (or response body) in a few words, for the execution's line."""
    if "message" in event:
        text = jsonio.COMPACT.encode(event["message"])
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
    if result.family == "request":  # a failed one's too: the 500 or 503 its client got
        event["status"] = result.http_status
    if result.response is not None:
        event["body"] = result.response.get("body")
    if result.error is not None:
        event["error"] = result.error.to_json()
        if result.frame is not None:  # from the code that ran, not the file as it is now
            event["frame"] = result.frame
    return event
