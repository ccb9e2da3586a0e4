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


def make_project(folder: Path) -> Path:
    (folder / "pfunc.toml").write_text(PROJECT)
    (folder / "registry.js").write_text(textwrap.dedent(REGISTRY_JS))
    (folder / "registry_py.py").write_text(textwrap.dedent(REGISTRY_PY))
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
