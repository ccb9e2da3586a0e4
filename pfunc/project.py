"""pfunc.toml -> Project: keyset, limits, KV path, vault secrets and functions.

Every configuration error names the file, the key and the allowed values, and is a
usage error (exit code 2).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pfunc.errors import PfuncUsageError
from pfunc.events import Keyset
from pfunc.limits import OVERRIDE_KEYS, PROFILES

PROJECT_FILE = "pfunc.toml"
DEFAULT_KV = ".pfunc/kv.sqlite3"
EVENT_KINDS = (
    "before-publish",
    "after-publish",
    "before-signal",
    "after-signal",
    "after-presence",
    "on-request",
    "on-interval",
)


@dataclass
class FunctionConfig:
    name: str
    file: Path
    event: str
    channels: list[str] = field(default_factory=list)
    path: str | None = None
    interval: float | None = None


@dataclass
class Project:
    root: Path
    config_file: Path | None
    name: str = "pfunc-project"
    keyset: Keyset = field(default_factory=Keyset)
    limits: str = "classic"
    limit_overrides: dict[str, Any] = field(default_factory=dict)
    kv_path: Path = field(default_factory=lambda: Path(DEFAULT_KV))
    vault: dict[str, str] = field(default_factory=dict)
    functions: list[FunctionConfig] = field(default_factory=list)

    def function(self, name: str) -> FunctionConfig | None:
        return next((function for function in self.functions if function.name == name), None)


def find_project_file(start: Path) -> Path | None:
    """The nearest pfunc.toml in `start` or a folder above it."""
    for folder in (start, *start.parents):
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None


def load_project(start: Path | None = None) -> Project:
    """The project around `start` (default: the current folder); defaults when there is none."""
    start = (start or Path.cwd()).resolve()
    config_file = find_project_file(start)
    if config_file is None:
        return Project(root=start, config_file=None, kv_path=start / DEFAULT_KV)
    return parse_project(config_file)


def parse_project(config_file: Path) -> Project:
    try:
        data = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise PfuncUsageError(f"{config_file}: not valid TOML: {error}") from None
    except OSError as error:
        raise PfuncUsageError(f"{config_file}: cannot read it: {error}") from None
    root = config_file.parent
    reader = _Reader(config_file)
    section = reader.table(data, "project")
    project = Project(root=root, config_file=config_file)
    project.name = reader.string(section, "project", "name", project.name)
    project.keyset = Keyset(
        subscribe_key=reader.string(section, "project", "subscribe_key", "sub-c-local"),
        publish_key=reader.string(section, "project", "publish_key", "pub-c-local"),
    )
    project.limits = reader.string(section, "project", "limits", "classic")
    if project.limits not in PROFILES:
        reader.fail("project.limits", project.limits, ", ".join(PROFILES))
    project.kv_path = root / reader.string(section, "project", "kv", DEFAULT_KV)
    overrides = reader.table(data, "limits")
    for key in overrides:
        if key not in OVERRIDE_KEYS:
            reader.fail(f"limits.{key}", key, ", ".join(OVERRIDE_KEYS))
    project.limit_overrides = dict(overrides)
    vault = reader.table(data, "vault")
    project.vault = {str(name): str(value) for name, value in vault.items()}
    project.functions = [
        reader.function(entry, index, root) for index, entry in enumerate(data.get("functions", []))
    ]
    return project


class _Reader:
    """Typed access to the parsed TOML with errors that name the file and the key."""

    def __init__(self, config_file: Path) -> None:
        self.config_file = config_file

    def fail(self, key: str, value: Any, allowed: str) -> None:
        raise PfuncUsageError(
            f"{self.config_file}: {key} = {value!r} is not allowed; use one of: {allowed}"
        )

    def table(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise PfuncUsageError(f"{self.config_file}: [{name}] must be a table")
        return value

    def string(self, table: dict[str, Any], section: str, key: str, default: str) -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            raise PfuncUsageError(
                f"{self.config_file}: {section}.{key} must be a string, got {value!r}"
            )
        return value

    def function(self, entry: Any, index: int, root: Path) -> FunctionConfig:
        where = f"functions[{index}]"
        if not isinstance(entry, dict):
            raise PfuncUsageError(f"{self.config_file}: {where} must be a table ([[functions]])")
        for required in ("name", "file", "event"):
            if not isinstance(entry.get(required), str):
                raise PfuncUsageError(
                    f"{self.config_file}: {where}.{required} is missing or not a string"
                )
        if entry["event"] not in EVENT_KINDS:
            self.fail(f"{where}.event", entry["event"], ", ".join(EVENT_KINDS))
        channels = entry.get("channels", [])
        if isinstance(channels, str):
            channels = [channels]
        interval = entry.get("interval")
        return FunctionConfig(
            name=entry["name"],
            file=root / entry["file"],
            event=entry["event"],
            channels=[str(channel) for channel in channels],
            path=entry.get("path"),
            interval=float(interval) if isinstance(interval, int | float) else None,
        )
