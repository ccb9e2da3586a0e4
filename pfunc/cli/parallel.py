"""`pfunc test -n N`: the scenario files run as pytest items (the plugin collects them)
across N processes with pytest-xdist, each scenario on its own fresh store as always.

It answers as `pfunc test` does: the files are read here first (a file that cannot be
read is a usage error, exit 2, before any process starts), `-k` selects by the same rule,
and the exit code is pfunc's (2 when a step cannot run as written, 1 when a scenario
failed). pytest runs hermetically: only the scenario files, pfunc's plugin and
pytest-xdist, none of the project's conftest.py files, pytest settings or other plugins,
so the Python tests beside the scenarios (and what they need) stay out."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pfunc.errors import PfuncUsageError

# pytest's exit codes: 0 all passed, 1 some failed; the rest are usage or internal errors.
_PASSED, _FAILED = 0, 1
_MALFORMED = 2


def run_with_pytest(
    files: list[Path],
    workers: str,
    pattern: str | None,
    first_failure: bool,
    junit_path: Path | None,
    as_json: bool,
) -> int:
    from pfunc.project_file import load_project
    from pfunc.testing.scenario import load_scenarios, nothing_to_run, selected

    if not (workers == "auto" or (workers.isdigit() and int(workers) > 0)):
        raise PfuncUsageError(f"-n takes a number of processes or auto, got {workers!r}")
    if as_json:
        raise PfuncUsageError("--json is not available with -n; use --junit FILE")
    missing = [name for name in ("pytest", "xdist") if importlib.util.find_spec(name) is None]
    if missing:
        raise PfuncUsageError(
            "pfunc test -n runs through pytest-xdist: pip install pytest pytest-xdist"
        )
    found = [s for file in files for s in load_scenarios(file)]
    for folder in {file.parent for file in files}:
        load_project(folder)  # a pfunc.toml that cannot be read: exit 2 here too
    count = sum(selected(s, pattern) for s in found)
    if not count:
        raise nothing_to_run(len(found), pattern)
    if junit_path is not None:
        _check_writable(junit_path)
    # No more processes than scenarios (pytest-xdist's own rules choose "auto" below that).
    processes = ["-n", "auto", f"--maxprocesses={count}"]
    if workers != "auto":
        processes = ["-n", str(min(count, int(workers)))]
    # Node ids (and JUnit names) relative to a folder above every file: the files keep
    # their paths in the report, wherever they are.
    resolved = [file.resolve() for file in files]
    rootdir = os.path.commonpath([os.getcwd(), *(str(f.parent) for f in resolved)])
    with tempfile.TemporaryDirectory(prefix="pfunc-test-") as empty:
        # None of the project's pytest settings; no folder skipped by its name (build/,
        # .ci/): only the listed files are collected (the plugin's --pfunc-files).
        settings = Path(empty) / "pytest.ini"
        settings.write_text("[pytest]\nnorecursedirs =\n", encoding="utf-8")
        listing = Path(empty) / "files.txt"
        listing.write_text("".join(f"{f}\n" for f in resolved), encoding="utf-8")
        command = [sys.executable, "-m", "pytest", "-q", "-c", str(settings)]
        command += [f"--rootdir={rootdir}", "--noconftest", "-p", "no:cacheprovider"]
        command += ["-p", "xdist.plugin", "-p", "pfunc.testing.pytest_plugin"]
        command += [*processes, "--pfunc-exit-codes", f"--pfunc-files={listing}"]
        command += [_folder_argument(resolved)]
        if pattern is not None:
            command += [f"--pfunc-select={pattern}"]  # one argument, even for "-x"
        if first_failure:
            command += ["-x"]
        if junit_path is not None:  # written by the plugin, as pfunc test writes it
            command += [f"--pfunc-junit={junit_path.resolve()}"]
        if sys.stdout.isatty():  # its report passes through a pipe of ours: keep the colour
            command += ["--color=yes"]
        code = _forwarding_output(command)
    return code if code in (_PASSED, _FAILED, _MALFORMED) else _MALFORMED


def _folder_argument(resolved: list[Path]) -> str:
    """A folder above every file (resolved), as pytest takes an argument: a path with "["
    or "::" in it is refused as a test's id (a folder named [id], as web projects name
    routes), so the nearest folder above without them, relative to here."""
    here = os.getcwd()
    folder = Path(os.path.commonpath([str(f.parent) for f in resolved]))
    while True:
        argument = os.path.relpath(folder, here)
        if "[" not in argument and "::" not in argument:
            return argument  # at worst "." or "../..": every name is gone
        folder = folder.parent


_ENDING = (signal.SIGINT, signal.SIGTERM)


def _forwarding_output(command: list[str]) -> int:
    """Run pytest, passing its report on; a reader that goes away (`| head`) gets no
    more of it, and the exit code stays the scenarios' (pytest's own would say failed)."""
    from pfunc.cli.options import reader_gone

    # pytest and its workers run in a session of their own, ended with this command on
    # Ctrl-C (or SIGTERM) at once: a worker in a handler's endless loop would otherwise
    # hear it only at the handler's time limit, or outlive us.
    process = subprocess.Popen(
        command, env=_hermetic(os.environ), stdout=subprocess.PIPE, start_new_session=True
    )

    stopped_by: list[int] = []

    def end_with_us(signum: int, frame: object) -> None:
        stopped_by.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # its output ends: the loop below does

    previous = {signum: signal.signal(signum, end_with_us) for signum in _ENDING}
    assert process.stdout is not None
    listening = True
    try:
        for line in process.stdout:
            if listening:
                try:
                    sys.stdout.buffer.write(line)
                    sys.stdout.buffer.flush()
                except BrokenPipeError:
                    reader_gone()
                    listening = False
        code = process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if stopped_by:
        sys.exit(128 + stopped_by[0])  # as a shell reports a command its signal ended
    return code


def _hermetic(environ: Mapping[str, str]) -> dict[str, str]:
    """Only the plugins named on the command line, in pytest and in pytest-xdist's
    workers, and none of the options a CI sets for the project's own tests."""
    kept = {k: v for k, v in environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    return {**kept, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def _check_writable(path: Path) -> None:
    """A JUnit path pytest could not write ends the run with a traceback, after it: say so
    first, in one line, as `pfunc test` does."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # as pytest's and pfunc test's writers do
        existed = path.exists()
        with path.open("a", encoding="utf-8"):
            pass
        if not existed:
            path.unlink()  # pytest writes it; a run that never starts leaves nothing behind
    except OSError as error:
        raise PfuncUsageError(
            f"--junit {path}: cannot write it: {error.strerror or error}"
        ) from None
