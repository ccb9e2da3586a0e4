"""From `pfunc run` flags to a ready execution: the project, handler, limits, clock and event."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pfunc.clock import Clock
from pfunc.errors import PfuncUsageError
from pfunc.events import (
    REQUEST_KIND,
    SUPPORTED_KINDS,
    Event,
    Keyset,
    MessageEvent,
    RequestEvent,
    parse_header_flags,
    parse_json_flag,
    parse_query_flags,
    read_text_flag,
)
from pfunc.limits import Profile, resolve_profile
from pfunc.project import FunctionConfig, Project, load_project
from pfunc.result import Result

_HTTP_FLAGS = ("method", "http_path", "query", "header", "body")
_MESSAGE_FLAGS = ("message", "params_json", "meta_json")


@dataclass
class RunPlan:
    handler: Path
    display_path: str
    event: Event
    kv_path: Path
    profile: Profile
    clock: Clock
    keyset: Keyset
    as_json: bool

    async def execute(self) -> Result:
        from pfunc.executor import execute_once
        from pfunc.store import StoreOpenError

        try:
            return await execute_once(
                self.handler,
                self.event,
                kv_path=self.kv_path,
                profile=self.profile,
                clock=self.clock,
                keyset=self.keyset,
                display_path=self.display_path,
            )
        except StoreOpenError as error:
            raise PfuncUsageError(str(error)) from None


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _resolve_handler(target: str, project: Project) -> tuple[Path, FunctionConfig | None]:
    """The handler file for TARGET (a path or a function name) and its pfunc.toml entry."""
    path = Path(target)
    if path.is_file():
        if path.suffix == ".py":
            raise PfuncUsageError(
                f"{target}: Python handlers are not supported by this version of pfunc yet; "
                "write the handler in JavaScript (.js)"
            )
        resolved = path.resolve()
        matches = [f for f in project.functions if f.file.resolve() == resolved]
        return path, matches[0] if len(matches) == 1 else None
    function = project.function(target)
    if function is not None:
        if not function.file.is_file():
            raise PfuncUsageError(
                f"function {target!r} in {project.config_file} names {function.file}, which "
                "does not exist; fix its file = ... entry"
            )
        return function.file, function
    if path.exists():
        raise PfuncUsageError(f"{target} is a folder; pass a handler file, e.g. handlers/app.js")
    known = ", ".join(sorted(f.name for f in project.functions)) or "none in pfunc.toml"
    raise PfuncUsageError(
        f"{target}: no such handler file (and no function of that name; functions: {known}). "
        "Check the path, relative to the current folder."
    )


def prepare_run(target: str, **flags: Any) -> RunPlan:
    project = load_project()
    handler, function = _resolve_handler(target, project)
    event = _build_event(flags, function)
    overrides = dict(project.limit_overrides)
    if flags.get("timeout") is not None:
        overrides["timeout"] = flags["timeout"]
    try:
        profile = resolve_profile(flags.get("limits_name") or project.limits, overrides)
    except ValueError as error:
        raise PfuncUsageError(str(error)) from None
    clock = Clock()
    if flags.get("now_text"):
        try:
            clock = Clock.parse_fixed(flags["now_text"])
        except ValueError:
            raise PfuncUsageError(
                f"--now {flags['now_text']!r} is not an ISO-8601 time; "
                "write it like 2026-01-01T12:00:00Z"
            ) from None
    keyset = project.keyset
    if flags.get("keyset"):
        keyset = Keyset(subscribe_key=flags["keyset"], publish_key=keyset.publish_key)
    kv_path = flags.get("kv_path") or project.kv_path
    return RunPlan(
        handler=handler,
        display_path=_display(handler),
        event=event,
        kv_path=Path(kv_path),
        profile=profile,
        clock=clock,
        keyset=keyset,
        as_json=bool(flags.get("as_json")),
    )


def _given(flags: dict[str, Any], name: str) -> bool:
    value = flags.get(name)
    return value is not None and value != ()


def _build_event(flags: dict[str, Any], function: FunctionConfig | None) -> Event:
    http_given = [name for name in _HTTP_FLAGS if _given(flags, name)]
    configured = function.event if function else None
    kind = (
        flags.get("event_kind") or configured or (REQUEST_KIND if http_given else "before-publish")
    )
    if kind not in SUPPORTED_KINDS:
        raise PfuncUsageError(
            f"function {function.name if function else ''!r} is an {kind} function; this version "
            f"of pfunc runs {', '.join(SUPPORTED_KINDS)} events"
        )
    if kind == REQUEST_KIND:
        message_given = [name for name in _MESSAGE_FLAGS if _given(flags, name)]
        if message_given:
            names = ", ".join("--" + n.removesuffix("_json") for n in message_given)
            raise PfuncUsageError(
                f"{names} apply to message events, not on-request; send data with --body, "
                "--query or --header"
            )
        body = read_text_flag("--body", flags["body"]) if _given(flags, "body") else ""
        method = flags.get("method") or ("POST" if _given(flags, "body") else "GET")
        return RequestEvent(
            method=method.upper(),
            path=flags.get("http_path") or "/",
            query=parse_query_flags(flags.get("query") or ()),
            headers=parse_header_flags(flags.get("header") or ()),
            body=body,
        )
    if http_given:
        names = ", ".join("--" + n.removeprefix("http_") for n in http_given)
        raise PfuncUsageError(
            f"{names} apply to on-request events, but --event is {kind}; drop them or use "
            "--event on-request"
        )
    message = parse_json_flag("--message", flags["message"]) if _given(flags, "message") else {}
    params = (
        parse_json_flag("--params", flags["params_json"], want_object=True)
        if _given(flags, "params_json")
        else {}
    )
    meta = (
        parse_json_flag("--meta", flags["meta_json"], want_object=True)
        if _given(flags, "meta_json")
        else {}
    )
    return MessageEvent(
        kind=kind,
        message=message,
        channel=flags.get("channel") or _default_channel(function),
        params=params,
        meta=meta,
    )


def _default_channel(function: FunctionConfig | None) -> str:
    """The function's first exact channel name, else "default"."""
    exact = [c for c in (function.channels if function else []) if not c.endswith("*")]
    return exact[0] if exact else "default"
