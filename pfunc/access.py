"""Access Manager: what the keyset's secret key grants. Issues and revokes v3 tokens,
keeps v2 grants to auth keys, and answers whether a token or an auth key covers one
resource. Revocations and v2 grants live in the project's SQLite store, so they survive
a restart. `server/access_guard.py` asks it about each request; `server/access_api.py`
serves grant and revoke; functions' `pubnub` module calls grant_token and revoke_token
(their parseToken reads tokens in the sandbox: sandbox/builtins.js).

Without a secret key in pfunc.toml nothing is enforced, and tokens are signed with a
per-project development secret, so that grant and parseToken still work.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from pfunc import access_tokens, grant_patterns
from pfunc.access_tokens import PERMISSIONS, TYPE_KEYS, TYPES, Token, TokenError
from pfunc.clock import Clock
from pfunc.grant_patterns import PatternError
from pfunc.numbers import whole_number
from pfunc.store import KVStore

MAX_TTL = 43_200  # minutes: PubNub's range for a v3 token is 1 to 43200
LEGACY_DEFAULT_TTL = 1_440  # minutes, PubNub's default for a v2 grant
LEGACY_MAX_TTL = 525_600
# Which token keys hold grants for a kind of resource a request touches.
TOKEN_KEYS = {"channel": ("chan", "spc"), "channel-group": ("grp",), "uuid": ("uuid", "usr")}
LEGACY_LETTERS = {"r": 1, "w": 2, "m": 4, "d": 8, "g": 32, "u": 64, "j": 128}


@dataclass
class AccessProblem(Exception):
    """A grant or revoke PubNub answers with 400: message, detail and where."""

    message: str
    detail: str
    location: str
    location_type: str = "body"

    def __str__(self) -> str:
        return f"{self.message}: {self.detail} ({self.location})"

    def body(self, source: str, status: int = 400) -> dict[str, Any]:
        """PubNub's answer for it (400 as recorded), `source` being "grant" or "revoke"."""
        detail = {
            "message": self.detail,
            "location": self.location,
            "locationType": self.location_type,
        }
        error = {"message": self.message, "source": source, "details": [detail]}
        return {"error": error, "service": "Access Manager", "status": status}


@dataclass
class Refusal:
    """Why a token does not let a request through; `message` is PubNub's 403 text."""

    message: str
    why: str


def dev_secret(subscribe_key: str) -> str:
    """The secret tokens are signed with when pfunc.toml has none: stable per keyset."""
    return hashlib.sha256(f"pfunc dev secret:{subscribe_key}".encode()).hexdigest()


class AccessManager:
    def __init__(
        self, store: KVStore, subscribe_key: str, clock: Clock, secret_key: str | None
    ) -> None:
        self.store = store
        self.keyset = subscribe_key
        self.clock = clock
        self.secret_key = secret_key or None
        self.secret = self.secret_key or dev_secret(subscribe_key)

    @property
    def enforcing(self) -> bool:
        return self.secret_key is not None

    def now(self) -> int:
        return self.clock.now_ms() // 1000

    # --- v3 tokens --------------------------------------------------------------------

    def issue(self, body: Any) -> str:
        """A token for the REST grant body PubNub takes ({ttl, permissions}); AccessProblem
        when PubNub would answer 400."""
        if not isinstance(body, dict):
            raise AccessProblem("Invalid request body", "A JSON object is required.", "body")
        ttl = _ttl(body.get("ttl"))
        permissions = body.get("permissions")
        if not isinstance(permissions, dict):
            raise AccessProblem(
                "Invalid permissions", "An object is required.", "permissions", "body"
            )
        resources = _permission_section(permissions.get("resources"), "resources", False)
        patterns = _permission_section(permissions.get("patterns"), "patterns", True)
        if not any(resources.values()) and not any(patterns.values()):
            raise AccessProblem(
                "Invalid permissions",
                "At least one resource or pattern is required.",
                "permissions",
            )
        meta = permissions.get("meta") or {}
        if not isinstance(meta, dict):
            raise AccessProblem("Invalid meta", "An object is required.", "permissions.meta")
        uuid = permissions.get("uuid")
        if uuid is not None and (not isinstance(uuid, str) or not uuid):
            raise AccessProblem(
                "Invalid uuid", "A non-empty string is required.", "permissions.uuid"
            )
        token = Token(self.now(), ttl, resources, patterns, meta, uuid)
        return access_tokens.encode(token, self.secret)

    def grant_token(self, params: dict[str, Any]) -> str:
        """A token for the arguments the JavaScript SDK's grantToken takes: ttl,
        resources and patterns ({channels|groups|uuids|spaces|users: {name: {read: true,
        ...}}}), meta, and authorized_uuid (or authorizedUserId)."""
        if not isinstance(params, dict):
            raise AccessProblem("Invalid parameters", "An object is required.", "params")
        permissions: dict[str, Any] = {"meta": params.get("meta") or {}}
        for section in ("resources", "patterns"):
            given = params.get(section) or {}
            if not isinstance(given, dict):
                raise AccessProblem(f"Invalid {section}", "An object is required.", section)
            permissions[section] = {
                kind: {name: _bits(flags) for name, flags in (entries or {}).items()}
                for kind, entries in given.items()
                if isinstance(entries, dict) or entries is None
            }
        uuid = params.get("authorized_uuid", params.get("authorizedUserId"))
        if uuid is not None:
            permissions["uuid"] = uuid  # issue() refuses anything but a non-empty string
        return self.issue({"ttl": params.get("ttl"), "permissions": permissions})

    async def revoke_token(self, text: str) -> None:
        """Revoke a token this keyset issued; AccessProblem when PubNub answers 400."""
        try:
            token = access_tokens.verified(text, self.secret)
        except TokenError as error:
            raise AccessProblem("Invalid token", f"{error}.", "token", "path") from None
        if token.expires_at <= self.now():
            raise AccessProblem("Invalid token", "Token is expired.", "token", "path")
        await self.store.execute(
            "INSERT OR IGNORE INTO revoked_tokens(keyset,signature,expires_at) VALUES(?,?,?)",
            (self.keyset, token.signature.hex(), token.expires_at),
        )

    async def check_token(self, text: str, uuid: str | None) -> Token | Refusal:
        """The token when it is valid now for a request by `uuid`, or why it is not."""
        try:
            token = access_tokens.verified(text, self.secret)
        except TokenError as error:
            return Refusal("Invalid token", str(error))
        if token.expires_at <= self.now():
            return Refusal("Token is expired", f"the token expired at {token.expires_at}")
        rows = await self.store.execute(
            "SELECT 1 FROM revoked_tokens WHERE keyset=? AND signature=?",
            (self.keyset, token.signature.hex()),
        )
        if rows:
            return Refusal("Token is revoked", "the token was revoked")
        if token.authorized_uuid is not None and token.authorized_uuid != uuid:
            return Refusal(
                "Forbidden",
                f"the token is for uuid {token.authorized_uuid!r}, the request's is {uuid!r}",
            )
        return token

    @staticmethod
    def token_allows(token: Token, kind: str, name: str, bits: int) -> bool:
        for key in TOKEN_KEYS[kind]:
            granted = token.resources.get(key, {}).get(name, 0)
            if granted & bits == bits:
                return True
            for pattern, granted in token.patterns.get(key, {}).items():
                if granted & bits == bits and _matches(pattern, name):
                    return True
        return False

    # --- v2 grants to auth keys ---------------------------------------------------------

    async def grant_legacy(
        self, targets: list[tuple[str, str]], auths: list[str], bits: int, ttl: int
    ) -> None:
        """Grant `bits` on each (kind, name) to each auth key ([] means every key); no
        bits at all revokes. ttl 0 never expires."""
        expires = None if ttl == 0 else self.now() + ttl * 60
        for kind, name in targets:
            for auth in auths or [""]:
                if bits:
                    await self.store.execute(
                        "INSERT INTO auth_grants(keyset,kind,name,auth,permissions,expires_at) "
                        "VALUES(?,?,?,?,?,?) ON CONFLICT(keyset,kind,name,auth) DO UPDATE SET "
                        "permissions=excluded.permissions, expires_at=excluded.expires_at",
                        (self.keyset, kind, name, auth, bits, expires),
                    )
                else:
                    await self.store.execute(
                        "DELETE FROM auth_grants WHERE keyset=? AND kind=? AND name=? AND auth=?",
                        (self.keyset, kind, name, auth),
                    )

    async def legacy_allows(self, auth: str | None, kind: str, name: str, bits: int) -> bool:
        """Whether a v2 grant covers `name` for `auth` (or for every auth key)."""
        rows = await self.store.execute(
            "SELECT permissions FROM auth_grants WHERE keyset=? AND auth IN (?, '') "
            "AND ((kind=? AND name=?) OR kind='keyset') "
            "AND (expires_at IS NULL OR expires_at>?)",
            (self.keyset, auth or "", kind, name, self.now()),
        )
        granted = 0
        for (permissions,) in rows:
            granted |= int(permissions)
        return granted & bits == bits


def _matches(pattern: str, name: str) -> bool:
    try:
        return grant_patterns.search(pattern, name)
    except PatternError:  # (checked when granted: only a token from elsewhere has one)
        return False


def _bits(flags: Any) -> int:
    if isinstance(flags, int) and not isinstance(flags, bool):
        return flags
    if not isinstance(flags, dict):
        raise AccessProblem("Invalid permissions", "Permissions must be an object.", "permissions")
    return sum(bit for name, bit in PERMISSIONS.items() if flags.get(name))


def _ttl(value: Any) -> int:
    if isinstance(value, str):
        number = whole_number(value.strip(), 9)
        value = value if number is None else number
    if value is None:
        raise AccessProblem("Invalid ttl", "Missing required value.", "ttl")
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_TTL:
        raise AccessProblem("Invalid ttl", f"Range should be 1 to {MAX_TTL} minute(s).", "ttl")
    return value


def _permission_section(value: Any, section: str, patterns: bool) -> dict[str, dict[str, int]]:
    """{token key: {name: bits}} from the body's resources or patterns."""
    where = f"permissions.{section}"
    if value is None:
        return {key: {} for key in TYPE_KEYS}
    if not isinstance(value, dict):
        raise AccessProblem("Invalid permissions", "An object is required.", where)
    result: dict[str, dict[str, int]] = {key: {} for key in TYPE_KEYS}
    for kind, entries in value.items():
        if kind not in TYPES:
            continue  # PubNub ignores resource types it does not know
        if not isinstance(entries, dict):
            raise AccessProblem("Invalid permissions", "An object is required.", f"{where}.{kind}")
        for name, bits in entries.items():
            if not isinstance(bits, int) or isinstance(bits, bool) or not 0 <= bits <= 255:
                raise AccessProblem(
                    "Invalid permissions",
                    "Permissions must be an integer from 0 to 255.",
                    f"{where}.{kind}.{name}",
                )
            if patterns:
                try:
                    grant_patterns.check(name)
                except PatternError as error:
                    raise AccessProblem(
                        "Invalid pattern",
                        f"Not an RE2 regular expression: {error}.",
                        f"{where}.{kind}",
                    ) from None
            result[TYPES[kind]][name] = bits
    return result
