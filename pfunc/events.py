"""Event types: what triggers one execution, and the request object the sandbox builds from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MESSAGE_KINDS = (
    "before-publish",
    "after-publish",
    "before-signal",
    "after-signal",
    "after-presence",
)
REQUEST_KIND = "on-request"
INTERVAL_KIND = "on-interval"
SUPPORTED_KINDS = (*MESSAGE_KINDS, REQUEST_KIND, INTERVAL_KIND)
PRESENCE_ACTIONS = ("join", "leave", "timeout", "state-change", "interval")
VERB_OF_KIND = {"before-signal": "signal", "after-signal": "signal", "after-presence": "presence"}

DEFAULT_META = {"clientip": "127.0.0.1", "origin": "127.0.0.1", "useragent": "pfunc"}


@dataclass(frozen=True)
class Keyset:
    """The keys a request object reports (`pubkey`, `subkey`); subscribe_key scopes the KV store."""

    subscribe_key: str = "sub-c-local"
    publish_key: str = "pub-c-local"


@dataclass
class MessageEvent:
    kind: str
    message: Any
    channel: str = "default"
    params: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    verb: str = "publish"
    hop: int = 1  # 1 when a client published; +1 for each handler publish in a chain

    def to_sandbox(self, keyset: Keyset) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "channels": [self.channel],
            "verb": self.verb,
            "params": {"uuid": "pfunc-cli", **self.params},
            "meta": {**DEFAULT_META, **self.meta},
            "pubkey": keyset.publish_key,
            "subkey": keyset.subscribe_key,
            "version": "2.0",
            "uri": f"/publish/{keyset.publish_key}/{keyset.subscribe_key}/0/{self.channel}/0",
        }


@dataclass
class RequestEvent:
    method: str = "GET"
    path: str = "/"
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    kind: str = REQUEST_KIND

    def to_sandbox(self, keyset: Keyset) -> dict[str, Any]:
        path = self.path if self.path.startswith("/") else "/" + self.path
        return {
            "kind": self.kind,
            "method": self.method.upper(),
            "path": path,
            "query": dict(self.query),
            "headers": {name.lower(): value for name, value in self.headers.items()},
            "body": self.body,
            "meta": dict(DEFAULT_META),
            "uri": f"/v1/blocks/sub-key/{keyset.subscribe_key}{path}",
        }


@dataclass
class IntervalEvent:
    kind: str = INTERVAL_KIND

    def to_sandbox(self, keyset: Keyset) -> dict[str, Any]:
        return {"kind": self.kind}


def presence_message(
    action: str, uuid: str, occupancy: int, timestamp: int, state: Any = None
) -> dict[str, Any]:
    """The presence event an after-presence handler sees as request.message."""
    message: dict[str, Any] = {
        "action": action,
        "uuid": uuid,
        "occupancy": occupancy,
        "timestamp": timestamp,
    }
    if state is not None:
        message["state"] = state
    return message


Event = MessageEvent | RequestEvent | IntervalEvent


# --- builders from command-line flags ---------------------------------------------


def read_text_flag(flag: str, value: str, stdin_text: str | None = None) -> str:
    """A flag's text: literal, `@file` for a file's contents, or `-` for standard input."""
    import sys

    from pfunc.errors import PfuncUsageError

    if value == "-":
        return stdin_text if stdin_text is not None else sys.stdin.read()
    if value.startswith("@"):
        path = value[1:]
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except OSError as error:
            raise PfuncUsageError(
                f"{flag} {value}: cannot read {path}: {error.strerror or error}"
            ) from None
    return value


def parse_json_flag(flag: str, value: str, *, want_object: bool = False) -> Any:
    """JSON from a flag, with an error that quotes the input and shows a correct form."""
    import json

    from pfunc.errors import PfuncUsageError

    text = read_text_flag(flag, value)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        quoted = text if len(text) <= 80 else text[:77] + "..."
        raise PfuncUsageError(
            f"{flag} is not valid JSON ({error.msg} at line {error.lineno} column "
            f"{error.colno}): {quoted}\n  Quote keys and strings with double quotes and wrap the "
            f'whole value in single quotes for the shell, e.g. {flag} \'{{"userId":"u1"}}\''
        ) from None
    if want_object and not isinstance(parsed, dict):
        raise PfuncUsageError(f'{flag} must be a JSON object, e.g. {flag} \'{{"uuid":"u1"}}\'')
    return parsed


def parse_query_flags(values: tuple[str, ...]) -> dict[str, str]:
    from pfunc.errors import PfuncUsageError

    query: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise PfuncUsageError(
                f"--query {item!r}: write it as name=value, e.g. --query token=abc"
            )
        query[name] = value
    return query


def parse_header_flags(values: tuple[str, ...]) -> dict[str, str]:
    from pfunc.errors import PfuncUsageError

    headers: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise PfuncUsageError(
                f"--header {item!r}: write it as 'Name: value', e.g. --header 'X-Token: abc'"
            )
        headers[name.strip().lower()] = value.strip()
    return headers
