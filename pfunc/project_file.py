"""Reading pfunc.toml: finding the nearest one, and parsing it into a Project.

Every configuration error names the file, the line, the key and the allowed values, and
is a usage error (exit code 2).
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any, NoReturn

from pfunc import jsonio
from pfunc.channels import channel_problem
from pfunc.errors import PfuncUsageError
from pfunc.events import INTERVAL, KINDS, REQUEST, Keyset
from pfunc.limits import OVERRIDE_KEYS, PROFILES, resolve_profile
from pfunc.project import DEFAULT_KV, PROJECT_FILE, FunctionConfig, MockRule, Project

# The methods a mock may name (a typo such as GETT matched nothing, silently).
_HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

TOP_LEVEL_KEYS = {"project", "limits", "presence", "vault", "functions", "mocks"}
PROJECT_KEYS = {"name", "subscribe_key", "publish_key", "secret_key", "limits", "kv"}
FUNCTION_KEYS = {"name", "file", "event", "channels", "path", "interval"}
MOCK_KEYS = {"url", "method", "status", "headers", "json", "body"}  # pfunc.toml's and scenarios'


def find_project_file(start: Path) -> Path | None:
    """The nearest pfunc.toml in `start` or a folder above it."""
    for folder in (start, *start.parents):
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            return candidate
        if candidate.exists() or candidate.is_symlink():  # a folder, a device, a bad link
            raise PfuncUsageError(
                f"{candidate} is not a readable file; pfunc reads the project from it: "
                "make it the project's TOML file, or move it away"
            )
    return None


def load_project(start: Path | None = None) -> Project:
    """The project around `start` (default: the current folder); defaults when there is none."""
    start = (start or Path.cwd()).resolve()
    config_file = find_project_file(start)
    if config_file is None:
        return Project(root=start, config_file=None, kv_path=start / DEFAULT_KV)
    return parse_project(config_file)


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    """A TOML file's data and text; a usage error naming the file when it cannot be."""
    import tomllib  # 2 ms of imports, paid only where there is a TOML file

    try:
        # A byte-order mark (some Windows editors write one) is no part of the TOML.
        text = path.read_text(encoding="utf-8-sig")
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as error:
        # Placed as every other error is, path:line (tomllib says it at the end).
        said = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", str(error))
        if said is None:
            raise PfuncUsageError(f"{path}: not valid TOML: {error}") from None
        what, line, column = said.groups()
        raise PfuncUsageError(f"{path}:{line}: not valid TOML: {what} (column {column})") from None
    except RecursionError:
        raise PfuncUsageError(f"{path}: arrays or tables nested too deeply to read") from None
    except UnicodeDecodeError:
        raise PfuncUsageError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except OSError as error:
        raise PfuncUsageError(f"{path}: cannot read it: {error.strerror or error}") from None


def assignment_line(
    lines: list[str], start: int, assignment: re.Pattern[str], end: int | None = None
) -> int | None:
    """The index of the first of `lines` from `start` (a table's own line) that
    `assignment` finds, before the next table's header and `end`; None if none does: a
    key's line in a TOML table, for errors that name it (pfunc.toml's and scenarios')."""
    for number in range(start, len(lines) if end is None else min(end, len(lines))):
        line = lines[number]
        if number > start and line.lstrip().startswith("["):
            return None
        if assignment.search(line):
            return number
    return None


def parse_project(config_file: Path) -> Project:
    data, text = read_toml(config_file)
    root = config_file.parent
    reader = _Reader(config_file, text)
    # A misspelt key (chanels, [vualt]) would silently mean "not set": each is refused.
    reader.unknown_keys(data, TOP_LEVEL_KEYS, "")
    section = reader.table(data, "project")
    reader.unknown_keys(section, PROJECT_KEYS, "project")
    project = Project(root=root, config_file=config_file)
    project.name = reader.string(section, "project", "name", project.name)
    project.keyset = Keyset(
        subscribe_key=reader.string(section, "project", "subscribe_key", "sub-c-local"),
        publish_key=reader.string(section, "project", "publish_key", "pub-c-local"),
    )
    for name in ("subscribe_key", "publish_key"):  # a segment of every REST path
        key = getattr(project.keyset, name)
        if not key or re.search(r"[/?#%\s]", key):
            why = "is empty" if not key else "holds a character a URL path segment cannot"
            example = "sub-c-local" if name == "subscribe_key" else "pub-c-local"
            reader.problem("project", None, name, f"project.{name} {why}, e.g. {example}")
    project.secret_key = reader.string(section, "project", "secret_key", "") or None
    project.limits = reader.string(section, "project", "limits", "classic")
    if project.limits not in PROFILES:
        reader.fail("project.limits", project.limits, ", ".join(PROFILES), field_name="limits")
    project.kv_path = root / reader.string(section, "project", "kv", DEFAULT_KV)
    overrides = reader.table(data, "limits")
    reader.unknown_keys(overrides, set(OVERRIDE_KEYS), "limits")
    for key, value in overrides.items():  # refused here, with its line, not at first use
        try:
            resolve_profile(project.limits, {key: value})
        except ValueError as error:
            reader.problem("limits", None, key, str(error))
    project.limit_overrides = dict(overrides)
    presence = reader.table(data, "presence")
    reader.unknown_keys(presence, {"announce_max", "interval"}, "presence")
    announce_max = presence.get("announce_max", project.presence_announce_max)
    if not isinstance(announce_max, int) or isinstance(announce_max, bool) or announce_max < 1:
        why = "presence.announce_max must be a whole number, at least 1"
        reader.problem("presence", None, "announce_max", why)
    interval = presence.get("interval", project.presence_interval)
    if (
        not isinstance(interval, int | float)
        or isinstance(interval, bool)
        or not 1 <= interval <= 300
    ):
        reader.problem("presence", None, "interval", "presence.interval must be 1 to 300 seconds")
    project.presence_announce_max, project.presence_interval = announce_max, float(interval)
    vault = reader.table(data, "vault")
    for name, value in vault.items():  # vault.get() answers text: 8080 or false, quoted
        if not isinstance(value, str):
            shown = str(value).lower() if isinstance(value, bool) else value
            reader.problem("vault", None, name, f'vault.{name} is text: write {name} = "{shown}"')
    project.vault = dict(vault)
    project.functions = [
        reader.function(entry, index, root)
        for index, entry in enumerate(reader.tables(data, "functions"))
    ]
    reader.check_bindings(project.functions)
    project.mocks = [
        reader.mock(entry, index) for index, entry in enumerate(reader.tables(data, "mocks"))
    ]
    return project


def parse_mock(source: Path, entry: Any, index: int) -> MockRule:
    """One [[mocks]] table (from pfunc.toml or a scenario file) as a MockRule."""
    return _Reader(source, source.read_text(encoding="utf-8") if source.is_file() else "").mock(
        entry, index
    )


class _Reader:
    """Typed access to the parsed TOML, with errors that name the file, line and key."""

    def __init__(self, config_file: Path, text: str = "") -> None:
        self.config_file = config_file
        self.lines = text.splitlines()

    def _line_of(self, table: str, index: int | None, key: str | None) -> int | None:
        """The line of `key` in the index-th [[table]] (or in [table], or at the top level
        when `table` is ""), if it can be found."""
        if not table:  # `key = ...` above every table, or a [key] / [[key]] table
            named = re.compile(rf"^\s*\[\[?\s*{re.escape(key or '')}\s*\]")
            assigned = re.compile(rf"^\s*{re.escape(key or '')}\s*=")
            above_tables = True
            for number, line in enumerate(self.lines, start=1):
                if named.match(line) or (above_tables and assigned.match(line)):
                    return number
                above_tables = above_tables and not line.lstrip().startswith("[")
            return None
        header = re.compile(
            r"^\s*\[\[\s*" + re.escape(table) + r"\s*\]\]"
            if index is not None
            else r"^\s*\[\s*" + re.escape(table) + r"\s*\]"
        )
        seen, start = -1, None
        for number, line in enumerate(self.lines):
            if header.match(line):
                seen += 1
                if index is None or seen == index:
                    start = number
                    break
        if start is None:
            return None
        if key is None:
            return start + 1
        assignment = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
        found = assignment_line(self.lines, start, assignment)
        return (start if found is None else found) + 1

    def _where(self, table: str, index: int | None, key: str | None) -> str:
        line = self._line_of(table, index, key)
        return f"{self.config_file}:{line}" if line else str(self.config_file)

    def fail(
        self,
        key: str,
        value: Any,
        allowed: str,
        *,
        table: str = "project",
        index: int | None = None,
        field_name: str | None = None,
    ) -> NoReturn:
        where = self._where(table, index, field_name or key.rsplit(".", 1)[-1])
        raise PfuncUsageError(f"{where}: {key} = {value!r} is not allowed; use one of: {allowed}")

    def problem(self, table: str, index: int | None, key: str | None, message: str) -> NoReturn:
        raise PfuncUsageError(f"{self._where(table, index, key)}: {message}")

    def unknown_keys(
        self, given: dict, known: set[str], table: str, index: int | None = None
    ) -> None:
        for key in sorted(set(given) - known):
            at = table if index is None else f"{table}[{index}]"
            names = ", ".join(sorted(known))
            said = f"unknown key {key!r}; the keys are {names}"  # ("" table: the top level)
            self.problem(table, index, key, f"{at}: {said}" if at else said)

    def tables(self, data: dict[str, Any], name: str) -> list[Any]:
        """[[name]]: a list of tables ([name], one table, is a slip for it)."""
        value = data.get(name, [])
        if not isinstance(value, list):
            self.problem(name, None, None, f"write each of {name} as [[{name}]] (two brackets)")
        return value

    def table(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            self.problem(name, None, None, f"[{name}] must be a table")
        return value

    def string(self, table: dict[str, Any], section: str, key: str, default: str) -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            self.problem(section, None, key, f"{section}.{key} must be a string, got {value!r}")
        return value

    def function(self, entry: Any, index: int, root: Path) -> FunctionConfig:
        where = f"functions[{index}]"
        if not isinstance(entry, dict):
            self.problem("functions", index, None, f"{where} must be a table ([[functions]])")
        for required in ("name", "file", "event"):
            if not isinstance(entry.get(required), str) or not entry[required]:
                self.problem(
                    "functions", index, required, f"{where}.{required} is missing or not a string"
                )
        label = f'{where} ("{entry["name"]}")'
        self.unknown_keys(entry, FUNCTION_KEYS, "functions", index)
        event = entry["event"]
        if event not in KINDS:
            self.fail(
                f"{label}.event",
                event,
                ", ".join(KINDS),
                table="functions",
                index=index,
                field_name="event",
            )
        channels = entry.get("channels", [])
        if isinstance(channels, str):
            channels = [channels]
        if not isinstance(channels, list):
            self.problem(
                "functions",
                index,
                "channels",
                f'{label}.channels must be a list of channel names, e.g. ["chat", "chat.*"]',
            )
        kind = KINDS[event]
        applies = {"channels": kind.has_channels, "path": kind.family == REQUEST}
        applies["interval"] = kind.family == INTERVAL
        for key in [key for key, used in applies.items() if key in entry and not used]:
            self.problem("functions", index, key, f"{label}.{key} does not apply to {event}")
        if kind.has_channels:
            if not channels or not all(isinstance(c, str) for c in channels):
                self.problem(
                    "functions",
                    index,
                    "channels",
                    f"{label}.channels must list the channels of this {event} function, "
                    'e.g. channels = ["chat", "chat.*"]',
                )
            twice = sorted({channel for channel in channels if channels.count(channel) > 1})
            if twice:
                self.problem(
                    "functions", index, "channels", f"{label}.channels names {twice[0]!r} twice"
                )
            for channel in channels:
                why = channel_problem(channel)
                if why:
                    self.problem(
                        "functions",
                        index,
                        "channels",
                        f"{label}.channels: {channel!r} is not a valid channel: {why}",
                    )
        path = entry.get("path")
        if kind.family == REQUEST and (not isinstance(path, str) or not path.strip("/")):
            self.problem(
                "functions",
                index,
                "path",
                f'{label}.path names the function\'s URL path, e.g. path = "session"',
            )
        interval = entry.get("interval")
        if kind.family == INTERVAL and (
            not isinstance(interval, int | float)
            or isinstance(interval, bool)
            or not 1 <= interval <= 3600
        ):
            self.problem(
                "functions",
                index,
                "interval",
                f"{label}.interval must be a number of seconds from 1 to 3600 "
                "(PubNub runs interval functions at most an hour apart)",
            )
        return FunctionConfig(
            name=entry["name"],
            file=root / entry["file"],
            event=event,
            channels=[str(channel) for channel in channels],
            path=path.strip("/") if isinstance(path, str) else None,
            interval=float(interval) if isinstance(interval, int | float) else None,
        )

    def check_bindings(self, functions: list[FunctionConfig]) -> None:
        names: dict[str, int] = {}
        before: dict[tuple[str, str], str] = {}
        paths: dict[str, str] = {}  # an on-request path -> the function serving it
        for index, function in enumerate(functions):
            if function.path is not None:
                other = paths.get(function.path)
                if other:
                    self.problem(
                        "functions",
                        index,
                        "path",
                        f'"{other}" and "{function.name}" both serve path "{function.path}"; '
                        "only the first would ever be reached",
                    )
                paths[function.path] = function.name
            if function.name in names:
                self.problem(
                    "functions",
                    index,
                    "name",
                    f'two functions are named "{function.name}"; names must be unique',
                )
            names[function.name] = index
            if not KINDS[function.event].is_before:
                continue
            for channel in function.channels:
                other = before.get((function.event, channel))
                if other:
                    self.problem(
                        "functions",
                        index,
                        "channels",
                        f'"{other}" and "{function.name}" are both {function.event} '
                        f'functions on channel "{channel}"; PubNub allows one '
                        f"{function.event} function per channel",
                    )
                before[(function.event, channel)] = function.name

    def mock(self, entry: Any, index: int) -> MockRule:
        where = f"mocks[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            example = 'url = "https://api.example.com/*"'
            self.problem("mocks", index, "url", f"{where}.url is required, e.g. {example}")
        self.unknown_keys(entry, MOCK_KEYS, "mocks", index)
        scheme = entry["url"].split("://")[0].lower() if "://" in entry["url"] else None
        # A request is http or https: a scheme (or its glob, http*) that is neither never matches.
        if not entry["url"].startswith("*") and not (
            scheme and (fnmatch.fnmatchcase("http", scheme) or fnmatch.fnmatchcase("https", scheme))
        ):
            example = entry["url"].split("://")[-1]
            why = f'{where}.url starts with its scheme, e.g. "https://{example}"'
            self.problem("mocks", index, "url", why)
        method = entry.get("method")
        if isinstance(method, str) and method.upper() not in _HTTP_METHODS:
            methods = ", ".join(_HTTP_METHODS)
            self.problem(
                "mocks", index, "method", f"{where}.method {method!r} is none of {methods}"
            )
        status = entry.get("status", 200)
        if not isinstance(status, int) or not 100 <= status <= 599:
            self.problem("mocks", index, "status", f"{where}.status must be an HTTP status code")
        raw_headers = entry.get("headers") or {}
        if not isinstance(raw_headers, dict):
            self.problem(
                "mocks", index, "headers", f'{where}.headers must be a table: {{ x-id = "1" }}'
            )
        if method is not None and not isinstance(method, str):
            self.problem("mocks", index, "method", f'{where}.method must be text, e.g. "GET"')
        headers = {str(k).lower(): str(v) for k, v in raw_headers.items()}
        if "body" in entry and ("json" in entry or not isinstance(entry["body"], str)):
            why = "give json or body, not both" if "json" in entry else "body is text"
            self.problem("mocks", index, "body", f"{where}: {why}")
        if "json" in entry:
            try:
                body = jsonio.dumps(jsonio.check(entry["json"]))
            except ValueError as error:
                self.problem("mocks", index, "json", f"{where}.json: {error}")
            headers.setdefault("content-type", "application/json")
        else:
            body = str(entry.get("body", ""))
        return MockRule(
            entry["url"], method.upper() if isinstance(method, str) else None, status, headers, body
        )
