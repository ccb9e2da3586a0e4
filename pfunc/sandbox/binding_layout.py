"""What pfunc reads of the QuickJS binding's private parts, each proven before use.

The binding (the `quickjs` module, `_quickjs` in C) exports QuickJS's C API but not its
own data: time_limit.py reaches a context's runtime and the binding's time limit through
the binding's Context object, and pins the binding's C interrupt handler (static in it,
found in the wheel's full symbol table) with data of pfunc's own. Each reading is
checked against behaviour on a context of its own; a binding laid out otherwise gives
False or None, and time_limit.py falls back to what the binding offers.

From the binding's source: its handler stops the JavaScript once
`clock() - data->start >= data->limit`; it is installed at each entry into the engine
when the context has a time limit, and taken off again as the entry returns, before the
binding words an exception (which can run a thrown value's `toString`). A context with
no time limit of the binding's leaves the runtime's handler alone.
"""

from __future__ import annotations

import ctypes
import time
from typing import Any

import quickjs

# The binding's Context object: after PyObject_HEAD, one pointer-wide slot each for the
# runtime, the context, has_time_limit (an int, padded), time_limit (the limit
# set_time_limit keeps), the saved thread state, then the interrupt data (start, and the
# limit an entry into the engine copies and checks); the clock values are C longs on the
# platforms QuickJS's wheels are built for.
_RUNTIME, _CONTEXT, _HAS_LIMIT, _KEPT_LIMIT, _CHECKED_LIMIT = 0, 1, 2, 3, 6
NEVER = 2**63 - 1  # a C long no clock difference reaches
TICKS = 1_000_000  # clock()'s ticks a second (CLOCKS_PER_SEC on POSIX)


class InterruptData(ctypes.Structure):
    """The binding's handler's data: stop once clock() - start >= limit."""

    _fields_ = [("start", ctypes.c_long), ("limit", ctypes.c_long)]


def clock() -> int:
    """clock(), as the binding's handler reads it: the process's CPU time in ticks."""
    return int(time.process_time() * TICKS)


def slot(context: quickjs.Context, index: int, kind: Any) -> Any:
    """The `index`th slot of the binding's Context object, as a ctypes `kind`."""
    pointer = ctypes.sizeof(ctypes.c_void_p)
    head = ctypes.sizeof(ctypes.c_ssize_t) + pointer  # PyObject_HEAD
    return kind.from_address(id(context) + head + index * pointer)


def pointers(context: quickjs.Context) -> tuple[int, int, int]:
    """(runtime, context, has_time_limit) as the binding's Context object holds them."""
    runtime = slot(context, _RUNTIME, ctypes.c_void_p).value or 0
    engine = slot(context, _CONTEXT, ctypes.c_void_p).value or 0
    return runtime, engine, slot(context, _HAS_LIMIT, ctypes.c_int).value


def binding_limits(context: quickjs.Context) -> tuple[Any, Any]:
    """The binding's own limit of a context, in clock ticks: (the limit set_time_limit
    keeps, the copy an entry into the engine checks)."""
    return slot(context, _KEPT_LIMIT, ctypes.c_long), slot(context, _CHECKED_LIMIT, ctypes.c_long)


def binding_limit_can_be_stopped(context: quickjs.Context) -> bool:
    """Whether the binding's limit of `context` is laid out as binding_limits reads it:
    the limit set is in both places after an entry into the engine, in microsecond ticks,
    and an entry made with the kept one written down to nothing copies that and stops."""
    kept, checked = binding_limits(context)
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


def binding_handler(library: Any, no_handler: Any) -> Any:
    """The binding's C interrupt handler, as a ctypes function pointer for `library`'s
    JS_SetInterruptHandler, proven on a new context to stop a loop once its data's limit
    is written down to nothing and not before; None where it cannot be had (a stripped
    wheel, another layout)."""
    try:
        import _quickjs

        from pfunc.sandbox.elf_symbols import function_offsets

        names = {"js_interrupt_handler", "JS_SetInterruptHandler", "JS_GetRuntime"}
        offsets = function_offsets(_quickjs.__file__, names)
        if set(offsets) != names:
            return None
        exported = ("JS_SetInterruptHandler", "JS_GetRuntime")
        bases = {
            ctypes.cast(getattr(library, name), ctypes.c_void_p).value - offsets[name]
            for name in exported
        }
        if len(bases) != 1:  # the file read is not the one loaded
            return None
        handler_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
        handler = handler_type(bases.pop() + offsets["js_interrupt_handler"])
        context = quickjs.Context()
        data = InterruptData(0, NEVER)
        runtime = pointers(context)[0]
        library.JS_SetInterruptHandler(runtime, handler, ctypes.addressof(data))
        try:
            if context.eval("let n = 0; for (let i = 0; i < 1e5; i++) n += i; n") != 4999950000:
                return None
            data.start, data.limit = clock(), 0
            try:
                context.eval("for (let i = 0; i < 2e7; i++) {}")  # bounded, should it go on
                return None
            except quickjs.JSException as error:
                return handler if "interrupted" in str(error) else None
        finally:
            library.JS_SetInterruptHandler(runtime, no_handler, None)
    except Exception:  # no symbol table, another layout: the binding's limit as it is
        return None
