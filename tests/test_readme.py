"""The docs stay true: every `pfunc run`, `publish`, `signal`, `fire` and `kv` command that
README.md, CONTRIBUTING.md or docs/*.md shows runs with the exit code it says; the flags
they list exist; the test command is what CI runs; the scenario they show passes."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

README = (REPO / "README.md").read_text(encoding="utf-8")
DOC_FILES = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]
DOCS = {path.name: path.read_text(encoding="utf-8") for path in DOC_FILES}
ALL_DOCS = "\n".join(DOCS.values())


def _shell_lines(text: str = ALL_DOCS) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def _run_commands() -> list[tuple[list[str], int]]:
    commands = []
    for line in _shell_lines():
        # The one-command quick start ends in `.venv/bin/pfunc run ...`.
        line = line.split(".venv/bin/", 1)[1] if ".venv/bin/pfunc run" in line else line
        if not line.startswith(
            ("pfunc run", "pfunc publish", "pfunc signal", "pfunc fire", "pfunc kv")
        ):
            continue
        expected = re.search(r"#\s*exits (\d)", line)
        words = shlex.split(line, comments=True)
        commands.append((words[1:], int(expected.group(1)) if expected else 0))
    return commands


COMMANDS = _run_commands()


def test_the_readme_shows_run_commands():
    assert len(COMMANDS) >= 12
    assert {words[0] for words, _ in COMMANDS} >= {"run", "publish", "signal"}


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("readme")
    for name in ("examples", "handlers", "tests/handlers"):
        shutil.copytree(REPO / name, folder / name)
    shutil.copy(REPO / "pfunc.toml", folder / "pfunc.toml")
    return folder


@pytest.mark.parametrize(("args", "expected"), COMMANDS, ids=[" ".join(a) for a, _ in COMMANDS])
def test_readme_command_runs_as_shown(project_copy, args, expected):
    run = run_cli(*args, cwd=project_copy)
    assert run.code == expected, run.stdout + run.stderr


def test_every_flag_in_the_readme_table_exists():
    help_text = run_cli("run", "--help").stdout
    table = ALL_DOCS.split("| flag | meaning |", 1)[1].split("\n\n", 1)[0]
    flags = set(re.findall(r"`(--[a-z-]+)", table))
    assert flags, "the README lists the flags of pfunc run"
    missing = sorted(flag for flag in flags if flag not in help_text)
    assert missing == []


def test_the_test_command_is_what_ci_runs():
    ci = (REPO / ".ci" / "run").read_text()
    readme_test_command = next(line for line in _shell_lines(README) if "pytest" in line)
    assert readme_test_command in ci


def test_the_dev_flags_the_readme_shows_exist():
    usage = ALL_DOCS.split("pfunc dev [--host", 1)[1].split("```", 1)[0]
    help_text = run_cli("dev", "--help").stdout
    flags = set(re.findall(r"--[a-z-]+", usage))
    assert {"--port", "--no-intervals", "--subscribe-timeout"} <= flags
    assert sorted(flag for flag in flags if flag not in help_text) == []


def test_the_readme_scenario_file_passes(project_copy):
    block = next(
        b for b in re.findall(r"```toml\n(.*?)```", ALL_DOCS, flags=re.S) if "[[scenario]]" in b
    )
    path = project_copy / "examples" / "readme.test.toml"
    path.write_text(block)
    run = run_cli("test", path, cwd=project_copy)
    assert run.code == 0, run.stdout + run.stderr
    assert "1 passed, 0 failed" in run.stdout


def test_every_local_link_in_the_docs_points_at_a_file():
    broken = [
        f"{name}: {target}"
        for name, text in DOCS.items()
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text)
        if not (
            (REPO if name in ("README.md", "CONTRIBUTING.md") else REPO / "docs") / target
        ).exists()
    ]
    assert broken == []


def test_the_readme_is_a_short_guide():
    assert len(README.splitlines()) <= 300
