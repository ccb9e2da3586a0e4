"""The Python language host: a handler in a worker process, behind the same interface as
the JavaScript sandbox (advance / finish), so the executor, the budget and the modules
are shared. The worker is killed and replaced when it runs out of time; resource limits
bound its memory.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from typing import Any

from pfunc.errors import HandlerLoadError
from pfunc.sandbox import CRASHED, MEMORY, TIMEOUT, SandboxInterrupted
from pfunc.sandbox.threads import SandboxThread

LOAD_TIMEOUT = 30.0  # seconds for the worker to start and import the handler


class PythonSandbox:
    # Python handlers reach the synchronous built-ins through the host.
    internal_modules: tuple[str, ...] = ("builtin",)

    def __init__(
        self,
        path: str,
        display_path: str,
        memory: int | None,
        timeout: float | None,
        now_ms: int | None = None,
        random_seed: int | None = None,
    ) -> None:
        self.display_path = display_path
        self.now_ms = now_ms
        self.random_seed = random_seed
        self.broken = False
        self.home: SandboxThread | None = None
        self.generation = 0
        self._done: dict[str, Any] | None = None
        self._process = subprocess.Popen(
            [sys.executable, "-m", "pfunc.sandbox.python_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        self._send({"op": "load", "path": path, "memory": memory})
        try:
            loaded = self._receive(LOAD_TIMEOUT)
        except SandboxInterrupted:
            self.close()
            raise HandlerLoadError(
                "LoadError", f"{display_path}: the handler did not load within {LOAD_TIMEOUT:g} s"
            ) from None
        error = loaded.get("error")
        if error:
            self.close()
            raise HandlerLoadError(
                error["type"],
                f"{display_path}:{error.get('line') or 1}: {error['message']}",
                error.get("stack", ""),
                error.get("line"),
                error.get("column"),
            )

    def _send(self, message: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(message) + "\n")
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            self.broken = True
            raise SandboxInterrupted(CRASHED) from None

    def _receive(self, timeout: float | None) -> dict[str, Any]:
        assert self._process.stdout is not None
        stream = self._process.stdout
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                self.broken = True
                self.close()
                raise SandboxInterrupted(TIMEOUT)
            ready, _, _ = select.select([stream], [], [], remaining)
            if ready:
                line = stream.readline()
                if not line:
                    self.broken = True
                    raise SandboxInterrupted(MEMORY if self._process.wait() != 0 else CRASHED)
                return json.loads(line)

    def advance(
        self,
        remaining: float | None,
        settlements: list[tuple[int, bool, str | None]],
        start: tuple[str, int | None] | None = None,
    ) -> tuple[bool, list[Any]]:
        if start is not None:
            event_json, now_ms = start
            self._send({"op": "run", "event": json.loads(event_json), "now": now_ms})
        for call_id, ok, payload in settlements:
            self._send({"op": "reply", "id": call_id, "ok": ok, "payload": payload})
        message = self._receive(remaining)
        if message["op"] == "call":
            return False, [[message["id"], message["module"], message["method"], message["args"]]]
        self._done = message
        return True, []

    def finish(self) -> dict[str, Any] | None:
        done, self._done = self._done, None
        if done is None:
            return None
        error = done.get("error")
        if error:
            error["mapped"] = True  # already names the handler file's frames
            if error["type"] == "MemoryError":
                self.broken = True
        return {
            "completion": done.get("completion"),
            "logs": done.get("logs", []),
            "warnings": done.get("warnings", []),
            "error": error,
        }

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()
        if self.home is not None:
            self.home.close()
