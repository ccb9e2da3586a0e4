"""The Python language host: a handler in a worker process, behind the Sandbox interface
(advance / finish), so the executor, the budget and the modules are shared.

What is and is not contained (docs/handlers.md, "Isolation and limits"):
* The worker speaks to the host over two pipes of its own, never stdin or stdout, so
  whatever the handler prints cannot corrupt the protocol; everything it sends is
  checked (strict JSON, known message shapes), else the execution ends as an error.
* It runs in a process group of its own, under an intermediate parent: killing its
  parent (`os.kill(os.getppid(), 9)`) does not reach the dev server, and the whole group
  (children and forks included) is killed when the worker is replaced.
* A worker is replaced after a timeout, a crash, a memory error, or an execution that
  left threads or child processes running.
* It gets the handler's source from the host, the version the pool loaded, never by
  reading the file itself.
* Memory is bounded by RLIMIT_AS; the synchronous built-ins run in a QuickJS context of
  this sandbox's own, under the execution's time and memory limits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from pfunc import jsonio
from pfunc.errors import HandlerLoadError
from pfunc.modules.builtin import answer
from pfunc.modules.calls import HandlerCallError, JSArg
from pfunc.sandbox import (
    CONSOLE_BUDGET,
    CONSOLE_LINE_COST,
    CORRUPTED,
    CRASHED,
    MEMORY,
    TIMEOUT,
    WORKER_MEMORY_EXIT,
    SandboxInterrupted,
    process_tree,
)
from pfunc.sandbox.pipes import read_soon, wait_readable
from pfunc.sandbox.python_report import utf8_text, with_stack
from pfunc.sandbox.sync_builtins import SyncBuiltins

if TYPE_CHECKING:
    from pfunc.sandbox.threads import SandboxThread

# Seconds for the worker to start, up to where the handler's own top-level code begins
# (which is then held to the profile's time limit).
START_TIMEOUT = 30.0
# Loads one worker serves in test runs before a new one starts (each replaces the last
# module, but process state a handler changed stays: a bound all the same).
_MAX_LOADS = 64
_MESSAGE_OPS = {"loading", "loaded", "call", "done", "log", "returned"}
# How long a worker whose pipe closed is given to end by itself, so that its exit status
# (memory: WORKER_MEMORY_EXIT) is read, not the kill's: its intermediate parent passes it
# on at its next look (python_worker.HOST_CHECK_EVERY, 0.2 s).
_EXIT_RELAY_SECONDS = 0.5


class PythonSandbox:
    # Python handlers reach the synchronous built-ins through the host.
    internal_modules: tuple[str, ...] = ("builtin",)
    language = "python"

    def __init__(
        self,
        source: str,
        path: str,
        display_path: str,
        memory: int | None,
        timeout: float | None,
        now_ms: int | None = None,
        random_seed: int | None = None,
    ) -> None:
        self.display_path = display_path
        self.source = source
        self.now_ms = now_ms
        self.random_seed = random_seed
        self.memory = memory
        self.load_timeout = timeout  # for the handler's top-level code, as JavaScript's
        self.broken = False
        self.home: SandboxThread | None = None
        self.generation = 0
        self._done: dict[str, Any] | None = None
        self._returned: dict[str, Any] | None = None  # its own ending, tasks still running
        self.returned = False
        self._logs: list[dict[str, Any]] = []  # the execution's console lines so far
        self._console = [0, 0]  # characters kept, lines dropped past CONSOLE_BUDGET
        self._builtins: SyncBuiltins | None = None
        self._buffer = b""
        to_worker_read, self._to_worker = os.pipe()
        self._from_worker, from_worker_write = os.pipe()
        self._process: subprocess.Popen[bytes] | None = None
        try:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pfunc.sandbox.python_worker",
                    str(to_worker_read),
                    str(from_worker_write),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(to_worker_read, from_worker_write),
                start_new_session=True,
                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            )
        except BaseException:
            os.close(self._to_worker)
            os.close(self._from_worker)
            raise
        finally:
            os.close(to_worker_read)
            os.close(from_worker_write)
        os.set_blocking(self._from_worker, False)  # read_soon polls it
        self.loads = 1
        self._load({"op": "load", "path": path, "source": source, "memory": memory})

    def _load(self, message: dict[str, Any]) -> None:
        """Have the worker load the handler (`message`); HandlerLoadError if it cannot,
        and then nothing of this worker outlives the failure."""
        phase = "start"
        try:
            self._send(message)
            if self._receive(START_TIMEOUT).get("op") != "loading":
                raise SandboxInterrupted(CORRUPTED)
            phase = "top-level code"
            deadline = None if self.load_timeout is None else time.monotonic() + self.load_timeout
            loaded = self._receive(self.load_timeout)
            while loaded.get("op") == "call":  # top-level code calls a built-in
                self._answer_while_loading(loaded, deadline)
                loaded = self._receive(None if deadline is None else deadline - time.monotonic())
        except SandboxInterrupted as stop:
            self.close()
            raise self._load_stopped(stop.reason, phase) from None
        except BaseException:
            self.close()
            raise
        if loaded.get("op") != "loaded" or not isinstance(loaded.get("error"), dict | None):
            self.broken = True
            self.close()
            raise HandlerLoadError("LoadError", f"{self.display_path}: the worker did not load it")
        error = with_stack(loaded.get("error"), self.display_path)
        if error:
            self.close()
            raise HandlerLoadError(
                str(error.get("type", "Error")),
                f"{self.display_path}:{error.get('line') or 1}:{error.get('column') or 1}: "
                f"{error.get('message', '')}",
                str(error.get("stack", "")),
                error.get("line") or 1,
                error.get("column") or 1,
            )

    def _answer_while_loading(self, call: dict[str, Any], deadline: float | None) -> None:
        """Top-level code may use the synchronous built-ins (`ID = uuid.v4()`), as a
        JavaScript module's may; a call out (kvstore, xhr, pubnub) needs an execution."""
        module, method = call.get("module"), str(call.get("method"))
        try:
            if module != "builtin" or method.startswith("pubnub."):
                raise HandlerCallError(
                    "Error",
                    f"{module}.{method}: a module's top-level code can use the synchronous "
                    "built-ins (uuid, jwt, codec/*...); call the others in the handler",
                )
            args = [JSArg(arg) for arg in call["args"]]
            seconds = None if deadline is None else deadline - time.monotonic()
            now_ms = self.now_ms if self.now_ms is not None else int(time.time() * 1000)
            payload = answer(self.sync_builtins, method, args, now_ms, seconds)
            reply = {"ok": True, "payload": payload}
        except HandlerCallError as error:
            reply = {"ok": False, "payload": error.to_payload()}
        except (KeyError, TypeError, ValueError):
            self.broken = True
            raise SandboxInterrupted(CORRUPTED) from None
        self._send({"op": "reply", "id": call.get("id"), **reply})

    def _load_stopped(self, reason: str, phase: str) -> HandlerLoadError:
        """Why loading ended early, in the words a JavaScript handler's load uses."""
        if phase == "start":
            what = (
                f"did not start within {START_TIMEOUT:g} s; is the machine overloaded?"
                if reason == TIMEOUT
                else "ended before it could load the handler; is this Python able to run pfunc?"
            )
            return HandlerLoadError("LoadError", f"{self.display_path}: the Python worker {what}")
        if reason == TIMEOUT:
            return HandlerLoadError(
                "TimeoutError",
                f"{self.display_path}: the module's top-level code ran out of time while "
                f"loading (the {self.load_timeout:g} s time limit); move long work into the "
                "handler or remove the loop",
            )
        if reason == MEMORY:
            return HandlerLoadError(
                "MemoryError",
                f"{self.display_path}: the module's top-level code ran out of memory while loading",
            )
        if reason == CORRUPTED:
            return HandlerLoadError(
                "LoadError",
                f"{self.display_path}: while its top-level code ran, the worker sent what is "
                "not pfunc's protocol; does the module write to file descriptors it did not "
                "open?",
            )
        return HandlerLoadError(
            "LoadError",
            f"{self.display_path}: the Python worker ended while the handler's top-level code "
            "ran; does it exit or kill its process?",
        )

    @property
    def sync_builtins(self) -> SyncBuiltins:
        """This sandbox's own context for the synchronous built-ins (made on first use)."""
        if self._builtins is None:
            self._builtins = SyncBuiltins(self.memory)
            self._builtins.seed(self.random_seed)
        return self._builtins

    # --- the protocol: JSON lines over two pipes ---------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        self._send_text(json.dumps(message))

    def _send_text(self, text: str) -> None:
        """One line of the protocol: `text` is one JSON object."""
        data = (text + "\n").encode()
        try:
            while data:
                written = os.write(self._to_worker, data)
                data = data[written:]
        except OSError:
            self.broken = True
            raise SandboxInterrupted(CRASHED) from None

    def _receive(self, timeout: float | None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            # Checked on every turn: a worker that keeps writing without ever ending a
            # line must still be stopped at the deadline.
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                self.broken = True
                self.close()
                raise SandboxInterrupted(TIMEOUT, unseen=True)
            chunk = read_soon(self._from_worker)
            if chunk is None:  # nothing yet: sleep until there is, within the deadline
                wait_readable(self._from_worker, remaining)
                continue
            if not chunk:
                # The worker closed its end: it died, or the handler closed the pipe and
                # may still be running. Either way the group goes, once its ending is read.
                self.broken = True
                wait = (
                    _EXIT_RELAY_SECONDS
                    if remaining is None
                    else min(_EXIT_RELAY_SECONDS, remaining)
                )
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(wait)  # (within the execution's own time)
                ended = self._process.returncode
                self.close()
                raise SandboxInterrupted(MEMORY if ended == WORKER_MEMORY_EXIT else CRASHED)
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            message = jsonio.loads(line, lone_surrogates=True)
            if not isinstance(message, dict) or message.get("op") not in _MESSAGE_OPS:
                raise ValueError
        except ValueError:
            self.broken = True
            raise SandboxInterrupted(CORRUPTED) from None
        return message

    def advance(
        self,
        remaining: float | None,
        settlements: list[tuple[int, bool, str | None]],
        start: tuple[str, int | None] | None = None,
        guard: bool = False,  # (a Python handler never runs in line)
    ) -> tuple[bool, list[Any]]:
        if start is not None:
            event_json, now_ms = start
            self._logs, self._console = [], [0, 0]
            self.returned, self._returned = False, None
            # The event's JSON as the loop wrote it, placed in the message as it is (not
            # parsed here to be written again).
            head = json.dumps({"op": "run", "now": now_ms, "seconds": remaining})
            self._send_text(f'{head[:-1]}, "event": {event_json}}}')
        for call_id, ok, payload in settlements:
            self._send({"op": "reply", "id": call_id, "ok": ok, "payload": payload})
        deadline = None if remaining is None else time.monotonic() + remaining
        message = self._receive(remaining)
        while message["op"] in ("log", "returned"):
            if message["op"] == "returned":  # its own ending, before the tasks it left run
                self.returned, self._returned = True, message
            else:  # console lines, as the handler writes them
                entry = message.get("entry")
                if not isinstance(entry, dict) or not all(
                    isinstance(v, str) for v in entry.values()
                ):
                    self.broken = True
                    raise SandboxInterrupted(CORRUPTED)
                cost = len(entry.get("text", "")) + CONSOLE_LINE_COST
                if self._console[0] + cost > CONSOLE_BUDGET:
                    self._console[1] += 1  # counted, not kept: a flood cannot grow pfunc
                else:
                    self._console[0] += cost
                    self._logs.append(entry)
            message = self._receive(None if deadline is None else deadline - time.monotonic())
        if message["op"] == "call":  # made after the handler returned: it has settled
            return bool(message.get("settled")), [
                [
                    message.get("id"),
                    message.get("module"),
                    message.get("method"),
                    message.get("args"),
                ]
            ]
        if message["op"] != "done":
            self.broken = True
            raise SandboxInterrupted(CORRUPTED)
        self._done = message
        # settled False: it waits on what nothing can complete (python_loop.py)
        return message.get("settled") is not False, []

    def finish(self) -> dict[str, Any] | None:
        done, self._done = self._done, None
        logs, self._logs = self._logs, []
        if done is None and self._returned is not None:
            # It returned, and tasks it left still ran at the time limit: its own ending
            # stands, and the worker (the tasks with it) is replaced.
            self.broken = True
            done = {
                **self._returned,
                "warnings": [
                    *self._returned.get("warnings", []),
                    "asyncio task(s) the handler left were still running at the time limit: "
                    "the worker was replaced, so they never run in a later execution (PubNub "
                    "only guarantees awaited work: await them)",
                ],
            }
        self._returned = None
        for entry in logs:  # a lone surrogate as U+FFFD, as JavaScript's console prints it
            entry["text"] = utf8_text(entry.get("text"))
        dropped = self._console[1]  # lines past the budget (the executor says so)
        if done is None:  # stopped (time, memory) or crashed: the lines written so far
            return {
                "completion": None,
                "logs": logs,
                "warnings": [],
                "consoleDropped": dropped,
                "error": None,
            }
        error = with_stack(done.get("error"), self.display_path)
        if isinstance(error, dict):
            error["mapped"] = True  # names the handler file's frames already
            if error.get("type") == "MemoryError":
                self.broken = True
        if done.get("left_running"):
            # Threads or child processes outlived the execution: this worker is replaced
            # (its process group is killed) so they cannot act in a later execution.
            self.broken = True
        completion = done.get("completion")
        if isinstance(completion, dict) and isinstance(completion.get("body"), str):
            completion["body"] = utf8_text(completion["body"])  # sent as UTF-8, as in JS
        warnings = [*done.get("warnings", []), *done.get("left_running", [])]
        return {
            "completion": completion,
            "logs": logs,
            "warnings": [utf8_text(warning) for warning in warnings],
            "consoleDropped": dropped,
            "error": error,
        }

    def tampered(self) -> None:
        """A worker whose handler changed pfunc's side of it is caught by its protocol
        (CORRUPTED), not by naming a built-in."""
        return None

    def read_tape(self) -> None:
        """Python handlers never run in line, so never start again: nothing recorded."""
        return None

    def reusable(self) -> bool:
        return self.loads < _MAX_LOADS and not self.broken

    def renew(self, random_seed: int | None) -> None:
        """For a worker handed to another test run: the handler module executed again in
        it, as a new load would (its own module state). Python's own random module is the
        handler's (pfunc does not seed it); uuid.v4 and utils.randomInt are seeded."""
        self.random_seed = random_seed
        if self._builtins is not None:
            self._builtins.seed(random_seed)
        self.loads += 1
        self._load({"op": "reload"})

    def close(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None or self._group_alive():
            # Those that left the group (setsid) are still below it: killed by their pid.
            process_tree.kill_below(self._process.pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)  # the worker and its children
            self._process.wait()
        for fd in (self._to_worker, self._from_worker):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._to_worker = self._from_worker = -1
        if self.home is not None:
            self.home.close()

    def _group_alive(self) -> bool:
        try:
            os.killpg(self._process.pid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False
