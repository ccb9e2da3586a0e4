"""`pfunc dev`'s edges, driven over HTTP and by the official PubNub Python SDK: presence at
scale, paths and CORS, what a stop waits for, `--record`, handlers saved again, the
wire details of responses and subscribers. tests/test_dev_server.py has the main paths."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.dev_harness import (
    Collector,
    DevProcess,
    InProcessDev,
    make_project,
    sdk,
)


def test_a_subscribe_to_700_channels_runs_their_presence_functions_with_bounded_threads(tmp_path):
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-f"\npublish_key = "pub-c-f"\n'
        '[[functions]]\nname = "seen"\nfile = "seen.js"\nevent = "after-presence"\n'
        'channels = ["room.*"]\n'
    )
    (tmp_path / "seen.js").write_text(
        'const db = require("kvstore");\n'
        "export default async (request) => {\n"
        '  await db.incrCounter("joins");\n'
        "  return request.ok();\n"
        "};\n"
    )
    server = InProcessDev(tmp_path)
    try:
        before = threading.active_count()
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], threading.active_count())
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        channels = ",".join(f"room.{n}" for n in range(700))
        status, _, _ = server.request("GET", f"/v2/subscribe/sub-c-f/{channels}/0?tt=0&uuid=fan")
        assert status == 200
        executed = [
            server.wait_for(lambda e: e["type"] == "execution", timeout=30) for _ in range(700)
        ]
        done.set()
        sampler.join()
        assert {e["outcome"] for e in executed} == {"ok"}
        # Threads stay bounded (8 executions at a time, plus threads of sandboxes still
        # winding down and the sampler), not one per channel as before; once the burst is
        # over, only the sandboxes kept for reuse remain.
        assert peak[0] - before <= 2 * 8

        def sandbox_threads() -> int:
            return sum(t.name == "pfunc-sandbox" for t in threading.enumerate())

        deadline = time.monotonic() + 10
        while sandbox_threads() > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sandbox_threads() <= 1  # idle ones are closed; one is kept warm
        _, _, body = server.request("POST", "/pfunc/run/seen", b"{}")
        assert json.loads(body)["outcome"] == "ok"
    finally:
        server.stop()
    joins = run_cli("kv", "counters", "--json", cwd=tmp_path)
    assert {"key": "joins", "value": 701} in json.loads(joins.stdout)


def test_a_wildcard_path_gives_the_handler_the_rest_of_the_path(tmp_path):
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-w"\n'
        '[[functions]]\nname = "root"\nfile = "v2.js"\nevent = "on-request"\npath = "api"\n'
        '[[functions]]\nname = "s"\nfile = "s.js"\nevent = "on-request"\npath = "session/*"\n'
        '[[functions]]\nname = "t"\nfile = "s.js"\nevent = "on-request"\npath = "v1/tasks*"\n'
        '[[functions]]\nname = "i"\nfile = "s.js"\nevent = "on-request"\npath = "api/*/items"\n'
        '[[functions]]\nname = "j"\nfile = "s.js"\nevent = "on-request"\n'
        'path = "shop/*/items/*"\n'
        # Written after paths that cover theirs: served all the same, by the one that
        # says most (they had never been reached).
        '[[functions]]\nname = "v2"\nfile = "v2.js"\nevent = "on-request"\npath = "session/v2"\n'
        '[[functions]]\nname = "x"\nfile = "v2.js"\nevent = "on-request"\npath = "api/7/items"\n'
        '[[functions]]\nname = "m"\nfile = "s.js"\nevent = "on-request"\npath = "session/*/*/*/*"\n'
    )
    (tmp_path / "s.js").write_text(
        "export default (request, response) => response.send(request.path);"
    )
    (tmp_path / "v2.js").write_text(
        "export default (request, response) => response.send('v2 ' + request.path);"
    )
    server = InProcessDev(tmp_path)
    try:
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-w/session/login")[2] == "/login"
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-w/session/a/b")[2] == "/a/b"
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-w/session")[2] == "/"
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-w/sessions")[0] == 404
        # A * within the path: the rest after its literal prefix (it had been "/", so a
        # single-router handler parsing ids from request.path found none).
        routed = server.request("GET", "/v1/blocks/sub-key/sub-c-w/v1/tasks/123/comments")
        assert routed[2] == "/123/comments"
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-w/api/42/items")[2] == "/42/items"
        # A trailing /* also serves the path without it, as session/* serves session.
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-w/shop/7/items")[2] == "/7/items"
        shop = server.request("GET", "/v1/blocks/sub-key/sub-c-w/shop/7/items/3")
        assert shop[2] == "/7/items/3"
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-w/session/v2/x")[2] == "v2 /x"
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-w/api/7/items")[2] == "v2 /"
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-w/api/8/items")[2] == "/8/items"
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-w/api/other")[2] == "v2 /other"
        # wildcards say nothing: session/v2 says more than session/*/*/*/*
        deep = server.request("GET", "/v1/blocks/sub-key/sub-c-w/session/v2/a/b/c")
        assert deep[2] == "v2 /a/b/c"
    finally:
        server.stop()


def test_cors_preflight_and_origin_on_every_answer(dev):
    status, headers, _ = dev.request(
        "OPTIONS",
        "/publish/pub-c-t/sub-c-t/0/chat.a/0/%22x%22",
        headers={
            "Origin": "http://app.test",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "http://app.test"
    assert "GET" in headers["Access-Control-Allow-Methods"]
    assert headers["Access-Control-Allow-Headers"] == "content-type"
    # A page's fetch(url, {credentials: "include"}) with a JSON body is preflighted: the
    # preflight allows credentials, and the answer's own headers decide (an on-request
    # handler that sets Access-Control-Allow-Credentials is then usable from the page).
    assert headers["Access-Control-Allow-Credentials"] == "true"
    for path in ("/time/0", "/v2/history/sub-key/sub-c-t/channel/x", "/nowhere"):
        _, headers, _ = dev.request("GET", path, headers={"Origin": "http://app.test"})
        assert headers["Access-Control-Allow-Origin"] == "http://app.test", path


def test_an_endpoint_not_emulated_says_so_in_pubnubs_shape_and_in_the_log(dev):
    status, headers, body = dev.request("GET", "/v2/auth/audit/sub-key/sub-c-t")
    assert status == 400 and headers["Content-Type"].startswith("application/json")
    answer = json.loads(body)
    assert answer["error"] is True and answer["status"] == 400
    assert answer["message"].startswith("not emulated by pfunc dev: Access Manager audit")
    logged = dev.wait_for(lambda e: e["type"] == "not-emulated")
    assert logged["what"] == "Access Manager audit (v2)"
    status, _, body = dev.request("GET", "/v1/unknown/thing")
    assert status == 404 and "not a PubNub endpoint" in json.loads(body)["message"]
    # Older SDKs' endpoints are PubNub's too: not emulated, never a misleading 404.
    for path in (
        "/subscribe/sub-c-t/chat/0/0",
        "/history/sub-c-t/chat/0/10",
        "/v2/presence/sub_key/sub-c-t/channel/chat",
        "/v1/auth/grant/sub-key/sub-c-t",
    ):
        status, _, body = dev.request("GET", path)
        assert status == 400 and "not emulated by pfunc dev" in json.loads(body)["message"], path


@pytest.mark.subprocess
def test_the_ready_line_carries_the_sdk_settings(tmp_path):
    make_project(tmp_path)
    server = DevProcess(tmp_path, "--no-intervals")
    server.stop()
    assert server.ready["sdk"] == {
        "origin": f"127.0.0.1:{server.port}",
        "ssl": False,
        "publishKey": "pub-c-t",
        "subscribeKey": "sub-c-t",
    }


def test_the_python_sdks_fire_reaches_functions_but_no_subscriber(dev):
    from pubnub.pnconfiguration import PNConfiguration  # noqa: F401

    reader, writer = sdk(dev, "reader"), sdk(dev, "writer")
    collector = Collector()
    reader.add_listener(collector.listener)
    reader.subscribe().channels(["chat.fire"]).execute()
    assert collector.connected.wait(5)
    writer.fire().channel("chat.fire").message({"text": "fired"}).sync()
    writer.publish().channel("chat.fire").message({"text": "after"}).sync()
    assert collector.wait(lambda: collector.messages)
    assert collector.messages == [("chat.fire", {"text": "AFTER"})]
    reader.stop()


def test_above_announce_max_joins_come_as_interval_events(tmp_path):
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-i"\npublish_key = "pub-c-i"\n'
        "[presence]\nannounce_max = 2\ninterval = 1\n"
        '[[functions]]\nname = "seen"\nfile = "seen.js"\nevent = "after-presence"\n'
        'channels = ["hall"]\n'
    )
    (tmp_path / "seen.js").write_text(
        'const db = require("kvstore");\n'
        "export default async (request) => {\n"
        '  await db.incrCounter("seen:" + request.message.action);\n'
        "  return request.ok();\n"
        "};\n"
    )
    server = InProcessDev(tmp_path)
    try:
        _, _, first = server.request("GET", "/v2/subscribe/sub-c-i/hall-pnpres/0?tt=0&uuid=w")
        cursor = json.loads(first)["t"]["t"]
        for user in ("u1", "u2", "u3", "u4"):
            server.request("GET", f"/v2/subscribe/sub-c-i/hall/0?tt=0&uuid={user}")
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while not any(e["action"] == "interval" for e in events) and time.monotonic() < deadline:
            _, _, body = server.request(
                "GET", f"/v2/subscribe/sub-c-i/hall-pnpres/0?tt={cursor}&uuid=w"
            )
            answer = json.loads(body)
            cursor = answer["t"]["t"]
            events += [envelope["d"] for envelope in answer["m"]]
        actions = [(e["action"], e.get("uuid")) for e in events]
        assert actions[:2] == [("join", "u1"), ("join", "u2")]
        interval = next(e for e in events if e["action"] == "interval")
        assert interval["occupancy"] == 4 and interval["join"] == ["u3", "u4"]
        for _ in range(3):  # two joins and the interval, each run through the function
            server.wait_for(lambda e: e["type"] == "execution" and e["function"] == "seen")
    finally:
        server.stop()
    counters = run_cli("kv", "counters", "--json", cwd=tmp_path)
    seen = {entry["key"]: entry["value"] for entry in json.loads(counters.stdout)}
    assert seen["seen:join"] == 2 and seen["seen:interval"] >= 1


@pytest.mark.subprocess
def test_ctrl_c_stops_the_server_while_a_subscriber_waits(tmp_path):
    make_project(tmp_path)
    # A stop waits for requests in progress up to the time limit: a minute here, so a
    # long-poll left waiting would hold it past the wait below.
    project = tmp_path / "pfunc.toml"
    project.write_text(project.read_text().replace("timeout = 1\n", "timeout = 60\n"))
    # Long-polls that would wait two minutes for a message: on a channel, and on a channel
    # group with no channel (it waits on no channel at all).
    server = DevProcess(tmp_path, "--no-intervals", "--subscribe-timeout", "120")
    _, _, first = server.request("GET", "/v2/subscribe/sub-c-t/chat.a/0?tt=0")
    cursor = json.loads(first)["t"]["t"]
    answered: list[int] = []
    polls = [
        threading.Thread(target=lambda path=path: answered.append(server.request("GET", path)[0]))
        for path in (
            f"/v2/subscribe/sub-c-t/chat.a/0?tt={cursor}",
            f"/v2/subscribe/sub-c-t/,/0?channel-group=empty&tt={cursor}",
        )
    ]
    for poll in polls:
        poll.start()
    time.sleep(0.3)  # the long-polls are waiting now
    server.process.send_signal(signal.SIGINT)
    # Ctrl-C answers the waiting long-polls and stops at once (in ~0.1 s), instead of
    # waiting out their 120 s, or the 10 s after which a poll checks its client is there.
    assert server.process.wait(timeout=8) == 0
    for poll in polls:
        poll.join(15)
    assert answered == [200, 200]


def test_numbers_in_queries_that_no_store_can_hold_are_4xx(dev):
    base = "/v2/history/sub-key/sub-c-t/channel/chat.a"
    for query in ("?count=%C2%B2", "?start=99999999999999999999", "?end=x"):
        status, _, body = dev.request("GET", base + query)
        assert status < 500, (query, body)
    status, _, _ = dev.request(
        "GET", "/v1/message-actions/sub-c-t/channel/chat.a?limit=%C2%B2&start=99999999999999999999"
    )
    assert status == 400
    status, _, _ = dev.request(
        "GET", "/v2/presence/sub-key/sub-c-t/channel/chat.a/heartbeat?heartbeat=1e400&uuid=u"
    )
    assert status == 200
    status, _, body = dev.request(
        "GET", "/publish/pub-c-t/sub-c-t/0/chat.a/0/%7B%22text%22%3A%22t%22%7D?ttl=1e300"
    )
    assert status == 200, body


def test_wildcard_presence_follows_pubnubs_channel_names(dev):
    _, _, first = dev.request("GET", "/v2/subscribe/sub-c-t/room.*,room.*-pnpres/0?tt=0&uuid=w")
    cursor = json.loads(first)["t"]["t"]
    dev.request("GET", "/v2/subscribe/sub-c-t/room.a/0?tt=0&uuid=visitor")
    _, _, body = dev.request(
        "GET", f"/v2/subscribe/sub-c-t/room.*,room.*-pnpres/0?tt={cursor}&uuid=w"
    )
    envelopes = json.loads(body)["m"]
    joins = [e for e in envelopes if e["c"] == "room.a-pnpres"]
    assert joins and all(e["b"] == "room.*-pnpres" for e in joins)


def test_a_function_whose_file_is_missing_is_a_warning_at_start(tmp_path):
    make_project(tmp_path)
    (tmp_path / "spin.js").unlink()
    server = InProcessDev(tmp_path)
    try:
        status, _, body = server.request("GET", "/v1/blocks/sub-key/sub-c-t/spin")
    finally:
        server.stop()
    assert [w for w in server.ready["warnings"] if '"spin"' in w] == [
        'function "spin": spin.js cannot be read (missing, or not UTF-8 text); its '
        "executions will fail until it can"
    ]
    assert status == 500 and "does not exist" in json.loads(body)["message"]


@pytest.mark.subprocess
def test_dev_record_saves_scenarios_that_pfunc_test_passes(tmp_path: Path):
    """`pfunc dev --record FILE`: each execution a client caused becomes a scenario, and
    the file runs green under `pfunc test`. A file outside the project is refused at
    start (its scenarios name the project's functions), one line, exit 2."""
    (tmp_path / "project").mkdir()
    folder = make_project(tmp_path / "project")
    outside = run_cli("dev", "--record", str(tmp_path / "elsewhere.test.toml"), cwd=folder)
    assert outside.code == 2 and "must be inside the project" in outside.stderr
    assert "Traceback" not in outside.stderr
    server = DevProcess(folder, "--record", "tests/recorded.test.toml")
    try:
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-t/count")[0] == 200
        server.wait_for(lambda e: e["type"] == "recorded", timeout=15)
    finally:
        server.stop()
    run = run_cli("test", "tests/recorded.test.toml", cwd=folder)
    assert run.code == 0 and "1 passed, 0 failed" in run.stdout, run.stdout + run.stderr


@pytest.mark.subprocess
def test_dev_record_replays_off_the_servers_loop(tmp_path: Path):
    """--record replays each execution to check that it repeats; the replay of a runaway
    runs to its limit. Other requests are served meanwhile: the replay ran on the
    server's own loop, which it held (and Ctrl-C with it) to the limit."""
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-rr"\npublish_key = "pub-c-rr"\n\n'
        "[limits]\ntimeout = 2\n\n"
        '[[functions]]\nname = "spin"\nfile = "spin.js"\nevent = "on-request"\npath = "spin"\n\n'
        '[[functions]]\nname = "ok"\nfile = "ok.js"\nevent = "on-request"\npath = "ok"\n'
    )
    (tmp_path / "spin.js").write_text("export default () => { for (;;) {} };\n")
    (tmp_path / "ok.js").write_text("export default (request, response) => response.send('ok');\n")
    server = DevProcess(tmp_path, "--no-intervals", "--record", "tests/rec.test.toml")
    try:
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-rr/spin")[0] == 503
        # The runaway's replay is under way now, for the next 2 s.
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-rr/ok")[0] == 200
        seen = []
        server.wait_for(lambda e: seen.append(e) or e.get("function") == "ok")
        assert not [e for e in seen if e["type"] in ("recorded", "record-error")], seen
        replayed = server.wait_for(lambda e: e["type"] in ("recorded", "record-error"))
        assert replayed["type"] == "recorded" and replayed["name"].startswith("spin:")
    finally:
        server.stop()


# pfunc dev started as a system whose threads get a small stack unless they ask (musl's
# 128 KiB; here glibc's default, the stack limit at start, 1 MiB), its main thread 8 MiB.
SMALL_THREAD_STACKS = (
    "import resource, runpy, sys\n"
    "resource.setrlimit(resource.RLIMIT_STACK, (8 << 20, resource.RLIM_INFINITY))\n"
    "sys.argv = ['pfunc', *sys.argv[1:]]\n"
    "runpy.run_module('pfunc', run_name='__main__')\n"
)


@pytest.mark.subprocess
def test_dev_record_replays_deep_recursion_on_a_thread_with_the_engines_stack(tmp_path: Path):
    """The replay of a deeply recursive handler runs on a thread given the stack QuickJS
    needs, as the sandboxes' threads are: on the default one of such a system, the
    replay ended the whole server (SIGSEGV)."""
    import resource
    import subprocess
    import sys

    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-d"\npublish_key = "pub-c-d"\n\n'
        '[[functions]]\nname = "deep"\nfile = "deep.js"\nevent = "on-request"\npath = "deep"\n'
    )
    (tmp_path / "deep.js").write_text(
        "function f(n) { return n === 0 ? 0 : 1 + f(n - 1); }\n"
        "export default (request, response) => response.send({ depth: f(600) });\n"
    )
    if resource.getrlimit(resource.RLIMIT_STACK)[1] != resource.RLIM_INFINITY:
        pytest.skip("the stack limit's hard limit is set: cannot give the main thread 8 MiB")

    def small_stacks() -> None:
        resource.setrlimit(resource.RLIMIT_STACK, (1 << 20, resource.RLIM_INFINITY))

    dev = ["dev", "--port", "0", "--json", "--no-intervals", "--record", "tests/rec.test.toml"]
    server = subprocess.Popen(
        [sys.executable, "-c", SMALL_THREAD_STACKS, *dev],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=small_stacks,
    )
    try:
        assert server.stdout is not None
        events = (json.loads(line) for line in server.stdout)
        port = next(e for e in events if e["type"] == "ready")["port"]
        url = f"http://127.0.0.1:{port}/v1/blocks/sub-key/sub-c-d/deep"
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert json.loads(answer.read()) == {"depth": 600}
        recorded = next(e for e in events if e["type"] in ("recorded", "record-error"))
        assert recorded["type"] == "recorded", recorded
        assert server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_an_on_request_response_is_sent_in_the_charset_its_content_type_names(tmp_path):
    """The handler's content type goes out as it wrote it, and its text in the charset
    it names (UTF-8 when it names none, or one nobody knows)."""
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-cs"\npublish_key = "pub-c-cs"\n\n'
        '[[functions]]\nname = "text"\nfile = "text.js"\nevent = "on-request"\npath = "text"\n'
    )
    (tmp_path / "text.js").write_text(
        "export default (request, response) => {\n"
        '  response.headers["content-type"] = request.query.type;\n'
        '  return response.send("caf\\u00e9");\n'
        "};\n"
    )
    server = InProcessDev(tmp_path)
    try:
        answers = {}
        for kind in ("text/plain", "text/plain; charset=latin1", "text/plain; charset=nope"):
            url = "/v1/blocks/sub-key/sub-c-cs/text?type=" + urllib.parse.quote(kind)
            request = urllib.request.Request(server.base + url)
            with urllib.request.urlopen(request, timeout=10) as response:
                answers[kind] = (response.headers["content-type"], response.read())
    finally:
        server.stop()
    assert answers == {
        "text/plain": ("text/plain", "café".encode()),
        "text/plain; charset=latin1": ("text/plain; charset=latin1", "café".encode("latin-1")),
        "text/plain; charset=nope": ("text/plain; charset=nope", "café".encode()),
    }


def test_a_handlers_response_headers_cannot_break_the_connection(tmp_path):
    """Headers that frame the body are the server's own (a handler's content-length or
    transfer-encoding is ignored, with a warning), and a header that cannot be sent (a
    bad name, a line break in its value) ends the execution as an error: on one
    keep-alive connection every answer stays whole and in step."""
    import http.client

    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-hd"\npublish_key = "pub-c-hd"\n\n'
        '[[functions]]\nname = "hd"\nfile = "hd.js"\nevent = "on-request"\npath = "hd"\n'
    )
    (tmp_path / "hd.js").write_text(
        "export default (request, response) => {\n"
        "  response.headers[request.query.name] = request.query.value;\n"
        '  return response.send("body-" + request.query.name);\n'
        "};\n"
    )
    cases = [
        ("content-length", "1"),
        ("Transfer-Encoding", "chunked"),
        ("connection", "close"),
        ("bad name", "v"),
        ("x-split", "a\r\nx-injected: 1"),
        ("x-fine", "caf\u00e9"),
        ("x-wide", "\u20ac"),
    ]
    server = InProcessDev(tmp_path)
    try:
        port = int(server.base.rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        answers = []
        for name, value in cases:
            query = urllib.parse.urlencode({"name": name, "value": value})
            connection.request("GET", f"/v1/blocks/sub-key/sub-c-hd/hd?{query}")
            response = connection.getresponse()
            answers.append((response.status, response.read(), response.getheader("x-injected")))
        connection.close()
        warned = server.wait_for(
            lambda e: e["type"] == "execution" and "content-length" in str(e.get("warnings")),
            timeout=10,
        )
    finally:
        server.stop()
    assert [a[0] for a in answers] == [200, 200, 200, 500, 500, 200, 500]
    assert [a[1] for a in answers[:3]] == [
        b"body-content-length",
        b"body-Transfer-Encoding",
        b"body-connection",
    ]
    assert "not a valid HTTP header name" in json.loads(answers[3][1])["message"]
    assert "control character" in json.loads(answers[4][1])["message"]
    assert "past U+00FF" in json.loads(answers[6][1])["message"]
    assert answers[4][2] is None and answers[5][1] == b"body-x-fine"
    assert any("'content-length' is ignored" in warning for warning in warned["warnings"])


@pytest.mark.subprocess
def test_a_stop_waits_for_requests_in_progress_and_a_second_ctrl_c_cuts_it_short(tmp_path):
    """Ctrl-C lets requests in progress finish within their time limit, and says so when
    that takes a while; Ctrl-C again stops at once (exit 130), saying what was dropped."""
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-st"\npublish_key = "pub-c-st"\n\n'
        "[limits]\ntimeout = 8\n\n"
        '[[functions]]\nname = "spin"\nfile = "spin.js"\nevent = "on-request"\npath = "spin"\n'
    )
    (tmp_path / "spin.js").write_text("export default () => { for (;;) {} };\n")
    server = DevProcess(tmp_path)
    try:

        def spin() -> None:
            with contextlib.suppress(Exception):  # the connection ends with the server
                server.request("GET", "/v1/blocks/sub-key/sub-c-st/spin")

        spinning = threading.Thread(target=spin, daemon=True)
        spinning.start()
        time.sleep(0.5)  # the execution is under way
        server.process.send_signal(signal.SIGINT)
        server.wait_for(lambda e: e["type"] == "stopping", timeout=5)
        assert server.process.poll() is None  # still waiting for the execution
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=5) == 130
        assert server.wait_for(lambda e: e["type"] == "stopped", timeout=5)["forced"] is True
    finally:
        server.stop()


@pytest.mark.subprocess
def test_ctrl_c_as_soon_as_the_ready_line_is_read_stops_the_server_as_usual(tmp_path):
    """A script that starts pfunc dev, reads its ready line and stops it at once: the
    Ctrl-C used to reach asyncio's own handler before pfunc's, ending the server with
    "Aborted!" and 130 (a forced stop) instead of its usual stop."""
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-r"\npublish_key = "pub-c-r"\n\n'
        '[[functions]]\nname = "ok"\nfile = "ok.js"\nevent = "on-request"\npath = "ok"\n'
    )
    (tmp_path / "ok.js").write_text("export default (request, response) => response.send('ok');\n")
    for _ in range(3):
        server = DevProcess(tmp_path, "--no-intervals")
        try:
            server.process.send_signal(signal.SIGINT)
            assert server.process.wait(timeout=15) == 0
            assert server.wait_for(lambda e: e["type"] == "stopped").get("forced") is None
        finally:
            server.stop()


def test_a_clients_publish_is_answered_before_after_publish_functions_end(tmp_path, gate):
    """PubNub acknowledges a publish once the message is published; after-publish
    functions run on their own. Here the function is held at a gate until the answer
    has arrived, then completes normally (before, the answer waited for it to end, and
    the function timed out waiting for a gate the test could only open afterwards)."""
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-ap"\npublish_key = "pub-c-ap"\n\n'
        "[limits]\ntimeout = 5\n\n"
        '[[functions]]\nname = "audit"\nfile = "audit.js"\nevent = "after-publish"\n'
        'channels = ["audit"]\n'
    )
    (tmp_path / "audit.js").write_text(
        'const xhr = require("xhr");\n'
        "export default async (request) => {\n"
        f'  await xhr.fetch("{gate.url}");\n'
        "  return request.ok();\n"
        "};\n"
    )
    server = InProcessDev(tmp_path)
    try:
        status, _, body = server.request("GET", "/publish/pub-c-ap/sub-c-ap/0/audit/0/%22hi%22")
        assert status == 200 and json.loads(body)[:2] == [1, "Sent"]
        assert gate.reached.wait(10)  # the function is under way, held at the gate
        gate.opened.set()
        done = server.wait_for(lambda e: e["type"] == "execution", timeout=10)
    finally:
        server.stop()
    assert (done["function"], done["outcome"]) == ("audit", "ok")


def test_a_handler_saved_again_unchanged_keeps_its_module_state(dev):
    """`touch`, or an editor's save of an unchanged buffer: nothing to reload, so the warm
    instance keeps counting (it started again from 1)."""
    handler = dev.folder / "count.js"
    handler.write_text(
        "let n = 0;\nexport default (request, response) => response.send({ n: ++n });\n"
    )
    dev.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith("count.js") and e["ok"])

    def count() -> int:
        return json.loads(dev.request("GET", "/v1/blocks/sub-key/sub-c-t/count")[2])["n"]

    assert [count(), count()] == [1, 2]
    handler.write_text(handler.read_text())
    dev.wait_for(lambda e: e["type"] == "reload" and e["file"].endswith("count.js"))
    assert count() == 3


def test_a_handler_that_never_loaded_is_loaded_again_when_saved_unchanged(tmp_path):
    """A file broken from the start, saved again as it was, is tried again (and fails
    again, saying why): only code that loaded is left alone."""
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-nl"\npublish_key = "pub-c-nl"\n\n'
        '[[functions]]\nname = "cut"\nfile = "cut.js"\nevent = "on-request"\npath = "cut"\n'
    )
    handler = tmp_path / "cut.js"
    handler.write_text("export default (request, response) => response.send(;\n")
    server = InProcessDev(tmp_path)
    try:
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-nl/cut")[0] == 500
        handler.write_text(handler.read_text())
        again = server.wait_for(lambda e: e["type"] == "reload", timeout=10)
    finally:
        server.stop()
    assert again["ok"] is False and "SyntaxError" in json.dumps(again)


def test_saving_a_python_handler_again_loads_its_changed_helper_module(tmp_path):
    """Only the handler file is watched: saving it, even unchanged, is how a change to a
    module it imports from its folder loads."""
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-py"\npublish_key = "pub-c-py"\n\n'
        '[[functions]]\nname = "api"\nfile = "api.py"\nevent = "on-request"\npath = "api"\n'
    )
    (tmp_path / "helper.py").write_text("VERSION = 'v1'\n")
    handler = tmp_path / "api.py"
    handler.write_text(
        "import helper\n\ndef handler(request, response):\n    return response.send(helper.VERSION)\n"
    )
    server = InProcessDev(tmp_path)
    try:
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-py/api")[2] == "v1"
        (tmp_path / "helper.py").write_text("VERSION = 'v2'\n")
        handler.write_text(handler.read_text())
        assert server.wait_for(lambda e: e["type"] == "reload", timeout=10)["ok"]
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-py/api")[2] == "v2"
    finally:
        server.stop()


@pytest.mark.subprocess
def test_a_stop_lets_after_publish_functions_end_and_record_saves_them(tmp_path):
    """An after-publish function still running when Ctrl-C comes ends first, is logged,
    and --record saves it as a scenario, before the last line."""
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-rs"\npublish_key = "pub-c-rs"\n\n'
        "[limits]\ntimeout = 8\n\n"
        '[[functions]]\nname = "audit"\nfile = "audit.js"\nevent = "after-publish"\n'
        'channels = ["audit"]\n'
    )
    (tmp_path / "audit.js").write_text(  # ~0.5 s of work, the same when replayed
        "export default (request) => {\n"
        "  let x = 0;\n"
        "  for (let i = 0; i < 1e7; i++) x += i;\n"
        "  return request.ok();\n"
        "};\n"
    )
    server = DevProcess(tmp_path, "--record", "recorded.test.toml")
    try:
        status, _, _ = server.request("GET", "/publish/pub-c-rs/sub-c-rs/0/audit/0/%22hi%22")
        assert status == 200  # answered while the function runs
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=20) == 0
        seen = []
        with contextlib.suppress(AssertionError):
            while True:
                seen.append(server.wait_for(lambda e: True, timeout=2)["type"])
    finally:
        server.stop()
    assert seen[-1] == "stopped" and "recorded" in seen, seen
    assert seen.index("execution") < seen.index("recorded")
    assert "after-publish" in (tmp_path / "recorded.test.toml").read_text()


def test_a_subscriber_gets_its_own_join_on_its_first_long_poll(dev):
    """As PubNub's recorded exchange (python asyncio join_leave, its first long-poll):
    the handshake's timetoken comes before the join the subscribe announces (the join
    sat before it, and no subscriber ever saw its own)."""
    path = "/v2/subscribe/sub-c-t/room9,room9-pnpres/0?uuid=listener&heartbeat=60"
    status, _, body = dev.request("GET", path + "&tt=0")
    assert status == 200
    handshake = json.loads(body)["t"]["t"]
    status, _, body = dev.request("GET", f"{path}&tt={handshake}")
    assert status == 200
    payloads = [envelope["d"] for envelope in json.loads(body)["m"]]
    assert [(p["action"], p["uuid"], p["occupancy"]) for p in payloads] == [("join", "listener", 1)]


def test_a_subscriber_sees_what_after_publish_functions_publish_during_a_stop(tmp_path):
    """At a stop, long-polls (and the console's live view) end only once the functions
    requests started have ended: a message one of them publishes still reaches the
    subscriber (its poll was ended first, empty)."""
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-sp"\npublish_key = "pub-c-sp"\n\n'
        '[[functions]]\nname = "relay"\nfile = "relay.js"\nevent = "after-publish"\n'
        'channels = ["in"]\n'
    )
    (tmp_path / "relay.js").write_text(
        'const pubnub = require("pubnub");\n'
        "export default async (request) => {\n"
        "  let x = 0;\n"
        "  for (let i = 0; i < 5e6; i++) x += i;  // a while, so the stop begins first\n"
        '  await pubnub.publish({ channel: "out", message: { relayed: true } });\n'
        "  return request.ok();\n"
        "};\n"
    )
    server = InProcessDev(tmp_path)
    polled: dict[str, Any] = {}
    try:
        path = "/v2/subscribe/sub-c-sp/out/0?uuid=watcher"
        handshake = json.loads(server.request("GET", path + "&tt=0")[2])["t"]["t"]

        def poll() -> None:
            polled["answer"] = server.request("GET", f"{path}&tt={handshake}")

        polling = threading.Thread(target=poll)
        polling.start()
        messages = server.server.state.messages
        deadline = time.monotonic() + 30  # the poll is waiting at the server before the publish
        while not messages._waiting and time.monotonic() < deadline:
            time.sleep(0.01)
        assert messages._waiting, "the poll never started waiting"
        assert server.request("GET", "/publish/pub-c-sp/sub-c-sp/0/in/0/%22go%22")[0] == 200
    finally:
        server.stop()
    polling.join(timeout=10)
    status, _, body = polled["answer"]
    assert status == 200
    assert [envelope["d"] for envelope in json.loads(body)["m"]] == [{"relayed": True}]


def test_a_group_subscriber_waiting_gets_a_channel_added_to_its_group(dev, monkeypatch):
    """A waiting group poll is woken by the group's change (not by every delivery, which
    made 200 idle group subscribers cut publishing from 5,500/s to 950/s)."""
    # Polls here wait 60 s, and look at their client as seldom: only being told of the
    # change answers this one in time.
    from pfunc.server import subscribers

    dev.server.state.subscribe_timeout = 60
    monkeypatch.setattr(subscribers, "GONE_CHECK_EVERY", 60.0)
    base = "/v1/channel-registration/sub-key/sub-c-t/channel-group/waiting"
    assert dev.request("GET", base + "?add=g.first")[0] == 200
    _, _, body = dev.request("GET", "/v2/subscribe/sub-c-t/,/0?channel-group=waiting&tt=0&uuid=w")
    timetoken = json.loads(body)["t"]["t"]
    answers: queue.Queue = queue.Queue()

    def poll() -> None:
        path = f"/v2/subscribe/sub-c-t/,/0?channel-group=waiting&tt={timetoken}&uuid=w"
        answers.put(dev.request("GET", path))

    threading.Thread(target=poll, daemon=True).start()
    messages = dev.server.state.messages
    for _ in range(500):  # until the poll waits (one that starts later reads the group)
        if messages._waiting:
            break
        time.sleep(0.01)
    assert messages._waiting, "the poll never started waiting"
    assert dev.request("GET", base + "?add=g.second")[0] == 200
    message = urllib.parse.quote(json.dumps({"n": 2}))
    assert dev.request("GET", f"/publish/pub-c-t/sub-c-t/0/g.second/0/{message}")[0] == 200
    status, _, body = answers.get(timeout=10)
    assert status == 200
    got = [(m["c"], m["d"], m.get("b")) for m in json.loads(body)["m"]]
    assert got == [("g.second", {"n": 2}, "waiting")]


CLIENT_META = """
[project]
subscribe_key = "sub-c-m"
publish_key = "pub-c-m"

[[functions]]
name = "seen"
file = "seen.js"
event = "before-publish"
channels = ["ch"]
"""


def test_functions_see_the_publishing_clients_user_agent_and_address(tmp_path_factory):
    """request.meta names the client that published (its User-Agent and address), not
    pfunc; the publish's own meta is kept beside it, and history keeps only that."""
    from tests.conftest import serve_project

    seen = """
        export default (request) => {
          request.message = { meta: request.meta };
          return request.ok();
        };
    """
    for dev in serve_project(tmp_path_factory, "meta", CLIENT_META, {"seen.js": seen}):
        agent = {"User-Agent": "MyApp/1.0 (test)"}
        # a publisher's meta naming another address does not hide its own
        given = {"room": "r1", "clientip": "6.6.6.6"}
        meta = urllib.parse.quote(json.dumps(given))
        status, _, _ = dev.request(
            "GET", f"/publish/pub-c-m/sub-c-m/0/ch/0/%7B%7D?uuid=a&store=1&meta={meta}", None, agent
        )
        assert status == 200
        history = "/v2/history/sub-key/sub-c-m/channel/ch?uuid=a&include_meta=true"
        _, _, body = dev.request("GET", history)
        [entry] = json.loads(body)[0]
        assert entry["message"]["meta"] == {
            "useragent": "MyApp/1.0 (test)",
            "clientip": "127.0.0.1",
            "origin": f"127.0.0.1:{dev.port}",  # the origin the client asked for
            "room": "r1",
        }
        assert entry["meta"] == given


@pytest.mark.parametrize(
    ("custom_type", "status"),
    # PubNub's SDK contract (publishWithCustomMssgType): 3-50 letters, digits, - and _.
    [
        ("test_step", 200),
        ("ts", 400),
        ("this-is-really-long-message-type-to-be-used-with-publish", 400),
        ("pn-test-step", 400),
        ("pn_test-step", 400),
        ("-test-step", 400),
        ("_test-step", 400),
        ("test:step", 400),
    ],
)
def test_a_custom_message_type_pubnub_refuses_is_refused(dev, custom_type, status):
    query = urllib.parse.urlencode({"custom_message_type": custom_type, "uuid": "u"})
    for route in ("publish", "signal"):
        answered, _, body = dev.request(
            "GET", f"/{route}/pub-c-t/sub-c-t/0/news/0/%22hi%22?{query}"
        )
        assert answered == status, (route, body)
        if status == 400:
            assert json.loads(body)[:2] == [0, "Invalid Custom Message Type"]


def test_a_presence_function_may_name_the_presence_channel(tmp_path):
    """channels = ["lobby-pnpres"] (the channel presence events travel on) binds the
    function to lobby's presence, as channels = ["lobby"] does."""
    make_project(tmp_path)
    project = tmp_path / "pfunc.toml"
    project.write_text(
        project.read_text().replace('channels = ["lobby"]', 'channels = ["lobby-pnpres"]')
    )
    server = InProcessDev(tmp_path)
    try:
        server.request(
            "GET", "/v2/presence/sub-key/sub-c-t/channel/lobby/heartbeat?uuid=zed&heartbeat=60"
        )
        event = server.wait_for(lambda e: e["type"] == "execution" and e["function"] == "presence")
        assert event["outcome"] == "ok" and event["channel"] == "lobby"
        # Run by name, it gets the same channel (it got lobby-pnpres, in pfunc test too).
        _, _, body = server.request("POST", "/pfunc/run/presence", b"{}")
        assert json.loads(body)["channel"] == "lobby"
    finally:
        server.stop()
    by_name = run_cli("run", "presence", "--json", cwd=tmp_path).json()
    assert by_name["channel"] == "lobby"


def test_publishers_faster_than_an_after_function_wait_for_it_instead_of_losing_runs(tmp_path):
    """pfunc runs 8 instances of a function; PubNub starts more. Publishes were answered
    at once while their after-publish runs queued without end, and past the time limit
    the queued ones failed as 'busy' without running (55% of them under a steady load).
    A client's publish now waits while the function has a queue: every run runs."""
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-q"\npublish_key = "pub-c-q"\n[limits]\ntimeout = 1\n'
        '[[functions]]\nname = "audit"\nfile = "audit.js"\nevent = "after-publish"\n'
        'channels = ["chat.*"]\n'
    )
    (tmp_path / "audit.js").write_text(
        'const db = require("kvstore");\n'
        "export default async (request) => {\n"
        "  const end = Date.now() + 40; while (Date.now() < end) {}\n"
        '  await db.incrCounter("audited");\n'
        "  return request.ok();\n"
        "};\n"
    )
    server = InProcessDev(tmp_path)
    try:
        from concurrent.futures import ThreadPoolExecutor

        def publish(n: int) -> int:
            path = f"/publish/pub-c-q/sub-c-q/0/chat.room/0/{n}"
            return server.request("GET", path)[0]

        with ThreadPoolExecutor(40) as pool:  # 300 x 40 ms of work: past the 1 s limit
            assert list(pool.map(publish, range(300))) == [200] * 300
        outcomes = [
            server.wait_for(lambda e: e["type"] == "execution", timeout=30)["outcome"]
            for _ in range(300)
        ]
        assert outcomes == ["ok"] * 300
    finally:
        server.stop()


def test_response_headers_as_nodes_set_header_takes_them_and_a_timeout_is_503(tmp_path):
    """Two cookies went out folded into one Set-Cookie line (a browser kept the first
    only); a header set twice in two cases went out twice; an undefined header went out
    as the text "undefined"; and a time limit answered 500 where PubNub's troubleshooting
    page gives 503 ("Request processing exceeded the maximum allowed time")."""
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-h"\npublish_key = "pub-c-h"\n[limits]\ntimeout = 1\n'
        '[[functions]]\nname = "login"\nfile = "login.js"\nevent = "on-request"\npath = "login"\n'
        '[[functions]]\nname = "spin"\nfile = "spin.js"\nevent = "on-request"\npath = "spin"\n'
    )
    (tmp_path / "login.js").write_text(
        "export default (request, response) => {\n"
        "  response.headers['Set-Cookie'] = ['session=abc; Path=/', 'theme=dark; Path=/'];\n"
        "  response.headers['X-Thing'] = 'A';\n"
        "  response.headers['x-thing'] = 'B';\n"
        "  if (request.query.copy) response.headers['X-Id'] = request.headers['x-id'];\n"
        "  return response.send({ ok: true });\n"
        "};\n"
    )
    (tmp_path / "spin.js").write_text(
        "export default (request) => {\n"
        "  if (request.query.own) { const e = new Error('slow upstream'); e.name = 'TimeoutError';"
        " throw e; }\n"
        "  for (;;) {}\n"
        "};\n"
    )
    server = InProcessDev(tmp_path)
    try:
        # A handler's own error named TimeoutError is the handler's failure: 500.
        assert server.request("GET", "/v1/blocks/sub-key/sub-c-h/spin?own=1")[0] == 500
        with urllib.request.urlopen(f"{server.base}/v1/blocks/sub-key/sub-c-h/login") as answer:
            assert answer.headers.get_all("Set-Cookie") == [
                "session=abc; Path=/",
                "theme=dark; Path=/",
            ]
            assert answer.headers.get_all("X-Thing") == ["B"]  # the last set wins
        status, _, body = server.request("GET", "/v1/blocks/sub-key/sub-c-h/login?copy=1")
        assert status == 500 and 'header "X-Id" is undefined' in json.loads(body)["message"]
        status, _, body = server.request("GET", "/v1/blocks/sub-key/sub-c-h/spin")
        assert status == 503 and "time limit" in json.loads(body)["message"]
    finally:
        server.stop()
