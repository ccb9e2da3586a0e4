"""The dev log's way to standard output: a thread of its own, so that a reader who stops
reading (a terminal paused with Ctrl-S, a `pfunc dev --json | consumer` that stalls)
holds only that thread. Written on the server's loop, a full pipe had stopped every
request and the stop on SIGTERM with it.

Up to PENDING_LIMIT characters wait; past that, lines are dropped and counted, and the
count is said once the output moves again. At exit the pump gets EXIT_WAIT seconds to
write what waits.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import TextIO

PENDING_LIMIT = 8 << 20
EXIT_WAIT = 2.0


class StdoutPump:
    def __init__(
        self,
        stream: Callable[[], TextIO | None] = lambda: sys.stdout,
        limit: int = PENDING_LIMIT,
        on_closed: Callable[[], None] = lambda: None,
    ) -> None:
        self._stream = stream  # read at each write, as the terminal reads it
        self._limit = limit
        self._on_closed = on_closed  # the reader went away (a closed pipe)
        self._pending: deque[str] = deque()
        self._size = 0
        self._dropped = 0
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def put(self, text: str) -> None:
        """Queue `text` (whole lines) for the output; never waits on the reader."""
        with self._ready:
            if self._closed:
                return
            if self._size + len(text) > self._limit:
                self._dropped += text.count("\n")
                return
            self._pending.append(text)
            self._size += len(text)
            self._ready.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pfunc-dev-log", daemon=True)
                self._thread.start()
                atexit.register(self.drain, EXIT_WAIT)

    def drain(self, seconds: float) -> bool:
        """Wait up to `seconds` for what is queued to be written; whether it was."""
        with self._ready:
            return self._ready.wait_for(lambda: not self._pending, seconds)

    def _run(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._pending)
                taken = list(self._pending)  # (only this thread takes from the left)
                dropped, self._dropped = self._dropped, 0
            text = "".join(taken)
            if dropped:
                text += f"({dropped:,} log lines were dropped: the output was not read)\n"
            try:
                _write(self._stream(), text)
            except (BrokenPipeError, ValueError):  # (ValueError: a closed file)
                with self._ready:
                    self._closed = True
                    self._pending.clear()
                    self._ready.notify_all()
                self._on_closed()
                return
            with self._ready:
                for part in taken:
                    self._pending.popleft()
                    self._size -= len(part)
                self._ready.notify_all()


def _write(stream: TextIO | None, text: str) -> None:
    """`text` to `stream`: to its file descriptor itself where it has one, so that a write
    the reader holds up holds no lock of Python's (the interpreter, stopping, flushes
    sys.stdout, and would wait on that lock for good); as the stream writes elsewhere."""
    if stream is None:
        return
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):  # a test's StringIO, a captured stream
        stream.write(text)
        stream.flush()
        return
    data = text.encode(getattr(stream, "encoding", None) or "utf-8", "backslashreplace")
    while data:
        data = data[os.write(descriptor, data) :]
