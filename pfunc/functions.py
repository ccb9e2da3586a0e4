"""The project's functions and their executors: one Executor per function (or per bare
handler file), kept across reloads of pfunc.toml while the function's file is the same."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pfunc.channels import PRESENCE_SUFFIX, channel_matches
from pfunc.code_frames import code_frame
from pfunc.events import EventKind
from pfunc.executor import Executor
from pfunc.project import FunctionConfig, Project, display_path
from pfunc.pubnub_data import PubNubData
from pfunc.result import Publisher
from pfunc.runtime import Runtime
from pfunc.sandbox.syntax_check import syntax_error


@dataclass(frozen=True)
class SourceProblem:
    """Why a function's file will not serve: it cannot be read, or does not compile."""

    function: str
    text: str  # the warning, as the dev log says it
    unreadable: bool


class FunctionRegistry:
    def __init__(
        self,
        project: Project,
        runtime: Runtime,
        publish: Publisher,
        pubnub_data: PubNubData | None = None,
    ) -> None:
        self.project = project
        self.runtime = runtime
        self.publish = publish  # granted to every executor's pubnub module
        self.pubnub_data = pubnub_data  # and what it may read and change besides
        self._by_name: dict[str, Executor] = {}
        self._by_file: dict[str, Executor] = {}

    def bound_to(self, kind: EventKind, channel: str) -> list[FunctionConfig]:
        """The functions of `kind` whose channels match `channel`, in pfunc.toml order. A
        presence function may name the presence channel (lobby-pnpres) or the channel it
        is about (lobby): presence events are about the latter."""
        suffix = PRESENCE_SUFFIX if kind.trigger == "presence" else ""
        return [
            function
            for function in self.project.functions
            if function.event == kind.name
            and any(
                channel_matches(pattern.removesuffix(suffix) if suffix else pattern, channel)
                for pattern in function.channels
            )
        ]

    def executor(self, function: FunctionConfig) -> Executor:
        if function.name not in self._by_name:
            self._by_name[function.name] = Executor(
                function.file,
                self.runtime,
                display_path=display_path(function.file, self.project),
                name=function.name,
                publish=self.publish,
                pubnub_data=self.pubnub_data,
            )
        return self._by_name[function.name]

    def executor_for_file(self, handler: Path, shown_as: str | None = None) -> Executor:
        """An executor for a handler file that pfunc.toml may not name (pfunc run FILE,
        scenario steps with file = ..., the plugin)."""
        given = str(handler)
        if given in self._by_file:  # as given before: no resolve() (a stat per part) again
            return self._by_file[given]
        key = str(handler.resolve())
        if key not in self._by_file:
            self._by_file[key] = Executor(
                handler,
                self.runtime,
                shown_as or str(handler),
                publish=self.publish,
                pubnub_data=self.pubnub_data,
            )
        self._by_file[given] = self._by_file[key]
        return self._by_file[key]

    def replace_project(self, project: Project) -> None:
        """Serve a reloaded pfunc.toml, keeping the loaded executors of functions whose name
        and file did not change."""
        kept: dict[str, Executor] = {}
        for function in project.functions:
            old = self._by_name.pop(function.name, None)
            if old is not None and old.handler.resolve() == function.file.resolve():
                kept[function.name] = old
        for gone in self._by_name.values():
            gone.close()
        self._by_name = kept
        self.project = project

    def read_sources(self) -> list[SourceProblem]:
        """Read every function's source now (see SandboxPool.read); a warning for each
        function whose file cannot be read, or does not compile (named with a code frame
        now, not at its first event)."""
        warnings: list[SourceProblem] = []
        for function in self.project.functions:
            pool = self.executor(function).pool
            pool.read()
            shown = display_path(function.file, self.project)
            if pool.source is None:
                text = (
                    f'function "{function.name}": {shown} cannot be read (missing, or not '
                    "UTF-8 text); its executions will fail until it can"
                )
                warnings.append(SourceProblem(function.name, text, unreadable=True))
                continue
            problem = syntax_error(pool.source, shown)
            if problem is not None:
                frame = (
                    code_frame(function.file, problem.line, problem.column or 1) or ""
                    if problem.line is not None
                    else ""
                )
                text = (
                    f'function "{function.name}" cannot load: {problem.error_type}: '
                    f"{problem}; its executions will fail until it is fixed"
                    + ("\n      " + frame.replace("\n", "\n      ") if frame else "")
                )
                warnings.append(SourceProblem(function.name, text, unreadable=False))
        return warnings

    def _executors(self) -> list[Executor]:
        """Each executor once (a file's is listed under its path as given and resolved)."""
        every = [*self._by_name.values(), *self._by_file.values()]
        return list({id(executor): executor for executor in every}.values())

    def trim_idle(self) -> None:
        """Close sandboxes left idle after a burst (see SandboxPool.trim)."""
        for executor in self._executors():
            executor.pool.trim()

    def close(self) -> None:
        for executor in self._executors():
            executor.close()
