"""PubNub's Access Manager v3 token: a CBOR map, signed, in URL-safe base64.

The layout is the one PubNub issues (read from recorded tokens, and from the SDKs'
parseToken, which decode it): byte-string keys `v` (2), `t` (issued, Unix seconds),
`ttl` (minutes), `res` and `pat` (maps from resource type `chan`, `grp`, `spc`, `usr`,
`uuid` to {name or regex: permission bits}), `meta`, optionally `uuid` (the authorized
uuid), and `sig` (32 bytes). PubNub's own signing input is not public: pfunc signs with
HMAC-SHA256 under the secret key over the CBOR of the map without `sig`, so a token is
as unforgeable here as there and the SDKs' parseToken reads it unchanged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

import cbor2

# PubNub's permission bits (the SDKs' grantToken and parseToken use the same values).
PERMISSIONS = {
    "read": 1,
    "write": 2,
    "manage": 4,
    "delete": 8,
    "create": 16,
    "get": 32,
    "update": 64,
    "join": 128,
}

# Resource types: the name grantToken's body uses -> the key inside the token.
TYPES = {"channels": "chan", "groups": "grp", "spaces": "spc", "users": "usr", "uuids": "uuid"}
# Token keys in the order PubNub writes them.
TYPE_KEYS = ("chan", "grp", "spc", "usr", "uuid")

VERSION = 2


class TokenError(ValueError):
    """Text that is not a PubNub v3 token; the message says what is wrong."""


@dataclass
class Token:
    timestamp: int  # Unix seconds when issued
    ttl: int  # minutes
    resources: dict[str, dict[str, int]] = field(default_factory=dict)  # by token key
    patterns: dict[str, dict[str, int]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    authorized_uuid: str | None = None
    signature: bytes = b""
    version: int = VERSION

    @property
    def expires_at(self) -> int:
        """Unix seconds after which the token no longer grants anything."""
        return self.timestamp + self.ttl * 60

    def unsigned_map(self) -> dict[bytes, Any]:
        body: dict[bytes, Any] = {
            b"v": self.version,
            b"t": self.timestamp,
            b"ttl": self.ttl,
            b"res": {key.encode(): dict(self.resources.get(key, {})) for key in TYPE_KEYS},
            b"pat": {key.encode(): dict(self.patterns.get(key, {})) for key in TYPE_KEYS},
            b"meta": self.meta,
        }
        if self.authorized_uuid is not None:
            body[b"uuid"] = self.authorized_uuid
        return body


def sign(token: Token, secret: str) -> bytes:
    payload = cbor2.dumps(token.unsigned_map())
    return hmac.new(secret.encode(), payload, hashlib.sha256).digest()


def encode(token: Token, secret: str) -> str:
    """The token's text, signed with `secret` (PubNub writes URL-safe base64, padded)."""
    token.signature = sign(token, secret)
    signed = {**token.unsigned_map(), b"sig": token.signature}
    return base64.urlsafe_b64encode(cbor2.dumps(signed)).decode()


def decode(text: str) -> Token:
    """The token in `text`, unverified; TokenError when it is not a v3 token."""
    cleaned = text.strip().replace("+", "-").replace("/", "_")
    try:
        raw = base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
        data = cbor2.loads(raw)
    except (binascii.Error, ValueError, RecursionError, cbor2.CBORDecodeError) as error:
        raise TokenError(f"not a PubNub token ({error})") from None
    if not isinstance(data, dict):
        raise TokenError("not a PubNub token (not a CBOR map)")
    fields = {_text(key): value for key, value in data.items()}
    try:
        timestamp, ttl = fields["t"], fields["ttl"]
        resources, patterns = fields["res"], fields["pat"]
    except KeyError as missing:
        raise TokenError(f"not a PubNub token (no {missing.args[0]!r})") from None
    if not all(isinstance(n, int) for n in (timestamp, ttl)):
        raise TokenError("not a PubNub token (t and ttl must be integers)")
    uuid = fields.get("uuid")
    meta = fields.get("meta") or {}
    return Token(
        timestamp=timestamp,
        ttl=ttl,
        resources=_permission_maps(resources),
        patterns=_permission_maps(patterns),
        meta=meta if isinstance(meta, dict) else {},
        authorized_uuid=uuid if isinstance(uuid, str) else None,
        signature=fields.get("sig") if isinstance(fields.get("sig"), bytes) else b"",
        version=fields.get("v", VERSION),
    )


def verified(text: str, secret: str) -> Token:
    """The token in `text` when `secret` signed it; TokenError otherwise."""
    token = decode(text)
    try:
        expected = sign(token, secret)
    except (ValueError, TypeError, RecursionError, cbor2.CBORError):
        # Crafted CBOR (cyclic shared references, odd tags) that no signer wrote.
        raise TokenError("not a PubNub token (its contents cannot be signed)") from None
    if not hmac.compare_digest(expected, token.signature):
        raise TokenError("the token was not signed with this keyset's secret key")
    return token


def _text(key: Any) -> str:
    return key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)


def _permission_maps(value: Any) -> dict[str, dict[str, int]]:
    if not isinstance(value, dict):
        raise TokenError("not a PubNub token (res and pat must be maps)")
    maps: dict[str, dict[str, int]] = {}
    for key, entries in value.items():
        if isinstance(entries, dict):
            maps[_text(key)] = {
                _text(name): bits for name, bits in entries.items() if isinstance(bits, int)
            }
    return maps
