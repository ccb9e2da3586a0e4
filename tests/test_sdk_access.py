"""Access Manager with the official SDKs against a `pfunc dev` whose pfunc.toml has a
secret key: tokens granted by a server client (signed requests), used by clients with
setToken, refused with PubNub's 403 where they do not reach; revocation, expiry, the
authorized uuid, v2 grants to auth keys; and a server without a secret key stays open."""

from __future__ import annotations

import io
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from pubnub.exceptions import PubNubException
from pubnub.models.consumer.v3.channel import Channel

from pfunc import access_tokens
from pfunc.access_tokens import Token
from tests.conftest import serve_project
from tests.dev_harness import InProcessDev
from tests.sdk.jsdk import JsClient, JsSdk, SdkError
from tests.sdk.pysdk import py_client

KEYS = ("pub-c-pam", "sub-c-pam")
SECRET = "sec-c-pam"
PROJECT = f"""
[project]
publish_key = "{KEYS[0]}"
subscribe_key = "{KEYS[1]}"
secret_key = "{SECRET}"
"""


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessDev]:
    yield from serve_project(tmp_path_factory, "pam", PROJECT)


def positional(client: JsClient, method: str, *args):
    return client.sdk.command("call", client=client.name, method=method, positional=list(args))


def refused(client: JsClient, method: str, **args) -> dict:
    with pytest.raises(SdkError) as error:
        client.call(method, **args)
    assert error.value.status.get("statusCode") == 403
    assert error.value.status.get("category") == "PNAccessDeniedCategory"
    return error.value.status


def alice_token(server: JsClient) -> str:
    return server.call(
        "grantToken",
        ttl=15,
        authorized_uuid="alice",
        resources={"channels": {"a": {"read": True, "write": True}}},
        patterns={"channels": {"b.*": {"read": True}}},
        meta={"team": "blue"},
    )


def test_a_token_lets_its_holder_do_what_it_grants_and_nothing_else(clients, dev) -> None:
    server = clients("server", secretKey=SECRET)
    token = alice_token(server)
    alice = clients("alice")
    positional(alice, "setToken", token)
    alice.subscribe("a", "b.1")
    alice.connected()
    assert len(str(alice.call("publish", channel="a", message="hi")["timetoken"])) == 17
    server.call("publish", channel="b.1", message="to b.1")  # the secret key passes
    alice.wait_for("message", lambda e: e["channel"] == "b.1")
    got = {e["channel"]: e["message"] for e in alice.events("message")}
    assert got == {"a": "hi", "b.1": "to b.1"}
    status = refused(alice, "publish", channel="c", message="no")
    assert status["errorData"]["payload"] == {"channels": ["c"]}
    refused(alice, "publish", channel="b.1", message="read only")
    denial = dev.wait_for(lambda e: e["type"] == "access-denied" and "'c'" in e["missing"])
    assert denial["missing"] == "the token lacks write on channel 'c'"


def test_patterns_are_re2_and_no_pattern_holds_the_server(clients, dev) -> None:
    """PubNub's patterns are RE2's: `(?i)` and `\\A`...`\\z` mean what they mean there,
    lookaround is refused when granted (400), and a search takes time linear in the name,
    so a pattern that backtracks in other engines (Python's re took minutes over this
    one, the server's loop answering nothing) is answered at once."""
    server = clients("server", secretKey=SECRET)
    token = server.call(
        "grantToken",
        ttl=15,
        authorized_uuid="eve",
        patterns={
            "channels": {
                "^(a+)+$": {"write": True},
                "(?i)^ok-": {"write": True},
                "\\Aexact-[0-9]+\\z": {"write": True},
            }
        },
    )
    eve = clients("eve")
    positional(eve, "setToken", token)
    refused(eve, "publish", channel="a" * 40 + "!", message="no")
    for channel in ("OK-1", "aaaa", "exact-42"):
        assert len(str(eve.call("publish", channel=channel, message="hi")["timetoken"])) == 17
    refused(eve, "publish", channel="exact-42z", message="no")
    for pattern in ("(", "(?<=a)b"):
        with pytest.raises(SdkError) as invalid:
            server.call("grantToken", ttl=15, patterns={"channels": {pattern: {"read": True}}})
        assert invalid.value.status.get("statusCode") == 400


def test_the_token_is_for_its_authorized_uuid_only(clients) -> None:
    token = alice_token(clients("server", secretKey=SECRET))
    mallory = clients("mallory")
    positional(mallory, "setToken", token)
    refused(mallory, "publish", channel="a", message="as alice")


def test_listing_all_users_or_channels_needs_a_valid_token_not_a_grant(clients) -> None:
    """PubNub: a "get all" App Context call "needs no per-resource permission grant"
    unless the keyset's Disallow Get All option is on, and "either a valid authorization
    token or a signature are required"; it needed the secret key here."""
    server = clients("server", secretKey=SECRET)
    server.call("objects.setChannelMetadata", channel="listed", data={"name": "Listed"})
    alice = clients("alice")
    refused(alice, "objects.getAllChannelMetadata")  # no token at all
    positional(alice, "setToken", alice_token(server))  # a token for channel a only
    listed = alice.call("objects.getAllChannelMetadata")
    assert "listed" in [channel["id"] for channel in listed["data"]]
    assert alice.call("objects.getAllUUIDMetadata")["status"] == 200
    mallory = clients("mallory")  # another user's token is no valid token for him
    positional(mallory, "setToken", alice_token(server))
    refused(mallory, "objects.getAllUUIDMetadata")


def test_parse_token_in_the_js_sdk_reads_pfuncs_token(clients) -> None:
    server = clients("server", secretKey=SECRET)
    parsed = positional(server, "parseToken", alice_token(server))
    assert parsed["ttl"] == 15 and parsed["version"] == 2
    assert parsed["authorized_uuid"] == "alice"
    assert parsed["resources"]["channels"]["a"]["write"] is True
    assert parsed["resources"]["channels"]["a"]["manage"] is False
    assert parsed["patterns"]["channels"]["b.*"]["read"] is True
    assert parsed["meta"] == {"team": "blue"}
    assert abs(parsed["timestamp"] - time.time()) < 3600


def test_a_revoked_or_expired_token_is_refused(clients) -> None:
    server = clients("server", secretKey=SECRET)
    token = alice_token(server)
    alice = clients("alice")
    positional(alice, "setToken", token)
    alice.call("publish", channel="a", message="before")
    positional(server, "revokeToken", token)
    assert refused(alice, "publish", channel="a", message="after")["errorData"]["message"] == (
        "Token is revoked"
    )
    old = Token(int(time.time()) - 3600, 1, {"chan": {"a": 3}}, authorized_uuid="alice")
    positional(alice, "setToken", access_tokens.encode(old, SECRET))
    assert refused(alice, "publish", channel="a", message="late")["errorData"]["message"] == (
        "Token is expired"
    )
    forged = Token(int(time.time()), 60, {"chan": {"a": 3}}, authorized_uuid="alice")
    positional(alice, "setToken", access_tokens.encode(forged, "not the secret"))
    refused(alice, "publish", channel="a", message="forged")


def test_grants_need_the_secret_key_and_subscribe_is_refused_as_pubnub_does(clients) -> None:
    impostor = clients("impostor", secretKey="a guess")
    refused(impostor, "grantToken", ttl=5, resources={"channels": {"a": {"read": True}}})
    nobody = clients("nobody")
    nobody.subscribe("c")
    # The SDK's subscribe loop reports a 403 as a connection error caused by access denial.
    nobody.wait_for("status", lambda e: e.get("error") == "PNAccessDeniedCategory")


def test_audit_is_not_emulated_and_the_sdk_hears_so_at_once(clients) -> None:
    """A 501 had the JavaScript SDK 11 retry with backoff for about two minutes."""
    server = clients("auditor", secretKey=SECRET)
    with pytest.raises(SdkError) as error:
        server.call("audit", channel="legacy")
    assert error.value.status.get("statusCode") == 400
    assert "not emulated by pfunc dev" in str(error.value.status)


def test_legacy_grant_to_an_auth_key(clients) -> None:
    server = clients("server", secretKey=SECRET)
    server.call("grant", channels=["legacy"], authKeys=["key-1"], read=True, write=True, ttl=5)
    holder = clients("holder", authKey="key-1")
    holder.call("publish", channel="legacy", message="ok")
    refused(holder, "publish", channel="other", message="no")
    refused(clients("stranger", authKey="key-2"), "publish", channel="legacy", message="no")


def test_a_server_client_signed_with_the_secret_key_passes_everything(clients) -> None:
    server = clients("server", secretKey=SECRET)
    server.call("publish", channel="anything", message={"n": 1})
    server.call("signal", channel="anything", message="s")
    server.call("channelGroups.addChannels", channelGroup="g1", channels=["anything"])
    assert server.call("channelGroups.listChannels", channelGroup="g1")["channels"] == ["anything"]
    server.call("hereNow", channels=["anything"])
    fetched = server.call("fetchMessages", channels=["anything"])
    assert fetched["channels"]["anything"][0]["message"] == {"n": 1}
    server.call("deleteMessages", channel="anything")


def test_the_python_sdk_signs_a_filter_and_a_state_as_pfunc_checks_them(dev) -> None:
    """The Python SDK signs a value it encoded itself (filter-expr, state) encoded again:
    a backend holding the secret key got 403 'Signature Does Not Match' for both."""
    from tests.sdk.pysdk import Recorder

    server = py_client(
        dev.port, KEYS, "py-backend", secret_key=SECRET, filter_expression="meta.n > 1"
    )
    try:
        server.set_state().channels(["py-f"]).state({"mood": "ok"}).sync()
        recorder = Recorder()
        server.add_listener(recorder)
        server.subscribe().channels(["py-f"]).execute()
        recorder.wait_for("status", lambda s: s.category.name == "PNConnectedCategory")
        for n in (1, 2):
            server.publish().channel("py-f").message({"n": n}).meta({"n": n}).sync()
        assert recorder.wait_for("message").message == {"n": 2}
        # A file message's meta is signed the same way (the upload passed, then a 403).
        sent = (
            server.send_file()
            .channel("py-files")
            .file_name("a.txt")
            .file_object(io.BytesIO(b"hi"))
            .meta({"by": "backend ~!"})
            .sync()
        )
        assert sent.result.name == "a.txt"
    finally:
        server.stop()


def test_the_python_sdk_grants_parses_and_is_refused(dev) -> None:
    server = py_client(dev.port, KEYS, "py-server", secret_key=SECRET)
    client = py_client(dev.port, KEYS, "bob")
    try:
        envelope = (
            server.grant_token()
            .channels([Channel.id("py-a").read().write()])
            .ttl(5)
            .authorized_uuid("bob")
            .meta({"by": "python"})
            .sync()
        )
        token = envelope.result.token
        # The Python SDK signs a POST publish with PubNub's older (v1) signature.
        server.publish().channel("py-any").message({"big": "x"}).use_post(True).sync()
        # ... and an App Context path with its id unencoded (a space, a non-ASCII letter).
        for uuid in ("ü x", "plain"):
            server.set_uuid_metadata().uuid(uuid).set_name("n").sync()
        parsed = server.parse_token(token)
        assert parsed["authorized_uuid"] == "bob" and parsed["ttl"] == 5
        assert parsed["resources"]["channels"]["py-a"]["write"] is True
        assert parsed["meta"] == {"by": "python"}
        client.set_token(token)
        client.publish().channel("py-a").message("ok").sync()
        with pytest.raises(PubNubException) as error:
            client.publish().channel("py-b").message("no").sync()
        assert error.value.get_status_code() == 403
    finally:
        server.stop()
        client.stop()


def test_without_a_secret_key_the_server_stays_open_and_still_issues_tokens(
    sdk: JsSdk, tmp_path: Path
) -> None:
    (tmp_path / "pfunc.toml").write_text(f'[project]\nsubscribe_key = "{KEYS[1]}"\n'
                                         f'publish_key = "{KEYS[0]}"\n')  # fmt: skip
    open_dev = InProcessDev(tmp_path)
    try:
        server = sdk.client("open-server", open_dev.port, KEYS, "s", secretKey="any secret")
        anyone = sdk.client("open-anyone", open_dev.port, KEYS, "anyone")
        token = server.call("grantToken", ttl=5, resources={"channels": {"x": {"read": True}}})
        assert positional(anyone, "parseToken", token)["resources"]["channels"]["x"]["read"]
        anyone.call("publish", channel="not-granted", message="open")
        for client in (server, anyone):
            client.destroy()
    finally:
        open_dev.stop()


def test_no_spelling_of_a_path_gets_past_the_guard(clients, dev) -> None:
    """Percent-encoded path letters and an encoded comma smuggling a second channel are
    judged as the handler reads the request (found by a second reader); HEAD on a GET
    that changes state never reaches a handler (405, decisions.md)."""
    sub, pub = KEYS[1], KEYS[0]
    token = clients("server", secretKey=SECRET).call(
        "grantToken", ttl=15, patterns={"channels": {"^public-.*": {"read": True}}}
    )
    attempts = [
        ("GET", f"/v1/channel-registration/sub-key/{sub}/channel-%67roup/g2?add=x&uuid=u"),
        ("GET", f"/v1/channel-registration/sub-key/{sub}/channel-group/g1/%72emove?uuid=u"),
        ("GET", f"/%70ublish/{pub}/{sub}/0/ch/0/%22hi%22?uuid=u"),
        ("DELETE", f"/v3/%68istory/sub-key/{sub}/channel/ch?uuid=u"),
        ("HEAD", f"/v1/channel-registration/sub-key/{sub}/channel-group/g1?add=secret&uuid=u"),
        ("GET", f"/v3/history/sub-key/{sub}/channel/public-1%2Csecret?uuid=u&auth={token}"),
        ("GET", f"/v2/presence/sub-key/{sub}/channel/public-1%2Csecret?uuid=u&auth={token}"),
    ]
    for method, path in attempts:
        status, _, _ = dev.request(method, path)
        assert status == (405 if method == "HEAD" else 403), (method, path, status)
    status, _, _ = dev.request("GET", f"/v3/history/sub-key/{sub}/channel/public-1?auth={token}")
    assert status == 200  # what the token covers still passes


def test_joining_channels_through_memberships_needs_join_on_them(clients, dev) -> None:
    server = clients("server", secretKey=SECRET)
    token = server.call(
        "grantToken",
        ttl=15,
        authorized_uuid="alice",
        resources={"uuids": {"alice": {"update": True}}, "channels": {"open": {"join": True}}},
    )
    alice = clients("alice", authKey=token)
    alice.call("objects.setMemberships", uuid="alice", channels=["open"])
    refused(alice, "objects.setMemberships", uuid="alice", channels=["private"])


def test_every_pubnub_route_is_judged_by_the_table(dev) -> None:
    """A route the table does not name would need the secret key: every route the dev
    server serves is either pfunc's own or in the table."""
    from pfunc.server.access_guard import EXEMPT_ROUTES, RULES
    from pfunc.server.wire import NOT_PUBNUB_PREFIXES

    routes = {
        ("GET" if route.method == "HEAD" else route.method, route.resource.canonical)
        for route in dev.server.app().router.routes()
        if not route.resource.canonical.startswith(NOT_PUBNUB_PREFIXES)
        and route.resource.canonical not in EXEMPT_ROUTES
    }
    routes = {("POST", c) if m == "*" else (m, c) for m, c in routes}
    assert routes <= set(RULES), sorted(routes - set(RULES))
    status, _, _ = dev.request("GET", "/")  # the console's page, under a secret key too
    assert status == 200


@pytest.mark.parametrize("timestamp", ["²", "1" * 5000])
def test_a_signature_timestamp_int_cannot_read_is_refused_not_a_500(dev, timestamp) -> None:
    query = urllib.parse.urlencode({"timestamp": timestamp, "signature": "v2.x"})
    status, _, body = dev.request("GET", f"/v2/auth/grant/sub-key/{KEYS[1]}?{query}")
    assert status == 403, body


def test_taking_a_device_off_push_channels_needs_read_on_them(clients) -> None:
    server = clients("server", secretKey=SECRET)
    server.call("push.addChannels", channels=["secret"], device="victim", pushGateway="fcm")
    alice = clients("alice")
    # Read on "a" only. (Its own meta: a grant of the same second and resources is the
    # same token, and another test revokes alice's.)
    token = server.call(
        "grantToken",
        ttl=15,
        authorized_uuid="alice",
        resources={"channels": {"a": {"read": True}}},
        meta={"test": "push"},
    )
    positional(alice, "setToken", token)
    refused(alice, "push.removeChannels", channels=["secret"], device="victim", pushGateway="fcm")
    refused(alice, "push.addChannels", channels=["secret"], device="mine", pushGateway="fcm")
    alice.call("push.addChannels", channels=["a"], device="mine", pushGateway="fcm")
    alice.call("push.removeChannels", channels=["a"], device="mine", pushGateway="fcm")
    listed = server.call("push.listChannels", device="victim", pushGateway="fcm")
    assert listed["channels"] == ["secret"]


@pytest.mark.filterwarnings("ignore:Access management v2 is being deprecated:DeprecationWarning")
def test_a_v2_grant_for_one_target_and_auth_keys_answers_in_pubnubs_flat_form(tmp_path) -> None:
    """As python's recorded pam fixtures (single_channel_with_auth,
    single_channel_group_with_auth): one target with auth keys names it flat."""
    from tests.dev_harness import InProcessDev
    from tests.sdk.pysdk import py_client

    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-g"\npublish_key = "pub-c-g"\nsecret_key = "sec-c-g"\n'
    )
    server = InProcessDev(tmp_path)
    admin = py_client(server.port, ("pub-c-g", "sub-c-g"), "admin", secret_key="sec-c-g")
    try:
        one = admin.grant().channels(["room"]).auth_keys(["k1"]).read(True).ttl(60).sync()
        payload = one.status.original_response["payload"]
        assert (payload["level"], payload["channel"]) == ("user", "room")
        assert payload["auths"]["k1"]["r"] == 1 and "channels" not in payload
        group = admin.grant().channel_groups(["g1"]).auth_keys(["k1"]).read(True).ttl(60).sync()
        payload = group.status.original_response["payload"]
        assert (payload["level"], payload["channel-groups"]) == ("channel-group+auth", "g1")
        two = admin.grant().channels(["a", "b"]).auth_keys(["k1"]).read(True).ttl(60).sync()
        assert set(two.status.original_response["payload"]["channels"]) == {"a", "b"}
    finally:
        admin.stop()
    # A v3 grant signed with another secret: v3's own error shape, not v2's message
    import json

    from pubnub.exceptions import PubNubException
    from pubnub.models.consumer.v3.channel import Channel

    wrong = py_client(server.port, ("pub-c-g", "sub-c-g"), "admin", secret_key="not-it")
    try:
        with pytest.raises(PubNubException) as refused:
            wrong.grant_token().channels([Channel.id("room").read()]).ttl(15).sync()
        assert refused.value.get_status_code() == 403
        error = json.loads(refused.value._errormsg)["error"]
        assert (error["message"], error["source"]) == ("Invalid signature", "grant")
        assert error["details"][0]["location"] == "signature"
    finally:
        wrong.stop()
        server.stop()
