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
Where the binding's wheel keeps its full symbol table, that C handler is pinned in place
with pfunc's own limit data (the binding would take its handler off before wording an
exception, which can run the handler's code: a thrown value's looping `toString` then
held the thread, and the GIL, for good).

Reaching the runtime means reading the binding's Context object, a private layout; it is
checked before use (the runtime it names must be the one its context belongs to, its
flag must follow set_time_limit, and the handler must stop a loop), and when the check
fails pfunc falls back to the binding's limit (`native()` is False). Host calls are not
made into Python from JavaScript even though this limit would allow it: see prelude.js.
docs/performance-notes.md has the measurements.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import sys
import threading
import time
from typing import Any

import quickjs

from pfunc.sandbox.binding_layout import (
    NEVER,
    TICKS,
    InterruptData,
    binding_handler,
    binding_limit_can_be_stopped,
    binding_limits,
    clock,
    pointers,
)
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
# The binding's C handler, pinned with pfunc's own data off the main thread: probed on
# first use there (binding_layout.binding_handler); False when it cannot be had.
_pinned_handler: Any = None
_PYTHON, _PINNED = "python", "pinned"  # which handler a TimeLimit installed
LEASE_SECONDS = 0.25  # the pinned C limit's lease, renewed by the watchdog each tick


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
        runtime, engine, unarmed = pointers(context)
        context.set_time_limit(60)
        armed = pointers(context)[2]
        context.set_time_limit(-1)
        if not runtime or not engine or library.JS_GetRuntime(engine) != runtime:
            return False
        if (unarmed, armed, pointers(context)[2]) != (0, 1, 0):
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
        _stoppable = binding_limit_can_be_stopped(context)
        _previous_unraisable = sys.unraisablehook
        sys.unraisablehook = _unraisable
        return True
    except Exception:  # no ctypes, no symbol, another layout: the binding's own limit
        return False


def pinned() -> bool:
    """Whether the binding's C handler can be pinned with pfunc's data (probed once)."""
    global _pinned_handler
    if not native():
        return False
    if _pinned_handler is None:
        with _probing:
            if _pinned_handler is None:
                _pinned_handler = binding_handler(_api[0], _api[2]) or False
    return bool(_pinned_handler)


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
    thread (and native()), else a C handler's, which counts the process's CPU time.
    Decided at each arming: the dev server moves idle contexts between its loop (the main
    thread, running quick functions in line) and threads of their own.

    Only the main thread's: pfunc's handler is Python, so each of its calls takes the GIL,
    and JavaScript on a thread of its own (a dev-server function not in line) would wait
    for the busy server's loop every few thousand instructions (measured: 7x slower). The
    binding's handler is C: pinned with pfunc's data where it can be (pinned()), counted
    from the arming and in place while the binding words an exception; else the binding's
    own limit, counted from each entry into the engine and off while it words one. Either
    way an execution's limit there is held to the wall clock by the watchdog
    (wall_watchdog.py), which brings the C limit forward to the deadline from a thread of
    its own."""

    def __init__(self, context: quickjs.Context) -> None:
        self._context = context
        self._token = 0
        self._installed: str | None = None  # the handler pfunc put on the runtime, if any
        self._data: Any = None  # the pinned C handler's start and limit, once installed
        # Off the main thread: when the C limit must stop on the wall clock (read by the
        # watchdog), and the lock that keeps its stops and the arming apart.
        self.deadline = _NO_LIMIT
        self._guard = threading.Lock()
        self._watched = False  # the watchdog keeps this context's deadlines
        if native(context):
            self._token = next(_tokens)
            _limits[self._token] = [_NO_LIMIT, False]
            if threading.get_ident() == _MAIN_THREAD:
                self._install(_PYTHON)

    def _install(self, which: str) -> None:
        import ctypes

        library, handler, _ = _api
        self._context.set_time_limit(-1)  # the binding leaves the runtime's handler alone
        if which == _PINNED:
            if self._data is None:
                self._data = InterruptData(0, NEVER)
            handler, opaque = _pinned_handler, ctypes.addressof(self._data)
        else:
            opaque = self._token
        library.JS_SetInterruptHandler(pointers(self._context)[0], handler, opaque)
        self._installed = which

    def _uninstall(self) -> None:
        library, _, no_handler = _api
        library.JS_SetInterruptHandler(pointers(self._context)[0], no_handler, None)
        _limits[self._token][0] = _NO_LIMIT
        self._installed = None

    @property
    def native(self) -> bool:
        """Whether the limit holds across entries into the engine (pfunc's handler, or
        the C one pinned), rather than counting from each (the binding's own)."""
        return self._installed is not None

    @property
    def held_by(self) -> str:
        """Which handler holds the context now: pfunc's ("python", on the main thread),
        the binding's pinned with pfunc's data ("pinned") or the binding's own ("binding")."""
        return self._installed or "binding"

    def expired(self) -> bool:
        """Whether the limit armed has run out: the engine stopped where it could not say
        so (a thrown value's `toString` stopped while the binding worded it)."""
        if self._installed == _PYTHON:
            limit = _limits[self._token]
            return (time.thread_time() if limit[1] else time.monotonic()) > limit[0]
        if self.deadline <= time.monotonic():
            return True
        data = self._data
        return self._installed == _PINNED and clock() - data.start >= data.limit

    def pending(self) -> bool:
        """Whether a Ctrl-C (or another exception) arrived in pfunc's handler on this
        thread and waits for raise_pending."""
        return bool(_pending) and threading.get_ident() in _pending

    def arm(self, seconds: float | None, *, on_cpu: bool = False) -> None:
        """Stop the context's JavaScript `seconds` from now (None: no limit; at least 1 ms,
        as the binding's limit): on the wall clock, or `on_cpu`, after that much of this
        thread's CPU time (off the main thread, the process's: the C handler's)."""
        if self.deadline < _NO_LIMIT:
            with self._guard:  # (a stop under way ends first: none of it runs after this)
                self.deadline = _NO_LIMIT
        wanted = None
        if self._token:
            wanted = _PYTHON if threading.get_ident() == _MAIN_THREAD else None
            if wanted is None and pinned():
                wanted = _PINNED
        if wanted != self._installed:
            if self._installed is not None:
                self._uninstall()
            if wanted is not None:
                self._install(wanted)
        if self._installed != _PYTHON:
            self._arm_c(seconds, on_cpu)
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

    def _set_c_limit(self, seconds: float | None) -> None:
        """The C handler's limit, in the process's CPU time from now (None: none)."""
        if self._installed == _PINNED:
            if seconds is None:
                self._data.limit = NEVER
            else:
                self._data.start = clock()
                self._data.limit = int(seconds * TICKS)
        else:
            self._context.set_time_limit(-1 if seconds is None else seconds)

    def _arm_c(self, seconds: float | None, on_cpu: bool) -> None:
        """The C handler's limit, in the process's CPU time; for the execution's own limit
        (on the wall clock), set where it does not fire before the deadline (no process
        spends more CPU time than its CPUs in that time, give or take the clock's lumps of
        a millisecond), and brought forward to it by the watchdog."""
        stoppable = self._installed == _PINNED or _stoppable
        if seconds is None or on_cpu or not stoppable:
            self._set_c_limit(None if seconds is None else max(seconds, 0.001))
            return
        seconds = max(seconds, 0.001)
        if not self._watched:
            WATCHDOG.register(self)
            self._watched = True
        with self._guard:
            self._set_c_limit(self._c_seconds(seconds))
            self.deadline = time.monotonic() + seconds
        try:
            WATCHDOG.armed()
        except RuntimeError:  # no thread for the watchdog: the C limit as it is
            with self._guard:
                self.deadline = _NO_LIMIT
                self._set_c_limit(seconds)

    def _c_seconds(self, remaining: float) -> float:
        """The C limit for `remaining` seconds of wall time: where it cannot fire before
        them (no process spends more CPU time than its CPUs in that time); pinned, at most
        a lease the watchdog renews, so that JavaScript the binding runs with the GIL held
        (a thrown value's toString it words), where the watchdog cannot run, is stopped
        after the lease rather than after the limit times the CPUs, all other threads
        waiting for the GIL meanwhile."""
        if self._installed == _PINNED:
            remaining = min(remaining, LEASE_SECONDS)
        return remaining * _CPUS + 0.001

    def renew(self, now: float) -> None:
        """(On the watchdog's thread, each tick before the deadline.) The lease again."""
        with self._guard:
            if self._installed == _PINNED and now < self.deadline < _NO_LIMIT:
                self._set_c_limit(self._c_seconds(self.deadline - now))

    def stop_if_past(self, now: float) -> None:
        """(On the watchdog's thread.) If the deadline is not after `now`, the C limit
        written down to nothing (the binding's: both the one the running entry checks and
        the one later entries copy): the JavaScript stops at the handler's next look."""
        with self._guard:
            if self.deadline > now:
                return
            if self._installed == _PINNED:
                self._data.limit = 0
            else:
                kept, checked = binding_limits(self._context)
                kept.value = checked.value = 0

    def __del__(self, _limits: dict[int, list[Any]] = _limits) -> None:
        # (The table bound as a default: at the interpreter's exit the global may be gone.)
        _limits.pop(self._token, None)
        if self._installed == _PINNED:  # the runtime must not read the data once freed
            with contextlib.suppress(Exception):
                self._uninstall()
