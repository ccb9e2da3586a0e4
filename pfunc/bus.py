"""The local bus: channels, wildcard bindings, publish routing and the hop count.

A publish (from the CLI, the dev server, or pubnub.publish in a handler) runs the
before-* functions bound to its channel in order, is delivered unless one of them
aborts or fails, then runs the after-* functions. A handler's own publish carries
the hop count on: past the profile's limit (3) the publish is dropped with a warning.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pfunc.events import MessageEvent

if TYPE_CHECKING:
    from pfunc.executor import Executor, Runtime
    from pfunc.project import FunctionConfig, Project
    from pfunc.result import Result

VERB_KINDS = {
    "publish": ("before-publish", "after-publish"),
    "fire": ("before-publish", "after-publish"),
    "signal": ("before-signal", "after-signal"),
}


def channel_matches(pattern: str, channel: str) -> bool:
    """Exact names, or a PubNub wildcard `a.*` / `a.b.*` matching any deeper channel."""
    if pattern.endswith(".*"):
        return channel.startswith(pattern[:-1]) and len(channel) > len(pattern) - 1
    return pattern == channel


@dataclass
class PublishReport:
    """What became of one publish, fire or signal, with the executions it caused."""

    channel: str
    verb: str
    hop: int
    message: Any
    delivered: bool = False
    timetoken: str | None = None
    dropped: str | None = None  # why the bus did not route it at all
    stopped_by: str | None = None  # the before-* function that aborted or failed it
    executions: list[Result] = field(default_factory=list)
    publisher: str | None = None  # the publishing client's uuid, when known
    meta: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        """True when any execution in this publish's tree ended as an error."""
        return any(
            result.outcome == "error" or any(child.failed for child in result.triggered)
            for result in self.executions
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "verb": self.verb,
            "hop": self.hop,
            "message": self.message,
            "delivered": self.delivered,
            "timetoken": self.timetoken,
            "dropped": self.dropped,
            "stopped_by": self.stopped_by,
            "executions": [result.to_json() for result in self.executions],
        }


class Bus:
    """Routes messages through a project's functions, reusing one Executor per function."""

    def __init__(self, project: Project | None) -> None:
        self.project = project
        self.runtime: Runtime | None = None
        self._executors: dict[str, Executor] = {}
        self._last_timetoken = 0
        # Called with each delivered report (the dev server's subscribers listen here).
        self.listeners: list[Callable[[PublishReport], None]] = []

    def attach(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def functions_for(self, event: str, channel: str) -> list[FunctionConfig]:
        if self.project is None:
            return []
        return [
            function
            for function in self.project.functions
            if function.event == event
            and any(channel_matches(pattern, channel) for pattern in function.channels)
        ]

    def executor(self, function: FunctionConfig) -> Executor:
        from pfunc.executor import Executor

        if function.name not in self._executors:
            assert self.runtime is not None, "attach the runtime before publishing"
            self._executors[function.name] = Executor(
                function.file,
                self.runtime,
                display_path=_relative(function, self.project),
                name=function.name,
            )
        return self._executors[function.name]

    def close(self) -> None:
        for executor in self._executors.values():
            executor.close()

    def adopt(self, previous: Bus) -> None:
        """Keep the loaded executors of functions whose name and file did not change."""
        if self.project is None:
            return
        for function in self.project.functions:
            old = previous._executors.get(function.name)
            if old is not None and old.handler.resolve() == function.file.resolve():
                self._executors[function.name] = old

    def next_timetoken(self) -> str:
        # 17 digits: 100-ns units since the epoch, strictly increasing within a process.
        now = int(time.time() * 10_000_000)
        self._last_timetoken = max(now, self._last_timetoken + 1)
        return str(self._last_timetoken)

    async def publish(
        self,
        channel: str,
        message: Any,
        *,
        verb: str = "publish",
        hop: int = 1,
        meta: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> PublishReport:
        assert self.runtime is not None, "attach the runtime before publishing"
        report = PublishReport(channel, verb, hop, message)
        report.publisher = (params or {}).get("uuid")
        report.meta = meta
        profile = self.runtime.profile
        if hop > profile.max_hops:
            report.dropped = (
                f'{verb} to "{channel}" dropped: it would be hop {hop} of a chain of functions, '
                f"and PubNub allows {profile.max_hops}; no function ran for it"
            )
            return report
        limit = profile.signal_size if verb == "signal" else profile.publish_size
        size = len(json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode())
        if limit is not None and size > limit:
            report.dropped = (
                f'{verb} to "{channel}" refused: the message is {size:,} bytes of JSON; the '
                f"limit is {limit:,} ({profile.describe()}). Send less, or keep the data in KV"
            )
            return report
        before, after = VERB_KINDS[verb]
        current = message
        for function in self.functions_for(before, channel):
            event = MessageEvent(before, current, channel, params or {}, meta or {}, verb, hop)
            result = await self.executor(function).run(event)
            report.executions.append(result)
            if result.outcome != "ok":
                report.stopped_by = function.name
                report.message = current
                return report
            current = result.message
        report.message = current
        report.delivered = True
        report.timetoken = self.next_timetoken()
        if verb != "fire":  # fire reaches functions only, never subscribers
            for listener in self.listeners:
                listener(report)
        for function in self.functions_for(after, channel):
            event = MessageEvent(after, current, channel, params or {}, meta or {}, verb, hop)
            report.executions.append(await self.executor(function).run(event))
        return report


async def run_presence(bus: Bus, channel: str, message: dict[str, Any]) -> list[Result]:
    """Run the after-presence functions bound to `channel` for one presence event."""
    results = []
    for function in bus.functions_for("after-presence", channel):
        event = MessageEvent("after-presence", message, channel, verb="presence")
        results.append(await bus.executor(function).run(event))
    return results


def _relative(function: FunctionConfig, project: Project | None) -> str:
    """The handler's path as pfunc.toml names it: relative to the project root."""
    root = project.root if project else None
    try:
        return (
            str(function.file.resolve().relative_to(root.resolve())) if root else str(function.file)
        )
    except ValueError:
        return str(function.file)
