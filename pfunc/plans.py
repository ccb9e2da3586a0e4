"""From command-line flags to ready work: the project, limits, clock, store and event.

`pfunc run` and `pfunc publish` share a Session (project, profile, clock, keyset, KV
path, offline) and differ in what they execute: one handler, or one publish through
the project's bus.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pfunc.clock import Clock
from pfunc.errors import PfuncUsageError
from pfunc.events import (
    INTERVAL_KIND,
    MESSAGE_KINDS,
    PRESENCE_ACTIONS,
    REQUEST_KIND,
    VERB_OF_KIND,
    Event,
    IntervalEvent,
    Keyset,
    MessageEvent,
    RequestEvent,
    parse_header_flags,
    parse_json_flag,
    parse_query_flags,
    presence_message,
    read_text_flag,
)
from pfunc.limits import Profile, resolve_profile
from pfunc.project import FunctionConfig, Project, load_project, relative_to_cwd

if TYPE_CHECKING:
    from pfunc.bus import PublishReport
    from pfunc.executor import Runtime
    from pfunc.result import Result

_HTTP_FLAGS = ("method", "http_path", "query", "header", "body")
_MESSAGE_FLAGS = ("message", "params_json", "meta_json")
_PRESENCE_FLAGS = ("action", "uuid", "occupancy", "state_json")


@dataclass
class Session:
    project: Project
    profile: Profile
    clock: Clock
    keyset: Keyset
    kv_path: Path
    offline: bool
    as_json: bool

    @asynccontextmanager
    async def runtime(self) -> AsyncIterator[Runtime]:
        from pfunc.executor import open_runtime
        from pfunc.store import StoreOpenError

        try:
            opened = open_runtime(
                self.kv_path,
                self.profile,
                self.clock,
                self.keyset,
                project=self.project,
                offline=self.offline,
                environ=os.environ,
            )
            runtime = await opened.__aenter__()
        except StoreOpenError as error:
            raise PfuncUsageError(str(error)) from None
        try:
            yield runtime
        finally:
            await opened.__aexit__(None, None, None)


def prepare_session(flags: dict[str, Any]) -> Session:
    project = load_project()
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
    return Session(
        project=project,
        profile=profile,
        clock=clock,
        keyset=keyset,
        kv_path=Path(flags.get("kv_path") or project.kv_path),
        offline=bool(flags.get("offline")),
        as_json=bool(flags.get("as_json")),
    )


# --- pfunc run ---------------------------------------------------------------------


@dataclass
class RunPlan:
    session: Session
    handler: Path
    function: FunctionConfig | None
    event: Event

    async def execute(self) -> Result:
        from pfunc.executor import Executor

        async with self.session.runtime() as runtime:
            if self.function is not None and runtime.bus is not None:
                executor = runtime.bus.executor(self.function)
            else:
                executor = Executor(self.handler, runtime, str(relative_to_cwd(self.handler)))
            return await executor.run(self.event)


def _resolve_handler(target: str, project: Project) -> tuple[Path, FunctionConfig | None]:
    """The handler file for TARGET (a path or a function name) and its pfunc.toml entry."""
    path = Path(target)
    if path.is_file():
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
    session = prepare_session(flags)
    handler, function = _resolve_handler(target, session.project)
    event = _build_event(flags, function, session.clock)
    return RunPlan(session, handler, function, event)


def _given(flags: dict[str, Any], name: str) -> bool:
    value = flags.get(name)
    return value is not None and value != ()


def _flag_names(names: list[str]) -> str:
    return ", ".join("--" + n.removeprefix("http_").removesuffix("_json") for n in names)


def _refuse_flags(flags: dict[str, Any], names: tuple[str, ...], kind: str, hint: str) -> None:
    given = [name for name in names if _given(flags, name)]
    if given:
        raise PfuncUsageError(f"{_flag_names(given)} do not apply to {kind} events; {hint}")


def _build_event(flags: dict[str, Any], function: FunctionConfig | None, clock: Clock) -> Event:
    http_given = any(_given(flags, name) for name in _HTTP_FLAGS)
    presence_given = any(_given(flags, name) for name in _PRESENCE_FLAGS)
    kind = (
        flags.get("event_kind")
        or (function.event if function else None)
        or (
            REQUEST_KIND if http_given else "after-presence" if presence_given else "before-publish"
        )
    )
    if kind == REQUEST_KIND:
        _refuse_flags(
            flags,
            _MESSAGE_FLAGS + _PRESENCE_FLAGS,
            kind,
            "send data with --body, --query or --header",
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
    _refuse_flags(flags, _HTTP_FLAGS, kind, "drop them or use --event on-request")
    if kind == INTERVAL_KIND:
        _refuse_flags(
            flags, _MESSAGE_FLAGS + _PRESENCE_FLAGS, kind, "an interval handler receives no message"
        )
        return IntervalEvent()
    if kind != "after-presence":
        _refuse_flags(flags, _PRESENCE_FLAGS, kind, "use --event after-presence")
    assert kind in MESSAGE_KINDS
    if kind == "after-presence" and not _given(flags, "message"):
        message: Any = _presence_from_flags(flags, clock)
    else:
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
        channel=flags.get("channel") or (function.default_channel if function else "default"),
        params=params,
        meta=meta,
        verb=VERB_OF_KIND.get(kind, "publish"),
    )


def _presence_from_flags(flags: dict[str, Any], clock: Clock) -> dict[str, Any]:
    action = flags.get("action") or "join"
    if action not in PRESENCE_ACTIONS:
        raise PfuncUsageError(f"--action {action!r}: use one of {', '.join(PRESENCE_ACTIONS)}")
    state = (
        parse_json_flag("--state", flags["state_json"], want_object=True)
        if _given(flags, "state_json")
        else None
    )
    occupancy = flags.get("occupancy")
    return presence_message(
        action,
        flags.get("uuid") or "pfunc-user",
        1 if occupancy is None else occupancy,
        clock.now_ms() // 1000,
        state,
    )


# --- pfunc publish / signal / fire -------------------------------------------------------


@dataclass
class PublishPlan:
    session: Session
    verb: str
    channel: str
    message: Any
    meta: dict[str, Any]

    async def execute(self) -> PublishReport:
        async with self.session.runtime() as runtime:
            assert runtime.bus is not None
            return await runtime.bus.publish(
                self.channel, self.message, verb=self.verb, hop=1, meta=self.meta
            )


def prepare_publish(verb: str, channel: str, message: str, **flags: Any) -> PublishPlan:
    from pfunc.project import channel_problem

    session = prepare_session(flags)
    problem = channel_problem(channel)
    if problem or "*" in channel:
        raise PfuncUsageError(
            f"channel {channel!r}: {problem or 'publish to a channel name, not a wildcard'}"
        )
    meta = (
        parse_json_flag("--meta", flags["meta_json"], want_object=True)
        if _given(flags, "meta_json")
        else {}
    )
    return PublishPlan(session, verb, channel, parse_json_flag("MESSAGE", message), meta)
