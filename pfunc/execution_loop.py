"""The slice-by-slice drive of one execution: run the handler's JavaScript (or Python)
until it waits, perform the host calls it queued through the single choke point
(`_dispatch`: charge the Budget, record the call, reach the module), settle them, and
again, within the execution's deadline. executor.py builds the execution around it."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Protocol

from pfunc.aio import first_done, pass_turn, start_kept, start_task
from pfunc.events import KINDS, Event
from pfunc.limits import Budget, CallRecord, OperationLimitExceeded
from pfunc.modules import HostModule
from pfunc.modules.calls import (
    CallContext,
    HandlerCallError,
    JSArg,
    callback_warning,
    unreadable_argument,
)
from pfunc.modules.routes import route_of
from pfunc.outcome import memory_error, never_settled, timeout_error
from pfunc.result import ExecutionError
from pfunc.sandbox import CORRUPTED, CRASHED, TIMEOUT, Sandbox, SandboxInterrupted
from pfunc.sandbox.inline import (
    INLINE_GUARD,
    YIELD_EVERY,
    InlineGuardStop,
    Journal,
    JournalEntry,
    Replay,
    ReplayDiverged,
)
from pfunc.store_contention import CALL_DEADLINE

if TYPE_CHECKING:
    import asyncio

    from pfunc.runtime import Runtime
    from pfunc.sandbox.inline import InlinePolicy


class Runner(Protocol):
    """What the loop reads of the executor that runs it (executor.py)."""

    display_path: str
    runtime: Runtime
    policy: InlinePolicy


class ExecutionLoop:
    """The slice-by-slice drive of one execution; collects host-side warnings."""

    def __init__(
        self,
        executor: Runner,
        sandbox: Sandbox,
        budget: Budget,
        context: CallContext,
        replay: Replay | None = None,
    ) -> None:
        self.executor = executor
        self.sandbox = sandbox
        self.budget = budget
        self.context = context
        self.modules = executor.runtime.modules
        self.warnings: list[str] = []
        self.given_callbacks: list[str] = []  # calls given a function (an SDK callback)
        self.unawaited: list[CallRecord] = []  # worded at the end, when each has ended
        self.timeout = budget.profile.timeout
        self.deadline = context.deadline
        self.open: dict[int, CallRecord] = {}  # drained, not yet settled (by call id)
        self.tasks: dict[
            asyncio.Future[tuple[bool, str | None]],
            tuple[int, CallRecord, JournalEntry | None],
        ] = {}
        self.handler_settled = False
        self.limit_warned = False
        self.slowest = 0.0  # CPU seconds of the longest slice of JavaScript
        self.cpu = 0.0  # CPU seconds of all its slices
        self.last_yield = time.perf_counter()  # when an in-line execution last let others in
        self.changed = False  # a call other than a read was performed
        # In line: CPU seconds the execution itself has held the server's loop, and when
        # it last took it back (the loop's other work in between is not its own).
        inline = self._may_run_inline()
        self.own_time = 0.0
        self.resumed = time.thread_time() if inline else 0.0
        # In line, the calls made, for an attempt that starts again on a thread after the
        # guard (which is given their answers instead of performing them twice: `replay`).
        self.journal = Journal() if inline else None
        self.waits = 0  # times the execution waited for calls under way (the journal's batches)
        self.replay = replay
        # Replayed answers of calls that ran as tasks, held until the wait that delivered
        # them the first time, so the handler's continuations run in the same order.
        self.held: list[tuple[int, CallRecord, tuple[bool, str | None], int]] = []

    def _may_run_inline(self) -> bool:
        return self.sandbox.home is None and self.executor.policy.allowed

    def _remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()

    async def _advance(
        self,
        settlements: list[tuple[int, bool, str | None]],
        start: tuple[str, int | None] | None = None,
    ) -> tuple[bool, list[Any]]:
        """One round of JavaScript (on whatever thread this execution runs on); in line on
        the server's loop, held to the in-line guard and handing the loop back every
        YIELD_EVERY (sandbox/inline.py)."""
        remaining = self._remaining()
        inline = self._may_run_inline()
        guard_applied = inline and (remaining is None or remaining > INLINE_GUARD)
        limit = INLINE_GUARD if guard_applied else remaining
        # Timed only where the in-line policy reads it (the dev server), in CPU time (not
        # the waits for the GIL); in line, one reading (a system call) ends the own time.
        timed = self.executor.policy.allowed
        began = self._count_own_time() if inline else time.thread_time() if timed else 0.0
        if inline:
            if guard_applied and self.own_time > INLINE_GUARD:
                # Many quick rounds (a loop of calls answered at once) hold the loop as
                # one long slice would: the same guard, over the whole execution.
                raise self._guard_stop()
            if time.perf_counter() - self.last_yield > YIELD_EVERY:
                await pass_turn()  # let other requests in
                self.last_yield = time.perf_counter()
                began = self.resumed = time.thread_time()
        try:
            return self.sandbox.advance(limit, settlements, start, guard_applied)
        except SandboxInterrupted as stop:
            if stop.reason == TIMEOUT and guard_applied:
                raise self._guard_stop() from None
            raise
        finally:
            if timed:
                spent = time.thread_time() - began
                self.slowest = max(self.slowest, spent)
                self.cpu += spent

    async def run(self, event: Event) -> ExecutionError | None:
        row = KINDS[event.kind]
        data = event.to_sandbox(self.executor.runtime.keyset)
        data = {**data, "family": row.family, "phase": row.phase}
        if self.journal is not None:  # in line: record the clock and randomness it reads
            data["recordTape"] = True
        if self.replay is not None and self.replay.tape is not None:
            data["tape"] = self.replay.tape  # ... and read them again when it starts again
        if self.context.pubnub_data is not None:  # for pubnub.getFileUrl, local in the sandbox
            data["filesBase"] = self.context.pubnub_data.files_base(self.context.keyset)
        payload = json.dumps(data)
        # The store's waits for another process's lock end with this execution's time.
        deadline_set = CALL_DEADLINE.set(self.deadline)
        try:
            settled, calls = await self._advance(
                [], (payload, self.context.clock.fixed_ms_or_none())
            )
            while True:
                remaining = self._remaining()
                if remaining is not None and remaining <= 0:
                    # The deadline holds for the whole execution, whatever the handler
                    # awaits: a loop of refused calls or settled Promises ends here too.
                    return self._out_of_time()
                if settled and not self.handler_settled:
                    self.handler_settled = True
                    for record in self.open.values():
                        self._mark_unawaited(record)
                settlements: list[tuple[int, bool, str | None]] = []
                for call in calls:
                    await self._dispatch(call, settlements)
                if settlements:
                    settled, calls = await self._advance(settlements)
                    continue
                if not self.tasks and not self.held:
                    if self.handler_settled:
                        if self.replay is not None and self.replay.owes_changes():
                            return self._diverged()  # it ended without a change the first made
                        return None
                    return never_settled(self.sandbox, self.budget, self.given_callbacks)
                if not await self._collect_answers(settlements):
                    return self._out_of_time()
                settled, calls = await self._advance(settlements)
        except ReplayDiverged:
            return self._diverged()
        except InlineGuardStop:
            # The calls under way finish (they are not the sandbox's), so that the attempt
            # that starts again on a thread can be given their answers too.
            while self.changed and self.tasks and await self._collect_answers([]):
                pass  # (an attempt that changed nothing starts again without answers)
            raise
        except SandboxInterrupted as stop:
            if stop.reason == TIMEOUT:
                if self.sandbox.returned:  # only work it left was still running
                    self.handler_settled = True
                    return self._out_of_time()
                return self._timeout_error(stop)
            if stop.reason == CRASHED:
                return ExecutionError(
                    "Error",
                    f"{self.executor.display_path}: the handler's worker process stopped "
                    "unexpectedly; it is replaced for the next execution",
                )
            if stop.reason == CORRUPTED:
                self.sandbox.broken = True
                replaced = self.sandbox.tampered()
                change = (
                    f"replaced {replaced}, which pfunc's side of the sandbox relies on"
                    if replaced
                    else "changed pfunc's own code in its sandbox"
                )
                return ExecutionError(
                    "Error",
                    f"{self.executor.display_path}: the handler {change} (what reached the "
                    "host was not pfunc's protocol); the execution was stopped and the "
                    "sandbox is replaced",
                )
            return memory_error(self.executor.display_path, self.budget.profile)
        finally:
            CALL_DEADLINE.reset(deadline_set)
            for task in self.tasks:
                task.cancel()

    async def _collect_answers(self, settlements: list[tuple[int, bool, str | None]]) -> bool:
        """Wait for the next of the calls under way to finish and settle what finished
        into `settlements`; False when the execution's deadline passes first."""
        remaining = self._remaining()
        if remaining is not None and remaining <= 0:
            return False
        self.waits += 1
        if self.journal is not None:  # in line: its own time stops while it waits
            self._count_own_time()
        if self.held:  # a re-run: the answers the first attempt's next wait delivered
            batch = min(held[3] for held in self.held)
            for held in [held for held in self.held if held[3] == batch]:
                self.held.remove(held)
                call_id, record, answer, _ = held
                self.open.pop(call_id, None)
                record.settle(*answer)
                settlements.append((call_id, *answer))
            return True
        done = await first_done(self.tasks, remaining)
        if self.journal is not None:
            self.resumed = time.thread_time()
        # Calls that finished together settle in the order the handler made them (a set
        # has no order of its own): the same Promise.race winner in every driver.
        for task in sorted(done, key=lambda task: self.tasks[task][0]):
            call_id, record, journaled = self.tasks.pop(task)
            ok, payload = task.result()
            self.open.pop(call_id, None)
            record.settle(ok, payload)
            if journaled is not None:
                journaled.answer = (ok, payload)
                journaled.batch = self.waits
            settlements.append((call_id, ok, payload))
        return bool(done)

    def _guard_stop(self) -> InlineGuardStop:
        if self.journal is not None and self.changed:  # only a replay reads the tape
            self.journal.tape = self.sandbox.read_tape()
        return InlineGuardStop(self.changed, self.journal)

    def _count_own_time(self) -> float:
        now = time.thread_time()
        self.own_time += now - self.resumed
        self.resumed = now
        return now

    def _out_of_time(self) -> ExecutionError | None:
        """The deadline passed between slices. A handler that had already finished was
        only waiting for work it did not await, which PubNub does not guarantee: its own
        ending stands, and what was still under way is named (and stopped)."""
        if not self.handler_settled:
            return self._timeout_error(None)
        if self.replay is not None and self.replay.owes_changes():
            return self._diverged()  # it ended without a change the first attempt made
        answered = {id(held[1]) for held in self.held}  # replayed: finished the first time
        for record in self.open.values():
            if id(record) in answered:
                continue
            self.warnings.append(
                f"{record.label()} was still under way at the "
                f"{self.timeout:g} s time limit, after the handler had finished: pfunc "
                "stopped waiting for it (PubNub only guarantees awaited work; await it)"
            )
        return None

    def _timeout_error(self, stop: SandboxInterrupted | None) -> ExecutionError:
        deadline, limit = self.context.deadline, self.timeout
        elapsed = None if deadline is None or limit is None else time.monotonic() - deadline + limit
        return timeout_error(stop, self.executor.display_path, self.budget.profile, elapsed)

    def _diverged(self) -> ExecutionError:
        tape = None if self.replay is None else self.replay.tape
        why = (
            "it read performance.now() more than 20,000 times, past what pfunc keeps to "
            "read again, or its new context lacks module state the first had"
            if tape is not None and tape.get("perfDropped")
            else "from module state its new context does not share, say"
        )
        return ExecutionError(
            "Error",
            f"{self.executor.display_path}: the handler ran JavaScript for more than "
            f"{INLINE_GUARD * 1000:.0f} ms at once after changing something, while pfunc dev ran "
            "it on its own loop (it had always been quick). pfunc started it again on a thread, "
            "giving it the answers of the calls already made, but this time it made other calls "
            f"({why}), so it was stopped rather than repeat a change. It runs on a thread from "
            "now on: send the event again",
        )

    async def _dispatch(
        self, call: list[Any], settlements: list[tuple[int, bool, str | None]]
    ) -> None:
        """Charge, record and perform one host call; in-line results join `settlements`."""
        call_id, module_name, method, raw_args = _checked_call(call)
        args = [JSArg(arg) for arg in raw_args]
        route = route_of(module_name, method)
        if not route.host or (route.internal and module_name not in self.sandbox.internal_modules):
            # Only a handler that forged a host call gets here: refuse, don't perform.
            error = HandlerCallError("TypeError", f"require: no module {module_name!r}")
            settlements.append((call_id, False, error.to_payload()))
            return
        module = self.modules[module_name]
        try:
            key = module.key_of(method, args)
            record = self.budget.charge(module_name, method, route.kind, key)
        except OperationLimitExceeded as refused:
            self._warn_limit(str(refused))
            error = HandlerCallError("Error", str(refused), "OPERATION_LIMIT")
            settlements.append((call_id, False, error.to_payload()))
            return
        # Counted, as every call is, but the module has no such method, or an argument is
        # one no module can read (calls.unreadable_argument).
        error = route.unknown or unreadable_argument(route.label, args)
        if error is not None:
            record.settle(False, error.to_payload())
            settlements.append((call_id, False, error.to_payload()))
            return
        callback = callback_warning(route.label, args, self.sandbox.language)
        if callback is not None and route.label not in self.given_callbacks:
            self.given_callbacks.append(route.label)
            self.warnings.append(callback)
        if self.handler_settled:
            self._mark_unawaited(record)
        if self.replay is not None:  # a re-run after the in-line guard: answered already?
            try:
                replayed = self.replay.match(module_name, method, raw_args)
            except ReplayDiverged:
                record.settle(False, _NOT_PERFORMED)
                raise
            if replayed is not None:
                answer, batch = replayed
                if batch is None:  # answered where it was made, the first time too
                    record.settle(*answer)
                    settlements.append((call_id, *answer))
                else:
                    self.open[call_id] = record
                    self.held.append((call_id, record, answer, batch))
                return
        journal = self.journal
        entry = None if journal is None else journal.made(module_name, method, raw_args)
        if not route.read:  # performed below: an in-line re-run would repeat it
            self.changed = True
        if module.waits(method, args, self.context):
            self.open[call_id] = record
            # Network and bus calls belong to the server's loop (runtime.main_loop).
            work = _invoke(module, route.label, method, args, self.context)
            home = self.executor.runtime.main_loop
            # A publish is on its way once made: it outlives this execution (start_kept).
            start = start_kept if route.kind == "publish" else start_task
            task = start(work, home)
            self.tasks[task] = (call_id, record, entry)
            return
        # Local work (SQLite, hashing): awaited in line, no task and no event-loop turn.
        try:
            payload = await module.call(method, args, self.context)
        except Exception as error:
            answer = (False, _rejection(error, route.label))
        else:
            answer = (True, payload)
        record.settle(*answer)
        settlements.append((call_id, *answer))
        if entry is not None:
            entry.answer = answer

    def _mark_unawaited(self, record: CallRecord) -> None:
        if record.unawaited:
            return
        record.unawaited = True
        self.unawaited.append(record)

    def said(self) -> list[str]:
        """The loop's warnings, and one for each call the handler left running, as it ended."""
        return self.warnings + [record.unawaited_warning() for record in self.unawaited]

    def _warn_limit(self, message: str) -> None:
        if self.limit_warned:
            return
        self.limit_warned = True
        self.warnings.append(
            f"{message}; the call was not performed. Combine work into fewer calls (e.g. one "
            "object under one key), or choose another profile with --limits"
        )


_NOT_PERFORMED = HandlerCallError(
    "Error", "not performed: the execution started again made other calls than the first time"
).to_payload()


def _checked_call(call: Any) -> tuple[int, str, str, list[dict[str, Any]]]:
    """A queued host call as pfunc's own code writes it, or CORRUPTED: anything else was
    written by a handler that tampered with the sandbox."""
    if (
        isinstance(call, list)
        and len(call) == 4
        and isinstance(call[0], int)
        and isinstance(call[1], str)
        and isinstance(call[2], str)
        and isinstance(call[3], list)
        and all(isinstance(arg, dict) for arg in call[3])
    ):
        return call[0], call[1], call[2], call[3]
    raise SandboxInterrupted(CORRUPTED, "")


async def _invoke(
    module: HostModule, call: str, method: str, args: list[JSArg], context: CallContext
) -> tuple[bool, str | None]:
    try:
        return True, await module.call(method, args, context)
    except Exception as error:
        return False, _rejection(error, call)


def _rejection(error: Exception, call: str) -> str:
    """The payload a failed call's Promise rejects with."""
    if isinstance(error, HandlerCallError):
        return error.to_payload()
    if isinstance(error, UnicodeEncodeError):  # a handler's string UTF-8 cannot carry
        return HandlerCallError(
            "TypeError",
            f"{call}: an argument holds a lone surrogate, which is not valid Unicode; use "
            "text that UTF-8 can carry",
        ).to_payload()
    # A fault below the module (e.g. the disk): reject the call, don't crash the run.
    return HandlerCallError("Error", f"pfunc could not complete the call: {error}").to_payload()
