"""How a Python handler's exception is reported by its worker (python_worker.py): its
type and message, its frames trimmed to the handler's own code (its file and the helper
modules beside it, never Python's or pfunc's), and the line its code frame shows. The host
writes the stack lines from these (python_report.py)."""

from __future__ import annotations

import json
import linecache
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from pfunc.result import clipped_text
from pfunc.sandbox.python_rejections import HandlerError

# Frames in these folders are Python's and pfunc's, never a handler's, wherever it lives.
_NOT_THE_HANDLERS = tuple(
    os.path.join(os.path.abspath(folder), "")
    for folder in {sys.prefix, sys.base_prefix, str(Path(__file__).parent.parent)}
)


_PARSED_BODIES = ("request.json()", "xhr response.json()")  # the json() methods


def error_info(error: BaseException, handler_file: str) -> dict[str, Any]:
    """The exception with its traceback trimmed to the handler's own code: its file, and
    the modules beside it (its project's helpers), never Python's or pfunc's."""
    folder = os.path.join(os.path.dirname(handler_file), "")
    kept: list[tuple[traceback.FrameSummary, str | None]] = []  # None: the handler's file
    for frame in traceback.extract_tb(error.__traceback__):
        path = os.path.abspath(frame.filename)
        if path == handler_file:
            kept.append((frame, None))
        elif (
            path.startswith(folder)
            and not path.startswith(_NOT_THE_HANDLERS)
            and not frame.filename.startswith("<")  # <string>, <frozen ...>: no file
        ):
            kept.append((frame, os.path.relpath(path, folder)))  # a helper beside it
    own = [frame for frame, helper in kept if helper is None]
    try:
        message = str(error)
    except Exception as unreadable:  # the exception's own __str__ raises: say so, not crash
        message = f"(its str() raised {type(unreadable).__name__})"
    message = clipped_text(message)  # sent as the report keeps it: megabytes are its start
    # Each frame as [function, line, column, helper's path or None]: the host writes the
    # stack lines with the handler's path as the report shows it (the worker knows only
    # the absolute one).
    info: dict[str, Any] = {
        "type": type(error).__name__,
        "message": message,
        "frames": [[frame.name, frame.lineno, _column(frame), helper] for frame, helper in kept],
    }
    if type(error) is HandlerError:  # a rejection with a name of its own keeps it
        info["type"] = "Error"
    if isinstance(error, json.JSONDecodeError) and message.startswith(_PARSED_BODIES):
        info["type"] = "SyntaxError"  # JSON.parse's, as JavaScript's json() methods report it
    if isinstance(error, SystemExit):
        info["message"] = (
            f"the handler called sys.exit({'' if error.code is None else repr(error.code)}); "
            "a handler ends by returning (after request.ok(), response.send()...), not by "
            "exiting"
        )
    elif getattr(error, "code", None):
        info["code"] = error.code
    if own:  # the code frame: the handler's own line
        info["line"] = own[-1].lineno
        info["column"] = _column(own[-1])
    if isinstance(error, BaseExceptionGroup):  # (a TaskGroup's: its message names none)
        _name_what_failed(info, error, handler_file)
    return info


def _name_what_failed(info: dict[str, Any], group: BaseExceptionGroup, handler_file: str) -> None:
    """A group's report names the exceptions in it (up to 3), the first one's frames inside
    the group's, and its line (where the handler's code failed, not where it was awaited)."""
    leaves = _leaves(group)
    named = [error_info(leaf, handler_file) for leaf in leaves[:3]]
    counted = f"{len(leaves) - 3}{'+' if len(leaves) > MOST_LEAVES else ''}"
    more = f"; and {counted} more" if len(leaves) > 3 else ""
    info["message"] += ": " + "; ".join(f"{i['type']}: {i['message']}" for i in named) + more
    if named:
        info["frames"] += named[0]["frames"]  # outermost first, as the traceback lists them
        if named[0].get("line"):  # (raised in the handler's own file, not a helper's)
            info["line"], info["column"] = named[0]["line"], named[0].get("column")


MOST_LEAVES = 1000  # a group's exceptions are counted this far


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    """The exceptions in a group and the groups in it, in order, each once, and at most
    MOST_LEAVES + 1: without recursion (a group nested thousands deep) and without walking
    a subgroup twice (one held twice at each of 40 levels counts 2**40 exceptions)."""
    leaves: list[BaseException] = []
    seen: set[int] = set()
    waiting: list[BaseException] = [group]
    while waiting and len(leaves) <= MOST_LEAVES:
        item = waiting.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, BaseExceptionGroup):
            waiting.extend(reversed(item.exceptions))
        else:
            leaves.append(item)
    return leaves


def _column(frame: traceback.FrameSummary) -> int | None:
    """Where on its line a frame is, in characters from 1 (Python 3.11 counts UTF-8 bytes
    from 0); None when Python does not say."""
    column = getattr(frame, "colno", None)
    if column is None or frame.lineno is None:
        return None
    text = linecache.getline(frame.filename, frame.lineno)
    return len(text.encode()[:column].decode("utf-8", "replace")) + 1
