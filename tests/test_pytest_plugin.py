"""The pytest plugin, tested with pytest's own pytester: real test files, real runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from tests.conftest import REPO, invoke_cli, run_cli, run_cli_unread


@pytest.fixture
def project(pytester: pytest.Pytester):
    for name in ("examples", "handlers"):
        shutil.copytree(REPO / name, pytester.path / name)
    shutil.copy(REPO / "pfunc.toml", pytester.path / "pfunc.toml")
    return pytester


def test_sync_tests_send_events_and_read_the_store(project):
    project.makepyfile(
        test_functions="""
        import json

        def test_rate_limit_by_file(pfunc):
            results = [pfunc.publish("examples/rate_limit.js", {"userId": "u1"}) for _ in range(11)]
            assert [r.outcome for r in results] == ["ok"] * 10 + ["abort"]
            assert results[0].message["rateLimitRemaining"] == 9
            assert results[0].to_json()["operations"]["used"] == 3

        def test_sessions_by_function_name_with_ttl(pfunc):
            login = pfunc.request("sessions", "POST", "/login", json={"userId": "ada"})
            token = json.loads(login.response["body"])["token"]
            assert pfunc.kv_get(f"session:{token}")["userId"] == "ada"
            assert pfunc.request("sessions", path="/validate", query={"token": token}).response["status"] == 200
            pfunc.advance("31m")
            assert pfunc.request("sessions", path="/validate", query={"token": token}).response["status"] == 401

        def test_seeded_store_counters_presence_interval_signal(pfunc):
            pfunc.kv_set("ratelimit:limit", "1")
            assert pfunc.publish("rate-limit", {"userId": "x"}).outcome == "ok"
            assert pfunc.publish("rate-limit", {"userId": "x"}).outcome == "abort"
            pfunc.set_counter("heartbeat:count", 41)
            assert pfunc.interval("heartbeat").outcome == "ok"
            assert pfunc.counter("heartbeat:count") == 42
            assert pfunc.presence("occupancy", "join", "ada", occupancy=2, channel="lobby").outcome == "ok"
            assert pfunc.kv_get("occupancy:lobby")["count"] == 2
            assert pfunc.signal("typing", {"t": "no"}).outcome == "abort"

        def test_each_test_has_its_own_store(pfunc):
            assert pfunc.kv_get("ratelimit:limit") is None
            assert pfunc.counter("heartbeat:count") == 0
    """
    )
    result = project.runpytest("-p", "no:cacheprovider", "--ignore=examples")
    result.assert_outcomes(passed=4)


def test_mocks_vault_and_async_tests(project):
    (project.path / "fetch.js").write_text("""
        const xhr = require("xhr"), vault = require("vault");
        export default async (request) => {
          const key = await vault.get("API_KEY");
          try {
            const res = await xhr.fetch(request.message.url, { headers: { "x-key": key } });
            request.message.answer = await res.json();
          } catch (e) { request.message.refused = e.message; }
          return request.ok();
        };
    """)
    project.makepyfile(
        test_async="""
        async def test_async_with_a_mock(pfunc):
            pfunc.vault(API_KEY="k-123")
            pfunc.mock("https://api.example.com/*", json={"ok": True})
            result = await pfunc.apublish("fetch.js", {"url": "https://api.example.com/x"})
            assert result.message["answer"] == {"ok": True}

        def test_unmocked_requests_are_refused(pfunc):
            pfunc.vault(API_KEY="k")
            result = pfunc.publish("fetch.js", {"url": "https://elsewhere.example.com/"})
            assert "no mock matches GET https://elsewhere.example.com/" in result.message["refused"]
    """
    )
    result = project.runpytest("-p", "no:cacheprovider", "--ignore=examples")
    result.assert_outcomes(passed=2)


def test_a_failing_expectation_is_reported_as_a_failure(project):
    project.makepyfile(
        test_fail="""
        def test_wrong(pfunc):
            result = pfunc.publish("rate-limit", {"userId": "u"})
            assert result.message["rateLimitRemaining"] == 3
    """
    )
    result = project.runpytest("-p", "no:cacheprovider", "--ignore=examples")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert 9 == 3*"])


def test_the_project_is_found_from_the_test_file_not_the_working_folder(pytester):
    """`pytest myproj/tests/` from the parent folder finds myproj/pfunc.toml."""
    app = pytester.path / "myproj"
    (app / "tests").mkdir(parents=True)
    shutil.copytree(REPO / "examples", app / "examples")
    (app / "pfunc.toml").write_text(
        '[project]\nname = "myproj"\n\n[[functions]]\nname = "limit"\n'
        'file = "examples/rate_limit.js"\nevent = "before-publish"\nchannels = ["chat"]\n'
    )
    (app / "tests" / "test_app.py").write_text(
        "def test_by_name(pfunc):\n"
        '    assert pfunc.publish("limit", {"userId": "u"}).outcome == "ok"\n'
        "def test_by_file_relative_to_the_project(pfunc):\n"
        '    assert pfunc.publish("examples/rate_limit.js", {"userId": "u"}).outcome == "ok"\n'
    )
    result = pytester.runpytest("myproj/tests", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_an_ini_option_names_the_project(pytester):
    app = pytester.path / "services" / "chat"
    app.mkdir(parents=True)
    (app / "noop.js").write_text("export default (request) => request.ok();")
    (app / "pfunc.toml").write_text(
        '[[functions]]\nname = "noop"\nfile = "noop.js"\nevent = "before-publish"\n'
        'channels = ["c"]\n'
    )
    pytester.makeini("[pytest]\npfunc_project = services/chat/pfunc.toml\n")
    pytester.makepyfile(
        test_elsewhere='def test_it(pfunc):\n    assert pfunc.publish("noop", {}).outcome == "ok"\n'
    )
    pytester.runpytest("-p", "no:cacheprovider", "--ignore=examples").assert_outcomes(passed=1)


def test_a_project_that_is_not_there_is_named_not_blamed_on_the_function(pytester):
    """An ini option naming a folder with no pfunc.toml says so (walking up from it could
    find another project's file); with no pfunc.toml anywhere, the error says that rather
    than "no function of that name"."""
    pytester.makepyfile(test_missing='def test_it(pfunc):\n    pfunc.publish("counter", {})\n')
    alone = pytester.runpytest("-p", "no:cacheprovider", "-o", "addopts=")
    alone.assert_outcomes(failed=1)
    alone.stdout.fnmatch_lines(["*counter: no such handler file, and no pfunc.toml in *"])
    pytester.makeini("[pytest]\npfunc_project = ../nothere\n")
    named = pytester.runpytest("-p", "no:cacheprovider", "-o", "addopts=")
    named.assert_outcomes(errors=1)
    named.stdout.fnmatch_lines(["*pfunc_project = ../nothere: there is no pfunc.toml at *"])


def test_a_broken_pfunc_toml_is_its_one_line_for_the_fixture_too(pytester):
    """Scenario items and pfunc test said the broken line; each fixture test showed ~40
    lines of traceback through pfunc's own code around it."""
    (pytester.path / "pfunc.toml").write_text('[project]\nname = "x"\nlimits = "classik"\n')
    pytester.makepyfile(test_broken="def test_it(pfunc):\n    pass\n")
    run = pytester.runpytest("-p", "no:cacheprovider", "-o", "addopts=")
    run.assert_outcomes(errors=1)
    run.stdout.fnmatch_lines(["*pfunc.toml:3: project.limits = 'classik' is not allowed*"])
    assert "project_file.py" not in run.stdout.str()
    assert "During handling" not in run.stdout.str()


def test_the_fixture_refuses_what_a_scenario_file_refuses(pytester):
    """Values JSON cannot carry, a counter that is no whole number and a mock with both
    json and body are the test's mistakes, said as such; kv_set's TTL is clamped as a
    handler's db.set is (1 to 525,600 minutes)."""
    (pytester.path / "echo.js").write_text("export default (request) => request.ok();")
    pytester.makepyfile(
        test_fixture="""
import pytest

def test_mistakes(pfunc):
    with pytest.raises(ValueError, match=r"pfunc.publish\\(\\): message: nan is not JSON"):
        pfunc.publish("echo.js", {"x": float("nan")})
    with pytest.raises(ValueError, match=r"pfunc.publish\\(\\): meta: Object of type object"):
        pfunc.publish("echo.js", {}, meta={"at": object()})
    with pytest.raises(ValueError, match=r"pfunc.request\\(\\): body: Object of type bytes"):
        pfunc.request("echo.js", body=b"bytes")
    with pytest.raises(ValueError, match=r"pfunc.kv_set\\(\\): value"):
        pfunc.kv_set("k", float("inf"))
    with pytest.raises(TypeError, match="counters take whole numbers"):
        pfunc.set_counter("c", "5")
    with pytest.raises(TypeError, match="give json or body, not both"):
        pfunc.mock("https://x.test/*", json={"a": 1}, body="b")
    assert pfunc.publish("echo.js", {"x": 1}).outcome == "ok"  # nothing left broken

def test_what_json_writes_still_goes(pfunc):
    import datetime
    import json
    (tmp := pfunc.project.root / "api.js").write_text(
        "export default (request, response) => response.send({ q: request.query, b: request.body });"
    )
    sent = pfunc.request(tmp, query={"since": datetime.date(2024, 1, 2)}, body={"a": (1, 2)})
    answer = json.loads(sent.response["body"])
    assert answer["q"] == {"since": "2024-01-02"} and json.loads(answer["b"]) == {"a": [1, 2]}
    assert pfunc.publish("echo.js", ("a", "b")).message == ["a", "b"]

def test_kv_set_clamps_its_ttl(pfunc):
    pfunc.kv_set("brief", 1, ttl_minutes=0)
    pfunc.kv_set("long", 2, ttl_minutes=10**30)
    assert (pfunc.kv_get("brief"), pfunc.kv_get("long")) == (1, 2)
    pfunc.advance("2m")
    assert pfunc.kv_get("brief") is None and pfunc.kv_get("long") == 2
    pfunc.advance("366d")
    assert pfunc.kv_get("long") is None
"""
    )
    pytester.runpytest("-p", "no:cacheprovider", "-o", "addopts=").assert_outcomes(passed=3)


def test_a_mock_with_both_json_and_body_is_refused(tmp_path):
    (tmp_path / "pfunc.toml").write_text(
        '[[mocks]]\nurl = "https://x.test/*"\njson = { a = 1 }\nbody = "b"\n'
    )
    (tmp_path / "h.js").write_text("export default (request) => request.ok();")
    run = invoke_cli("run", "h.js", "--message", "{}", cwd=tmp_path)
    assert run.code == 2 and "mocks[0]: give json or body, not both" in run.stderr


def test_file_message_handlers(pytester: pytest.Pytester):
    (pytester.path / "vet.js").write_text(
        "export default (request) => {\n"
        '  if (request.message.message === "secret") return request.abort("no secrets");\n'
        '  request.message.message += " [vetted]";\n'
        "  return request.ok();\n"
        "};\n"
    )
    pytester.makepyfile(
        test_files="""
        def test_before_publish_file(pfunc):
            ok = pfunc.publish_file("vet.js", "report", file={"id": "f1", "name": "a.txt"})
            assert ok.outcome == "ok" and ok.event == "before-publish-file"
            assert ok.message == {"message": "report [vetted]", "file": {"id": "f1", "name": "a.txt"}}
            assert pfunc.publish_file("vet.js", "secret").abort_reason == "no secrets"

        async def test_after_publish_file(pfunc):
            done = await pfunc.apublish_file("vet.js", "x", event="after-publish-file")
            assert done.outcome == "ok" and done.event == "after-publish-file"
    """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


SCENARIOS = """
[[scenario]]
name = "greets"
file = "hello.js"

[[scenario.step]]
publish = { message = { name = "ada" } }
expect = { message = { greeting = "hello ada" } }

[[scenario]]
name = "expects too much"
file = "hello.js"

[[scenario.step]]
publish = { message = { name = "bob" } }
expect = { message = { greeting = "hi bob" } }
"""


def scenario_folder(tmp_path):
    (tmp_path / "hello.js").write_text(
        "export default (r) => { r.message.greeting = 'hello ' + r.message.name;"
        " return r.ok(); };\n"
    )
    (tmp_path / "hello.test.toml").write_text(SCENARIOS)
    return tmp_path


def test_pytest_collects_each_scenario_as_an_item(tmp_path):
    folder = scenario_folder(tmp_path)
    junit = tmp_path / "junit.xml"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "-rf",
            f"--junitxml={junit}",
            "hello.test.toml",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed, 1 passed" in run.stdout
    assert 'expected "hi bob", got "hello bob"' in run.stdout
    assert 'name="greets"' in junit.read_text() and 'name="expects too much"' in junit.read_text()
    # pfunc's own property on each case (what -n carries to its JUnit writer) reads as JSON
    carried = [
        json.loads(prop.get("value"))
        for prop in ElementTree.parse(junit).iter("property")
        if prop.get("name") == "pfunc-case"
    ]
    assert sorted(case["name"] for case in carried) == ["expects too much", "greets"]
    only = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "-q",
            "-k",
            "greets",
            "hello.test.toml",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert only.returncode == 0 and "1 passed, 1 deselected" in only.stdout


def test_pfunc_test_spreads_scenarios_over_processes(tmp_path):
    folder = scenario_folder(tmp_path)
    run = run_cli("test", "-n", "2", "hello.test.toml", cwd=folder)
    assert run.code == 1 and "1 failed, 1 passed" in run.stdout
    bad = run_cli("test", "-n", "two", "hello.test.toml", cwd=folder)
    assert bad.code == 2 and "-n takes a number of processes or auto" in bad.stderr


MALFORMED_STEP = """
[[scenario]]
name = "names a handler that is not there"
file = "nope.js"

[[scenario.step]]
publish = { message = { name = "eve" } }
expect = { outcome = "ok" }
"""


def test_pfunc_test_n_runs_the_files_in_the_order_they_are_named(tmp_path):
    """-x stops at the first failure of the files as named: under -n pytest collected
    them in the order of their paths, so `-x z.test.toml a.test.toml` stopped at a's
    malformed step (2) where pfunc test stops at z's failure (1)."""
    folder = scenario_folder(tmp_path)
    (folder / "z.test.toml").write_text(
        '[[scenario]]\nname = "fails"\nfile = "hello.js"\n[[scenario.step]]\n'
        'publish = { message = { name = "eve" } }\nexpect = { message = { greeting = "no" } }\n'
    )
    (folder / "a.test.toml").write_text(MALFORMED_STEP)
    serial = invoke_cli("test", "-x", "z.test.toml", "a.test.toml", cwd=folder)
    spread = run_cli("test", "-n", "1", "-x", "z.test.toml", "a.test.toml", cwd=folder)
    assert serial.code == spread.code == 1, spread.stdout + spread.stderr
    assert "nope.js" not in spread.stdout + spread.stderr


def test_pfunc_test_n_answers_as_pfunc_test_does(tmp_path):
    """Across processes, the same selection, the same exit codes and the same errors:
    the project's own pytest setup (a conftest.py that fails, settings that add options)
    stays out, as it does serially."""
    folder = scenario_folder(tmp_path)
    (folder / "conftest.py").write_text('import os\nos.environ["NOT_SET_ANYWHERE"]\n')
    (folder / "pytest.ini").write_text("[pytest]\naddopts = --no-such-option\n")

    def both(*arguments: str) -> tuple[tuple[int, str], tuple[int, str]]:
        serial = invoke_cli("test", *arguments, cwd=folder)  # in process: the answer is the subject
        spread = run_cli("test", "-n", "2", *arguments, cwd=folder)
        return (serial.code, serial.stdout + serial.stderr), (
            spread.code,
            spread.stdout + spread.stderr,
        )

    # -k is a piece of text (spaces, any case), not a pytest expression
    (serial, spread) = both("-k", "expects too", "hello.test.toml")
    assert serial[0] == spread[0] == 1 and "1 failed" in spread[1] and "passed" not in spread[1]
    (serial, spread) = both("-k", "GREETS", "hello.test.toml")
    assert serial[0] == spread[0] == 0 and "1 passed" in spread[1]
    (serial, spread) = both("-k", "Nobody", "hello.test.toml")
    assert serial == spread and serial[0] == 2 and "no scenario matches -k 'Nobody'" in spread[1]
    # -x stops at the first failure: still 1, a failure, not pytest-xdist's "interrupted"
    (serial, spread) = both("-x", "-k", "expects", "hello.test.toml")
    assert serial[0] == spread[0] == 1
    # a step that cannot run as written: 2, as for a file that cannot be read
    (folder / "bad.test.toml").write_text(MALFORMED_STEP)
    (serial, spread) = both("bad.test.toml")
    assert serial[0] == spread[0] == 2 and "nope.js" in spread[1]
    (folder / "bad.test.toml").write_text('[[scenario]]\nname = "x"\nhandler = "hello.js"\n')
    (serial, spread) = both(".")
    assert serial[0] == spread[0] == 2 and "unknown scenario key(s) handler" in spread[1]
    assert "Traceback" not in spread[1]
    # a JUnit file that cannot be written (under a file): one line, exit 2, whatever the scenarios did
    (folder / "bad.test.toml").unlink()
    (serial, spread) = both(
        "--junit", str(folder / "hello.js" / "j.xml"), "-k", "greets", "hello.test.toml"
    )
    assert serial[0] == spread[0] == 2 and "cannot write it" in spread[1]
    assert "Traceback" not in spread[1] and "1 passed" in serial[1]
    if os.path.exists("/dev/full"):  # ... or one that fails as it is written (a full disk)
        (serial, spread) = both("--junit", "/dev/full", "-k", "greets", "hello.test.toml")
        assert serial[0] == spread[0] == 2 and "/dev/full: cannot write it" in spread[1]
        assert "Traceback" not in spread[1] and "1 passed" in spread[1]
    # a pfunc.toml that cannot be read: one line, exit 2, before any process starts
    (folder / "pfunc.toml").write_text("[limits\n")
    (serial, spread) = both("hello.test.toml")
    assert serial == spread and serial[0] == 2 and "pfunc.toml:1: not valid TOML" in spread[1]


def test_pfunc_test_n_keeps_each_file_s_path_and_ignores_the_ci_s_pytest_options(
    tmp_path, monkeypatch
):
    """Scenario files away from the working folder keep their paths in the report and in
    JUnit; a -k text that looks like an option is text; PYTEST_ADDOPTS (a CI's options for
    the project's own tests) does not reach the scenarios' pytest."""
    import xml.etree.ElementTree as ElementTree

    for part in ("a", "b"):
        (tmp_path / "suites" / part).mkdir(parents=True)
        folder = scenario_folder(tmp_path / "suites" / part)
        text = (folder / "hello.test.toml").read_text()
        (folder / "hello.test.toml").write_text(text.replace('"greets"', '"greets -x"'))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setenv("PYTEST_ADDOPTS", "--no-such-option")
    junit = tmp_path / "elsewhere" / "j.xml"
    run = run_cli(
        "test",
        "-n",
        "2",
        "-k",
        "-x",
        "--junit",
        junit,
        tmp_path / "suites",
        cwd=tmp_path / "elsewhere",
    )
    assert run.code == 0, run.stdout + run.stderr
    cases = [
        (case.get("classname"), case.get("name"))
        for case in ElementTree.parse(junit).iter("testcase")
    ]
    assert sorted(cases) == [
        ("suites.a.hello.test.toml", "greets -x"),
        ("suites.b.hello.test.toml", "greets -x"),
    ]


def test_pfunc_test_n_exit_code_survives_a_reader_that_goes_away(tmp_path):
    """`pfunc test -n 2 | head -1`: the scenarios passed, so 0 (pytest's own exit code for
    a closed pipe would say they failed)."""
    folder = scenario_folder(tmp_path)
    done = run_cli_unread("test", "-n", "2", "-k", "greets", "hello.test.toml", cwd=folder)
    assert (done.code, done.stderr) == (0, "")


def test_junit_names_a_scenario_alike_with_and_without_n(tmp_path):
    """A CI's history of a scenario is one whether pfunc test ran it with -n or not (the
    class name was t/keys.test.toml without, t.keys.test.toml with)."""
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "h.js").write_text("export default (request) => request.ok();\n")
    (tmp_path / "t" / "keys.test.toml").write_text(
        '[[scenario]]\nname = "ok"\nfile = "h.js"\n\n[[scenario.step]]\n'
        "publish = { message = {} }\n"
    )
    from xml.etree import ElementTree

    names = []
    for extra in ([], ["-n", "2"]):
        junit = tmp_path / f"junit{len(extra)}.xml"
        run = (run_cli if extra else invoke_cli)(
            "test", *extra, "--junit", junit, "t", cwd=tmp_path
        )
        assert run.code == 0, run.stdout + run.stderr
        names.append(
            [(c.get("classname"), c.get("name")) for c in ElementTree.parse(junit).iter("testcase")]
        )
    assert names[0] == names[1] == [("t.keys.test.toml", "ok")]


def test_pfunc_test_n_reports_and_writes_junit_as_pfunc_test_does(tmp_path):
    """A file named on the command line runs whatever its name; failures are reported
    in the files' order, not as workers finish; the JUnit file is pfunc test's own."""
    import re

    folder = scenario_folder(tmp_path)
    failing = "".join(
        f'[[scenario]]\nname = "fails {n}"\nfile = "hello.js"\n\n[[scenario.step]]\n'
        f'publish = {{ message = {{ name = "x" }} }}\nexpect = {{ message = {{ greeting = "{n}" }} }}\n\n'
        for n in range(6)
    )
    (folder / "odd.toml").write_text(failing)
    (folder / "sub").mkdir()
    (folder / "sub" / "more.test.toml").write_text(failing.replace('"hello.js"', '"../hello.js"'))
    arguments = ("odd.toml", "sub", "hello.test.toml")
    serial = invoke_cli("test", *arguments, "--junit", "serial.xml", cwd=folder)
    spread = run_cli("test", "-n", "2", *arguments, "--junit", "spread.xml", cwd=folder)
    assert serial.code == spread.code == 1
    assert "13 failed, 1 passed" in spread.stdout  # odd.toml's six ran too
    headers = re.findall(r"_ scenario: (.+?) _", spread.stdout)
    assert headers == [f"fails {n}" for n in range(6)] * 2 + ["expects too much"]

    def timeless(name: str) -> str:
        return re.sub(r'time="[0-9.]+"', "", (folder / name).read_text())

    assert timeless("serial.xml") == timeless("spread.xml")
    # A file outside the working folder is named alike too (whole; -n once named it so
    # while pfunc test wrote ../hello.test.toml).
    serial = invoke_cli(
        "test", "../hello.test.toml", "--junit", "../serial.xml", cwd=folder / "sub"
    )
    spread = run_cli(
        "test", "-n", "2", "../hello.test.toml", "--junit", "../spread.xml", cwd=folder / "sub"
    )
    assert serial.code == spread.code == 1
    assert timeless("serial.xml") == timeless("spread.xml")
    assert f'file="{folder / "hello.test.toml"}"' in timeless("serial.xml")


COPIES = """
[[scenario]]
name = "fails for each function"
function = ["one", "two", "three", "four"]

[[scenario.step]]
publish = { message = { name = "x" } }
expect = { message = { greeting = "not this" } }
"""


def test_pfunc_test_n_runs_folders_named_as_routes_and_orders_copies_as_pfunc_test(tmp_path):
    """A folder named [id] (as web projects name routes) is a path pytest refuses as an
    argument: -n ran nothing and said nothing. The copies of one scenario run against
    several functions share its line: -n ordered them as its workers finished."""
    import re

    folder = scenario_folder(tmp_path)
    (folder / "pfunc.toml").write_text(
        "".join(
            f'[[functions]]\nname = "{name}"\nfile = "hello.js"\n'
            f'event = "before-publish"\nchannels = ["{name}"]\n\n'
            for name in ("one", "two", "three", "four")
        )
    )
    routes = folder / "routes" / "[id]"
    routes.mkdir(parents=True)
    (routes / "copies.test.toml").write_text(COPIES)
    (routes / "more::.test.toml").write_text(COPIES.replace("fails for", "fails too for"))
    # A link to a folder above: pfunc test does not follow it, nor may -n (pytest would,
    # and run each scenario again).
    (routes / "up").symlink_to("..", target_is_directory=True)
    serial = invoke_cli("test", "routes", "--junit", "serial.xml", cwd=folder)
    spread = run_cli("test", "-n", "3", "routes", "--junit", "spread.xml", cwd=folder)
    assert serial.code == spread.code == 1, spread.stdout + spread.stderr
    assert "8 failed" in spread.stdout
    headers = re.findall(r"_ scenario: (.+?) _", spread.stdout)
    copies = [f"for each function [{name}]" for name in ("one", "two", "three", "four")]
    assert headers == [f"fails {copy}" for copy in copies] + [f"fails too {c}" for c in copies]

    def timeless(name: str) -> str:
        return re.sub(r'time="[0-9.]+"', "", (folder / name).read_text())

    assert timeless("serial.xml") == timeless("spread.xml")
    # a file named on its own, in such a folder
    alone = run_cli("test", "-n", "2", "routes/[id]/copies.test.toml", cwd=folder)
    assert alone.code == 1 and "4 failed" in alone.stdout, alone.stdout + alone.stderr
