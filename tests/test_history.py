"""Message persistence through both official SDKs against a real `pfunc dev`: what is
stored (and what is not), history v2 and fetch v3 with their options, message counts,
deletes, and history that survives a restart; `pfunc history` on the command line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.dev_harness import InProcessDev
from tests.dev_harness import python_sdk as harness_sdk
from tests.sdk.jsdk import JsSdk, SdkUnavailable, install

PROJECT = """
[project]
subscribe_key = "sub-c-h"
publish_key = "pub-c-h"

[[functions]]
name = "stamp"
file = "stamp.js"
event = "before-publish"
channels = ["log.*"]
"""
STAMP = """
export default (request) => { request.message.stamped = true; return request.ok(); };
"""


def project(folder: Path) -> Path:
    (folder / "pfunc.toml").write_text(PROJECT)
    (folder / "stamp.js").write_text(textwrap.dedent(STAMP))
    return folder


def python_sdk(port: int, user: str = "ada"):
    return harness_sdk(port, user, "pub-c-h", "sub-c-h")


# PubNub's delete: "the message at end but not the message at start, whichever of the
# two values is larger"; start alone, all before it (exclusive); end alone, it and all
# after; one message T: end = T, start = T + 1 (pubnub.com/docs/sdks/rest-api/
# delete-message-history and .../data-storage/message-history/delete-messages-from-history).
DELETE_CASES = {
    "one message (PubNub's recipe)": (lambda a, b, c: (b + 1, b), ["a", "c"]),
    "start older than end": (lambda a, b, c: (a, c), ["a"]),
    "start newer than end": (lambda a, b, c: (c, a), ["c"]),
    "equal bounds": (lambda a, b, c: (b, b), ["a", "b", "c"]),
    "start alone": (lambda a, b, c: (b, None), ["b", "c"]),
    "end alone": (lambda a, b, c: (None, b), ["a"]),
}


def test_deletes_take_pubnubs_documented_ranges(tmp_path):
    server = InProcessDev(project(tmp_path))
    try:
        pn = python_sdk(server.port)
        for n, (name, (bounds, kept)) in enumerate(DELETE_CASES.items()):
            channel = f"log.del{n}"
            tokens = [
                pn.publish().channel(channel).message({"n": text}).sync().result.timetoken
                for text in ("a", "b", "c")
            ]
            start, end = bounds(*tokens)
            deleting = pn.delete_messages().channel(channel)
            if start is not None:
                deleting = deleting.start(start)
            if end is not None:
                deleting = deleting.end(end)
            deleting.sync()
            left = pn.history().channel(channel).count(10).sync().result.messages
            assert [m.entry["n"] for m in left] == kept, name
        pn.stop()
    finally:
        server.stop()


def test_history_round_trips_with_the_python_sdk_and_survives_a_restart(tmp_path):
    folder = project(tmp_path)
    server = InProcessDev(folder)
    try:
        pn = python_sdk(server.port)
        tokens = []
        for n in range(5):
            sent = pn.publish().channel("log.a").message({"n": n}).meta({"i": n}).sync()
            tokens.append(sent.result.timetoken)
        pn.publish().channel("log.a").message({"n": "not stored"}).should_store(False).sync()
        pn.signal().channel("log.a").message({"n": "signal"}).sync()
        pn.fire().channel("log.a").message({"n": "fire"}).sync()

        newest = pn.history().channel("log.a").count(3).include_timetoken(True).sync().result
        assert [m.entry for m in newest.messages] == [
            {"n": 2, "stamped": True},
            {"n": 3, "stamped": True},
            {"n": 4, "stamped": True},
        ]
        assert [m.timetoken for m in newest.messages] == tokens[2:]
        oldest = pn.history().channel("log.a").count(2).reverse(True).sync().result
        assert [m.entry["n"] for m in oldest.messages] == [0, 1]
        window = pn.history().channel("log.a").start(tokens[4]).end(tokens[1]).sync().result
        assert [m.entry["n"] for m in window.messages] == [1, 2, 3]  # end <= tt < start
        with_meta = pn.history().channel("log.a").count(1).include_meta(True).sync().result
        assert with_meta.messages[0].meta == {"i": 4}

        fetched = (
            pn.fetch_messages()
            .channels(["log.a", "log.none"])
            .maximum_per_channel(2)
            .include_meta(True)
            .include_uuid(True)
            .include_message_type(True)
            .sync()
            .result
        )
        items = fetched.channels["log.a"]
        assert [item.message["n"] for item in items] == [3, 4]
        assert items[0].meta == {"i": 3} and items[0].uuid == "ada"
        assert "log.none" not in fetched.channels

        counts = (
            pn.message_counts().channel(["log.a"]).channel_timetokens([tokens[2]]).sync().result
        )
        assert counts.channels == {"log.a": 2}

        pn.delete_messages().channel("log.a").start(tokens[0]).end(tokens[2]).sync()  # 1 and 2
        after = pn.history().channel("log.a").count(10).sync().result
        assert [m.entry["n"] for m in after.messages] == [0, 3, 4]
        pn.stop()
    finally:
        server.stop()

    again = InProcessDev(folder)
    try:
        pn = python_sdk(again.port)
        kept = pn.history().channel("log.a").count(10).sync().result
        assert [m.entry["n"] for m in kept.messages] == [0, 3, 4]
        pn.stop()
    finally:
        again.stop()

    printed = run_cli("history", "log.a", "--json", cwd=folder)
    assert printed.code == 0, printed.stderr
    shown = json.loads(printed.stdout)
    assert [entry["message"]["n"] for entry in shown] == [0, 3, 4]
    assert shown[0]["publisher"] == "ada" and shown[0]["meta"] == {"i": 0}


def test_history_with_the_javascript_sdk(tmp_path):
    try:
        node_modules = install()
    except SdkUnavailable as why:
        pytest.skip(str(why))
    server = InProcessDev(project(tmp_path))
    sdk = JsSdk(node_modules)
    try:
        client = sdk.client("history", server.port, ("pub-c-h", "sub-c-h"), "bo")
        tokens = [
            client.call("publish", channel="log.js", message={"n": n}, meta={"m": n})["timetoken"]
            for n in range(3)
        ]
        fetched = client.call(
            "fetchMessages", channels=["log.js"], count=2, includeMeta=True, includeUUID=True
        )
        items = fetched["channels"]["log.js"]
        assert [item["message"] for item in items] == [
            {"n": 1, "stamped": True},
            {"n": 2, "stamped": True},
        ]
        assert items[0]["meta"] == {"m": 1} and items[0]["uuid"] == "bo"
        assert [str(item["timetoken"]) for item in items] == [str(t) for t in tokens[1:]]
        counts = client.call("messageCounts", channels=["log.js"], channelTimetokens=[tokens[0]])
        assert counts["channels"] == {"log.js": 2}
        history = client.call("history", channel="log.js", count=10, includeTimetoken=True)
        assert [m["entry"]["n"] for m in history["messages"]] == [0, 1, 2]
        client.call("deleteMessages", channel="log.js")
        assert client.call("history", channel="log.js")["messages"] == []
        client.destroy()
    finally:
        sdk.close()
        server.stop()


INSPECT = """
export default async (request, response) => {
  const pubnub = require("pubnub");
  const history = await pubnub.history({ channel: "log.a", count: 2, includeMeta: true });
  const fetched = await pubnub.fetchMessages({ channels: ["log.a"], count: 1 });
  const counts = await pubnub.messageCounts({ channels: ["log.a"], channelTimetokens: ["0"] });
  const here = await pubnub.hereNow({ channels: ["log.a"], includeState: true });
  const plain = await pubnub.hereNow({ channels: ["log.a"] });
  const counted = await pubnub.hereNow({ channels: ["log.a"], limit: 0 });
  const beyond = await pubnub.hereNow({ channels: ["log.a"], limit: 1, offset: 1 });
  const texts = await pubnub.history({ channel: "log.a", count: 1, stringifiedTimeToken: true });
  const kinds = [typeof history.messages[0].timetoken, typeof history.startTimeToken,
                 typeof texts.messages[0].timetoken];
  const where = await pubnub.whereNow({ uuid: "ada" });
  const state = await pubnub.getState({ uuid: "ada", channels: ["log.a"] });
  const newest = history.messages[history.messages.length - 1];
  const action = await pubnub.addMessageAction({
    channel: "log.a", messageTimetoken: newest.timetoken, action: { type: "seen", value: "fn" },
  });
  const actions = await pubnub.getMessageActions({ channel: "log.a" });
  await pubnub.addMessageAction({
    channel: "log.a", messageTimetoken: newest.timetoken, action: { type: "seen", value: "fn2" },
  });
  const paged = await pubnub.getMessageActions({ channel: "log.a", limit: 1 });
  let long = null;
  try {
    await pubnub.addMessageAction({
      channel: "log.a", messageTimetoken: newest.timetoken, action: { type: "x".repeat(16), value: "v" },
    });
  } catch (error) { long = error.message; }
  return response.send({
    history, fetched, counts, here, plain, counted, beyond, where, state, action, actions, paged,
    long, kinds,
  });
};
"""


def with_api(folder: Path, name: str, source: str) -> Path:
    """The project with an on-request function NAME at /NAME, and 20 operations."""
    (folder / f"{name}.js").write_text(source)
    with (folder / "pfunc.toml").open("a") as config:
        config.write(
            f'\n[limits]\noperations = 20\n\n[[functions]]\nname = "{name}"\n'
            f'file = "{name}.js"\nevent = "on-request"\npath = "{name}"\n'
        )
    return folder


def test_functions_read_and_change_the_same_state(tmp_path):
    server = InProcessDev(with_api(project(tmp_path), "inspect", INSPECT))
    try:
        pn = python_sdk(server.port)
        pn.set_state().channels(["log.a"]).state({"mood": "ok"}).sync()
        server.request("GET", "/v2/subscribe/sub-c-h/log.a/0?tt=0&uuid=ada")
        for n in range(3):
            pn.publish().channel("log.a").message({"n": n}).meta({"i": n}).sync()
        status, _, body = server.request("GET", "/v1/blocks/sub-key/sub-c-h/inspect")
        assert status == 200, body
        seen = json.loads(body)
        assert [m["entry"]["n"] for m in seen["history"]["messages"]] == [1, 2]
        assert seen["history"]["messages"][1]["meta"] == {"i": 2}
        # numbers, as the SDK's history gives them, unless asked for text
        assert seen["kinds"] == ["number", "number", "string"]
        assert [m["message"]["n"] for m in seen["fetched"]["channels"]["log.a"]] == [2]
        assert seen["counts"]["channels"] == {"log.a": 3}
        assert seen["here"]["channels"]["log.a"]["occupancy"] == 1
        # as the SDK maps them: a state where asked for and set, null where not asked for
        assert seen["here"]["channels"]["log.a"]["occupants"] == [
            {"uuid": "ada", "state": {"mood": "ok"}}
        ]
        assert seen["plain"]["channels"]["log.a"]["occupants"] == [{"uuid": "ada", "state": None}]
        # pages as the REST endpoint does: limit 0 the count alone, an offset past the list
        for paged_here in (seen["counted"], seen["beyond"]):
            assert paged_here["channels"]["log.a"]["occupants"] == []
            assert paged_here["channels"]["log.a"]["occupancy"] == 1
        assert seen["where"]["channels"] == ["log.a"]
        assert seen["state"]["channels"] == {"log.a": {"mood": "ok"}}
        assert seen["action"]["data"]["value"] == "fn"
        assert [a["type"] for a in seen["actions"]["data"]] == ["seen"]
        assert "more" not in seen["actions"]
        # a page cut by its limit has no `more`, as the dev server's (PubNub's recordings)
        assert [a["value"] for a in seen["paged"]["data"]] == ["fn2"]
        assert "more" not in seen["paged"]
        assert seen["long"] == (
            "pubnub.addMessageAction: Action.type value exceed maximum length of 15"
        )
        # ... and the application sees the action the function added.
        fetched = (
            pn.fetch_messages().channels(["log.a"]).include_message_actions(True).sync().result
        )
        assert "seen" in fetched.channels["log.a"][-1].actions
        pn.stop()
    finally:
        server.stop()


GROUPED = """
export default async (request, response) => {
  const pubnub = require("pubnub");
  await pubnub.channelGroups.addChannels({ channelGroup: "floor", channels: ["room.a", "room.b"] });
  await pubnub.setState({ uuid: "fn", channelGroups: ["floor"], state: { on: true } });
  const here = await pubnub.hereNow({ channelGroups: ["floor"] });
  const state = await pubnub.getState({ uuid: "fn", channelGroups: ["floor"] });
  let refused = null;
  try { await pubnub.getState({ uuid: "fn" }); } catch (error) { refused = error.message; }
  return response.send({ here, state, refused });
};
"""


def test_functions_presence_calls_take_channel_groups(tmp_path):
    server = InProcessDev(with_api(project(tmp_path), "grouped", GROUPED))
    try:
        server.request("GET", "/v2/subscribe/sub-c-h/room.a,elsewhere/0?tt=0&uuid=ada")
        status, _, body = server.request("GET", "/v1/blocks/sub-key/sub-c-h/grouped")
        assert status == 200, body
        seen = json.loads(body)
        assert sorted(seen["here"]["channels"]) == ["room.a", "room.b"]
        assert seen["here"]["totalOccupancy"] == 1
        assert seen["state"]["channels"] == {"room.a": {"on": True}, "room.b": {"on": True}}
        assert "channels or channelGroups" in seen["refused"]
    finally:
        server.stop()


SENDER = """
export default async (request, response) => {
  const pubnub = require("pubnub");
  await pubnub.publish({ channel: "kept", message: { n: 1 }, customMessageType: "chat-msg" });
  await pubnub.publish({ channel: "kept", message: { n: 2 }, storeInHistory: false });
  await pubnub.publish({ channel: "kept", message: { n: 3 }, ttl: 1 });
  let refused = null;
  try {
    await pubnub.publish({ channel: "kept", message: { n: 4 }, customMessageType: "pn-x" });
  } catch (error) { refused = error.message; }
  const file = await pubnub.publishFile({
    channel: "kept", fileId: "f1", fileName: "a.txt", message: { t: 1 },
  });
  const fetched = await pubnub.fetchMessages({ channels: ["kept"], includeCustomMessageType: true });
  const plain = await pubnub.fetchMessages({ channels: ["kept"] });
  return response.send({ refused, file, fetched: fetched.channels.kept, plain: plain.channels.kept });
};
"""


def test_a_functions_publish_options_are_kept_as_a_clients_are(tmp_path):
    """storeInHistory, ttl and customMessageType from pubnub.publish in a function mean
    what they mean in a client's publish."""
    server = InProcessDev(with_api(project(tmp_path), "sender", SENDER))
    try:
        status, _, body_of_sender = server.request("GET", "/v1/blocks/sub-key/sub-c-h/sender")
        assert status == 200, body_of_sender
        assert json.loads(body_of_sender)["refused"].startswith(
            'pubnub.publish: customMessageType "pn-x"'
        )
        status, _, body = server.request(
            "GET", "/v3/history/sub-key/sub-c-h/channel/kept?include_custom_message_type=true"
        )
        stored = json.loads(body)["channels"]["kept"]
        # the unstored one is not there; the custom type is kept with its message
        assert [entry["message"].get("n") for entry in stored] == [1, 3, None]
        assert stored[0]["custom_message_type"] == "chat-msg"
        # fetchMessages in a function answers as the SDK does: types, and a file's URL
        sent = json.loads(body_of_sender)
        assert isinstance(sent["file"]["timetoken"], str)
        fetched = sent["fetched"]
        assert [entry["messageType"] for entry in fetched] == [-1, -1, 4]
        assert (
            fetched[0]["customMessageType"] == "chat-msg" and "customMessageType" not in fetched[1]
        )
        assert fetched[2]["message"]["file"]["url"].endswith("/files/f1/a.txt")
        # ... and the custom type only when asked for, as the SDK asks the service
        assert all("customMessageType" not in entry for entry in sent["plain"])
    finally:
        server.stop()
