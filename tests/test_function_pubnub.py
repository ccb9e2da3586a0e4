"""The `pubnub` module of functions over the project's own state: channel groups and push
registrations a function makes are the ones the official SDKs then read from `pfunc dev`,
and the other way round; each call spends one "pubnub" operation."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.dev_harness import InProcessDev
from tests.sdk.pysdk import py_client

KEYS = ("pub-c-fn", "sub-c-fn")
PROJECT = """
[project]
subscribe_key = "sub-c-fn"
publish_key = "pub-c-fn"

[limits]
operations = 20

[[functions]]
name = "registry"
file = "registry.js"
event = "on-request"
path = "registry"

[[functions]]
name = "context"
file = "context.js"
event = "on-request"
path = "context"

[[functions]]
name = "context_py"
file = "context_py.py"
event = "on-request"
path = "context-py"

[[functions]]
name = "shared"
file = "shared.js"
event = "on-request"
path = "shared"

[[functions]]
name = "shared_py"
file = "shared_py.py"
event = "on-request"
path = "shared-py"

[[functions]]
name = "registry_py"
file = "registry_py.py"
event = "on-request"
path = "registry-py"
"""
REGISTRY_JS = """
const pubnub = require("pubnub");
export default async (request, response) => {
  await pubnub.channelGroups.addChannels({ channelGroup: "team", channels: ["t.a", "t.b"] });
  await pubnub.channelGroups.removeChannels({ channelGroup: "team", channels: ["t.a"] });
  const team = await pubnub.channelGroups.listChannels({ channelGroup: "team" });
  const groups = await pubnub.channelGroups.listGroups();
  await pubnub.push.addChannels({
    channels: ["alerts"], device: "fcm-1", pushGateway: "fcm",
  });
  const pushed = await pubnub.push.listChannels({ device: "fcm-1", pushGateway: "fcm" });
  let refused = null;
  try {
    await pubnub.push.addChannels({
      channels: ["x"], device: "not hex", pushGateway: "apns2", topic: "com.x",
    });
  } catch (error) {
    refused = error.message;
  }
  return response.send({ team, groups, pushed, refused });
};
"""
REGISTRY_PY = """
from pfunc import require

pubnub = require("pubnub")


async def handler(request, response):
    await pubnub.channel_groups.add_channels({"channelGroup": "py", "channels": ["p.1"]})
    listed = await pubnub.channel_groups.list_channels({"channelGroup": "py"})
    await pubnub.channel_groups.delete_group({"channelGroup": "gone"})
    return response.send(listed)
"""


CONTEXT_JS = """
const pubnub = require("pubnub");
export default async (request, response) => {
  await pubnub.objects.setUUIDMetadata({ uuid: "ada", data: { name: "Ada", custom: { team: "x" } } });
  await pubnub.objects.setUUIDMetadata({ uuid: "bob", data: { name: "Bob" } });
  const one = await pubnub.objects.getUUIDMetadata({ uuid: "ada" });
  const all = await pubnub.objects.getAllUUIDMetadata({
    filter: "name LIKE 'A*'", sort: { name: "desc" }, include: { totalCount: true },
  });
  await pubnub.objects.setMemberships({ uuid: "ada", channels: ["room.1", { id: "room.2" }] });
  const rooms = await pubnub.objects.getMemberships({ uuid: "ada", include: { channelFields: true } });
  const token = await pubnub.grantToken({
    ttl: 15, authorized_uuid: "ada",
    resources: { channels: { "room.1": { read: true, write: true } } },
    patterns: { channels: { "room-.*": { read: true } } },
  });
  const parsed = pubnub.parseToken(token);
  await pubnub.revokeToken(token);
  let missing = null;
  try { await pubnub.objects.getChannelMetadata({ channel: "nowhere" }); }
  catch (error) { missing = error.message; }
  return response.send({ one, all, rooms, token, parsed, missing });
};
"""
CONTEXT_PY = """
from pfunc import require

pubnub = require("pubnub")


async def handler(request, response):
    await pubnub.objects.set_channel_metadata({"channel": "room.1", "data": {"name": "One"}})
    token = await pubnub.grant_token({"ttl": 5, "resources": {"uuids": {"ada": {"get": True}}}})
    return response.send({"channel": await pubnub.objects.get_channel_metadata(
        {"channel": "room.1"}), "parsed": pubnub.parse_token(token)})
"""


SHARED_JS = """
const pubnub = require("pubnub");
export default async (request, response) => {
  const listed = await pubnub.listFiles({ channel: "docs", limit: 10 });
  const file = listed.data[0];
  const url = pubnub.getFileUrl({ channel: "docs", id: file.id, name: file.name });
  const sent = await pubnub.publishFile({
    channel: "docs", message: { text: "see this" }, fileId: file.id, fileName: file.name,
  });
  if (request.query.delete) {
    await pubnub.deleteFile({ channel: "docs", id: file.id, name: file.name });
    return response.send(await pubnub.listFiles({ channel: "docs" }));
  }
  const odd = pubnub.getFileUrl({ channel: "c", id: "i", name: "n (1)!.txt" });
  return response.send({ listed, url, sent, odd });
};
"""
SHARED_PY = """
from pfunc import require

pubnub = require("pubnub")


async def handler(request, response):
    return response.send(
        {"url": pubnub.get_file_url({"channel": "c", "id": "i", "name": "n (1)!.txt"})}
    )
"""


def make_project(folder: Path) -> Path:
    (folder / "pfunc.toml").write_text(PROJECT)
    (folder / "registry.js").write_text(textwrap.dedent(REGISTRY_JS))
    (folder / "registry_py.py").write_text(textwrap.dedent(REGISTRY_PY))
    (folder / "context.js").write_text(textwrap.dedent(CONTEXT_JS))
    (folder / "context_py.py").write_text(textwrap.dedent(CONTEXT_PY))
    (folder / "shared.js").write_text(textwrap.dedent(SHARED_JS))
    (folder / "shared_py.py").write_text(textwrap.dedent(SHARED_PY))
    return folder


def test_channel_groups_and_push_from_functions_are_the_sdks_state(tmp_path):
    server = InProcessDev(make_project(tmp_path))
    try:
        pn = py_client(server.port, KEYS, "admin")
        pn.add_channel_to_channel_group().channel_group("gone").channels(["g.1"]).sync()
        status, _, body = server.request("GET", "/v1/blocks/sub-key/sub-c-fn/registry")
        assert status == 200, body
        seen = json.loads(body)
        assert seen["team"] == {"channels": ["t.b"]}
        assert "team" in seen["groups"]["groups"] and "gone" in seen["groups"]["groups"]
        assert seen["pushed"] == {"channels": ["alerts"]}
        assert "Invalid device token" in seen["refused"]
        execution = server.wait_for(lambda e: e["type"] == "execution")
        assert execution["operations"]["used"] == 7  # every call, the refused one too
        # The application reads what the function registered.
        listed = pn.list_channels_in_channel_group().channel_group("team").sync().result
        assert listed.channels == ["t.b"]
        status, _, body = server.request("GET", "/v1/blocks/sub-key/sub-c-fn/registry-py")
        assert status == 200, body
        assert json.loads(body) == {"channels": ["p.1"]}
        assert (
            pn.list_channels_in_channel_group().channel_group("gone").sync().result.channels == []
        )
        pn.stop()
    finally:
        server.stop()


def test_app_context_and_tokens_from_functions_are_the_sdks_state(tmp_path):
    server = InProcessDev(make_project(tmp_path))
    try:
        pn = py_client(server.port, KEYS, "admin")
        status, _, body = server.request("GET", "/v1/blocks/sub-key/sub-c-fn/context")
        assert status == 200, body
        seen = json.loads(body)
        assert seen["one"]["data"]["name"] == "Ada"
        assert seen["one"]["data"]["custom"] == {"team": "x"}
        assert [user["id"] for user in seen["all"]["data"]] == ["ada"]
        assert seen["all"]["totalCount"] == 1
        assert sorted(m["channel"]["id"] for m in seen["rooms"]["data"]) == ["room.1", "room.2"]
        parsed = seen["parsed"]
        assert parsed["ttl"] == 15 and parsed["authorized_uuid"] == "ada"
        assert parsed["resources"]["channels"]["room.1"]["write"] is True
        assert parsed["patterns"]["channels"] == {
            "room-.*": {
                "read": True,
                "write": False,
                "manage": False,
                "delete": False,
                "get": False,
                "update": False,
                "join": False,
            }
        }
        assert "not found" in seen["missing"].lower() and "404" in seen["missing"]
        # parseToken is local (no operation); the other nine calls are one each.
        execution = server.wait_for(lambda e: e["type"] == "execution")
        assert execution["operations"]["used"] == 9, execution
        # The SDKs read what the function wrote, and its token's own parse agrees.
        ada = pn.get_uuid_metadata().uuid("ada").sync().result
        assert ada.data["name"] == "Ada"
        assert pn.parse_token(seen["token"])["authorized_uuid"] == "ada"
        status, _, body = server.request("GET", "/v1/blocks/sub-key/sub-c-fn/context-py")
        assert status == 200, body
        from_python = json.loads(body)
        assert from_python["channel"]["data"]["name"] == "One"
        assert from_python["parsed"]["resources"]["uuids"]["ada"]["get"] is True
        pn.stop()
    finally:
        server.stop()


def test_the_registry_lists_every_pubnub_call_the_module_answers():
    """The sandboxes build the module from the registry: a call in a table but not in the
    registry would be unreachable, one in the registry but in no table would fail."""
    from pfunc.modules import HOST_METHODS, SYNC_METHODS
    from pfunc.modules.pubnub import CALLS, PUBLISHING
    from pfunc.modules.pubnub_state import STATE_METHODS

    answered = {*PUBLISHING, "time", *STATE_METHODS, *CALLS}
    assert set(HOST_METHODS["pubnub"]) == answered
    assert not set(SYNC_METHODS["pubnub"]) & answered


def test_file_metadata_calls_from_functions_reach_the_sdks_files(tmp_path):
    import urllib.request

    server = InProcessDev(make_project(tmp_path))
    try:
        pn = py_client(server.port, KEYS, "admin")
        sent = pn.send_file().channel("docs").file_name("notes.txt").file_object(b"hello").sync()
        file_id = sent.result.file_id
        status, _, body = server.request("GET", "/v1/blocks/sub-key/sub-c-fn/shared")
        assert status == 200, body
        seen = json.loads(body)
        assert [(f["id"], f["name"], f["size"]) for f in seen["listed"]["data"]] == [
            (file_id, "notes.txt", 5)
        ]
        with urllib.request.urlopen(seen["url"], timeout=10) as download:
            assert download.read() == b"hello"  # getFileUrl points at this server
        assert int(seen["sent"]["timetoken"]) > 0
        status, _, body = server.request("GET", "/v1/blocks/sub-key/sub-c-fn/shared?delete=1")
        assert status == 200 and json.loads(body)["data"] == [], body
        # The file message the function published is in history as a file message.
        stored = pn.fetch_messages().channels(["docs"]).include_message_type(True).sync()
        message = stored.result.channels["docs"][-1]
        assert message.message["file"] == {"id": file_id, "name": "notes.txt"}
        assert message.message["message"] == {"text": "see this"}
        status, _, body = server.request("GET", "/v1/blocks/sub-key/sub-c-fn/shared-py")
        assert status == 200, body
        assert (
            json.loads(body)["url"]
            == seen["odd"]
            == (
                f"http://127.0.0.1:{server.port}/v1/files/sub-c-fn/channels/c/files/i/n%20%281%29%21.txt"
            )
        )
        pn.stop()
    finally:
        server.stop()


SDK_SHAPES = """
const pubnub = require("pubnub");
export default async (request) => {
  const ch = "paged";
  const sent = [];
  for (let i = 0; i < 30; i++) sent.push((await pubnub.publish({ channel: ch, message: { i } }))[2]);
  for (const tt of sent.slice(-3)) {
    await pubnub.addMessageAction({
      channel: ch, messageTimetoken: tt, action: { type: "react", value: "x" } });
  }
  const withActions = await pubnub.fetchMessages({ channels: [ch], includeMessageActions: true });
  const page = await pubnub.getMessageActions({ channel: ch, limit: 2 });
  const older = await pubnub.getMessageActions({ channel: ch, start: page.start });
  let tooMany = "added";
  try {
    await pubnub.channelGroups.addChannels({
      channelGroup: "g", channels: Array.from({ length: 201 }, (_, i) => "c" + i) });
  } catch (e) { tooMany = e.status.statusCode; }
  await pubnub.objects.setUUIDMetadata({ data: { name: "me" } });
  const mine = await pubnub.objects.getUUIDMetadata();
  const alias = await pubnub.objects.getUUIDMetadata({ userId: "pfunc-function" });
  const lean = await pubnub.fetchMessages({
    channels: [ch], count: 1, includeUUID: false, includeMessageType: false });
  return request.ok({
    fetched: withActions.channels[ch].length,
    more: withActions.more,
    firstActions: withActions.channels[ch].slice(-1)[0].actions,
    page: [page.data.length, page.start, page.end],
    older: older.data.length,
    tooMany,
    mine: mine.data.name, alias: alias.data.id,
    textCount: (await pubnub.history({ channel: ch, count: "3" })).messages.length,
    zeroCount: (await pubnub.history({ channel: ch, count: 0 })).messages.length,
    lean: Object.keys(lean.channels[ch][0]).sort(),
  });
};
"""


def test_the_pubnub_module_answers_in_the_sdks_shapes_and_limits(harness, write_handler):
    """What the JavaScript SDK's parsers give (getMessageActions' start and end, the 25
    a page with actions holds, with no `more`, the userId alias and the caller's own id),
    how it reads a count ("3", and 0 as the default), and PubNub's 200 channels per add."""
    harness.limit_overrides = {"operations": 100}
    result = harness.run(write_handler(SDK_SHAPES, "shapes.js"))
    assert result.outcome == "ok", result.error
    seen = result.message
    assert seen["fetched"] == 25 and "more" not in seen  # (undefined: left out of the JSON)
    assert "react" in seen["firstActions"]
    count, start, end = seen["page"]
    assert count == 2 and isinstance(start, str) and isinstance(end, str) and start <= end
    assert seen["older"] == 1  # the third action, older than the page's start
    assert seen["tooMany"] == 400
    assert (seen["mine"], seen["alias"]) == ("me", "pfunc-function")
    assert (seen["textCount"], seen["zeroCount"]) == (3, 30)
    assert seen["lean"] == ["channel", "message", "timetoken"]
