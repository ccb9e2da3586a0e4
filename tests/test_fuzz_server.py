"""Fuzzing the dev server's routes (Hypothesis): whatever arrives, the answer is a status
below 500, errors are JSON in PubNub's shapes, and the server keeps serving."""

from __future__ import annotations

import json
import textwrap
import urllib.parse
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pfunc import jsonio
from pfunc.events import EventSpec
from tests.dev_harness import InProcessDev

PROJECT = """
[project]
subscribe_key = "sub-c-z"
publish_key = "pub-c-z"
[limits]
timeout = 1

[[functions]]
name = "gate"
file = "gate.js"
event = "before-publish"
channels = ["chat.*"]

[[functions]]
name = "api"
file = "api.js"
event = "on-request"
path = "api"

[[functions]]
name = "joined"
file = "joined.js"
event = "after-presence"
channels = ["lobby"]
"""

HANDLERS = {
    "gate.js": "export default (request) => request.ok();",
    "api.js": """
        export default (request, response) =>
          response.send({ body: String(request.body), query: request.query,
                          headers: request.headers });
    """,
    "joined.js": "export default (request) => request.ok();",
}

# Every field an event spec has (and one it has not).
SPEC_FIELDS = [spec_field.name for spec_field in fields(EventSpec)]

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text that reaches parsers: JSON-ish fragments, numbers JSON has no room for, bad escapes.
nasty_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "NaN",
            "Infinity",
            "-Infinity",
            "1e999",
            "1" * 5000,
            '"\\ud800"',
            "[" * 3000 + "]" * 3000,
            '{"a":',
            "null",
            '{"text":"hi"}',
            "%",
            "%zz",
            "\x00",
        ]
    ),
)
segment = st.one_of(
    st.text(min_size=1, max_size=20), st.sampled_from(["chat.a", "..", "*", "lobby"])
)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessDev]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    (folder / "pfunc.toml").write_text(PROJECT)
    for name, source in HANDLERS.items():
        (folder / name).write_text(textwrap.dedent(source))
    server = InProcessDev(folder)
    yield server
    server.stop()


def quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def assert_pubnub_answer(status: int, body: str) -> None:
    assert status < 500, body
    if status >= 400:
        json.loads(body)  # every error is JSON, in one of PubNub's shapes


def still_serving(dev: InProcessDev) -> None:
    status, _, body = dev.request("GET", "/time/0")
    assert status == 200 and isinstance(json.loads(body)[0], int)


@SETTINGS
@given(channel=segment, message=nasty_text, meta=st.none() | nasty_text, post=st.booleans())
def test_publish(dev, channel, message, meta, post):
    query = "?uuid=fuzz" + ("" if meta is None else f"&meta={quote(meta)}")
    base = f"/publish/pub-c-z/sub-c-z/0/{quote(channel)}/0"
    if post:
        status, _, body = dev.request("POST", base + query, message.encode("utf-8", "replace"))
    else:
        status, _, body = dev.request("GET", f"{base}/{quote(message)}{query}")
    assert_pubnub_answer(status, body)
    still_serving(dev)


@SETTINGS
@given(channel=segment, message=nasty_text)
def test_signal(dev, channel, message):
    status, _, body = dev.request(
        "GET", f"/signal/pub-c-z/sub-c-z/0/{quote(channel)}/0/{quote(message)}"
    )
    assert_pubnub_answer(status, body)
    if status == 200:
        jsonio.loads(message)  # only RFC 8259 JSON is delivered


@SETTINGS
@given(
    channels=st.lists(segment, min_size=1, max_size=4),
    tt=st.one_of(st.just("0"), nasty_text),
    heartbeat=st.one_of(st.none(), st.text(max_size=6)),
)
def test_subscribe_and_presence(dev, channels, tt, heartbeat):
    names = ",".join(quote(c) for c in channels)
    extra = "" if heartbeat is None else f"&heartbeat={quote(heartbeat)}"
    for path in (
        f"/v2/subscribe/sub-c-z/{names}/0?tt={quote(tt)}&uuid=fz{extra}",
        f"/v2/presence/sub-key/sub-c-z/channel/{names}/heartbeat?uuid=fz{extra}",
        f"/v2/presence/sub-key/sub-c-z/channel/{names}/leave?uuid=fz",
    ):
        if path.startswith("/v2/subscribe") and tt not in ("0", ""):
            continue  # a real cursor would wait for messages; the parse is what is fuzzed
        status, _, body = dev.request("GET", path)
        assert_pubnub_answer(status, body)
    still_serving(dev)


@SETTINGS
@given(
    path=st.lists(segment, max_size=3),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    body=st.binary(max_size=64),
    content_type=st.sampled_from(
        [None, "application/json", "text/plain; charset=utf-8", "text/plain; charset=nope-9"]
    ),
)
def test_on_request(dev, path, method, body, content_type):
    headers = {} if content_type is None else {"Content-Type": content_type}
    rest = "/".join(quote(p) for p in path)
    status, _, answer = dev.request(
        method, f"/v1/blocks/sub-key/sub-c-z/api/{rest}", body or None, headers
    )
    assert_pubnub_answer(status, answer)
    if status == 200:
        assert "body" in json.loads(answer)  # the handler got the request, bytes and all


@SETTINGS
@given(
    name=st.sampled_from(["gate", "api", "joined", "nobody"]),
    spec=st.one_of(
        nasty_text,
        st.dictionaries(
            st.sampled_from([*SPEC_FIELDS, "text"]),
            st.one_of(
                st.none(),
                st.integers(),
                st.text(max_size=8),
                st.lists(st.integers()),
                st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
            ),
            max_size=4,
        ).map(json.dumps),
    ),
)
def test_trigger(dev, name, spec):
    status, _, body = dev.request("POST", f"/pfunc/run/{name}", spec.encode())
    assert_pubnub_answer(status, body)
    still_serving(dev)


@SETTINGS
@given(
    channel=segment,
    name=st.sampled_from(
        [
            "count",
            "max",
            "start",
            "end",
            "reverse",
            "include_token",
            "include_meta",
            "limit",
            "timetoken",
            "channelsTimetoken",
            "state",
            "disable_uuids",
            "heartbeat",
            "filter-expr",
        ]
    ),
    value=nasty_text,
    route=st.sampled_from(
        [
            ("GET", "/v2/history/sub-key/sub-c-z/channel/{c}"),
            ("GET", "/v3/history/sub-key/sub-c-z/channel/{c}"),
            ("GET", "/v3/history-with-actions/sub-key/sub-c-z/channel/{c}"),
            ("GET", "/v3/history/sub-key/sub-c-z/message-counts/{c}"),
            ("DELETE", "/v3/history/sub-key/sub-c-z/channel/{c}"),
            ("GET", "/v1/message-actions/sub-c-z/channel/{c}"),
            ("POST", "/v1/message-actions/sub-c-z/channel/{c}/message/{v}"),
            ("DELETE", "/v1/message-actions/sub-c-z/channel/{c}/message/{v}/action/{v}"),
            ("GET", "/v2/presence/sub-key/sub-c-z"),
            ("GET", "/v2/presence/sub-key/sub-c-z/channel/{c}"),
            ("GET", "/v2/presence/sub-key/sub-c-z/uuid/{v}"),
            ("GET", "/v2/presence/sub-key/sub-c-z/channel/{c}/uuid/{v}"),
            ("GET", "/v2/presence/sub-key/sub-c-z/channel/{c}/uuid/{v}/data"),
            ("GET", "/v2/subscribe/sub-c-z/{c}/0"),
        ]
    ),
)
def test_history_actions_and_presence_queries(dev, channel, name, value, route):
    method, template = route
    path = template.format(c=quote(channel), v=quote(value) or "1")
    query = f"?{name}={quote(value)}&uuid=fz"
    if template.startswith("/v2/subscribe"):
        query += "&tt=0"
    body = value.encode("utf-8", "replace") if method == "POST" else None
    status, _, answer = dev.request(method, path + query, body)
    assert_pubnub_answer(status, answer)
    still_serving(dev)


# Digits int() refuses: a superscript that str.isdigit() accepts, and more than the 4,300
# digits int() reads. Each once on every route that reads a number from the request.
HOSTILE_NUMBERS = ["²", "1" * 5000]
NUMBER_ROUTES = [
    ("GET", "/v2/subscribe/sub-c-z/lobby/0?heartbeat={n}"),
    ("GET", "/v2/presence/sub-key/sub-c-z/channel/lobby/heartbeat?uuid=u&heartbeat={n}"),
    ("GET", "/v2/subscribe/sub-c-z/lobby/0?filter-expr=a%20%3D%3D%20{n}"),
    ("GET", "/v3/history/sub-key/sub-c-z/channel/lobby?start={n}"),
    ("GET", "/v3/history/sub-key/sub-c-z/message-counts/lobby?timetoken={n}"),
    ("GET", "/v1/message-actions/sub-c-z/channel/lobby?start={n}&limit={n}"),
    ("POST", "/v1/message-actions/sub-c-z/channel/lobby/message/{n}"),
    ("DELETE", "/v1/message-actions/sub-c-z/channel/lobby/message/{n}/action/{n}"),
    ("GET", "/v1/files/sub-c-z/channels/lobby/files?limit={n}"),
    ("GET", "/v2/auth/grant/sub-key/sub-c-z?ttl={n}&timestamp={n}&signature=x"),
    ("POST", "/v3/pam/sub-c-z/grant"),  # the ttl in its body
]


@pytest.mark.parametrize("number", HOSTILE_NUMBERS, ids=["superscript", "5000-digits"])
@pytest.mark.parametrize(("method", "route"), NUMBER_ROUTES)
def test_numbers_int_cannot_read_are_a_4xx_not_a_500(dev, method, route, number):
    path = route.format(n=urllib.parse.quote(number))
    sent = {"type": "reaction", "value": "x", "ttl": number, "permissions": {}}
    status, _, body = dev.request(method, path, json.dumps(sent).encode())
    assert status < 500, body


def no_server_errors(dev: InProcessDev) -> None:
    """Nothing the requests so far did was logged as a fault of pfunc's own."""
    logged = []
    while not dev.events.empty():
        logged.append(dev.events.get_nowait())
    assert [event for event in logged if event["type"] == "server-error"] == []


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize(
    "route",
    [
        ("POST", "/publish/pub-c-z/sub-c-z/0/chat.a/0?uuid=fuzz"),
        ("POST", "/v1/blocks/sub-key/sub-c-z/api"),
        ("PATCH", "/v2/objects/sub-c-z/uuids/u9"),
    ],
)
def test_a_body_its_content_encoding_cannot_decode_is_a_400(dev, encoding, route):
    """Found while the route reads the body: PubNub's JSON 400, not a 500. (A stream cut
    short, which the HTTP parser finds before any route, gets aiohttp's plain 400, as a
    proxy's: docs/decisions.md.)"""
    method, path = route
    while not dev.events.empty():  # what earlier tests left
        dev.events.get_nowait()
    status, _, answer = dev.request(method, path, b"not compressed", {"Content-Encoding": encoding})
    assert status == 400 and "Invalid request body" in json.loads(answer)["message"]
    still_serving(dev)
    logged = []
    while not dev.events.empty():
        logged.append(dev.events.get_nowait())
    bad = [event for event in logged if event["type"] == "bad-request"]
    assert len(bad) == 1 and bad[0]["error"].startswith(path.split("?")[0]), logged  # once
    assert [event for event in logged if event["type"] == "server-error"] == []


def test_a_client_that_leaves_mid_body_is_not_a_server_error(dev):
    import socket
    import time

    for _ in range(5):
        with socket.create_connection(("127.0.0.1", dev.port)) as client:
            client.sendall(
                b"POST /v1/blocks/sub-key/sub-c-z/api HTTP/1.1\r\nHost: x\r\n"
                b"Content-Length: 100000\r\n\r\n" + b"x" * 1000
            )
    time.sleep(0.3)  # the server notices each close
    still_serving(dev)
    no_server_errors(dev)


@pytest.mark.parametrize(
    ("channel", "message", "refusal"),
    [
        ("chat.a", "%22%FF%FE%22", "Invalid JSON"),  # escapes that are not UTF-8
        ("chat.a", "%22h%ZZi%22", "Invalid JSON"),  # a % that is no escape
        ("chat.a", "%22caf%C3%A9%22", None),  # UTF-8: published as "café"
        ("%FF%FE", "1", "Invalid Channel"),
        ("ch%00x", "1", "Invalid Channel"),
        ("ch%07x", "1", "Invalid Channel"),
        ("caf%C3%A9", "1", None),
        ("a:b", "1", "Invalid Channel"),  # PubNub's list: comma, colon, slash, backslash...
        ("a%22b%27c", "1", None),  # ... but not quotes
    ],
)
def test_a_publish_whose_url_does_not_decode_is_refused_not_changed(dev, channel, message, refusal):
    for route in ("publish", "signal"):
        status, _, body = dev.request("GET", f"/{route}/pub-c-z/sub-c-z/0/{channel}/0/{message}")
        if refusal is None:
            assert status == 200, body
        else:
            assert (status, json.loads(body)[1]) == (400, refusal)
    still_serving(dev)


def test_header_bytes_that_are_not_utf8_reach_handlers_as_latin1(dev):
    import socket

    with socket.create_connection(("127.0.0.1", dev.port)) as client:
        client.sendall(
            b"GET /v1/blocks/sub-key/sub-c-z/api HTTP/1.1\r\nHost: x\r\n"
            b"X-Raw: \xff\xfe\r\nX-Text: caf\xc3\xa9\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    headers = json.loads(answer.split(b"\r\n\r\n", 1)[1])["headers"]
    assert (headers["x-raw"], headers["x-text"]) == ("\u00ff\u00fe", "caf\u00e9")


def test_a_user_agent_that_is_not_utf8_reaches_functions_and_the_console_as_latin1(dev):
    """request.meta.useragent is the client's: bytes that are not UTF-8 are Latin-1, never
    lone surrogates, which no writer takes (the console's stream failed on every
    connect while the entry was kept)."""
    import socket

    with socket.create_connection(("127.0.0.1", dev.port)) as client:
        client.sendall(
            b"GET /publish/pub-c-z/sub-c-z/0/chat.ua/0/%7B%7D?uuid=u HTTP/1.1\r\nHost: x\r\n"
            b"User-Agent: caf\xff\xfe\r\nConnection: close\r\n\r\n"
        )
        assert client.recv(100).startswith(b"HTTP/1.1 200")
    with socket.create_connection(("127.0.0.1", dev.port)) as client:
        client.settimeout(5)
        client.sendall(b"GET /pfunc/console/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        seen = b""
        while b"event: backlog" not in seen or b"\n\n" not in seen.split(b"event: backlog")[1]:
            seen += client.recv(65536)
    assert seen.startswith(b"HTTP/1.1 200")
    assert "caf\u00ff\u00fe".encode() in seen  # the gate function's event, its meta
    no_server_errors(dev)


DEEP = ("[" * 3000 + "]" * 3000).encode()


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("POST", "/v3/pam/sub-c-z/grant"),
        ("POST", "/pfunc/console/scenario"),
        ("POST", "/pfunc/console/kv"),
        ("PATCH", "/v2/objects/sub-c-z/uuids/u1"),
        ("PATCH", "/v2/objects/sub-c-z/uuids/u1/channels"),
        ("POST", "/v1/message-actions/sub-c-z/channel/c/message/17960416852854016"),
        ("POST", "/v1/files/sub-c-z/channels/c/generate-upload-url"),
    ],
)
def test_a_body_nested_past_what_parsers_take_is_a_400(dev, method, route):
    """Every route that reads a JSON body refuses one nested thousands deep with a 400 in
    PubNub's shape, as publish does; the grant and the console's save-as-scenario had
    answered 500 (the parser's RecursionError)."""
    status, _, body = dev.request(method, route, DEEP, {"Content-Type": "application/json"})
    assert status == 400, body
    json.loads(body)
    still_serving(dev)


def test_a_nested_memberships_body_is_a_400_when_access_is_enforced(tmp_path):
    """With a secret key the access guard reads a memberships body before its handler
    does, to find the channels it names: that read refuses it as the handler would."""
    (tmp_path / "pfunc.toml").write_text(PROJECT.replace("[limits]", 'secret_key = "s"\n[limits]'))
    for name, source in HANDLERS.items():
        (tmp_path / name).write_text(textwrap.dedent(source))
    server = InProcessDev(tmp_path)
    try:
        status, _, body = server.request(
            "PATCH", "/v2/objects/sub-c-z/uuids/u1/channels?uuid=u1", DEEP
        )
        assert 400 <= status < 500, body
        json.loads(body)
        still_serving(server)
    finally:
        server.stop()


@pytest.mark.parametrize("tt", ["-1", "+5", " 1", "1_0", "\u0663", "1e5", "abc", "1" * 20])
def test_a_timetoken_that_is_not_digits_is_refused_before_the_subscriber_joins(dev, tt):
    """int() reads "-1", " 1", "1_0" and "٣" as numbers: each had replayed the whole buffer
    (and joined the channel first). A timetoken is ASCII digits; anything else is a 400."""
    route = f"/v2/subscribe/sub-c-z/lobby-tt/0?uuid=tt-probe&tt={quote(tt)}"
    status, _, body = dev.request("GET", route)
    assert status == 400 and "Invalid timetoken" in json.loads(body)["message"]
    _, _, here = dev.request("GET", "/v2/presence/sub-key/sub-c-z/channel/lobby-tt")
    assert json.loads(here)["occupancy"] == 0  # the refused subscribe joined nobody


@pytest.mark.parametrize(
    ("raw", "refused"),
    [
        ("chat*", True),
        ("a.*.b", True),
        ("a.b.c.*", True),  # PubNub's wildcards take at most two names before .*
        ("%ff", True),  # no UTF-8: the router would have kept it as the text %ff
        ("a%00b", True),
        ("chat.*", False),
        ("a.b.*,a.b.*-pnpres", False),
        ("chat%3Aroom", False),  # as PubNub's history answers such names (recorded)
    ],
)
def test_a_subscribe_no_message_could_reach_is_refused(dev, raw, refused):
    """A subscribe to a wildcard PubNub has no form for (chat* for chat.*), or to a name
    that does not decode, would wait for ever: it is a 400 at once."""
    status, _, body = dev.request("GET", f"/v2/subscribe/sub-c-z/{raw}/0?uuid=w&tt=0")
    if refused:
        assert status == 400 and "Invalid Channel" in json.loads(body)["message"], body
    else:
        assert status == 200, body


# Every GET of PubNub's REST API that changes state (HEAD must not).
STATE_CHANGING_GETS = [
    "/publish/pub-c-z/sub-c-z/0/head-chan/0/%22hi%22",
    "/signal/pub-c-z/sub-c-z/0/head-chan/0/%22hi%22",
    "/v1/files/publish-file/pub-c-z/sub-c-z/0/head-chan/0/"
    + quote('{"message":null,"file":{"id":"f1","name":"a.txt"}}'),
    "/v2/subscribe/sub-c-z/head-chan/0?uuid=head-user&tt=0",
    "/v2/presence/sub-key/sub-c-z/channel/head-chan/heartbeat?uuid=head-user&heartbeat=60",
    "/v2/presence/sub-key/sub-c-z/channel/head-chan/leave?uuid=head-user",
    "/v2/presence/sub-key/sub-c-z/channel/head-chan/uuid/head-user/data?state="
    + quote('{"mood":"set by HEAD"}'),
    "/v2/auth/grant/sub-key/sub-c-z?r=1&channel=head-chan",
    "/v1/channel-registration/sub-key/sub-c-z/channel-group/head-group?add=head-chan",
    "/v1/channel-registration/sub-key/sub-c-z/channel-group/head-group/remove",
    "/v1/push/sub-key/sub-c-z/devices/head-token?add=head-chan&type=gcm",
    "/v1/push/sub-key/sub-c-z/devices/head-token/remove?type=gcm",
    "/v2/push/sub-key/sub-c-z/devices-apns2/head-token?add=head-chan&environment=development&topic=t",
    "/v2/push/sub-key/sub-c-z/devices-apns2/head-token/remove?environment=development&topic=t",
]


def test_head_changes_nothing_where_get_would(dev):
    """HEAD is safe: where PubNub's GET changes state (a publish, a join, a group's add)
    it is refused with a 405 that names GET, and nothing happened; where GET only reads,
    HEAD answers as GET would, without a body."""
    for path in STATE_CHANGING_GETS:
        status, headers, _ = dev.request("HEAD", path)
        assert status == 405, path
        assert "GET" in headers.get("Allow", ""), path
    unchanged = {
        "/v2/history/sub-key/sub-c-z/channel/head-chan": "[[],0,0]",
        "/v2/presence/sub-key/sub-c-z/channel/head-chan?uuid=reader": '"occupancy": 0',
        "/v2/presence/sub-key/sub-c-z/channel/head-chan/uuid/head-user?uuid=reader": (
            '"payload": {}'
        ),
        "/v1/channel-registration/sub-key/sub-c-z/channel-group/head-group": '"channels":[]',
        "/v1/push/sub-key/sub-c-z/devices/head-token?type=gcm": "[]",
    }
    for path, answer in unchanged.items():
        status, _, body = dev.request("GET", path)
        assert status == 200 and answer in body, (path, body)
    for path in [*list(unchanged)[:3], "/time/0"]:  # reads of their own route
        assert dev.request("HEAD", path)[::2] == (200, ""), path


@pytest.mark.parametrize("charset", ["rot13", "base64", "idna", "no-such-charset"])
def test_a_charset_no_text_decodes_with_is_no_server_error(dev, charset):
    """Python finds rot13, base64 and idna, but none decodes bytes to text as a body's
    charset (a LookupError, or idna's UnicodeError): both were 500s."""
    content_type = {"Content-Type": f"application/json; charset={charset}"}
    grant = b'{"ttl":10,"permissions":{"resources":{"channels":{"a":1}}}}'
    status, _, body = dev.request("POST", "/v3/pam/sub-c-z/grant", grant, content_type)
    assert status < 500, body
    status, _, body = dev.request(
        "POST", "/v1/blocks/sub-key/sub-c-z/api", b'{"a":1}', content_type
    )
    assert status == 200 and json.loads(body)["body"] == '{"a":1}'
    no_server_errors(dev)


def test_an_upload_part_whose_header_is_no_header_is_s3s_400(dev):
    body = b"--B\r\njunk-without-colon\r\n\r\nx\r\n--B--\r\n"
    status, _, answer = dev.request(
        "POST", "/pfunc/files/upload", body, {"Content-Type": "multipart/form-data; boundary=B"}
    )
    assert status == 400 and "<Code>MalformedPOSTRequest</Code>" in answer
    no_server_errors(dev)


def test_a_body_that_stops_arriving_ends_its_connection_and_a_slow_one_goes_on(dev):
    """aiohttp's keep-alive limit covers a request's headers, not its body: a client that
    announced 100 bytes and sent 4 held its connection and handler for good. A body that
    keeps coming, however slowly, is read to its end."""
    import socket
    import time

    limits = dev.server.limits
    limits.body_seconds = 0.3
    try:
        for path in ("/publish/pub-c-z/sub-c-z/0/chat.a/0", "/v1/blocks/sub-key/sub-c-z/api"):
            with socket.create_connection(("127.0.0.1", dev.port)) as client:
                client.settimeout(30)  # (a hang fails here rather than for ever)
                client.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n".encode()
                    + b"abcd"
                )
                answer = b""
                while chunk := client.recv(65536):  # until the server ends the connection
                    answer += chunk
            assert b" 500 " not in answer.split(b"\r\n", 1)[0]
        cut = dev.wait_for(lambda e: e["type"] == "bad-request")
        assert "its body stopped arriving (4 bytes in); closed" in cut["error"]
        with socket.create_connection(("127.0.0.1", dev.port)) as client:
            client.settimeout(30)
            client.sendall(
                b"POST /v1/blocks/sub-key/sub-c-z/api HTTP/1.1\r\nHost: x\r\n"
                b"Connection: close\r\nContent-Length: 12288\r\n\r\n"
            )
            for _ in range(6):  # 2 KiB every 0.1 s: slower than one window, never stalled
                client.sendall(b"x" * 2048)
                time.sleep(0.1)
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["body"] == "x" * 12288
    finally:
        limits.body_seconds = 60.0
    still_serving(dev)
    no_server_errors(dev)


def test_a_name_whose_escapes_are_not_utf8_is_refused_not_kept_as_written(dev):
    """The router keeps %ff as it stands: the group sent as the byte 0xFF and the one
    named "%ff" (sent as %25ff) were one group; so for actions, App Context and state."""
    groups = "/v1/channel-registration/sub-key/sub-c-z/channel-group"
    status, _, body = dev.request("GET", f"{groups}/g%ffx?add=cd")
    assert status == 400 and "do not decode to UTF-8" in json.loads(body)["message"]
    assert dev.request("GET", f"{groups}/g%25ffx?add=cd")[0] == 200  # the name "%ff" is fine
    listed = json.loads(dev.request("GET", groups)[2])
    assert listed["payload"]["groups"] == ["g%ffx"]
    for path in ("/v2/objects/sub-c-z/uuids/a%ffb", "/v1/message-actions/sub-c-z/channel/q%ff"):
        assert dev.request("GET", path)[0] == 400
    still_serving(dev)


@pytest.mark.parametrize("channel", ["a%00b", "a%2Cb", "a*", "a%20b"])
def test_an_action_on_a_channel_no_publish_could_reach_is_refused(dev, channel):
    path = f"/v1/message-actions/sub-c-z/channel/{channel}/message/17961024238410794"
    status, _, body = dev.request("POST", path, b'{"type":"r","value":"x"}')
    assert status == 400 and "Invalid channel" in json.loads(body)["error"]["message"]


@pytest.mark.parametrize("headers", [{"Host": "[::1"}, {"Host": "[zz]"}, {"Origin": "http://[x"}])
def test_a_host_or_origin_no_url_can_hold_is_refused_not_a_server_error(dev, headers):
    for path in ("/pfunc/status", "/"):
        status, _, _ = dev.request("GET", path, None, headers)
        assert status == 403
    no_server_errors(dev)


def test_a_named_jsonp_callback_wraps_the_answer(dev):
    """PubNub's REST docs: "callback: the JSONP callback name to wrap the function in.
    Use 0 for no callback." The SDKs send 0; a script-tag client names one."""
    status, headers, body = dev.request("GET", "/publish/pub-c-z/sub-c-z/0/chat.a/myCb/%22hi%22")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert body.startswith('myCb([1,"Sent","') and body.endswith('"])')
    status, _, body = dev.request("GET", "/time/0?callback=app.onTime")
    assert body.startswith("app.onTime([") and body.endswith("])")
    for plain in ("/time/0?callback=0", "/time/0", "/time/0?callback=alert(1)//"):
        status, headers, body = dev.request("GET", plain)
        assert headers["Content-Type"].startswith("application/json") and json.loads(body)
    # A function's own answer is its own.
    status, _, body = dev.request("GET", "/v1/blocks/sub-key/sub-c-z/api?callback=cb")
    assert json.loads(body)["query"] == {"callback": "cb"}


def test_a_channel_group_holds_at_most_2000_channels(dev):
    """PubNub: "a channel group that holds up to 2,000 channels"; eleven adds of 200 made
    one of 2,200 here."""
    base = "/v1/channel-registration/sub-key/sub-c-z/channel-group/full"
    for start in range(0, 2000, 200):
        names = ",".join(f"c{n}" for n in range(start, start + 200))
        assert dev.request("GET", f"{base}?add={names}")[0] == 200
    status, _, body = dev.request("GET", f"{base}?add=c1,one.more")
    assert status == 400 and "at most 2,000" in json.loads(body)["message"]
    assert dev.request("GET", f"{base}?add=c1,c2")[0] == 200  # already in: no more than 2,000
    listed = json.loads(dev.request("GET", base)[2])["payload"]["channels"]
    assert len(listed) == 2000 and "one.more" not in listed
