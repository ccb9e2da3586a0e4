"""A Python worker's report made the host's: its error's stack lines written from the
frames it sends, under the path the report names the handler by, and text a handler
wrote as UTF-8 can carry it."""

from __future__ import annotations

import os
from typing import Any

from pfunc import jsonio


def with_stack(error: Any, display_path: str) -> Any:
    """A worker's error with its stack lines written from its frames ([function, line,
    column, a helper module's path beside the handler or None], outermost first), under
    the path the report names the handler by (a helper's beside it), innermost first as
    a JavaScript error's (it is under the error's own line); a run of the same line (deep
    recursion) is said once."""
    if not isinstance(error, dict):
        return error
    # A line and column only as the report can place them (a handler may raise a
    # SyntaxError of its own with any position in it).
    error["line"], error["column"] = _position(error.get("line")), _position(error.get("column"))
    frames = error.pop("frames", None)
    lines: list[str] = []
    repeats = 0
    folder = os.path.dirname(display_path)
    for frame in reversed(frames) if isinstance(frames, list) else []:
        if not (isinstance(frame, list) and len(frame) == 4):
            continue  # not the worker's shape: a handler that reached the pipe
        name, line, column, helper = frame
        shown = os.path.join(folder, helper) if isinstance(helper, str) else display_path
        where = f"{line}:{column}" if column is not None else f"{line}"
        text = f"    at {' '.join(str(name).split())} ({shown}:{where})"  # one line
        if lines and text == lines[-1]:
            repeats += 1
            continue
        if repeats:
            lines.append(f"    ... the line above {repeats} more times")
            repeats = 0
        lines.append(text)
    if repeats:
        lines.append(f"    ... the line above {repeats} more times")
    error["stack"] = "\n".join(lines)
    return error


def _position(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def utf8_text(text: Any) -> Any:
    """Text a handler wrote, with any lone surrogate (UTF-8 cannot carry one) as U+FFFD."""
    if not isinstance(text, str):
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return jsonio.well_formed(text)
    return text
