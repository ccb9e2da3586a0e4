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


COLOURED = "\x1b[1;32mOK\x1b[0m done\n"
BOLD_ONLY = "\x1b[1mOK\x1b[0m done\n"
PLAIN = "OK done\n"


@pytest.mark.parametrize(
    ("tty", "env", "expected"),
    [
        (True, {}, COLOURED),
        (True, {"NO_COLOR": "1"}, BOLD_ONLY),  # no colour, as no-color.org asks; bold stays
        (True, {"NO_COLOR": ""}, COLOURED),  # set but empty: ignored
        (True, {"TERM": "dumb"}, PLAIN),
        (True, {"TERM": "unknown"}, PLAIN),
        (False, {}, PLAIN),
        (False, {"FORCE_COLOR": "1"}, COLOURED),
        (False, {"FORCE_COLOR": "1", "NO_COLOR": "1"}, BOLD_ONLY),
        (False, {"FORCE_COLOR": "1", "TERM": "dumb"}, PLAIN),
    ],
)
def test_styles_follow_the_terminal_and_the_environment(monkeypatch, tty, env, expected):
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stream = FakeTty() if tty else io.StringIO()
    Terminal(stream).line(("OK", "bold green"), " done")
    assert stream.getvalue() == expected


def test_a_closed_stdout_is_not_an_error(monkeypatch):
    monkeypatch.setattr("sys.stdout", None)  # what a process started with >&- has
    out = Terminal()
    out.line("nobody reads this")
    render_publish(_report(), out)


def test_a_style_never_runs_across_a_line_break(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    out = Terminal(io.StringIO())
    root = Tree([[("root", "")]])
    root.add([[("one\ntwo", "dim")]])
    root.add([[("last", "")]])
    assert root.render(out) == [
        "root",
        "├── \x1b[2mone\x1b[0m",
        "│   \x1b[2mtwo\x1b[0m",  # the guide itself is not dimmed
        "└── last",
    ]


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


def _report(text: str = "hi") -> PublishReport:
    return PublishReport(
        verb="publish",
        channel="room",
        hop=0,
        message={"text": text},
        executions=[_result()],
        delivered=True,
        timetoken="17000000000000000",
    )


def test_a_publish_report_is_drawn_uncut(capsys):
    long_text = "x" * 500
    render_publish(_report(long_text))
    out = capsys.readouterr().out
    assert out.startswith("publish → room (hop 0) delivered, timetoken 17000000000000000\n")
    assert "└──  OK  before-publish · f.js · 1.0 ms · ops 0/3" in out
    assert "    log   one\n    two" in out  # a log line's own newline, under its branch
    assert long_text in out  # nothing is cut, whatever the width


def test_a_publish_no_function_ran_on_says_so(capsys):
    report = _report()
    report.executions = []
    render_publish(report)
    out = capsys.readouterr().out
    assert "  no function runs on room for this publish\n" in out
    render_publish(_report())
    assert "no function runs" not in capsys.readouterr().out


def test_a_shell_word_pastes_back_as_the_same_text():
    """What `pfunc kv list` prints as the next page's --after: bash reads it back as the
    key itself (U+0085 as \\x85 was the byte 0x85, another key)."""
    import shutil
    import subprocess

    from pfunc.terminal import shell_word

    bash = shutil.which("bash")
    assert bash is not None
    for key in ("plain key", "it's", "esc\x1b[31mRED", "a\x85b", "nl\nx", "a'\x01\\b", "é\x9f"):
        read = subprocess.run([bash, "-c", f"printf %s {shell_word(key)}"], capture_output=True)
        assert read.stdout == key.encode(), (key, shell_word(key))
