"""Host-side built-in modules: the ones whose calls leave the sandbox.

Synchronous built-ins (uuid, utils, codecs...) live inside the sandbox as JavaScript;
the modules here answer Promise-returning calls (kvstore, crypto...). Each module is
an object with `async call(method, args, context)`; the executor reaches them only
through `dispatch`, after the Budget has charged the call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pfunc.bus import PublishReport
    from pfunc.clock import Clock
    from pfunc.executor import Runtime
    from pfunc.limits import Profile
    from pfunc.store import KVStore


class HandlerCallError(Exception):
    """A host call failed: the handler's Promise rejects with a JS error of this type."""

    def __init__(self, error_type: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.code = code

    def to_payload(self) -> str:
        data: dict[str, Any] = {"name": self.error_type, "message": self.message}
        if self.code:
            data["code"] = self.code
        return json.dumps(data)


class JSArg:
    """One argument of a host call as the sandbox encoded it.

    The sandbox sends primitives as they are ({"v": ...}), objects and arrays as their
    JSON text ({"j": ...}, decoded only when a module needs the value), and a marker
    for values JSON cannot carry ({"t": "undefined" | "function" | "cyclic" ...}), so
    validation and error wording happen here, in one place, for every handler language.
    """

    __slots__ = ("_json", "_value", "decoded", "invalid")

    def __init__(self, encoded: dict[str, Any]) -> None:
        self._json: str | None = None
        self._value: Any = None
        self.invalid: str | None = None
        self.decoded = True
        if "v" in encoded:
            self._value = encoded["v"]
        elif "j" in encoded:
            self._json = encoded["j"]
            self.decoded = False
        else:
            self.invalid = encoded.get("t", "undefined")

    @property
    def value(self) -> Any:
        """The decoded value (None for null and for values JSON cannot carry)."""
        if not self.decoded:
            self._value = json.loads(self._json or "null")
            self.decoded = True
        return self._value

    @property
    def json(self) -> str | None:
        """The value's JSON text, as JSON.stringify wrote it; None when it has none."""
        if self.invalid is not None:
            return None
        if self._json is None:
            self._json = json.dumps(self._value, ensure_ascii=False, separators=(",", ":"))
        return self._json

    @property
    def is_undefined(self) -> bool:
        return self.invalid == "undefined"

    @property
    def is_null(self) -> bool:
        return self.decoded and self.invalid is None and self._value is None

    def type_name(self) -> str:
        """The JavaScript name of the value's type, for error messages."""
        if self.invalid is not None:
            return {"cyclic": "object with a circular reference"}.get(self.invalid, self.invalid)
        value = self.value
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, int | float):
            return "number"
        if isinstance(value, str):
            return "string"
        if isinstance(value, list):
            return "array"
        return "object"

    def describe(self) -> str:
        """A short quote of the value for error messages."""
        if self.invalid is not None:
            return self.type_name()
        text = self.json or ""
        return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class CallContext:
    """What a module call may use: the execution's services, limits, clock and place in a chain."""

    store: KVStore
    keyset: str
    profile: Profile
    clock: Clock
    warn: Callable[[str], None]
    runtime: Runtime | None = None
    hop: int = 1  # 1 for an execution triggered by a client, +1 per publish from a handler
    triggered: list[PublishReport] = field(default_factory=list)  # publishes it made
    deadline: float | None = None  # time.monotonic() at which the execution's time runs out
    secrets_read: set[str] = field(default_factory=set)  # vault values, masked in reports


class HostModule(Protocol):
    # True when calls finish without real waiting (local disk, CPU), so the executor
    # can await them in line instead of paying for a task per call.
    inline: bool

    async def call(self, method: str, args: list[JSArg], context: CallContext) -> str | None:
        """Perform the call; return JSON text of the result (None for undefined)."""
        ...

    def key_of(self, method: str, args: list[JSArg]) -> str | None:
        """The key a call touches, for the operations report."""
        ...


# Where each host module lives; imported on first use, so a run pays only for what its
# handler calls (hashlib, aiohttp and friends stay off the `pfunc run` path).
_HOST_MODULES = {
    "kvstore": ("pfunc.modules.kvstore", "KVStoreModule"),
    "crypto": ("pfunc.modules.crypto", "CryptoModule"),
    "xhr": ("pfunc.modules.xhr", "XhrModule"),
    "vault": ("pfunc.modules.vault", "VaultModule"),
    "pubnub": ("pfunc.modules.pubnub", "PubNubModule"),
    "builtin": ("pfunc.modules.builtin", "BuiltinModule"),  # Python handlers' sync modules
}


class HostModules(dict[str, HostModule]):
    """The host modules of one runtime, each created when a handler first calls it."""

    def __missing__(self, name: str) -> HostModule:
        import importlib

        module_path, class_name = _HOST_MODULES[name]
        module = getattr(importlib.import_module(module_path), class_name)()
        self[name] = module
        return module


def host_modules() -> HostModules:
    return HostModules()


def missing_arg() -> JSArg:
    return JSArg({"t": "undefined"})


def padded_args(args: list[JSArg], count: int) -> list[JSArg]:
    """The arguments with absent ones read as undefined, as JavaScript would."""
    return args + [missing_arg() for _ in range(count - len(args))] if len(args) < count else args
