"""`pfunc run` as a user runs it: the real engine, a real SQLite file. Most tests drive
the command in this process (click's runner: the same command, answer and exit code);
those whose subject is the process itself (exit codes as a shell sees them, arguments
that are not UTF-8, signals, closed pipes and standard input) run a real subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    EXAMPLES,
    HANDLERS,
    REPO,
    CliRun,
    invoke_cli,
    run_cli_unread,
    start_cli,
)
from tests.conftest import run_cli as real_cli


def run_cli(*args: str | Path, cwd: Path | None = None, stdin: str | None = None) -> CliRun:
    """`pfunc ARGS...` in this process, from the repository unless `cwd` says otherwise."""
    return invoke_cli(*args, cwd=cwd or REPO, stdin=stdin)


@pytest.fixture
def cli(tmp_path: Path):
    """run_cli with a fresh KV file for this test unless the test passes --kv."""
    kv = tmp_path / "kv.sqlite3"

    def call(*args: str | Path, **kwargs: Any) -> CliRun:
        extra = [] if "--kv" in args or not args or args[0] != "run" else ["--kv", str(kv)]
        return run_cli(*args, *extra, **kwargs)

    return call


def test_rate_limit_allows_ten_per_minute_then_aborts(cli):
    results = [
        cli(
            "run",
            EXAMPLES / "rate_limit.js",
            "--message",
            '{"userId":"u1"}',
            "--json",
            "--now",
            "2026-03-01T10:00:05Z",
        )
        for _ in range(11)
    ]
    outcomes = [r.json()["outcome"] for r in results]
    assert outcomes == ["ok"] * 10 + ["abort"]
    remaining = [r.json()["message"]["rateLimitRemaining"] for r in results[:10]]
    assert remaining == list(range(9, -1, -1))
    assert all(r.json()["operations"]["used"] == 3 for r in results[:10])
    assert [r.code for r in results] == [0] * 11  # abort is a completed handler
    last = results[10].json()
    assert last["delivered"] is False
    assert last["abort_reason"] == "rate limit exceeded"
    # A new minute is a new window.
    later = cli(
        "run",
        EXAMPLES / "rate_limit.js",
        "--message",
        '{"userId":"u1"}',
        "--json",
        "--now",
        "2026-03-01T10:01:05Z",
    )
    assert later.json()["message"]["rateLimitRemaining"] == 9


def test_json_output_is_exactly_one_object_with_the_contract_fields(cli):
    run = cli("run", EXAMPLES / "dedup.js", "--message", '{"userId":"u1","text":"hi"}', "--json")
    assert run.code == 0
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    for field in (
        "function",
        "event",
        "outcome",
        "message",
        "delivered",
        "logs",
        "operations",
        "warnings",
        "error",
        "duration_ms",
    ):
        assert field in result
    assert result["function"] == "examples/dedup.js"
    assert result["event"] == "before-publish"
    assert result["error"] is None
    assert result["operations"]["limit"] == 3
    assert [c["method"] for c in result["operations"]["calls"]] == ["get", "set"]


def test_human_report_shows_outcome_message_logs_operations(cli):
    cli("run", EXAMPLES / "dedup.js", "--message", '{"userId":"u1","text":"hi"}')
    run = cli("run", EXAMPLES / "dedup.js", "--message", '{"userId":"u1","text":"hi"}')
    assert run.code == 0
    assert "ABORT" in run.stdout
    assert "not delivered" in run.stdout
    assert "duplicate message" in run.stdout
    assert "duplicate of a message first seen" in run.stdout
    assert "Operations 1 of 3" in run.stdout
    assert "kvstore.get dedup:" in run.stdout
    assert "\x1b[" not in run.stdout  # no colour codes when not a terminal


def test_on_request_flags_reach_the_handler_and_the_response_is_reported(cli):
    login = cli(
        "run",
        EXAMPLES / "sessions.js",
        "--method",
        "POST",
        "--path",
        "/login",
        "--body",
        '{"userId":"u7"}',
        "--json",
    )
    assert login.code == 0
    result = login.json()
    assert result["event"] == "on-request"  # inferred from the HTTP flags
    assert result["outcome"] == "response"
    assert result["response"]["status"] == 201
    assert result["response"]["headers"]["content-type"] == "application/json"
    token = json.loads(result["response"]["body"])["token"]

    def validate() -> tuple[int, dict]:
        response = cli(
            "run",
            EXAMPLES / "sessions.js",
            "--path",
            "/validate",
            "--query",
            f"token={token}",
            "--json",
        ).json()["response"]
        return response["status"], json.loads(response["body"])

    assert validate() == (200, {"valid": True, "userId": "u7"})
    logout = cli(
        "run",
        EXAMPLES / "sessions.js",
        "--method",
        "POST",
        "--path",
        "/logout",
        "--body",
        json.dumps({"token": token}),
    )
    assert logout.code == 0
    assert validate() == (401, {"valid": False})


def test_message_from_file_and_stdin(cli, tmp_path):
    message_file = tmp_path / "message.json"
    message_file.write_text('{"userId":"from-file"}')
    from_file = cli("run", EXAMPLES / "rate_limit.js", "--message", f"@{message_file}", "--json")
    assert from_file.json()["message"]["userId"] == "from-file"
    from_stdin = cli(
        "run",
        EXAMPLES / "rate_limit.js",
        "--message",
        "-",
        "--json",
        stdin='{"userId":"from-stdin"}',
    )
    assert from_stdin.json()["message"]["userId"] == "from-stdin"


def test_config_example_reads_changes_and_resets(cli):
    def config(method: str = "GET", body: str | None = None) -> tuple[int, dict]:
        extra = ["--body", body] if body is not None else []
        result = cli("run", EXAMPLES / "config.js", "--method", method, *extra, "--json").json()
        return result["response"]["status"], json.loads(result["response"]["body"])

    assert config()[1]["maxLength"] == 500
    assert config("PUT", '{"maxLength":200}') == (
        200,
        {"maxLength": 200, "slowModeSeconds": 0, "bannedWords": []},
    )
    assert config("PUT", '{"maxLength":-1}') == (
        422,
        {"error": "invalid settings", "fields": ["maxLength"]},
    )
    assert config("PUT", "not json")[0] == 400
    assert config()[1]["maxLength"] == 200
    assert config("PATCH", "{}")[0] == 405
    config("DELETE")
    assert config()[1]["maxLength"] == 500


def test_expect_flag_sets_the_exit_code(tmp_path):
    """Exit codes as a shell sees them: a real process."""
    store = ("--kv", tmp_path / "kv.sqlite3")

    def cli(*args: str | Path) -> CliRun:
        return real_cli(*args, *store)

    ok = cli("run", EXAMPLES / "rate_limit.js", "--message", '{"userId":"u2"}', "--expect", "ok")
    assert ok.code == 0
    mismatch = cli(
        "run", EXAMPLES / "rate_limit.js", "--message", '{"userId":"u2"}', "--expect", "abort"
    )
    assert mismatch.code == 1
    assert "expected outcome abort, got ok" in mismatch.stderr
    # an error that is meant: 0, which CI can assert a failing handler with
    meant = cli("run", HANDLERS / "four_ops.js", "--expect", "error")
    assert meant.code == 0 and meant.stderr == ""


def test_expect_still_fails_on_an_error_down_the_chain(tmp_path):
    """The outcome asked for, and nothing it triggered failing: --expect ok passed a run
    whose publish ran a function that threw."""
    (tmp_path / "a.js").write_text(
        'const pubnub = require("pubnub");\n'
        "export default async (request) => {\n"
        '  await pubnub.publish({ channel: "b", message: {} });\n'
        "  return request.ok();\n};\n"
    )
    (tmp_path / "b.js").write_text("export default () => { throw new Error('b broke'); };\n")
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-x"\npublish_key = "pub-c-x"\n'
        '[[functions]]\nname = "a"\nfile = "a.js"\nevent = "before-publish"\nchannels = ["a"]\n'
        '[[functions]]\nname = "b"\nfile = "b.js"\nevent = "after-publish"\nchannels = ["b"]\n'
    )
    plain = run_cli("run", "a", "--message", "{}", cwd=tmp_path)
    expected = run_cli("run", "a", "--message", "{}", "--expect", "ok", cwd=tmp_path)
    assert plain.code == expected.code == 1
    assert "outcome ok as expected, but an execution it triggered ended in error" in (
        expected.stderr
    )


def test_fourth_operation_is_refused_not_performed_and_fails_the_run(cli, tmp_path):
    kv = tmp_path / "four.sqlite3"
    run = run_cli("run", HANDLERS / "four_ops.js", "--kv", kv, "--json")
    assert run.code == 1
    result = run.json()
    assert result["outcome"] == "error"
    expected = (
        "operation limit exceeded: kvstore.set would be operation 4 of 3 allowed per "
        'execution (profile "classic")'
    )
    assert result["error"]["message"].startswith(expected)
    assert "--limits pubnub-2026" in result["error"]["message"]
    assert result["error"]["line"] == 7
    assert result["operations"]["used"] == 3
    assert result["operations"]["exceeded"] is True
    assert [c["status"] for c in result["operations"]["calls"]] == ["ok", "ok", "ok", "refused"]
    # The refused call was not performed: its key is absent, the others are present.
    probe = HANDLERS / "kv_errors.js"
    for key, expected_value in (("third", 3), ("fourth", None)):
        read = run_cli(
            "run",
            probe,
            "--kv",
            kv,
            "--json",
            "--message",
            json.dumps({"call": "get", "args": [key]}),
        ).json()
        assert read["message"]["result"] == expected_value


def test_malformed_message_is_a_usage_error(cli):
    run = cli("run", EXAMPLES / "rate_limit.js", "--message", '{"userId": u1}')
    assert run.code == 2
    assert "--message is not valid JSON" in run.stderr
    assert '{"userId": u1}' in run.stderr
    assert run.stdout == ""
    control = cli("run", EXAMPLES / "rate_limit.js", "--message", '{"a": "\x01"}')
    assert "(Invalid control character at line 1 column 8)" in control.stderr  # not "at at"


def test_missing_file_is_a_usage_error(cli):
    run = cli("run", "handlers/does_not_exist.js", "--json")
    assert run.code == 2
    assert "handlers/does_not_exist.js: no such handler file" in run.stderr
    assert run.stdout == ""


def test_a_message_file_saved_with_a_byte_order_mark_reads_as_its_json(cli, tmp_path):
    """Windows Notepad saves UTF-8 with a BOM: it was refused as "Unexpected UTF-8 BOM",
    with a hint about shell quoting that does not apply to a file."""
    message_file = tmp_path / "message.json"
    message_file.write_bytes(b'\xef\xbb\xbf{"userId":"notepad"}')
    run = cli("run", EXAMPLES / "rate_limit.js", "--message", f"@{message_file}", "--json")
    assert run.code == 0, run.stderr
    assert run.json()["message"]["userId"] == "notepad"


def test_missing_message_file_is_a_usage_error(cli):
    run = cli("run", EXAMPLES / "rate_limit.js", "--message", "@nowhere.json")
    assert run.code == 2
    assert "cannot read nowhere.json" in run.stderr


def test_a_message_file_without_end_is_read_to_its_limit_only(cli):
    """--message @/dev/zero read on for ever (9.5 GB in 5 s)."""
    run = cli("run", EXAMPLES / "rate_limit.js", "--message", "@/dev/zero")
    assert run.code == 2 and "holds more than 64 MiB" in run.stderr


def test_unusable_kv_path_is_a_usage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    run = run_cli("run", EXAMPLES / "rate_limit.js", "--kv", blocker / "kv.sqlite3")
    assert run.code == 2
    assert "cannot open the KV store" in run.stderr
    assert str(blocker / "kv.sqlite3") in run.stderr


def test_unknown_flag_and_conflicting_flags_are_usage_errors(cli):
    assert cli("run", EXAMPLES / "rate_limit.js", "--bogus").code == 2
    conflict = cli("run", EXAMPLES / "rate_limit.js", "--event", "before-publish", "--body", "x")
    assert conflict.code == 2
    assert "--body does not apply to before-publish events" in conflict.stderr


def test_syntax_error_names_file_line_and_column(cli):
    run = cli("run", HANDLERS / "syntax_error.js")
    assert run.code == 1
    assert "SyntaxError: tests/handlers/syntax_error.js:4:13" in run.stdout
    assert "> 4 |   const x = ;" in run.stdout  # the code frame


def test_a_handler_file_that_is_not_utf8_names_line_and_column(tmp_path, harness):
    """Not a byte offset: the line and column of the first bad byte, as other load errors
    give them, with the code frame; `pfunc dev`'s reload gets the same error."""
    handler = tmp_path / "latin1.js"
    handler.write_bytes(
        b"// caf\xc3\xa9 is fine\n"
        b'export default (r) => { r.message.x = "caf\xe9"; return r.ok(); };\n'
    )
    run = run_cli("run", handler, "--json", cwd=tmp_path)
    assert run.code == 1
    error = run.json()["error"]
    assert (error["type"], error["line"], error["column"]) == ("LoadError", 2, 43)
    assert error["message"].startswith("latin1.js:2:43: the handler file is not valid UTF-8")
    assert "position" not in error["message"]
    shown = run_cli("run", handler, cwd=tmp_path)
    assert "> 2 | export default (r)" in shown.stdout  # the code frame, caret at the byte
    assert "|" + " " * 43 + "^" in shown.stdout

    async def reload_it():
        async with harness.engine() as engine:
            return await engine.functions.executor_for_file(handler).reload()

    failure = asyncio.run(reload_it())
    assert failure is not None
    assert (failure.line, failure.column) == (2, 43)
    assert failure.message.endswith("save it as UTF-8 text")


def test_paths_that_are_not_regular_files_are_not_called_folders(tmp_path):
    """/dev/null and a FIFO exist and are no folder: one line says what they are."""
    fifo = tmp_path / "pipe.js"
    os.mkfifo(fifo)
    for target, kind in (("/dev/null", "a character device"), (fifo, "a FIFO")):
        run = run_cli("run", target, "--kv", tmp_path / "kv.sqlite3", cwd=tmp_path)
        assert run.code == 2
        [line] = run.stderr.strip().splitlines()
        assert "is not a regular file: it is " + kind in line, line
        assert "folder" not in line
        sent = run_cli("send-file", "ch", target, "--kv", tmp_path / "kv.sqlite3", cwd=tmp_path)
        assert (sent.code, "folder" in sent.stderr) == (2, False), sent.stderr
        assert "is not a regular file" in sent.stderr
    folder = run_cli("run", tmp_path, "--kv", tmp_path / "kv.sqlite3", cwd=tmp_path)
    assert (folder.code, "is a folder;" in folder.stderr) == (2, True)


def test_missing_default_export_is_an_execution_error(cli, tmp_path):
    run = cli("run", HANDLERS / "no_default.js", "--json")
    assert run.code == 1
    # REFERENCE 1: a load error names the file, line and column
    error = run.json()["error"]
    assert "no_default.js:1:1: no default export" in error["message"]
    assert (error["line"], error["column"]) == (1, 1)
    (tmp_path / "number.js").write_text("// a number\nexport default 42;\n")
    (tmp_path / "nothing.py").write_text("x = 1\n")
    (tmp_path / "broken.py").write_text("def handler(request:\n    pass\n")
    for name, words in (
        ("number.js", "number.js:2:1: the default export is a number"),
        ("nothing.py", "nothing.py:1:1: the module defines no handler function"),
        ("broken.py", "broken.py:1:12: '(' was never closed"),
    ):
        error = run_cli("run", name, "--json", cwd=tmp_path).json()["error"]
        assert error["message"].startswith(words), error["message"]


def test_import_statement_is_refused_with_an_explanation(cli):
    run = cli("run", HANDLERS / "uses_import.js", "--json")
    assert run.code == 1
    error = run.json()["error"]
    assert error["line"] == 2
    assert "import statements are not available in PubNub Functions" in error["message"]
    assert "require(" in error["message"]


def test_a_dynamic_import_says_so_and_where(tmp_path):
    (tmp_path / "dyn.js").write_text(
        "export default async (request) => {\n  const kv = await import('kvstore');\n"
        "  return request.ok();\n};\n"
    )
    error = run_cli("run", "dyn.js", "--json", cwd=tmp_path).json()["error"]
    assert "import() is not available in PubNub Functions, use require()" in error["message"]
    assert (error["line"], error["column"]) == (2, 20)


def test_infinite_loop_is_stopped_by_the_time_limit(cli):
    run = cli("run", HANDLERS / "infinite_loop.js", "--timeout", "1", "--json")
    assert run.code == 1
    assert run.json()["error"]["type"] == "TimeoutError"
    assert "1 s time limit" in run.json()["error"]["message"]
    # It ran until the limit, not less (how much longer is the benchmark's business).
    assert run.json()["duration_ms"] >= 1000
    assert "look for a loop that never ends" in run.json()["error"]["message"]


def test_a_loop_of_awaits_is_a_loop_that_never_ends_too(cli, tmp_path):
    """Stopped between its Promise jobs, not inside the engine: still a JavaScript loop
    (the wording for a Python worker, which cannot be seen into, is another)."""
    (tmp_path / "awaits.js").write_text("export default async () => { for (;;) await null; };\n")
    run = cli("run", tmp_path / "awaits.js", "--timeout", "0.3", "--json")
    assert run.json()["error"]["type"] == "TimeoutError"
    assert "look for a loop that never ends" in run.json()["error"]["message"]


@pytest.mark.parametrize(
    "source, seen",
    [
        # After an await, QuickJS's position is the await; the loop comes after it.
        (
            "export default async (request) => {\n  const db = require('kvstore');\n"
            "  await db.get('x');\n  let i = 0;\n  while (true) { i++; }\n};\n",
            3,
        ),
        # With no call or await before the loop, it is the function's own start.
        (
            "const y = 1;\nexport default (request) => {\n  let i = 0;\n"
            "  while (true) { i++; }\n};\n",
            2,
        ),
    ],
)
def test_a_timeout_names_a_line_the_loop_is_at_or_after(cli, tmp_path, source, seen):
    """The timeout names where QuickJS last saw the running function (the loop is at or
    after it), not "the function that starts at" a line that is an await."""
    (tmp_path / "spin.js").write_text(source)
    run = cli("run", tmp_path / "spin.js", "--timeout", "0.3", "--json")
    error = run.json()["error"]
    assert error["type"] == "TimeoutError" and error["line"] == seen
    assert f"in code at or after line {seen} (where QuickJS last saw" in error["message"]
    assert "starts at line" not in error["message"]


def test_memory_blowup_is_stopped(cli):
    run = cli("run", HANDLERS / "memory_blowup.js", "--json")
    assert run.code == 1
    error = run.json()["error"]
    assert error["type"] == "MemoryError"
    assert "64 MiB memory limit" in error["message"]


def test_runtime_error_shows_the_handler_frame(cli):
    run = cli("run", HANDLERS / "throws.js", "--json")
    assert run.code == 1
    error = run.json()["error"]
    assert error["type"] == "TypeError"
    assert (error["file"], error["line"]) == ("tests/handlers/throws.js", 2)
    assert "at explode (tests/handlers/throws.js:2:" in error["stack"]
    assert "<input>" not in error["stack"] and "__pfunc" not in error["stack"]


def test_ttl_expiry_follows_the_fixed_clock(cli):
    handler = HANDLERS / "ttl.js"
    cli("run", handler, "--message", '{"action":"set"}', "--now", "2026-01-01T12:00:00Z")
    at_start = cli("run", handler, "--now", "2026-01-01T12:00:00Z", "--json").json()
    assert at_start["message"]["value"] == {"hello": "world"}
    within = cli("run", handler, "--now", "2026-01-01T12:04:59Z", "--json").json()
    assert within["message"]["value"] == {"hello": "world"}
    after = cli("run", handler, "--now", "2026-01-01T12:06:00Z", "--json").json()
    assert after["message"]["value"] is None
    assert after["message"]["counter"] == 1  # counters never expire
    far = cli("run", handler, "--now", "2099-01-01T00:00:00Z", "--json").json()
    assert far["message"]["counter"] == 1


def test_bad_now_and_limits_values(cli):
    bad_now = cli("run", EXAMPLES / "rate_limit.js", "--now", "yesterday")
    assert bad_now.code == 2 and "ISO-8601" in bad_now.stderr
    assert cli("run", EXAMPLES / "rate_limit.js", "--limits", "huge").code == 2


def test_default_kv_lives_under_the_project_root(tmp_path):
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    (project / "pfunc.toml").write_text('[project]\nname = "t"\nsubscribe_key = "sub-c-t"\n')
    run_cli("run", EXAMPLES / "rate_limit.js", "--message", '{"userId":"u"}', cwd=project / "sub")
    assert (project / ".pfunc" / "kv.sqlite3").is_file()
    assert not (project / "sub" / ".pfunc").exists()


def test_project_limits_profile_applies(tmp_path):
    (tmp_path / "pfunc.toml").write_text('[project]\nlimits = "pubnub-2026"\n')
    run = run_cli("run", HANDLERS / "four_ops.js", "--json", cwd=tmp_path)
    assert run.code == 0
    assert run.json()["operations"]["limit"]["kvstore"] == 10


def test_operations_limit_takes_the_contracts_two_forms_under_every_profile(tmp_path):
    """The combined budget (classic), or an object of per-kind budgets otherwise:
    pubnub-2026's numbers, unlimited's nulls (it was a bare null), with what each kind used."""
    store = ("--kv", tmp_path / "kv.sqlite3")
    forms = {}
    for profile in ("classic", "pubnub-2026", "unlimited"):
        run = run_cli("run", HANDLERS / "four_ops.js", "--limits", profile, "--json", *store)
        forms[profile] = run.json()["operations"]
    assert forms["classic"]["limit"] == 3 and "used_by_kind" not in forms["classic"]
    assert forms["pubnub-2026"]["limit"] == {
        "kvstore": 10,
        "xhr": 5,
        "publish": 10,
        "pubnub": 10,
        "vault": 10,
    }
    assert forms["unlimited"]["limit"] == dict.fromkeys(forms["pubnub-2026"]["limit"], None)
    assert forms["unlimited"]["used_by_kind"] == {"kvstore": 4}
    assert forms["unlimited"]["used"] == 4 and not forms["unlimited"]["exceeded"]
    shown = run_cli("run", HANDLERS / "four_ops.js", "--limits", "unlimited", *store)
    assert "Operations 4 (no limit)" in shown.stdout


def test_invalid_project_file_is_a_usage_error(tmp_path):
    (tmp_path / "pfunc.toml").write_text('[project]\nlimits = "gigantic"\n')
    run = run_cli("run", EXAMPLES / "rate_limit.js", cwd=tmp_path)
    assert run.code == 2
    assert "project.limits" in run.stderr and "classic" in run.stderr


def test_function_by_name_uses_its_configured_event_and_channel(tmp_path):
    kv = tmp_path / "kv.sqlite3"
    stats = run_cli("run", "message-stats", "--message", '{"text":"hi"}', "--kv", kv, "--json")
    assert stats.code == 0
    result = stats.json()
    assert result["event"] == "after-publish"
    assert result["function"] == "handlers/message_stats.js"
    assert result["operations"]["calls"][0]["key"] == "stats:chat"
    report = run_cli("run", "stats", "--query", "channel=chat", "--kv", kv, "--json").json()
    assert json.loads(report["response"]["body"])["total"] == 1


def test_a_listed_file_run_by_path_also_uses_its_configured_event(tmp_path):
    run = run_cli("run", "handlers/message_stats.js", "--kv", tmp_path / "kv.sqlite3", "--json")
    assert run.json()["event"] == "after-publish"


def test_unknown_function_name_lists_the_known_ones(cli):
    run = cli("run", "no-such-function")
    assert run.code == 2
    assert "functions: config, dedup, heartbeat, mentions, message-stats, notify" in run.stderr


def test_a_reader_that_goes_away_does_not_change_the_exit_code(tmp_path):
    """`pfunc run ... | head -1`: the rest of the report has nowhere to go, and the exit
    code still says how the execution ended (0 completed, 1 failed), with nothing on
    stderr. Here the pipe's reading end is closed before pfunc writes at all."""
    (tmp_path / "fails.js").write_text("export default () => { throw new Error('no'); };\n")
    store = ["--kv", tmp_path / "kv.sqlite3"]
    for handler, expected in ((EXAMPLES / "rate_limit.js", 0), (tmp_path / "fails.js", 1)):
        for output in ([], ["--json"]):
            done = run_cli_unread("run", handler, "--message", '{"userId":"u1"}', *store, *output)
            assert (done.code, done.stderr) == (expected, ""), (handler, output)


def test_ctrl_c_stops_a_run_at_once_even_inside_an_endless_loop(tmp_path):
    """The engine does not return to Python while a handler loops, so Python would hear
    Ctrl-C only at the time limit (here 30 s, then "Aborted!", exit 1): the run ends by
    the signal instead, as the terminal's default does."""
    import signal
    import time

    (tmp_path / "spin.js").write_text("export default () => { while (true) {} };\n")
    running = start_cli("run", "spin.js", "--message", "{}", "--timeout", "30", cwd=tmp_path)
    time.sleep(1.5)  # started, and spinning
    running.send_signal(signal.SIGINT)
    assert running.wait(60) == -signal.SIGINT


def test_a_response_text_with_a_lone_surrogate_is_sent_as_well_formed_text(tmp_path):
    """JavaScript strings may hold lone surrogates; UTF-8 cannot. The response's text is
    what production's runtime sends: U+FFFD in their place (pfunc dev once failed the
    request with a 500 while encoding it)."""
    (tmp_path / "lone.js").write_text(
        'export default (request, response) => response.send("a\\ud800b");\n'
    )
    run = run_cli("run", tmp_path / "lone.js", "--method", "GET", "--json", cwd=tmp_path)
    assert run.json()["response"]["body"] == "a\ufffdb"


def test_performance_time_origin_is_in_epoch_milliseconds(tmp_path):
    """As in V8: timeOrigin + now() is the time of day (QuickJS's own origin is not)."""
    (tmp_path / "origin.js").write_text(
        "export default (request) => request.ok({\n"
        "  gap: Math.abs(performance.timeOrigin + performance.now() - Date.now()),\n"
        "});\n"
    )
    run = run_cli("run", tmp_path / "origin.js", "--message", "{}", "--json", cwd=tmp_path)
    assert run.json()["message"]["gap"] < 1000


def test_a_syntax_error_at_the_end_of_the_file_still_shows_where(tmp_path):
    """QuickJS places "unexpected end of input" on the line after the last: the frame
    shows the last line, the caret at its end (it showed no frame at all)."""
    from pfunc.code_frames import code_frame

    handler = tmp_path / "cut.js"
    handler.write_text("export default (request) => {\n  return request.ok(\n")
    frame = code_frame(handler, 3, 1)
    assert frame is not None
    assert frame.splitlines()[-2:] == [
        "  > 2 |   return request.ok(",
        "      |                     ^",
    ]
    handler.write_text("export default (request) => {\n  return request.ok(\n\n\n")
    past_blank_lines = code_frame(handler, 5, 1)
    assert past_blank_lines is not None
    marked = past_blank_lines.splitlines()
    at = next(i for i, text in enumerate(marked) if text.startswith("  >"))
    assert marked[at].endswith("2 |   return request.ok(")
    assert marked[at + 1].endswith("|                     ^")


def test_a_file_that_ends_too_early_is_said_so_where_its_frame_points(tmp_path):
    """QuickJS words a half-typed handler (an unclosed brace) as "unexpected token in
    expression: ''" on the line after the last, while the frame's caret stood at the
    end of the last line of code: the header and the frame disagreed. It is said as V8
    says it, at the frame's place, in the report and the load check alike."""
    from pfunc.sandbox.syntax_check import syntax_error

    handler = tmp_path / "half.js"
    handler.write_text('export default (req, res) => {\n  return res.send("half");\n\n')
    run = run_cli("run", "half.js", "--event", "on-request", "--json", cwd=tmp_path)
    error = run.json()["error"]
    assert error["message"] == "half.js:2:27: Unexpected end of input", error
    assert (error["line"], error["column"], error["stack"]) == (2, 27, "    at half.js:2:27")
    checked = syntax_error(handler.read_text(), "half.js")
    assert checked is not None and checked.message == error["message"]
    # Lines as the engine counts them (a form feed is no line end), and only at the end:
    # an eval("1 +") the handler's code runs keeps the engine's words.
    handler.write_text("const a = 1;\f\nexport default (req, res) => {\n  return res.send(a);\n")
    error = run_cli("run", "half.js", "--event", "on-request", "--json", cwd=tmp_path).json()
    assert error["error"]["message"] == "half.js:3:22: Unexpected end of input"
    handler.write_text(
        'JSON.stringify({ get toJSON() { return eval("1 +"); } });\nexport default (r) => r.ok();\n'
    )
    error = run_cli("run", "half.js", "--json", cwd=tmp_path).json()["error"]
    assert "Unexpected end of input" not in error["message"], error


def test_an_error_in_a_minified_handler_shows_a_window_of_its_line(tmp_path):
    """A bundled or minified handler is one long line: the report's frame shows the
    columns around the error (ellipses where the line is cut), the caret under it."""
    handler = tmp_path / "min.js"
    handler.write_text(
        "const pad = " + repr("x" * 5000) + ";export default () => { null.boom; };\n"
    )
    shown = run_cli("run", handler, "--kv", tmp_path / "kv.sqlite3", cwd=tmp_path)
    assert shown.code == 1
    lines = shown.stdout.splitlines()
    at = next(i for i, text in enumerate(lines) if text.startswith("  > 1 | "))
    assert len(lines[at]) < 200 and lines[at].startswith("  > 1 | …")
    caret = lines[at + 1].index("^")
    assert lines[at][caret - 5 : caret + 4] == "null.boom"  # under boom, as V8 places it
    unwindowed = tmp_path / "short.js"
    unwindowed.write_text("export default () => { null.boom; };\n")
    short = run_cli("run", unwindowed, "--kv", tmp_path / "kv.sqlite3", cwd=tmp_path)
    short_lines = short.stdout.splitlines()
    at = next(i for i, text in enumerate(short_lines) if text.startswith("  > 1 | "))
    caret = short_lines[at + 1].index("^")
    assert short_lines[at][caret - 5 : caret + 4] == "null.boom"  # the same place


def test_a_message_over_pubnubs_size_limit_runs_with_a_warning(tmp_path):
    """PubNub refuses a publish over 32 KiB (a signal over the profile's signal size)
    before any function runs: `pfunc run` still runs the handler, and says so in the
    words `pfunc publish` refuses it with. A message the handler makes too large is
    warned of (what PubNub does then is undocumented); one within the limit is not."""
    handler = tmp_path / "grow.js"
    handler.write_text(
        "export default (request) => "
        'request.ok(request.message.grow ? { big: "x".repeat(40000) } : undefined);\n'
    )
    big = json.dumps({"a": "x" * 33_000})  # 33,008 bytes of JSON
    kv = tmp_path / "kv.sqlite3"

    def run(event: str, message: str) -> dict:
        return run_cli(
            "run",
            handler,
            "--event",
            event,
            "--message",
            message,
            "--kv",
            kv,
            "--json",
            cwd=tmp_path,
        ).json()

    refused = run_cli("publish", "default", big, "--kv", kv, cwd=tmp_path)
    measured = 'the message is 33,008 bytes of JSON; the limit is 32,768 (profile "classic")'
    assert measured in refused.stdout  # the refusal the warning echoes
    incoming = run("before-publish", big)
    assert (incoming["outcome"], incoming["delivered"]) == ("ok", True)
    assert incoming["warnings"] == [
        f'PubNub would refuse this publish to "default" before any function runs: {measured}. '
        "Send less, or keep the data in KV (pfunc ran the handler all the same)"
    ]
    signal = run("before-signal", '{"text": "more than thirty bytes"}')  # 33
    assert signal["warnings"] == [
        'PubNub would refuse this signal to "default" before any function runs: the message '
        'is 33 bytes of JSON; the limit is 30 (profile "classic"). Send less, or keep the data '
        "in KV (pfunc ran the handler all the same)"
    ]
    grown = run("before-publish", '{"grow": 1}')
    assert grown["delivered"] is True
    assert grown["warnings"] == [
        "the message as the handler left it is 40,010 bytes of JSON, over PubNub's limit of "
        '32,768 for a publish (profile "classic"); what PubNub does with such a message is '
        "undocumented, it may refuse it. Send less, or keep the data in KV"
    ]
    assert "limit of 30 for a signal" in run("before-signal", '{"grow": 1}')["warnings"][0]
    assert run("before-publish", '{"small": 1}')["warnings"] == []


def test_a_huge_message_is_cut_in_the_report_and_whole_in_json(tmp_path):
    handler = tmp_path / "huge.js"
    handler.write_text("export default (request) => request.ok({ big: 'x'.repeat(100000) });\n")
    shown = run_cli("run", handler, "--kv", tmp_path / "kv.sqlite3", cwd=tmp_path)
    assert shown.code == 0
    assert len(shown.stdout) < 30_000
    assert "more characters; --json prints it whole" in shown.stdout
    whole = run_cli("run", handler, "--kv", tmp_path / "kv.sqlite3", "--json", cwd=tmp_path)
    assert whole.json()["message"]["big"] == "x" * 100000


def test_timetokens_follow_a_fixed_clock(tmp_path):
    """With --now (and in scenarios) a publish's timetoken and pubnub.time() count from
    the fixed moment, so a scenario's are the same in every run; in a store that is kept,
    a later run's follow the ones it holds, never repeat them."""
    handler = tmp_path / "tt.js"
    handler.write_text(
        'const pubnub = require("pubnub");\n'
        "export default async (request) => {\n"
        '  const sent = await pubnub.publish({ channel: "elsewhere", message: {} });\n'
        "  return request.ok({ tt: sent[2], time: String(await pubnub.time()) });\n"
        "};\n"
    )

    def run() -> dict:
        return run_cli(
            "run",
            handler,
            "--now",
            "2026-01-01T00:00:00Z",
            "--kv",
            tmp_path / "kv.sqlite3",
            "--json",
            cwd=tmp_path,
        ).json()

    first, second = run(), run()
    assert first["message"]["tt"] == "17672256000000000"
    assert first["triggered"][0]["timetoken"] == "17672256000000000"
    assert first["message"]["time"].startswith("176722560000")
    assert int(second["message"]["tt"]) > int(first["message"]["tt"])  # the store kept it
    (tmp_path / "tt.test.toml").write_text(
        '[[scenario]]\nname = "tt"\nfile = "tt.js"\nnow = "2026-01-01T00:00:00Z"\n\n'
        "[[scenario.step]]\npublish = { message = {} }\n"
        'expect = { message = { tt = "17672256000000000" } }\n'
    )
    for _ in range(2):  # a scenario's store is its own: the same timetokens every run
        assert run_cli("test", "tt.test.toml", cwd=tmp_path).code == 0


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("bom.py", "def handler(request):\n    return request.ok({'language': 'python'})\n"),
        ("bom.js", "export default (request) => request.ok({ language: 'js' });\n"),
    ],
)
def test_a_handler_saved_with_a_byte_order_mark_loads(tmp_path, name, source):
    handler = tmp_path / name
    handler.write_bytes(b"\xef\xbb\xbf" + source.encode())
    run = run_cli("run", handler, "--kv", tmp_path / "kv.sqlite3", "--json", cwd=tmp_path)
    assert (run.code, run.json()["outcome"]) == (0, "ok"), run.stdout


def _pfunc_bytes(*args: bytes, cwd, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    """`pfunc` with arguments as raw bytes (what a shell passes for $'\\xff')."""
    return subprocess.run(
        [sys.executable.encode(), b"-m", b"pfunc", *args],
        cwd=cwd,
        stdin=stdin,
        capture_output=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=60,
    )


@pytest.mark.parametrize(
    "args",
    [
        [b"run", b"h.js", b"--message", b'"\xff"'],
        [b"run", b"h.js", b"--header", b"x\xff: v"],
        [b"run", b"h.js", b"--path", b"/\xff"],
        [b"run", b"h.js", b"--channel", b"a,b"],
        [b"run", b"h.js", b"--timeout", b"nan"],
        [b"run", b"h.js", b"--timeout", b"inf"],
        [b"publish", b"chat", b'{"a":"\xff"}'],
        [b"kv", b"set", b"k", b'"\xff"'],
        [b"history", b"a,b"],
        [b"kv", b"export", b"/dev/null"],
        [b"run"],  # click's own usage errors too, once four lines
        [b"run", b"h.js", b"--event", b"nope"],
        [b"kv", b"incr"],
        [b"publish", b"--no-such-flag"],
    ],
)
def test_input_pfunc_cannot_take_is_one_line_and_exit_2(tmp_path, args):
    (tmp_path / "h.js").write_text("export default (request) => request.ok();\n")
    done = _pfunc_bytes(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stdout == b"" and len(done.stderr.decode().strip().splitlines()) == 1
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


def test_a_message_from_stdin_that_is_closed_is_a_usage_error(tmp_path):
    (tmp_path / "h.js").write_text("export default (request) => request.ok();\n")
    done = subprocess.run(
        [sys.executable, "-m", "pfunc", "run", "h.js", "--message", "-"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.close(0),
    )
    assert done.returncode == 2 and "no standard input" in done.stderr, done.stderr


def _item(key: str) -> dict:
    return {"key": key, "value": 1, "expires_at": "2099-01-01T00:00:00Z"}


def test_kv_export_writes_through_a_link_and_a_reader_may_stop_reading(tmp_path):
    store = tmp_path / "kv.sqlite3"
    dump = {"format": "pfunc-kv-1", "items": [_item(f"k{n}") for n in range(50)]}
    (tmp_path / "dump.json").write_text(json.dumps(dump))
    assert run_cli("kv", "import", "dump.json", "--kv", store, cwd=tmp_path).code == 0
    (tmp_path / "link.json").symlink_to(tmp_path / "target.json")
    assert run_cli("kv", "export", "link.json", "--kv", store, cwd=tmp_path).code == 0
    assert (tmp_path / "link.json").is_symlink()
    assert len(json.loads((tmp_path / "target.json").read_text())["items"]) == 50
    for command in ("list", "counters"):  # `| head -1`: the code is still the command's
        reading = subprocess.Popen(
            [sys.executable, "-m", "pfunc", "kv", command, "--kv", str(store)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert reading.stdout is not None
        reading.stdout.readline()
        reading.stdout.close()
        assert reading.wait(timeout=60) == 0


def test_a_project_file_that_is_no_file_and_a_shared_path_are_refused(tmp_path):
    (tmp_path / "pfunc.toml").mkdir()
    refused = run_cli("publish", "chat", "{}", cwd=tmp_path)
    assert refused.code == 2 and "pfunc.toml is not a readable file" in refused.stderr
    (tmp_path / "pfunc.toml").rmdir()
    (tmp_path / "a.js").write_text("export default (request, response) => response.send('a');\n")
    (tmp_path / "pfunc.toml").write_text(
        '[[functions]]\nname = "a"\nfile = "a.js"\nevent = "on-request"\npath = "x"\n\n'
        '[[functions]]\nname = "b"\nfile = "a.js"\nevent = "on-request"\npath = "x"\n'
    )
    clash = run_cli("publish", "chat", "{}", cwd=tmp_path)
    assert clash.code == 2 and '"a" and "b" both serve path "x"' in clash.stderr


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ('[project]\nnmae = "x"\n', "project: unknown key 'nmae'"),
        ('[project]\n\n[vualt]\nA = "1"\n', "pfunc.toml:3: unknown key 'vualt'"),
        ('[mocks]\nurl = "https://x/*"\n', ":1: write each of mocks as [[mocks]] (two brackets)"),
        # a mock that could never match: no scheme, or a method no request has
        ('[[mocks]]\nurl = "api.example.com/*"\n', ":2: mocks[0].url starts with its scheme"),
        (
            '[[mocks]]\nurl = "htps://api.example.com/*"\n',
            ":2: mocks[0].url starts with its scheme",
        ),
        # the table's own line, not a key of that name inside [project]
        ('[project]\nkv = "s.db"\n\n[kv]\na = 1\n', "pfunc.toml:4: unknown key 'kv'"),
        (
            '[[mocks]]\nurl = "https://x/*"\nmethod = "GETT"\n',
            ":3: mocks[0].method 'GETT' is none of",
        ),
        (
            '[[functions]]\nname = "a"\nfile = "a.js"\nevent = "before-publish"\n'
            'channels = ["chat", "chat"]\n',
            ":5: functions[0] (\"a\").channels names 'chat' twice",
        ),
        ("[project]\nname = 'x'\n[presence\n", ":3: not valid TOML: Expected ']'"),
        (
            '[[functions]]\nname = "a"\nfile = "a.js"\nevent = "before-publish"\n'
            'chanels = ["chat"]\n',
            "functions[0]: unknown key 'chanels'",
        ),
        ("[presence]\nannounce = 5\n", "presence: unknown key 'announce'"),
        # a misspelt mock key answered every request 200 with an empty body
        ('[[mocks]]\nurl = "https://x/*"\njsn = 1\n', "mocks[0]: unknown key 'jsn'"),
        # a value out of range: refused where it is written, not where it is first used
        (
            '[project]\nname = "x"\n[limits]\ntimeout = 0\n',
            ':4: limit "timeout" must be a positive',
        ),
        # a key that no REST path can hold: the ready line named URLs that answered 404
        ('[project]\nsubscribe_key = ""\n', ":2: project.subscribe_key is empty"),
        ('[project]\npublish_key = "pub/c"\n', ":2: project.publish_key holds a character"),
        # a key of another kind of function: ignored, it read as if it did something
        (
            '[[functions]]\nname = "a"\nfile = "a.js"\nevent = "before-publish"\n'
            'channels = ["chat"]\npath = "api"\n',
            ':6: functions[0] ("a").path does not apply to before-publish',
        ),
    ],
)
def test_a_misspelt_key_in_pfunc_toml_is_refused_not_ignored(tmp_path, toml, words):
    (tmp_path / "a.js").write_text("export default (request) => request.ok();\n")
    (tmp_path / "pfunc.toml").write_text(toml)
    refused = run_cli("publish", "chat", "{}", cwd=tmp_path)
    assert refused.code == 2 and words in refused.stderr, refused.stderr
    assert "pfunc.toml:" in refused.stderr  # with its line


def test_output_that_cannot_be_written_and_a_name_too_long_are_one_line(tmp_path):
    store = tmp_path / "kv.sqlite3"
    for number in range(3):
        run_cli("kv", "set", f"k{number}", "1", "--kv", store, cwd=tmp_path)
    with open("/dev/full", "w") as full:  # every write: "No space left on device"
        done = subprocess.run(
            [sys.executable, "-m", "pfunc", "kv", "list", "--kv", str(store)],
            cwd=tmp_path,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert (done.returncode, done.stderr.strip()) == (1, "Error: No space left on device")
    long = run_cli("init", "d" * 300, cwd=tmp_path)
    assert long.code == 2 and len(long.stderr.strip().splitlines()) == 1, long.stderr


def test_a_handler_that_cannot_be_read_is_a_usage_error(tmp_path):
    handler = tmp_path / "locked.js"
    handler.write_text("export default (request) => request.ok();\n")
    handler.chmod(0)
    try:
        if os.access(handler, os.R_OK):
            pytest.skip("running as root: every file is readable")
        refused = run_cli("run", handler, cwd=tmp_path)
        assert refused.code == 2 and "cannot read it" in refused.stderr
    finally:
        handler.chmod(0o644)


def test_a_limit_that_is_no_number_is_told_so():
    from pfunc.limits import resolve_profile

    with pytest.raises(ValueError, match=r'limit "timeout" must be a number up to 86,400, got nan'):
        resolve_profile("classic", {"timeout": float("nan")})
    with pytest.raises(ValueError, match=r'limit "timeout" must be at most 86,400, got inf'):
        resolve_profile("classic", {"timeout": float("inf")})
    # A fraction of a count was cut to a whole one (0.5 operations: none at all), and a
    # memory limit smaller than pfunc's own side of the sandbox failed every run with a
    # traceback (pfunc dev: a 500 for every publish).
    for key in ("operations", "key_length", "value_size"):
        with pytest.raises(ValueError, match=rf'limit "{key}" counts: a whole number, got 0.5'):
            resolve_profile("classic", {key: 0.5})
    assert resolve_profile("classic", {"operations": 2.0}).operations == 2
    with pytest.raises(ValueError, match=r'limit "memory_mb" must be at least 1 .*, got 0.5'):
        resolve_profile("classic", {"memory_mb": 0.5})


def test_dev_help_says_its_json_is_one_object_per_event(tmp_path):
    shown = run_cli("dev", "--help", cwd=tmp_path).stdout
    assert "NDJSON on stdout: one JSON object per server event" in " ".join(shown.split())
    assert "exactly one JSON object" in " ".join(run_cli("run", "--help").stdout.split())


def test_running_a_function_as_another_kind_is_said(tmp_path):
    """`pfunc run config --event before-publish` (an on-request function) fails in ways
    that read as the handler's fault; the report says the kind is not the one pfunc.toml
    binds it to."""
    run = run_cli(
        "run",
        "config",
        "--event",
        "before-publish",
        "--json",
        "--kv",
        tmp_path / "kv",
        cwd=REPO,
    )
    warnings = run.json()["warnings"]
    assert any('binds "config" to on-request' in w and "before-publish" in w for w in warnings)
    same = run_cli("run", "config", "--json", "--kv", tmp_path / "kv", cwd=REPO)
    assert not any("binds" in w for w in same.json()["warnings"])


def test_a_mistyped_function_name_gets_a_suggestion(tmp_path):
    run = run_cli("run", "rate-limt", "--kv", tmp_path / "kv", cwd=REPO)
    assert run.code == 2 and 'Did you mean "rate-limit"?' in run.stderr, run.stderr


def test_a_mock_url_may_wildcard_its_scheme(tmp_path):
    from pfunc.project_file import parse_project

    (tmp_path / "pfunc.toml").write_text('[[mocks]]\nurl = "http*://api.example.com/*"\n')
    assert parse_project(tmp_path / "pfunc.toml").mocks[0].url == "http*://api.example.com/*"


def test_an_empty_method_or_keyset_is_refused_not_read_as_not_given(tmp_path):
    """--method '' became GET, and --keyset '' showed the project's keyset's data."""
    (tmp_path / "api.js").write_text("export default (request, response) => response.send('ok');\n")
    method = invoke_cli("run", "api.js", "--method", "", cwd=tmp_path)
    assert method.code == 2 and "--method must be an HTTP method, got ''" in method.stderr
    keyset = invoke_cli("kv", "list", "--keyset", "", cwd=tmp_path)
    assert keyset.code == 2 and "--keyset is empty" in keyset.stderr


def test_a_usage_error_shows_a_name_s_control_characters_escaped(tmp_path):
    """send-file's 'no such file' printed a path's escape sequence raw."""
    named = invoke_cli("send-file", "chat", "tab\x01\x1b[2J.txt", cwd=tmp_path)
    assert named.code == 2 and "tab\\x01\\x1b[2J.txt: no such file" in named.stderr


def test_a_named_functions_request_has_the_uri_pfunc_dev_gives_it(tmp_path):
    """request.uri under pfunc run (and in scenarios) lacked the function's own path,
    which pfunc dev's holds (/v1/blocks/sub-key/KEY/session/login)."""
    (tmp_path / "pfunc.toml").write_text(
        '[project]\nsubscribe_key = "sub-c-u"\n'
        '[[functions]]\nname = "sessions"\nfile = "echo.js"\nevent = "on-request"\n'
        'path = "session/*"\n'
    )
    (tmp_path / "echo.js").write_text(
        "export default (request, response) => response.send(request.uri);"
    )
    run = invoke_cli("run", "sessions", "--path", "/login", "--json", cwd=tmp_path)
    assert json.loads(run.stdout)["response"]["body"] == "/v1/blocks/sub-key/sub-c-u/session/login"
