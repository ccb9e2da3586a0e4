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
        # Lines, and in their place among them [n]: a notice of n lines dropped there
        # ((n,) once the writer has taken it).
        self._pending: deque[str | list[int] | tuple[int]] = deque()
        self._size = 0
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def put(self, text: str) -> None:
        """Queue `text` (whole lines) for the output; never waits on the reader. Lines
        past the limit are dropped, and a notice takes their place in the output."""
        with self._ready:
            if self._closed:
                return
            if self._size + len(text) > self._limit:  # as many whole lines as fit
                room = self._limit - self._size
                cut = text.rfind("\n", 0, room) + 1 if room > 0 else 0
                self._drop(text[cut:].count("\n"))
                text = text[:cut]
            if text:
                self._pending.append(text)
                self._size += len(text)
            self._ready.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pfunc-dev-log", daemon=True)
                self._thread.start()
                atexit.register(self.drain, EXIT_WAIT)

    def _drop(self, lines: int) -> None:
        """Count dropped lines in the notice at the queue's end, or a new one there."""
        if not lines:
            return
        last = self._pending[-1] if self._pending else None
        if isinstance(last, list):
            last[0] += lines
        else:
            self._pending.append([lines])

    def drain(self, seconds: float) -> bool:
        """Wait up to `seconds` for what is queued to be written; whether it was."""
        with self._ready:
            return self._ready.wait_for(lambda: not self._pending, seconds)

    def _run(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._pending)
                # Only this thread takes from the left. A notice taken is made a tuple: its
                # count is read now, and drops from now on go to a new one (_drop).
                for index, item in enumerate(self._pending):
                    if isinstance(item, list):
                        self._pending[index] = (item[0],)
                taken = [
                    item if isinstance(item, str) else _notice(item[0]) for item in self._pending
                ]
            text = "".join(taken)
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
                for _ in taken:
                    item = self._pending.popleft()
                    self._size -= len(item) if isinstance(item, str) else 0
                self._ready.notify_all()


def _notice(dropped: int) -> str:
    return f"({dropped:,} log lines were dropped: the output was not read)\n"


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
