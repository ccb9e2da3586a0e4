"""The `pubnub` module of functions over the project's own state: channel groups and push
registrations a function makes are the ones the official SDKs then read from `pfunc dev`,
and the other way round; each call spends one "pubnub" operation."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.sdk.pysdk import py_client
from tests.test_dev_server import InProcessDev

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


def make_project(folder: Path) -> Path:
    (folder / "pfunc.toml").write_text(PROJECT)
    (folder / "registry.js").write_text(textwrap.dedent(REGISTRY_JS))
    (folder / "registry_py.py").write_text(textwrap.dedent(REGISTRY_PY))
    (folder / "context.js").write_text(textwrap.dedent(CONTEXT_JS))
    (folder / "context_py.py").write_text(textwrap.dedent(CONTEXT_PY))
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
