"""The worker's end of its pipes to the host (python_worker.py, python_api.py): JSON lines
out, JSON lines in, and each call's answer handed to the code that made it.

A call waits for the host's answer, which carries the call's id. Two things make the next
line read not that answer: the handler's own threads calling at the same time (each is
answered in turn, and one of them reads the pipe for all), and a call whose wait ended
early (the handler's signal handler raised in it), whose answer still comes. So one
thread reads at a time, keeps the answers other waiting calls are owed, drops those nobody
waits for any more, and keeps any other message for the worker's own loop.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from pfunc.sandbox.pipes import read_soon, wait_readable


class Connection:
    def __init__(self, answered: Callable[[dict[str, Any]], Any]) -> None:
        self.execution: Any = None  # the execution in progress (python_api._Execution)
        self.incoming = -1  # the descriptor the host writes to (set by main())
        self.outgoing: Any = None
        self.sending = threading.Lock()
        self._answered = answered  # a reply as the call's value, or its error raised
        self._ids = itertools.count(1)  # (next() on it is atomic: threads call too)
        self._buffer = b""
        self._reading = threading.Lock()  # one reader of the pipe at a time
        self._waiting: set[int] = set()  # calls made and not yet answered
        self._answers: dict[int, dict[str, Any]] = {}  # read for a call another thread made
        self._others: deque[dict[str, Any]] = deque()  # for the worker's loop (receive)

    def send(self, message: dict[str, Any]) -> None:
        try:
            text = json.dumps(message, default=str, allow_nan=False)
        except ValueError:  # a NaN in what the handler logged or warned: say so instead
            text = json.dumps({**message, "logs": [], "warnings": ["a log held NaN"]})
        with self.sending:  # a handler's own threads log too: one line at a time
            self.outgoing.write(text + "\n")
            self.outgoing.flush()

    def receive(self) -> dict[str, Any]:
        """The next message that is not a call's answer (the worker's loop: load, run)."""
        with self._reading:
            while not self._others:
                self._sort(self._read(), None)
            return self._others.popleft()

    def call(self, module: str, method: str, args: list[Any], settled: bool) -> Any:
        """Make a call and wait for its answer: its value, or its error raised."""
        call_id = next(self._ids)
        self._waiting.add(call_id)
        try:
            self.send(
                {
                    "op": "call",
                    "id": call_id,
                    "module": module,
                    "method": method,
                    "args": args,
                    "settled": settled,
                }
            )
            while True:
                with self._reading:
                    reply = self._answers.pop(call_id, None) or self._sort(self._read(), call_id)
                if reply is not None:
                    return self._answered(reply)
        finally:
            self._waiting.discard(call_id)  # answered, or its wait ended early
            self._answers.pop(call_id, None)

    def _sort(self, message: dict[str, Any], call_id: int | None) -> dict[str, Any] | None:
        """`message` if it answers `call_id`; else kept for whoever is owed it."""
        if message.get("op") != "reply":
            self._others.append(message)
        elif message.get("id") == call_id:
            return message
        elif message.get("id") in self._waiting:
            self._answers[message["id"]] = message
        return None  # (an answer nobody waits for any more is dropped)

    def _read(self) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            chunk = read_soon(self.incoming)
            if chunk is None:
                wait_readable(self.incoming, None)
                continue
            if not chunk:
                os._exit(0)  # the host went away
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message
