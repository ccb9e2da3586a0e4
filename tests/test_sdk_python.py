"""The official Python SDK (10.x) against a real `pfunc dev`: channel groups (managed and
subscribed to) and mobile push registrations. App Context, Access Manager and files with
the Python SDK are in test_sdk_objects, test_sdk_access and test_sdk_files."""

from __future__ import annotations

import json

import pytest
from pubnub.enums import PNPushEnvironment, PNPushType

from tests.dev_harness import InProcessDev
from tests.sdk.pysdk import Recorder, py_client

KEYS = ("pub-c-py", "sub-c-py")


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("pysdk")
    (folder / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-py"\npublish_key = "pub-c-py"\n\n'
        '[[functions]]\nname = "setter"\nfile = "setter.js"\nevent = "on-request"\npath = "setter"\n'
    )
    (folder / "setter.js").write_text(
        'const pubnub = require("pubnub");\n'
        "export default async (request, response) => {\n"
        '  await pubnub.setState({ channels: ["py.lobby"], uuid: "fn-user", state: { by: "fn" } });\n'
        "  return response.send();\n};\n"
    )
    server = InProcessDev(folder)
    yield server
    server.stop()


def test_a_channel_group_is_managed_and_subscribed_to(dev):
    admin, reader = py_client(dev.port, KEYS, "admin"), py_client(dev.port, KEYS, "reader")
    try:
        admin.add_channel_to_channel_group().channel_group("py-rooms").channels(
            ["py.a", "py.b"]
        ).sync()
        listed = admin.list_channels_in_channel_group().channel_group("py-rooms").sync()
        assert sorted(listed.result.channels) == ["py.a", "py.b"]
        recorder = Recorder()
        reader.add_listener(recorder)
        reader.subscribe().channel_groups(["py-rooms"]).execute()
        recorder.wait_for("status", lambda s: s.category.name == "PNConnectedCategory")
        admin.publish().channel("py.b").message({"n": 1}).sync()
        got = recorder.wait_for("message")
        assert got.message == {"n": 1} and got.channel == "py.b"
        assert got.subscription == "py-rooms"
        admin.remove_channel_from_channel_group().channel_group("py-rooms").channels(
            ["py.a"]
        ).sync()
        listed = admin.list_channels_in_channel_group().channel_group("py-rooms").sync()
        assert listed.result.channels == ["py.b"]
        admin.remove_channel_group().channel_group("py-rooms").sync()
        listed = admin.list_channels_in_channel_group().channel_group("py-rooms").sync()
        assert listed.result.channels == []
    finally:
        reader.stop()
        admin.stop()


def test_push_registrations_are_added_listed_and_removed(dev):
    app = py_client(dev.port, KEYS, "app")
    device = "0f1e2d3c4b5a6978"
    try:
        app.add_channels_to_push().push_type(PNPushType.APNS2).device_id(device).topic(
            "com.example.py"
        ).environment(PNPushEnvironment.PRODUCTION).channels(["news", "deals"]).sync()
        listed = (
            app.list_push_channels()
            .push_type(PNPushType.APNS2)
            .device_id(device)
            .topic("com.example.py")
            .environment(PNPushEnvironment.PRODUCTION)
            .sync()
        )
        assert sorted(listed.result.channels) == ["deals", "news"]
        app.add_channels_to_push().push_type(PNPushType.FCM).device_id("fcm-py").channels(
            ["alerts"]
        ).sync()
        fcm = app.list_push_channels().push_type(PNPushType.FCM).device_id("fcm-py").sync()
        assert fcm.result.channels == ["alerts"]
        app.remove_device_from_push().push_type(PNPushType.FCM).device_id("fcm-py").sync()
        fcm = app.list_push_channels().push_type(PNPushType.FCM).device_id("fcm-py").sync()
        assert fcm.result.channels == []
    finally:
        app.stop()


def test_a_presence_state_change_reaches_a_python_listener_with_its_state(dev):
    """PubNub sends a user's state under "data" in a presence event, where the SDKs read
    it; it was sent as "state", and the Python SDK's event had none."""
    watcher, ada = py_client(dev.port, KEYS, "watcher"), py_client(dev.port, KEYS, "ada")
    try:
        recorder = Recorder()
        watcher.add_listener(recorder)
        watcher.subscribe().channels(["py.lobby"]).with_presence().execute()
        recorder.wait_for("status", lambda s: s.category.name == "PNConnectedCategory")
        ada.set_state().channels(["py.lobby"]).state({"mood": "happy"}).sync()
        changed = recorder.wait_for("presence", lambda e: e.event == "state-change")
        assert changed.uuid == "ada" and changed.state == {"mood": "happy"}
        # A function's pubnub.setState announces it alike.
        assert dev.request("GET", "/v1/blocks/sub-key/sub-c-py/setter")[0] == 200
        by_function = recorder.wait_for("presence", lambda e: e.uuid == "fn-user")
        assert by_function.state == {"by": "fn"}
    finally:
        watcher.stop()
        ada.stop()


def test_a_publish_timetoken_override_is_the_messages_timetoken(dev):
    """`ptto` (the Python SDK's .ptto(), for messages moved from elsewhere) gives the
    message its timetoken: PubNub answers it (the SDK's recorded
    publish_with_ptto_and_replicate: [1, "Sent", "16057799474000000"]), and history and
    subscribers have the message at it. pfunc ignored it."""
    given = 16057799474000000
    writer, reader = py_client(dev.port, KEYS, "writer"), py_client(dev.port, KEYS, "reader")
    try:
        recorder = Recorder()
        reader.add_listener(recorder)
        reader.subscribe().channels(["py.moved"]).execute()
        recorder.wait_for("status", lambda s: s.category.name == "PNConnectedCategory")
        sent = writer.publish().channel("py.moved").message({"n": 1}).ptto(given).sync()
        assert sent.result.timetoken == given
        writer.publish().channel("py.moved").message({"n": 2}).sync()  # read after it
        got = recorder.wait_for("message")
        assert (got.message, got.timetoken) == ({"n": 1}, given)
        assert recorder.wait_for("message", lambda m: m.message == {"n": 2}).timetoken > given
        # ptto=0 is no timetoken: answered (and delivered) as when it was published, not
        # "0" to the publisher and the publish time to subscribers.
        zero = dev.request("GET", "/publish/pub-c-py/sub-c-py/0/py.zero/0/%7B%7D?ptto=0")
        assert zero[0] == 200 and json.loads(zero[2])[2] != "0", zero
        history = writer.fetch_messages().channels(["py.moved"]).sync()
        stored = history.result.channels["py.moved"]
        assert (stored[0].message, int(stored[0].timetoken)) == ({"n": 1}, given)
    finally:
        reader.stop()
        writer.stop()
