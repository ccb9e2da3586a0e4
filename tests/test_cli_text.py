"""What the command line is given that is not what it asks for: arguments whose bytes are
not UTF-8 (a shell passes bytes; Python holds the bad ones as lone surrogates), files so
named, two flags asking for standard input, a folder gone from under the shell. Each is
one line and exit 2, or simply works, and leaves nothing half written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, REPO, invoke_cli

NOT_UTF8 = "\udcff"  # what the byte 0xFF of an argument becomes


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (("publish", NOT_UTF8, "{}"), "CHANNEL"),
        (("signal", f"ch{NOT_UTF8}", "{}"), "CHANNEL"),
        (("fire", f"ch{NOT_UTF8}", "{}"), "CHANNEL"),
        (("history", NOT_UTF8), "CHANNEL"),
        (("publish", "ch", "{}", "--keyset", NOT_UTF8), "--keyset"),
        (("kv", "list", "--keyset", NOT_UTF8), "--keyset"),
        (("kv", "set", f"k{NOT_UTF8}", "1"), "KEY"),
        (("run", str(EXAMPLES / "rate_limit.js"), "--keyset", NOT_UTF8), "--keyset"),
        (("kv", "get", f"k{NOT_UTF8}"), "KEY"),
        (("kv", "incr", f"k{NOT_UTF8}", "-1"), "KEY"),
        (("dev", "--host", NOT_UTF8, "--port", "0"), "--host"),
    ],
)
def test_text_that_is_not_utf8_is_refused_by_its_name(tmp_path, arguments, named):
    run = invoke_cli(*arguments, "--kv", tmp_path / "kv.sqlite3", cwd=tmp_path)
    assert run.code == 2, run
    assert f"Error: {named} is not UTF-8 text; write it as UTF-8" in run.stderr
    assert not (tmp_path / "kv.sqlite3").exists()  # refused before anything was opened


def test_a_handler_whose_file_name_is_not_utf8_runs_and_is_shown(tmp_path):
    latin1 = Path(os.fsdecode(b"caf\xe9.js"))  # a Latin-1 name on a UTF-8 system
    (tmp_path / latin1).write_text('export default (request) => { throw new Error("boom"); };')
    run = invoke_cli("run", latin1, "--json", "--kv", tmp_path / "kv.sqlite3", cwd=tmp_path)
    assert run.code == 1, run.stderr  # the handler's own error, reported
    report = json.loads(run.stdout)
    assert report["error"]["message"] == "boom"
    assert report["error"]["stack"] == "    at caf\ufffd.js:1:41"
    # In a folder so named, pfunc test runs the scenario found there too.
    folder = tmp_path / Path(os.fsdecode(b"s\xe9"))
    folder.mkdir()
    (folder / "ok.js").write_text("export default (request) => request.ok();")
    (folder / "ok.test.toml").write_text(
        '[[scenario]]\nname = "ok"\nfile = "ok.js"\n[[scenario.step]]\npublish = { message = {} }\n'
    )
    assert invoke_cli("test", folder, cwd=tmp_path).code == 0


def test_send_file_of_a_name_that_is_not_utf8_keeps_nothing(tmp_path):
    named = tmp_path / Path(os.fsdecode(b"f\xe9.txt"))
    named.write_bytes(b"x")
    run = invoke_cli("send-file", "ch", named, "--kv", tmp_path / "kv.sqlite3", cwd=tmp_path)
    assert run.code == 2 and "the file name is not UTF-8 text" in run.stderr
    kept = tmp_path / ".pfunc" / "files"
    assert not kept.exists() or not any(kept.iterdir())


def test_two_flags_cannot_both_read_standard_input(tmp_path):
    run = invoke_cli(
        "run", EXAMPLES / "rate_limit.js", "--message", "-", "--meta", "-",
        "--kv", tmp_path / "kv.sqlite3", cwd=tmp_path, stdin='{"userId":"u1"}',
    )  # fmt: skip
    assert run.code == 2
    assert "--message and --meta all read standard input (-)" in run.stderr


def test_a_file_flag_names_a_file_whose_name_is_not_utf8(tmp_path):
    named = Path(os.fsdecode(b"b\xe9.txt"))
    (tmp_path / named).write_text("hello")
    (tmp_path / "echo.js").write_text(
        "export default (request, response) => response.send(request.body);"
    )
    run = invoke_cli(
        "run", "echo.js", "--event", "on-request", "--body", f"@{named}", "--json",
        "--kv", tmp_path / "kv.sqlite3", cwd=tmp_path,
    )  # fmt: skip
    assert run.code == 0, run.stderr
    assert json.loads(run.stdout)["response"]["body"] == "hello"


def test_an_empty_host_is_refused(tmp_path):
    run = invoke_cli("dev", "--host", "", "--port", "0", cwd=tmp_path)
    assert run.code == 2 and "--host is empty" in run.stderr


def pfunc_in_a_deleted_folder(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`pfunc ARGS` whose current folder another process deleted after the shell cd'd in."""
    folder.mkdir()
    script = (
        "import os, sys, runpy; os.chdir(sys.argv[1]); os.rmdir(sys.argv[1]); "
        "sys.argv = ['pfunc', *sys.argv[2:]]; runpy.run_module('pfunc', run_name='__main__')"
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(folder), *args],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip


def test_a_current_folder_that_was_deleted_is_named_as_the_problem(tmp_path):
    run = pfunc_in_a_deleted_folder(tmp_path / "gone", "run", str(EXAMPLES / "rate_limit.js"))
    assert run.returncode == 2, run.stderr
    assert run.stderr == "Error: the current folder no longer exists; cd to one that does\n"
    # What needs no folder still answers.
    asked = pfunc_in_a_deleted_folder(tmp_path / "gone2", "--version")
    assert asked.returncode == 0 and "pfunc" in asked.stdout, asked.stderr


@pytest.mark.parametrize(
    ("arguments", "command"),
    [(("run", "x.js", "--kv"), " run"), (("kv", "list", "--limit"), " kv list")],
)
def test_a_flag_missing_its_value_points_at_its_commands_help(tmp_path, arguments, command):
    run = invoke_cli(*arguments, cwd=tmp_path)
    # (in-process, click names the program "main"; the command follows it)
    assert run.code == 2 and run.stderr.endswith(
        f"requires an argument. (see main{command} --help)\n"
    )
