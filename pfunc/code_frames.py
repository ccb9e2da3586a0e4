"""Code frames: the lines around an error's line, numbered, with a caret under its column,
for `pfunc run`'s report, the dev log and the console."""

from __future__ import annotations

from pathlib import Path

from pfunc.result import Result

# Columns of a line a frame shows (around the error's column in a longer line).
FRAME_COLUMNS = 160


def ran_frame(result: Result, source: str) -> str | None:
    """The frame of an execution's error in the handler's own file, from `source`, the
    code the execution ran (the file may have been saved since: a save that fails to load
    leaves the last good version serving)."""
    error = result.error
    if error is None or not error.line or error.file != result.function:
        return None
    return code_frame(Path(error.file), error.line, error.column or 1, text=source)


def error_frame(result: Result, root: Path | None = None) -> str | None:
    """The code frame of an execution's error: the one made from the code it ran, else
    (a load that failed, an error in another file) from the file (`root` for a relative
    path)."""
    error = result.error
    if error is None or not error.file or not error.line:
        return None
    path = Path(error.file)
    if root is not None and not path.is_absolute():
        path = root / path
    if result.frame is not None:
        return result.frame
    return code_frame(path, error.line, error.column or 1)


def code_frame(
    path: Path, line: int, column: int, context: int = 2, text: str | None = None
) -> str | None:
    """Lines around `line` of the file (or of `text`, its code as it ran), numbered, with
    a caret under `column`."""
    if text is None:
        try:
            # A file that is not UTF-8 (the load error says where) still shows its lines.
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    lines = text.splitlines()
    if line > len(lines) or (line == len(lines) and not lines[-1].strip()):
        # "Unexpected end of input", past the last line: the end of the last line of code
        code = [number for number, text in enumerate(lines, 1) if text.strip()]
        if not code:
            return None
        line = code[-1]
        column = len(lines[line - 1]) + 1
    if not 1 <= line <= len(lines):
        return None
    first, last = max(1, line - context), min(len(lines), line + context)
    width = len(str(last))
    # A minified or bundled handler is a few very long lines: each is shown in the same
    # window of columns, around the error's.
    longest = max(len(lines[number - 1]) for number in range(first, last + 1))
    start = max(0, min(column - 1 - FRAME_COLUMNS // 2, longest - FRAME_COLUMNS))
    out = []
    for number in range(first, last + 1):
        marker = ">" if number == line else " "
        out.append(f"  {marker} {number:>{width}} | {_window(lines[number - 1], start)}")
        if number == line:
            caret = column - 1 - start + (1 if start else 0)
            out.append(f"    {' ' * width} | {' ' * caret}^")
    return "\n".join(out)


def _window(text: str, start: int) -> str:
    """FRAME_COLUMNS characters of `text` from `start`, an ellipsis for each cut end."""
    if len(text) <= FRAME_COLUMNS and not start:
        return text
    shown = text[start : start + FRAME_COLUMNS]
    return ("…" if start else "") + shown + ("…" if start + FRAME_COLUMNS < len(text) else "")
