"""The dev server's human log line: written as text, with what a handler or a client
chose (console lines, channel names) unable to rewrite or restyle the terminal."""

from __future__ import annotations

import io

from pfunc.server.log import DevLog
from pfunc.terminal import Terminal


def test_control_characters_are_shown_escaped():
    log = DevLog(as_json=False)
    sink = io.StringIO()
    log.out = Terminal(sink)
    log(
        {
            "type": "execution",
            "time": "12:00:00",
            "function": "f",
            "file": "f.js",
            "event": "before-publish",
            "outcome": "ok",
            "duration_ms": 1.0,
            "operations": {"used": 1, "limit": 3},
            "warnings": [],
            "channel": "room\x07",
            "logs": [{"level": "log", "text": "half\rlater \x1b[31mred"}],
        }
    )
    lines = sink.getvalue().splitlines()
    assert lines[0].startswith("12:00:00 f") and "room\\x07" in lines[0] and "ok" in lines[0]
    assert lines[1] == "    log   half\\x0dlater \\x1b[31mred"
