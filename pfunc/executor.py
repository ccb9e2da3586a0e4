"""Runs one event through one handler and returns one Result.

It takes a sandbox from the function's pool (on the dev server's loop for a quick
function, else on a thread: sandbox/inline.py), drives the execution with
execution_loop.ExecutionLoop, whose `_dispatch` is the single choke point every host call
passes (the Budget, the call record, the module), and turns what the handler did into the
Result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pfunc.aio import running_loop
from pfunc.code_frames import ran_frame
from pfunc.errors import HandlerLoadError
from pfunc.events import FILE, KINDS, Event, MessageEvent, RequestEvent
from pfunc.execution_loop import ExecutionLoop
from pfunc.file_messages import keep_file
from pfunc.jsonio import well_formed
from pfunc.limits import SEND_LESS, Budget, Profile, message_limit, message_size, size_problem
from pfunc.modules.calls import CallContext
from pfunc.outcome import (
    TIME_LIMIT,
    conclude,
    engine_thrown_error,
    handler_error,
    mask_secrets,
    memory_error,
    timeout_error,
)
from pfunc.pubnub_data import PubNubData
from pfunc.result import ExecutionError, Publisher, Result
from pfunc.runtime import Runtime
from pfunc.sandbox import Sandbox, SandboxInterrupted, ThrownByTheEngine, console_dropped
from pfunc.sandbox.inline import (
    INLINE_GUARD,
    InlineGuardStop,
    InlinePolicy,
    Replay,
)
from pfunc.sandbox.pool import SandboxPool

if TYPE_CHECKING:
    import asyncio

MAX_CONCURRENT_EXECUTIONS = 8


@dataclass
class Retry:
    """What an execution stopped by the in-line guard hands to its attempt on a thread:
    its deadline and, when it had changed something, the answers of the calls it made
    (`replay`) and what performing them left on its context (secrets read, publishes
    made, the console's first values, modules' warnings), which the replay does not redo."""

    deadline: float | None
    source: str  # the code it ran: a reload since must not change the code it runs
    started: float  # when the first attempt started (perf_counter): the report's duration
    replay: Replay | None = None
    context: CallContext | None = None
    warnings: list[str] = field(default_factory=list)

    def carry_into(self, context: CallContext, warnings: list[str]) -> None:
        first = self.context
        if first is None:
            return
        context.secrets_read |= first.secrets_read
        context.triggered.extend(first.triggered)
        context.observed.update(first.observed)
        warnings.extend(self.warnings)


class Executor:
    """Runs events through one handler file, reusing its loaded sandboxes between runs."""

    def __init__(
        self,
        handler: Path,
        runtime: Runtime,
        display_path: str | None = None,
        name: str | None = None,
        publish: Publisher | None = None,
        pubnub_data: PubNubData | None = None,
    ) -> None:
        self.handler = handler
        self.runtime = runtime
        self.display_path = well_formed(display_path or str(handler))  # shown: text only
        self.name = name or self.display_path
        # The bus's publish, granted to the pubnub module; None outside a project.
        self.publish = publish
        self.pubnub_data = pubnub_data  # history, presence... for the pubnub module
        self.pool = SandboxPool(handler, self.display_path, runtime)
        # In the dev server, a quick JavaScript function runs on the server's loop.
        self.policy = InlinePolicy(runtime.threaded and handler.suffix != ".py")
        # Executions a client caused (hop 1) run at most this many at a time per function;
        # the rest wait their turn. Chained ones (a handler's own publish) do not wait:
        # the hop limit bounds them, and a parent holding a slot must not wait for its child.
        self._slots: asyncio.Semaphore | None = None  # made on first use, on a loop

    async def reload(self) -> HandlerLoadError | None:
        """Load the file again (see SandboxPool.reload); new code starts on threads. A
        file saved again as it was changes nothing: the warm instances keep their state."""
        if self.pool.unchanged():
            return None
        failure = await self.pool.reload()
        if failure is None:  # new code: on threads, and free to show itself quick to load
            self.policy.reloaded()
        return failure

    def close(self) -> None:
        self.pool.close()

    def _context(self, event: Event, warn: Any) -> CallContext:
        runtime = self.runtime
        profile = runtime.profile
        return CallContext(
            runtime.store,
            runtime.keyset.subscribe_key,
            profile,
            runtime.clock,
            warn,
            vault=runtime.vault,
            mocks=runtime.mocks,
            offline=runtime.offline,
            publish=self.publish,
            pubnub_data=self.pubnub_data,
            timetoken=runtime.timetokens.next,
            hop=event.hop if isinstance(event, MessageEvent) else 1,
        )

    async def run(self, event: Event) -> Result:
        if isinstance(event, MessageEvent) and event.hop > 1:
            return await self._run(event)
        if running_loop() is None:  # a loop-free drive (aio.py) runs one at a time
            return await self._run(event)
        import asyncio

        if self._slots is None:
            self._slots = asyncio.Semaphore(MAX_CONCURRENT_EXECUTIONS)
        # An event waits for a free instance no longer than it could run: behind instances
        # that each run to the time limit, a queue would hold it for a multiple of it.
        limit = self.runtime.profile.timeout
        if not self._slots.locked():  # (wait_for would make a task: only when it must wait)
            await self._slots.acquire()
        else:
            try:
                await asyncio.wait_for(self._slots.acquire(), limit)
            except TimeoutError:
                return self._busy(event, limit)
        try:
            return await self._run(event)
        finally:
            self._slots.release()

    async def room(self) -> None:
        """Return once the events already waiting for an instance have one (at once when
        one is free, or outside a loop), or after the time limit: a client's publish waits
        so for its after-functions. PubNub starts more instances; pfunc runs at most
        MAX_CONCURRENT_EXECUTIONS, so without this wait a publisher faster than the
        function queued events without end, which then failed as busy."""
        if self._slots is None or not self._slots.locked():
            return
        import asyncio

        try:  # behind those already waiting (the semaphore wakes them in turn)
            await asyncio.wait_for(self._slots.acquire(), self.runtime.profile.timeout)
        except TimeoutError:
            return  # the event meets the busy instances itself, and says so
        self._slots.release()

    def _busy(self, event: Event, limit: float | None) -> Result:
        """An event no instance was free to run within its time limit: an error, not run."""
        result = self._new_result(event, None, 1)
        result.operations = Budget(self.runtime.profile).to_json()
        result.error = ExecutionError(
            "TimeoutError",
            f"{self.display_path}: all {MAX_CONCURRENT_EXECUTIONS} instances pfunc dev runs "
            f"of this function at once were busy for the whole {limit or 0:g} s time limit "
            "(executions that each run to the limit, say), so this event was not run. PubNub "
            "starts more instances; look for what keeps them busy",
            code=TIME_LIMIT,
        )
        for observer in self.runtime.observers:
            observer(result)
        return result

    def _new_result(self, event: Event, observed: Any, hop: int) -> Result:
        """The result of an execution of `event` as it starts: an error until it ends."""
        result = Result(
            function=self.display_path,
            event=event.kind,
            outcome="error",
            family=KINDS[event.kind].family,
            name=self.name if self.name != self.display_path else None,
            received=event,
            observed=observed,
        )
        if isinstance(event, RequestEvent):
            result.path = event.path
        if isinstance(event, MessageEvent):
            result.message = event.message
            result.channel = event.channel
            result.hop = hop
            result.delivered = not KINDS[event.kind].is_before
        return result

    async def _run(self, event: Event, retry: Retry | None = None) -> Result:
        """One execution; `retry` when it starts again on a thread after the in-line guard."""
        runtime = self.runtime
        budget = Budget(runtime.profile)
        host_warnings: list[str] = []
        context = self._context(event, host_warnings.append)
        replay = None
        if retry is not None:
            context.deadline = retry.deadline
            retry.carry_into(context, host_warnings)
            replay = retry.replay
        result = self._new_result(event, context.observed, context.hop)
        # The whole execution, the attempt the in-line guard stopped included.
        started = time.perf_counter() if retry is None else retry.started
        try:
            if retry is not None:  # on a thread, with the code the first attempt ran
                sandbox = await self.pool.acquire(source=retry.source)
            else:
                try:
                    sandbox = await self.pool.acquire(inline=self.policy.inline)
                except InlineGuardStop:  # its top-level code is slow: load it on a thread
                    self.policy.load_was_slow()
                    sandbox = await self.pool.acquire()
        except HandlerLoadError as failure:
            result.error = ExecutionError(
                failure.error_type,
                failure.message,
                failure.stack,
                self.display_path if failure.line else None,
                failure.line,
                failure.column,
            )
            result.operations = budget.to_json()
        else:
            work = self._execute(sandbox, event, budget, context, result, host_warnings, replay)
            try:
                await (work if sandbox.home is None else sandbox.home.run(work))
            except InlineGuardStop as stop:
                # A slice outgrew the in-line guard: this function runs on threads again.
                sandbox.broken = True  # closed on release, below
                self.policy.demote()
                source = sandbox.source
                if not stop.changed:  # nothing changed yet: start again on a thread, in time
                    return await self._run(event, Retry(context.deadline, source, started))
                if stop.journal is not None and stop.journal.replayable():
                    # The same, but the calls already made are answered, not made again.
                    replay = Replay(stop.journal)
                    retry = Retry(context.deadline, source, started, replay, context, host_warnings)
                    return await self._run(event, retry)
                result.outcome = "error"
                result.operations = budget.to_json()
                result.error = ExecutionError(
                    "Error",
                    f"{self.display_path}: the handler ran JavaScript for more than "
                    f"{INLINE_GUARD * 1000:.0f} ms at once while a change it made was still under "
                    "way (a publish or a request in flight), while pfunc dev ran it on its own "
                    "loop (it had always been quick); it was stopped, since whether the change "
                    "happened is unknown, and runs on a thread of its own from now on. Send the "
                    "event again",
                )
            except ThrownByTheEngine as thrown:  # the handler's own, where it could not catch
                result.outcome = "error"
                result.operations = budget.to_json()
                result.error = engine_thrown_error(thrown.engine_text, self.display_path)
            except Exception as fault:
                # Whatever went wrong (a handler that broke pfunc's side of the sandbox, a
                # fault of pfunc's own), this execution ends as an error and its sandbox is
                # replaced: nothing leaks and the next execution starts clean.
                sandbox.broken = True
                result.outcome = "error"
                result.operations = budget.to_json()
                replaced = sandbox.tampered()
                cause = (
                    f"the handler replaced {replaced}, which pfunc's side of the sandbox relies on"
                    if replaced
                    else f"the execution failed inside pfunc ({fault!r})"
                )
                result.error = ExecutionError(
                    "Error",
                    f"{self.display_path}: {cause}; its sandbox is replaced for the next execution",
                )
            finally:
                self.pool.release(sandbox)
            mask_secrets(result, context.secrets_read)
            result.frame = ran_frame(result, sandbox.source)
        result.duration_ms = (time.perf_counter() - started) * 1000
        for observer in runtime.observers:
            observer(result)
        return result

    async def _execute(
        self,
        sandbox: Sandbox,
        event: Event,
        budget: Budget,
        context: CallContext,
        result: Result,
        host_warnings: list[str],
        replay: Replay | None = None,
    ) -> None:
        """Drive the execution and fill in the result; runs on the sandbox's own loop."""
        context.sync_builtins = sandbox.sync_builtins
        # One deadline for the execution, from when it starts (not from loading): the
        # loop, the modules (xhr) and the synchronous built-ins all read it.
        timeout = self.runtime.profile.timeout
        if context.deadline is None and timeout is not None:
            context.deadline = time.monotonic() + timeout
        loop = ExecutionLoop(self, sandbox, budget, context, replay)
        failure = await loop.run(event)
        self.policy.observed(loop.slowest, loop.cpu)
        try:
            details = sandbox.finish()
        except SandboxInterrupted as stop:  # the handler's toJSON ran on and on
            details = {}
            failure = failure or timeout_error(stop, self.display_path, self.runtime.profile)
        if not isinstance(details, dict):
            # Unreadable: the engine could not even build the report, which only happens
            # when the handler holds more than the memory limit (a huge response or log).
            details = {}
            sandbox.broken = True
            failure = failure or memory_error(self.display_path, self.runtime.profile)
        result.logs = details.get("logs", [])
        result.held_size = details.get("heldSize")
        dropped = details.get("consoleDropped")  # lines past the console budget, any host
        said = [console_dropped(dropped)] if dropped else []
        result.warnings = [*details.get("warnings", []), *said, *host_warnings, *loop.said()]
        # Said once each: three refused fetches of one URL are one mock hint, not three.
        result.warnings = list(dict.fromkeys(result.warnings))
        result.operations = budget.to_json()
        # As it stands now: a publish still under way (past the deadline) reports later.
        result.triggered = list(context.triggered)
        failure = failure or handler_error(
            details.get("error"), sandbox, self.display_path, self.runtime.profile
        )
        completion = details.get("completion")
        conclude(result, failure, completion)
        if isinstance(event, MessageEvent) and completion and completion.get("kind") == "ok":
            profile = self.runtime.profile
            result.warnings.extend(grown_past_limit(event, completion, result, profile))
            kind = KINDS[event.kind]
            if kind.trigger == FILE and kind.is_before and result.outcome == "ok":
                result.message, changed = keep_file(event.message, result.message)
                if changed:
                    result.warnings.append(
                        "the file message's file stays the uploaded one: the function's change "
                        "to it is ignored (a function may change the text, not the file)"
                    )


def _sized_kind(event: MessageEvent, profile: Profile) -> int | None:
    """The size limit of a before-publish or before-signal event's message; None for
    other kinds (and profiles without one)."""
    kind = KINDS[event.kind]
    if not kind.is_before or kind.trigger not in ("publish", "signal"):
        return None
    return message_limit(profile, event.verb)


def refused_before_functions(event: Event, profile: Profile) -> list[str]:
    """A message PubNub refuses for its size before any function runs, given straight to
    a handler (pfunc run, a scenario step; the bus refuses it on every other path): the
    handler still runs, for a developer exploring, and the report says so."""
    if not isinstance(event, MessageEvent) or (limit := _sized_kind(event, profile)) is None:
        return []
    size = message_size(event.message)
    if size <= limit:
        return []
    return [
        f'PubNub would refuse this {event.verb} to "{event.channel}" before any function '
        f"runs: {size_problem(size, limit, profile)}. {SEND_LESS} (pfunc ran the handler "
        "all the same)"
    ]


def grown_past_limit(
    event: MessageEvent, completion: dict[str, Any], result: Result, profile: Profile
) -> list[str]:
    """A message a before-* handler left over PubNub's size limit. What PubNub does with
    it is undocumented: warned of, not refused. Measured only when its text could be that
    long (a UTF-8 character is at most 4 bytes): every before-publish passes here."""
    limit = _sized_kind(event, profile)
    text = completion.get("message")
    if limit is None or not isinstance(text, str) or len(text) * 4 <= limit:
        return []
    left = message_size(result.message)
    if left <= limit or message_size(event.message) > limit:  # (that one never ran there)
        return []
    return [
        f"the message as the handler left it is {left:,} bytes of JSON, over PubNub's "
        f"limit of {limit:,} for a {event.verb} ({profile.describe()}); what PubNub does "
        f"with such a message is undocumented, it may refuse it. {SEND_LESS}"
    ]
