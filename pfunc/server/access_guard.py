"""Access Manager enforcement: one table from each PubNub endpoint to the resources it
touches and the permission PubNub requires on each, and the middleware that applies it
when the project has a secret key.

A request passes when it is signed with the secret key (server SDKs), or when its
`auth` is a valid token (or a v2-granted auth key) covering every resource it touches;
otherwise PubNub's 403. pfunc's own endpoints (/pfunc/..., on-request functions under
/v1/blocks/) and endpoints not in the table are not subject to it. Without a secret key
the middleware lets everything through.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote, unquote

from aiohttp import web

from pfunc.access import AccessManager, Refusal
from pfunc.access_tokens import PERMISSIONS, TokenError, decode
from pfunc.server.state import DevState
from pfunc.server.wire import names

READ, WRITE, MANAGE, DELETE = (PERMISSIONS[p] for p in ("read", "write", "manage", "delete"))
GET, UPDATE, JOIN = (PERMISSIONS[p] for p in ("get", "update", "join"))
SIGNATURE_WINDOW = 60  # seconds a signature's timestamp may be off, as PubNub allows

# What a rule needs: (resource kind, where its names are, permission bits). `where` names
# a group of the rule's path pattern, or "?param" for a query parameter.
Need = tuple[str, str, int]
GROUPS_READ: Need = ("channel-group", "?channel-group", READ)
SIGNED = "signed"  # the rule's endpoint needs the secret key itself
OPEN = "open"


@dataclass(frozen=True)
class Rule:
    method: str | None  # None: any method
    pattern: re.Pattern[str]
    needs: tuple[Need, ...] | str  # or SIGNED / OPEN


def _rule(method: str | None, pattern: str, *needs: Need | str) -> Rule:
    kept: tuple[Need, ...] | str = (
        needs[0] if len(needs) == 1 and isinstance(needs[0], str) else needs  # type: ignore[assignment]
    )
    return Rule(method, re.compile(pattern), kept)


_CH = r"(?P<channel>[^/]+)"
_CHS = r"(?P<channels>[^/]+)"
_UUID = r"(?P<uuid>[^/]+)"
_SUB = r"[^/]+"
# First match wins. Paths are matched raw (percent-encoded), names decoded after.
RULES: list[Rule] = [
    _rule(None, r"^/time/", OPEN),
    # Access Manager itself: only the secret key's holder grants and revokes.
    _rule(None, r"^/v3/pam/|^/v2/auth/", SIGNED),
    # messaging (fire is a publish that is not stored)
    _rule(None, rf"^/publish/{_SUB}/{_SUB}/[^/]+/{_CH}(/|$)", ("channel", "channel", WRITE)),
    _rule(None, rf"^/signal/{_SUB}/{_SUB}/[^/]+/{_CH}(/|$)", ("channel", "channel", WRITE)),
    _rule("GET", rf"^/v2/subscribe/{_SUB}/{_CHS}/", ("channel", "channels", READ), GROUPS_READ),
    # presence
    _rule(
        "GET",
        rf"^/v2/presence/sub-key/{_SUB}/channel/{_CHS}/(heartbeat|leave)$",
        ("channel", "channels", READ),
        GROUPS_READ,
    ),
    _rule(
        "GET",
        rf"^/v2/presence/sub-key/{_SUB}/channel/{_CHS}/uuid/[^/]+(/data)?$",
        ("channel", "channels", READ),
        GROUPS_READ,
    ),
    _rule(
        "GET",
        rf"^/v2/presence/sub-key/{_SUB}/channel/{_CHS}$",
        ("channel", "channels", READ),
        GROUPS_READ,
    ),
    _rule("GET", rf"^/v2/presence/sub-key/{_SUB}/uuid/[^/]+$", OPEN),  # where-now: own presence
    _rule("GET", rf"^/v2/presence/sub-key/{_SUB}/?$", SIGNED),  # global here-now
    # persistence
    _rule("GET", rf"^/v2/history/sub-key/{_SUB}/channel/{_CH}$", ("channel", "channel", READ)),
    _rule(
        "GET",
        rf"^/v3/history/sub-key/{_SUB}/message-counts/{_CHS}$",
        ("channel", "channels", READ),
    ),
    _rule(
        "GET",
        rf"^/v3/history(-with-actions)?/sub-key/{_SUB}/channel/{_CHS}$",
        ("channel", "channels", READ),
    ),
    _rule(
        "DELETE", rf"^/v3/history/sub-key/{_SUB}/channel/{_CHS}$", ("channel", "channels", DELETE)
    ),
    # message actions
    _rule(
        "POST",
        rf"^/v1/message-actions/{_SUB}/channel/{_CH}/message/[^/]+$",
        ("channel", "channel", WRITE),
    ),
    _rule("GET", rf"^/v1/message-actions/{_SUB}/channel/{_CH}$", ("channel", "channel", READ)),
    _rule(
        "DELETE",
        rf"^/v1/message-actions/{_SUB}/channel/{_CH}/message/[^/]+/action/[^/]+$",
        ("channel", "channel", DELETE),
    ),
    # channel groups
    _rule(
        "GET",
        rf"^/v1/channel-registration/sub-key/{_SUB}/channel-group/(?P<group>[^/]+)(/remove)?$",
        ("channel-group", "group", MANAGE),
    ),
    _rule("GET", rf"^/v1/channel-registration/sub-key/{_SUB}/channel-group/?$", SIGNED),
    # App Context: users (uuids), their memberships, channels, their members
    _rule("GET", rf"^/v2/objects/{_SUB}/uuids/{_UUID}/channels$", ("uuid", "uuid", GET)),
    _rule("PATCH", rf"^/v2/objects/{_SUB}/uuids/{_UUID}/channels$", ("uuid", "uuid", UPDATE)),
    _rule("GET", rf"^/v2/objects/{_SUB}/uuids/{_UUID}$", ("uuid", "uuid", GET)),
    _rule("PATCH", rf"^/v2/objects/{_SUB}/uuids/{_UUID}$", ("uuid", "uuid", UPDATE)),
    _rule("DELETE", rf"^/v2/objects/{_SUB}/uuids/{_UUID}$", ("uuid", "uuid", DELETE)),
    _rule("GET", rf"^/v2/objects/{_SUB}/channels/{_CH}/uuids$", ("channel", "channel", GET)),
    _rule("PATCH", rf"^/v2/objects/{_SUB}/channels/{_CH}/uuids$", ("channel", "channel", MANAGE)),
    _rule("GET", rf"^/v2/objects/{_SUB}/channels/{_CH}$", ("channel", "channel", GET)),
    _rule("PATCH", rf"^/v2/objects/{_SUB}/channels/{_CH}$", ("channel", "channel", UPDATE)),
    _rule("DELETE", rf"^/v2/objects/{_SUB}/channels/{_CH}$", ("channel", "channel", DELETE)),
    _rule("GET", rf"^/v2/objects/{_SUB}/(uuids|channels)/?$", SIGNED),  # list everything
    # files
    _rule(
        "POST",
        rf"^/v1/files/{_SUB}/channels/{_CH}/generate-upload-url$",
        ("channel", "channel", WRITE),
    ),
    _rule(
        "GET",
        rf"^/v1/files/publish-file/{_SUB}/{_SUB}/[^/]+/{_CH}/",
        ("channel", "channel", WRITE),
    ),
    _rule("GET", rf"^/v1/files/{_SUB}/channels/{_CH}/files(/|$)", ("channel", "channel", READ)),
    _rule("DELETE", rf"^/v1/files/{_SUB}/channels/{_CH}/files/", ("channel", "channel", DELETE)),
]


def rule_for(method: str, raw_path: str) -> tuple[Rule, re.Match[str]] | None:
    for rule in RULES:
        if rule.method is not None and rule.method != method:
            continue
        match = rule.pattern.search(raw_path)
        if match:
            return rule, match
    return None


def resources(rule: Rule, match: re.Match[str], request: web.Request) -> list[tuple[str, str, int]]:
    """Every (kind, name, bits) the request touches under `rule`."""
    touched = []
    assert not isinstance(rule.needs, str)
    for kind, where, bits in rule.needs:
        text = request.query.get(where[1:], "") if where.startswith("?") else match[where]
        for name in names(text or ""):
            touched.append((kind, unquote(name) if not where.startswith("?") else name, bits))
    return touched


def signature_valid(
    secret: str, publish_key: str, subscribe_key: str, request: web.Request, body: str
) -> bool:
    """PubNub's request signature: v2 (method, publish key, path, sorted query, body) as
    every SDK writes it, or v1 (the Python SDK's POST publish)."""
    given = request.query.get("signature", "")
    timestamp = request.query.get("timestamp", "")
    if not timestamp.isdigit() or abs(int(timestamp) - time.time()) > SIGNATURE_WINDOW:
        return False
    path = request.raw_path.split("?", 1)[0]
    pairs = sorted((key, value) for key, value in request.query.items() if key != "signature")
    candidates = set()
    for tilde in ("%7E", "~"):  # the SDKs escape ~; PubNub's documented form does not
        query = "&".join(f"{k}={quote(v, safe='').replace('~', tilde)}" for k, v in pairs)
        if given.startswith("v2."):
            methods = ["GET"] if path.startswith("/publish/") else []
            for method in [request.method, *methods]:
                for payload in (body, ""):
                    candidates.add(f"{method}\n{publish_key}\n{path}\n{query}\n{payload}")
        else:
            candidates.add(f"{subscribe_key}\n{publish_key}\n{path}\n{query}")
    for message in candidates:
        digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
        expected = base64.urlsafe_b64encode(digest).decode()
        if given.startswith("v2."):
            expected = "v2." + expected.rstrip("=")
        if hmac.compare_digest(expected, given):
            return True
    return False


def forbidden(message: str, missing: list[tuple[str, str, int]] | None = None) -> web.Response:
    """PubNub's 403 (as recorded): the resources refused under `payload` when known."""
    body: dict[str, object] = {
        "message": message,
        "error": True,
        "service": "Access Manager",
        "status": 403,
    }
    if missing:
        payload: dict[str, list[str]] = {}
        for kind, name, _bits in missing:
            key = {"channel": "channels", "channel-group": "channel-groups"}.get(kind, "uuids")
            if name not in payload.setdefault(key, []):
                payload[key].append(name)
        body["payload"] = payload
    return web.json_response(body, status=403)


class AccessGuard:
    def __init__(self, state: DevState) -> None:
        self.state = state

    @property
    def access(self) -> AccessManager:
        assert self.state.engine.access is not None
        return self.state.engine.access

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        access = self.state.engine.access
        if access is None or not access.enforcing:
            return await handler(request)
        found = rule_for(request.method, request.raw_path.split("?", 1)[0])
        if found is None or found[0].needs == OPEN:
            return await handler(request)
        rule, match = found
        if "signature" in request.query:
            keyset = self.state.engine.runtime.keyset
            body = (
                (await request.read()).decode("utf-8", "replace") if request.can_read_body else ""
            )
            if signature_valid(
                access.secret, keyset.publish_key, keyset.subscribe_key, request, body
            ):
                return await handler(request)
            return self._refuse(request, forbidden("Signature Does Not Match"), "a valid signature")
        if rule.needs == SIGNED:
            return self._refuse(
                request, forbidden("Forbidden"), "a request signed with the secret key"
            )
        refusal = await self._refusal(request, resources(rule, match, request))
        if refusal is not None:
            return refusal
        return await handler(request)

    async def _refusal(
        self, request: web.Request, touched: list[tuple[str, str, int]]
    ) -> web.Response | None:
        auth = request.query.get("auth") or None
        token = None
        if auth is not None:
            try:
                decode(auth)
            except TokenError:
                pass  # an auth key of the v2 grants
            else:
                checked = await self.access.check_token(auth, request.query.get("uuid"))
                if isinstance(checked, Refusal):
                    missing = touched if checked.message == "Forbidden" else None
                    return self._refuse(request, forbidden(checked.message, missing), checked.why)
                token = checked
        missing = [
            (kind, name, bits)
            for kind, name, bits in touched
            if not (token is not None and self.access.token_allows(token, kind, name, bits))
            and not await self.access.legacy_allows(auth, kind, name, bits)
        ]
        if not missing:
            return None
        what = ", ".join(
            f"{_permission_names(bits)} on {kind} {name!r}" for kind, name, bits in missing
        )
        holder = "the token" if token is not None else f"auth key {auth!r}" if auth else "no auth"
        return self._refuse(request, forbidden("Forbidden", missing), f"{holder} lacks {what}")

    def _refuse(self, request: web.Request, answer: web.Response, missing: str) -> web.Response:
        self.state.log(
            {
                "type": "access-denied",
                "method": request.method,
                "path": request.path,
                "uuid": request.query.get("uuid"),
                "missing": missing,
            }
        )
        return answer


def _permission_names(bits: int) -> str:
    return "+".join(name for name, bit in PERMISSIONS.items() if bits & bit)
