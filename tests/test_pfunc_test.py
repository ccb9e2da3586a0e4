"""`pfunc test`: scenario files run by the real CLI, passing, failing and malformed."""

from __future__ import annotations

import asyncio
import errno
import json
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    REPO,
    invoke_cli,
    process_command,
    process_descendants,
    process_ended,
)


def run_cli(*args, cwd=None, stdin=None):  # pfunc test's answers: in this process
    return invoke_cli(*args, cwd=cwd or REPO, stdin=stdin)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repository's demo project with its examples and their scenarios."""
    for name in ("examples", "handlers"):
        shutil.copytree(REPO / name, tmp_path / name)
    shutil.copy(REPO / "pfunc.toml", tmp_path / "pfunc.toml")
    return tmp_path


def test_the_examples_pass(project):
    run = run_cli("test", "examples", cwd=project)
    assert run.code == 0, run.stdout
    assert run.stdout.strip().splitlines()[-1] == "29 passed, 0 failed"


def test_pfunc_init_scenarios_pass_out_of_the_box(tmp_path):
    made = run_cli("init", "my app", cwd=tmp_path)
    assert made.code == 0
    assert "Next: cd 'my app' && pfunc dev" in made.stdout  # pasteable as it is printed
    run = run_cli("test", cwd=tmp_path / "my app")  # default: the project's tests/ folder
    assert run.code == 0, run.stdout
    assert "4 passed, 0 failed" in run.stdout
    fired = run_cli("fire", "chat.room", '{"user":"bob","text":"x"}', cwd=tmp_path / "my app")
    assert "Fired message" in fired.stdout and "Delivered message" not in fired.stdout


def test_pfunc_init_in_a_repository_keeps_its_readme_and_gitignore(tmp_path):
    (tmp_path / "README.md").write_text("ours\n")
    (tmp_path / ".gitignore").write_text("node_modules/\n")
    made = run_cli("init", cwd=tmp_path)
    assert made.code == 0, made.stderr
    assert (tmp_path / "README.md").read_text() == "ours\n"
    assert "kept your .gitignore (add .pfunc/ to it" in made.stdout
    assert (tmp_path / "pfunc.toml").is_file()
    again = run_cli("init", cwd=tmp_path)  # but never a project over a project
    assert again.code == 2 and "would overwrite pfunc.toml" in again.stderr


def test_pfunc_init_writes_all_of_its_project_or_none_of_it(tmp_path, monkeypatch):
    """A file where a folder goes (`tests`) is refused before anything is written, and a
    write that fails part-way (a full disk) takes back what it wrote: the next init is
    not refused for files a failed one left."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "tests").write_text("x")
    blocked = invoke_cli("init", "app", cwd=tmp_path)
    assert blocked.code == 2 and "needs app/tests as a folder, and it is a file" in blocked.stderr
    assert sorted(p.name for p in (tmp_path / "app").iterdir()) == ["tests"]
    (tmp_path / "file").write_text("x")
    assert "needs file as a folder" in invoke_cli("init", "file", cwd=tmp_path).stderr

    write_text = Path.write_text

    def disk_full_at_the_scenarios(self: Path, *args: Any, **kwargs: Any) -> int:
        if self.name == "api.test.toml":
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", disk_full_at_the_scenarios)
    full = invoke_cli("init", "full", cwd=tmp_path)
    assert full.code == 2 and "No space left on device" in full.stderr
    assert "nothing was written" in full.stderr and not (tmp_path / "full").exists()
    monkeypatch.undo()
    assert invoke_cli("init", "full", cwd=tmp_path).code == 0


def _break(project: Path, old: str, new: str) -> None:
    handler = project / "examples" / "rate_limit.js"
    source = handler.read_text()
    assert old in source
    handler.write_text(source.replace(old, new))


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        (
            "const DEFAULT_LIMIT = 10;",
            "const DEFAULT_LIMIT = 9;",
            "message.rateLimitRemaining: expected 9, got 8",
        ),
        (
            "request.message.rateLimitRemaining = limit - used;",
            "throw new Error('kaboom');",
            "error: Error: kaboom",
        ),
        (
            "request.message.rateLimitRemaining = limit - used;",
            "await db.set('extra', 1); request.message.rateLimitRemaining = limit - used;",
            "operation limit exceeded: kvstore.set would be operation 4 of 3",
        ),
    ],
    ids=["changed-logic", "thrown-error", "fourth-operation"],
)
def test_a_broken_handler_fails_the_right_scenario(project, tmp_path, old, new, fragment):
    _break(project, old, new)
    junit = tmp_path / "report" / "junit.xml"
    run = run_cli("test", "examples", "--junit", junit, cwd=project)
    assert run.code == 1
    assert fragment in run.stdout
    # The failure points at the expectation of the first step, in the scenario file.
    assert "step 1 (publish on chat) at examples/rate_limit.test.toml:10" in run.stdout
    assert "✘ ten messages a minute, then the eleventh is refused [rate-limit]" in run.stdout
    # The Python version and the other scenarios still pass.
    assert "✔ ten messages a minute, then the eleventh is refused [rate-limit-py]" in run.stdout
    assert "✔ login, validate, logout [sessions]" in run.stdout
    suites = ElementTree.parse(junit).getroot()
    failures = [case for case in suites.iter("testcase") if case.find("failure") is not None]
    assert {case.get("name") for case in failures} >= {
        "ten messages a minute, then the eleventh is refused [rate-limit]"
    }
    assert fragment in failures[0].find("failure").text


def test_kv_seeds_are_stored_and_checked_as_a_handlers_own_calls(tmp_path):
    """A seed production could never hold (an empty key, a value past the limit) makes the
    scenario malformed, not a pass; numbers are stored as JavaScript writes them."""
    (tmp_path / "h.js").write_text(
        'const db = require("kvstore");\n'
        "export default async (request) => {\n"
        '  request.message.text = await db.getItem("f");\n'
        "  return request.ok();\n"
        "};\n"
    )
    scenario = """
[[scenario]]
name = "numbers"
file = "h.js"
kv = {{ f = 1e-7, quotes = '{quotes}' }}
[[scenario.step]]
publish = {{ message = {{}} }}
expect = {{ message = {{ text = "1e-7" }} }}

[[scenario]]
name = "unstorable"
file = "h.js"
{seed}
[[scenario.step]]
publish = {{ message = {{}} }}
"""
    seeds = {
        "empty key": 'kv = { "" = 1 }',
        "too big": f'kv = {{ big = "{"x" * 31_000}" }}',
        "long counter key": f"counters = {{ {'k' * 251} = 1 }}",
    }
    for problem, seed in seeds.items():
        # 20,000 quotes: 20,000 bytes as setItem counts a string, 40,002 as JSON (set's)
        (tmp_path / "s.test.toml").write_text(scenario.format(seed=seed, quotes='"' * 20_000))
        run = run_cli("test", "s.test.toml", "--json", cwd=tmp_path)
        assert run.code == 2, (problem, run.stdout)
        results = {entry["name"]: entry for entry in json.loads(run.stdout)["scenarios"]}
        assert results["numbers"]["status"] == "passed", problem
        unstorable = results["unstorable"]
        assert unstorable["malformed"], problem
        said = unstorable["failure"]["mismatches"][0]["actual"]
        assert ": kvstore." in said and "(line 13 of s.test.toml)" in said, said


def test_a_header_of_several_lines_is_expected_as_a_list_and_saved_as_its_first(tmp_path):
    (tmp_path / "login.js").write_text(
        "export default (request, response) => {\n"
        "  response.headers['Set-Cookie'] = ['session=abc; Path=/', 'theme=dark; Path=/'];\n"
        "  response.headers['X-Empty'] = [];\n"
        "  return response.send(request.headers.cookie || 'none');\n"
        "};\n"
    )
    (tmp_path / "login.test.toml").write_text(
        '[[scenario]]\nname = "cookies"\nfile = "login.js"\n'
        "[[scenario.step]]\n"
        'request = { method = "POST" }\n'
        'expect = { headers = { set-cookie = ["session=abc; Path=/", "theme=dark; Path=/"] } }\n'
        'save = { cookie = "response.headers.set-cookie" }\n'
        "[[scenario.step]]\n"
        'request = { headers = { cookie = "${cookie}" } }\n'
        'expect = { body = "session=abc; Path=/" }\n'
    )
    run = run_cli("test", "login.test.toml", "--json", cwd=tmp_path)
    assert run.code == 0, run.stdout
    # No line at all for an empty list, as Node sends none.
    report = invoke_cli(
        "run", tmp_path / "login.js", "--event", "on-request", "--json", cwd=tmp_path
    )
    assert "X-Empty" not in json.loads(report.stdout)["response"]["headers"]


def test_malformed_scenarios_exit_2_with_the_line(project):
    bad = project / "examples" / "bad.test.toml"
    bad.write_text(
        '[[scenario]]\nname = "x"\nfunction = "config"\n\n[[scenario.step]]\n'
        'request = { path = "/config" }\nexpect = { stauts = 200 }\n'
    )
    run = run_cli("test", "examples", cwd=project)
    assert run.code == 2
    assert 'examples/bad.test.toml:7: step 1 of "x": unknown expectation(s) stauts' in run.stderr
    bad.write_text(
        '[[scenario]]\nname = "x"\nfunction = "config"\n\n[[scenario.step]]\n'
        'request = { path = "/config"\n'
    )
    run = run_cli("test", bad, cwd=project)
    assert run.code == 2 and "not valid TOML" in run.stderr and "bad.test.toml:6:" in run.stderr
    bad.write_text(
        '[[scenario]]\nname = "x"\nfunction = "nope"\n\n[[scenario.step]]\ninterval = true\n'
    )
    run = run_cli("test", bad, cwd=project)
    # Found only when the step runs: the scenario is reported as malformed (exit 2).
    assert run.code == 2 and "at examples/bad.test.toml:5\n" in run.stdout
    assert "cannot run as written: no function 'nope'" in run.stdout
    bad.write_text(bad.read_text().replace('"nope"', '"confg"'))
    run = run_cli("test", bad, cwd=project)
    assert run.code == 2 and "no function 'confg' (did you mean config?)" in run.stdout


STEP = '[[scenario.step]]\npublish = { message = { n = 1 } }\nexpect = { outcome = "ok" }\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f'[[scenario]]\nname = "same"\nfile = "h.js"\n{STEP}\n'
            f'[[scenario]]\nname = "same"\nfile = "h.js"\n{STEP}',
            's.test.toml:8: a scenario named "same" is already on line 1',
        ),
        (
            f'[[scenario]]\nname = "twice"\nfunction = ["a", "a"]\n{STEP}',
            "s.test.toml:1: function = [...] names each one once",
        ),
        (  # a value told back as the file writes it, not as Python does
            '[[scenario]]\nname = "t"\nfile = "h.js"\n[[scenario.step]]\ninterval = true\n'
            "expect = { outcome = true }\n",
            "expect.outcome takes one of ok, abort, response, error; got true",
        ),
        (
            f'[[scenario]]\nname = "five"\nfunction = 5\n{STEP}',
            "s.test.toml:3: function must be text",
        ),
        (
            f'[[scenario]]\nname = "none"\nfunction = []\n{STEP}',
            "s.test.toml:1: function = [] names no function",
        ),
        (  # one bracket: a table where a step is one of a list
            '[[scenario]]\nname = "one"\nfile = "h.js"\n[scenario.step]\ninterval = true\n',
            's.test.toml:1: scenario "one": write its steps as [[scenario.step]]',
        ),
        (
            f'[[scenario]]\nfunction = ["a", "b"]\n{STEP}',
            's.test.toml:1: every [[scenario]] needs a name = "..."',
        ),
        (  # a misspelt table would hold scenarios that never run
            f'[[scenario]]\nname = "a"\nfile = "h.js"\n{STEP}\n[[scenarios]]\nname = "b"\n',
            "s.test.toml:8: unknown key 'scenarios'; a scenario file holds [[scenario]]",
        ),
        (  # the presence event is built from its fields; a message replaced it whole
            '[[scenario]]\nname = "p"\nfile = "h.js"\n[[scenario.step]]\n'
            "presence = { message = 5 }\n",
            's.test.toml:4: step 1 of "p": presence takes no message (the event is built from',
        ),
        (
            f'[[scenario]]\nname = "a"\nfile = "h.js"\ncounters = {{ n = {2**64} }}\n{STEP}',
            f"s.test.toml:4: counters.n = {2**64}: counters take whole numbers, 64-bit",
        ),
        (
            f'[[scenario]]\nname = "a"\nfile = "h.js"\nkv = {{ k = {"[" * 2000}{"]" * 2000} }}\n',
            "s.test.toml: arrays or tables nested too deeply to read",
        ),
    ],
)
def test_each_scenario_of_a_file_has_a_name_of_its_own(tmp_path, text, message):
    """pytest, IDEs and JUnit tell scenarios apart by name (`file::name`)."""
    from pfunc.errors import PfuncUsageError
    from pfunc.testing.scenario import load_scenarios

    (tmp_path / "s.test.toml").write_text(text)
    with pytest.raises(PfuncUsageError) as raised:
        load_scenarios(tmp_path / "s.test.toml")
    assert message in str(raised.value)


def test_a_scenario_s_own_keys_are_placed_at_their_line(tmp_path):
    """A vault value, a counter or the second mock's status that is wrong is said at its
    own line (it was the [[scenario]] line, or line 1 for a mock), naming the key."""
    from pfunc.errors import PfuncUsageError
    from pfunc.testing.scenario import load_scenarios

    head = '[[scenario]]\nname = "a"\nfile = "h.js"\n'
    second = head.replace('"a"', '"b"')
    cases = {
        f"{head}\n[scenario.vault]\nK = 5\n{STEP}": "s.test.toml:6: vault.K = 5: vault values",
        f'{head}counters = {{ ok = 1, visits = "x" }}\n{STEP}': 's.test.toml:4: counters.visits = "x"',
        f'{head}\n[[scenario.mocks]]\nurl = "https://a"\n\n[[scenario.mocks]]\nurl = "https://b"\n'
        f'status = "two hundred"\n{STEP}': "s.test.toml:10: mocks[1].status must be an HTTP",
        f'{head}\n[[scenario.mocks]]\nurl = "https://a"\n\n[[scenario.mocks]]\nurl = "https://b"\n'
        f"json = {{ x = nan }}\n{STEP}": 's.test.toml:10: scenario "a": mocks[1].json.x = nan',
        f"{head}[[scenario.step]]\npublish = {{}}\n[scenario.step.expect]\nkv = {{ a = 1 }}\n\n"
        "[scenario.kv]\na = nan\n": 's.test.toml:10: scenario "a": kv.a = nan',
        f'{head}{STEP}\n{second}now = "soon"\n{STEP}': (
            "s.test.toml:11: now = 'soon' is not an ISO-8601"
        ),
    }
    for text, message in cases.items():
        (tmp_path / "s.test.toml").write_text(text)
        with pytest.raises(PfuncUsageError) as raised:
            load_scenarios(tmp_path / "s.test.toml")
        assert message in str(raised.value), (message, str(raised.value))


def test_a_file_named_twice_runs_once(tmp_path, monkeypatch):
    from pfunc.testing.scenario import discover

    (tmp_path / "tests").mkdir()
    for name in ("a", "b"):
        (tmp_path / "tests" / f"{name}.test.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    found = discover([Path("tests"), Path("tests/b.test.toml"), tmp_path / "tests" / "a.test.toml"])
    assert [path.name for path in found] == ["a.test.toml", "b.test.toml"]


def test_one_malformed_step_does_not_stop_the_run(project, tmp_path):
    bad = project / "examples" / "bad.test.toml"
    bad.write_text(
        '[[scenario]]\nname = "typed wrong"\nfunction = "occupancy"\n\n[[scenario.step]]\n'
        'presence = { occupancy = "many" }\n'
    )
    junit = tmp_path / "junit.xml"
    run = run_cli("test", "examples", "--junit", junit, cwd=project)
    assert run.code == 2
    assert "  cannot run as written: occupancy must be a whole number" in run.stdout
    assert "passed, 1 failed" in run.stdout  # the other scenarios ran
    # JUnit's error (the test could not run), not a failed expectation.
    case = [c for c in ElementTree.parse(junit).iter("testcase") if c.get("name") == "typed wrong"]
    assert [e.get("type") for e in case[0]] == ["MalformedStep"] and case[0][0].tag == "error"
    assert "marked malformed above" in run.stderr
    as_json = run_cli("test", "examples", "--json", cwd=project)
    assert as_json.code == 2 and '"malformed": true in the JSON' in as_json.stderr


def test_junit_holds_what_xml_cannot_as_escapes(tmp_path):
    """A coloured console line (ESC), a bell in a message and a control character in a
    scenario's name still make a JUnit file a CI can parse: each is written #xHH."""
    (tmp_path / "colour.js").write_text(
        'export default (request) => { console.log("\\u001b[31mred\\u001b[0m status");\n'
        '  return request.ok({ text: "bell\\u0007" }); };\n'
    )
    (tmp_path / "c.test.toml").write_text(
        '[[scenario]]\nname = "rings \\u0007 twice"\nfile = "colour.js"\n\n'
        '[[scenario.step]]\npublish = { message = {} }\nexpect = { message = { text = "other" } }\n'
    )
    junit = tmp_path / "junit.xml"
    run = invoke_cli("test", "c.test.toml", "--junit", junit, cwd=tmp_path)
    assert run.code == 1, run.stdout
    case = next(ElementTree.parse(junit).iter("testcase"))
    assert case.get("name") == "rings #x07 twice"
    assert "console.log: #x1B[31mred#x1B[0m status" in case[0].text


def test_filter_stop_and_json(project):
    only = run_cli("test", "examples", "-k", "SESSion", "--json", cwd=project)  # any case
    results = only.json()
    assert only.code == 0
    assert {s["name"] for s in results["scenarios"]} == {
        f"{name} [{function}]"
        for name in (
            "login, validate, logout",
            "a session expires after 30 minutes",
            "bad requests",
        )
        for function in ("sessions", "sessions-py")
    }
    _break(project, "const DEFAULT_LIMIT = 10;", "const DEFAULT_LIMIT = 1;")
    stopped = run_cli("test", "examples", "-x", "--json", cwd=project).json()
    assert stopped["failed"] == 1
    assert stopped["scenarios"][-1]["status"] == "failed"
    assert len(stopped["scenarios"]) < 21
    failure = stopped["scenarios"][-1]["failure"]
    assert failure["mismatches"][0]["field"].startswith(("message", "outcome"))


def test_randomness_is_seeded_so_runs_repeat(project):
    scenario = project / "examples" / "token.test.toml"

    def token(seed: int) -> str:
        # Expect a token that cannot be right, and read the real one from the failure.
        scenario.write_text(
            f'[[scenario]]\nname = "t"\nfunction = "sessions"\nseed = {seed}\n\n'
            "[[scenario.step]]\n"
            'request = { method = "POST", path = "/login", json = { userId = "u" } }\n'
            'expect = { json = { token = "not-this" } }\n'
        )
        run = run_cli("test", scenario, "--json", cwd=project)
        assert run.code == 1
        body = run.json()["scenarios"][0]["failure"]["result"]["response"]["body"]
        return json.loads(body)["token"]

    first = token(7)
    assert len(first) == 36 and first[14] == "4"  # a v4 UUID
    assert token(7) == first
    assert token(8) != first


def test_scenarios_send_file_messages_to_both_file_kinds(tmp_path):
    (tmp_path / "vet.js").write_text(
        "export default (request) => {\n"
        '  if (request.message.message === "secret") return request.abort("no secrets");\n'
        '  request.message.message += " [vetted]";\n'
        "  return request.ok();\n"
        "};\n"
    )
    (tmp_path / "audit.js").write_text(
        'const db = require("kvstore");\n'
        "export default async (request) => {\n"
        '  await db.set("file:" + request.message.file.id, request.message.message);\n'
        "  return request.ok();\n"
        "};\n"
    )
    (tmp_path / "files.test.toml").write_text(
        '[[scenario]]\nname = "file messages"\nfile = "vet.js"\n\n'
        "[[scenario.step]]\n"
        'publish-file = { channel = "docs", message = "report" }\n'
        'expect = { outcome = "ok", delivered = true, message = { message = "report [vetted]" } }\n'
        "\n[[scenario.step]]\n"
        'publish-file = { message = { message = "secret", file = { id = "f1", name = "a.txt" } } }\n'
        'expect = { outcome = "abort", abort_reason = "no secrets" }\n'
        "\n[[scenario.step]]\n"
        'file = "audit.js"\nevent = "after-publish-file"\n'
        'publish-file = { message = { message = "done", file = { id = "f2", name = "b.txt" } } }\n'
        'expect = { outcome = "ok", kv = { "file:f2" = "done" } }\n'
    )
    run = run_cli("test", "files.test.toml", cwd=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    assert "1 passed, 0 failed" in run.stdout


def test_scenarios_share_warm_contexts_yet_repeat_their_randomness(tmp_path):
    """Scenarios of one run reuse the handler's loaded context (production reuses
    isolates too); each still starts from its own seed, so equal seeds give equal ids."""
    (tmp_path / "ids.js").write_text(
        'const uuid = require("uuid");\n'
        "export default (request, response) => response.send({ id: uuid.v4() });\n"
    )
    scenario = (
        '[[scenario]]\nname = "NAME"\nfile = "ids.js"\nseed = 7\nSTORE\n'
        '[[scenario.step]]\nrequest = { path = "/" }\nexpect = { json = { id = "not-this" } }\n'
    )
    (tmp_path / "ids.test.toml").write_text(
        scenario.replace("NAME", "a").replace("STORE", "")
        + "\n"
        + scenario.replace("NAME", "b").replace("STORE", 'store = "disk"')
    )
    run = run_cli("test", tmp_path / "ids.test.toml", "--json", cwd=tmp_path)
    ids = [
        json.loads(s["failure"]["result"]["response"]["body"])["id"]
        for s in run.json()["scenarios"]
    ]
    assert len(ids) == 2 and ids[0] == ids[1] and len(ids[0]) == 36


def test_a_scenario_store_is_memory_or_disk(tmp_path):
    (tmp_path / "bad.test.toml").write_text(
        '[[scenario]]\nname = "x"\nfile = "h.js"\nstore = "cloud"\n\n'
        "[[scenario.step]]\ninterval = true\n"
    )
    run = run_cli("test", tmp_path / "bad.test.toml", cwd=tmp_path)
    assert run.code == 2 and 'store must be "memory" or "disk"' in run.stderr + run.stdout


def test_each_scenario_starts_on_an_empty_store(tmp_path):
    """Scenarios' stores in memory are reused once emptied: whatever one wrote (an item, a
    counter, a published message) is gone for the next, whichever ran before it."""
    (tmp_path / "writes.js").write_text(
        'const db = require("kvstore");\nconst pubnub = require("pubnub");\n'
        "export default async (request, response) => {\n"
        '  const seen = await db.get("seen");\n'
        '  const history = await pubnub.fetchMessages({ channels: ["log"] });\n'
        '  const hits = await db.incrCounter("hits");\n'
        '  await db.set("seen", true);\n'
        '  await pubnub.publish({ channel: "log", message: "hit" });\n'
        "  const logged = (history.channels.log || []).length;\n"
        "  return response.send({ fresh: seen === null && logged === 0, hits });\n"
        "};\n"
    )
    passes_each_time(
        tmp_path,
        "writes.js",
        "json = { fresh = true, hits = 1 }",
        [f"s{i}" for i in range(6)],
        setup='limits = "unlimited"',
    )


def test_warm_contexts_stay_on_the_thread_that_made_them(tmp_path):
    """A scenario run on another thread (the dev console replays saved scenarios on the
    server's) does not hand its contexts to this one, and a deep recursion runs as deep
    whichever thread made the context."""
    import asyncio
    import threading

    from pfunc.testing.runner import run_scenario
    from pfunc.testing.scenario import load_scenarios

    (tmp_path / "deep.js").write_text(
        "const depth = (n) => (n === 0 ? 0 : 1 + depth(n - 1));\n"
        "export default (request) => request.ok({ depth: depth(500) });\n"
    )
    (tmp_path / "deep.test.toml").write_text(
        '[[scenario]]\nname = "deep"\nfile = "deep.js"\n\n'
        "[[scenario.step]]\npublish = { message = {} }\n"
        "expect = { message = { depth = 500 } }\n"
    )
    (scenario,) = load_scenarios(tmp_path / "deep.test.toml")
    outcomes = []
    elsewhere = threading.Thread(
        target=lambda: outcomes.append(asyncio.run(run_scenario(scenario)).passed)
    )
    elsewhere.start()
    elsewhere.join()
    outcomes.append(asyncio.run(run_scenario(scenario)).passed)
    outcomes.append(asyncio.run(run_scenario(scenario)).passed)
    assert outcomes == [True, True, True]
    from pfunc.sandbox.pool import _WARM

    # What the other thread left was closed when it ended, not handed to this thread.
    parked_by = {key[0] for key, parked in _WARM.items() if parked}
    assert parked_by == {threading.current_thread()}


def test_the_scenarios_of_one_handler_share_one_context(tmp_path):
    """Reuse is what keeps a scenario's overhead under a millisecond: a prelude change that
    made every renewal fail (each scenario then paid ~5 ms for a new context) passed every
    other test. A global the handler sets, and a module it requires, keep it reusable."""
    import asyncio

    from pfunc.sandbox.pool import _WARM
    from pfunc.testing.runner import run_scenario
    from pfunc.testing.scenario import load_scenarios

    handler = tmp_path / "shared.js"
    handler.write_text(
        'const uuid = require("uuid");\nglobalThis.cache = {};\n'
        "export default (request) => { globalThis.seen = uuid.v4(); return request.ok(); };\n"
    )
    one = (
        '[[scenario]]\nname = "NAME"\nfile = "shared.js"\n\n[[scenario.step]]\n'
        'publish = { message = { a = 1 } }\nexpect = { outcome = "ok" }\n'
    )
    (tmp_path / "shared.test.toml").write_text("".join(one.replace("NAME", n) for n in "abc"))
    for scenario in load_scenarios(tmp_path / "shared.test.toml"):
        assert asyncio.run(run_scenario(scenario)).passed
    parked = [
        sandbox
        for key, sandboxes in _WARM.items()
        if key[1] == str(handler.absolute())
        for sandbox in sandboxes
    ]
    assert [sandbox.loads for sandbox in parked] == [3]


def test_a_reused_context_starts_as_a_new_one_would(tmp_path):
    """Randomness drawn by top-level code, and console lines it wrote, are as a fresh load
    leaves them, whichever scenarios ran before on the same context."""
    (tmp_path / "salt.js").write_text(
        'console.log("loaded");\nconst salt = Math.random();\n'
        "export default (request, response) => response.send({ salt, r: Math.random() });\n"
    )
    one = (
        '[[scenario]]\nname = "NAME"\nfile = "salt.js"\n\n[[scenario.step]]\n'
        'request = { path = "/" }\nexpect = { logs = "loaded", json = { r = -1 } }\n'
    )
    (tmp_path / "salt.test.toml").write_text(one.replace("NAME", "a") + one.replace("NAME", "b"))

    def answers(*selection: str) -> list[dict]:
        run = run_cli("test", tmp_path / "salt.test.toml", "--json", *selection, cwd=tmp_path)
        return [
            (
                json.loads(s["failure"]["result"]["response"]["body"]),
                [m["field"] for m in s["failure"]["mismatches"]],
            )
            for s in run.json()["scenarios"]
        ]

    both, alone = answers(), answers("-k", "b")
    assert both[0] == both[1] == alone[0]
    assert both[1][1] == ["json.r"]  # only r differs from the expectation: "loaded" was logged


def passes_each_time(folder: Path, file: str, expect: str, names: list[str], setup: str = ""):
    """One request scenario on `file` (expecting `expect`), under each of `names` (NAME in
    `setup` or `expect` is replaced by the scenario's name), all in one pfunc test run:
    each must pass, whichever ran before it."""
    scenario = (
        f'[[scenario]]\nname = "NAME"\nfile = "{file}"\n{setup}\n\n'
        f'[[scenario.step]]\nrequest = {{ path = "/" }}\nexpect = {{ {expect} }}\n'
    )
    text = "\n".join(scenario.replace("NAME", name) for name in names)
    (folder / "each.test.toml").write_text(text)
    run = run_cli("test", folder / "each.test.toml", cwd=folder)
    assert run.code == 0, run.stdout + run.stderr
    assert f"{len(names)} passed, 0 failed" in run.stdout


COUNT_JS = """
const db = require("kvstore");
let cached = null;  // module state: a value read once and kept
let executions = 0;
console.log("loaded");
export default async (request, response) => {
  executions += 1;
  if (cached === null) cached = await db.get("config");
  return response.send({ executions, config: cached });
};
"""
COUNT_PY = """
executions = 0

def handler(request, response):
    global executions
    executions += 1
    return response.send({"executions": executions})
"""


@pytest.mark.parametrize(
    ("file", "source", "expect"),
    [
        # A JavaScript handler's top-level console line belongs to a fresh load too.
        ("count.js", COUNT_JS, 'json = { executions = 1, config = "NAME" }, logs = ["loaded"]'),
        ("count.py", COUNT_PY, "json = { executions = 1 }"),
    ],
)
def test_each_scenario_starts_from_a_fresh_load_of_the_handler(tmp_path, file, source, expect):
    """Scenarios share loaded contexts (and Python workers) for speed, yet each starts as
    a new load would: module state from another scenario would make a scenario's outcome
    depend on which ran before it, and on how pytest-xdist spread them."""
    (tmp_path / file).write_text(source)
    names = ["first", "second", "third"]
    passes_each_time(tmp_path, file, expect, names, setup='kv = { config = "NAME" }')


def test_a_python_handlers_own_helper_modules_start_afresh_in_each_scenario(tmp_path):
    """A helper module beside the handler (as docs/handlers.md describes them) kept its
    module state from the scenario before: the second of two identical scenarios failed,
    in `pfunc test` and `pytest` alike, and passed alone or under -n."""
    (tmp_path / "tally.py").write_text(
        "seen = {}\n\n\ndef bump(key):\n    seen[key] = seen.get(key, 0) + 1\n"
        "    return seen[key]\n"
    )
    (tmp_path / "counts.py").write_text(
        "import json\n\nfrom tally import bump\n\n\n"
        "def handler(request, response):\n"
        '    return response.send({"n": bump("x"), "json": json.__name__})\n'
    )
    passes_each_time(tmp_path, "counts.py", 'json = { n = 1, json = "json" }', ["a", "b", "c"])


def test_a_handler_whose_top_level_code_cannot_run_twice_in_one_context_still_loads(tmp_path):
    """Top-level code that defines a property for good cannot run again in the context it
    ran in: such a context is not reused, and the scenario gets a new one."""
    (tmp_path / "fixed.js").write_text(
        "// A polyfill: a getter, not configurable (defineProperty's default)\n"
        'Object.defineProperty(Array.prototype, "last", { get() { return this[this.length - 1]; } });\n'
        "export default (request, response) => response.send({ version: [1, 2].last });\n"
    )
    passes_each_time(tmp_path, "fixed.js", "json = { version = 2 }", ["first", "second"])


@pytest.mark.parametrize(
    ("file", "source"),
    [
        (
            "big.js",
            'const table = new Array(60000).fill(0).map((_, i) => ({ i, s: "x" + i }));\n'
            "export default (request, response) => {\n"
            '  const work = new Array(60000).fill(0).map((_, i) => ({ i, s: "y" + i }));\n'
            "  return response.send({ n: table.length + work.length });\n"
            "};\n",
        ),
        (
            "big.py",
            'TABLE = [("x" * 20) + str(i) for i in range(250000)]\n\n\n'
            "def handler(request, response):\n"
            '    work = [("y" * 20) + str(i) for i in range(250000)]\n'
            '    return response.send({"n": len(TABLE) + len(work)})\n',
        ),
    ],
)
def test_a_handler_loaded_again_and_again_does_not_pile_up_memory(tmp_path, file, source):
    """Each scenario loads the handler again in a reused context (or worker): what earlier
    loads allocated must not pile up until a later scenario runs out of memory (a context
    that has grown is replaced; a worker drops the last module first)."""
    (tmp_path / file).write_text(source)
    n = 120000 if file.endswith(".js") else 500000
    passes_each_time(tmp_path, file, f"json = {{ n = {n} }}", [f"s{i}" for i in range(12)])


def test_a_context_whose_later_loads_keep_more_is_replaced_in_time(tmp_path):
    """What old loads keep is checked before every reuse, however little the first loads
    kept: scenarios that keep 3 MB each after two that keep nothing all pass under a
    16 MiB limit, as each does alone."""
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nname = "keep"\nlimits = "classic"\n\n[limits]\nmemory_mb = 16\n'
    )
    (tmp_path / "keep.js").write_text(
        "const keep = [];\n"
        "export default (request) => {\n"
        '  keep.push("x".repeat(request.message.n) + Math.random());\n'
        "  return request.ok();\n"
        "};\n"
    )
    sizes = [100, 100] + [3_000_000] * 8
    (tmp_path / "keep.test.toml").write_text(
        "\n".join(
            f'[[scenario]]\nname = "s{i}"\nfile = "keep.js"\n\n[[scenario.step]]\n'
            f'publish = {{ message = {{ n = {n} }} }}\nexpect = {{ outcome = "ok" }}\n'
            for i, n in enumerate(sizes)
        )
    )
    run = run_cli("test", tmp_path / "keep.test.toml", cwd=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    assert "10 passed, 0 failed" in run.stdout


def test_a_scenario_near_its_memory_limit_passes_after_others_as_it_does_alone(tmp_path):
    """A reused context keeps what earlier loads allocated (here 1 MB, under the eighth of
    the limit that retires it): a scenario that then runs out of memory is run again in a
    new context, so that it passes as it does alone, whichever ran before it."""
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nname = "m"\nlimits = "classic"\n\n[limits]\nmemory_mb = 16\n'
    )
    (tmp_path / "grow.js").write_text(
        "const held = [];\n"
        "export default (request) => {\n"
        "  for (let i = 0; i < request.message.n; i++) held.push(new Array(65536).fill(i));\n"
        "  return request.ok();\n"
        "};\n"
    )
    (tmp_path / "seq.test.toml").write_text(
        "".join(
            f'[[scenario]]\nname = "{name}"\nfile = "grow.js"\n\n[[scenario.step]]\n'
            f'publish = {{ message = {{ n = {n} }} }}\nexpect = {{ outcome = "ok" }}\n\n'
            for name, n in [("a", 0), ("b", 0), ("keeps 1 MB", 1), ("big", 10)]
        )
    )
    alone = run_cli("test", "seq.test.toml", "-k", "big", cwd=tmp_path)
    assert alone.code == 0, alone.stdout
    after = run_cli("test", "seq.test.toml", cwd=tmp_path)
    assert after.code == 0 and "4 passed, 0 failed" in after.stdout, after.stdout


def test_globals_a_handlers_top_level_code_added_go_with_its_last_load(tmp_path):
    (tmp_path / "glob.js").write_text(
        "globalThis.seen = (globalThis.seen || 0) + 1;\n"
        "export default (request, response) => response.send({ seen: globalThis.seen });\n"
    )
    passes_each_time(tmp_path, "glob.js", "json = { seen = 1 }", ["g0", "g1", "g2"])


@pytest.mark.parametrize(
    ("scenario_line", "step_lines", "words"),
    [
        ("", 'request = { path = "/" }\nexpect = { kv = 5 }', "expect.kv takes a table"),
        ("", 'request = { path = "/" }\nexpect = { kv = ["a"] }', "expect.kv takes a table"),
        ("", 'request = { path = "/" }\nexpect = { headers = "x" }', "expect.headers takes"),
        ("", 'request = { path = "/" }\nexpect = { outcome = "maybe" }', "expect.outcome takes"),
        ("", 'request = { path = "/" }\nexpect = { operations = "3" }', "expect.operations"),
        ("", 'request = { path = "/" }\nexpect = { counters = { a = "1" } }', "expect.counters"),
        ("", 'request = { path = "/" }\nexpect = { error = { kind = "x" } }', "expect.error"),
        ("", 'publish = "hello"', "publish must be a table"),
        ("mocks = 5", 'request = { path = "/" }', "mocks is a list of tables"),
        ("", "interval = false", "interval = false; write interval = true"),
        ("", "interval = 5", "interval = 5; write interval = true"),
        ('now = "yesterday"', "interval = true", "now = 'yesterday' is not an ISO-8601 time"),
        ("vault = { A = 1 }", "interval = true", "vault values are text"),
        ('mocks = [{ urll = "x" }]', "interval = true", "mocks[0]: unknown key(s) urll"),
        ('mocks = [{ body = "x" }]', "interval = true", "mocks[0].url is required"),
        ("limits = { timeout = 1 }", 'request = { path = "/" }', "limits names a profile"),
        ('function = "f"', 'request = { path = "/" }', "names both function and file"),
        ("", 'function = "f"\nfile = "h.js"\nrequest = { path = "/" }', "names both"),
        # TOML's dates and times, and nan, have no JSON form (they were a TypeError).
        ("kv = { d = 2026-01-01 }", "interval = true", "kv.d = 2026-01-01 is a TOML date"),
        ("", "publish = { message = { d = [1, 12:30:00] } }", "message.d[1] = 12:30:00 is"),
        ("", "interval = true\nexpect = { kv = { a = 2026-01-01T00:00:00Z } }", "expect.kv.a ="),
        ("", "publish = { message = { n = nan } }", "message.n = nan is not a number JSON"),
        ("kv = { n = inf }", "interval = true", "kv.n = inf is not a number JSON"),
        # A misspelt event field is found when the file is read, not when its step runs.
        ("", "publish = { mesage = 1 }", "unknown field mesage (did you mean message?)"),
        ("", "request = { jsn = { a = 1 } }", "unknown field jsn (did you mean json?)"),
        # A seed the engines' generator cannot hold was taken modulo 2^32: 1 and 2^32+1
        # drew the same numbers.
        ("seed = 4294967297", "interval = true", "seed must be a whole number, 0 to 2^32-1"),
        ("seed = -1", "interval = true", "seed must be a whole number, 0 to 2^32-1"),
        ("seed = true", "interval = true", "seed must be a whole number, 0 to 2^32-1"),
    ],
)
def test_a_value_of_the_wrong_kind_is_a_malformed_file_not_a_traceback(
    tmp_path, scenario_line, step_lines, words
):
    """Each was a Python traceback (TypeError, AttributeError) or passed silently."""
    from pfunc.errors import PfuncUsageError
    from pfunc.testing.scenario import load_scenarios

    path = tmp_path / "kinds.test.toml"
    path.write_text(
        f'[[scenario]]\nname = "s"\nfile = "h.js"\n{scenario_line}\n\n'
        f"[[scenario.step]]\n{step_lines}\n"
    )
    with pytest.raises(PfuncUsageError) as refused:
        load_scenarios(path)
    assert words in str(refused.value) and str(path.name) in str(refused.value)


def test_a_query_value_that_is_a_list_is_refused_not_written_as_python(tmp_path):
    from pfunc.errors import PfuncUsageError
    from pfunc.events import EventSpec, build_event

    with pytest.raises(PfuncUsageError, match=r"query\.a must be text or a number"):
        build_event("on-request", EventSpec(query={"a": ["1", "2"]}))
    import datetime

    since = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)  # a TOML date-time
    event = build_event("on-request", EventSpec(query={"on": True, "n": 2, "since": since}))
    assert event.query == {"on": "true", "n": "2", "since": "2026-01-01T00:00:00+00:00"}


def test_built_ins_a_scenario_changed_never_reach_the_next(tmp_path):
    """A context reused for the next scenario must be as pfunc left it: a handler's
    Date.now, Math.random, String.prototype.trim or a property on every object made the
    next scenarios fail, in an order that -n changed from run to run."""
    (tmp_path / "evalr.js").write_text(
        "export default (request) => {\n"
        "  if (request.message.code) new Function(request.message.code)();\n"
        "  return request.ok({ now: Date.now(), trim: ' a '.trim(),"
        " polluted: ({}).polluted !== undefined });\n"
        "};\n"
    )
    code = (
        "Date.now = () => 1; Math.random = () => 0.5; "
        "String.prototype.trim = function () { return 'x'; }; Object.prototype.polluted = 1;"
    )
    scenarios = "".join(
        f'[[scenario]]\nname = "{name}"\nfile = "evalr.js"\n\n[[scenario.step]]\n'
        f"publish = {{ message = {message} }}\n{expect}\n\n"
        for name, message, expect in [
            ("changes them", f'{{ code = "{code}" }}', ""),
            ("clean", "{}", 'expect = { message = { now = 1767225600000, trim = "a", '
             "polluted = false } }"),
        ]
    )  # fmt: skip
    (tmp_path / "iso.test.toml").write_text(scenarios)
    run = run_cli("test", "iso.test.toml", cwd=tmp_path)
    assert run.code == 0 and "2 passed, 0 failed" in run.stdout, run.stdout


@pytest.mark.parametrize(
    ("change", "seen"),
    [
        # A global the handler made non-configurable, by name or by symbol.
        ('Object.defineProperty(globalThis, "sticky", { value: 1 })', "typeof globalThis.sticky"),
        (
            'Object.defineProperty(globalThis, Symbol.for("s"), { value: 1 })',
            'typeof globalThis[Symbol.for("s")]',
        ),
        ('globalThis[Symbol.for("t")] = 1', 'typeof globalThis[Symbol.for("t")]'),
        # What the modules' own objects hold, however deep.
        (
            'require("pubnub").objects.getAllUUIDMetadata = () => 1',
            'typeof require("pubnub").objects.getAllUUIDMetadata()',
        ),
        (
            'require("pubnub").channelGroups.extra = 1',
            'typeof require("pubnub").channelGroups.extra',
        ),
        ('require("uuid").v5.extra = 1', 'typeof require("uuid").v5.extra'),
        ('require("jsonpath").JSONPath.extra = 1', 'typeof require("jsonpath").JSONPath.extra'),
    ],
)
def test_what_a_scenario_left_on_globals_and_modules_never_reaches_the_next(tmp_path, change, seen):
    """Each reached the next scenario in the same run (a second read found them)."""
    (tmp_path / "leave.js").write_text(
        "export default (request, response) => {\n"
        f"  const seen = {seen};\n"
        f"  {change};\n"
        "  return response.send({ seen });\n"
        "};\n"
    )
    expect = (
        'json = { seen = "undefined" }'
        if "Metadata()" not in seen
        else 'json = { seen = "object" }'
    )
    passes_each_time(tmp_path, "leave.js", expect, ["first", "second", "third"])


@pytest.mark.parametrize(
    ("change", "seen", "expected"),
    [
        # A method under a symbol, an accessor, a deleted method, and a property added
        # without being enumerable: each kind of record the check compares.
        (
            'String.prototype[Symbol.iterator] = function* () { yield "x"; }',
            '[..."ab"].join("")',
            "ab",
        ),
        (
            'Object.defineProperty(RegExp.prototype, "flags", { get() { return "x"; }, '
            "configurable: true })",
            "/a/g.flags",
            "g",
        ),
        ("delete Array.prototype.includes", "typeof [].includes", "function"),
        # Intrinsics no global names, a global's own prototype and a QuickJS global: each
        # reached the next scenario (a hostile hunt found them).
        (
            "Object.getPrototypeOf(function* () {}).prototype.next = () => ({ done: true })",
            "String([...(function* () { yield 1; })()].length)",
            "1",
        ),
        (
            "Object.getPrototypeOf(async function () {}).extra = 1",
            "typeof (async () => {}).extra",
            "undefined",
        ),
        (
            'Object.getPrototypeOf("".matchAll(/a/g)).next = () => ({ done: true })',
            'String([..."aa".matchAll(/a/g)].length)',
            "2",
        ),
        ("Atomics.kept = new FinalizationRegistry(() => {})", "typeof Atomics.kept", "undefined"),
        (
            "Object.getPrototypeOf([].values().map((x) => x)).extra = 1",
            "typeof Object.getPrototypeOf([].values().map((x) => x)).extra",
            "undefined",
        ),
        ("DOMException.prototype.extra = 1", "typeof DOMException.prototype.extra", "undefined"),
        # A handler's own Error.prepareStackTrace (kept aside by pfunc) is a change too.
        (
            "Error.prepareStackTrace = () => 'mine'",
            "String(new Error('e').stack === 'mine')",
            "false",
        ),
        (
            "Object.setPrototypeOf(globalThis, { extra: 1 })",
            "typeof globalThis.extra",
            "undefined",
        ),
        (
            'Object.defineProperty(Array.prototype, "extra", { value: 1, configurable: true })',
            "typeof [].extra",
            "undefined",
        ),
        # A getter in a built-in's place that, read by the check, puts the method back
        # and adds to every object: the check's own read must not be what hides it.
        (
            "const max = Math.max; Object.defineProperty(Math, 'max', { configurable: true, "
            "get() { Object.defineProperty(Math, 'max', { value: max, writable: true, "
            "configurable: true }); Object.prototype.leak = 1; return max; } })",
            "typeof ({}).leak",
            "undefined",
        ),
    ],
)
def test_a_built_in_changed_in_any_way_never_reaches_the_next_scenario(
    tmp_path, change, seen, expected
):
    """The check of a reused context compares each kind of record it keeps (compiled
    since 2026-11-30): any change to a built-in means a new context for the next one."""
    (tmp_path / "change.js").write_text(
        "export default (request, response) => {\n"
        f"  const seen = {seen};\n"
        f"  {change};\n"
        "  return response.send({ seen });\n"
        "};\n"
    )
    passes_each_time(
        tmp_path, "change.js", f'json = {{ seen = "{expected}" }}', ["first", "second", "third"]
    )


def test_the_built_ins_check_is_not_made_by_code_a_handler_replaced():
    """The check of a reused context is compiled from the record with no method a
    handler can replace: a RegExp test that puts itself back as it adds to every object
    made the check pass with the addition in place."""
    from pfunc.sandbox.quickjs_host import JavaScriptSandbox

    sandbox = JavaScriptSandbox(
        "export default (request) => request.ok();\n", "h.js", 32 * 1024 * 1024, 10.0, reused=True
    )
    sandbox._context.eval(
        "(() => { const test = RegExp.prototype.test; RegExp.prototype.test = function (s) {"
        " RegExp.prototype.test = test; Object.prototype.leak = 1; return test.call(this, s);"
        " }; })();"
    )
    assert sandbox.reusable() is False


def test_python_uuid_and_random_int_are_seeded_as_javascripts(tmp_path):
    """testing.md: seeded randomness, so uuid.v4 repeats, in both languages alike (a
    Python handler's uuid.v4 was different on every run)."""
    (tmp_path / "u.js").write_text(
        'const uuid = require("uuid");\n'
        "export default (request) => request.ok({ id: uuid.v4() });\n"
    )
    (tmp_path / "u.py").write_text(
        "from pfunc import require\n\nuuid = require('uuid')\n\n"
        "def handler(request):\n    return request.ok({'id': uuid.v4()})\n"
    )
    (tmp_path / "u.test.toml").write_text(
        '[[scenario]]\nname = "alike"\nseed = 7\n\n'
        '[[scenario.step]]\nfile = "u.js"\npublish = { message = {} }\n'
        'save = { id = "message.id" }\n\n'
        '[[scenario.step]]\nfile = "u.py"\npublish = { message = {} }\n'
        'expect = { message = { id = "${id}" } }\n'
    )
    for _ in range(2):
        run = run_cli("test", "u.test.toml", cwd=tmp_path)
        assert run.code == 0 and "1 passed" in run.stdout, run.stdout


def test_a_save_path_or_a_variable_that_is_not_there_says_so(tmp_path):
    """A save whose path the result does not have fails its step (it saved null), and a
    ${name} used before the step that saves it is a malformed step (it was sent as
    written); a ${name} no step saves is the scenario's own text."""
    (tmp_path / "echo.js").write_text(
        "export default (request, response) => response.send({ token: 't1' });\n"
    )
    head = '[[scenario]]\nname = "s"\nfile = "echo.js"\n\n'
    (tmp_path / "save.test.toml").write_text(
        head + '[[scenario.step]]\nrequest = { path = "/" }\nsave = { t = "json.nope.deeper" }\n'
    )
    run = run_cli("test", "save.test.toml", cwd=tmp_path)
    assert run.code == 1 and 'save.t: expected "json.nope.deeper"' in run.stdout, run.stdout
    (tmp_path / "vars.test.toml").write_text(
        head + '[[scenario.step]]\nrequest = { path = "/${token}" }\n\n'
        '[[scenario.step]]\nrequest = { path = "/", body = "Hi ${name}" }\n'
        'save = { token = "json.token" }\n'
    )
    run = run_cli("test", "vars.test.toml", cwd=tmp_path)
    # Used before the step that saves it: malformed. ${name}, saved by no step, is text.
    assert run.code == 2 and "${token}: no earlier step saved 'token'" in run.stdout, run.stdout


def test_a_saved_object_or_number_used_as_a_key_is_its_json_text(tmp_path):
    """A table key that is only a saved value (an object, a number) is its JSON text, as
    inside a longer text: it was the value itself, which broke the whole run with a
    traceback (an unhashable dict; a number as a header name)."""
    (tmp_path / "echo.js").write_text(
        "const db = require('kvstore');\n"
        "export default async (request, response) => {\n"
        "  await db.set('{\"a\":1}', 'x');\n"
        "  response.headers['7'] = 'seven';\n"
        "  return response.send({ obj: { a: 1 }, n: 7 });\n};\n"
    )
    (tmp_path / "keys.test.toml").write_text(
        '[[scenario]]\nname = "keys"\nfile = "echo.js"\n\n'
        '[[scenario.step]]\nrequest = { path = "/" }\nsave = { obj = "json.obj", n = "json.n" }\n\n'
        '[[scenario.step]]\nrequest = { path = "/" }\n'
        'expect = { kv = { "${obj}" = "x" }, headers = { "${n}" = "seven" } }\n\n'
        '[[scenario.step]]\nrequest = { path = "/" }\n'
        'expect = { kv = { "${obj}" = "absent" } }\n'
    )
    run = run_cli("test", "keys.test.toml", cwd=tmp_path)
    assert run.code == 1 and "Traceback" not in run.stdout + run.stderr, run.stdout
    assert 'kv.{"a":1}: expected "absent", got "x"' in run.stdout, run.stdout
    assert "step 3 (request GET /)" in run.stdout and "step 2" not in run.stdout


def test_a_scenario_that_runs_out_of_time_in_a_reused_context_runs_once(tmp_path):
    """A scenario failing on an error in a context an earlier scenario used runs again in
    a new one (memory an earlier load kept may have caused it). Not when it ran out of
    time: it would in a new context too, and the run waited out the limit twice."""
    from pfunc.testing.runner import run_scenario
    from pfunc.testing.scenario import load_scenarios

    (tmp_path / "pfunc.toml").write_text("[limits]\ntimeout = 0.5\n")
    (tmp_path / "l.js").write_text(
        "export default (request) => { while (request.message.spin) {} return request.ok(); };\n"
    )
    scenarios = "".join(
        f'[[scenario]]\nname = "{name}"\nfile = "l.js"\n\n'
        f"[[scenario.step]]\npublish = {{ message = {{ spin = {spin} }} }}\n\n"
        for name, spin in (("quick", "false"), ("runs away", "true"))
    )
    (tmp_path / "l.test.toml").write_text(scenarios)
    quick, runaway = load_scenarios(tmp_path / "l.test.toml")
    engines = []

    async def count(engine) -> None:
        engines.append(engine)

    async def both() -> None:
        assert (await run_scenario(quick)).passed
        result = await run_scenario(runaway, count)
        assert result.results[0].error.type == "TimeoutError"

    asyncio.run(both())
    assert len(engines) == 1


def test_disk_stores_a_stopped_run_left_are_removed_by_the_next(tmp_path, monkeypatch):
    """Ctrl-C ends pfunc test at once, leaving the folder of a disk scenario it stopped;
    the next run's first disk scenario removes those of processes that have ended, and
    no other."""
    import os
    import tempfile

    from pfunc.testing import scenario_stores

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(scenario_stores, "_swept", False)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    left = tmp_path / f"pfunc-scenario-{ended.pid}-abc"
    (left / "kv.sqlite3").parent.mkdir()
    (left / "kv.sqlite3").write_bytes(b"x" * 1000)
    running = tmp_path / f"pfunc-scenario-{os.getppid()}-abc"
    running.mkdir()
    with scenario_stores.scenario_store_folder() as folder:
        assert folder.parent == tmp_path and folder.name.startswith(
            f"pfunc-scenario-{os.getpid()}-"
        )
        assert not left.exists() and running.exists()
    assert not folder.exists()


def test_a_byte_order_mark_is_no_part_of_a_scenario_file(tmp_path):
    from pfunc.testing.scenario import load_scenarios

    path = tmp_path / "bom.test.toml"
    path.write_bytes(
        b"\xef\xbb\xbf" + b'[[scenario]]\nname = "s"\nfile = "h.js"\n\n'
        b"[[scenario.step]]\ninterval = true\n"
    )
    assert [scenario.name for scenario in load_scenarios(path)] == ["s"]


def test_a_step_naming_no_function_is_found_before_any_step_runs(project):
    bad = project / "examples" / "late.test.toml"
    bad.write_text(
        '[[scenario]]\nname = "late"\nfunction = "config"\n\n[[scenario.step]]\n'
        'request = { path = "/config" }\nexpect = { status = 599 }\n\n'
        '[[scenario.step]]\nfunction = "nope"\ninterval = true\n'
    )
    run = run_cli("test", bad, cwd=project)
    # Step 1 would fail (599): it never ran, the malformed step 2 is what is said.
    assert run.code == 2 and "at examples/late.test.toml:9\n" in run.stdout, run.stdout
    assert "cannot run as written: no function 'nope'" in run.stdout
    assert "status: expected 599" not in run.stdout
    as_json = run_cli("test", bad, "--json", cwd=project)
    assert as_json.code == 2 and as_json.json()["scenarios"][0]["malformed"] is True


def test_a_slip_of_a_saved_name_is_malformed_not_sent_as_text(tmp_path):
    (tmp_path / "echo.js").write_text(
        "export default (request, response) => response.send({ token: 't1' });\n"
    )
    (tmp_path / "slip.test.toml").write_text(
        '[[scenario]]\nname = "s"\nfile = "echo.js"\n\n'
        '[[scenario.step]]\nrequest = { path = "/" }\nsave = { token = "json.token" }\n\n'
        '[[scenario.step]]\nrequest = { path = "/${tokn}" }\n'
    )
    run = run_cli("test", "slip.test.toml", cwd=tmp_path)
    assert run.code == 2 and "no step saves 'tokn'; did you mean ${token}?" in run.stdout


CHAIN_PROJECT = """
[project]
subscribe_key = "sub-c-ch"
publish_key = "pub-c-ch"

[[functions]]
name = "forward"
file = "forward.js"
event = "after-publish"
channels = ["a"]

[[functions]]
name = "down"
file = "down.js"
event = "before-publish"
channels = ["b"]
"""


def test_a_steps_logs_and_warnings_include_the_chain_it_triggered(tmp_path):
    (tmp_path / "pfunc.toml").write_text(CHAIN_PROJECT)
    (tmp_path / "forward.js").write_text(
        'const pubnub = require("pubnub");\n'
        "export default async (request) => {\n"
        '  await pubnub.publish({ channel: "b", message: request.message });\n'
        "  return request.ok();\n};\n"
    )
    (tmp_path / "down.js").write_text(
        'export default (request) => { console.log("down saw " + request.message.n); '
        "return request.ok(); };\n"
    )
    (tmp_path / "chain.test.toml").write_text(
        '[[scenario]]\nname = "chain"\nfunction = "forward"\n\n[[scenario.step]]\n'
        'publish = { channel = "a", message = { n = 7 } }\nexpect = { logs = "down saw 7" }\n\n'
        '[[scenario.step]]\npublish = { channel = "a", message = { n = 8 } }\n'
        'expect = { logs = "down saw 9" }\n'
    )
    run = run_cli("test", "chain.test.toml", cwd=tmp_path)
    assert run.code == 1, run.stdout
    assert "step 2" in run.stdout and "step 1" not in run.stdout  # the chain's line matched
    assert "console.log (down): down saw 8" in run.stdout  # shown beside the failure


def one_step_scenarios(folder: Path, handler: str, expects: dict[str, str]) -> None:
    """h.js, and s.test.toml with a scenario per name in `expects`: one publish step each,
    expecting what its value says (TOML inside the braces of `expect = { }`)."""
    (folder / "h.js").write_text(handler)
    step = "[[scenario.step]]\npublish = {{ message = {{ a = 1 }} }}\nexpect = {{ {} }}\n"
    (folder / "s.test.toml").write_text(
        "\n".join(
            f'[[scenario]]\nname = "{name}"\nfile = "h.js"\n' + step.format(expect)
            for name, expect in expects.items()
        )
    )


def test_a_handler_that_fails_fails_its_step_unless_the_step_expects_it(tmp_path):
    one_step_scenarios(
        tmp_path,
        "export default (request) => { throw new TypeError('bad input'); };\n",
        {
            "silent": 'kv = { x = "absent" }',
            "expected": 'outcome = "error", kv = { x = "absent" }',
            "by its error": 'error = "bad input"',
        },
    )
    run = run_cli("test", "s.test.toml", "--json", cwd=tmp_path)
    assert run.code == 1
    results = {scenario["name"]: scenario for scenario in run.json()["scenarios"]}
    assert {name: r["status"] for name, r in results.items()} == {
        "silent": "failed",
        "expected": "passed",
        "by its error": "passed",
    }
    (mismatch,) = results["silent"]["failure"]["mismatches"]
    assert (mismatch["field"], mismatch["expected"], mismatch["actual"]) == (
        "outcome",
        "no error",
        "error",
    )
    assert mismatch["note"].startswith("the execution failed, TypeError: bad input")


def test_a_request_step_is_labelled_with_the_method_it_is_sent_with():
    from pfunc.testing.runner import describe_step
    from pfunc.testing.scenario import Step

    def label(payload: dict) -> str:
        step = Step(1, 1, 1, None, "request", payload, None, None, None, 0.0, {})
        return describe_step(step)

    assert label({"path": "/x"}) == "request GET /x"
    assert label({"body": ""}) == "request POST /"  # a body, even empty, is a POST
    assert label({"json": {}, "path": "/y"}) == "request POST /y"
    assert label({"method": "put", "body": "x"}) == "request PUT /"


def test_a_function_named_where_there_is_no_project_says_so(tmp_path):
    (tmp_path / "s.test.toml").write_text(f'[[scenario]]\nname = "a"\nfunction = "echo"\n{STEP}')
    run = run_cli("test", "s.test.toml", cwd=tmp_path)
    assert run.code == 2
    assert f"no function 'echo': there is no pfunc.toml in {tmp_path} or above it" in run.stdout
    # a step that cannot run is pointed at where it is written, not at its expectations
    assert "step 1 (publish on the default channel) at s.test.toml:4\n" in run.stdout


@pytest.mark.parametrize(("workers", "code"), [((), -signal.SIGINT), (("-n", "2"), 130)])
def test_ctrl_c_ends_pfunc_test_and_everything_it_started_at_once(tmp_path, workers, code):
    """Ctrl-C during a handler's endless loop was heard only at its 10 s limit, then
    'Aborted!' with exit 1; with -n, pytest and its workers outlived the command."""
    (tmp_path / "loop.py").write_text("def handler(request):\n    while True:\n        pass\n")
    (tmp_path / "loop.test.toml").write_text(
        '[[scenario]]\nname = "loops"\nfile = "loop.py"\n\n'
        "[[scenario.step]]\npublish = { message = 1 }\n"
    )
    command = [sys.executable, "-m", "pfunc", "test", *workers, "loop.test.toml"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        started: dict[int, str] = {}
        for _ in range(1200):  # until the handler runs: its worker process is there
            started = {pid: process_command(pid) for pid in process_descendants(process.pid)}
            if any("python_worker" in line for line in started.values()):
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the handler never started: {started}")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == code
        for _ in range(600):  # the handler's worker, pytest and its workers: all gone
            if all(map(process_ended, started)):
                break
            time.sleep(0.05)
        assert all(map(process_ended, started)), started
    finally:
        process.kill()


def test_a_file_handler_is_named_by_its_path_in_failures(tmp_path):
    """As pfunc run names it: handlers/boom.js:1, not boom.js:1 (a function's handler was
    already named by its path)."""
    (tmp_path / "handlers").mkdir()
    (tmp_path / "handlers" / "boom.js").write_text(
        "export default () => { throw new Error('x'); };\n"
    )
    (tmp_path / "boom.test.toml").write_text(
        '[[scenario]]\nname = "b"\nfile = "handlers/boom.js"\n\n'
        "[[scenario.step]]\npublish = { message = 1 }\n"
    )
    run = run_cli("test", "boom.test.toml", cwd=tmp_path)
    assert run.code == 1 and "error: Error: x (handlers/boom.js:1:" in run.stdout, run.stdout


def test_absent_expects_a_field_that_is_missing_or_null(tmp_path):
    """TOML has no null: `"absent"` is how a scenario says a field is null or not there."""
    one_step_scenarios(
        tmp_path,
        "export default (request) => { request.message = { a: null, b: 1 }; return request.ok(); };\n",
        {
            "null and missing": 'message = { a = "absent", c = "absent" }',
            "there": 'message = { b = "absent" }',
        },
    )
    run = run_cli("test", "s.test.toml", cwd=tmp_path)
    assert run.code == 1 and "1 passed, 1 failed" in run.stdout
    assert 'message.b: expected "absent", got 1' in run.stdout


def test_a_project_file_changed_between_runs_is_read_again(tmp_path):
    """Each scenario read pfunc.toml again (0.5 ms for the demo's 15 functions); it is
    now read once, and again when it changes."""
    from pfunc.testing.runner import run_scenario
    from pfunc.testing.scenario import load_scenarios

    for name, word in (("a.js", "first"), ("b.js", "second")):
        (tmp_path / name).write_text(
            f"export default (request) => request.ok({{ said: '{word}' }});\n"
        )
    config = tmp_path / "pfunc.toml"
    config.write_text(
        '[[functions]]\nname = "f"\nfile = "a.js"\nevent = "before-publish"\nchannels = ["c"]\n'
    )
    (tmp_path / "s.test.toml").write_text(
        '[[scenario]]\nname = "s"\nfunction = "f"\n\n[[scenario.step]]\n'
        'publish = { message = 1 }\nexpect = { message = { said = "first" } }\n'
    )
    (scenario,) = load_scenarios(tmp_path / "s.test.toml")
    assert asyncio.run(run_scenario(scenario)).passed
    config.write_text(
        '[[functions]]\nname = "f"\nfile = "b.js"\nevent = "before-publish"\nchannels = ["c"]\n\n'
    )
    failed = asyncio.run(run_scenario(scenario))
    assert not failed.passed and failed.failure.mismatches[0].actual == "second"
    # A pfunc.toml written since, closer to the scenario, is the one read.
    from pfunc.testing.runner import _project_of

    inner = tmp_path / "inner"
    inner.mkdir()
    assert [f.name for f in _project_of(inner).functions] == ["f"]  # the outer one, kept
    (inner / "pfunc.toml").write_text(config.read_text().replace('"f"', '"g"'))
    (inner / "b.js").write_text((tmp_path / "b.js").read_text())
    assert [f.name for f in _project_of(inner).functions] == ["g"]


def test_a_folder_with_no_project_finds_one_written_above_it_later(tmp_path):
    """A scenario folder with no pfunc.toml above it is not searched again from scratch
    for each scenario, yet one written above it since is found."""
    from pfunc.testing.runner import _project_of

    bare = tmp_path / "bare" / "deeper"
    bare.mkdir(parents=True)
    lone = _project_of(bare)
    assert lone.config_file is None and _project_of(bare) is lone  # kept, not read again
    (tmp_path / "pfunc.toml").write_text(
        '[[functions]]\nname = "h"\nfile = "h.js"\nevent = "before-publish"\nchannels = ["c"]\n'
    )
    (tmp_path / "h.js").write_text("export default (request) => request.ok();\n")
    assert [f.name for f in _project_of(bare).functions] == ["h"]


def test_a_scenario_folder_reached_through_a_link_follows_the_link(tmp_path):
    """A folder reached through a symbolic link is found where the link points now (a
    link pointed at another project between scenarios kept the first one), and a
    pfunc.toml that is a link to nothing, written above a folder that had no project,
    is refused as before, not skipped."""
    from pfunc.errors import PfuncUsageError
    from pfunc.testing.runner import _project_of

    function = (
        '[[functions]]\nname = "NAME"\nfile = "h.js"\nevent = "before-publish"\nchannels = ["c"]\n'
    )
    for name in ("one", "two"):
        (tmp_path / name / "tests").mkdir(parents=True)
        (tmp_path / name / "pfunc.toml").write_text(function.replace("NAME", name))
        (tmp_path / name / "h.js").write_text("export default (request) => request.ok();\n")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "one" / "tests")
    assert [f.name for f in _project_of(link).functions] == ["one"]
    link.unlink()
    link.symlink_to(tmp_path / "two" / "tests")
    assert [f.name for f in _project_of(link).functions] == ["two"]

    bare = tmp_path / "bare" / "inner"
    bare.mkdir(parents=True)
    assert _project_of(bare).config_file is None
    (tmp_path / "bare" / "pfunc.toml").symlink_to(tmp_path / "nowhere.toml")
    with pytest.raises(PfuncUsageError, match="not a readable file"):
        _project_of(bare)


def test_a_failure_is_placed_once_with_its_column(tmp_path):
    """A runtime error's place has its column, as pfunc run's does; a load error, whose
    message begins with its place, is not followed by it again."""
    (tmp_path / "syntax.js").write_text("export default (request) => {\n  const x = ;\n};\n")
    (tmp_path / "t.test.toml").write_text(
        '[[scenario]]\nname = "s"\nfile = "syntax.js"\n[[scenario.step]]\npublish = {}\n'
    )
    run = run_cli("test", tmp_path / "t.test.toml", cwd=tmp_path)
    error = next(line for line in run.stdout.splitlines() if "error: SyntaxError" in line)
    assert error.count("syntax.js:2") == 1, error


def test_save_reads_a_header_in_any_case_and_a_project_without_test_folders_is_told_so(
    tmp_path,
):
    """save = { x = "response.headers.X-Made" } read nothing where expect.headers matched
    the same name; and with no tests/ or examples/ folder, 'no scenarios found' did not
    say where pfunc test had looked."""
    (tmp_path / "pfunc.toml").write_text('[project]\nname = "p"\n')
    (tmp_path / "made.js").write_text(
        'export default (request, response) => { response.headers["X-Made"] = "yes-" +'
        ' (request.query.n || 0); return response.send("ok"); };\n'
    )
    (tmp_path / "h.test.toml").write_text(
        '[[scenario]]\nname = "headers"\nfile = "made.js"\n\n'
        '[[scenario.step]]\nrequest = { query = { n = "1" } }\n'
        'save = { made = "response.headers.X-Made" }\n'
        'expect = { headers = { "x-made" = "yes-1" } }\n\n'
        '[[scenario.step]]\nrequest = { query = { n = "${made}" } }\n'
        'expect = { headers = { "X-MADE" = "yes-yes-1" } }\n'
    )
    looked = invoke_cli("test", cwd=tmp_path)
    assert looked.code == 2 and f"looks in {tmp_path / 'tests'} and" in looked.stderr
    ran = invoke_cli("test", ".", cwd=tmp_path)
    assert ran.code == 0, ran.stdout


def test_a_saved_value_fills_a_key_and_a_step_without_one_is_sent_as_written(tmp_path):
    """${name} is replaced in a table's keys as in its values (a step is substituted only
    when "${" is somewhere in it, keys included); a step with none is sent as written."""
    (tmp_path / "echo.js").write_text("export default (request) => request.ok();\n")
    (tmp_path / "keys.test.toml").write_text(
        '[[scenario]]\nname = "keys"\nfile = "echo.js"\n\n'
        '[[scenario.step]]\npublish = { message = { id = "abc" } }\nsave = { id = "message.id" }\n\n'
        '[[scenario.step]]\npublish = { message = { "${id}" = "x" } }\n'
        'expect = { message = { abc = "x" } }\n\n'
        '[[scenario.step]]\npublish = { message = { "$id" = "{id}" } }\n'
        'expect = { message = { "$id" = "{id}" } }\n'
    )
    run = invoke_cli("test", "keys.test.toml", cwd=tmp_path)
    assert run.code == 0 and "1 passed" in run.stdout, run.stdout


def test_expectations_a_developer_writes_for_nothing_check_for_nothing(tmp_path):
    """`warnings = []` and `logs = []` passed whatever the handler did, "absent" could not
    expect an abort with no reason, and save could not read into an array: each a
    failure lost or a step that could not be written."""
    (tmp_path / "noisy.js").write_text(
        'const db = require("kvstore");\n'
        "export default (request, response) => {\n"
        "  console.log('hello');\n"
        "  db.set('k', 1);  // not awaited: a warning\n"
        "  return response.send(JSON.stringify({ items: [{ id: 'a' }, { id: request.query.b }] }));\n"
        "};\n"
    )
    (tmp_path / "gate.js").write_text("export default (request) => request.abort();\n")
    (tmp_path / "noisy.test.toml").write_text(
        '[[scenario]]\nname = "none expected"\nfile = "noisy.js"\n'
        "[[scenario.step]]\nrequest = {}\nexpect = { warnings = [], logs = [] }\n"
        '[[scenario]]\nname = "arrays"\nfile = "noisy.js"\n'
        '[[scenario.step]]\nrequest = { query = { b = "x" } }\nsave = { second = "json.items.1.id" }\n'
        '[[scenario.step]]\nrequest = { query = { b = "${second}y" } }\n'
        'expect = { json = { items = [{ id = "a" }, { id = "xy" }] } }\n'
        '[[scenario]]\nname = "absent"\nfile = "gate.js"\n'
        '[[scenario.step]]\npublish = {}\nexpect = { outcome = "abort", abort_reason = "absent" }\n'
    )
    run = run_cli("test", "noisy.test.toml", "--json", cwd=tmp_path)
    assert run.code == 1, run.stdout
    scenarios = {s["name"]: s for s in json.loads(run.stdout)["scenarios"]}
    failed = scenarios["none expected"]["failure"]["mismatches"]
    assert [(m["field"], m["expected"]) for m in failed] == [("logs", []), ("warnings", [])]
    assert scenarios["arrays"]["status"] == "passed", scenarios["arrays"]
    assert scenarios["absent"]["status"] == "passed", scenarios["absent"]


def test_a_json_request_body_is_sent_as_javascript_writes_it(tmp_path):
    """`json = {...}` was sent with Python's spacing, \\u escapes and 1.0: a handler that
    signs or measures the raw body saw other bytes than a client's JSON.stringify sends."""
    from pfunc.events import EventSpec, build_event

    event = build_event("on-request", EventSpec(json={"a": 1, "e": "🚀", "f": 1.0}))
    assert event.body == '{"a":1,"e":"🚀","f":1}'
