"""From a finished sandbox to the Result: the completion, the error with its location
(timeouts and memory included), and secrets masked wherever the report shows text."""

from __future__ import annotations

import re
from typing import Any

from pfunc import jsonio
from pfunc.events import KINDS
from pfunc.limits import Budget, Profile
from pfunc.modules.vault import secret_pattern
from pfunc.result import TIME_LIMIT, ExecutionError, Result
from pfunc.sandbox import Sandbox, SandboxInterrupted
from pfunc.sandbox.source import Location, map_stack, split_engine_error

# What an HTTP header name may hold (RFC 9110 "token"), and what a value may not (control
# characters but tab: a CR or LF would end the header early; and, as Node's setHeader
# checks, anything past U+00FF, which a header's bytes cannot carry).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE_FORBIDDEN = re.compile(r"[^\t\x20-\x7e\x80-\xff]")
# Headers that frame the body on the wire: the server writes them for the body it sends,
# so a handler's own (a content-length that does not match) would corrupt the connection.
FRAMING_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "trailer", "te"}
)


def error_at(
    error_type: str,
    message: str,
    stack: str,
    display_path: str,
    location: Location | None,
    code: str | None = None,
) -> ExecutionError:
    return ExecutionError(
        error_type,
        message,
        stack,
        display_path if location else None,
        location.line if location else None,
        location.column if location else None,
        code,
    )


def memory_error(display_path: str, profile: Profile) -> ExecutionError:
    limit = (profile.memory or 0) // (1024 * 1024)
    return ExecutionError(
        "MemoryError",
        f"{display_path}: the handler used more than the {limit} MiB memory limit "
        f"({profile.describe()}) and was stopped; keep less data in memory at once, or raise "
        "the limit with memory_mb under [limits] in pfunc.toml",
    )


def timeout_error(
    stop: SandboxInterrupted | None,
    display_path: str,
    profile: Profile,
    elapsed: float | None = None,
) -> ExecutionError:
    """The time limit ran out: in the engine (stop says where) or awaiting a host call.
    `elapsed`: the execution's wall time so far, named when it is far from the limit."""
    stack, location = map_stack(stop.engine_text if stop else "", display_path)
    # QuickJS keeps a frame's position only at calls and awaits: it names the running
    # function's last call or await (after an await, the await), else the function's
    # start, never the loop's own line. The loop is at or after it.
    where = ""
    if location:
        where = (
            f" in code at or after line {location.line} (where QuickJS last saw the running "
            "function: its last call or await, or its start)"
        )
    cause = "a slow call"
    if stop is not None:  # stopped running: in JavaScript, a loop; a Python worker, unseen
        cause = "a loop or a long wait" if stop.unseen else "a loop that never ends"
    limit = profile.timeout or 0
    when = ""
    if stop is not None and elapsed is not None and abs(elapsed - limit) > 0.2 * limit:
        # Only where pfunc fell back to the binding's own limit (time_limit.py: the
        # binding was not laid out as pfunc reads it), which counts the process's CPU
        # time: slower than the wall's while other processes hold the CPUs, quicker
        # while pfunc's own threads are busy too.
        when = (
            f" after {elapsed:.1f} s (the engine counted the limit in pfunc's CPU time, "
            "which other programs' load slows and pfunc's own busy threads speed up)"
        )
    return error_at(
        "TimeoutError",
        f"{display_path}: the handler ran longer than the {limit:g} s time "
        f"limit ({profile.describe()}) and was stopped{where}{when}; look for "
        f"{cause}, or raise the limit: timeout under [limits] in pfunc.toml (--timeout "
        "for pfunc run, publish, send-file and dev)",
        stack,
        display_path,
        location,
        TIME_LIMIT,
    )


# QuickJS throws null when memory is too short even for the error it would throw. A
# Promise chain that fills the smallest heap runs far more jobs than this; one slice of
# JavaScript fills it in a few. A null with fewer jobs is the handler's own if its code
# throws or rejects with null, a blow-up if its code never writes null, and said to be
# either in between.
_JOBS_TO_EXHAUST_MEMORY = 1000
_NULL_WORD = re.compile(r"\bnull\b")
_OWN_NULL = re.compile(r"\b(?:throw|reject)\s*\(?\s*null\b")
_OR_MEMORY = (
    " (or it ran out of its memory limit: QuickJS throws null when even its error does "
    "not fit in memory)"
)


def _null_reading(jobs: int, source: str) -> str:
    """How a thrown null reads: "memory", "own" or "either" (see above)."""
    if jobs >= _JOBS_TO_EXHAUST_MEMORY or not _NULL_WORD.search(source):
        return "memory"
    return "own" if _OWN_NULL.search(source) else "either"


def engine_thrown_error(engine_text: str, display_path: str) -> ExecutionError:
    """What one of the engine's own promise jobs threw (a value the handler gave it: a
    Promise species' resolve that throws), as the handler's uncaught error."""
    error_type, message, raw_stack = split_engine_error(engine_text)
    stack, location = map_stack(raw_stack, display_path)
    return ExecutionError(
        error_type,
        f"{display_path}: {message} (thrown by a promise job of the engine's own, which no "
        "code of the handler's could catch: a Promise subclass whose species resolve throws)",
        stack,
        display_path if location else None,
        location.line if location else None,
        location.column if location else None,
    )


def handler_error(
    info: dict[str, Any] | None, sandbox: Sandbox, display_path: str, profile: Profile
) -> ExecutionError | None:
    """The error the handler threw or rejected with, mapped to its own file and line."""
    if not info:
        return None
    if info.get("mapped"):  # a Python handler's error: frames already name its file
        if info["type"] == "MemoryError":
            return memory_error(display_path, profile)
        line = info.get("line")
        return error_at(
            info["type"],
            info["message"],
            info.get("stack", ""),
            display_path,
            Location(line, info.get("column") or 1) if line else None,
            info.get("code"),
        )
    if info.get("outOfMemory") and profile.memory is not None:
        sandbox.broken = True  # a context that ran out of memory is not kept
        return memory_error(display_path, profile)
    stack, location = map_stack(info.get("stack", ""), display_path)
    null_reading = None
    if info.get("nullThrown") is not None and profile.memory is not None:
        null_reading = _null_reading(info["nullThrown"], sandbox.source)
    if null_reading in ("either", "memory"):
        sandbox.broken = True  # a context that ran out of memory is not kept
    if null_reading == "either":
        return error_at(info["type"], info["message"] + _OR_MEMORY, "", display_path, None)
    if null_reading == "memory":
        failure = memory_error(display_path, profile)
        failure.message += " (QuickJS reports running out of memory as a thrown null)"
        return failure
    if info["type"] == "InternalError" and info["message"] == "out of memory":
        # The engine raised it inside the handler's own code, where it was caught.
        sandbox.broken = True
        failure = memory_error(display_path, profile)
        failure.stack = stack
        return failure
    message = info["message"]
    if message.startswith("could not load module"):  # a dynamic import(): as a static one
        message += (
            "; import() is not available in PubNub Functions, use require() for built-in modules"
        )
        # The engine's error has no frame: the first import( of the source is the place.
        found = None if location else re.search(r"\bimport\s*\(", sandbox.source)
        if found:
            before = sandbox.source[: found.start()]
            location = Location(before.count("\n") + 1, found.start() - before.rfind("\n"))
    return error_at(info["type"], message, stack, display_path, location, info.get("code"))


def conclude(
    result: Result, failure: ExecutionError | None, completion: dict[str, Any] | None
) -> None:
    """Set the outcome from the handler's completion call, or the error that replaced it."""
    expected = KINDS[result.event].completion
    if failure is None and completion is None:
        failure = ExecutionError(
            "Error",
            f"{result.function}: the handler finished without calling {expected}; "
            f"call {expected} (and return or await it) on every path" + _unawaited_failure(result),
        )
    elif failure is None and completion is not None and completion.get("late"):
        called = "response.send" if completion["kind"] == "response" else completion["kind"]
        failure = ExecutionError(
            "Error",
            f"{result.function}: {called}() was called only after the handler "
            "had finished, by work it did not await; PubNub only guarantees awaited work, "
            f"so return or await the Promise chain that calls {expected}",
        )
    if failure is not None:
        result.outcome = "error"
        result.error = failure
        return
    assert completion is not None  # no completion is a failure, handled above
    result.outcome = completion["kind"]
    if completion["kind"] == "response":
        headers = _checked_headers(result, completion["headers"])
        if headers is None:
            return
        result.response = {
            "status": completion["status"],
            "headers": headers,
            "body": completion["body"],
        }
    elif completion["kind"] == "ok":
        if KINDS[result.event].is_before:
            try:
                result.message = jsonio.loads(completion["message"])
            except ValueError as error:
                result.outcome = "error"
                result.error = ExecutionError(
                    "TypeError",
                    f"{result.function}: request.ok(): the message is not JSON: {error}",
                )
                return
        if result.is_message_event:
            result.delivered = True
    else:
        result.abort_reason = completion.get("reason")


def _checked_headers(
    result: Result, headers: dict[str, str | list[str]]
) -> dict[str, str | list[str]] | None:
    """The response's headers as the server can send them (a list: one line a value);
    None (and the outcome an error) when one cannot be sent at all. Framing headers are
    the server's: dropped, and so is an empty list (no line, as in Node). Names are one
    whatever their case, as Node's setHeader takes them: the last in the object's order."""
    kept: dict[str, tuple[str, str | list[str]]] = {}
    for name, value in headers.items():
        values = value if isinstance(value, list) else [value]
        problem = None
        if not _HEADER_NAME.fullmatch(name):
            problem = "is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~)"
        elif any(_HEADER_VALUE_FORBIDDEN.search(text) for text in values):
            problem = (
                "has a character a header cannot carry in its value (a line break or other "
                "control character, or one past U+00FF)"
            )
        if problem is not None:
            result.outcome = "error"
            result.error = ExecutionError(
                "TypeError", f"{result.function}: response header {name!r} {problem}"
            )
            return None
        if name.lower() in FRAMING_HEADERS:
            result.warnings.append(
                f"response header {name!r} is ignored: the server frames the body it sends "
                "and writes that header itself"
            )
            continue
        if value != []:  # (no line at all, as Node sends none)
            kept[name.lower()] = (name, value)
    return dict(kept.values())


def never_settled(
    sandbox: Sandbox, budget: Budget, given_callbacks: list[str] | None = None
) -> ExecutionError:
    """A handler waiting on what nothing will complete. In JavaScript a call whose
    rejection nothing handled is the usual cause (its Promise waited on what a `then` of
    that call would have done): the last one that failed is named, as a possibility
    (pfunc cannot see whether the handler caught it). In Python a failed call raises in
    the handler, so nothing waits on it; the worker's loop found nothing that could end
    the wait (python_loop.py)."""
    display_path = sandbox.display_path
    if sandbox.language == "python":
        return ExecutionError(
            "Error",
            f"{display_path}: the handler is waiting on an awaitable that nothing will complete "
            "(no host call is pending, and no timer, thread, file descriptor or signal "
            "handler could end the wait); complete it or remove the await",
        )
    cause = ""
    failed = budget.failed_calls()
    if given_callbacks:  # a callback no module calls: what such a handler may wait on
        cause = (
            f" It passed a function to {', '.join(given_callbacks)}, as an SDK callback: "
            "the modules answer with a Promise, as PubNub's Functions documents them, and "
            "call no callback; if it waits on one, await the call's Promise instead."
        )
    if failed:
        call = failed[-1]
        # The rejection's message names its call already when pfunc worded it.
        named = str(call.error).startswith(f"{call.module}.{call.method}")
        why = call.error if named else f"{call.label()}: {call.error}"
        cause += (
            f" A call it made failed ({why}); if nothing handled that rejection, the "
            "Promises chained after it are still waiting."
        )
    return ExecutionError(
        "Error",
        f"{display_path}: the handler is waiting on a Promise that nothing will settle (no "
        f"host call is pending); resolve it or remove the await.{cause} (A Promise chain that "
        "ran out of memory ends this way too: QuickJS cannot always report it)",
    )


def _unawaited_failure(result: Result) -> str:
    """Why a call the handler did not await failed, when one did: often the reason the
    handler never completed (its completion waited on that call's Promise)."""
    for call in result.operations.get("calls", []):
        if call.get("unawaited") and call.get("status") == "error" and call.get("error"):
            key = f'("{call["key"]}")' if "key" in call else ""
            name = f"{call['module']}.{call['method']}{key}"
            return f". The un-awaited {name} failed: {call['error']}"
    return ""


def mask_secrets(result: Result, secrets: set[str]) -> None:
    """Replace vault values the handler read wherever the report would show them as text:
    its logs, warnings and error, and what its operations record (an xhr call's URL)."""
    pattern = secret_pattern(secrets)
    if pattern is None:
        return

    def mask(text: str) -> str:
        return pattern.sub("*****", text)

    for call in result.operations.get("calls", []):
        for name, value in call.items():
            if isinstance(value, str):
                call[name] = mask(value)
    for entry in result.logs:
        entry["text"] = mask(entry["text"])
    result.warnings = [mask(warning) for warning in result.warnings]
    if result.error is not None:
        result.error.message = mask(result.error.message)
        result.error.stack = mask(result.error.stack)
