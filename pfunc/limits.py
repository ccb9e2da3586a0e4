"""Limit profiles (docs/handlers.md, "Limits") and the per-execution operation Budget.

The Budget is the single choke point every host call passes through: it decides
whether the call may run, numbers it, and records it for the report.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any

from pfunc import jsonio


@dataclass(frozen=True)
class Profile:
    name: str
    # int: one combined budget; dict: a budget per operation kind; None: no limit.
    operations: int | dict[str, int] | None
    counts_vault: bool
    key_length: int | None
    value_size: int | None
    value_size_unit: str  # "bytes" (UTF-8 of the JSON text) or "characters"
    timeout: float | None  # seconds of wall time per execution
    memory: int | None  # bytes per execution
    publish_size: int | None
    signal_size: int | None
    ttl_default: int = 1440
    ttl_min: int = 1
    ttl_max: int = 525_600
    keys_per_page: int = 100
    max_hops: int = 3

    def describe(self) -> str:
        return f'profile "{self.name}"'

    def clamped_ttl(self, minutes: float) -> float:
        """A TTL in minutes within the profile's range: PubNub clamps one, not refuses it."""
        return min(max(minutes, self.ttl_min), self.ttl_max)


PROFILES: dict[str, Profile] = {
    "classic": Profile(
        name="classic",
        operations=3,
        counts_vault=False,
        key_length=250,
        value_size=30_720,
        value_size_unit="bytes",
        timeout=10.0,
        memory=64 * 1024 * 1024,
        publish_size=32 * 1024,
        signal_size=30,
    ),
    "pubnub-2026": Profile(
        name="pubnub-2026",
        operations={"kvstore": 10, "xhr": 5, "publish": 10, "pubnub": 10, "vault": 10},
        counts_vault=True,
        key_length=1000,
        value_size=32_000,
        value_size_unit="characters",
        timeout=10.0,
        memory=64 * 1024 * 1024,
        publish_size=32 * 1024,
        signal_size=64,
    ),
    "unlimited": Profile(
        name="unlimited",
        operations=None,
        counts_vault=False,
        key_length=None,
        value_size=None,
        value_size_unit="bytes",
        timeout=None,
        memory=None,
        publish_size=None,
        signal_size=None,
    ),
}

MODERN_PROFILE = "pubnub-2026"  # PubNub's per-kind limits of today

# Keys accepted in [limits] of pfunc.toml (and their CLI equivalents).
OVERRIDE_KEYS = ("timeout", "operations", "memory_mb", "key_length", "value_size")
# The most each may be: a day, a terabyte, numbers the engine and SQLite can hold
# (nan, inf or 2^63 megabytes are no limits, and overflowed the engine's C types).
_LARGEST = {
    "timeout": 86_400,
    "operations": 1_000_000_000,
    "memory_mb": 1_048_576,
    "key_length": 1_000_000_000,
    "value_size": 1_000_000_000,
}


# Overrides that count (operations, characters or bytes): whole numbers.
_COUNTS = ("operations", "key_length", "value_size")
# The least memory a handler can be given: pfunc's prelude alone takes ~0.6 MiB of it.
_SMALLEST_MEMORY_MB = 1


def message_limit(profile: Profile, verb: str) -> int | None:
    """The most bytes PubNub accepts in a message sent with `verb` (a fire, a file
    message and a publish share the publish limit); None: no limit."""
    return profile.signal_size if verb == "signal" else profile.publish_size


def message_size(message: Any) -> int:
    """A message's size as the limit measures it: the UTF-8 bytes of its compact JSON.
    The one measure for a publish's refusal and for the report's size warnings."""
    return len(jsonio.compact(message).encode())


def size_problem(size: int, limit: int, profile: Profile) -> str:
    """What is wrong with a message over the limit, in the words every report uses."""
    return f"the message is {size:,} bytes of JSON; the limit is {limit:,} ({profile.describe()})"


SEND_LESS = "Send less, or keep the data in KV"


def resolve_profile(name: str, overrides: dict[str, Any] | None = None) -> Profile:
    """The named profile with single values overridden; raises ValueError with the allowed names."""
    if name not in PROFILES:
        allowed = ", ".join(PROFILES)
        raise ValueError(f'unknown limits profile "{name}"; choose one of: {allowed}')
    profile = PROFILES[name]
    if not overrides:
        return profile
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in OVERRIDE_KEYS:
            raise ValueError(
                f'unknown limit "{key}"; the limits that can be overridden are: '
                + ", ".join(OVERRIDE_KEYS)
            )
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise ValueError(f'limit "{key}" must be a positive number, got {value!r}')
        if not math.isfinite(value) or value > _LARGEST[key]:
            most = f"{'a number up to' if value != value else 'at most'} {_LARGEST[key]:,}"
            raise ValueError(f'limit "{key}" must be {most}, got {value!r}')
        if key in _COUNTS and value != int(value):  # 0.5 operations was cut to none
            raise ValueError(f'limit "{key}" counts: a whole number, got {value!r}')
        if key == "memory_mb" and value < _SMALLEST_MEMORY_MB:
            raise ValueError(
                f'limit "memory_mb" must be at least {_SMALLEST_MEMORY_MB} (pfunc\'s own side '
                f"of the sandbox needs about half a megabyte), got {value!r}"
            )
        if key == "timeout":
            changes["timeout"] = float(value)
        elif key == "memory_mb":
            changes["memory"] = int(value * 1024 * 1024)
        elif key == "operations":
            if isinstance(profile.operations, dict):
                # A single number over per-kind budgets sets every kind to it.
                changes["operations"] = dict.fromkeys(profile.operations, int(value))
            else:
                changes["operations"] = int(value)
        else:
            changes[key] = int(value)
    return replace(profile, **changes)


class OperationLimitExceeded(Exception):
    """Raised by Budget.charge; its message is what the handler's Promise rejects with."""


@dataclass
class CallRecord:
    module: str
    method: str
    key: str | None = None
    counted: bool = True
    refused: bool = False
    status: str = "pending"  # pending | ok | error | refused
    unawaited: bool = False
    error: str | None = None  # why the call failed, as its Promise rejected

    def settle(self, ok: bool, payload: str | None) -> None:
        """Record how the call ended; a failure keeps the rejection's message."""
        self.status = "ok" if ok else "error"
        if not ok and payload:
            try:
                self.error = str(json.loads(payload).get("message"))
            except (ValueError, AttributeError):
                self.error = payload

    def unawaited_warning(self) -> str:
        """What a report says of it, left running by the handler, once it has ended: one
        that failed says so (a publish tree shows warnings only: it read as if it worked)."""
        if self.status == "error":
            return f"{self.label()} was not awaited, and failed: {self.error}"
        return (
            f"{self.label()} was not awaited: the handler finished before it completed. pfunc "
            "let it finish, but PubNub only guarantees awaited work; await or return its Promise"
        )

    def label(self) -> str:
        name = f"{self.module}.{self.method}"
        return f'{name}("{self.key}")' if self.key is not None else name

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"module": self.module, "method": self.method}
        if self.key is not None:
            data["key"] = self.key
        data["status"] = self.status
        if self.unawaited:
            data["unawaited"] = True
        if self.error is not None:
            data["error"] = self.error
        return data


# The report lists this many calls; a handler that loops on refused calls gets a count of
# the rest instead of a report of millions of lines.
MAX_LISTED_CALLS = 1000


class Budget:
    """Counts one execution's operations against a profile."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.used = 0
        self.used_by_kind: dict[str, int] = {}
        self.calls: list[CallRecord] = []
        self.free_calls: list[CallRecord] = []  # not in the report; their failures are said
        self.exceeded = False
        self.unlisted = 0  # refused calls past MAX_LISTED_CALLS: counted, not listed

    def charge(
        self, module: str, method: str, kind: str | None, key: str | None = None
    ) -> CallRecord:
        """Record a call that spends from counter `kind` (None: free; the module registry
        says which); raise OperationLimitExceeded (after recording it) when over budget."""
        if kind == "vault" and not self.profile.counts_vault:
            kind = None
        record = CallRecord(module, method, key, counted=kind is not None)
        if kind is None:
            if len(self.free_calls) < MAX_LISTED_CALLS:
                self.free_calls.append(record)
            return record
        if len(self.calls) < MAX_LISTED_CALLS:
            self.calls.append(record)
        else:  # a handler retrying a refused call in a loop: keep the report small
            self.unlisted += 1
        limits = self.profile.operations
        if isinstance(limits, int):
            number = self.used + 1
            if number > limits:
                self._refuse(record)
                raise OperationLimitExceeded(
                    f"operation limit exceeded: {module}.{method} would be operation {number} "
                    f"of {limits} allowed per execution ({self.profile.describe()})"
                    + self._modern_hint(kind)
                )
        elif isinstance(limits, dict):
            number = self.used_by_kind.get(kind, 0) + 1
            if number > limits[kind]:
                self._refuse(record)
                raise OperationLimitExceeded(
                    f"operation limit exceeded: {module}.{method} would be {kind} operation "
                    f"{number} of {limits[kind]} allowed per execution "
                    f"({self.profile.describe()})"
                )
        self.used += 1
        self.used_by_kind[kind] = self.used_by_kind.get(kind, 0) + 1
        return record

    def failed_calls(self) -> list[CallRecord]:
        """The calls whose Promise rejected: counted ones, then free ones (a vault.get of
        a name that is not there)."""
        return [record for record in self.calls + self.free_calls if record.status == "error"]

    def _modern_hint(self, kind: str) -> str:
        """Handlers written since PubNub's per-kind limits count on them: say when today's
        profile would have allowed a call the combined limit refused, and how to switch."""
        modern = PROFILES[MODERN_PROFILE]
        if self.profile.name == MODERN_PROFILE or not isinstance(modern.operations, dict):
            return ""
        allowed = modern.operations.get(kind)
        if allowed is None or self.used_by_kind.get(kind, 0) + 1 > allowed:
            return ""
        per_kind = ", ".join(f"{name} {count}" for name, count in modern.operations.items())
        return (
            f". Today's PubNub limits ({per_kind} per execution) would allow it: run with "
            f'--limits {MODERN_PROFILE}, or set limits = "{MODERN_PROFILE}" under [project] '
            "in pfunc.toml"
        )

    def _refuse(self, record: CallRecord) -> None:
        record.refused = True
        record.status = "refused"
        self.exceeded = True

    def limit_json(self) -> int | dict[str, int | None]:
        """The combined budget, or the per-kind budgets (the contract's two forms): with no
        limit at all (`unlimited`), each kind's is null."""
        limits = self.profile.operations
        if limits is None:
            kinds = PROFILES[MODERN_PROFILE].operations
            return dict.fromkeys(kinds if isinstance(kinds, dict) else (), None)
        return dict(limits) if isinstance(limits, dict) else limits

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "used": self.used,
            "limit": self.limit_json(),
            "calls": [call.to_json() for call in self.calls],
            "exceeded": self.exceeded,
        }
        if not isinstance(self.profile.operations, int):
            data["used_by_kind"] = dict(self.used_by_kind)
        if self.unlisted:
            data["calls_not_listed"] = self.unlisted
        return data
