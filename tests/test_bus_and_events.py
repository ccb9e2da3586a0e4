"""The local bus, chaining with the hop limit, every event kind, and pfunc.toml validation."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pfunc.channels import channel_matches
from pfunc.project_file import parse_project
from tests.conftest import REPO, invoke_cli


def run_cli(*args, cwd=None, stdin=None):  # the commands' answers: in this process
    return invoke_cli(*args, cwd=cwd or REPO, stdin=stdin)


RELAY = """
const pubnub = require("pubnub");
export default async (request) => {
  console.log("NAME saw " + JSON.stringify(request.message));
  await pubnub.publish({ channel: "NEXT", message: { via: "NAME" } });
  return request.ok();
};
"""


def write_project(folder: Path, toml: str, handlers: dict[str, str]) -> None:
    (folder / "pfunc.toml").write_text(textwrap.dedent(toml))
    for name, source in handlers.items():
        (folder / name).write_text(textwrap.dedent(source))


def test_chain_a_b_c_d_stops_before_the_fourth_hop(tmp_path):
    toml = "[project]\nname = 'chain'\n"
    handlers = {}
    for name, channel, nxt in [("A", "a", "b"), ("B", "b", "c"), ("C", "c", "d"), ("D", "d", "e")]:
        toml += (
            f'[[functions]]\nname = "{name}"\nfile = "{name}.js"\n'
            f'event = "after-publish"\nchannels = ["{channel}"]\n'
        )
        handlers[f"{name}.js"] = RELAY.replace("NAME", name).replace("NEXT", nxt)
    write_project(tmp_path, toml, handlers)
    run = run_cli("publish", "a", '{"start":true}', "--json", cwd=tmp_path)
    assert run.code == 0, run.stderr
    report = run.json()

    ran, node = [], report
    while node["executions"]:
        execution = node["executions"][0]
        ran.append((execution["function"], execution["hop"], execution["outcome"]))
        if not execution.get("triggered"):
            break
        node = execution["triggered"][0]
    assert ran == [("A.js", 1, "ok"), ("B.js", 2, "ok"), ("C.js", 3, "ok")]
    c_execution = report["executions"][0]["triggered"][0]["executions"][0]["triggered"][0][
        "executions"
    ][0]
    dropped = c_execution["triggered"][0]
    assert dropped["channel"] == "d" and dropped["executions"] == []
    assert "hop 4" in dropped["dropped"] and "PubNub allows 3" in dropped["dropped"]
    assert any("hop 4" in warning for warning in c_execution["warnings"])

    human = run_cli("publish", "a", '{"start":true}', cwd=tmp_path).stdout
    for expected in (
        "after-publish · A.js",
        "after-publish · B.js",
        "after-publish · C.js",
        "publish → d (hop 4)",
    ):
        assert expected in human
    assert "D.js" not in human


@pytest.mark.parametrize("verb", ["publish", "fire", "signal"])
def test_a_functions_string_message_is_delivered_and_triggers_no_function(tmp_path, verb):
    """PubNub's pubnub module: "Published payloads must be valid JSON. Strings won't trigger
    Functions." A client's string still triggers them (hop 1); an object from a function
    does too."""
    kind = "signal" if verb == "signal" else "publish"
    write_project(
        tmp_path,
        f"""
        [project]
        name = "strings"
        [[functions]]
        name = "relay"
        file = "relay.js"
        event = "after-publish"
        channels = ["in"]
        [[functions]]
        name = "watcher"
        file = "watcher.js"
        event = "before-{kind}"
        channels = ["out"]
        """,
        {
            "relay.js": f"""
            const pubnub = require("pubnub");
            export default async (request) => {{
              await pubnub.{verb}({{ channel: "out", message: request.message.send }});
              return request.ok();
            }};
            """,
            "watcher.js": "export default (request) => request.ok();",
        },
    )

    def relayed(send: object) -> dict:
        run = run_cli("publish", "in", json.dumps({"send": send}), "--json", cwd=tmp_path)
        assert run.code == 0, run.stderr
        return run.json()["executions"][0]

    relay = relayed("just a string")
    (out,) = relay["triggered"]
    assert out["executions"] == [] and out["not_triggered"] == ["watcher"]
    assert out["delivered"] is True and out["message"] == "just a string"
    assert any('"watcher" did not run' in warning for warning in relay["warnings"])

    relay = relayed({"text": "an object"})
    (out,) = relay["triggered"]
    assert [execution["function"] for execution in out["executions"]] == ["watcher.js"]
    assert "not_triggered" not in out and relay["warnings"] == []

    if verb == "publish":  # a client's string (hop 1) runs the functions bound to it
        run = run_cli("publish", "out", '"from a client"', "--json", cwd=tmp_path)
        assert [execution["function"] for execution in run.json()["executions"]] == ["watcher.js"]


def test_before_functions_run_in_order_then_delivery_then_after(harness, tmp_path):
    write_project(
        tmp_path,
        """
        [project]
        [[functions]]
        name = "tag"
        file = "tag.js"
        event = "before-publish"
        channels = ["chat.*"]
        [[functions]]
        name = "upper"
        file = "upper.js"
        event = "before-publish"
        channels = ["chat.room"]
        [[functions]]
        name = "after"
        file = "after.js"
        event = "after-publish"
        channels = ["chat.room"]
    """,
        {
            "tag.js": "export default (r) => { r.message.tags = ['seen']; return r.ok(); };",
            "upper.js": "export default (r) => r.ok({ ...r.message, text: r.message.text.toUpperCase() });",
            "after.js": "export default (r) => { console.log(JSON.stringify(r.message)); return r.ok(); };",
        },
    )
    harness.project = parse_project(tmp_path / "pfunc.toml")
    report = harness.publish("chat.room", {"text": "hi"})
    assert report.delivered is True
    assert report.message == {"text": "HI", "tags": ["seen"]}
    assert [r.function for r in report.executions] == ["tag.js", "upper.js", "after.js"]
    assert report.executions[2].logs[0]["text"] == '{"text":"HI","tags":["seen"]}'
    other = harness.publish("chat.lobby", {"text": "hi"})
    assert [r.function for r in other.executions] == ["tag.js"]
    assert harness.publish("news", {"text": "hi"}).executions == []


def test_abort_stops_delivery_and_rejects_a_handler_publish(harness, tmp_path, write_handler):
    write_project(
        tmp_path,
        """
        [project]
        [[functions]]
        name = "guard"
        file = "guard.js"
        event = "before-publish"
        channels = ["locked"]
        [[functions]]
        name = "never"
        file = "never.js"
        event = "after-publish"
        channels = ["locked"]
    """,
        {
            "guard.js": "export default (r) => r.abort('locked');",
            "never.js": "export default (r) => r.ok();",
        },
    )
    harness.project = parse_project(tmp_path / "pfunc.toml")
    report = harness.publish("locked", {"x": 1})
    assert (report.delivered, report.stopped_by) == (False, "guard")
    assert [r.function for r in report.executions] == ["guard.js"]
    sender = write_handler(
        """
        const pubnub = require("pubnub");
        export default async (request) => {
          try { await pubnub.publish({ channel: "locked", message: {} }); }
          catch (e) { return request.ok({ rejected: e.message }); }
          return request.ok({ rejected: null });
        };
    """,
        "sender.js",
    )
    result = harness.run(sender)
    assert 'before-publish function "guard" aborted or failed it' in result.message["rejected"]
    assert result.triggered[0].stopped_by == "guard"


def test_publish_resolves_like_pubnub_and_fire_skips_subscribers(harness, write_handler):
    import asyncio

    harness.limits = "pubnub-2026"  # four calls: past classic's three

    from pfunc.events import MessageEvent

    handler = write_handler(
        """
        const pubnub = require("pubnub");
        export default async (request) => {
          const sent = await pubnub.publish({ channel: "x", message: { a: 1 } });
          const fired = await pubnub.fire({ channel: "x", message: { b: 2 } });
          const time = await pubnub.time();
          let other;
          try { await pubnub.grant({ channels: ["x"] }); } catch (e) { other = e.message; }
          return request.ok({ sent, fired, time: typeof time, other });
        };
    """,
        "p.js",
    )
    delivered = []

    async def go():
        async with harness.engine() as engine:
            engine.bus.listeners.append(lambda report: delivered.append(report.message))
            executor = engine.functions.executor_for_file(handler)
            return await executor.run(MessageEvent("before-publish", {}))

    result = asyncio.run(go())
    sent = result.message["sent"]
    assert sent[:2] == [1, "Sent"] and len(sent[2]) == 17 and sent[2].isdigit()
    assert result.message["time"] == "number"
    assert result.message["other"].startswith("pubnub.grant is not emulated by pfunc")
    assert delivered == [{"a": 1}]  # the fire reached no subscriber
    # publish, fire and time all count, and so does the call pfunc does not emulate
    assert [call["method"] for call in result.operations["calls"]] == [
        "publish",
        "fire",
        "time",
        "grant",
    ]


def test_message_size_limits(harness):
    report = harness.publish("big", {"text": "x" * 40_000})
    assert "refused" in report.dropped and "32,768" in report.dropped
    signal = harness.publish("s", {"text": "x" * 40}, verb="signal")
    assert "refused" in signal.dropped and "the limit is 30" in signal.dropped


@pytest.mark.parametrize(
    ("pattern", "channel", "matches"),
    [
        ("chat", "chat", True),
        ("chat", "chat.a", False),
        ("chat.*", "chat.a", True),
        ("chat.*", "chat.a.b", True),
        ("chat.*", "chat", False),
        ("chat.*", "chatter.a", False),
        ("a.b.*", "a.b.c", True),
        ("a.b.*", "a.c.d", False),
    ],
)
def test_wildcard_matching(pattern, channel, matches):
    assert channel_matches(pattern, channel) is matches


# --- event kinds from the CLI ---------------------------------------------------------------


ECHO = """
export default (request) => {
  console.log(JSON.stringify({ message: request.message, verb: request.verb,
                               channels: request.channels }));
  return request.ok();
};
"""


@pytest.mark.parametrize("kind", ["before-signal", "after-signal"])
def test_signal_kinds(tmp_path, kind):
    (tmp_path / "h.js").write_text(ECHO)
    run = run_cli(
        "run",
        tmp_path / "h.js",
        "--event",
        kind,
        "--channel",
        "s",
        "--message",
        '{"t":1}',
        "--json",
        cwd=tmp_path,
    )
    seen = json.loads(run.json()["logs"][0]["text"])
    assert seen == {"message": {"t": 1}, "verb": "signal", "channels": ["s"]}


def test_after_presence_flags_build_the_presence_event(tmp_path):
    (tmp_path / "h.js").write_text(ECHO)
    run = run_cli(
        "run",
        tmp_path / "h.js",
        "--action",
        "leave",
        "--uuid",
        "alice",
        "--occupancy",
        "4",
        "--state",
        '{"mood":"ok"}',
        "--channel",
        "room",
        "--now",
        "2026-01-01T00:00:10Z",
        "--json",
        cwd=tmp_path,
    )
    result = run.json()
    assert result["event"] == "after-presence"  # inferred from the presence flags
    seen = json.loads(result["logs"][0]["text"])
    assert seen["message"] == {
        "action": "leave",
        "uuid": "alice",
        "occupancy": 4,
        "timestamp": 1_767_225_610,
        "state": {"mood": "ok"},
    }
    assert seen["verb"] == "presence"


def test_an_after_presence_request_names_the_user_in_its_params(tmp_path):
    """request.params.uuid, which publish handlers read for the sender, was pfunc's own
    "pfunc-cli" in every presence event: it is the user the change is about."""
    (tmp_path / "h.js").write_text(
        "export default (request) => { console.log(request.params.uuid); return request.ok(); };"
    )
    run = run_cli("run", tmp_path / "h.js", "--uuid", "alice", "--json", cwd=tmp_path)
    assert run.json()["logs"][0]["text"] == "alice"


def test_on_interval_event(tmp_path):
    (tmp_path / "tick.js").write_text("""
        const db = require("kvstore");
        export default async (event) => {
          const n = await db.incrCounter("ticks");
          return n > 1 ? event.abort("only once") : event.ok();
        };
    """)
    kv = tmp_path / "kv.sqlite3"
    first = run_cli("run", tmp_path / "tick.js", "--event", "on-interval", "--json", "--kv", kv)
    assert first.json()["outcome"] == "ok"
    assert "message" not in first.json() and "response" not in first.json()
    second = run_cli("run", tmp_path / "tick.js", "--event", "on-interval", "--json", "--kv", kv)
    assert (second.json()["outcome"], second.json()["abort_reason"]) == ("abort", "only once")
    refused = run_cli("run", tmp_path / "tick.js", "--event", "on-interval", "--message", "{}")
    assert refused.code == 2


# --- pfunc.toml validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "line", "fragment"),
    [
        (
            'event = "on-timer"\nchannels = ["a"]',
            6,
            "functions[0] (\"f\").event = 'on-timer' is not allowed; use one of: before-publish",
        ),
        (
            'event = "before-publish"\nchannels = ["*.x"]',
            7,
            "'*.x' is not a valid channel: * may only be the last segment",
        ),
        (
            'event = "before-publish"\nchannels = ["a.*.b"]',
            7,
            "'a.*.b' is not a valid channel: * may only be the last segment",
        ),
        ('event = "before-publish"\nchannels = ["a.b.c.*"]', 7, "at most two literal segments"),
        ('event = "on-request"', 3, "path names the function's URL path"),
        ('event = "on-interval"\ninterval = 0', 7, "interval must be a number of seconds"),
        ('event = "after-publish"', 3, "channels must list the channels"),
    ],
)
def test_invalid_functions_are_refused_with_the_line(tmp_path, entry, line, fragment):
    (tmp_path / "pfunc.toml").write_text(
        f'[project]\n\n[[functions]]\nname = "f"\nfile = "f.js"\n{entry}\n'
    )
    run = run_cli("run", "f", cwd=tmp_path)
    assert run.code == 2
    assert f"pfunc.toml:{line}:" in run.stderr, run.stderr
    assert fragment in run.stderr


def test_two_before_publish_functions_on_one_channel_are_refused(tmp_path):
    (tmp_path / "pfunc.toml").write_text(
        textwrap.dedent("""
        [project]
        [[functions]]
        name = "one"
        file = "one.js"
        event = "before-publish"
        channels = ["chat"]
        [[functions]]
        name = "two"
        file = "two.js"
        event = "before-publish"
        channels = ["news", "chat"]
    """)
    )
    run = run_cli("publish", "chat", "{}", cwd=tmp_path)
    assert run.code == 2
    assert (
        'pfunc.toml:12: "one" and "two" are both before-publish functions on channel "chat"'
        in run.stderr
    )


def test_publish_usage_errors(tmp_path):
    assert run_cli("publish", "chat.*", "{}", cwd=tmp_path).code == 2
    bad = run_cli("publish", "chat", "{oops", cwd=tmp_path)
    assert bad.code == 2 and "MESSAGE is not valid JSON" in bad.stderr


def test_a_handler_signal_counts_as_an_operation(harness, write_handler):
    handler = write_handler("""
        const pubnub = require("pubnub");
        export default async (request) => {
          await pubnub.signal({ channel: "typing.x", message: { t: 1 } });
          return request.ok();
        };
    """)
    result = harness.run(handler)
    assert result.operations["used"] == 1
    assert result.operations["calls"][0]["method"] == "signal"
    assert result.triggered[0].verb == "signal" and result.triggered[0].delivered


LATE_PROJECT = """
[project]
subscribe_key = "sub-c-late"
publish_key = "pub-c-late"

[limits]
timeout = 1

[[functions]]
name = "parent"
file = "parent.js"
event = "on-request"
path = "parent"

[[functions]]
name = "child"
file = "child.js"
event = "before-publish"
channels = ["slow.target"]
"""
# Busy waits on the clock, each well inside the 1 s limit, together past the parent's.
PARENT = """
const pubnub = require("pubnub");
export default async (request, response) => {
  const until = Date.now() + 700;
  while (Date.now() < until) {}
  await pubnub.publish({ channel: "slow.target", message: { n: 1 } });
  return response.send("published");
};
"""
CHILD = """
export default (request) => {
  const until = Date.now() + 500;
  while (Date.now() < until) {}
  return request.ok();
};
"""


def test_a_publish_made_before_the_deadline_is_delivered_after_it(tmp_path):
    """The parent publishes, then its deadline passes while the function the publish
    triggered still runs: the parent ends as a timeout, and the message, on its way since
    the publish, is delivered once that function completes (once, pfunc dev cancelled the
    publish with the parent: the child's work was done and its message lost)."""
    import time

    from tests.dev_harness import InProcessDev

    (tmp_path / "pfunc.toml").write_text(LATE_PROJECT)
    (tmp_path / "parent.js").write_text(PARENT)
    (tmp_path / "child.js").write_text(CHILD)
    server = InProcessDev(tmp_path)
    try:
        status, _, body = server.request("GET", "/v1/blocks/sub-key/sub-c-late/parent")
        assert status == 503 and "time limit" in body
        history = "/v2/history/sub-key/sub-c-late/channel/slow.target"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            messages = json.loads(server.request("GET", history)[2])[0]
            if messages:
                break
            time.sleep(0.05)
        assert messages == [{"n": 1}]
        child = server.wait_for(lambda e: e["type"] == "execution" and e["function"] == "child")
        assert child["outcome"] == "ok"
    finally:
        server.stop()


def test_the_pubnub_module_is_a_plain_object_not_a_promise(harness, write_handler):
    """A module returned from an async function, or serialised, is an object: no `then` or
    `toJSON` is made up for it (they used to be 'not emulated' calls)."""
    handler = write_handler(
        """
        async function client() { return require("pubnub"); }
        export default async (request) => {
          const pubnub = await client();
          return request.ok({ same: pubnub === require("pubnub"), then: typeof pubnub.then,
                              text: typeof JSON.stringify(pubnub) });
        };
        """,
        "plain.js",
    )
    result = harness.run(handler)
    assert result.outcome == "ok", result.error
    assert result.message == {"same": True, "then": "undefined", "text": "string"}
    assert result.operations["used"] == 0


def test_a_refusal_of_the_service_carries_the_sdks_status(harness, write_handler):
    """`error.status.statusCode`, as a PubNubError has it: the usual "get, else create on
    404" of a handler."""
    handler = write_handler(
        """
        const pubnub = require("pubnub");
        export default async (request) => {
          try { await pubnub.objects.getUUIDMetadata({ uuid: "nobody" }); }
          catch (error) { return request.ok({ status: error.status }); }
          return request.ok({ status: null });
        };
        """,
        "status.js",
    )
    result = harness.run(handler)
    assert result.outcome == "ok", result.error
    assert result.message["status"] == {
        "error": True,
        "category": "PNUnknownCategory",  # the SDK's for a 404
        "statusCode": 404,
        "errorData": {
            "status": 404,
            "error": {"message": "Requested object was not found.", "source": "objects"},
        },
    }


def test_functions_see_the_publisher_subscribers_see_and_the_route_it_came_by(harness, tmp_path):
    """A publish with no uuid gets one made up (as PubNub does): the function sees that
    one, not a placeholder, and a signal's request.uri is the signal route."""
    (tmp_path / "seen.js").write_text(
        "export default (request) => {\n"
        "  request.message = { uuid: request.params.uuid, uri: request.uri };\n"
        "  return request.ok();\n"
        "};\n"
    )
    harness.use_project(
        """
        [project]
        subscribe_key = "sub-c-s"
        publish_key = "pub-c-s"

        [[functions]]
        name = "seen"
        file = "seen.js"
        event = "before-publish"
        channels = ["room"]

        [[functions]]
        name = "seen-signal"
        file = "seen.js"
        event = "before-signal"
        channels = ["room"]
        """,
        tmp_path,
    )
    published = harness.publish("room", {"a": 1})
    assert published.message["uuid"] == published.publisher
    assert published.message["uri"].startswith("/publish/")
    signalled = harness.publish("room", {"b": 2}, verb="signal")
    assert signalled.message["uuid"] == signalled.publisher
    assert signalled.message["uri"].startswith("/signal/")


def test_history_calls_the_sdk_refuses_are_refused_in_its_words(harness, write_handler):
    handler = write_handler(
        """
        const pubnub = require("pubnub");
        const refusal = (promise) => promise.then(() => "answered", (error) => error.message);
        export default async (request) => request.ok({
          counts: await refusal(pubnub.messageCounts({ channels: ["a"] })),
          fetched: await refusal(
            pubnub.fetchMessages({ channels: ["a", "b"], includeMessageActions: true })),
          members: await refusal(pubnub.objects.setMemberships({ uuid: "u", channels: [] })),
        });
        """,
        "refused.js",
    )
    result = harness.run(handler)
    assert result.message == {
        "counts": "pubnub.messageCounts: `timetoken` or `channelTimetokens` need to be set",
        "fetched": "pubnub.fetchMessages: History can return actions data for a single channel "
        "only. Either pass a single channel or disable the includeMessageActions flag.",
        "members": "pubnub.objects.setMemberships: Channels cannot be empty",
    }


def test_a_functions_publish_to_a_channel_the_service_refuses_is_refused(harness, write_handler):
    """A comma, a colon, a space: a client's publish there answers 400 Invalid Channel,
    and so does a function's (publish, signal, publishFile), as the SDK's error.status;
    nothing is delivered or stored. (A function's publish to "a,b" was stored under it.)"""
    harness.limits = "pubnub-2026"
    handler = write_handler(
        """
        const pubnub = require("pubnub");
        export default async (request) => {
          const seen = [];
          const calls = [
            () => pubnub.publish({ channel: "a,b", message: 1 }),
            () => pubnub.signal({ channel: "a:b", message: 1 }),
            () => pubnub.publishFile({ channel: "a b", fileId: "i", fileName: "f.txt" }),
          ];
          for (const call of calls) {
            try { await call(); seen.push("sent"); }
            catch (e) { seen.push([e.message.split(": it contains")[0],
                                   e.status.statusCode, e.status.errorData[1]]); }
          }
          return request.ok({ seen });
        };
        """,
        "bad_channel.js",
    )
    result = harness.run(handler)
    assert result.outcome == "ok", result.error
    assert result.message["seen"] == [
        ['pubnub.publish: Invalid Channel "a,b"', 400, "Invalid Channel"],
        ['pubnub.signal: Invalid Channel "a:b"', 400, "Invalid Channel"],
        ['pubnub.publishFile: Invalid Channel "a b"', 400, "Invalid Channel"],
    ]
    assert result.triggered == []
