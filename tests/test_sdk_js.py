"""The official PubNub JavaScript SDK (11.x, in Node) against a real `pfunc dev`: what the
SDK returns to the application and what its listener receives."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator

import pytest

from tests.conftest import run_cli, serve_project
from tests.dev_harness import HANDLERS as DEV_HANDLERS
from tests.dev_harness import InProcessDev
from tests.sdk.jsdk import SdkError

KEYS = ("pub-c-js", "sub-c-js")
PROJECT = """
[project]
subscribe_key = "sub-c-js"
publish_key = "pub-c-js"

[[functions]]
name = "shout"
file = "shout.js"
event = "before-publish"
channels = ["chat.*"]

[[functions]]
name = "fired"
file = "fired.js"
event = "after-publish"
channels = ["chat.*"]

[[functions]]
name = "lobby"
file = "lobby.js"
event = "after-presence"
channels = ["lobby"]
"""
HANDLERS = {
    "shout.js": DEV_HANDLERS["shout.js"],  # the dev server tests' own
    "fired.js": """
        const db = require("kvstore");
        export default async (request) => {
          await db.incrCounter("after:" + request.verb);
          return request.ok();
        };
    """,
    "lobby.js": """
        const db = require("kvstore");
        export default async (request) => {
          await db.set("presence:" + request.message.uuid, request.message.action);
          return request.ok();
        };
    """,
}


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessDev]:
    yield from serve_project(tmp_path_factory, "jsdk", PROJECT, HANDLERS)


def test_a_subscriber_receives_messages_as_functions_changed_them(clients):
    reader, writer = clients("reader"), clients("writer")
    reader.subscribe("chat.room")
    reader.connected()
    sent = writer.call("publish", channel="chat.room", message={"text": "hi"}, meta={"m": 1})
    assert len(str(sent["timetoken"])) == 17
    got = reader.wait_for("message")
    assert got["message"] == {"text": "HI"}
    assert got["channel"] == "chat.room"
    assert got["publisher"] == "writer"
    assert got["userMetadata"] == {"m": 1}
    assert str(got["timetoken"]) == str(sent["timetoken"])
    assert reader.events("file") == []  # a plain message is not a file event


def test_an_aborted_publish_is_an_error_for_the_publisher_and_reaches_no_one(clients):
    reader, writer = clients("reader"), clients("writer")
    reader.subscribe("chat.quiet")
    reader.connected()
    with pytest.raises(SdkError) as refused:
        writer.call("publish", channel="chat.quiet", message={"text": "blocked"})
    assert refused.value.status.get("statusCode") == 400
    writer.call("publish", channel="chat.quiet", message={"text": "after"})
    assert reader.wait_for("message")["message"] == {"text": "AFTER"}
    assert [e["message"] for e in reader.events("message")] == [{"text": "AFTER"}]


def test_signals_arrive_as_signals_and_fire_reaches_only_functions(clients, dev):
    reader, writer = clients("reader"), clients("writer")
    reader.subscribe("chat.sig")
    reader.connected()
    writer.call("signal", channel="chat.sig", message={"typing": True})
    assert reader.wait_for("signal")["message"] == {"typing": True}
    # The SDK's fire() resolves without a value (it passes publish a callback); a publish
    # with replicate false and storeInHistory false is the same request, with its answer.
    assert writer.call("fire", channel="chat.sig", message={"text": "fired"}) is None
    fired = writer.call(
        "publish",
        channel="chat.sig",
        message={"text": "fired too"},
        replicate=False,
        storeInHistory=False,
    )
    assert len(str(fired["timetoken"])) == 17
    writer.call("publish", channel="chat.sig", message={"text": "last"})
    reader.wait_for("message", lambda e: e["message"] == {"text": "LAST"})
    assert [e["message"] for e in reader.events("message")] == [{"text": "LAST"}]
    counters = dev.request("POST", "/pfunc/run/fired", json.dumps({"message": {}}).encode())
    assert json.loads(counters[2])["outcome"] == "ok"


def test_presence_join_and_leave_reach_listeners_and_functions(clients):
    watcher, visitor = clients("watcher"), clients("visitor")
    watcher.subscribe("lobby", with_presence=True)
    watcher.connected()
    visitor.subscribe("lobby")
    joined = watcher.wait_for("presence", lambda e: e.get("uuid") == "visitor")
    assert joined["action"] == "join" and joined["occupancy"] == 2
    visitor.sdk.command("unsubscribeAll", client=visitor.name)
    left = watcher.wait_for(
        "presence", lambda e: e.get("uuid") == "visitor" and e.get("action") == "leave"
    )
    assert left["occupancy"] == 1


def test_publish_by_get_up_to_32_kib_and_the_413_past_it(clients):
    writer = clients("writer")
    # PubNub's 32 KiB is measured escaped, as the SDK sends it in the URL.
    fits = writer.call("publish", channel="big", message={"text": "x" * 30 * 1024})
    assert len(str(fits["timetoken"])) == 17
    accents = writer.call("publish", channel="big", message={"text": "é" * 2_800})  # ~8 KB
    assert len(str(accents["timetoken"])) == 17
    for text in ("x" * 33 * 1024, "é" * 6_000):
        with pytest.raises(SdkError) as refused:
            writer.call("publish", channel="big", message={"text": text})
        assert refused.value.status.get("statusCode") == 413


def test_time(clients):
    answer = clients("clock").call("time")
    assert abs(int(answer["timetoken"]) // 10_000_000 - time.time()) < 60


def test_here_now_where_now_and_state_with_state_change_events(clients, dev):
    watcher, ada = clients("watcher"), clients("ada")
    watcher.subscribe("lobby", with_presence=True)
    watcher.connected()
    ada.subscribe("lobby", "chat.side")
    watcher.wait_for("presence", lambda e: e.get("uuid") == "ada" and e.get("action") == "join")
    set_state = ada.call("setState", channels=["lobby"], state={"mood": "curious"})
    assert set_state["state"] == {"mood": "curious"}
    changed = watcher.wait_for("presence", lambda e: e.get("action") == "state-change")
    assert changed["uuid"] == "ada" and changed["state"] == {"mood": "curious"}

    here = watcher.call("hereNow", channels=["lobby"], includeUUIDs=True, includeState=True)
    occupants = {o["uuid"]: o.get("state") for o in here["channels"]["lobby"]["occupants"]}
    assert occupants == {"watcher": None, "ada": {"mood": "curious"}}
    assert here["totalOccupancy"] == 2
    # Pages of occupants (sorted by user id): limit and offset; limit 0 is the count alone.
    pages = [
        watcher.call("hereNow", channels=["lobby"], limit=1, offset=offset)["channels"]["lobby"]
        for offset in (0, 1, 2)
    ]
    assert [[o["uuid"] for o in page["occupants"]] for page in pages] == [["ada"], ["watcher"], []]
    assert {page["occupancy"] for page in pages} == {2}
    counted = watcher.call("hereNow", channels=["lobby"], limit=0)["channels"]["lobby"]
    assert counted["occupancy"] == 2 and counted["occupants"] == []
    where = watcher.call("whereNow", uuid="ada")
    assert sorted(where["channels"]) == ["chat.side", "lobby"]
    state = watcher.call("getState", uuid="ada", channels=["lobby"])
    assert state["channels"] == {"lobby": {"mood": "curious"}}
    # The after-presence function saw the state change too: it stores the last action.
    deadline = time.monotonic() + 10
    while kv_get(dev, "presence:ada") != "state-change" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kv_get(dev, "presence:ada") == "state-change"


def test_set_state_with_heartbeat_sets_it_and_announces_the_change(clients):
    """JS SDK 11's setState({withHeartbeat: true}) sends the state itself on /heartbeat,
    not keyed by channel: it was refused (400) and the SDK call threw. A state a heartbeat
    changes is announced as a state-change, as setState's is; one it repeats is not."""
    watcher, bea = clients("watcher"), clients("bea")
    watcher.subscribe("lounge", with_presence=True)
    watcher.connected()
    bea.subscribe("lounge")
    watcher.wait_for("presence", lambda e: e.get("uuid") == "bea" and e.get("action") == "join")
    bea.call("setState", channels=["lounge"], state={"mood": "hb"}, withHeartbeat=True)
    changed = watcher.wait_for("presence", lambda e: e.get("action") == "state-change")
    assert changed["uuid"] == "bea" and changed["state"] == {"mood": "hb"}
    state = watcher.call("getState", uuid="bea", channels=["lounge"])
    assert state["channels"] == {"lounge": {"mood": "hb"}}


def kv_get(dev, key: str):

    shown = run_cli("kv", "get", key, "--json", cwd=dev.folder)
    return shown.json() if shown.code == 0 else None


@contextlib.contextmanager
def filtering(sdk, dev, name: str, expression: str, channel: str):
    """A client with a filter expression, subscribed to `channel` and connected."""
    picky = sdk.client(name, dev.port, KEYS, name, filterExpression=expression)
    try:
        picky.subscribe(channel)
        picky.connected()
        yield picky
    finally:
        picky.destroy()


def test_a_filter_expression_drops_and_passes_the_right_messages(sdk, dev, clients):
    expression = "region == 'east' && uuid != 'picky'"
    with filtering(sdk, dev, "picky", expression, "chat.filter") as picky:
        writer = clients("writer")
        writer.call(
            "publish", channel="chat.filter", message={"text": "w"}, meta={"region": "west"}
        )
        picky.call(
            "publish", channel="chat.filter", message={"text": "own"}, meta={"region": "east"}
        )
        writer.call(
            "publish", channel="chat.filter", message={"text": "e"}, meta={"region": "east"}
        )
        writer.call("publish", channel="chat.filter", message={"text": "none"})
        writer.call(
            "publish", channel="chat.filter", message={"text": "last"}, meta={"region": "east"}
        )
        picky.wait_for("message", lambda e: e["message"] == {"text": "LAST"})
        assert [e["message"]["text"] for e in picky.events("message")] == ["E", "LAST"]


def test_a_filter_reads_the_payload_and_bracketed_meta(sdk, dev, clients):
    """PubNub's filter reference reads data.* (the payload) and meta.*, bracketed keys
    too; data.* delivered nothing, and brackets were a 400."""
    expression = 'data.n > 1 && meta.to["team"] == "x"'
    with filtering(sdk, dev, "picky2", expression, "plain.filter") as picky:
        writer = clients("writer")
        for n, team in ((1, "x"), (2, "y"), (3, "x"), (4, "x")):
            writer.call(
                "publish", channel="plain.filter", message={"n": n}, meta={"to": {"team": team}}
            )
        picky.wait_for("message", lambda e: e["message"] == {"n": 4})
        assert [e["message"]["n"] for e in picky.events("message")] == [3, 4]


def test_message_actions_are_added_listed_removed_and_announced(clients):
    watcher, ada = clients("watcher"), clients("ada")
    watcher.subscribe("chat.react")
    watcher.connected()
    sent = ada.call("publish", channel="chat.react", message={"text": "hi"})
    added = ada.call(
        "addMessageAction",
        channel="chat.react",
        messageTimetoken=sent["timetoken"],
        action={"type": "reaction", "value": "smile"},
    )
    action = added["data"]
    assert (action["type"], action["value"], action["uuid"]) == ("reaction", "smile", "ada")
    assert str(action["messageTimetoken"]) == str(sent["timetoken"])
    event = watcher.wait_for("messageAction")
    assert event["event"] == "added" and event["data"]["value"] == "smile"
    assert event["publisher"] == "ada"
    with pytest.raises(SdkError) as again:
        ada.call(
            "addMessageAction",
            channel="chat.react",
            messageTimetoken=sent["timetoken"],
            action={"type": "reaction", "value": "smile"},
        )
    assert again.value.status.get("statusCode") == 409

    listed = ada.call("getMessageActions", channel="chat.react", limit=10)
    assert [a["value"] for a in listed["data"]] == ["smile"]
    assert "more" not in listed  # the whole list: nothing more to page to
    for value in ("heart", "wave", "clap"):
        ada.call(
            "addMessageAction",
            channel="chat.react",
            messageTimetoken=sent["timetoken"],
            action={"type": "reaction", "value": value},
        )
    # Cut by its limit, a page has no `more` (PubNub's recordings: ruby's get_006 to
    # get_009); the next is asked for from the page's oldest action.
    page = ada.call("getMessageActions", channel="chat.react", limit=2)
    assert [a["value"] for a in page["data"]] == ["wave", "clap"] and "more" not in page
    older = ada.call(
        "getMessageActions", channel="chat.react", limit=2, start=page["data"][0]["actionTimetoken"]
    )
    assert [a["value"] for a in older["data"]] == ["smile", "heart"]
    for extra in older["data"][1:] + page["data"]:
        ada.call(
            "removeMessageAction",
            channel="chat.react",
            messageTimetoken=sent["timetoken"],
            actionTimetoken=extra["actionTimetoken"],
        )
    fetched = ada.call("fetchMessages", channels=["chat.react"], includeMessageActions=True)
    (entry,) = fetched["channels"]["chat.react"]
    assert entry["actions"]["reaction"]["smile"][0]["uuid"] == "ada"

    ada.call(
        "removeMessageAction",
        channel="chat.react",
        messageTimetoken=sent["timetoken"],
        actionTimetoken=action["actionTimetoken"],
    )
    removed = watcher.wait_for(
        "messageAction", lambda e: e["event"] == "removed" and e["data"]["value"] == "smile"
    )
    assert removed["data"]["type"] == "reaction"
    assert ada.call("getMessageActions", channel="chat.react")["data"] == []


def test_fetch_messages_with_actions_pages_from_the_oldest_timetoken(clients):
    """Cut at 25 (its ceiling with actions), a page has no `more`, as PubNub's recording
    of 120 messages read with max 25 shows (fetch_messages/max_25_with_actions): a
    client pages from the oldest timetoken it has, and a message with no actions has no
    `actions`."""
    ada = clients("ada")
    for number in range(27):
        ada.call("publish", channel="paged.room", message={"n": number})
    page = ada.call("fetchMessages", channels=["paged.room"], includeMessageActions=True)
    entries = page["channels"]["paged.room"]
    assert [m["message"]["n"] for m in entries] == list(range(2, 27)) and "more" not in page
    assert "actions" not in entries[0]
    older = ada.call(
        "fetchMessages",
        channels=["paged.room"],
        includeMessageActions=True,
        start=entries[0]["timetoken"],
    )
    assert [m["message"]["n"] for m in older["channels"]["paged.room"]] == [0, 1]


def test_history_with_stringified_timetokens_gives_the_publishs_own(clients):
    """history({stringifiedTimeToken: true}) sends string_message_token=true: each
    timetoken comes back as text, the one publish answered (a number loses digits)."""
    ada = clients("ada")
    sent = ada.call("publish", channel="tokens.room", message="hi")
    kept = ada.call("history", channel="tokens.room", stringifiedTimeToken=True)
    assert kept["messages"][0]["timetoken"] == sent["timetoken"]


def test_history_between_two_timetokens_ignores_reverse(clients):
    """The JS SDK's reference: "If both start and end arguments are provided, reverse is
    ignored and messages are returned starting with the newest message"."""
    ada = clients("ada")
    tokens = [
        ada.call("publish", channel="window.room", message={"n": n})["timetoken"] for n in range(6)
    ]
    window = {"channel": "window.room", "start": tokens[5], "end": tokens[0], "count": 2}
    newest = ada.call("history", **window, reverse=True)
    assert [m["entry"]["n"] for m in newest["messages"]] == [3, 4]
    oldest = ada.call("history", channel="window.room", end=tokens[0], count=2, reverse=True)
    assert [m["entry"]["n"] for m in oldest["messages"]] == [0, 1]  # one bound: reverse holds


def test_a_presence_timeout_and_a_custom_message_type_reach_the_sdk(clients, dev):
    watcher = clients("watcher")
    watcher.subscribe("lobby", "chat.typed", with_presence=True)
    watcher.connected()
    # A client that stops heartbeating (heartbeat 1 s) times out on the server's schedule.
    dev.request("GET", "/v2/subscribe/sub-c-js/lobby/0?tt=0&uuid=ghost&heartbeat=1")
    timed_out = watcher.wait_for(
        "presence", lambda e: e.get("uuid") == "ghost" and e.get("action") == "timeout"
    )
    assert timed_out["occupancy"] == 1
    clients("writer").call(
        "publish", channel="chat.typed", message={"text": "t"}, customMessageType="chat-note"
    )
    typed = watcher.wait_for("message", lambda e: e["channel"] == "chat.typed")
    assert typed["customMessageType"] == "chat-note"


def test_channel_groups_are_managed_and_subscribed_to(clients):
    admin, reader = clients("admin"), clients("reader")
    admin.call("channelGroups.addChannels", channelGroup="rooms", channels=["chat.g1", "chat.g2"])
    listed = admin.call("channelGroups.listChannels", channelGroup="rooms")
    assert sorted(listed["channels"]) == ["chat.g1", "chat.g2"]
    assert "rooms" in admin.call("channelGroups.listGroups")["groups"]
    reader.sdk.command(
        "subscribe", client=reader.name, channels=[], withPresence=False, channelGroups=["rooms"]
    )
    reader.connected()
    admin.call("publish", channel="chat.g2", message={"text": "in group"})
    got = reader.wait_for("message")
    assert got["message"] == {"text": "IN GROUP"}
    assert got["channel"] == "chat.g2" and got["subscription"] == "rooms"
    # A change of the group reaches the open subscription.
    admin.call("channelGroups.addChannels", channelGroup="rooms", channels=["chat.g3"])
    admin.call("publish", channel="chat.g3", message={"text": "added later"})
    assert (
        reader.wait_for("message", lambda e: e["channel"] == "chat.g3")["subscription"] == "rooms"
    )
    admin.call("channelGroups.removeChannels", channelGroup="rooms", channels=["chat.g1"])
    assert admin.call("channelGroups.listChannels", channelGroup="rooms")["channels"] == [
        "chat.g2",
        "chat.g3",
    ]
    admin.call("channelGroups.deleteGroup", channelGroup="rooms")
    assert admin.call("channelGroups.listChannels", channelGroup="rooms")["channels"] == []


def test_a_push_goes_to_its_targets_and_not_to_the_devices_it_excludes(clients, dev):
    """PubNub: "add the sending device's push token" to pn_exceptions (excluded_devices for
    APNs) so a sender gets no push of its own message; an APNs2 payload's pn_push targets
    name the app (topic) and environment it is for. Neither key is sent with the push."""
    import queue

    app = clients("app")
    apns = {"one": ("com.app.one", "development"), "two": ("com.app.two", "production")}
    tokens = {"one": "aaaa1111", "two": "bbbb2222"}
    for name, (topic, environment) in apns.items():
        app.call(
            "push.addChannels",
            channels=["room.p"],
            device=tokens[name],
            pushGateway="apns2",
            environment=environment,
            topic=topic,
        )
    for token in ("fcm-me", "fcm-you"):
        app.call("push.addChannels", channels=["room.p"], device=token, pushGateway="fcm")
    target = {"environment": "development", "topic": "com.app.one"}
    message = {
        "pn_apns": {"aps": {"alert": "x"}, "pn_push": [{"targets": [target], "version": "v2"}]},
        "pn_fcm": {"notification": {"title": "x"}, "pn_exceptions": ["fcm-me"]},
    }
    app.call("publish", channel="room.p", message=message)
    pushes = [dev.wait_for(lambda e: e["type"] == "push" and e["channel"] == "room.p")]
    with contextlib.suppress(queue.Empty):  # (a publish's pushes are logged together)
        while True:
            event = dev.events.get(timeout=0.5)
            if event["type"] == "push" and event["channel"] == "room.p":
                pushes.append(event)
    assert sorted((p["gateway"], p["device"]) for p in pushes) == [
        ("apns2", "aaaa1111"),
        ("gcm", "fcm-you"),
    ]
    assert {p["gateway"]: p["payload"] for p in pushes} == {
        "apns2": {"aps": {"alert": "x"}},
        "gcm": {"notification": {"title": "x"}},
    }


def test_push_registrations_and_the_pushes_a_publish_would_send(clients, dev):
    app = clients("app")
    device = "a1b2c3d4e5f60718"
    app.call(
        "push.addChannels",
        channels=["news", "deals"],
        device=device,
        pushGateway="apns2",
        environment="development",
        topic="com.example.app",
    )
    listed = app.call(
        "push.listChannels",
        device=device,
        pushGateway="apns2",
        environment="development",
        topic="com.example.app",
    )
    assert sorted(listed["channels"]) == ["deals", "news"]
    app.call(
        "push.removeChannels",
        channels=["deals"],
        device=device,
        pushGateway="apns2",
        environment="development",
        topic="com.example.app",
    )
    # A publish with push payloads is recorded as the pushes that would be sent.
    app.call(
        "publish",
        channel="news",
        message={"text": "hi", "pn_apns": {"aps": {"alert": "hi"}}, "pn_fcm": {"data": {}}},
    )
    push = dev.wait_for(lambda e: e["type"] == "push" and e["channel"] == "news")
    assert push["gateway"] == "apns2" and push["device"] == device
    assert push["topic"] == "com.example.app" and push["payload"] == {"aps": {"alert": "hi"}}
    app.call("publish", channel="deals", message={"pn_apns": {"aps": {"alert": "none"}}})
    app.call("publish", channel="news", message={"text": "no push payload"})
    app.call("push.addChannels", channels=["alerts"], device="fcm-token-1", pushGateway="fcm")
    app.call("publish", channel="alerts", message={"pn_fcm": {"notification": {"title": "t"}}})
    pushes: list[dict] = []
    fcm = dev.wait_for(
        lambda e: e["type"] == "push" and not pushes.append(e) and e["channel"] == "alerts"
    )
    assert fcm["gateway"] == "gcm" and fcm["payload"] == {"notification": {"title": "t"}}
    # No device is on "deals" any more, and a message without a payload sends nothing.
    assert [p["channel"] for p in pushes] == ["alerts"]
    assert app.call("push.listChannels", device="fcm-token-1", pushGateway="fcm")["channels"] == [
        "alerts"
    ]
    app.call("push.deleteDevice", device="fcm-token-1", pushGateway="fcm")
    assert app.call("push.listChannels", device="fcm-token-1", pushGateway="fcm")["channels"] == []
    with pytest.raises(SdkError) as refused:
        app.call(
            "push.addChannels",
            channels=["x"],
            device="not-hex!",
            pushGateway="apns2",
            environment="development",
            topic="com.example.app",
        )
    assert refused.value.status.get("statusCode") == 400


def test_presence_queries_through_a_channel_group_cover_its_channels_only(clients, dev):
    """hereNow, setState and getState with `channelGroups` (the SDK sends `/channel/,`
    and `channel-group=`): the group's channels, never the rest of the keyset."""
    admin, bea, cal = clients("admin"), clients("bea"), clients("cal")
    admin.call("channelGroups.addChannels", channelGroup="floor", channels=["room.a", "room.b"])
    bea.subscribe("room.a")
    cal.subscribe("elsewhere")
    bea.connected()
    cal.connected()
    here = admin.call("hereNow", channelGroups=["floor"], includeUUIDs=True)
    assert sorted(here["channels"]) == ["room.a", "room.b"]
    assert [o["uuid"] for o in here["channels"]["room.a"]["occupants"]] == ["bea"]
    assert here["totalOccupancy"] == 1
    assert admin.call("hereNow", channels=["room.a"])["totalOccupancy"] == 1  # no group: as before

    admin.call("setState", channelGroups=["floor"], state={"shift": "late"})
    # getState's several-channel answer is PubNub's recorded `payload.channels`, which
    # this SDK hands back one level down; read on the wire.
    base = "/v2/presence/sub-key/sub-c-js/channel"
    status, _, body = dev.request("GET", f"{base}/,/uuid/admin?channel-group=floor")
    late = {"shift": "late"}
    assert (status, json.loads(body)["payload"]) == (
        200,
        {"channels": {"room.a": late, "room.b": late}},
    )
    _, _, body = dev.request("GET", f"{base}/room.a/uuid/admin?channel-group=floor")
    assert json.loads(body)["payload"] == {"channels": {"room.a": late, "room.b": late}}
    _, _, body = dev.request("GET", f"{base}/elsewhere/uuid/admin")
    assert json.loads(body)["payload"] == {}


def test_braces_in_channel_group_and_user_names_reach_their_endpoints(clients):
    """PubNub allows `{` and `}` in these names (a GUID written `{3F25...}`); aiohttp's
    route pattern left them out, and every such call met a 404 "not a PubNub endpoint"."""
    guid = "{3F2504E0-4F89-11D3-9A0C-0305E82C3301}"
    reader, writer = clients(guid), clients("writer")
    writer.call("channelGroups.addChannels", channelGroup="{rooms}", channels=["room-{42}"])
    reader.sdk.command(
        "subscribe",
        client=reader.name,
        channels=["room-{42}"],
        withPresence=False,
        channelGroups=["{rooms}"],
    )
    reader.connected()
    sent = writer.call("publish", channel="room-{42}", message={"text": "braced"})
    got = reader.wait_for("message")
    assert (got["channel"], got["message"]) == ("room-{42}", {"text": "braced"})
    fetched = writer.call("fetchMessages", channels=["room-{42}"])
    (stored,) = fetched["channels"]["room-{42}"]
    assert str(stored["timetoken"]) == str(sent["timetoken"])
    reader.call("setState", channels=["room-{42}"], state={"mood": "ok"})
    state = reader.call("getState", uuid=guid, channels=["room-{42}"])
    assert state["channels"] == {"room-{42}": {"mood": "ok"}}
    set_user = reader.call("objects.setUUIDMetadata", data={"name": "Braced"})
    assert set_user["data"]["id"] == guid
