"""The official PubNub JavaScript SDK, in one Node process for a test session.

The pinned npm package is installed on first use into a cache folder (PFUNC_SDK_CACHE,
default ~/.cache/pfunc-tests); tests skip, saying why, where Node or npm is missing or the
registry cannot be reached. `.ci/run` has Node and npm, so CI never skips.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

PUBNUB_JS = "11.0.2"  # the most used major version of the SDK
DRIVER = Path(__file__).with_name("driver.cjs")


class SdkUnavailable(Exception):
    """Node, npm or the package cannot be had here; the message says which."""


def install() -> Path:
    """node_modules holding the pinned SDK, installed once into the cache folder."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise SdkUnavailable("Node.js and npm are needed for the JavaScript SDK tests")
    cache = Path(os.environ.get("PFUNC_SDK_CACHE", Path.home() / ".cache" / "pfunc-tests"))
    folder = cache / f"pubnub-js-{PUBNUB_JS}"
    marker = folder / "node_modules" / "pubnub" / "package.json"
    if marker.is_file():
        return folder / "node_modules"
    folder.mkdir(parents=True, exist_ok=True)
    # Test workers run in parallel: one installs, the others wait for it.
    with open(folder / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.is_file():
            _npm_install(npm, folder, marker)
    return folder / "node_modules"


def _npm_install(npm: str, folder: Path, marker: Path) -> None:
    print(
        f"\ninstalling the PubNub JavaScript SDK {PUBNUB_JS} into {folder} (first use)",
        file=sys.stderr,
    )
    done = subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--silent",
            "--prefix",
            str(folder),
            f"pubnub@{PUBNUB_JS}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0 or not marker.is_file():
        raise SdkUnavailable(f"npm could not install pubnub@{PUBNUB_JS}: {done.stderr[-300:]}")


class JsSdk:
    """One Node process running driver.cjs; `command` sends one and waits for its answer."""

    def __init__(self, node_modules: Path) -> None:
        self.process = subprocess.Popen(
            [shutil.which("node") or "node", str(DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "NODE_PATH": str(node_modules)},
        )
        self._next = 0
        self._lock = threading.Lock()

    def command(self, op: str, **fields: Any) -> Any:
        with self._lock:
            self._next += 1
            assert self.process.stdin is not None and self.process.stdout is not None
            self.process.stdin.write(json.dumps({"id": self._next, "op": op, **fields}) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the Node SDK driver stopped")
        answer = json.loads(line)
        if not answer["ok"]:
            raise SdkError(answer["error"])
        return answer["result"]

    def client(self, name: str, port: int, keys: tuple[str, str], user: str, **options: Any):
        self.command(
            "client",
            name=name,
            publishKey=keys[0],
            subscribeKey=keys[1],
            userId=user,
            origin=f"127.0.0.1:{port}",
            options=options,
        )
        return JsClient(self, name)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class SdkError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        status = error.get("status") or {}
        # The SDK's error status arrives as an object, or as its JSON text.
        self.status: dict[str, Any] = json.loads(status) if isinstance(status, str) else status


class JsClient:
    """One PubNub instance in the driver, and what its listener received."""

    def __init__(self, sdk: JsSdk, name: str) -> None:
        self.sdk = sdk
        self.name = name

    def call(self, method: str, **args: Any) -> Any:
        return self.sdk.command("call", client=self.name, method=method, args=args)

    def subscribe(self, *channels: str, with_presence: bool = False) -> None:
        self.sdk.command(
            "subscribe", client=self.name, channels=list(channels), withPresence=with_presence
        )

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        recorded = self.sdk.command("events", client=self.name)
        return [e["event"] for e in recorded if kind is None or e["kind"] == kind]

    def wait_for(self, kind: str, predicate=lambda event: True, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events(kind):
                if predicate(event):
                    return event
            time.sleep(0.05)
        raise AssertionError(f"no {kind} event arrived; got {self.events()}")

    def connected(self, timeout: float = 10) -> None:
        self.wait_for("status", lambda e: e.get("category") == "PNConnectedCategory", timeout)

    def destroy(self) -> None:
        self.sdk.command("destroy", client=self.name)
