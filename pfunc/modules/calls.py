"""What a host module call sees: its arguments as the sandbox encoded them (JSArg), the
capabilities the execution grants it (CallContext), and the error that rejects the
handler's Promise (HandlerCallError)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pfunc import jsonio
from pfunc.result import shortened

if TYPE_CHECKING:
    from pfunc.clock import Clock
    from pfunc.limits import Profile
    from pfunc.project import MockRule
    from pfunc.pubnub_data import PubNubData
    from pfunc.result import Publisher, PublishReport
    from pfunc.sandbox.sync_builtins import SyncBuiltins
    from pfunc.store import KVStore


class HandlerCallError(Exception):
    """A host call failed: the handler's Promise rejects with a JS error of this type."""

    def __init__(
        self,
        error_type: str,
        message: str,
        code: str | None = None,
        status: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.code = code
        self.status = status  # a service's refusal: the SDK's `error.status`

    def to_payload(self) -> str:
        data: dict[str, Any] = {"name": self.error_type, "message": self.message}
        if self.code:
            data["code"] = self.code
        if self.status:
            data["status"] = self.status
        return json.dumps(data)


# The JavaScript SDK's category for a service's refusal (PubNubAPIError): by HTTP status.
_CATEGORIES = {400: "PNBadRequestCategory", 403: "PNAccessDeniedCategory"}


def service_status(status_code: int, error_data: Any) -> dict[str, Any]:
    """What a PubNub SDK call that the service refused carries as `error.status`:
    handlers check `error.status.statusCode` (a 404 from getUUIDMetadata, say)."""
    category = _CATEGORIES.get(status_code)
    if category is None:
        category = "PNServerErrorCategory" if status_code >= 500 else "PNUnknownCategory"
    return {
        "error": True,
        "category": category,
        "statusCode": status_code,
        "errorData": error_data,
    }


# How error messages name the markers of values JSON cannot carry (JSArg.type_name).
_INVALID_NAMES = {
    "cyclic": "object with a circular reference",
    "deep": f"an array or object nested more than {jsonio.MAX_DEPTH} levels deep",
}


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
            if isinstance(self._json, str) and jsonio.too_deep(self._json):
                self.invalid, self._json = "deep", None  # it could not be read back
        else:
            self.invalid = encoded.get("t", "undefined")

    @property
    def value(self) -> Any:
        """The decoded value (None for null and for values JSON cannot carry)."""
        if not self.decoded:
            self._value = jsonio.plain_loads(self._json or "null")
            self.decoded = True
        return self._value

    @property
    def json(self) -> str | None:
        """The value's JSON text, as JSON.stringify wrote it; None when it has none."""
        if self.invalid is not None:
            return None
        if self._json is None:
            # (a primitive: a float as JavaScript writes it, 1e-7 not 1e-07)
            self._json = jsonio.compact(self._value)
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
            if self.invalid in ("NaN", "Infinity", "-Infinity"):
                return "number"  # typeof NaN; describe() names the value
            return _INVALID_NAMES.get(self.invalid, self.invalid)
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
        if self.invalid in ("NaN", "Infinity", "-Infinity"):
            return self.invalid
        if self.invalid is not None:
            return self.type_name()
        return shortened(self.json or "", 60)


def unreadable_argument(call: str, args: list[JSArg]) -> HandlerCallError | None:
    """The refusal of a call one of whose arguments is nested deeper than JSON parsers
    read back (JSArg marks it "deep"): refused before any module reads it, since a module
    that takes an optional object would read it as none (xhr's options, a GET for a POST)."""
    for number, arg in enumerate(args, start=1):
        if arg.invalid == "deep":
            return HandlerCallError(
                "TypeError",
                f"{call}: argument {number} is {arg.type_name()}, which JSON parsers cannot "
                "read back; pass less deeply nested data",
            )
    return None


def callback_warning(call: str, args: list[JSArg], language: str) -> str | None:
    """The warning for a function passed to a module call (an SDK-style callback, as the
    PubNub JavaScript SDK takes): no module calls it, so a handler waiting on it waits
    for ever, and the error that ends it could not say why."""
    for number, arg in enumerate(args, start=1):
        if arg.invalid == "function":
            answer = (
                "an awaitable, not a callback (await the call, or .result() it)"
                if language == "python"
                else "a Promise, as PubNub's Functions documents them, not a callback "
                "(await the call, or use .then(...))"
            )
            return (
                f"{call}: argument {number} is a function, and pfunc never calls it: the "
                f"modules answer with {answer}"
            )
    return None


class AnsweredAtOnce:
    """A host module whose calls are answered from local state (SQLite, CPU, the vault):
    none waits, so each is awaited in line, in the order the handler made them."""

    def waits(self, method: str, args: list[JSArg], context: CallContext) -> bool:
        return False


@dataclass
class CallContext:
    """What a module call may use, granted explicitly: the store, limits, clock, secrets,
    mocks, the bus's publish and timetokens, and the execution's place in a chain."""

    store: KVStore
    keyset: str
    profile: Profile
    clock: Clock
    warn: Callable[[str], None]
    vault: dict[str, str] = field(default_factory=dict)
    mocks: list[MockRule] = field(default_factory=list)
    offline: bool = False  # xhr requests no mock answers are refused instead of sent
    publish: Publisher | None = None  # None where no project routes publishes
    pubnub_data: PubNubData | None = None  # history, presence, actions (pubnub module)
    timetoken: Callable[[], str] | None = None
    # Python handlers' synchronous built-ins, in their own sandbox's context.
    sync_builtins: SyncBuiltins | None = None
    hop: int = 1  # 1 for an execution triggered by a client, +1 per publish from a handler
    triggered: list[PublishReport] = field(default_factory=list)  # publishes it made
    deadline: float | None = None  # time.monotonic() at which the execution's time runs out
    secrets_read: set[str] = field(default_factory=set)  # vault values, masked in reports
    # KV values as the execution first found them ("item:KEY" / "counter:KEY"), filled by
    # the dev console's recording kvstore while a console is open (see Result.observed).
    observed: dict[str, Any] = field(default_factory=dict)


def missing_arg() -> JSArg:
    return JSArg({"t": "undefined"})


def padded_args(args: list[JSArg], count: int) -> list[JSArg]:
    """The arguments with absent ones read as undefined, as JavaScript would."""
    return args + [missing_arg() for _ in range(count - len(args))] if len(args) < count else args


# The Function's own user id, where a call falls back to the caller's (as the SDK falls
# back to its configured userId): PubNub does not document a Function's, so pfunc names it.
FUNCTION_UUID = "pfunc-function"


def user_id(options: dict[str, Any], method: str) -> str:
    """The user a pubnub.`method` call is about: `uuid`, or the SDK's `userId` alias, or
    else the Function's own."""
    for name in ("uuid", "userId"):
        if options.get(name) is not None:
            return required_text(options, name, method)
    return FUNCTION_UUID


def required_text(options: dict[str, Any], name: str, method: str) -> str:
    """The non-empty string option `name` of a pubnub.`method` call, or the TypeError the
    handler's Promise rejects with."""
    value = options.get(name)
    if not isinstance(value, str) or not value:
        raise HandlerCallError("TypeError", f"pubnub.{method}: {name} must be a non-empty string")
    return value
