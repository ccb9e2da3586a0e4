"""What a Python handler sees, inside its worker process: `require()` and the built-in
modules (each call sent to the host over the worker's pipes), and the request, response
and interval-event objects with the same names as in JavaScript. The worker's loop is
python_worker.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from pfunc import jsonio
from pfunc.modules import CONSTANTS, HOST_METHODS, SYNC_METHODS, SYNC_MODULES
from pfunc.sandbox.python_connection import Connection
from pfunc.sandbox.python_rejections import HandlerError, answered
from pfunc.sandbox.python_values import (
    UNDEFINED,
    FetchResponse,
    JsObject,
    Settled,
    encode,
    js_string,
    number_text,
    status_code,
    strict_json,
)

CONNECTION = Connection(answered)


def _call_host(module: str, method: str, args: tuple[Any, ...]) -> Any:
    execution = CONNECTION.execution
    settled = execution is not None and execution.settled
    return CONNECTION.call(module, method, [encode(arg) for arg in args], settled)


# From the module registry: synchronous modules answer synchronously here too; "promise"
# has no meaning in Python, and console is local to the worker.
_SYNC_MODULES = tuple(name for name in SYNC_MODULES if name not in ("console", "promise"))
_HOST_MODULES = tuple(HOST_METHODS)


# Results a module call gives Python in the shape JavaScript handlers get.
_RESULT_SHAPES: dict[tuple[str, str], Callable[[Any], Any]] = {("xhr", "fetch"): FetchResponse}


class HostCall(Coroutine[Any, Any, Any]):
    """A module call's result: `await` it in async handlers, or `.result()` in sync ones.
    A coroutine too, so that asyncio.create_task takes it (stepping it performs the call)."""

    def __init__(self, module: str, method: str, args: tuple[Any, ...]) -> None:
        self._call = (module, method, args)
        self._steps: Any = None
        # (result, error) once performed: awaited again, the call gives them again, as a
        # settled Promise does, instead of being made (and counted) a second time.
        self._outcome: tuple[Any, Exception | None] | None = None
        self._shape = _RESULT_SHAPES.get((module, method), lambda value: value)
        # Performed when awaited (or .result()): in Python, unlike a JavaScript Promise, a
        # call nobody awaits never runs. The execution names those left so (unperformed).
        if CONNECTION.execution is not None:
            CONNECTION.execution.unperformed.append(self)
        else:  # top-level code's: the next execution names it, as an un-awaited call
            _LOAD_CALLS.append(self)

    def label(self) -> str:
        module, method, args = self._call
        key = args[0] if args and isinstance(args[0], str) else None
        return f'{module}.{method}("{key}")' if key is not None else f"{module}.{method}"

    def _performed(self) -> None:
        execution = CONNECTION.execution
        if execution is not None and self in execution.unperformed:
            execution.unperformed.remove(self)
        if self in _LOAD_CALLS:
            _LOAD_CALLS.remove(self)

    def _perform(self) -> tuple[Any, Exception | None]:
        if self._outcome is None:
            self._performed()
            try:
                self._outcome = (self._shape(_call_host(*self._call)), None)
            except Exception as error:
                self._outcome = (None, error.with_traceback(None))  # the handler's frames
        return self._outcome

    def result(self) -> Any:
        value, error = self._perform()
        if error is not None:  # (its traceback from here, however often it is raised)
            raise error.with_traceback(None) from None
        return value

    def __await__(self):  # type: ignore[no-untyped-def]
        value, error = self._perform()
        # A done asyncio Future awaits in C: a failed call is raised in the handler's own
        # frame, and a traceback it prints shows no frame of pfunc's.
        future = asyncio.get_event_loop().create_future()
        if error is not None:
            future.set_exception(error.with_traceback(None))
        else:
            future.set_result(value)
        return future.__await__()

    def send(self, value: Any) -> Any:
        if self._steps is None:
            self._steps = self.__await__()
        return self._steps.send(value)

    def throw(self, *error: Any) -> Any:
        if self._steps is None:
            self._steps = self.__await__()
        return self._steps.throw(*error)

    def close(self) -> None:
        self._steps = None


# (module, a method's name in lower case) -> the method as the registry spells it.
_SPELLINGS = {
    (module, method.lower()): method
    for table in (HOST_METHODS, SYNC_METHODS)
    for module, methods in table.items()
    for method in methods
}


class _Module:
    def __init__(self, name: str, namespace: str = "") -> None:
        self._name = name
        self._namespace = namespace  # "objects." for pubnub.objects

    def __getattr__(self, method: str) -> Any:
        if method.startswith("__"):
            raise AttributeError(method)
        name = self._name
        constants = CONSTANTS.get(name, {})
        if method in constants:  # a value: uuid.NIL, crypto.ALGORITHM
            value = constants[method]
            return JsObject(value) if isinstance(value, dict) else value
        # Python spellings work too: incr_counter is incrCounter, get_uuid_metadata is
        # getUUIDMetadata (the registry's name whose letters they are, whatever the case).
        head, *rest = method.split("_")
        method = self._namespace + head + "".join(part[:1].upper() + part[1:] for part in rest)
        if rest:  # a Python spelling: matched to the registry's name whatever its case
            method = _SPELLINGS.get((name, method.lower()), method)
        if name in _SYNC_MODULES or method in SYNC_METHODS.get(name, ()):
            # synchronous in JavaScript: synchronous here too
            builtin = f"{name}.{method}"
            call = _Method(lambda *args: _with_callback(builtin, args))
            # The method's own members (uuid.v3.DNS).
            for path, value in constants.items():
                if path.startswith(method + "."):
                    call[path.removeprefix(method + ".")] = value
            return call
        # A namespace of the module (pubnub.objects, pubnub.channel_groups).
        if any(known.startswith(method + ".") for known in HOST_METHODS.get(name, ())):
            return _Module(name, method + ".")
        if name != "pubnub" and method not in HOST_METHODS.get(name, ()):
            # undefined in JavaScript too (pubnub's other methods are calls pfunc refuses)
            raise AttributeError(f"{name}.{method} is not a method of the {name} module")
        return lambda *args: HostCall(name, method, args)


# jsonwebtoken's callback forms: a function as the last argument gets (error, result)
# instead of a throw or a return; verify's at once, sign's once the caller's code has run
# on (as the package's JavaScript does).
_CALLBACK_METHODS = {"jwt.verify": "at once", "jwt.sign": "after"}


def _with_callback(builtin: str, args: tuple[Any, ...]) -> Any:
    when = _CALLBACK_METHODS.get(builtin)
    # (token or payload, key, [options], callback): a function in the key's place is no
    # callback, and the host says what JavaScript says of it.
    if when is None or len(args) < 3 or not callable(args[-1]):
        return _call_host("builtin", builtin, args)
    callback = args[-1]
    try:
        answer: tuple[Any, Any] = (None, _call_host("builtin", builtin, args[:-1]))
    except (HandlerError, TypeError, ValueError) as error:
        answer = (error, None)
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:  # a sync handler: no code of its own runs on after the call
        loop = None
    if when == "after" and loop is not None and answer[0] is None:  # (an error: at once)
        loop.call_soon(callback, *answer)
    else:
        callback(*answer)
    return None


class _Method(JsObject):
    """A module's function, with the values JavaScript hangs on it (uuid.v3.DNS)."""

    def __init__(self, function: Callable[..., Any]) -> None:
        super().__init__()
        self._function = function

    def __call__(self, *args: Any) -> Any:
        return self._function(*args)


class _Console:
    def __getattr__(self, level: str) -> Callable[..., None]:
        if level not in ("log", "info", "warn", "error", "debug"):
            raise AttributeError(level)
        return lambda *args: _log(level, args)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    if isinstance(value, float):  # as JavaScript logs the number: 1.0 is 1, NaN is NaN
        return number_text(value)
    try:
        return strict_json(value)
    except (TypeError, ValueError):
        return str(value)
    except RecursionError:  # JavaScript's logs it (its JSON.stringify goes deeper): no failure
        return f"<a {type(value).__name__} nested too deeply to show>"


def _log(level: str, args: tuple[Any, ...]) -> None:
    execution = CONNECTION.execution
    entry = {
        "level": level,
        "text": " ".join(_text(a) for a in args),
        "time": _iso(execution.now_ms if execution else time.time() * 1000),
    }
    if execution is None:
        _LOAD_LOGS.append(entry)  # top-level code's: the next execution's first lines
    else:
        # Sent as it is written: a handler stopped at its time limit keeps its lines.
        CONNECTION.send({"op": "log", "entry": entry})


_LOAD_LOGS: list[dict[str, str]] = []
_LOAD_CALLS: list[HostCall] = []


def _iso(ms: float) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def require(name: str) -> Any:
    """The Python side of `require()`: the same built-ins, by the same names."""
    if name == "console":
        return _Console()
    if name in _HOST_MODULES or name in _SYNC_MODULES:
        return _Module(name)
    if name == "promise":  # JavaScript's Promise global: Python has asyncio for it
        raise HandlerError(
            'require("promise") gives JavaScript\'s Promise; in Python, await the calls, '
            "and asyncio.gather(...) awaits several at once"
        )
    raise HandlerError(  # JavaScript's Error, as require() throws it there
        f'require("{name}"): no such module; PubNub Functions provide only '
        f"built-in modules: {', '.join((*_HOST_MODULES, 'console', *_SYNC_MODULES))}"
    )


class _Execution:
    def __init__(self, event: dict[str, Any], now_ms: float, seconds: float | None = None) -> None:
        self.event = event
        self.now_ms = now_ms
        # The time limit's end, by this process's clock (the host stops it there anyway).
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self.settled = False  # the handler has returned: calls from now on are un-awaited
        for entry in _LOAD_LOGS:
            CONNECTION.send({"op": "log", "entry": entry})
        _LOAD_LOGS.clear()
        self.warnings: list[str] = []
        self.completion: dict[str, Any] | None = None
        self.unperformed: list[HostCall] = []  # calls made and never awaited (yet)
        self.unperformed += _LOAD_CALLS
        _LOAD_CALLS.clear()

    def complete(self, kind: str, detail: dict[str, Any]) -> None:
        if self.completion is not None:
            self.warnings.append(
                f"{_completion_call(kind)}() was called after "
                f"{_completion_call(self.completion['kind'])}() had "
                "already completed this execution; ignored (the first "
                "completion call wins)"
            )
            return
        # After the handler returned: by work it left running, which JavaScript refuses.
        self.completion = {"kind": kind, "late": self.settled, **detail}


def _completion_call(kind: str) -> str:
    """The call a completion kind stands for, as the handler wrote it: the kind itself is
    read by the host ("response" among them), so only the warning's wording maps it."""
    return "response.send" if kind == "response" else kind


class Request:
    """request: the same names as in JavaScript (message, channels, ok(), abort()...)."""

    def __init__(self, execution: _Execution) -> None:
        event = execution.event
        self._execution = execution
        for key, value in event.items():
            if key != "kind":
                setattr(self, key, value)
        self.params = event.get("query", event.get("params", {}))
        raw = event.get("body")
        self.body = raw if raw is not None else ""
        # The execution clock (what Date.now() is in JavaScript): fixed by --now and tests.
        self.now_ms = execution.now_ms

    # As in JavaScript, where they return Promises: await them or not (ok() resolves to
    # the request).
    def ok(self, message: Any = UNDEFINED) -> Settled:
        self._message_event_only("ok")
        value = self.message if message is UNDEFINED or message is None else message
        if message not in (UNDEFINED, None) and self._execution.event["phase"] == "after":
            self._execution.warnings.append(
                f"request.ok(message) in an {self._execution.event['kind']} handler cannot "
                "change the message: it was already delivered; the argument is ignored"
            )
        if isinstance(value, float) and (value != value or abs(value) == float("inf")):
            raise TypeError(  # as JavaScript's ok() refuses it (it was delivered as null)
                f"request.ok(): the message is not JSON-serialisable: it is {number_text(value)}"
            )
        try:
            text = strict_json(value)
        except (TypeError, ValueError, RecursionError) as error:
            raise _not_json(
                "request.ok(): the message", "is not JSON-serialisable", error
            ) from None
        self._execution.complete("ok", {"message": text})
        return Settled(self)

    def abort(self, reason: Any = None) -> Settled:
        self._message_event_only("abort")
        self._execution.complete("abort", {"reason": None if reason is None else _text(reason)})
        return Settled(None)

    def _message_event_only(self, call: str) -> None:  # (on-request: "no attribute 'message'")
        if self._execution.event.get("family") == "request":
            why = "an on-request handler answers with response.send(body, status)"
            raise TypeError(f"request.{call} is not a function: {why}")

    def json(self) -> Settled:
        """The body parsed: awaited, or `.result()` in a sync handler, as module calls are."""
        try:
            return Settled(jsonio.loads(self.body))
        except json.JSONDecodeError as error:  # worded as JavaScript's, still a ValueError
            wording = f"request.json(): the body is not valid JSON: {error.msg}"
            return Settled(error=json.JSONDecodeError(wording, error.doc, error.pos))
        except ValueError as error:  # NaN, nesting past what parsers take: JSON.parse's too
            wording = f"request.json(): the body is not valid JSON: {error}"
            return Settled(error=json.JSONDecodeError(wording, self.body, 0))


class Response:
    def __init__(self, execution: _Execution) -> None:
        self._execution = execution
        self.status = 200
        self.headers: dict[str, str] = {}

    def send(self, body: Any = None, status: int | None = None) -> Settled:
        headers = {  # a list: one header line a value (several Set-Cookie), as in JavaScript
            str(k): [js_string(x) for x in v] if isinstance(v, list | tuple) else js_string(v)
            for k, v in self.headers.items()
        }
        if body is None:
            text = ""
        elif isinstance(body, str):
            text = body
        elif isinstance(body, dict | list | tuple):
            try:
                text = strict_json(body)
            except (TypeError, ValueError, RecursionError) as error:
                raise _not_json("response.send(): the body", "is not JSON", error) from None
            if not any(k.lower() == "content-type" for k in headers):
                headers["content-type"] = "application/json"
        elif isinstance(body, bool):
            text = "true" if body else "false"
        elif isinstance(body, int | float):
            text = number_text(body)
        elif isinstance(body, bytes | bytearray):
            text = bytes(body).decode("utf-8", "replace")  # the body is text: UTF-8
        else:
            raise TypeError(
                f"response.send(): cannot send a {type(body).__name__}; send a str, bytes, a "
                "number, or a dict or list (sent as JSON)"
            )
        code = status_code(status if status is not None else self.status, "response.send()")
        self._execution.complete("response", {"status": code, "headers": headers, "body": text})
        return Settled(None)


class IntervalEvent:
    def __init__(self, execution: _Execution) -> None:
        self._execution = execution
        self.now_ms = execution.now_ms

    def ok(self) -> Settled:
        self._execution.complete("ok", {})
        return Settled(None)

    def abort(self, reason: Any = None) -> Settled:
        self._execution.complete("abort", {"reason": None if reason is None else _text(reason)})
        return Settled(None)


def _not_json(what: str, fault: str, error: Exception) -> TypeError:
    """Why a message or body has no JSON form; for a call left un-awaited (our HostCall or
    Settled: names that meant nothing to the handler), to await it (JavaScript sends {})."""
    if isinstance(error, RecursionError):  # Python's json stops near 1,000 levels
        return TypeError(f"{what} {fault}: nested more deeply than JSON parsers accept")
    if re.search(r"\b(HostCall|Settled)\b", str(error)):
        return TypeError(
            f"{what} holds the result of a call that was not awaited; await it "
            "(value = await db.get(key)) before putting it in"
        )
    return TypeError(f"{what} {fault}: {error}")
