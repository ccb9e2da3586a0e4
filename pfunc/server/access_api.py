"""PubNub's Access Manager API: grant (v3 tokens) and revoke, and the v2 grant to auth
keys, in the wire shapes the SDKs parse (from the recorded exchanges in ../shared/wire).
That only the secret key's holder may call them is access_guard's rule."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pfunc import jsonio
from pfunc.access import (
    LEGACY_DEFAULT_TTL,
    LEGACY_LETTERS,
    LEGACY_MAX_TTL,
    AccessManager,
    AccessProblem,
)
from pfunc.numbers import whole_number
from pfunc.server.state import DevState
from pfunc.server.wire import (
    changing_get,
    channel_groups,
    names,
    pubnub_error,
    wire_json,
    wrong_key,
)

SERVICE = "Access Manager"


def problem_answer(problem: AccessProblem, source: str) -> web.Response:
    """PubNub's 400 for a grant or revoke it will not do (as recorded)."""
    return wire_json(problem.body(source), status=400)


class AccessAPI:
    def __init__(self, state: DevState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v3/pam/{sub}/grant", self.grant_token),
            web.delete("/v3/pam/{sub}/grant/{token}", self.revoke_token),
            changing_get("/v2/auth/grant/sub-key/{sub}", self.grant),
        ]

    @property
    def access(self) -> AccessManager:
        assert self.state.engine.access is not None
        return self.state.engine.access

    def _wrong_key(self, request: web.Request) -> web.Response | None:
        return wrong_key(request, self.state.engine.runtime.keyset.subscribe_key, SERVICE)

    async def grant_token(self, request: web.Request) -> web.Response:
        refused = self._wrong_key(request)
        if refused:
            return refused
        try:
            # JSON is UTF-8 (RFC 8259): a charset the header names is not read, so an
            # unknown one (charset=rot13) is no 500.
            body = jsonio.loads((await request.read()).decode("utf-8") or "null")
        except ValueError:
            body = None
        try:
            token = self.access.issue(body)
        except AccessProblem as problem:
            return problem_answer(problem, "grant")
        return wire_json(
            {"data": {"message": "Success", "token": token}, "service": SERVICE, "status": 200}
        )

    async def revoke_token(self, request: web.Request) -> web.Response:
        refused = self._wrong_key(request)
        if refused:
            return refused
        try:
            await self.access.revoke_token(request.match_info["token"])
        except AccessProblem as problem:
            return problem_answer(problem, "revoke")
        return wire_json({"data": {"message": "Success"}, "service": SERVICE, "status": 200})

    async def grant(self, request: web.Request) -> web.Response:
        """v2: r/w/m/d/g/u/j on channels, channel groups or uuids (none: the whole
        keyset), for the auth keys in `auth` (none: every auth key), for `ttl` minutes."""
        refused = self._wrong_key(request)
        if refused:
            return refused
        ttl_text = request.query.get("ttl", str(LEGACY_DEFAULT_TTL))
        ttl = whole_number(ttl_text, 9)
        if ttl is None or ttl > LEGACY_MAX_TTL:
            return pubnub_error(
                400, f"Invalid ttl {ttl_text!r}: use 0 to {LEGACY_MAX_TTL} minutes", SERVICE
            )
        bits = sum(
            bit for letter, bit in LEGACY_LETTERS.items() if request.query.get(letter) == "1"
        )
        auths = names(request.query.get("auth", ""))
        sections = {
            "channels": ("channel", names(request.query.get("channel", ""))),
            "channel-groups": ("channel-group", channel_groups(request)),
            "uuids": ("uuid", names(request.query.get("target-uuid", ""))),
        }
        targets = [(kind, name) for kind, found in sections.values() for name in found]
        await self.access.grant_legacy(targets or [("keyset", "")], auths, bits, ttl)
        flags = {letter: int(bool(bits & bit)) for letter, bit in LEGACY_LETTERS.items()}
        payload: dict[str, Any] = {
            "level": "user" if auths else ("subkey" if not targets else "channel"),
            "subscribe_key": self.state.engine.runtime.keyset.subscribe_key,
            "ttl": ttl,
        }
        single = auths and len(targets) == 1 and targets[0][0] in ("channel", "channel-group")
        if single:  # one target and auth keys: PubNub's flat form (python's pam fixtures)
            kind, name = targets[0]
            if kind == "channel":
                payload["channel"] = name
            else:
                payload.update({"level": "channel-group+auth", "channel-groups": name})
            payload["auths"] = {auth: flags for auth in auths}
        for section, (_kind, found) in sections.items():
            if found and not single:
                payload[section] = {
                    name: {"auths": {auth: flags for auth in auths}} if auths else flags
                    for name in found
                }
        if not targets:
            payload.update(flags)
        return wire_json(
            {"message": "Success", "payload": payload, "service": SERVICE, "status": 200}
        )
