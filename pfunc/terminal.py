"""Styled text for the terminal: what `pfunc run`, `pfunc test` and the dev log print.

A few ANSI styles and a tree, written directly: rich cost 15 to 25 ms of imports on
every `pfunc run` and 70 us per dev-log line, for output this small. Styles follow the
rules rich followed: none off a terminal (FORCE_COLOR counts as one) or with TERM dumb or
unknown; NO_COLOR (set and not empty) leaves bold, dim and reverse but no colour. Lines
are never cut (CI logs keep everything; a terminal wraps them).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TextIO

_ATTRIBUTES = {"bold": "1", "dim": "2", "reverse": "7"}
_COLOURS = {
    "red": "31",
    "green": "32",
    "yellow": "33",
    "magenta": "35",
    "cyan": "36",
}
# Control characters in text a handler or a client chose (a \r would overwrite the line,
# an escape sequence restyle the terminal) are shown escaped; tab stays, and newline
# too unless the text must stay on one line.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0, 9), *range(11, 32), *range(127, 160))}
_CONTROL_ONE_LINE = {**_CONTROL, 10: "\\x0a"}
# In a shell's $'...', \xHH is a byte: U+0080..U+009F are written \uHHHH there, which
# the shell writes as the character's UTF-8 bytes.
_SHELL_CONTROL = {**_CONTROL_ONE_LINE, **{c: f"\\u{c:04x}" for c in range(128, 160)}}


def visible(text: str) -> str:
    """`text` with its control characters escaped but its line breaks and tabs kept: a
    message that names a file or a key a user chose, which may hold them."""
    return text.translate(_CONTROL)


def one_line(text: str) -> str:
    """`text` on one line with its control characters escaped (\\x1b), as a key or name a
    handler chose is shown wherever it is printed."""
    return text.translate(_CONTROL_ONE_LINE)


def shell_word(text: str) -> str:
    """`text` quoted to be pasted into a shell: POSIX quoting, or $'...' (bash, zsh, and
    POSIX since 2024) when it holds a control character, written as an escape."""
    import shlex

    if one_line(text) == text:  # no control character
        return shlex.quote(text)
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").translate(_SHELL_CONTROL)
    return f"$'{escaped}'"


# A styled segment: (text, style), the style space-separated names of _ATTRIBUTES and _COLOURS.
Segment = tuple[str, str]


def _codes(stream: TextIO | None) -> dict[str, str]:
    """The style names this stream is written with, and their ANSI codes."""
    forced = bool(os.environ.get("FORCE_COLOR"))
    isatty = getattr(stream, "isatty", None)
    try:
        terminal = forced or bool(isatty and isatty())
    except ValueError:  # a closed stream
        terminal = False
    if not terminal or os.environ.get("TERM", "").lower() in ("dumb", "unknown"):
        return {}
    if os.environ.get("NO_COLOR"):
        return _ATTRIBUTES
    return {**_ATTRIBUTES, **_COLOURS}


class Terminal:
    """Writes lines of styled segments to one stream (stdout unless told)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._codes = _codes(self.stream)
        self.quiet = False  # nobody reads any more (a closed pipe): write nothing
        # Lines kept to be written later in one go by the owner (the dev log), or None.
        self.held: list[str] | None = None

    @property
    def stream(self) -> TextIO | None:
        # Read at each write, so a test's captured stdout (pytest's capsys) is honoured.
        # None when the process was started with its stdout closed.
        return self._stream if self._stream is not None else sys.stdout

    def paint(self, text: str, style: str = "", one_line: bool = False) -> str:
        """`text` in `style`, its control characters escaped; plain when styles are off."""
        if not text.isprintable():  # (a C scan; translating costs a lookup a character)
            text = text.translate(_CONTROL_ONE_LINE if one_line else _CONTROL)
        if not style or not self._codes or not text:
            return text
        codes = ";".join(self._codes[name] for name in style.split() if name in self._codes)
        return f"\x1b[{codes}m{text}\x1b[0m" if codes else text

    def lines(self, segments: Iterable[Segment]) -> list[str]:
        """The segments as painted lines: a style never runs across a line break, so
        nothing put before a line (a tree's guides) takes on the style."""
        lines = [""]
        for text, style in segments:
            first, *rest = text.split("\n")
            lines[-1] += self.paint(first, style)
            lines += [self.paint(part, style) for part in rest]
        return lines

    def line(self, *segments: Segment | str) -> None:
        """One line (or several, if the text holds newlines) of segments."""
        self.write("\n".join(self.lines((s, "") if isinstance(s, str) else s for s in segments)))

    def write(self, text: str) -> None:
        """Already painted text, as a line."""
        stream = self.stream
        if self.quiet or stream is None:
            return
        if self.held is not None:
            self.held.append(text + "\n")
            return
        stream.write(text + "\n")
        stream.flush()


class Tree:
    """A label (one or more lines) and branches below it, drawn with box guides."""

    def __init__(self, label: list[list[Segment]]) -> None:
        self.label = label
        self.children: list[Tree] = []

    def add(self, label: list[list[Segment]]) -> Tree:
        child = Tree(label)
        self.children.append(child)
        return child

    def render(self, terminal: Terminal) -> list[str]:
        return self._lines(terminal, "", "")

    def _lines(self, terminal: Terminal, first: str, rest: str) -> list[str]:
        lines = []
        for number, label_line in enumerate(self.label):
            for index, text in enumerate(terminal.lines(label_line)):
                lead = first if number == 0 and index == 0 else rest
                lines.append(lead + text)
        for index, child in enumerate(self.children):
            last = index == len(self.children) - 1
            lines += child._lines(
                terminal, rest + ("└── " if last else "├── "), rest + ("    " if last else "│   ")
            )
        return lines
