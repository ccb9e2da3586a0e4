"""`pfunc test -n N`: the scenario files run as pytest items (the plugin collects them)
across N processes with pytest-xdist, each scenario on its own fresh store as always.
Only the scenario files are handed to pytest, so the Python tests beside them stay out."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from pfunc.errors import PfuncUsageError

# pytest's exit codes: 0 all passed, 1 some failed; the rest are usage or internal errors.
_PASSED, _FAILED = 0, 1


def run_with_pytest(
    files: list[Path],
    workers: str,
    pattern: str | None,
    first_failure: bool,
    junit_path: Path | None,
    as_json: bool,
) -> int:
    if not (workers == "auto" or (workers.isdigit() and int(workers) > 0)):
        raise PfuncUsageError(f"-n takes a number of processes or auto, got {workers!r}")
    if as_json:
        raise PfuncUsageError("--json is not available with -n; use --junit FILE")
    missing = [name for name in ("pytest", "xdist") if importlib.util.find_spec(name) is None]
    if missing:
        raise PfuncUsageError(
            "pfunc test -n runs through pytest-xdist: pip install pytest pytest-xdist"
        )
    if not files:
        raise PfuncUsageError("no scenarios found (files named *.test.toml)")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
    command += ["-n", workers, *map(str, files)]
    if pattern:
        command += ["-k", pattern]
    if first_failure:
        command += ["-x"]
    if junit_path is not None:
        command += [f"--junitxml={junit_path}"]
    code = subprocess.run(command).returncode
    return code if code in (_PASSED, _FAILED) else 2
