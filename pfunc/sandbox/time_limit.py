"""The time limit of a QuickJS context: pfunc's own, through the engine's interrupt handler.

The binding's own limit (Context.set_time_limit) counts the whole process's CPU time and
reads that clock at every entry into the engine (a system call each, ~20 an execution):
other busy threads of pfunc's made it fire early, other programs late. QuickJS itself
stops code through an interrupt handler it asks every few thousand instructions; the
binding exports the C API, so pfunc installs a handler of its own on the runtime of each
context the main thread makes (see TimeLimit). The execution's own limit is on the wall
clock, as PubNub's is (a slice stops when the execution's time is up, however busy the
machine); pfunc's short guards (the in-line guard of the dev server's loop, the report's
writing) count the running thread's CPU time, so that a busy machine does not trip them.
Contexts on other threads keep the binding's handler (C, no GIL), the execution's limit
brought forward to its wall-clock deadline by a watchdog thread (wall_watchdog.py).

Reaching the runtime means reading the binding's Context object, a private layout; it is
checked before use (the runtime it names must be the one its context belongs to, its
flag must follow set_time_limit, and the handler must stop a loop), and when the check
fails pfunc falls back to the binding's limit (`native()` is False). Host calls are not
made into Python from JavaScript even though this limit would allow it: see prelude.js.
docs/performance-notes.md has the measurements.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import threading
import time
from typing import Any

import quickjs

from pfunc.sandbox.wall_watchdog import WATCHDOG

_NO_LIMIT = math.inf
# Per context (its token): [the time its JavaScript must stop at, whether that is the
# thread's CPU time (else the wall clock)].
_limits: dict[int, list[Any]] = {}
# An exception raised in the interrupt handler (a Ctrl-C arrives in whatever Python code
# the main thread runs, this handler included), by thread: the JavaScript is stopped and
# the exception raised again once the engine has returned (raise_pending).
_pending: dict[int, BaseException] = {}
_tokens = itertools.count(1)  # each context's key (the handler's opaque argument)
_native: bool | None = None  # probed on first use, once, under _probing
_probing = threading.Lock()
_api: Any = None  # (the C library, the handler, no handler) once probed
# Whether the binding's limit can be brought forward to a wall-clock deadline by the
# watchdog (_binding_limit_can_be_stopped), probed with the rest.
_stoppable = False
# No process spends more CPU time than this many times the wall time that passes.
_CPUS = os.cpu_count() or 1
_MAIN_THREAD = threading.main_thread().ident


def _interrupt(_runtime: int, opaque: int) -> int:
    # Called by QuickJS every few thousand instructions while JavaScript runs; nonzero
    # stops it with an "interrupted" InternalError, as the binding's own limit does.
    try:
        if _pending and threading.get_ident() in _pending:
            return 1  # a Ctrl-C arrived here: stop, for raise_pending to raise it
        limit = _limits.get(opaque)
        if limit is None:
            return 0
        now = time.thread_time() if limit[1] else time.monotonic()
        return 1 if now > limit[0] else 0
    except BaseException as error:  # a KeyboardInterrupt, or the interpreter shutting down
        _pending[threading.get_ident()] = error
        return 1


def _unraisable(unraisable: Any) -> None:
    """sys.unraisablehook: an exception raised as _interrupt was entered, before its own
    handler (a Ctrl-C lands at a function's first instruction) is kept for raise_pending
    instead of being printed and lost; QuickJS is stopped at its next call."""
    ours = unraisable.object is _interrupt or (  # (Python 3.13 names it in the message)
        unraisable.object is None and repr(_interrupt) in str(unraisable.err_msg or "")
    )
    if ours and unraisable.exc_value is not None:
        _pending[threading.get_ident()] = unraisable.exc_value
        return
    _previous_unraisable(unraisable)


_previous_unraisable: Any = sys.__unraisablehook__  # the hook there was when ours went in


def raise_pending() -> None:
    """Raise what arrived in the interrupt handler on this thread (a Ctrl-C), if anything:
    called where the engine's "interrupted" error is read."""
    error = _pending.pop(threading.get_ident(), None)
    if error is not None:
        raise error


# The binding's Context object, as pfunc reads it: after PyObject_HEAD, one pointer-wide
# slot each for the runtime, the context, has_time_limit (an int, padded), time_limit
# (the limit set_time_limit keeps), the saved thread state, then the interrupt data
# (start, and the limit an entry into the engine copies and checks); the clock values
# are C longs on the platforms QuickJS's wheels are built for.
_RUNTIME, _CONTEXT, _HAS_LIMIT, _KEPT_LIMIT, _CHECKED_LIMIT = 0, 1, 2, 3, 6


def _slot(context: quickjs.Context, index: int, kind: Any) -> Any:
    """The `index`th slot of the binding's Context object, as a ctypes `kind`."""
    import ctypes

    pointer = ctypes.sizeof(ctypes.c_void_p)
    head = ctypes.sizeof(ctypes.c_ssize_t) + pointer  # PyObject_HEAD
    return kind.from_address(id(context) + head + index * pointer)


def _pointers(context: quickjs.Context) -> tuple[int, int, int]:
    """(runtime, context, has_time_limit) as the binding's Context object holds them."""
    import ctypes

    runtime = _slot(context, _RUNTIME, ctypes.c_void_p).value or 0
    engine = _slot(context, _CONTEXT, ctypes.c_void_p).value or 0
    return runtime, engine, _slot(context, _HAS_LIMIT, ctypes.c_int).value


def _binding_limits(context: quickjs.Context) -> tuple[Any, Any]:
    """The binding's own limit of a context, in clock ticks: (the limit set_time_limit
    keeps, the copy an entry into the engine checks)."""
    import ctypes

    return (
        _slot(context, _KEPT_LIMIT, ctypes.c_long),
        _slot(context, _CHECKED_LIMIT, ctypes.c_long),
    )


def _binding_limit_can_be_stopped(context: quickjs.Context) -> bool:
    """Whether the binding's limit of `context` is laid out as _binding_limits reads it:
    the limit set is in both places after an entry into the engine, in microsecond ticks,
    and an entry made with the kept one written down to nothing copies that and stops."""
    kept, checked = _binding_limits(context)
    context.set_time_limit(60)
    try:
        context.eval("0")  # an entry: it copies the limit kept into the one it checks
        if kept.value != 60_000_000 or checked.value != 60_000_000:
            return False
        kept.value = 0
        try:
            context.eval("for (let i = 0; i < 2e7; i++) {}")  # bounded, should it not stop
            return False
        except quickjs.JSException as error:
            return "interrupted" in str(error) and checked.value == 0
    finally:
        context.set_time_limit(-1)


def _probe(context: quickjs.Context) -> bool:
    """Whether the binding is laid out as pfunc reads it, proven on a new context (before
    anything else runs in it)."""
    global _api, _previous_unraisable, _stoppable
    try:
        import ctypes

        import _quickjs  # the binding's extension module, which exports QuickJS's C API

        library = ctypes.CDLL(_quickjs.__file__)
        handler_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
        library.JS_SetInterruptHandler.argtypes = [
            ctypes.c_void_p,
            handler_type,
            ctypes.c_void_p,
        ]
        library.JS_SetInterruptHandler.restype = None
        library.JS_GetRuntime.argtypes = [ctypes.c_void_p]
        library.JS_GetRuntime.restype = ctypes.c_void_p
        handler = handler_type(_interrupt)
        # Never freed, not even as the interpreter shuts down while a daemon thread's
        # JavaScript still runs: a runtime may call every handler ever handed to it until
        # the process ends (a freed callback called from C is a segmentation fault).
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(handler))
        runtime, engine, unarmed = _pointers(context)
        context.set_time_limit(60)
        armed = _pointers(context)[2]
        context.set_time_limit(-1)
        if not runtime or not engine or library.JS_GetRuntime(engine) != runtime:
            return False
        if (unarmed, armed, _pointers(context)[2]) != (0, 1, 0):
            return False
        # It must stop a loop.
        token = next(_tokens)
        library.JS_SetInterruptHandler(runtime, handler, token)
        _limits[token] = [time.monotonic() + 0.001, False]
        try:
            # Bounded (a tenth of a second or so), should the handler never be asked.
            context.eval("for (let i = 0; i < 2e7; i++) {}")
            return False
        except quickjs.JSException as error:
            if "interrupted" not in str(error):
                return False
        finally:
            # (The handler stays, answering "go on" without a deadline: the binding's own
            # limit replaces it at each entry if this probe fails.)
            _limits.pop(token, None)
        _api = (library, handler, handler_type())  # (a null function pointer: none)
        _stoppable = _binding_limit_can_be_stopped(context)
        _previous_unraisable = sys.unraisablehook
        sys.unraisablehook = _unraisable
        return True
    except Exception:  # no ctypes, no symbol, another layout: the binding's own limit
        return False


def native(context: quickjs.Context | None = None) -> bool:
    """Whether pfunc's own limit is in use: probed once, on `context` if given (new)."""
    global _native
    if _native is None:
        # Contexts made on several threads at once (the dev server loads its functions
        # so) must not each probe: one handler, proven once.
        with _probing:
            if _native is None:
                _native = _probe(context or quickjs.Context())
    return _native


class TimeLimit:
    """The time limit of one context: pfunc's own while the context is used on the main
    thread (and native()), else the binding's (which counts the process's CPU time at each
    entry into the engine). Decided at each arming: the dev server moves idle contexts
    between its loop (the main thread, running quick functions in line) and threads of
    their own.

    Only the main thread's: pfunc's handler is Python, so each of its calls takes the GIL,
    and JavaScript on a thread of its own (a dev-server function not in line) would wait
    for the busy server's loop every few thousand instructions (measured: 7x slower). The
    binding's handler is C. Its check counts the process's CPU time, so an execution's
    limit there is held to the wall clock by the watchdog (wall_watchdog.py), which brings
    the binding's limit forward to the deadline from a thread of its own."""

    def __init__(self, context: quickjs.Context) -> None:
        self._context = context
        self._token = 0
        self._installed = False  # pfunc's handler is the runtime's (not the binding's)
        # Off the main thread: when the binding's limit must stop on the wall clock (read
        # by the watchdog), and the lock that keeps its stops and the arming apart.
        self.deadline = _NO_LIMIT
        self._guard = threading.Lock()
        self._watched = False  # the watchdog keeps this context's deadlines
        if native(context):
            self._token = next(_tokens)
            _limits[self._token] = [_NO_LIMIT, False]
            if threading.get_ident() == _MAIN_THREAD:
                self._install()

    def _install(self) -> None:
        library, handler, _ = _api
        self._context.set_time_limit(-1)  # (the binding's handler comes off at its next exit)
        library.JS_SetInterruptHandler(_pointers(self._context)[0], handler, self._token)
        self._installed = True

    def _uninstall(self) -> None:
        library, _, no_handler = _api
        library.JS_SetInterruptHandler(_pointers(self._context)[0], no_handler, None)
        _limits[self._token][0] = _NO_LIMIT
        self._installed = False

    @property
    def native(self) -> bool:
        """Whether pfunc's own limit holds the context now (else the binding's)."""
        return self._installed

    def pending(self) -> bool:
        """Whether a Ctrl-C (or another exception) arrived in pfunc's handler on this
        thread and waits for raise_pending."""
        return bool(_pending) and threading.get_ident() in _pending

    def arm(self, seconds: float | None, *, on_cpu: bool = False) -> None:
        """Stop the context's JavaScript `seconds` from now (None: no limit; at least 1 ms,
        as the binding's limit): on the wall clock, or `on_cpu`, after that much of this
        thread's CPU time (off the main thread, the process's: the binding's limit)."""
        if self.deadline < _NO_LIMIT:
            with self._guard:  # (a stop under way ends first: none of it runs after this)
                self.deadline = _NO_LIMIT
        if self._token and threading.get_ident() == _MAIN_THREAD:
            if not self._installed:
                self._install()
        elif self._installed:
            self._uninstall()
        if not self._installed:
            self._arm_binding(seconds, on_cpu)
            return
        limit = _limits[self._token]
        if seconds is None:
            limit[0] = _NO_LIMIT
            if _pending:  # a Ctrl-C the engine's last entry ended without reporting
                raise_pending()
            return
        now = time.thread_time() if on_cpu else time.monotonic()
        limit[0] = now + max(seconds, 0.001)
        limit[1] = on_cpu

    def _arm_binding(self, seconds: float | None, on_cpu: bool) -> None:
        """The binding's limit, counted in the process's CPU time from each entry into the
        engine; for the execution's own limit (on the wall clock), set where it does not
        fire before the deadline (no process spends more CPU time than its CPUs in that
        time, give or take the clock's lumps of a millisecond), and brought forward to it
        by the watchdog."""
        if seconds is None or on_cpu or not _stoppable:
            self._context.set_time_limit(-1 if seconds is None else max(seconds, 0.001))
            return
        seconds = max(seconds, 0.001)
        if not self._watched:
            WATCHDOG.register(self)
            self._watched = True
        with self._guard:
            self._context.set_time_limit(seconds * _CPUS + 0.001)
            self.deadline = time.monotonic() + seconds
        try:
            WATCHDOG.armed()
        except RuntimeError:  # no thread for the watchdog: the binding's limit as it is
            with self._guard:
                self.deadline = _NO_LIMIT
                self._context.set_time_limit(seconds)

    def stop_if_past(self, now: float) -> None:
        """(On the watchdog's thread.) If the deadline is not after `now`, the binding's
        limit written down to nothing, both the one the running entry checks and the one
        later entries copy: each stops."""
        with self._guard:
            if self.deadline <= now:
                kept, checked = _binding_limits(self._context)
                kept.value = checked.value = 0

    def __del__(self, _limits: dict[int, list[Any]] = _limits) -> None:
        # (The table bound as a default: at the interpreter's exit the global may be gone.)
        _limits.pop(self._token, None)
