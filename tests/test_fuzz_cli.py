"""Fuzzing the command line, pfunc.toml and scenario files (Hypothesis): whatever the input,
no traceback; exit 0, 1 or 2; a usage error (2) is one line on stderr.

The commands run in-process through click's runner (a subprocess per example would take
minutes); a handful of CLI tests elsewhere run the real command in a subprocess."""

from __future__ import annotations

import os
import traceback
from dataclasses import fields
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pfunc.cli.commands import main
from pfunc.events import EventSpec
from tests.conftest import EXAMPLES

# Every field an event spec has (and one it has not).
SPEC_FIELDS = [spec_field.name for spec_field in fields(EventSpec)]

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

nasty = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "NaN",
            "1e999",
            "-Infinity",
            "1" * 5000,
            "[" * 2000 + "]" * 2000,
            '"\\ud800"',
            "\udcff",  # what a non-UTF-8 byte in argv becomes
            "@/nonexistent/file",
            "@/dev/null",
            "-",
            "{}",
            '{"userId":"u1"}',
            "nan",
            "inf",
            "",
        ]
    ),
)


def invoke(args: list[str], folder: Path) -> None:
    """Run `pfunc ARGS` in `folder` and check the exit contract."""
    runner = CliRunner()
    previous = Path.cwd()
    os.chdir(folder)
    try:
        result = runner.invoke(main, args, input="", catch_exceptions=True)
    finally:
        os.chdir(previous)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"pfunc {args!r} raised:\n{trace}")
    assert result.exit_code in (0, 1, 2), (args, result.output)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        errors = [line for line in result.stderr.splitlines() if line.strip()]
        usage = [line for line in errors if line.startswith(("Error:", "Usage:", "Try "))]
        assert usage, (args, result.stderr)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz-cli")
    (folder / "handler.js").write_text((EXAMPLES / "rate_limit.js").read_text(), encoding="utf-8")
    (folder / "latin1.json").write_bytes(b'{"a":"\xe9"}')
    return folder


@SETTINGS
@given(
    flag=st.sampled_from(
        [
            "--message",
            "--params",
            "--meta",
            "--query",
            "--header",
            "--body",
            "--now",
            "--timeout",
            "--channel",
            "--path",
            "--method",
            "--state",
            "--uuid",
            "--occupancy",
        ]
    ),
    value=nasty,
    second=st.sampled_from([[], ["--event", "on-request"], ["--event", "after-presence"]]),
)
def test_run_flags(folder, flag, value, second):
    invoke(["run", "handler.js", flag, value, *second, "--kv", "kv.sqlite3", "--json"], folder)


@SETTINGS
@given(key=nasty, value=nasty, ttl=st.one_of(st.none(), nasty))
def test_kv_commands(folder, key, value, ttl):
    extra = [] if ttl is None else ["--ttl", ttl]
    invoke(["kv", "set", key, value, *extra, "--kv", "kv.sqlite3"], folder)
    invoke(["kv", "get", key, "--kv", "kv.sqlite3", "--json"], folder)
    invoke(["kv", "incr", key, "--kv", "kv.sqlite3"], folder)


def test_kv_import_of_files_that_are_not_exports(folder):
    for content in (b"", b"\xff\xfe", b"NaN", b'{"format":"pfunc-kv-1","items":[{"key":1}]}'):
        (folder / "in.json").write_bytes(content)
        invoke(["kv", "import", "in.json", "--kv", "kv.sqlite3"], folder)
    invoke(["run", "handler.js", "--message", "@latin1.json", "--kv", "kv.sqlite3"], folder)


toml_value = st.one_of(
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).replace("inf", "inf")),
    st.text(max_size=12).map(lambda s: '"' + s.replace("\\", "").replace('"', "") + '"'),
    st.sampled_from(['"x"', "true", "[]", "{}", '["chat"]', "{ a = 1 }", "nan", "-inf"]),
)


@SETTINGS
@given(
    key=st.sampled_from(
        [
            "name",
            "subscribe_key",
            "limits",
            "kv",
            "event",
            "channels",
            "path",
            "interval",
            "file",
            "timeout",
            "operations",
            "url",
            "status",
            "headers",
            "json",
            "method",
        ]
    ),
    value=toml_value,
    table=st.sampled_from(["project", "limits", "functions", "mocks", "vault"]),
)
def test_pfunc_toml(tmp_path_factory, key, value, table):
    folder = tmp_path_factory.mktemp("toml")
    (folder / "h.js").write_text("export default (request) => request.ok();")
    header = f"[[{table}]]" if table in ("functions", "mocks") else f"[{table}]"
    base = {
        "functions": 'name = "f"\nfile = "h.js"\nevent = "before-publish"\nchannels = ["c"]\n',
        "mocks": 'url = "https://x.test/*"\n',
    }.get(table, "")
    lines = [line for line in base.splitlines() if not line.startswith(f"{key} =")]
    (folder / "pfunc.toml").write_text(f"{header}\n" + "\n".join([*lines, f"{key} = {value}"]))
    invoke(["run", "h.js", "--json"], folder)
    invoke(["publish", "c", "{}"], folder)


@SETTINGS
@given(
    trigger=st.sampled_from(["publish", "signal", "request", "presence", "interval"]),
    field=st.sampled_from([*SPEC_FIELDS, "oops"]),
    value=toml_value,
    advance=st.one_of(st.none(), toml_value),
    event=st.one_of(st.none(), st.sampled_from(['"on-request"', '"before-publish"', "3"])),
)
def test_scenario_files(tmp_path_factory, trigger, field, value, advance, event):
    folder = tmp_path_factory.mktemp("scenario")
    (folder / "h.js").write_text("export default (request) => request.ok();")
    step = [f"{trigger} = {{ {field} = {value} }}"]
    if advance is not None:
        step.append(f"advance = {advance}")
    if event is not None:
        step.append(f"event = {event}")
    (folder / "s.test.toml").write_text(
        '[[scenario]]\nname = "fuzz"\nfile = "h.js"\n\n[[scenario.step]]\n'
        + "\n".join(step)
        + '\nexpect = { outcome = "ok" }\n'
    )
    invoke(["test", "s.test.toml", "--junit", "out.xml"], folder)
