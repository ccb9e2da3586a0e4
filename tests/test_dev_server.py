"""`pfunc dev` on an ephemeral port (in this process, and as the real command), driven over
HTTP and by the official PubNub Python SDK: messages, on-request, malformed requests, hot
reload, intervals, presence timing. tests/test_dev_server_edges.py has the rest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.dev_harness import (
    PROJECT,
    Collector,
    DevProcess,
    InProcessDev,
    make_ticking_project,
    sdk,
)

# --- the official SDK -----------------------------------------------------------------------


def test_sdk_subscriber_gets_the_modified_message_and_aborts_reach_no_one(dev):
    from pubnub.exceptions import PubNubException

    subscriber, publisher = sdk(dev, "sub"), sdk(dev, "pub")
    collector = Collector()
    subscriber.add_listener(collector.listener)
    subscriber.subscribe().channels(["chat.room", "typing.room"]).execute()
    try:
        assert collector.connected.wait(5)
        sent = publisher.publish().channel("chat.room").message({"text": "hello"}).sync()
        assert sent.result.timetoken > 0
        with pytest.raises(PubNubException) as refused:
            publisher.publish().channel("chat.room").message({"text": "blocked"}).sync()
        assert refused.value._status_code == 400
        assert "blocked word" in str(refused.value._errormsg)
        publisher.signal().channel("typing.room").message({"t": 1}).sync()
        publisher.publish().channel("chat.room").message({"text": "after"}).sync()
        assert collector.wait(lambda: len(collector.messages) == 2 and collector.signals)
        assert collector.messages == [
            ("chat.room", {"text": "HELLO"}),
            ("chat.room", {"text": "AFTER"}),
        ]
        assert collector.signals == [("typing.room", {"t": 1})]
    finally:
        subscriber.stop()


def test_sdk_presence_join_runs_after_presence_functions(dev):
    client = sdk(dev, "alice")
    client.subscribe().channels(["lobby"]).execute()
    try:
        event = dev.wait_for(lambda e: e["type"] == "execution" and e["function"] == "presence")
        assert event["outcome"] == "ok"
    finally:
        client.stop()
    status, _, body = dev.request("POST", "/pfunc/run/count")  # the server is still up
    assert status == 200 and json.loads(body)["outcome"] == "response"


# --- on-request and the trigger endpoint ------------------------------------------------------


def test_on_request_answers_with_status_headers_and_body(dev):
    status, headers, body = dev.request(
        "POST",
        "/v1/blocks/sub-key/sub-c-t/echo/deeper?a=1&status=201",
        b'{"x":1}',
        {"X-Token": "t1", "Content-Type": "application/json"},
    )
    assert status == 201
    assert headers["x-echo"] == "t1"
    # As the result says (pfunc's default for an object body), no charset added on the wire.
    named = {name.lower(): value for name, value in headers.items()}
    assert named["content-type"] == "application/json"
    assert json.loads(body) == {
        "method": "POST",
        "path": "/deeper",
        "query": {"a": "1", "status": "201"},
        "body": '{"x":1}',
    }
    event = dev.wait_for(lambda e: e["type"] == "execution" and e["function"] == "echo")
    assert (event["outcome"], event["path"]) == ("response", "/deeper")


def test_kv_state_is_shared_and_the_trigger_endpoint_runs_any_function(dev):
    first = json.loads(dev.request("GET", "/v1/blocks/sub-key/sub-c-t/count")[2])
    second = json.loads(dev.request("GET", "/v1/blocks/sub-key/sub-c-t/count")[2])
    assert (first, second) == ({"n": 1}, {"n": 2})
    status, _, body = dev.request(
        "POST", "/pfunc/run/shout", json.dumps({"message": {"text": "hey"}}).encode()
    )
    result = json.loads(body)
    assert status == 200 and result["outcome"] == "ok" and result["message"] == {"text": "HEY"}


# --- malformed requests ------------------------------------------------------------------------


@pytest.mark.subprocess
def test_malformed_requests_get_pubnub_style_errors_and_the_server_keeps_serving(dev_process):
    dev = dev_process
    bad_json = urllib.parse.quote("{not json")
    status, _, body = dev.request("GET", f"/publish/pub-c-t/sub-c-t/0/chat.room/0/{bad_json}")
    assert (status, json.loads(body)[:2]) == (400, [0, "Invalid JSON"])

    status, _, body = dev.request("POST", "/v1/blocks/sub-key/sub-c-t/echo", b"x" * 1_100_000)
    assert status == 413 and json.loads(body)["error"] is True

    status, _, body = dev.request("GET", "/v1/blocks/sub-key/sub-c-t/echo/%2E%2E/%2E%2E/etc")
    assert status in (400, 404) and json.loads(body)["error"] is True

    status, _, body = dev.request("GET", "/v1/blocks/sub-key/sub-c-wrong/echo")
    assert (status, json.loads(body)["message"]) == (400, "Invalid Subscribe Key")
    # A publish for another keyset: PubNub's recorded answer (its Access Manager's).
    status, _, body = dev.request("GET", "/publish/blah/blah/0/blah/0/%22hey%22")
    assert status == 400 and json.loads(body) == {
        "message": "Invalid Subscribe Key",
        "error": True,
        "service": "Access Manager",
        "status": 400,
    }

    status, _, body = dev.request("GET", "/v1/blocks/sub-key/sub-c-t/nowhere")
    listed = json.loads(body)
    assert status == 404 and "/v1/blocks/sub-key/sub-c-t/echo" in listed["on_request_paths"]

    status, _, body = dev.request(
        "POST",
        "/publish/pub-c-t/sub-c-t/0/chat.room/0",
        json.dumps({"text": "x" * 40_000}).encode(),
    )
    assert (status, json.loads(body)[1]) == (413, "Message Too Large")
    # past the server's 1 MiB request limit too: PubNub's publish answer, not pfunc's own
    status, _, body = dev.request(
        "POST", "/publish/pub-c-t/sub-c-t/0/chat.room/0", b'"' + b"x" * 1_100_000 + b'"'
    )
    assert (status, json.loads(body)[:2]) == (413, [0, "Message Too Large"])

    status, _, body = dev.request("GET", "/publish/pub-c-wrong/sub-c-t/0/chat.room/0/%7B%7D")
    assert (status, json.loads(body)[1]) == (400, "Invalid Key")

    assert "Traceback" not in body
    assert dev.request("GET", "/time/0")[0] == 200  # still serving
    # A console line that is not UTF-8, on the real command's standard input, is said,
    # and the console goes on (under a strict UTF-8 reader it had stopped, silently).
    assert dev.process.stdin is not None
    dev.process.stdin.buffer.write(b'run count {"body": "caf\xe9"}\n')
    dev.process.stdin.flush()
    refused = dev.wait_for(lambda e: e["type"] == "console-error")
    assert refused["error"] == "the line is not UTF-8 text; type it as UTF-8"
    # A line past 1 MiB is said, not kept (it was copied again at every read).
    dev.process.stdin.buffer.write(b"run count " + b"x" * (1024 * 1024 + 10) + b"\n")
    dev.process.stdin.flush()
    too_long = dev.wait_for(lambda e: e["type"] == "console-error")
    assert too_long["error"].startswith("the line is longer than 1,048,576 bytes")
    dev.type("run count")
    counted = dev.wait_for(lambda e: e["type"] == "execution" and e["function"] == "count")
    assert counted["outcome"] == "response"


def test_a_runaway_handler_is_stopped_while_other_requests_are_answered(dev, gate):
    (dev.folder / "spin.js").write_text(
        'const xhr = require("xhr");\n'
        "export default async (request, response) => {\n"
        f'  await xhr.fetch("{gate.url}");\n'
        "  for (;;) {}\n"
        "};\n"
    )
    dev.wait_for(lambda e: e["type"] == "reload" and e["ok"])
    gate.opened.set()  # the gate only marks that the handler reached its loop
    outcome: dict[str, Any] = {}

    def spin() -> None:
        outcome["status"], _, outcome["body"] = dev.request(
            "GET", "/v1/blocks/sub-key/sub-c-t/spin"
        )

    thread = threading.Thread(target=spin)
    thread.start()
    assert gate.reached.wait(10)  # the runaway loop is about to run
    status, _, body = dev.request("GET", "/v1/blocks/sub-key/sub-c-t/count")
    assert (status, json.loads(body)) == (200, {"n": 1})
    thread.join(timeout=10)
    assert outcome["status"] == 503  # PubNub's answer to a time limit
    assert "1 s time limit" in json.loads(outcome["body"])["message"]
    # The healthy request finished while the runaway was still running: the log shows it
    # first, then the runaway's timeout.
    finished = [
        dev.wait_for(lambda e: e["type"] == "execution" and e["function"] in ("count", "spin"))
        for _ in range(2)
    ]
    assert [e["function"] for e in finished] == ["count", "spin"]
    assert finished[1]["error"]["type"] == "TimeoutError"
    assert dev.request("GET", "/v1/blocks/sub-key/sub-c-t/count")[0] == 200


# --- hot reload ---------------------------------------------------------------------------------


def _echo_text(dev) -> str:
    return dev.request("GET", "/v1/blocks/sub-key/sub-c-t/echo")[2]


def test_a_saved_handler_serves_the_next_request(dev):
    handler = dev.folder / "echo.js"
    handler.write_text("export default (request, response) => response.send('version two');")
    dev.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith("echo.js") and e["ok"])
    assert _echo_text(dev) == "version two"
    # An editor that writes a temporary file and renames it over the original.
    temporary = dev.folder / ".echo.js.swp"
    temporary.write_text("export default (request, response) => response.send('version three');")
    os.replace(temporary, handler)
    dev.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith("echo.js") and e["ok"])
    assert _echo_text(dev) == "version three"


def test_a_syntax_error_keeps_the_last_good_version_serving(dev):
    handler = dev.folder / "echo.js"
    handler.write_text("export default (request, response) => response.send('good');")
    dev.wait_for(lambda e: e["type"] == "reload" and e["ok"])
    handler.write_text("export default (request, response) => { response.send('bad' ;\n};")
    failed = dev.wait_for(lambda e: e["type"] == "reload" and not e["ok"])
    assert failed["error_type"] == "SyntaxError" and failed["line"] == 1
    assert _echo_text(dev) == "good"
    handler.write_text("export default (request, response) => response.send('fixed');")
    dev.wait_for(lambda e: e["type"] == "reload" and e["ok"])
    assert _echo_text(dev) == "fixed"


def test_project_file_reload_adds_functions_and_a_bad_one_is_kept_out(dev):
    config = dev.folder / "pfunc.toml"
    (dev.folder / "hello.js").write_text(
        "export default (request, response) => response.send('hello');"
    )
    config.write_text(
        PROJECT + '\n[[functions]]\nname = "hello"\nfile = "hello.js"\n'
        'event = "on-request"\npath = "hello"\n'
    )
    dev.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith("pfunc.toml") and e["ok"])
    assert dev.request("GET", "/v1/blocks/sub-key/sub-c-t/hello")[2] == "hello"
    config.write_text(
        PROJECT + '\n[[functions]]\nname = "broken"\nfile = "x.js"\nevent = "on-timer"\n'
    )
    failed = dev.wait_for(lambda e: e["type"] == "reload" and not e["ok"])
    assert "on-timer" in failed["error"]
    assert dev.request("GET", "/v1/blocks/sub-key/sub-c-t/hello")[2] == "hello"
    first = json.loads(dev.request("GET", "/v1/blocks/sub-key/sub-c-t/count")[2])["n"]
    assert first == 1  # KV untouched by reloads, counters start where they were


def test_a_saved_project_file_s_vault_and_mocks_serve_the_next_execution(dev):
    """[vault] and [[mocks]] are read by every execution, so a saved pfunc.toml's serve
    the next one; changed [limits] are said to need a restart (they took effect silently
    for nothing before, and the reload said ok)."""
    config = dev.folder / "pfunc.toml"
    (dev.folder / "secret.js").write_text(
        'const vault = require("vault");\nconst xhr = require("xhr");\n'
        "export default async (request, response) => {\n"
        '  const answer = await xhr.fetch("https://mocked.example/x");\n'
        '  return response.send({ s: await vault.get("SECRET"), m: await answer.json() });\n'
        "};\n"
    )
    function = (
        '\n[[functions]]\nname = "secret"\nfile = "secret.js"\nevent = "on-request"\n'
        'path = "secret"\n'
    )
    config.write_text(
        PROJECT + function + '\n[vault]\nSECRET = "one"\n\n[[mocks]]\n'
        'url = "https://mocked.example/*"\njson = { v = 1 }\n'
    )
    dev.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith("pfunc.toml") and e["ok"])
    path = "/v1/blocks/sub-key/sub-c-t/secret"
    assert json.loads(dev.request("GET", path)[2]) == {"s": "one", "m": {"v": 1}}
    config.write_text(
        PROJECT.replace("timeout = 1", "timeout = 4") + function + '\n[vault]\nSECRET = "two"\n'
        '\n[[mocks]]\nurl = "https://mocked.example/*"\njson = { v = 2 }\n'
    )
    reloaded = dev.wait_for(
        lambda e: e["type"] == "reload" and e["file"].endswith("pfunc.toml") and e["ok"]
    )
    assert any("[limits] changed" in warning for warning in reloaded["warnings"])
    assert json.loads(dev.request("GET", path)[2]) == {"s": "two", "m": {"v": 2}}
    config.write_text(PROJECT)
    dev.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith("pfunc.toml") and e["ok"])


def test_a_deleted_handler_is_said_and_its_last_version_keeps_serving(dev):
    handler = dev.folder / "echo.js"
    handler.write_text("export default (request, response) => response.send('kept');")
    dev.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith("echo.js") and e["ok"])
    handler.unlink()
    gone = dev.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith("echo.js"))
    assert gone["ok"] is False and gone["serving"] is True
    assert "does not exist" in gone["error"]
    assert _echo_text(dev) == "kept"
    handler.write_text("export default (request, response) => response.send('back');")
    dev.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith("echo.js") and e["ok"])
    assert _echo_text(dev) == "back"


# --- intervals ----------------------------------------------------------------------------------


def test_interval_functions_run_on_their_schedule(tmp_path):
    make_ticking_project(tmp_path)
    server = InProcessDev(tmp_path, intervals=True)
    try:
        ticks = [
            server.wait_for(
                lambda e: e["type"] == "execution" and e["function"] == "tick", timeout=4
            )
            for _ in range(2)
        ]
        assert all(t["outcome"] == "ok" and t["event"] == "on-interval" for t in ticks)
    finally:
        server.stop()


def test_pfunc_kv_works_while_the_server_runs(dev):
    for _ in range(3):
        assert json.loads(dev.request("GET", "/v1/blocks/sub-key/sub-c-t/count")[2])["n"] >= 1
    changed = run_cli("kv", "incr", "hits", "100", cwd=dev.folder)
    assert changed.code == 0 and changed.stdout.strip() == "103"
    assert json.loads(dev.request("GET", "/v1/blocks/sub-key/sub-c-t/count")[2]) == {"n": 104}


def test_a_request_in_flight_during_a_reload_does_not_bring_the_old_code_back(dev, gate):
    handler = dev.folder / "echo.js"
    handler.write_text(
        'const xhr = require("xhr");\n'
        "export default async (request, response) => {\n"
        f'  await xhr.fetch("{gate.url}");  // held open until the reload is done\n'
        "  return response.send('old');\n"
        "};\n"
    )
    dev.wait_for(lambda e: e["type"] == "reload" and e["ok"])
    answers: list[str] = []
    slow = threading.Thread(target=lambda: answers.append(_echo_text(dev)))
    slow.start()
    assert gate.reached.wait(10)  # the old code is mid-execution now
    handler.write_text("export default (request, response) => response.send('new');")
    dev.wait_for(lambda e: e["type"] == "reload" and e["ok"])
    gate.opened.set()
    slow.join(10)
    assert answers == ["old"]  # the race happened: that request ran the old code
    assert [_echo_text(dev) for _ in range(5)] == ["new"] * 5


@pytest.mark.subprocess
def test_pfunc_init_scaffolds_a_project_that_dev_serves_at_once(tmp_path):
    folder = tmp_path / "my-app"
    created = subprocess.run(
        [sys.executable, "-m", "pfunc", "init", str(folder)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert created.returncode == 0
    for name in (
        "pfunc.toml",
        "handlers/messages.js",
        "handlers/api.js",
        "tests/messages.test.toml",
        "tests/api.test.toml",
        "README.md",
    ):
        assert (folder / name).is_file()
    again = subprocess.run(
        [sys.executable, "-m", "pfunc", "init", str(folder)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert again.returncode == 2 and "would overwrite" in again.stderr
    server = DevProcess(folder, "--no-intervals")
    try:
        published = server.request(
            "POST",
            "/publish/pub-c-my-app/sub-c-my-app/0/chat.room/0",
            json.dumps({"user": "ada", "text": " hi "}).encode(),
        )
        assert published[0] == 200
        status, _, body = server.request(
            "GET", "/v1/blocks/sub-key/sub-c-my-app/api/messages?user=ada"
        )
        assert (status, json.loads(body)) == (200, {"user": "ada", "messages": 1})
    finally:
        server.stop()


def test_functions_can_be_triggered_from_the_console(dev):
    dev.type("run count")
    counted = dev.wait_for(lambda e: e["type"] == "execution" and e["function"] == "count")
    assert counted["outcome"] == "response"
    dev.type('publish chat.room {"text": "typed"}')
    shouted = dev.wait_for(lambda e: e["type"] == "execution" and e["function"] == "shout")
    assert shouted["outcome"] == "ok" and shouted["channel"] == "chat.room"
    # a publish no function runs on still says what became of it
    dev.type('publish news {"text": "plain"}')
    sent = dev.wait_for(lambda e: e["type"] == "console-published")
    assert sent["channel"] == "news" and sent["timetoken"] and sent["dropped"] is None
    dev.type("dance")
    refused = dev.wait_for(lambda e: e["type"] == "console-error")
    assert "run NAME [JSON]" in refused["error"]
    dev.type("run nobody")
    missing = dev.wait_for(lambda e: e["type"] == "console-error")
    assert "no function named 'nobody'" in missing["error"]
    # A channel no client could publish on is refused, as pfunc run refuses it.
    dev.type('run shout {"channel": "a,b"}')
    odd = dev.wait_for(lambda e: e["type"] == "console-error")
    assert odd["error"].startswith("channel 'a,b':"), odd
    # Bytes that are not UTF-8 are said: they reached handlers as lone surrogates, and
    # the web console's stream failed on them from then on.
    dev.type('run shout {"message": "caf\udce9"}')
    bytes_said = dev.wait_for(lambda e: e["type"] == "console-error")
    assert bytes_said["error"] == "the line is not UTF-8 text; type it as UTF-8"
    assert dev.request("GET", "/pfunc/console/functions")[0] == 200
    dev.type("x" * 300)
    long_line = dev.wait_for(lambda e: e["type"] == "console-error")
    assert long_line["command"] == "x" * 197 + "..."
    dev.type("run " + "n" * 5000)  # its error names it too: clipped as well
    long_name = dev.wait_for(lambda e: e["type"] == "console-error")
    assert len(long_name["error"]) == 1000 and long_name["error"].endswith("...")


def test_presence_timeout_after_the_heartbeat_period(dev):
    status, _, _ = dev.request("GET", "/v2/subscribe/sub-c-t/lobby/0?tt=0&uuid=zed&heartbeat=1")
    assert status == 200
    joined = dev.wait_for(lambda e: e["type"] == "execution" and e["function"] == "presence")
    assert joined["outcome"] == "ok"
    timed_out = dev.wait_for(
        lambda e: e["type"] == "execution" and e["function"] == "presence", timeout=5
    )
    assert timed_out["outcome"] == "ok"
    # The presence handler stored the last event it saw: the timeout.
    changed = run_cli("kv", "get", "last-presence", cwd=dev.folder)
    last = json.loads(changed.stdout)
    assert (last["action"], last["uuid"], last["occupancy"]) == ("timeout", "zed", 0)


def test_a_heartbeat_that_changes_the_state_announces_it_once(dev):
    beat = "/v2/presence/sub-key/sub-c-t/channel/lobby/heartbeat?heartbeat=60&uuid=sam&state="
    mood = urllib.parse.quote(json.dumps({"lobby": {"mood": "calm"}}))
    assert dev.request("GET", beat + mood)[0] == 200
    dev.wait_for(lambda e: e["type"] == "execution" and e["function"] == "presence")  # join
    changed = urllib.parse.quote(json.dumps({"lobby": {"mood": "busy"}}))
    assert dev.request("GET", beat + changed)[0] == 200
    assert dev.request("GET", beat + changed)[0] == 200  # the same again: no event
    dev.wait_for(lambda e: e["type"] == "execution" and e["function"] == "presence")
    last = json.loads(run_cli("kv", "get", "last-presence", cwd=dev.folder).stdout)
    assert (last["action"], last["uuid"], last["state"]) == (
        "state-change",
        "sam",
        {"mood": "busy"},
    )
    with pytest.raises(AssertionError):  # the repeated state announced nothing
        dev.wait_for(
            lambda e: e["type"] == "execution" and e["function"] == "presence", timeout=1.5
        )


def test_a_heartbeats_state_keyed_by_group_is_each_member_channels(dev):
    """The SDKs key state by channel and by group (setState({channelGroups})): a group's
    is its member channels' state, not a state named after the group; and a state of a
    channel this request does not name is no state of the ones it does."""
    groups = "/v1/channel-registration/sub-key/sub-c-t/channel-group/grp?add=room.a"
    assert dev.request("GET", groups)[0] == 200
    state = urllib.parse.quote(json.dumps({"grp": {"mood": "x"}, "elsewhere": {"n": 1}}))
    beat = (
        f"/v2/presence/sub-key/sub-c-t/channel/,/heartbeat?uuid=u1&channel-group=grp&state={state}"
    )
    assert dev.request("GET", beat)[0] == 200
    _, _, body = dev.request("GET", "/v2/presence/sub-key/sub-c-t/channel/room.a/uuid/u1")
    assert json.loads(body)["payload"] == {"mood": "x"}


def test_a_long_poll_keeps_the_heartbeat_period_the_client_announced(dev):
    """The SDKs' event engine (JS SDK 11's default) sends its presenceTimeout on
    /heartbeat only; its subscribe long-polls carry none. Each long-poll had reset the
    user's expiry to the 300 s default, so a closed tab stayed present for 5 minutes."""
    import socket

    _, _, body = dev.request("GET", "/v2/subscribe/sub-c-t/lobby/0?tt=0&uuid=eve")
    handshake = json.loads(body)["t"]["t"]
    dev.wait_for(lambda e: e["type"] == "execution" and e["function"] == "presence")
    beat = "/v2/presence/sub-key/sub-c-t/channel/lobby/heartbeat?heartbeat=1&uuid=eve"
    assert dev.request("GET", beat)[0] == 200
    poll = f"{dev.base}/v2/subscribe/sub-c-t/lobby/0?tt={handshake}&uuid=eve"
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        urllib.request.urlopen(poll, timeout=0.3)  # the long-poll, no heartbeat: then gone
    timed_out = dev.wait_for(
        lambda e: e["type"] == "execution" and e["function"] == "presence", timeout=5
    )
    assert timed_out["outcome"] == "ok"
    last = json.loads(run_cli("kv", "get", "last-presence", cwd=dev.folder).stdout)
    assert (last["action"], last["uuid"]) == ("timeout", "eve")


@pytest.mark.subprocess
def test_no_intervals_turns_interval_functions_off(tmp_path):
    make_ticking_project(tmp_path)
    server = DevProcess(tmp_path, "--no-intervals")
    try:
        # Twice the function's 1 s interval: it would have run by now.
        with pytest.raises(AssertionError):
            server.wait_for(
                lambda e: e["type"] == "execution" and e["function"] == "tick", timeout=2
            )
    finally:
        server.stop()
