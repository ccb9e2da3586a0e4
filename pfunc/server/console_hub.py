"""The dev console's memory and its live stream: the last 1,000 executions (and requests
that reached no function), and one bounded queue per open console page.

Cheap when no console is open: an execution is one deque append of the finished Result
(serialised only when a page asks). A slow page never holds the server back: its queue
keeps the newest entries and counts what it dropped, the page is told, and nothing else
waits for it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pfunc.events import IntervalEvent, MessageEvent, RequestEvent
from pfunc.result import Result

KEEP = 1000  # entries kept for pages that open (or reload) later
KEEP_BYTES = 64 << 20  # and at most about this much of their text (logs, errors, bodies)
CLIENT_QUEUE = 1000  # entries a slow page may fall behind before the oldest are dropped
KV_WRITES = {"set", "setItem", "removeItem", "incrCounter"}


def event_json(event: Any) -> dict[str, Any] | None:
    """The event as the handler received it, in the shape the console and scenarios use."""
    if isinstance(event, MessageEvent):
        return {
            "kind": event.kind,
            "channel": event.channel,
            "message": event.message,
            "params": event.params,
            "meta": event.meta,
            "verb": event.verb,
            "hop": event.hop,
        }
    if isinstance(event, RequestEvent):
        return {
            "kind": event.kind,
            "method": event.method,
            "path": event.path,
            "query": event.query,
            "headers": event.headers,
            "body": event.body,
        }
    if isinstance(event, IntervalEvent):
        return {"kind": event.kind}
    return None


@dataclass
class Entry:
    """One execution (or one request no function served), as the console lists it."""

    id: int
    at_ms: int
    result: Result | None = None
    request: dict[str, Any] | None = None
    frame: str | None = None  # the error's code frame, read when the execution ended
    _text: str | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        if self.result is None:
            # The request's own "type" (unrouted, not-emulated) is kept as "reason": the
            # entry's type is what the page dispatches on.
            request = dict(self.request or {})
            reason = request.pop("type", None)
            return {"id": self.id, "at": self.at_ms, **request, "type": "request", "reason": reason}
        result = self.result
        data = {
            "id": self.id,
            "at": self.at_ms,
            "type": "execution",
            "event": event_json(result.received),
            "observed": result.observed,
            "result": result.to_json(),
        }
        if result.family == "request":  # what its client was answered, failed or not
            data["status"] = result.http_status
        if self.frame is not None:
            data["frame"] = self.frame
        return data

    def text(self) -> str:
        """The SSE data line, serialised once however many pages watch."""
        if self._text is None:
            self._text = json.dumps(self.to_json(), ensure_ascii=False, default=str)
        return self._text


class Client:
    """One open console page: what it has not been sent yet, newest kept."""

    def __init__(self) -> None:
        self.queue: deque[tuple[str, str]] = deque(maxlen=CLIENT_QUEUE)
        self.dropped = 0
        self.wake = asyncio.Event()

    def push(self, kind: str, text: str) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1
        self.queue.append((kind, text))
        self.wake.set()


def weight(entry: Entry) -> int:
    """About how much an entry holds: its result's parts that can be large (the message
    as received and as it left, logs, error, response, operations' records, what the
    handler observed), each walked only as far as the whole budget."""
    result = entry.result
    if result is None:
        return 256
    if result.held_size is not None:  # measured as the sandbox exchanged them (Result)
        return (
            512
            + result.held_size
            + _calls_weight(result.operations)
            + size_of(result.observed, KEEP_BYTES)
        )
    received = result.received
    parts = (
        result.message,
        getattr(received, "message", None),
        getattr(received, "body", None),
        result.logs,
        result.error.message if result.error else None,
        result.error.stack if result.error else None,
        result.response,
        result.operations,
        result.observed,
    )
    return 512 + size_of(parts, KEEP_BYTES)


def _calls_weight(operations: dict[str, Any]) -> int:
    """The call records' text: a key (a handler's) and an error each, at most 1,000."""
    total = 0
    for call in operations.get("calls", ()):
        total += 64 + len(call.get("key") or "") + len(call.get("error") or "")
    return total


ITEMS_WALKED = 100_000  # past this many items an entry is taken to be as big as allowed


def size_of(value: Any, limit: int) -> int:
    """Characters of text and items in `value` (JSON-like data), counted up to `limit`:
    a handler's message may be megabytes, and the count of a small one stays cheap. One
    of more than ITEMS_WALKED items (a list of millions, ~1 s to walk) counts as `limit`."""
    total, waiting, walked = 0, [value], 0
    while waiting and total <= limit:
        walked += 1
        if walked > ITEMS_WALKED:
            return limit + 1
        item = waiting.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            total += 8 * len(item)
            waiting += item.keys()
            waiting += item.values()
        elif isinstance(item, list | tuple):
            total += 8 * len(item)
            waiting += item
        else:
            total += 8
    return total


class ConsoleHub:
    def __init__(self, keep: int = KEEP, keep_bytes: int = KEEP_BYTES) -> None:
        self.entries: deque[Entry] = deque()
        self._keep, self._keep_bytes = keep, keep_bytes
        self._weights: deque[int] = deque()  # beside entries: what each one holds
        self._held = 0
        self.clients: set[Client] = set()
        # pfunc dev --record: given each entry itself, which the hub may drop before a
        # recorder that fell behind reads it (it keeps the newest 1,000)
        self.recorders: list[Callable[[Entry], None]] = []
        # Ids grow across restarts too (from the start's time in ms, x1000: a safe
        # JavaScript integer), so that a page kept open keeps what it had and adds anew.
        self._ids = itertools.count(int(time.time() * 1000) * 1000)
        self.frame_of: Callable[[Result], str | None] | None = None  # an error's code frame

    @property
    def capturing(self) -> bool:
        """True while anyone may turn executions into scenarios (a page, --record)."""
        return bool(self.clients or self.recorders)

    def add_result(self, result: Result) -> None:
        """The runtime's observer: called for every finished execution."""
        # The frame is made now, from the code that ran: the file may be edited before a
        # page asks for the entry.
        frame = self.frame_of(result) if result.error and self.frame_of else None
        entry = Entry(next(self._ids), int(time.time() * 1000), result, frame=frame)
        self._remember(entry)
        for recorder in self.recorders:
            recorder(entry)
        if not self.clients:
            return
        text = entry.text()
        kv_keys = sorted(
            {
                call["key"]
                for call in result.operations.get("calls", ())
                if call.get("module") == "kvstore"
                and call.get("method") in KV_WRITES
                and call.get("status") == "ok"
                and "key" in call
            }
        )
        for client in self.clients:
            client.push("execution", text)
            if kv_keys:
                client.push("kv", json.dumps({"keys": kv_keys}))

    def add_request(self, request: dict[str, Any]) -> None:
        """A request that reached no function, or an endpoint pfunc does not emulate."""
        entry = Entry(next(self._ids), int(time.time() * 1000), request=request)
        self._remember(entry)
        if self.clients:
            self.note("execution", entry.text())

    def _remember(self, entry: Entry) -> None:
        """Kept for pages that open later: the newest KEEP entries, fewer when they hold
        more than KEEP_BYTES of text (a flood of big executions cannot grow pfunc dev)."""
        held = weight(entry)
        self.entries.append(entry)
        self._weights.append(held)
        self._held += held
        while len(self.entries) > self._keep or (
            self._held > self._keep_bytes and len(self.entries) > 1
        ):
            self.entries.popleft()
            self._held -= self._weights.popleft()

    def note(self, kind: str, text: str) -> None:
        """A live-only event (kv changed, a reload) for the open pages."""
        for client in self.clients:
            client.push(kind, text)

    def find(self, entry_id: int) -> Entry | None:
        for entry in reversed(self.entries):
            if entry.id == entry_id:
                return entry
        return None

    def connect(self) -> Client:
        client = Client()
        self.clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        self.clients.discard(client)
