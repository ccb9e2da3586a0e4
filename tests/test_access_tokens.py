"""Access Manager's v3 token codec and grants: PubNub's CBOR layout (checked against a
token PubNub issued), the signature, parseToken's shape (pfunc's and the Python SDK's
own), and revocations and v2 grants kept in the project's SQLite file."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import cbor2
import pytest
from pubnub.managers import TokenManager

from pfunc import access_tokens
from pfunc.access import AccessManager, AccessProblem, Refusal, dev_secret
from pfunc.access_tokens import Token, TokenError
from pfunc.clock import Clock
from pfunc.sandbox.sync_builtins import SyncBuiltins
from pfunc.store import KVStore

# Issued by PubNub (recorded in the Python SDK's grant_token_with_uuid_and_channels test).
PUBNUB_TOKEN = (
    "qEF2AkF0GmertwtDdHRsGDxDcmVzpURjaGFuoW9zb21lX2NoYW5uZWxfaWQY70NncnChbXNvbWVfZ3JvdXBfaWQFQ3Nw"
    "Y6Fvc29tZV9jaGFubmVsX2lkGO9DdXNyoWlzb21lX3V1aWQYaER1dWlkoWlzb21lX3V1aWQYaENwYXSlRGNoYW6hZnNv"
    "bWVfKgdDZ3JwoWZzb21lXyoBQ3NwY6Fmc29tZV8qB0N1c3KhZnNvbWVfKhggRHV1aWShZnNvbWVfKhggRG1ldGGgRHV1"
    "aWRpc29tZV91dWlkQ3NpZ1ggwfN_9UgB2U0sIBUVoaSihuFQ_BDnHJsmek0AuKQYhfs="
)
SECRET = "sec-c-tokens"
NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def raw(token: str) -> dict:
    return cbor2.loads(base64.urlsafe_b64decode(token))


def test_pubnubs_token_decodes_and_pfunc_writes_the_same_layout() -> None:
    token = access_tokens.decode(PUBNUB_TOKEN)
    assert token.ttl == 60 and token.authorized_uuid == "some_uuid"
    assert token.resources["chan"] == {"some_channel_id": 239}
    assert token.patterns["uuid"] == {"some_*": 32}
    ours = access_tokens.encode(token, SECRET)
    theirs, mine = raw(PUBNUB_TOKEN), raw(ours)
    # Same keys (byte strings), same order, same values; only the signature differs.
    assert (
        list(mine) == list(theirs) == [b"v", b"t", b"ttl", b"res", b"pat", b"meta", b"uuid", b"sig"]
    )
    assert {k: v for k, v in mine.items() if k != b"sig"} == {
        k: v for k, v in theirs.items() if k != b"sig"
    }
    assert len(mine[b"sig"]) == 32


def test_signature_is_checked_with_the_secret() -> None:
    text = access_tokens.encode(Token(1_767_225_600, 5, {"chan": {"a": 3}}), SECRET)
    assert access_tokens.verified(text, SECRET).resources["chan"] == {"a": 3}
    with pytest.raises(TokenError, match="secret key"):
        access_tokens.verified(text, "another secret")
    with pytest.raises(TokenError, match="not a PubNub token"):
        access_tokens.decode("not-a-token")
    # A changed permission breaks the signature.
    forged = raw(text)
    forged[b"res"][b"chan"]["a"] = 255
    with pytest.raises(TokenError):
        access_tokens.verified(base64.urlsafe_b64encode(cbor2.dumps(forged)).decode(), SECRET)


def test_parse_token_has_the_sdks_shape_and_the_python_sdk_reads_pfuncs_token() -> None:
    token = Token(
        1_767_225_600,
        15,
        {"chan": {"a": 3}, "uuid": {"u1": 32}},
        {"chan": {"b.*": 1}},
        {"role": "tester"},
        "alice",
    )
    text = access_tokens.encode(token, SECRET)
    # The parseToken functions call: the sandbox's own reader (sandbox/builtins.js).
    parsed = json.loads(SyncBuiltins(None).call("pubnub", "parseToken", json.dumps([text]), 0, 5))
    assert parsed["ttl"] == 15 and parsed["authorized_uuid"] == "alice"
    assert parsed["resources"]["channels"]["a"] == {
        "read": True,
        "write": True,
        "manage": False,
        "delete": False,
        "get": False,
        "update": False,
        "join": False,
    }
    assert parsed["resources"]["uuids"]["u1"]["get"] is True
    assert parsed["patterns"] == {
        "channels": {
            "b.*": {**dict.fromkeys(parsed["resources"]["channels"]["a"], False), "read": True}
        }
    }
    assert parsed["meta"] == {"role": "tester"}
    assert bytes(parsed["signature"]) == access_tokens.decode(text).signature
    by_sdk = TokenManager.parse_token(text)  # the official Python SDK's own parser
    assert by_sdk["authorized_uuid"] == "alice" and by_sdk["ttl"] == 15
    assert by_sdk["resources"]["channels"]["a"]["write"] is True
    assert by_sdk["patterns"]["channels"]["b.*"]["read"] is True
    assert by_sdk["meta"] == {"role": "tester"}


def manager(tmp_path: Path, clock: Clock, secret: str | None = SECRET) -> AccessManager:
    return AccessManager(KVStore.open(tmp_path / "kv.sqlite3"), "sub-c-t", clock, secret)


def test_grant_token_takes_the_js_sdks_arguments_and_validates_like_pubnub(tmp_path: Path) -> None:
    access = manager(tmp_path, Clock(NOW_MS))
    text = access.grant_token(
        {
            "ttl": 10,
            "authorized_uuid": "alice",
            "resources": {"channels": {"a": {"read": True, "write": True}}},
            "patterns": {"channels": {"b.*": {"read": True}}},
            "meta": {"k": "v"},
        }
    )
    token = access_tokens.verified(text, SECRET)
    assert token.timestamp == NOW_MS // 1000 and token.ttl == 10
    assert token.resources["chan"] == {"a": 3} and token.patterns["chan"] == {"b.*": 1}
    assert token.meta == {"k": "v"}
    for body, message, detail in (
        ({"permissions": {"resources": {"channels": {"a": 1}}}}, "Invalid ttl", "Missing"),
        (
            {"ttl": 43201, "permissions": {"resources": {"channels": {"a": 1}}}},
            "Invalid ttl",
            "43200",
        ),
        ({"ttl": 5, "permissions": {"resources": {"channels": {}}}}, "Invalid permissions", "one"),
        (
            {"ttl": 5, "permissions": {"patterns": {"channels": {"(": 1}}}},
            "Invalid pattern",
            "regular",
        ),
    ):
        with pytest.raises(AccessProblem) as problem:
            access.issue(body)
        assert problem.value.message == message and detail in problem.value.detail
    # A user id that is not text is refused, not written into the token as Python's repr.
    for uuid in (["ada"], True, {"a": 1}, 5, ""):
        with pytest.raises(AccessProblem) as problem:
            access.grant_token(
                {
                    "ttl": 5,
                    "authorized_uuid": uuid,
                    "resources": {"channels": {"a": {"read": True}}},
                }
            )
        assert problem.value.message == "Invalid uuid"


def test_tokens_expire_and_revocations_survive_a_restart(tmp_path: Path) -> None:
    clock = Clock(NOW_MS)

    async def scenario() -> None:
        access = manager(tmp_path, clock)
        text = access.grant_token({"ttl": 1, "resources": {"channels": {"a": {"read": True}}}})
        token = await access.check_token(text, "anyone")
        assert isinstance(token, Token) and access.token_allows(token, "channel", "a", 1)
        assert not access.token_allows(token, "channel", "a", 2)
        await access.revoke_token(text)
        await access.store.close()
        reopened = manager(tmp_path, clock)  # a restart: a new store over the same file
        refusal = await reopened.check_token(text, "anyone")
        assert isinstance(refusal, Refusal) and refusal.message == "Token is revoked"
        later = reopened.grant_token({"ttl": 1, "resources": {"channels": {"a": {"read": True}}}})
        clock.advance(61)
        expired = await reopened.check_token(later, "anyone")
        assert isinstance(expired, Refusal) and expired.message == "Token is expired"
        with pytest.raises(AccessProblem, match="Invalid token"):
            await reopened.revoke_token(later)
        await reopened.store.close()

    asyncio.run(scenario())


def test_v2_grants_cover_auth_keys_until_revoked(tmp_path: Path) -> None:
    async def scenario() -> None:
        access = manager(tmp_path, Clock(NOW_MS))
        await access.grant_legacy([("channel", "room")], ["key-1"], 1 | 2, 60)
        assert await access.legacy_allows("key-1", "channel", "room", 2)
        assert not await access.legacy_allows("key-2", "channel", "room", 1)
        assert not await access.legacy_allows("key-1", "channel", "room", 8)
        await access.grant_legacy([("channel", "room")], ["key-1"], 0, 60)  # no bits: revoke
        assert not await access.legacy_allows("key-1", "channel", "room", 1)
        await access.grant_legacy([("keyset", "")], [], 1, 0)  # every key, every resource
        assert await access.legacy_allows(None, "channel-group", "g", 1)
        await access.store.close()

    asyncio.run(scenario())


def test_without_a_secret_key_tokens_use_the_projects_dev_secret(tmp_path: Path) -> None:
    access = manager(tmp_path, Clock(NOW_MS), secret=None)
    assert not access.enforcing
    text = access.grant_token({"ttl": 5, "resources": {"groups": {"g": {"manage": True}}}})
    assert access_tokens.verified(text, dev_secret("sub-c-t")).resources["grp"] == {"g": 4}
    asyncio.run(access.store.close())


def test_crafted_cbor_is_no_token_and_no_fault() -> None:
    """Shared-reference tags make a cyclic `meta` cbor2 cannot encode again: a TokenError
    (the guard's 403), never an exception that would answer 500."""
    good = cbor2.dumps({b"v": 2, b"t": 1, b"ttl": 1, b"res": {}, b"pat": {}, b"sig": b"x" * 32})
    cyclic = b"\xa7" + good[1:] + cbor2.dumps(b"meta") + b"\xd8\x1c\xa1\x61a\xd8\x1d\x00"
    text = base64.urlsafe_b64encode(cyclic).decode()
    with pytest.raises(TokenError):
        access_tokens.verified(text, SECRET)
