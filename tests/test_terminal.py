"""The terminal writer behind `pfunc run`'s report, `pfunc test`'s summary and the dev
log: colour only where it belongs, text a handler chose unable to restyle the terminal,
and a publish's tree drawn in full."""

from __future__ import annotations

import io

import pytest

from pfunc.render import render_publish
from pfunc.result import PublishReport, Result
from pfunc.terminal import Terminal, Tree


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "env", "coloured"),
    [
        (FakeTty(), {}, True),
        (FakeTty(), {"NO_COLOR": "1"}, False),
        (FakeTty(), {"TERM": "dumb"}, False),
        (io.StringIO(), {}, False),
        (io.StringIO(), {"FORCE_COLOR": "1"}, True),
    ],
)
def test_colour_only_on_a_terminal_unless_told(monkeypatch, stream, env, coloured):
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = Terminal(stream)
    out.line(("OK", "bold green"), " done")
    assert ("\x1b[1;32mOK\x1b[0m done\n" if coloured else "OK done\n") == stream.getvalue()


def test_control_characters_are_escaped_but_lines_kept():
    sink = io.StringIO()
    Terminal(sink).line("a\x1b[31mred\rback\n\tnext")
    assert sink.getvalue() == "a\\x1b[31mred\\x0dback\n\tnext\n"


def test_a_one_line_paint_escapes_newlines_too():
    assert Terminal(io.StringIO()).paint("two\nlines", one_line=True) == "two\\x0alines"


def test_tree_guides_follow_the_branches():
    root = Tree([[("root", "")]])
    first = root.add([[("first", "")], [("its second line", "")]])
    first.add([[("nested", "")]])
    root.add([[("last", "")]])
    assert root.render(Terminal(io.StringIO())) == [
        "root",
        "├── first",
        "│   its second line",
        "│   └── nested",
        "└── last",
    ]


def _result(**fields) -> Result:
    base = {
        "function": "f.js",
        "event": "before-publish",
        "family": "message",
        "outcome": "ok",
        "duration_ms": 1.0,
        "operations": {"used": 0, "limit": 3, "calls": []},
        "logs": [{"level": "log", "text": "one\ntwo", "time": "2026-01-01T00:00:00.000Z"}],
    }
    return Result(**{**base, **fields})


def test_a_publish_report_is_drawn_uncut(capsys):
    long_text = "x" * 500
    report = PublishReport(
        verb="publish",
        channel="room",
        hop=0,
        message={"text": long_text},
        executions=[_result()],
        delivered=True,
        timetoken="17000000000000000",
    )
    render_publish(report)
    out = capsys.readouterr().out
    assert out.startswith("publish → room (hop 0) delivered, timetoken 17000000000000000\n")
    assert "└──  OK  before-publish · f.js · 1.0 ms · ops 0/3" in out
    assert "    log   one\n    two" in out  # a log line's own newline, under its branch
    assert long_text in out  # nothing is cut, whatever the width
