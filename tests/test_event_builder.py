"""One event builder: the same event spec, sent through every front end (CLI flags, the dev
server's trigger endpoint and console, a scenario step, the pytest plugin, and the dev
server's own presence change), reaches the handler as the same event.

Each handler logs what it received; the test compares those logs across front ends.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pfunc.errors import PfuncUsageError
from pfunc.events import EventSpec, build_event
from tests.dev_harness import InProcessDev

NOW = "2026-01-01T00:00:00Z"

PROJECT = """
[project]
name = "parity"
subscribe_key = "sub-c-p"
publish_key = "pub-c-p"

[[functions]]
name = "pub"
file = "pub.js"
event = "before-publish"
channels = ["chat", "chat.*"]

[[functions]]
name = "pres"
file = "pres.js"
event = "after-presence"
channels = ["lobby"]

[[functions]]
name = "api"
file = "api.js"
event = "on-request"
path = "api"

[[functions]]
name = "tick"
file = "tick.js"
event = "on-interval"
interval = 60
"""

# Each handler logs the event it received; presence timestamps depend on the front end's
# clock (the dev server's is real time), so only their type is logged.
HANDLERS = {
    "pub.js": """
        export default (request) => {
          console.log(JSON.stringify({ message: request.message, channels: request.channels,
            params: request.params, meta: request.meta, verb: request.verb }));
          return request.ok();
        };
    """,
    "pres.js": """
        export default (request) => {
          const message = Object.assign({}, request.message);
          message.timestamp = typeof message.timestamp;
          console.log(JSON.stringify({ message, channels: request.channels, verb: request.verb }));
          return request.ok();
        };
    """,
    "api.js": """
        export default (request, response) => {
          console.log(JSON.stringify({ method: request.method, path: request.path,
            query: request.query, headers: request.headers, body: String(request.body) }));
          return response.send("ok");
        };
    """,
    "tick.js": """
        export default (event) => { console.log(JSON.stringify({ tick: true })); return event.ok(); };
    """,
}

# (function, trigger, spec): the spec as a user writes it in JSON, TOML or keywords.
CASES = {
    "publish-everything": (
        "pub",
        "publish",
        {
            "message": {"text": "hi", "n": [1, 2]},
            "channel": "chat.room",
            "params": {"uuid": "u1"},
            "meta": {"clientip": "10.0.0.9"},
        },
    ),
    "publish-defaults": ("pub", "publish", {}),
    "presence-everything": (
        "pres",
        "presence",
        {"action": "leave", "uuid": "u2", "occupancy": 3, "state": {"mood": "ok"}},
    ),
    "presence-defaults": ("pres", "presence", {}),
    # An interval names no single user (PubNub lists who joined, left, timed out).
    "presence-interval": ("pres", "presence", {"action": "interval", "uuid": "u3"}),
    "presence-interval-alone": ("pres", "presence", {"action": "interval", "occupancy": 40}),
    "request-everything": (
        "api",
        "request",
        {
            "method": "PUT",
            "path": "/items/1",
            "query": {"a": "1"},
            "headers": {"X-Token": "t"},
            "body": '{"x":1}',
        },
    ),
    "request-body-means-post": ("api", "request", {"body": "hello"}),
    # A path written with its query string is split as a URL is; `query` names win.
    "request-query-in-path": (
        "api",
        "request",
        {"path": "/items?page=2&sort=a&page=3", "query": {"sort": "b"}},
    ),
    "interval": ("tick", "interval", {}),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("parity")
    (folder / "pfunc.toml").write_text(PROJECT)
    for name, source in HANDLERS.items():
        (folder / name).write_text(textwrap.dedent(source))
    return folder


@pytest.fixture(scope="module")
def dev(project: Path) -> Iterator[InProcessDev]:
    server = InProcessDev(project)
    yield server
    server.stop()


def _logged(logs: list[dict[str, Any]]) -> Any:
    assert len(logs) == 1, logs
    return json.loads(logs[0]["text"])


# --- the front ends -----------------------------------------------------------------------


def via_cli(project: Path, function: str, trigger: str, spec: dict[str, Any], monkeypatch) -> Any:
    from pfunc.cli.session import prepare_run

    flags: dict[str, Any] = {"now_text": NOW, "kv_path": project / "cli.sqlite3"}
    for name, value in spec.items():
        if name in ("message", "params", "meta", "state"):
            flags[f"{name}_json" if name != "message" else name] = json.dumps(value)
        elif name == "query":
            flags["query"] = tuple(f"{k}={v}" for k, v in value.items())
        elif name == "headers":
            flags["header"] = tuple(f"{k}: {v}" for k, v in value.items())
        elif name == "path":
            flags["http_path"] = value
        else:
            flags[name] = value
    monkeypatch.chdir(project)
    plan = prepare_run(function, **flags)
    return _logged(asyncio.run(plan.execute()).logs)


def via_trigger(dev: InProcessDev, function: str, spec: dict[str, Any]) -> Any:
    status, _, body = dev.request("POST", f"/pfunc/run/{function}", json.dumps(spec).encode())
    assert status == 200, body
    return _logged(json.loads(body)["logs"])


def via_console(dev: InProcessDev, function: str, spec: dict[str, Any]) -> Any:
    while not dev.events.empty():  # earlier executions (the trigger's) are logged already
        dev.events.get_nowait()
    dev.type(f"run {function} {json.dumps(spec)}")
    executed = dev.wait_for(lambda e: e["type"] == "execution" and e["function"] == function)
    return _logged(executed["logs"])


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(value)


def via_scenario(project: Path, function: str, trigger: str, spec: dict[str, Any]) -> Any:
    from pfunc.testing.runner import run_scenario
    from pfunc.testing.scenario import load_scenarios

    path = project / f"{function}-{trigger}.test.toml"
    payload = _toml(spec) if spec else "true" if trigger == "interval" else "{}"
    path.write_text(
        f'[[scenario]]\nname = "parity"\nfunction = "{function}"\nnow = "{NOW}"\n\n'
        f"[[scenario.step]]\n{trigger} = {payload}\n"
    )
    (scenario,) = load_scenarios(path)
    outcome = asyncio.run(run_scenario(scenario))
    return _logged(outcome.results[0].logs)


def via_plugin(project: Path, tmp_path: Path, function: str, trigger: str, spec: dict) -> Any:
    from pfunc.testing.pytest_plugin import PfuncHarness

    harness = PfuncHarness(tmp_path, project)
    try:
        if trigger == "publish":
            options = {k: v for k, v in spec.items() if k != "message"}
            result = harness.publish(function, spec.get("message", {}), **options)
        elif trigger == "request":
            result = harness.request(function, **spec)
        elif trigger == "presence":
            result = harness.presence(function, **spec)
        else:
            result = harness.interval(function)
    finally:
        harness.close()
    return _logged(result.logs)


@pytest.mark.parametrize("case", list(CASES))
def test_every_front_end_builds_the_same_event(case, project, dev, tmp_path, monkeypatch):
    function, trigger, spec = CASES[case]
    seen = {
        "cli": via_cli(project, function, trigger, spec, monkeypatch),
        "trigger": via_trigger(dev, function, spec),
        "console": via_console(dev, function, spec),
        "scenario": via_scenario(project, function, trigger, spec),
        "plugin": via_plugin(project, tmp_path, function, trigger, spec),
    }
    assert {name: event for name, event in seen.items() if event != seen["cli"]} == {}, seen["cli"]
    event = seen["cli"]
    # What the spec said, or the builder's defaults.
    if trigger == "publish":
        assert event["message"] == spec.get("message", {})
        assert event["channels"] == [spec.get("channel", "chat")]  # the first exact channel
        assert event["params"] == {"uuid": "pfunc-cli", **spec.get("params", {})}
    elif trigger == "presence":
        expected = {"action": "join", "uuid": "pfunc-user", "occupancy": 1, **spec}
        if expected["action"] == "interval":
            del expected["uuid"]
            if "uuid" in spec:
                expected["join"] = [spec["uuid"]]
        assert event["message"] == {**expected, "timestamp": "number"}
        assert event["verb"] == "presence"
    elif trigger == "request":
        assert event["method"] == spec.get("method", "POST" if "body" in spec else "GET")
        assert event["body"] == spec.get("body", "")
        assert event["headers"] == {k.lower(): v for k, v in spec.get("headers", {}).items()}
        if case == "request-query-in-path":
            assert (event["path"], event["query"]) == ("/items", {"page": "2", "sort": "b"})


def test_a_repeated_query_name_or_header_reads_the_same_in_pfunc_run_and_pfunc_dev(
    project, dev, monkeypatch
):
    """A repeated query name is its first value everywhere; a repeated header is joined
    with ", " as Node joins it, or its first kept for the headers Node keeps one of."""
    import http.client

    from pfunc.cli.session import prepare_run

    headers = [("X-A", "1"), ("x-a", "2"), ("Referer", "http://a"), ("referer", "http://b")]
    monkeypatch.chdir(project)
    plan = prepare_run(
        "api",
        now_text=NOW,
        kv_path=project / "cli.sqlite3",
        http_path="/r",
        query=("x=1", "x=2", "y=3"),
        header=tuple(f"{name}: {value}" for name, value in headers),
        body="b",
    )
    cli = _logged(asyncio.run(plan.execute()).logs)

    connection = http.client.HTTPConnection("127.0.0.1", int(dev.base.rsplit(":", 1)[1]))
    connection.putrequest("POST", "/v1/blocks/sub-key/sub-c-p/api/r?x=1&x=2&y=3")
    for name, value in [*headers, ("Content-Length", "1")]:
        connection.putheader(name, value)
    connection.endheaders(b"b")
    assert connection.getresponse().status == 200
    connection.close()
    served = dev.wait_for(lambda e: e["type"] == "execution" and e["function"] == "api")
    seen = _logged(served["logs"])

    scenario = via_scenario(
        project,
        "api",
        "request",
        {"path": "/r?x=1&y=3", "headers": dict(headers[:2]) | {"Referer": "http://a"}},
    )
    for event in (cli, seen):
        assert event["query"] == {"x": "1", "y": "3"}
        assert (event["headers"]["x-a"], event["headers"]["referer"]) == ("1, 2", "http://a")
        assert (event["path"], event["body"]) == ("/r", "b")
    # A table names each header once, but X-A and x-a are one header there too.
    assert scenario["headers"]["x-a"] == "1, 2" and scenario["query"] == {"x": "1", "y": "3"}

    # A `?` sent encoded is the path's: pfunc dev does not split a path at it.
    assert dev.request("GET", "/v1/blocks/sub-key/sub-c-p/api/a%3Fb?x=1")[0] == 200
    served = dev.wait_for(lambda e: e["type"] == "execution" and e["function"] == "api")
    assert (_logged(served["logs"])["path"], _logged(served["logs"])["query"]) == (
        "/a?b",
        {"x": "1"},
    )


@pytest.mark.parametrize(
    "spec, content_type",
    [
        (EventSpec(json={"a": 1}), "application/json"),
        (EventSpec(body={"a": 1}), "application/json"),  # a TOML table as the body
        (EventSpec(json=[1], headers={"Content-Type": "application/vnd.x+json"}), None),
        (EventSpec(body='{"a":1}'), None),  # text is sent as the user wrote it
    ],
)
def test_a_body_given_as_json_carries_its_content_type(spec, content_type):
    headers = build_event("on-request", spec).headers
    if content_type is None:
        assert headers.get("content-type") == (spec.headers or {}).get("Content-Type")
    else:
        assert headers["content-type"] == content_type


def test_the_dev_servers_own_presence_change_builds_the_same_event(project, dev, monkeypatch):
    status, _, _ = dev.request("GET", "/v2/subscribe/sub-c-p/lobby/0?tt=0&uuid=zoe")
    assert status == 200
    joined = dev.wait_for(lambda e: e["type"] == "execution" and e["function"] == "pres")
    spec = {"action": "join", "uuid": "zoe", "occupancy": 1}
    assert _logged(joined["logs"]) == via_cli(project, "pres", "presence", spec, monkeypatch)


@pytest.mark.parametrize(
    "kind, spec, wrong",
    [
        ("on-request", EventSpec(message={"a": 1}), "message does not apply to on-request"),
        ("before-publish", EventSpec(body="x"), "body does not apply to before-publish"),
        ("before-publish", EventSpec(action="join"), "action does not apply to before-publish"),
        ("on-interval", EventSpec(message=1), "message does not apply to on-interval"),
        ("after-presence", EventSpec(action="dance"), "'dance': use one of join"),
        ("before-publish", EventSpec(params=["u"]), "params must be a JSON object"),
    ],
)
def test_the_builder_refuses_what_does_not_fit_the_kind(kind, spec, wrong):
    with pytest.raises(PfuncUsageError, match=wrong):
        build_event(kind, spec)


def test_a_message_written_as_the_event_itself_is_refused_not_dropped(dev):
    """The console once read `run pub {"text":"hi"}` as an empty event; now it says why."""
    status, _, body = dev.request("POST", "/pfunc/run/pub", b'{"text": "hi"}')
    assert status == 400
    assert "unknown field text; an event has" in json.loads(body)["message"]
    assert '{"message": ...}' in json.loads(body)["message"]


def test_a_trigger_must_fit_the_function(project, tmp_path):
    from pfunc.testing.pytest_plugin import PfuncHarness

    harness = PfuncHarness(tmp_path, project)
    try:
        with pytest.raises(PfuncUsageError, match="a publish cannot run an on-request function"):
            harness.publish("api", {"text": "hi"})
    finally:
        harness.close()


def test_defaults_the_cli_always_had():
    # A channel is ignored for a request or a timer; a body, even empty, means POST.
    request = build_event("on-request", EventSpec(channel="c", body=""))
    assert (request.method, request.body) == ("POST", "")
    assert build_event("on-interval", EventSpec(channel="c")).kind == "on-interval"


def test_a_fire_reaches_functions_as_a_fire(harness, tmp_path):
    handler = tmp_path / "verb.js"
    handler.write_text("export default (request) => request.ok({ verb: request.verb });")
    harness.use_project(
        f"""
        [[functions]]
        name = "verb"
        file = "{handler}"
        event = "before-publish"
        channels = ["chat"]
        """,
        tmp_path,
    )
    assert harness.publish("chat", {}, verb="fire").executions[0].message == {"verb": "fire"}
    assert harness.publish("chat", {}).executions[0].message == {"verb": "publish"}
