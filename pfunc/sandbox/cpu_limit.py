"""A CPU-time limit on a QuickJS context that lets its JavaScript call into Python.

The binding's own limit (Context.set_time_limit) reads the process CPU clock at every
entry into the engine (a system call each, ~20 an execution) and, while it is armed,
refuses every call from JavaScript into Python, so a handler's host calls had to be
queued as JSON, polled and settled, an engine entry each. QuickJS itself stops code
through an interrupt handler it polls every few thousand instructions; the binding
exports the C API, so pfunc installs a handler of its own on each context's runtime:
JavaScript runs under a deadline in the thread's CPU time, and may call pfunc's host.

Reaching the runtime means reading the binding's Context object, a private layout; it is
checked before use (the runtime it names must be the one its context belongs to, its
flag must follow set_time_limit, and the handler must stop a loop and allow a call), and
when the check fails pfunc falls back to the binding's limit and the queued protocol
(`native()` is False). See docs/performance-notes.md.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import quickjs

_NO_LIMIT = float("inf")
_UNSTARTED = -1.0
# Per context (its token): [the CPU seconds its JavaScript may run, the thread CPU time it
# must stop at]. The clock is read when QuickJS first asks (a system call, ~0.6 us: at
# every arming it cost more than the interrupt handler's rare calls), so a limit starts
# up to a few thousand instructions late.
_limits: dict[int, list[float]] = {}
_tokens = itertools.count(1)  # each context's key (the handler's opaque argument)
_native: bool | None = None  # probed on first use, once, under _probing
_probing = threading.Lock()
_api: Any = None  # (the C library, the handler) once probed
# Every interrupt handler ever handed to QuickJS: a runtime may call it until it is freed,
# so none is ever let go (a freed callback called from C is a segmentation fault).
_handlers: list[Any] = []


def _interrupt(_runtime: int, opaque: int) -> int:
    # Called by QuickJS every few thousand instructions while JavaScript runs; nonzero
    # stops it with an "interrupted" InternalError, as the binding's own limit does.
    limit = _limits.get(opaque)
    if limit is None or limit[0] == _NO_LIMIT:
        return 0
    now = time.thread_time()
    if limit[1] == _UNSTARTED:
        limit[1] = now + limit[0]
        return 0
    return 1 if now > limit[1] else 0


def _pointers(context: quickjs.Context) -> tuple[int, int, int]:
    """(runtime, context, has_time_limit) as the binding's Context object holds them."""
    import ctypes

    head = ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)  # PyObject_HEAD
    base = id(context)
    pointer = ctypes.sizeof(ctypes.c_void_p)
    runtime = ctypes.c_void_p.from_address(base + head).value or 0
    engine = ctypes.c_void_p.from_address(base + head + pointer).value or 0
    flag = ctypes.c_int.from_address(base + head + 2 * pointer).value
    return runtime, engine, flag


def _probe(context: quickjs.Context) -> bool:
    """Whether the binding is laid out as pfunc reads it, proven on a new context (before
    anything else runs in it)."""
    global _api
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
        _handlers.append(handler)
        runtime, engine, unarmed = _pointers(context)
        context.set_time_limit(60)
        armed = _pointers(context)[2]
        context.set_time_limit(-1)
        if not runtime or not engine or library.JS_GetRuntime(engine) != runtime:
            return False
        if (unarmed, armed, _pointers(context)[2]) != (0, 1, 0):
            return False
        # It must let JavaScript call Python while installed, and stop a loop.
        token = next(_tokens)
        library.JS_SetInterruptHandler(runtime, handler, token)
        _limits[token] = [0.001, _UNSTARTED]
        context.add_callable("__pfunc_probe", lambda: 7)
        try:
            if context.eval("__pfunc_probe()") != 7:
                return False
            context.eval("for (;;) {}")
            return False
        except quickjs.JSException as error:
            if "interrupted" not in str(error):
                return False
        finally:
            # (The handler stays, answering "go on" without a deadline: the binding's own
            # limit replaces it at each entry if this probe fails.)
            _limits.pop(token, None)
            context.eval("delete globalThis.__pfunc_probe")
        _api = (library, handler)
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


class CpuLimit:
    """The time limit of one context: pfunc's own when native(), else the binding's."""

    def __init__(self, context: quickjs.Context) -> None:
        self._context = context
        self._token = 0
        if native(context):
            library, handler = _api
            self._token = next(_tokens)
            _limits[self._token] = [_NO_LIMIT, _UNSTARTED]
            library.JS_SetInterruptHandler(_pointers(context)[0], handler, self._token)

    @property
    def native(self) -> bool:
        """Whether JavaScript may call into Python while the limit is armed."""
        return bool(self._token)

    def arm(self, seconds: float | None) -> None:
        """Stop the context's JavaScript after `seconds` more of this thread's CPU time
        (None: no limit; at least 1 ms, as the binding's limit)."""
        if not self._token:
            self._context.set_time_limit(-1 if seconds is None else max(seconds, 0.001))
            return
        limit = _limits[self._token]
        limit[0] = _NO_LIMIT if seconds is None else max(seconds, 0.001)
        limit[1] = _UNSTARTED

    def __del__(self) -> None:
        _limits.pop(self._token, None)
