"""Human-readable reports of a Result, with rich.

Colour follows rich's rules: none when stdout is not a terminal or NO_COLOR is set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from pfunc.events import KINDS
from pfunc.result import PublishReport, Result

_OUTCOME_STYLE = {
    "ok": "bold green",
    "abort": "bold yellow",
    "response": "bold cyan",
    "error": "bold red",
}
_LEVEL_STYLE = {"log": "", "info": "cyan", "warn": "yellow", "error": "red", "debug": "dim"}
# Off a terminal (CI logs, pipes) nothing is cut: rich would crop tree rows at 80 columns.
_UNCUT_WIDTH = 100_000


def report_console() -> Console:
    """A console for reports: the terminal's width on a terminal, never cut off one."""
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = _UNCUT_WIDTH
    return console


def render_result(result: Result, console: Console | None = None) -> None:
    console = console or report_console()
    style = _OUTCOME_STYLE.get(result.outcome, "bold")
    header = Text()
    header.append(f" {result.outcome.upper()} ", style=f"reverse {style}")
    header.append(f"  {result.event} · {result.function} · {result.duration_ms:.1f} ms")
    console.print(header)

    if result.is_message_event and KINDS[result.event].trigger == "presence":
        # A presence change happened whatever the handler did: nothing to deliver.
        console.print(f"\n[bold]Presence event[/bold] on {escape(result.channel or '')}")
        console.print(_json(result.message))
    elif result.is_message_event:
        state = "delivered" if result.delivered else "not delivered"
        console.print(f"\n[bold]Message[/bold] on {escape(result.channel or '')} ({state})")
        console.print(_json(result.message))
    elif result.response is not None:
        response = result.response
        console.print(f"\n[bold]Response[/bold] {response['status']}")
        for name, value in response["headers"].items():
            console.print(f"  {escape(name)}: {escape(value)}")
        console.print(_body(response["body"]))
    if result.outcome == "abort":
        reason = result.abort_reason if result.abort_reason is not None else "(no reason)"
        console.print(f"[bold]Abort reason:[/bold] {escape(reason)}")

    if result.logs:
        console.print("\n[bold]Console[/bold]")
        for entry in result.logs:
            time_text = entry["time"][11:23]
            level = entry["level"]
            line = Text(f"  {time_text} ")
            line.append(f"{level:<5}", style=_LEVEL_STYLE.get(level, ""))
            line.append(f" {entry['text']}")
            console.print(line)

    _render_operations(console, result.operations)

    if result.warnings:
        console.print("\n[bold yellow]Warnings[/bold yellow]")
        for warning in result.warnings:
            console.print(Text(f"  ! {warning}", style="yellow"))

    if result.error is not None:
        error = result.error
        console.print("\n[bold red]Error[/bold red]")
        console.print(Text(f"  {error.type}: {error.message}", style="red"))
        if error.file and error.line:
            frame = code_frame(Path(error.file), error.line, error.column or 1)
            if frame:
                console.print(Text(frame))
        if error.stack:
            console.print(Text(error.stack, style="dim"))

    if result.triggered:
        tree = Tree("[bold]Triggered[/bold]")
        for report in result.triggered:
            _add_report(tree, report)
        console.print()
        console.print(tree)


def render_publish(report: PublishReport, console: Console | None = None) -> None:
    """A publish and the tree of executions it caused."""
    console = console or report_console()
    tree = Tree(_report_label(report))
    for result in report.executions:
        _add_execution(tree, result)
    console.print(tree)
    if report.delivered:
        console.print("\n[bold]Delivered message[/bold]")
        console.print(_json(report.message))


def _report_label(report: PublishReport) -> Text:
    label = Text()
    label.append(f"{report.verb} → {report.channel}", style="bold")
    label.append(f" (hop {report.hop}) ")
    if report.dropped:
        label.append(report.dropped, style="yellow")
        label.overflow = "fold"
    elif report.delivered:
        delivered = "reached functions only" if report.verb == "fire" else "delivered"
        label.append(f"{delivered}, timetoken {report.timetoken}", style="green")
        if report.pushes:
            label.append(f"; {len(report.pushes)} mobile push(es) would be sent", style="magenta")
    else:
        label.append(f"not delivered: stopped by {report.stopped_by}", style="yellow")
    return label


def _add_report(parent: Tree, report: PublishReport) -> None:
    branch = parent.add(_report_label(report))
    for result in report.executions:
        _add_execution(branch, result)


def _add_execution(parent: Tree, result: Result) -> None:
    style = _OUTCOME_STYLE.get(result.outcome, "bold")
    label = Text()
    label.append(f" {result.outcome.upper()} ", style=f"reverse {style}")
    used, limit = result.operations.get("used", 0), result.operations.get("limit")
    ops = f"{used}/{limit}" if isinstance(limit, int) else str(used)
    label.append(f" {result.event} · {result.function} · {result.duration_ms:.1f} ms · ops {ops}")
    lines = [label]
    if result.outcome == "abort" and result.abort_reason:
        lines.append(Text(f"abort: {result.abort_reason}", style="yellow"))
    for entry in result.logs:
        lines.append(Text(f"{entry['level']:<5} {entry['text']}", style="dim"))
    for warning in result.warnings:
        lines.append(Text(f"! {warning}", style="yellow", overflow="fold"))
    if result.error is not None:
        where = f" ({result.error.file}:{result.error.line})" if result.error.line else ""
        lines.append(Text(f"{result.error.type}: {result.error.message}{where}", style="red"))
    node = parent.add(Group(*lines))
    for report in result.triggered:
        _add_report(node, report)


def _render_operations(console: Console, operations: dict[str, Any]) -> None:
    limit = operations.get("limit")
    used = operations.get("used", 0)
    if isinstance(limit, int):
        summary = f"{used} of {limit}"
    elif isinstance(limit, dict):
        summary = (
            f"{used} (per-kind limits: " + ", ".join(f"{k} {v}" for k, v in limit.items()) + ")"
        )
    else:
        summary = f"{used} (no limit)"
    console.print(f"\n[bold]Operations[/bold] {summary}")
    for number, call in enumerate(operations.get("calls", []), start=1):
        key = f" {call['key']}" if "key" in call else ""
        flags = " (not awaited)" if call.get("unawaited") else ""
        status = call.get("status", "")
        status_style = {"ok": "green", "error": "red", "refused": "bold red"}.get(status, "")
        line = Text(f"  {number}. {call['module']}.{call['method']}{key}{flags}  ")
        line.append(status, style=status_style)
        if call.get("error"):
            line.append(f": {call['error']}", style=status_style)
        console.print(line)


def _json(value: Any) -> Text:
    return Text(json.dumps(value, indent=2, ensure_ascii=False))


def _body(body: str) -> Text:
    try:
        return _json(json.loads(body)) if body else Text("(empty body)", style="dim")
    except ValueError:
        return Text(body)


def code_frame(path: Path, line: int, column: int, context: int = 2) -> str | None:
    """Lines around `line` of the file, numbered, with a caret under `column`."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    if not 1 <= line <= len(lines):
        return None
    first, last = max(1, line - context), min(len(lines), line + context)
    width = len(str(last))
    out = []
    for number in range(first, last + 1):
        marker = ">" if number == line else " "
        out.append(f"  {marker} {number:>{width}} | {lines[number - 1]}")
        if number == line:
            out.append(f"    {' ' * width} | {' ' * (column - 1)}^")
    return "\n".join(out)
