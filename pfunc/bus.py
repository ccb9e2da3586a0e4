"""The local bus: publish routing and the hop count.

A publish (from the CLI, the dev server, or pubnub.publish in a handler) runs the
before-* functions bound to its channel in order, is delivered unless one of them
aborts or fails, then runs the after-* functions. A handler's own publish carries the
hop count on: past the profile's limit (3) the publish is dropped, as a typed Drop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from pfunc.events import FILE, Event, EventSpec, build_event, kinds_triggered_by
from pfunc.functions import FunctionRegistry
from pfunc.history import FILE_MESSAGE, MessageHistory
from pfunc.limits import SEND_LESS, message_limit, message_size, size_problem
from pfunc.push import PushRegistrations
from pfunc.result import HOP_LIMIT, TOO_LARGE, Drop, PublishReport, Result
from pfunc.runtime import Runtime

MAX_TTL_HOURS = 10 * 365 * 24.0  # a history TTL past ten years is kept for ten


class Bus:
    def __init__(
        self,
        runtime: Runtime,
        functions: FunctionRegistry,
        history: MessageHistory,
        push: PushRegistrations | None = None,
    ) -> None:
        self.runtime = runtime
        self.functions = functions
        self.history = history  # where stored publishes are kept
        self.push = push  # registered devices: the pushes a publish would send
        # Called with each delivered report (the dev server's subscribers listen here).
        self.listeners: list[Callable[[PublishReport], None]] = []

    def _drop(self, channel: str, message: Any, verb: str, hop: int) -> Drop | None:
        profile = self.runtime.profile
        if hop > profile.max_hops:
            return Drop(
                HOP_LIMIT,
                f'{verb} to "{channel}" dropped: it would be hop {hop} of a chain of functions, '
                f"and PubNub allows {profile.max_hops}; no function ran for it",
            )
        limit = message_limit(profile, verb)
        size = message_size(message)
        if limit is not None and size > limit:
            return Drop(
                TOO_LARGE,
                f'{verb} to "{channel}" refused: {size_problem(size, limit, profile)}. {SEND_LESS}',
            )
        return None

    async def publish(
        self,
        channel: str,
        message: Any,
        *,
        verb: str = "publish",
        hop: int = 1,
        meta: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        after_waits: bool = True,
        client: dict[str, str] | None = None,
    ) -> PublishReport:
        """Through the before-* functions, to subscribers and history, then the after-*
        ones: awaited, with their results in the report, unless `after_waits` is False
        (a client's publish to the dev server: PubNub answers once the message is
        published, and runs after-* functions on their own). `client`: the publishing
        client's `useragent` and `clientip`, for the functions' `request.meta`."""
        report = PublishReport(channel, verb, hop, message)
        given = params or {}
        # PubNub names a publisher for every message (subscribers' "i", history's uuid);
        # one that sent no uuid gets a made-up one, as the service does.
        report.publisher = given.get("uuid") or _made_up_uuid()
        report.custom_type = given.get("custom_message_type")
        sequence = str(given.get("seqn", "1"))
        if sequence.isascii() and sequence.isdigit() and len(sequence) <= 9:
            report.sequence = int(sequence)
        report.meta = meta
        report.drop = self._drop(channel, message, verb, hop)
        if report.drop is not None:
            return report
        # What the server knows of the client wins over the publisher's own meta: a
        # function banning a clientip must not be fooled by a meta that names another.
        request_meta = {**(meta or {}), **(client or {})}
        # The functions see the publisher subscribers and history see, made up or not.
        spec = EventSpec(
            channel=channel, params={**given, "uuid": report.publisher}, meta=request_meta
        )
        # Handlers of a file message see the verb "publish", as their kinds' rows say.
        event_verb = None if verb == FILE else verb
        current = message
        # PubNub's pubnub module: "Published payloads must be valid JSON. Strings won't
        # trigger Functions." A function's string message is delivered and runs none.
        triggers = hop == 1 or not isinstance(message, str)
        if not triggers:
            report.not_triggered = self._bound_names(verb, channel)
        for kind in kinds_triggered_by(verb, "before") if triggers else ():
            for function in self.functions.bound_to(kind, channel):
                spec.message = current
                event = build_event(kind, spec, hop=hop, verb=event_verb, published=True)
                result = await self.functions.executor(function).run(event)
                report.executions.append(result)
                if result.outcome != "ok":
                    report.stopped_by = function.name
                    report.message = current
                    return report
                current = result.message  # a file message's file kept (executor)
        report.message = current
        report.delivered = True
        if verb == "publish" and self.push is not None:
            report.pushes = await self.push.would_send(channel, current)
        # Stamped with no wait before subscribers get it: a publish stamped earlier but
        # handed over after a later one would sit behind a subscriber's cursor, never read.
        report.timetoken = self.runtime.timetokens.next()
        report.given_timetoken = _given_timetoken(given.get("ptto"))
        if verb != "fire":  # fire reaches functions only, never subscribers
            for listener in self.listeners:
                listener(report)
        stored = verb in ("publish", FILE)  # not signals, not fires
        if stored and str(given.get("store", "1")).lower() not in ("0", "false"):
            await self._store(report, given)
        spec.message = current
        after = [
            (function, build_event(kind, spec, hop=hop, verb=event_verb, published=True))
            for kind in (kinds_triggered_by(verb, "after") if triggers else ())
            for function in self.functions.bound_to(kind, channel)
        ]
        if after and not after_waits:
            from pfunc.aio import start_kept  # logged by the observers as each one ends

            if hop == 1:  # a client's publish waits while its functions have a queue
                for function, _ in after:
                    await self.functions.executor(function).room()
            start_kept(self._run_all(after))
            return report
        report.executions.extend(await self._run_all(after))
        return report

    def _bound_names(self, verb: str, channel: str) -> list[str]:
        return [
            function.name
            for phase in ("before", "after")
            for kind in kinds_triggered_by(verb, phase)
            for function in self.functions.bound_to(kind, channel)
        ]

    async def _run_all(self, runs: list[tuple[Any, Event]]) -> list[Result]:
        return [await self.functions.executor(function).run(event) for function, event in runs]

    async def _store(self, report: PublishReport, params: dict[str, Any]) -> None:
        """Keep a delivered publish in history, for its TTL in hours (0 or none: kept)."""
        expires_at = None
        with contextlib.suppress(TypeError, ValueError, OverflowError):
            hours = min(float(params.get("ttl", 0)), MAX_TTL_HOURS)
            if hours > 0:
                expires_at = self.runtime.clock.now_ms() + int(hours * 3_600_000)
        await self.history.add(
            report.channel,
            int(report.message_timetoken or 0),
            report.message,
            meta=report.meta,
            publisher=report.publisher,
            custom_type=report.custom_type,
            expires_at=expires_at,
            message_type=FILE_MESSAGE if report.verb == FILE else None,
        )

    async def presence(self, channel: str, spec: EventSpec) -> list[Result]:
        """Run the after-presence functions bound to `channel` for one presence change
        (`spec` gives its action, uuid, occupancy and state)."""
        results = []
        for kind in kinds_triggered_by("presence"):
            for function in self.functions.bound_to(kind, channel):
                event = build_event(
                    kind, spec, default_channel=channel, now_ms=self.runtime.clock.now_ms()
                )
                results.append(await self.functions.executor(function).run(event))
        return results


def _given_timetoken(ptto: Any) -> str | None:
    """A publish's `ptto` (PubNub's publish timetoken override) as a timetoken; None
    when there is none, or it is not one (a number of up to 17 digits)."""
    text = str(ptto) if ptto is not None else ""
    if not (text.isascii() and text.isdigit() and len(text) <= 17) or int(text) == 0:
        return None  # (0 is no timetoken: subscribers' envelope would show the publish's)
    return str(int(text))


def _made_up_uuid() -> str:
    import uuid  # only for publishes without a uuid; off the cold start of `pfunc run`

    return str(uuid.uuid4())
