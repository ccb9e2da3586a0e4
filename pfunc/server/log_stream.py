"""The log stream PubNub has: each function's console lines are also published to
`blocks-output-<function name>`, so any SDK client (or the console) can watch them.

Delivered to subscribers like any publish, but through no function and into no history
(docs/decisions.md): a log line must never trigger the functions that wrote it, and the
stream is for watching, not for replaying."""

from __future__ import annotations

from pfunc.result import Result
from pfunc.server.state import DevState
from pfunc.server.subscribers import Delivery

CHANNEL_PREFIX = "blocks-output-"


def publish_logs(state: DevState, result: Result) -> None:
    if not result.logs or result.name is None:
        return  # most executions log nothing: nothing to do
    channel = CHANNEL_PREFIX + result.name
    for line in result.logs:
        payload = {
            "function": result.name,
            "event": result.event,
            "level": line.get("level"),
            "message": line.get("text"),
        }
        size = len(payload["message"] or "")
        state.messages.add(Delivery(int(state.timetoken()), channel, payload, None, size=size))
