"""The JavaScript language host: one QuickJS context running one loaded handler.

A context is loaded once (prelude, then the handler module and its top-level code)
and then serves many executions, like a warm PubNub instance. The executor drives it
slice by slice: start, run pending jobs, poll the host-call queue, settle, finish.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

import quickjs

from pfunc.errors import HandlerLoadError
from pfunc.jsonio import parsed_size, plain_loads, well_formed
from pfunc.sandbox import (
    CORRUPTED,
    MAX_LOADS,
    TIMEOUT,
    SandboxInterrupted,
    Tape,
    ThrownByTheEngine,
)
from pfunc.sandbox.engine_stops import ENGINE_STOPS, interruption
from pfunc.sandbox.source import load_error, prelude, prepare_module
from pfunc.sandbox.time_limit import TimeLimit, raise_pending

if TYPE_CHECKING:
    from pfunc.sandbox.threads import SandboxThread

# Serialising an execution's report takes microseconds; the handler's own toJSON, no more.
FINISH_SECONDS = 0.05
# What reusable() measures the growth of a context without a memory limit against.
_UNLIMITED_ALLOWANCE = 64 * 1024 * 1024
# Extra memory granted after a blow-up so the execution's logs can still be read.
_RESCUE_MEMORY = 16 * 1024 * 1024


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _js_number(value: int | None) -> float | None:
    # As a float: the binding converts Python ints to 32-bit JS integers.
    return None if value is None else float(value)


def _report_shaped(details: Any) -> bool:
    """What the prelude's finish writes; anything else means the handler changed what
    writes it (a built-in the envelope could not set aside)."""
    if not isinstance(details, dict) or not isinstance(details.get("tampered"), str):
        return False
    logs, warnings = details.get("logs"), details.get("warnings")
    return (
        isinstance(logs, list)
        and all(isinstance(entry, dict) and isinstance(entry.get("text"), str) for entry in logs)
        and isinstance(warnings, list)
        and all(isinstance(warning, str) for warning in warnings)
        and isinstance(details.get("completion"), dict | None)
        and isinstance(details.get("error"), dict | None)
        and type(details.get("consoleDropped")) is int
    )


class JavaScriptSandbox:
    """A loaded JavaScript handler, ready to run executions."""

    internal_modules: tuple[str, ...] = ()
    language = "javascript"
    sync_builtins = None  # the synchronous built-ins run inside the context itself
    returned = False  # its settling reaches the host with its calls (poll)

    def __init__(
        self,
        source: str,
        display_path: str,
        memory: int | None,
        timeout: float | None,
        now_ms: int | None = None,
        random_seed: int | None = None,
        reused: bool = False,
        guarded_load: bool = False,
    ):
        self.display_path = display_path
        self.source = source
        self.memory = memory
        self.broken = False  # set after an interruption: the context must not be reused
        # The thread this sandbox lives on, when it has one of its own (the dev server).
        self.home: SandboxThread | None = None
        self.generation = 0  # which version of the source, for the executor's reloads
        self._context = quickjs.Context()
        self._limit = TimeLimit(self._context)
        if memory is not None:
            self._context.set_memory_limit(memory)
        self._context.eval(prelude())
        entry = self._context.get
        self._start = entry("__pfunc_api_start")
        self._poll = entry("__pfunc_api_poll")
        self._settle = entry("__pfunc_api_settle")
        self._finish = entry("__pfunc_api_finish")
        # Top-level code reads the execution clock (and seeded randomness) too.
        entry("__pfunc_api_setClock")(_js_number(now_ms))
        self._seed = entry("__pfunc_api_seedRandom")
        self._unload = entry("__pfunc_api_unload")
        self._read_tape = entry("__pfunc_api_readTape")
        self._tampered = entry("__pfunc_api_tampered")
        self._pristine = entry("__pfunc_api_pristine")
        if random_seed is not None:
            self._seed(_js_number(random_seed % 2**32))
        # Stacks the handler sees name its file and quote its source (prelude, "stacks").
        entry("__pfunc_api_setHandler")(display_path, source)
        if reused:  # handed from test run to test run: its built-ins as pfunc left them
            entry("__pfunc_api_record")()
        self.load_timeout = timeout
        self.guarded_load = guarded_load  # its timeout is the in-line guard (CPU time)
        self.jobs = 0  # Promise jobs the execution in progress has run
        self.event_size = 0  # what its event holds (see finish)
        self.loads = 1  # times its handler module was evaluated (see renew)
        self._load(timeout)
        self._loaded_size = self._memory_size()  # what one load takes, for reusable()

    # --- loading -------------------------------------------------------------------

    def _load(self, timeout: float | None) -> None:
        module_source = prepare_module(self.source, self.display_path)
        self.set_time_limit(timeout, on_cpu=self.guarded_load)
        try:
            promise = self._context.module(module_source)
            self._context.get("__pfunc_api_watchLoad")(promise)
            self.run_jobs(timeout)
            # Serialising the state may run the handler's code (a toJSON on
            # Object.prototype): still under the load's limit.
            state_text = self._context.get("__pfunc_api_loadState")()
        except SandboxInterrupted as stop:
            raise self._load_interrupted(stop) from None
        except ThrownByTheEngine as thrown:
            raise load_error(thrown.engine_text, self.display_path, self.source) from None
        except quickjs.JSException as error:
            self._raise_pending()
            stop = interruption(error)
            if stop is None:
                raise load_error(str(error), self.display_path, self.source) from None
            raise self._load_interrupted(stop) from None
        finally:
            self.set_time_limit(None)
        state = json.loads(state_text)
        if state["error"]:
            info = state["error"]
            # Top-level code runs as a module, whose Promise rejects with the engine's own
            # interruption: it ran out of time (or memory), it did not throw.
            if info["type"] == "InternalError" and info["message"] in ENGINE_STOPS:
                reason = ENGINE_STOPS[info["message"]]
                raise self._load_interrupted(SandboxInterrupted(reason, info["message"]))
            raise load_error(
                f"{info['type']}: {info['message']}\n{info['stack']}", self.display_path
            )
        if state["type"] != "function":
            # Where the export is (the start of the file when there is none).
            found = re.search(r"^[ \t]*export\s+default\b", self.source, re.MULTILINE)
            line = self.source.count("\n", 0, found.start()) + 1 if found else 1
            where = f"{self.display_path}:{line}:1"
            problem = (
                "no default export; a PubNub Function module must export its handler, e.g. "
                "export default (request) => request.ok();"
                if state["type"] == "undefined"
                else f"the default export is a {state['type']}, not a function; export the "
                "handler function itself"
            )
            raise HandlerLoadError("LoadError", f"{where}: {problem}", line=line, column=1)

    def _load_interrupted(self, stop: SandboxInterrupted) -> HandlerLoadError:
        what = "time" if stop.reason == TIMEOUT else "memory"
        return HandlerLoadError(
            "TimeoutError" if stop.reason == TIMEOUT else "MemoryError",
            f"{self.display_path}: the module's top-level code ran out of {what} while "
            "loading; move long work into the handler or remove the loop",
        )

    # --- slices of one execution -----------------------------------------------------

    def set_time_limit(self, seconds: float | None, on_cpu: bool = False) -> None:
        """The execution's limit, on the wall clock; `on_cpu`: a guard of pfunc's own (the
        in-line guard), in this thread's CPU time (time_limit.py)."""
        try:
            self._limit.arm(seconds, on_cpu=on_cpu)
        except BaseException:  # a Ctrl-C that stopped its last entry: not to be reused
            self.broken = True
            raise

    def _raise_pending(self) -> None:
        """A Ctrl-C that stopped the engine's last entry: raised, the context not reused."""
        if self._limit.pending():
            self.broken = True
            raise_pending()

    def _broken_by(self, error: Exception, job: bool = False) -> SandboxInterrupted:
        """Mark the context unusable after an interruption, or re-raise a real fault (or
        a Ctrl-C that stopped the JavaScript: time_limit.raise_pending); what an engine
        `job` threw is the handler's (ThrownByTheEngine)."""
        self._raise_pending()
        stop = interruption(error)
        # The binding could not word what it had: stopped (a toString held by the limit).
        unworded = "(Failed obtaining QuickJS error string" in str(error) and self._limit.native
        if stop is None and (unworded or self._limit.expired()):
            stop = SandboxInterrupted(TIMEOUT, str(error))
        if stop is None and job and isinstance(error, quickjs.JSException):
            self.broken = True
            raise ThrownByTheEngine(str(error))
        if stop is None:
            raise error
        self.broken = True
        return stop

    def start(self, event_json: str, now_ms: int | None) -> None:
        self.jobs = 0
        self.event_size = parsed_size(event_json)
        try:
            self._start(event_json, _js_number(now_ms))
        except (quickjs.JSException, MemoryError) as error:
            raise self._broken_by(error) from None

    def run_jobs(self, seconds: float | None) -> None:
        """Run queued jobs until none is left, within the `seconds` the limit was armed
        with. QuickJS runs each job (a microtask) as an engine entry of its own: pfunc's
        limit holds across entries, but the binding's counts from each, so `for (;;) await
        null;` would never be stopped by it; under that one the deadline is checked here."""
        context = self._context
        deadline = None
        if seconds is not None and not self._limit.native:
            deadline = time.monotonic() + seconds
        jobs = 0
        try:
            while context.execute_pending_job():
                jobs += 1
                if deadline is not None and jobs % 64 == 0 and time.monotonic() > deadline:
                    self.broken = True  # stopped mid-chain: this context must not run again
                    raise SandboxInterrupted(TIMEOUT, "")
        except (quickjs.JSException, MemoryError) as error:
            raise self._broken_by(error, job=True) from None
        finally:
            self.jobs += jobs

    def poll(self) -> tuple[bool, list[Any]]:
        """(handler settled?, host calls queued since the last poll)."""
        try:
            text: str = self._poll()
        except (quickjs.JSException, MemoryError) as error:
            raise self._broken_by(error) from None
        if text in ("S", "R"):
            return text == "S", []
        try:
            settled, calls = plain_loads(text)
            if not isinstance(settled, bool) or not isinstance(calls, list):
                raise ValueError
        except (TypeError, ValueError):
            self.broken = True
            raise SandboxInterrupted(CORRUPTED, "") from None
        return settled, calls

    def settle(self, call_id: int, ok: bool, payload: str | None) -> None:
        try:
            self._settle(call_id, ok, payload)
        except (quickjs.JSException, MemoryError) as error:
            raise self._broken_by(error) from None

    def advance(
        self,
        remaining: float | None,
        settlements: list[tuple[int, bool, str | None]],
        start: tuple[str, int | None] | None = None,
        guard: bool = False,
    ) -> tuple[bool, list[Any]]:
        """One round: start or settle, run the JavaScript until it waits, collect host calls
        (`guard`: `remaining` is the in-line guard, counted in CPU time).

        One call per round keeps crossings few, which matters most when the sandbox lives
        on its own thread (the dev server) and each call is a thread hop.
        """
        # The limit holds for every entry into the engine: settling and polling run pfunc's
        # prelude, but that can reach the handler's code too (a `then` getter on a resolved
        # value, a toJSON on Object.prototype while the queue is serialised).
        self.set_time_limit(remaining, on_cpu=guard)
        try:
            if start is not None:
                self.start(*start)
            for call_id, ok, payload in settlements:
                self.settle(call_id, ok, payload)
            self.run_jobs(remaining)
            return self.poll()
        finally:
            self.set_time_limit(None)

    def _memory_size(self) -> int:
        size: int = self._context.memory()["malloc_size"]
        return size

    def reusable(self) -> bool:
        """A context keeps every module evaluated in it, and whatever their top-level code
        allocated: reused while that stays small beside its memory limit, and only while
        the built-ins are as pfunc left them (a handler's Date.now = ..., or a property
        on Object.prototype, would reach the next test run)."""
        if self.loads >= MAX_LOADS or self.broken or not self._memory_allows_reuse():
            return False
        self.set_time_limit(FINISH_SECONDS, on_cpu=True)  # a getter in a built-in's place
        try:
            return self._pristine() == ""
        except (quickjs.JSException, MemoryError):
            return False
        finally:
            self.set_time_limit(None)

    def _memory_allows_reuse(self) -> bool:
        """Whether what the loads so far kept is under an eighth of the memory limit: the
        limit is lowered to that for one small allocation, refused past it (measuring the
        heap instead walks all of it: 30 us, and more as loads pile up)."""
        allowance = (self.memory or _UNLIMITED_ALLOWANCE) // 8
        self._context.set_memory_limit(self._loaded_size + allowance)
        try:
            self._context.parse_json("[0]")
            return True
        except (quickjs.JSException, MemoryError):
            return False
        finally:
            self._context.set_memory_limit(-1 if self.memory is None else self.memory)

    def renew(self, random_seed: int | None) -> None:
        """For a loaded context handed to another test run: seed its randomness, then
        evaluate the handler module again, as a new load would (its own module state, its
        top-level code's console lines and random draws), without making a new context.
        Raises HandlerLoadError as loading does."""
        self.set_time_limit(FINISH_SECONDS, on_cpu=True)  # pfunc's own code, but held all the same
        try:
            if random_seed is not None:
                self._seed(_js_number(random_seed % 2**32))
            unloaded = self._unload()
        except (quickjs.JSException, MemoryError):
            unloaded = False
        finally:
            self.set_time_limit(None)
        if unloaded is not True:  # a global it cannot remove: a new context
            raise HandlerLoadError("LoadError", "a global of the last load is in the way")
        self.loads += 1
        self._load(self.load_timeout)

    def close(self) -> None:
        """Let the sandbox's own thread (if any) end once its work is done."""
        if self.home is not None:
            self.home.close()

    def read_tape(self) -> Tape | None:
        """The clock and random values the execution in progress recorded (it was started
        with `recordTape`), read after the in-line guard stopped it; None if unreadable."""
        self.set_time_limit(FINISH_SECONDS, on_cpu=True)
        try:
            tape = json.loads(self._read_tape())
        except (quickjs.JSException, MemoryError, ValueError, TypeError):
            return None
        finally:
            self.set_time_limit(None)
        if not isinstance(tape, dict):
            return None
        values = {kind: tape.get(kind) for kind in ("now", "perf", "random")}
        if not all(isinstance(v, list) and all(map(_is_number, v)) for v in values.values()):
            return None  # not what pfunc's prelude records: give nothing rather than that
        state, origin = tape.get("randomState"), tape.get("perfOrigin")
        if not (isinstance(state, list) and len(state) == 4 and all(map(_is_number, state))):
            state = None
        origin = origin if _is_number(origin) else None
        dropped = tape.get("perfDropped") is True
        return {**values, "randomState": state, "perfOrigin": origin, "perfDropped": dropped}

    def tampered(self) -> str | None:
        """The built-in pfunc's side relies on that handler code replaced (its top-level
        code included), to explain a failure; None if none, or if it cannot be read."""
        self.set_time_limit(FINISH_SECONDS, on_cpu=True)
        try:
            name = self._tampered(True)
        except (quickjs.JSException, MemoryError):
            return None
        finally:
            self.set_time_limit(None)
        return name if isinstance(name, str) and name else None

    def _unreadable_report(self) -> dict[str, Any]:
        """The report of an execution whose report the handler's changes to the built-ins
        kept pfunc from reading (a toJSON on Object.prototype): an error that says so."""
        self.broken = True
        name = self.tampered()
        changed = f"replaced {name}" if name else "changed a built-in (a toJSON or getter?)"
        message = (
            f"{self.display_path}: the handler {changed}, which pfunc's side of the sandbox "
            "relies on, and the execution's report could not be read; its sandbox is "
            "replaced for the next execution"
        )
        return {"error": {"type": "Error", "message": message, "stack": ""}}

    def finish(self) -> dict[str, Any] | None:
        """The execution's completion, logs, warnings and error; None if unreadable (the
        report outgrew the memory limit).
        Raises SandboxInterrupted when the handler's code (a toJSON of its own) runs
        past FINISH_SECONDS while the report is serialised."""
        self.set_time_limit(FINISH_SECONDS, on_cpu=True)
        if self.broken and self.memory is not None:
            self._context.set_memory_limit(self.memory + _RESCUE_MEMORY)
        try:
            text = self._finish()
        except (quickjs.JSException, MemoryError) as error:
            self._raise_pending()
            if "interrupted" in str(error):
                self.broken = True
                raise SandboxInterrupted(TIMEOUT, str(error)) from None
            if interruption(error) is not None:
                return None  # out of memory
            text = None
        finally:
            self.set_time_limit(None)
        details = plain_loads(text) if isinstance(text, str) else None
        if not _report_shaped(details):
            return self._unreadable_report()
        if details["tampered"]:
            self.broken = True
            details["warnings"].append(
                f"the handler replaced {details['tampered']}, which pfunc's side of the "
                "sandbox relies on: the sandbox is replaced, so the next execution starts "
                "from a fresh load (and fresh module state)"
            )
        # What the execution's result holds that a handler can make large (the event, the
        # message it left, logs, response, error) is in these two texts: they weigh it for
        # the dev console without walking it.
        details["heldSize"] = self.event_size + parsed_size(text)
        error = details.get("error")
        if error and error.get("nullThrown"):
            error["nullThrown"] = self.jobs  # what outcome.handler_error weighs it by
        if "\\ud" in text or "\\uD" in text:  # a lone surrogate may be in a log line
            for entry in details.get("logs", []):
                entry["text"] = well_formed(entry["text"])
            details["warnings"] = [well_formed(w) for w in details.get("warnings", [])]
            completion = details.get("completion")
            if completion and isinstance(completion.get("body"), str):
                # A response's text goes out as UTF-8, as production's runtime sends it.
                completion["body"] = well_formed(completion["body"])
        return details
