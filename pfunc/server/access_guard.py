"""Access Manager enforcement: one table from each PubNub endpoint to the resources it
touches and the permission PubNub requires on each, and the middleware that applies it
when the project has a secret key.

A request passes when it is signed with the secret key (server SDKs), or when its
`auth` is a valid token (or a v2-granted auth key) covering every resource it touches;
otherwise PubNub's 403. The table is keyed by the route the request was routed to, so
every spelling of a path is judged as the handler will read it; a route the table does not
name needs the secret key. pfunc's own endpoints (/pfunc/..., on-request functions under
/v1/blocks/) are not subject to it. Without a secret key everything passes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote, unquote

from aiohttp import web

from pfunc import jsonio
from pfunc.access import AccessManager, AccessProblem, Refusal
from pfunc.access_tokens import PERMISSIONS, TokenError, decode
from pfunc.numbers import whole_number
from pfunc.server.state import DevState
from pfunc.server.wire import NOT_PUBNUB_PREFIXES, names, wire_json

READ, WRITE, MANAGE, DELETE = (PERMISSIONS[p] for p in ("read", "write", "manage", "delete"))
GET, UPDATE, JOIN = (PERMISSIONS[p] for p in ("get", "update", "join"))
SIGNATURE_WINDOW = 60  # seconds a signature's timestamp may be off, as PubNub allows
SIGNATURE_MISMATCH = "Client and server produced different signatures for the same inputs."

# What a rule needs: (resource kind, where its names are, permission bits). `where` names
# a route parameter (match_info, already decoded), "?param" a query parameter, or
# "body:memberships" the channels a memberships PATCH body names.
Need = tuple[str, str, int]
GROUPS_READ: Need = ("channel-group", "?channel-group", READ)
SIGNED = "signed"  # the endpoint needs the secret key itself
OPEN = "open"
# A valid token, whatever it grants: App Context's "get all" (PubNub: no per-resource
# grant unless the keyset's "Disallow Get All ... Metadata" option is on; "either a
# valid authorization token or a signature are required").
ANY_TOKEN = "any token"
Needs = tuple[Need, ...] | str

_PRESENCE = "/v2/presence/sub-key/{sub}"
_OBJECTS = "/v2/objects/{sub}"
_FILES = "/v1/files/{sub}/channels/{channel}"
_GROUPS = "/v1/channel-registration/sub-key/{sub}/channel-group"
_CHANNEL = ("channel", "channel")
_CHANNELS = ("channel", "channels")
_PUSH_CHANNELS: Needs = (("channel", "?add", READ), ("channel", "?remove", READ))

# (method, route as the router names it) -> what the request needs. Keyed by the route
# the request was routed to, so no spelling of a path (percent-encoding, HEAD for GET)
# reaches a handler the table does not judge; a route missing here needs the secret key.
RULES: dict[tuple[str, str], Needs] = {
    ("GET", "/time/0"): OPEN,
    # Access Manager itself: only the secret key's holder grants and revokes.
    ("POST", "/v3/pam/{sub}/grant"): SIGNED,
    ("DELETE", "/v3/pam/{sub}/grant/{token}"): SIGNED,
    ("GET", "/v2/auth/grant/sub-key/{sub}"): SIGNED,
    # messaging (fire is a publish that is not stored)
    ("GET", "/publish/{pub}/{sub}/{sig}/{channel}/{callback}/{message}"): ((*_CHANNEL, WRITE),),
    ("POST", "/publish/{pub}/{sub}/{sig}/{channel}/{callback}"): ((*_CHANNEL, WRITE),),
    ("GET", "/signal/{pub}/{sub}/{sig}/{channel}/{callback}/{message}"): ((*_CHANNEL, WRITE),),
    ("GET", "/v2/subscribe/{sub}/{channels}/{callback}"): ((*_CHANNELS, READ), GROUPS_READ),
    # presence (a leave needs nothing: it only ends the caller's own presence)
    ("GET", _PRESENCE + "/channel/{channels}/heartbeat"): ((*_CHANNELS, READ), GROUPS_READ),
    ("GET", _PRESENCE + "/channel/{channels}/leave"): OPEN,
    ("GET", _PRESENCE + "/channel/{channels}"): ((*_CHANNELS, READ), GROUPS_READ),
    ("GET", _PRESENCE + "/channel/{channels}/uuid/{uuid}"): ((*_CHANNELS, READ), GROUPS_READ),
    ("GET", _PRESENCE + "/channel/{channels}/uuid/{uuid}/data"): ((*_CHANNELS, READ), GROUPS_READ),
    ("GET", _PRESENCE + "/uuid/{uuid}"): OPEN,  # where-now: one's own presence
    ("GET", _PRESENCE): SIGNED,  # global here-now
    # persistence
    ("GET", "/v2/history/sub-key/{sub}/channel/{channel}"): ((*_CHANNEL, READ),),
    ("GET", "/v3/history/sub-key/{sub}/message-counts/{channels}"): ((*_CHANNELS, READ),),
    ("GET", "/v3/history/sub-key/{sub}/channel/{channels}"): ((*_CHANNELS, READ),),
    ("GET", "/v3/history-with-actions/sub-key/{sub}/channel/{channels}"): ((*_CHANNELS, READ),),
    ("DELETE", "/v3/history/sub-key/{sub}/channel/{channel}"): ((*_CHANNEL, DELETE),),
    # message actions
    ("POST", "/v1/message-actions/{sub}/channel/{channel}/message/{message}"): (
        (*_CHANNEL, WRITE),
    ),
    ("GET", "/v1/message-actions/{sub}/channel/{channel}"): ((*_CHANNEL, READ),),
    (
        "DELETE",
        "/v1/message-actions/{sub}/channel/{channel}/message/{message}/action/{action}",
    ): ((*_CHANNEL, DELETE),),
    # channel groups
    ("GET", _GROUPS + "/{group}"): (("channel-group", "group", MANAGE),),
    ("GET", _GROUPS + "/{group}/remove"): (("channel-group", "group", MANAGE),),
    ("GET", _GROUPS): SIGNED,  # every group of the keyset
    # mobile push: registering a device on channels, or taking it off them, needs read on
    # them; a device's list, and its removal, only its token (docs/decisions.md)
    ("GET", "/v1/push/sub-key/{sub}/devices/{token}"): _PUSH_CHANNELS,
    ("GET", "/v1/push/sub-key/{sub}/devices/{token}/remove"): OPEN,
    ("GET", "/v2/push/sub-key/{sub}/devices-apns2/{token}"): _PUSH_CHANNELS,
    ("GET", "/v2/push/sub-key/{sub}/devices-apns2/{token}/remove"): OPEN,
    # App Context: users (uuids), their memberships, channels, their members
    ("GET", _OBJECTS + "/uuids/{uuid}/channels"): (("uuid", "uuid", GET),),
    ("PATCH", _OBJECTS + "/uuids/{uuid}/channels"): (
        ("uuid", "uuid", UPDATE),
        ("channel", "body:memberships", JOIN),
    ),
    ("GET", _OBJECTS + "/uuids/{uuid}"): (("uuid", "uuid", GET),),
    ("PATCH", _OBJECTS + "/uuids/{uuid}"): (("uuid", "uuid", UPDATE),),
    ("DELETE", _OBJECTS + "/uuids/{uuid}"): (("uuid", "uuid", DELETE),),
    ("GET", _OBJECTS + "/channels/{channel}/uuids"): ((*_CHANNEL, GET),),
    ("PATCH", _OBJECTS + "/channels/{channel}/uuids"): ((*_CHANNEL, MANAGE),),
    ("GET", _OBJECTS + "/channels/{channel}"): ((*_CHANNEL, GET),),
    ("PATCH", _OBJECTS + "/channels/{channel}"): ((*_CHANNEL, UPDATE),),
    ("DELETE", _OBJECTS + "/channels/{channel}"): ((*_CHANNEL, DELETE),),
    ("GET", _OBJECTS + "/uuids"): ANY_TOKEN,  # every user of the keyset
    ("GET", _OBJECTS + "/channels"): ANY_TOKEN,
    # files
    ("POST", _FILES + "/generate-upload-url"): ((*_CHANNEL, WRITE),),
    ("GET", "/v1/files/publish-file/{pub}/{sub}/{sig}/{channel}/{callback}/{message}"): (
        (*_CHANNEL, WRITE),
    ),
    ("GET", _FILES + "/files"): ((*_CHANNEL, READ),),
    ("GET", _FILES + "/files/{id}/{name}"): ((*_CHANNEL, READ),),
    ("DELETE", _FILES + "/files/{id}/{name}"): ((*_CHANNEL, DELETE),),
}
# pfunc's own endpoints and on-request functions are not PubNub's and not subject to
# Access Manager; nor is the console's page at the root (it answers loopback only).
EXEMPT_ROUTES = ("/",)


def needs_of(request: web.Request) -> Needs | None:
    """What the request needs, from the route it was routed to; None: exempt."""
    route = request.match_info.route
    resource = route.resource
    canonical = resource.canonical if resource is not None else ""
    if not canonical or canonical.startswith(NOT_PUBNUB_PREFIXES) or canonical in EXEMPT_ROUTES:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    return RULES.get((method, canonical), SIGNED)


async def resources(needs: tuple[Need, ...], request: web.Request) -> list[tuple[str, str, int]]:
    """Every (kind, name, bits) the request touches, names split as the handlers split them."""
    touched = []
    for kind, where, bits in needs:
        if where == "body:memberships":
            found = await _membership_channels(request)
        elif where.startswith("?"):
            found = names(request.query.get(where[1:], ""))
        else:
            found = names(request.match_info.get(where, ""))
        touched.extend((kind, name, bits) for name in found)
    return touched


async def _membership_channels(request: web.Request) -> list[str]:
    """The channels a memberships PATCH sets or deletes (its body: {set, delete})."""
    try:
        body = jsonio.loads(await request.read() or b"{}")
    except (ValueError, UnicodeDecodeError):
        return []  # the handler answers the malformed body with PubNub's 400
    found = []
    for action in ("set", "delete"):
        items = body.get(action) if isinstance(body, dict) else None
        for item in items if isinstance(items, list) else []:
            channel = item.get("channel") if isinstance(item, dict) else None
            name = channel.get("id") if isinstance(channel, dict) else None
            if isinstance(name, str) and name:
                found.append(name)
    return found


def signature_valid(
    secret: str, publish_key: str, subscribe_key: str, request: web.Request, body: str
) -> bool:
    """PubNub's request signature: v2 (method, publish key, path, sorted query, body) as
    every SDK writes it, or v1 (the Python SDK's POST publish)."""
    given = request.query.get("signature", "")
    timestamp = request.query.get("timestamp", "")
    seconds = whole_number(timestamp, 18)
    if seconds is None or abs(seconds - time.time()) > SIGNATURE_WINDOW:
        return False
    raw_path = request.raw_path.split("?", 1)[0]
    # The path as sent (the JavaScript SDK signs it encoded) or decoded (the Python SDK
    # signs an App Context id with a space or non-ASCII character unencoded).
    paths = {raw_path, unquote(raw_path)}
    pairs = sorted((key, value) for key, value in request.query.items() if key != "signature")
    candidates = set()
    # The SDKs escape ~ (PubNub's documented form does not); the Python SDK signs the
    # values it encodes itself (filter-expr, state, a file message's meta) encoded again.
    for tilde, times in itertools.product(("%7E", "~"), (1, 2)):
        query = "&".join(
            f"{k}={_encoded(v, times if k in ENCODED_BY_THE_SDK else 1).replace('~', tilde)}"
            for k, v in pairs
        )
        for path in paths:
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


ENCODED_BY_THE_SDK = {"filter-expr", "state", "meta"}


def _encoded(value: str, times: int) -> str:
    for _ in range(times):
        value = quote(value, safe="")
    return value


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
    return wire_json(body, status=403)


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
        needs = needs_of(request)
        if needs is None or needs == OPEN:
            return await handler(request)
        if "signature" in request.query:
            keyset = self.state.engine.runtime.keyset
            body = (
                (await request.read()).decode("utf-8", "replace") if request.can_read_body else ""
            )
            if signature_valid(
                access.secret, keyset.publish_key, keyset.subscribe_key, request, body
            ):
                return await handler(request)
            if request.path.startswith("/v3/pam/"):  # v3's own error shape (the SDKs' docs)
                source = "revoke" if request.method == "DELETE" else "grant"
                mismatch = AccessProblem(
                    "Invalid signature", SIGNATURE_MISMATCH, "signature", "query"
                )
                answer = wire_json(mismatch.body(source, 403), status=403)
            else:
                answer = forbidden("Signature Does Not Match")
            return self._refuse(request, answer, "a valid signature")
        if needs == ANY_TOKEN:
            return await self._token_refusal(request) or await handler(request)
        if isinstance(needs, str):  # SIGNED
            return self._refuse(
                request, forbidden("Forbidden"), "a request signed with the secret key"
            )
        refusal = await self._refusal(request, await resources(needs, request))
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

    async def _token_refusal(self, request: web.Request) -> web.Response | None:
        """None when the request carries a valid token (for this uuid), whatever it grants."""
        auth = request.query.get("auth") or ""
        try:
            decode(auth)
        except TokenError:
            return self._refuse(request, forbidden("Forbidden"), "a valid token (or a signature)")
        checked = await self.access.check_token(auth, request.query.get("uuid"))
        if isinstance(checked, Refusal):
            return self._refuse(request, forbidden(checked.message), checked.why)
        return None

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
