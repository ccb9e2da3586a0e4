"""Human-readable reports of a Result, as styled text (pfunc/terminal.py).

Colour only on a terminal, and never with NO_COLOR set.
"""

from __future__ import annotations

import json
from typing import Any

from pfunc.code_frames import error_frame
from pfunc.events import KINDS
from pfunc.result import PublishReport, Result
from pfunc.terminal import Segment, Terminal, Tree

_OUTCOME_STYLE = {
    "ok": "bold green",
    "abort": "bold yellow",
    "response": "bold cyan",
    "error": "bold red",
}
_LEVEL_STYLE = {"log": "", "info": "cyan", "warn": "yellow", "error": "red", "debug": "dim"}


def render_result(result: Result, terminal: Terminal | None = None) -> None:
    out = terminal or Terminal()
    style = _OUTCOME_STYLE.get(result.outcome, "bold")
    out.line(
        (f" {result.outcome.upper()} ", f"reverse {style}"),
        f"  {result.event} · {result.function} · {result.duration_ms:.1f} ms",
    )

    if result.is_message_event and KINDS[result.event].trigger == "presence":
        # A presence change happened whatever the handler did: nothing to deliver.
        out.line("")
        out.line(("Presence event", "bold"), f" on {result.channel or ''}")
        out.line(_json(result.message))
    elif result.is_message_event:
        state = "delivered" if result.delivered else "not delivered"
        out.line("")
        out.line(("Message", "bold"), f" on {result.channel or ''} ({state})")
        out.line(_json(result.message))
    elif result.response is not None:
        response = result.response
        out.line("")
        out.line(("Response", "bold"), f" {response['status']}")
        for name, value in response["headers"].items():
            for text in value if isinstance(value, list) else [value]:  # a line a value
                out.line(f"  {name}: {text}")
        out.line(_body(response["body"]))
    if result.outcome == "abort":
        reason = result.abort_reason if result.abort_reason is not None else "(no reason)"
        out.line(("Abort reason:", "bold"), f" {reason}")

    if result.logs:
        out.line("")
        out.line(("Console", "bold"))
        for entry in result.logs:
            level = entry["level"]
            out.line(
                f"  {entry['time'][11:23]} ",
                (f"{level:<5}", _LEVEL_STYLE.get(level, "")),
                f" {entry['text']}",
            )

    _render_operations(out, result.operations)

    if result.warnings:
        out.line("")
        out.line(("Warnings", "bold yellow"))
        for warning in result.warnings:
            out.line((f"  ! {warning}".replace("\n", "\n    "), "yellow"))  # lines kept, indented

    if result.error is not None:
        error = result.error
        out.line("")
        out.line(("Error", "bold red"))
        out.line((f"  {error.type}: {error.message}", "red"))
        frame = error_frame(result)
        if frame:
            out.line(frame)
        if error.stack:
            out.line((error.stack, "dim"))

    if result.triggered:
        tree = Tree([[("Triggered", "bold")]])
        for report in result.triggered:
            _add_report(tree, report)
        out.line("")
        out.write("\n".join(tree.render(out)))


def render_publish(report: PublishReport, terminal: Terminal | None = None) -> None:
    """A publish and the tree of executions it caused."""
    out = terminal or Terminal()
    tree = Tree([_report_label(report)])
    for result in report.executions:
        _add_execution(tree, result)
    out.write("\n".join(tree.render(out)))
    if not report.executions and report.drop is None:  # a channel, or a folder, with none
        said = f"  no function runs on {report.channel} for this {report.verb}"  # (other kinds may)
        out.line((said, "dim"))
    if report.delivered:
        out.line("")
        # A fire reaches functions only, never a subscriber: nothing is delivered.
        out.line(("Fired message" if report.verb == "fire" else "Delivered message", "bold"))
        out.line(_json(report.message))


def _report_label(report: PublishReport) -> list[Segment]:
    label: list[Segment] = [
        (f"{report.verb} → {report.channel}", "bold"),
        (f" (hop {report.hop}) ", ""),
    ]
    if report.dropped:
        label.append((report.dropped, "yellow"))
    elif report.delivered:
        delivered = "reached functions only" if report.verb == "fire" else "delivered"
        label.append((f"{delivered}, timetoken {report.timetoken}", "green"))
        if report.pushes:
            label.append((f"; {len(report.pushes)} mobile push(es) would be sent", "magenta"))
    else:
        label.append((f"not delivered: stopped by {report.stopped_by}", "yellow"))
    return label


def _add_report(parent: Tree, report: PublishReport) -> None:
    branch = parent.add([_report_label(report)])
    for result in report.executions:
        _add_execution(branch, result)


def _add_execution(parent: Tree, result: Result) -> None:
    style = _OUTCOME_STYLE.get(result.outcome, "bold")
    used, limit = result.operations.get("used", 0), result.operations.get("limit")
    ops = f"{used}/{limit}" if isinstance(limit, int) else str(used)
    lines: list[list[Segment]] = [
        [
            (f" {result.outcome.upper()} ", f"reverse {style}"),
            (f" {result.event} · {result.function} · {result.duration_ms:.1f} ms · ops {ops}", ""),
        ]
    ]
    if result.outcome == "abort" and result.abort_reason:
        lines.append([(f"abort: {result.abort_reason}", "yellow")])
    for entry in result.logs:
        lines.append([(f"{entry['level']:<5} {entry['text']}", "dim")])
    for warning in result.warnings:
        lines.append([(f"! {warning}", "yellow")])
    if result.error is not None:
        error = result.error
        lines.append([(f"{error.type}: {error.message}{error.place()}", "red")])
    node = parent.add(lines)
    for report in result.triggered:
        _add_report(node, report)


def _render_operations(out: Terminal, operations: dict[str, Any]) -> None:
    limit = operations.get("limit")
    used = operations.get("used", 0)
    if isinstance(limit, int):
        summary = f"{used} of {limit}"
    elif isinstance(limit, dict) and any(v is not None for v in limit.values()):
        summary = (
            f"{used} (per-kind limits: " + ", ".join(f"{k} {v}" for k, v in limit.items()) + ")"
        )
    else:
        summary = f"{used} (no limit)"
    out.line("")
    out.line(("Operations", "bold"), f" {summary}")
    for number, call in enumerate(operations.get("calls", []), start=1):
        key = f" {call['key']}" if "key" in call else ""
        flags = " (not awaited)" if call.get("unawaited") else ""
        status = call.get("status", "")
        status_style = {"ok": "green", "error": "red", "refused": "bold red"}.get(status, "")
        error = f": {call['error']}" if call.get("error") else ""
        out.line(
            f"  {number}. {call['module']}.{call['method']}{key}{flags}  ",
            (status + error, status_style),
        )


# A message or body longer than this is cut in the human report: a terminal shows the
# first screens of a 10 MB message no better than none of it (--json prints it whole).
SHOWN_CHARACTERS = 20_000


def _shown(text: str) -> str:
    if len(text) <= SHOWN_CHARACTERS:
        return text
    more = len(text) - SHOWN_CHARACTERS
    return f"{text[:SHOWN_CHARACTERS]}\n... ({more:,} more characters; --json prints it whole)"


def _json(value: Any) -> str:
    return _shown(json.dumps(value, indent=2, ensure_ascii=False))


def _body(body: str) -> Segment:
    try:
        return (_json(json.loads(body)), "") if body else ("(empty body)", "dim")
    except ValueError:
        return (_shown(body), "")
