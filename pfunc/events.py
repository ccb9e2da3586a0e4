"""Event types: what triggers one execution, and the request object the sandbox builds from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MESSAGE_KINDS = ("before-publish", "after-publish")
REQUEST_KIND = "on-request"
SUPPORTED_KINDS = (*MESSAGE_KINDS, REQUEST_KIND)

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


Event = MessageEvent | RequestEvent
