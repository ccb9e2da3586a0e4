"""From command-line flags to ready work: a Session (project, limits, clock, KV path,
output form) and the plan each command executes on the engine: one handler
(`pfunc run`), or one publish through the project's bus (`pfunc publish`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pfunc.channels import DEFAULT_CHANNEL, name_problem
from pfunc.cli.flags import event_spec_from_flags, parse_json_flag, spell_flag
from pfunc.clock import Clock
from pfunc.errors import PfuncUsageError
from pfunc.events import Event, Keyset, build_event, kinds_triggered_by
from pfunc.limits import Profile, resolve_profile
from pfunc.project import FunctionConfig, Project, relative_to_cwd
from pfunc.project_file import load_project

if TYPE_CHECKING:
    from pfunc.engine import Engine
    from pfunc.result import PublishReport, Result


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
    async def engine(self, *, threaded: bool = False) -> AsyncIterator[Engine]:
        from pfunc.engine import open_engine

        async with open_engine(
            self.project,
            self.profile,
            self.clock,
            kv_path=self.kv_path,
            keyset=self.keyset,
            offline=self.offline,
            environ=os.environ,
            threaded=threaded,
        ) as engine:
            yield engine


def prepare_session(flags: dict[str, Any], start: Path | None = None) -> Session:
    """The session the flags describe, on the project around `start` (default: the
    current folder)."""
    project = load_project(start)
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
    if flags.get("keyset") == "":  # (read as "not given": another keyset's data shown)
        raise PfuncUsageError("--keyset is empty; give a subscribe key, or leave it out")
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
        from pfunc.executor import refused_before_functions

        async with self.session.engine() as engine:
            if self.function is not None:
                executor = engine.functions.executor(self.function)
            else:
                shown_as = str(relative_to_cwd(self.handler))
                executor = engine.functions.executor_for_file(self.handler, shown_as)
            result = await executor.run(self.event)
            result.warnings += refused_before_functions(self.event, engine.runtime.profile)
            if self.function is not None and self.event.kind != self.function.event:
                result.warnings.append(
                    f'pfunc.toml binds "{self.function.name}" to {self.function.event}; '
                    f"--event ran it as {self.event.kind}, which PubNub never sends it"
                )
            return result


def not_a_file(path: Path) -> str:
    """What an existing PATH that is_file() refuses is: a folder, or another thing that is
    not a regular file (/dev/null, a FIFO, a socket), which must not read as a folder."""
    if path.is_dir():
        return "is a folder"
    try:
        mode = path.stat().st_mode
    except OSError:
        return "is not a regular file"
    kinds = (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    )
    kind = next((name for test, name in kinds if test(mode)), None)
    return "is not a regular file" + (f": it is {kind}" if kind else "")


def _resolve_handler(target: str, project: Project) -> tuple[Path, FunctionConfig | None]:
    """The handler file for TARGET (a path or a function name) and its pfunc.toml entry."""
    path = Path(target)
    if path.is_file() and not os.access(path, os.R_OK):
        raise PfuncUsageError(f"{target}: cannot read it (permission denied); check its mode")
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
        raise PfuncUsageError(
            f"{target} {not_a_file(path)}; pass a handler file, e.g. handlers/app.js"
        )
    known = ", ".join(sorted(f.name for f in project.functions)) or (
        "none in pfunc.toml" if project.config_file else "there is no pfunc.toml here or above"
    )
    import difflib  # only on this error: off the run's start-up path

    close = difflib.get_close_matches(target, [f.name for f in project.functions], 1)
    guess = f' Did you mean "{close[0]}"?' if close else ""
    raise PfuncUsageError(
        f"{target}: no such handler file (and no function of that name; functions: {known})."
        f"{guess} Check the path, relative to the current folder."
    )


def prepare_run(target: str, **flags: Any) -> RunPlan:
    session = prepare_session(flags)
    handler, function = _resolve_handler(target, session.project)
    spec = event_spec_from_flags(flags)
    given = set(spec.given())
    # Without --event or a function: HTTP flags mean a request, presence flags a presence
    # event, anything else a publish.
    trigger = (
        "request"
        if given & {"method", "path", "query", "headers", "body"}
        else "presence"
        if given & {"action", "uuid", "occupancy", "state"}
        else "publish"
    )
    kind = (
        flags.get("event_kind")
        or (function.event if function else None)
        or kinds_triggered_by(trigger)[0].name
    )
    event = build_event(
        kind,
        spec,
        default_channel=function.default_channel if function else DEFAULT_CHANNEL,
        now_ms=session.clock.now_ms(),
        spell=spell_flag,
        can_choose_kind=True,
    )
    if function is not None:
        function.place_request(event, session.keyset.subscribe_key)
    return RunPlan(session, handler, function, event)


# --- pfunc publish / signal / fire -------------------------------------------------------


@dataclass
class PublishPlan:
    session: Session
    verb: str
    channel: str
    message: Any
    meta: dict[str, Any] | None

    async def execute(self) -> PublishReport:
        async with self.session.engine() as engine:
            return await engine.publish(
                self.channel, self.message, verb=self.verb, hop=1, meta=self.meta
            )


def prepare_publish(verb: str, channel: str, message: str, **flags: Any) -> PublishPlan:
    session = prepare_session(flags)
    problem = name_problem(channel)
    if problem:
        raise PfuncUsageError(f"channel {channel!r}: {problem}")
    meta = (  # none given: none stored, as for an SDK's publish without meta
        parse_json_flag("--meta", flags["meta_json"], want_object=True)
        if flags.get("meta_json") is not None
        else None
    )
    return PublishPlan(session, verb, channel, parse_json_flag("MESSAGE", message), meta)


# --- pfunc send-file ------------------------------------------------------------------


@dataclass
class SendFilePlan:
    session: Session
    channel: str
    name: str
    data: bytes
    message: Any
    meta: dict[str, Any] | None

    async def execute(self) -> PublishReport:
        """What an SDK's sendFile does: keep the file, then publish its file message
        through the project's before-publish-file and after-publish-file functions."""
        import mimetypes

        async with self.session.engine() as engine:
            assert engine.files is not None
            shared = await engine.files.add(
                self.channel, self.name, self.data, mimetypes.guess_type(self.name)[0]
            )
            return await engine.files.publish_file(
                self.channel, self.message, shared.id, shared.name, meta=self.meta or None
            )


def prepare_send_file(channel: str, path: Path, **flags: Any) -> SendFilePlan:
    from pfunc.files import MAX_FILE_BYTES, name_problem_of_file

    session = prepare_session(flags)
    problem = name_problem(channel)
    if problem:
        raise PfuncUsageError(f"channel {channel!r}: {problem}")
    if not path.is_file():
        if path.exists() and not path.is_dir():  # /dev/null, a FIFO: no folder, say what
            raise PfuncUsageError(f"{path} {not_a_file(path)}")
        raise PfuncUsageError(
            f"{path}: no such file" + (" (it is a folder)" if path.exists() else "")
        )
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise PfuncUsageError(
            f"{path} is {size:,} bytes; PubNub's limit on a file is {MAX_FILE_BYTES:,} bytes"
        )
    problem = name_problem_of_file(path.name)
    if problem:
        raise PfuncUsageError(f"{path}: {problem}")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PfuncUsageError(f"cannot read {path}: {error.strerror or error}") from None
    message = (
        parse_json_flag("--message", flags["message"]) if flags.get("message") is not None else None
    )
    meta = (  # none given: none stored, as for an SDK's publish without meta
        parse_json_flag("--meta", flags["meta_json"], want_object=True)
        if flags.get("meta_json") is not None
        else None
    )
    return SendFilePlan(session, channel, path.name, data, message, meta)
