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


def test_a_warning_of_several_lines_keeps_them_indented_under_its_mark():
    """The [[mocks]] block an offline fetch's warning gives must be pasteable from the dev
    log: its lines kept (each still escaped), not one line of \\x0a."""
    log = DevLog(as_json=False)
    sink = io.StringIO()
    log.out = Terminal(sink)
    hint = 'xhr.fetch of GET https://x.test/ was not sent; add:\n[[mocks]]\nurl = "https://x.test/"'
    log({**EXECUTION, "warnings": [hint + "\x1b[31m"]})  # (EXECUTION: below)
    lines = sink.getvalue().splitlines()
    assert lines[1] == "    ! xhr.fetch of GET https://x.test/ was not sent; add:"
    assert lines[2:] == ["      [[mocks]]", '      url = "https://x.test/"\\x1b[31m']


EXECUTION = {
    "type": "execution",
    "time": "12:00:00",
    "function": "f",
    "file": "f.js",
    "event": "on-request",
    "outcome": "response",
    "duration_ms": 0.2,
    "operations": {"used": 1, "limit": 3},
    "warnings": [],
    "logs": [],
}


def test_execution_lines_are_written_in_batches_and_other_events_at_once():
    """Under load, a write per execution line (a system call, and the reader it wakes)
    was a tenth of a request's cost: on the server's loop, execution lines are written
    together within FLUSH_AFTER; anything else, and everything off the loop, at once."""
    import asyncio

    from pfunc.server.log import FLUSH_AFTER

    class Writes(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[str] = []

        def write(self, text: str) -> int:
            self.calls.append(text)
            return super().write(text)

    sink = Writes()
    log = DevLog(as_json=True, stream=sink)
    log(EXECUTION)  # no loop: at once
    assert len(sink.calls) == 1

    async def on_the_loop() -> tuple[int, int]:
        for _ in range(3):
            log(EXECUTION)
        held = len(sink.calls)
        await asyncio.sleep(FLUSH_AFTER * 5)
        return held, len(sink.calls)

    assert asyncio.run(on_the_loop()) == (1, 2)  # the three lines in one write
    assert sink.calls[1].count("\n") == 3
    log({"type": "reload", "function": "f", "ok": True})
    assert len(sink.calls) == 3


def test_a_reader_that_stops_reading_holds_no_writer_of_the_log():
    """pfunc dev's log is written by a thread of its own: with its stdout a pipe nobody
    read, a write on the server's loop had stopped every request. Lines past what may
    wait are dropped, and said to be, once the reader reads again."""
    import os
    import re
    import threading

    from pfunc.server.log_pump import StdoutPump

    reading, writing = os.pipe()
    stream = os.fdopen(writing, "w", encoding="utf-8")
    pump = StdoutPump(lambda: stream, limit=8 << 10)
    line = "x" * 99 + "\n"

    def log_a_lot() -> None:
        for _ in range(3000):  # 300 KB: more than the pipe holds and the pump keeps
            pump.put(line)

    writer = threading.Thread(target=log_a_lot)
    writer.start()
    writer.join(10)
    assert not writer.is_alive()  # it never waited on the reader
    received = []
    reader = threading.Thread(
        target=lambda: received.extend(iter(lambda: os.read(reading, 1 << 16), b""))
    )
    reader.start()  # the reader reads again
    assert pump.drain(10)
    pump.put("after\n")  # and the log goes on
    assert pump.drain(10)
    stream.close()  # (the end of the pipe: the reader reads to it)
    reader.join(10)
    os.close(reading)
    text = b"".join(received).decode()
    dropped = sum(
        int(n.replace(",", "")) for n in re.findall(r"\(([\d,]+) log lines were dropped", text)
    )
    assert text.count(line) + dropped == 3000 and dropped > 0
    assert text.endswith("after\n")


def test_a_drop_notice_stands_where_the_lines_were_dropped_and_is_written_at_once():
    """A drop during the last write was never said (nothing came after to carry the
    notice), and a notice followed lines queued after the drop."""
    import os
    import threading

    from pfunc.server.log_pump import StdoutPump

    reading, writing = os.pipe()
    stream = os.fdopen(writing, "w", encoding="utf-8")
    pump = StdoutPump(lambda: stream, limit=100_000)
    pump.put("a" * 99_999 + "\n")  # (more than the pipe holds: the writer waits on it)
    pump.put("dropped\n")
    received = []
    reader = threading.Thread(
        target=lambda: received.extend(iter(lambda: os.read(reading, 1 << 16), b""))
    )
    reader.start()
    assert pump.drain(10)
    pump.put("later\n")
    assert pump.drain(10)
    stream.close()
    reader.join(10)
    os.close(reading)
    text = b"".join(received).decode()
    assert text.endswith("a\n(1 log lines were dropped: the output was not read)\nlater\n"), text[
        -120:
    ]
