"""When the dev server runs a JavaScript function on its own event loop instead of on a
sandbox thread of its own.

A thread per sandbox keeps a runaway handler from stalling the server, but each
execution then pays a thread hop and GIL handoffs: measured, 2.5x the cost of the same
execution in line. So a function runs in line once it has shown itself quick (every
slice of JavaScript under FAST_SLICE for PROMOTE_AFTER executions running), and each
in-line slice is held to INLINE_GUARD. A slice that outgrows the guard is stopped (QuickJS
cannot pause it), the function goes back to threads, and the execution starts again on a
thread, given the answers of the calls it had made and the clock and random values it
had read (Journal, Replay), so that it ends as production would have ended it. A reload
starts the new code on threads again.
"""

from __future__ import annotations

from typing import Any

FAST_SLICE = 0.005  # seconds: a slice this quick marks an execution as quick
PROMOTE_AFTER = 20  # quick executions in a row before the function runs in line
INLINE_GUARD = 0.05  # seconds an in-line slice may run before it is stopped
# An in-line execution hands the loop back at least this often (seconds of wall time), so
# a handler whose calls all answer at once (a retry loop on a refused call) cannot hold it.
YIELD_EVERY = 0.005

# Calls that change nothing (repeating them is harmless): an execution stopped by the
# guard after only these starts again on a thread.
READS = {
    "kvstore": frozenset({"get", "getItem", "getCounter", "getKeys", "getCounterKeys"}),
    "vault": frozenset({"get"}),
    "pubnub": frozenset(
        {
            "time",
            "history",
            "fetchMessages",
            "messageCounts",
            "hereNow",
            "whereNow",
            "getState",
            "getMessageActions",
            "channelGroups.listChannels",
            "channelGroups.listGroups",
            "push.listChannels",
            "objects.getUUIDMetadata",
            "objects.getAllUUIDMetadata",
            "objects.getChannelMetadata",
            "objects.getAllChannelMetadata",
            "objects.getMemberships",
            "objects.getChannelMembers",
            "listFiles",
        }
    ),
}


def is_read(module: str, method: str) -> bool:
    return method in READS.get(module, ())


class JournalEntry:
    """One host call an in-line attempt made, and its answer once it had one."""

    __slots__ = ("answer", "args", "batch", "method", "module")

    def __init__(self, module: str, method: str, args: list[dict[str, Any]]) -> None:
        self.module = module
        self.method = method
        self.args = args  # as the sandbox encoded them: compared, never performed again
        self.answer: tuple[bool, str | None] | None = None  # (ok, payload) once settled
        # For a call that ran as a task (network, bus): which of the execution's waits for
        # tasks delivered its answer (1 for the first). None: answered where it was made.
        self.batch: int | None = None

    def matches(self, module: str, method: str, args: list[dict[str, Any]]) -> bool:
        return self.module == module and self.method == method and self.args == args

    @property
    def read(self) -> bool:
        return is_read(self.module, self.method)


class Journal:
    """The host calls of an in-line execution, in the order the handler made them, so that
    the attempt that starts again on a thread after the guard can be given the answers of
    those already performed instead of performing them twice."""

    def __init__(self) -> None:
        self.entries: list[JournalEntry] = []
        # The clock and random values it read (sandbox.Tape), read after the stop.
        self.tape: dict[str, Any] | None = None

    def made(self, module: str, method: str, args: list[dict[str, Any]]) -> JournalEntry:
        entry = JournalEntry(module, method, args)
        self.entries.append(entry)
        return entry

    def replayable(self) -> bool:
        """False when a change was still under way at the stop (a publish or a fetch in
        flight): whether it happened is unknown, so it can be neither replayed nor repeated."""
        return all(entry.answer is not None or entry.read for entry in self.entries)


class ReplayDiverged(Exception):
    """The attempt on a thread made calls other than the in-line attempt's, while a change
    that attempt performed was still to be matched: repeating it is not safe."""


class Replay:
    """Feeds a journal's answers to the attempt that starts again on a thread, call by call,
    as long as it makes the same changes in the same order. Reads may differ (its new
    context has other module state: a cache it fills, a read its top-level code makes):
    a read with no recorded match is performed live, and recorded reads it skips are
    dropped; both are harmless to repeat or to leave out."""

    def __init__(self, journal: Journal) -> None:
        self._pending = list(journal.entries)
        self.tape = journal.tape  # read again, in order, by the attempt on a thread

    def match(
        self, module: str, method: str, args: list[dict[str, Any]]
    ) -> tuple[tuple[bool, str | None], int | None] | None:
        """The recorded answer for this call and the wait that delivered it (None: where
        it was made), or None to perform the call (no recorded match for a read, the
        journal is spent, or it was a read that had no answer yet). Raises
        ReplayDiverged for a change that the journal's next change is not."""
        for index, entry in enumerate(self._pending):
            if entry.matches(module, method, args):
                del self._pending[: index + 1]  # with the recorded reads it skipped
                return None if entry.answer is None else (entry.answer, entry.batch)
            if not entry.read:
                break  # a change is never skipped
        if is_read(module, method) or not self.owes_changes():
            return None
        raise ReplayDiverged

    def owes_changes(self) -> bool:
        """A change the in-line attempt performed has not been matched (yet)."""
        return any(not entry.read for entry in self._pending)


class InlineGuardStop(Exception):
    """An in-line slice of JavaScript (or a load) ran past INLINE_GUARD and was stopped;
    `changed` when a call the execution performed before it was not a read, and `journal`,
    the calls it made (None for a load)."""

    def __init__(self, changed: bool = False, journal: Journal | None = None) -> None:
        super().__init__("in-line guard")
        self.changed = changed
        self.journal = journal


# An in-line execution that would not have been promoted (a slice over FAST_SLICE, or more
# than 4 of them in all) counts a strike, a quick one takes a quarter of one away: at
# SLOW_STRIKES the function goes back to threads. A one-off pause (a garbage collection)
# is forgiven; a function that became steadily slower (10 ms of work a request, well under
# the guard, but every request holding every other on the loop) is not.
SLOW_STRIKES = 3.0
# Each time a function is sent back it must show itself quick for twice as many runs
# (at most PROMOTE_AFTER * 2**MAX_BACKOFF) before it runs in line again.
MAX_BACKOFF = 6


class InlinePolicy:
    """Whether one function's executions run in line, from how quick they have been."""

    def __init__(self, allowed: bool) -> None:
        self.allowed = allowed  # a JavaScript function in the dev server
        self.quick_runs = 0
        self.strikes = 0.0  # in line: how slow it has been lately (see SLOW_STRIKES)
        self.demotions = 0  # since its code loaded: each doubles the runs to show quick
        # Its top-level code outgrew the guard: loading in line again would only repeat that.
        self.slow_to_load = False

    @property
    def promote_after(self) -> int:
        return PROMOTE_AFTER * 2 ** min(self.demotions, MAX_BACKOFF)

    @property
    def inline(self) -> bool:
        return self.allowed and not self.slow_to_load and self.quick_runs >= self.promote_after

    def observed(self, slowest_slice: float, total: float) -> None:
        """After each execution: its slowest slice and all its slices together, in CPU
        seconds of the running thread (waiting for the GIL under load is not the handler
        being slow). In line, a slice that nears the guard, or the execution as a whole
        outgrowing it, sends the function back to threads at once; executions that would
        not have been promoted do after SLOW_STRIKES."""
        quick = slowest_slice < FAST_SLICE and total < 4 * FAST_SLICE
        if self.inline:
            if slowest_slice >= INLINE_GUARD / 2 or total >= INLINE_GUARD:
                self.demote()
                return
            self.strikes = max(0.0, self.strikes - 0.25) if quick else self.strikes + 1
            if self.strikes >= SLOW_STRIKES:
                self.demote()
        elif quick:
            self.quick_runs += 1
        else:
            self.quick_runs = 0

    def demote(self) -> None:
        """Back to threads (a slow slice, or slow executions)."""
        if self.inline:
            self.demotions += 1
        self.quick_runs = 0
        self.strikes = 0.0

    def load_was_slow(self) -> None:
        """Loading in line outgrew the guard: threads, until new code loads."""
        self.demote()
        self.slow_to_load = True

    def reloaded(self) -> None:
        """New code starts on threads, and may show itself quick to load."""
        self.quick_runs = 0
        self.strikes = 0.0
        self.demotions = 0
        self.slow_to_load = False
