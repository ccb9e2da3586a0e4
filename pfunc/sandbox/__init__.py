"""The sandbox interface: what a loaded handler offers the executor, in any language.

Two hosts implement it: `quickjs_host.JavaScriptSandbox` (a QuickJS context) and
`python_host.PythonSandbox` (a worker process). The executor drives either one round by
round (`advance`), then reads the outcome (`finish`); `pool.SandboxPool` keeps loaded
ones for reuse and drops them on reload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pfunc.sandbox.sync_builtins import SyncBuiltins
    from pfunc.sandbox.threads import SandboxThread

# Why the host stopped a handler before it finished.
TIMEOUT = "timeout"  # it ran past its time limit
MEMORY = "memory"  # it went past its memory limit
CRASHED = "crashed"  # its worker process died
CORRUPTED = "corrupted"  # what it sent the host was not pfunc's protocol (handler tampering)
INTERRUPT_REASONS = (TIMEOUT, MEMORY, CRASHED, CORRUPTED)

# The exit status of a Python worker that ran out of memory outside a handler's own code
# (its intermediate parent passes it on; any other ending is a crash).
WORKER_MEMORY_EXIT = 86

# Console output an execution keeps, in characters, each line weighing LINE_COST beside
# its text (empty lines add up too): past it lines are counted, not kept, in both
# languages (the prelude is given these), so a flood cannot grow pfunc or pfunc dev.
CONSOLE_BUDGET = 1 << 20
CONSOLE_LINE_COST = 32


def console_dropped(lines: int) -> str:
    """The warning for the lines an execution logged past CONSOLE_BUDGET."""
    return f"console output past 1 MiB in one execution was dropped: {lines} more line(s)"


# One settled host call: (call id, ok?, JSON payload or None for undefined).
Settlement = tuple[int, bool, str | None]


class ThrownByTheEngine(Exception):
    """A value the handler gave the engine, thrown by one of the engine's own promise jobs
    (a Promise subclass whose species' resolve throws), where no handler code could catch
    it: the handler's uncaught error. `engine_text` is QuickJS's words for it."""

    def __init__(self, engine_text: str) -> None:
        super().__init__(engine_text)
        self.engine_text = engine_text


class SandboxInterrupted(Exception):
    """The host stopped the handler; `reason` is one of INTERRUPT_REASONS."""

    def __init__(self, reason: str, engine_text: str = "", unseen: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.engine_text = engine_text  # the engine's message and stack: where it stopped
        # What the handler was doing cannot be seen (a Python worker that did not answer:
        # looping, asleep or awaiting), where an engine stopping JavaScript can.
        self.unseen = unseen


# The clock and random values an execution read, to be read again in order (prelude.js,
# __pfunc_newTape): "now", Date.now() and new Date() as runs [value, reads, value, ...];
# "perf" and "random", performance.now() and Math.random() value by value (at most
# 20,000: "perfDropped" when performance.now() read more); "randomState", the four words
# of state of the generator Math.random() draws from past its 20,000th value;
# "perfOrigin", the performance clock's origin in its context.
Tape = dict[str, Any]

# A sandbox reused for test runs loads its handler again each time (renew); a JavaScript
# context keeps every module evaluated in it, so one serves at most this many loads (what
# they keep is measured too: quickjs_host.py). A new context and the record of its
# built-ins cost ~5 ms, ~20 us a scenario spread over 256.
MAX_LOADS = 256


class Sandbox(Protocol):
    """A loaded handler, ready to run executions one at a time."""

    display_path: str
    broken: bool  # set after an interruption: must not be reused
    home: SandboxThread | None  # the thread it lives on, when it has one of its own
    generation: int  # the source version it was built from (the pool's reloads)
    source: str  # the handler's code it loaded
    # Internal host modules this language's handlers reach (Python: "builtin").
    internal_modules: tuple[str, ...]
    language: str  # "javascript" or "python": how errors name what a handler awaits
    # The handler returned while work it left runs on (Python: its asyncio tasks; a
    # JavaScript handler's settling reaches the host with its calls instead).
    returned: bool

    @property
    def sync_builtins(self) -> SyncBuiltins | None:
        """The context that answers this handler's synchronous built-ins on the host, for
        languages that need one (Python); None for JavaScript, which runs them itself."""
        ...

    def advance(
        self,
        remaining: float | None,
        settlements: list[Settlement],
        start: tuple[str, int | None] | None = None,
        guard: bool = False,
    ) -> tuple[bool, list[Any]]:
        """Start (with the event's JSON and clock) or settle calls, run the handler until it
        waits, and return (handler settled?, host calls made as [id, module, method, args]).
        `guard`: `remaining` is the dev server's in-line guard rather than what is left of
        the execution. Raises SandboxInterrupted."""
        ...

    def finish(self) -> dict[str, Any] | None:
        """The execution's completion, logs, warnings and error; None if unreadable."""
        ...

    def tampered(self) -> str | None:
        """The built-in pfunc's side of the sandbox relies on that handler code replaced,
        to explain a failure (JavaScript); None if none, or for a language without them."""
        ...

    def read_tape(self) -> Tape | None:
        """The clock and random values the execution in progress read (when asked to
        record them: in line on pfunc dev), for an attempt that starts again."""
        ...

    def reusable(self) -> bool:
        """Whether loading the handler in it again (renew) would still start like a new
        one: not once what earlier loads left behind has piled up."""
        ...

    def renew(self, random_seed: int | None) -> None:
        """Load the handler again in this sandbox, as a new one would load it (its
        randomness seeded with `random_seed`), for another test run. Raises
        HandlerLoadError."""
        ...

    def close(self) -> None: ...
