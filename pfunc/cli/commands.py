"""The `pfunc` command line: click commands only (parse flags, call, render).

Heavy modules (aiohttp, the report writers) are imported inside the commands that need them, so
that `pfunc run --json` starts quickly.

Exit codes: 0 the handler completed (ok, abort or response); 1 the execution failed
(error outcome anywhere in the run, or --expect did not match); 2 a usage error (bad
flag, malformed JSON, missing file, unusable KV path, invalid pfunc.toml).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any, ClassVar

import click

from pfunc import __version__
from pfunc.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    NegativeNumbersAsValues,
    PfuncGroup,
    ctrl_c_exits_130,
    execute,
    session_options,
    stop_at_once_on_ctrl_c,
    to_reader,
    usage_failure,
)
from pfunc.errors import PfuncUsageError
from pfunc.events import KIND_NAMES, PRESENCE_ACTIONS
from pfunc.result import OUTCOMES


class LazyGroup(PfuncGroup):
    """Commands defined in other modules load when named (or listed in --help), so that
    `pfunc run` does not build the click commands of `pfunc kv` at every start."""

    LAZY: ClassVar[dict[str, tuple[str, str]]] = {
        "kv": ("pfunc.cli.kv_commands", "kv"),
        "history": ("pfunc.cli.kv_commands", "history"),
    }

    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """As click's, but a usage error (a bad flag, a missing argument) is one line, as
        every other usage error of pfunc's, not click's four: `Error: ...`, exit 2."""
        try:
            return super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.exceptions.NoArgsIsHelpError as error:  # `pfunc` alone: the help
            error.show()
            sys.exit(error.exit_code)
        except click.UsageError as error:
            where = error.ctx.command_path if error.ctx is not None else "pfunc"
            click.echo(f"Error: {error.format_message()} (see {where} --help)", err=True)
            sys.exit(error.exit_code)
        except click.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.LAZY:
            import importlib

            module, attribute = self.LAZY[name]
            command: click.Command = getattr(importlib.import_module(module), attribute)
            return command
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pfunc")
def main() -> None:
    """Run PubNub Functions locally, with the limits production applies."""
    # A lone surrogate (a handler's string, an argument that was not UTF-8) cannot be
    # encoded; written as a \\u escape it stays valid JSON and readable text.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


@main.command()
@click.argument("target")
@click.option(
    "--event",
    "event_kind",
    type=click.Choice(KIND_NAMES),
    help="Event kind (default: the function's, else before-publish; on-request when "
    "an HTTP flag is given).",
)
@click.option("--message", help="Message JSON; @file reads a file, - reads stdin.")
@click.option("--channel", help="Channel (default: the function's first, else default).")
@click.option("--params", "params_json", help="Publish query parameters as a JSON object.")
@click.option("--meta", "meta_json", help="Request meta (clientip, origin, useragent) as JSON.")
@click.option("--method", help="HTTP method for on-request (default GET, POST with --body).")
@click.option("--path", "http_path", help="Request path after the function's URL prefix.")
@click.option("--query", multiple=True, help="Query parameter name=value (repeatable).")
@click.option("--header", multiple=True, help="Header 'Name: value' (repeatable).")
@click.option("--body", help="Request body; @file reads a file, - reads stdin.")
@click.option(
    "--action",
    type=click.Choice(PRESENCE_ACTIONS),
    help="after-presence: the presence action (default join).",
)
@click.option("--uuid", help="after-presence: the user's UUID (default pfunc-user).")
@click.option(
    "--occupancy",
    type=click.IntRange(min=0),
    help="after-presence: users on the channel (default 1).",
)
@click.option("--state", "state_json", help="after-presence: the user's state as JSON.")
@session_options
@click.option("--expect", type=click.Choice(OUTCOMES), help="Exit 1 unless the outcome is this.")
def run(target: str, **options: Any) -> None:
    """Run TARGET (a handler file, or a function named in pfunc.toml) once."""
    from pfunc.cli.session import prepare_run

    result = execute(lambda: prepare_run(target, **options), "render_result")
    expect = options.get("expect")
    chain_failed = any(report.failed for report in result.triggered)
    if expect is not None:  # the outcome asked for, an expected error too; and no chain error
        if result.outcome != expect:
            click.echo(f"expected outcome {expect}, got {result.outcome}", err=True)
        elif chain_failed:
            click.echo(
                f"outcome {expect} as expected, but an execution it triggered ended in error",
                err=True,
            )
        sys.exit(EXIT_OK if result.outcome == expect and not chain_failed else EXIT_FAILED)
    sys.exit(EXIT_FAILED if result.outcome == "error" or chain_failed else EXIT_OK)


def _publish_command(verb: str, summary: str) -> None:
    # A negative number is a message, not an option (`pfunc publish chat -1`).
    @main.command(name=verb, help=summary, cls=NegativeNumbersAsValues)
    @click.argument("channel")
    @click.argument("message")
    @click.option("--meta", "meta_json", help="Message meta as a JSON object.")
    @session_options
    def command(channel: str, message: str, **options: Any) -> None:
        from pfunc.cli.session import prepare_publish

        report = execute(
            lambda: prepare_publish(verb, channel, message, **options), "render_publish"
        )
        sys.exit(EXIT_FAILED if report.failed or report.dropped else EXIT_OK)


_publish_command(
    "publish",
    "Publish MESSAGE (JSON; @file or -) to CHANNEL through the project's functions: "
    "before-publish functions in order, delivery, then after-publish functions.",
)
_publish_command(
    "fire",
    "Fire MESSAGE to CHANNEL: like publish, through the functions, but never delivered to "
    "subscribers.",
)
_publish_command(
    "signal",
    "Send MESSAGE as a signal on CHANNEL through before-signal and after-signal functions.",
)


@main.command(name="send-file")
@click.argument("channel")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--message", help="The text sent with the file, as JSON; @file or - reads it.")
@click.option("--meta", "meta_json", help="Message meta as a JSON object.")
@session_options
def send_file(channel: str, path: Path, **options: Any) -> None:
    """Share the file at PATH on CHANNEL as an SDK's sendFile does: keep it (5 MB at most),
    then publish its file message through before-publish-file functions, delivery, and
    after-publish-file functions."""
    from pfunc.cli.session import prepare_send_file

    report = execute(lambda: prepare_send_file(channel, path, **options), "render_publish")
    sys.exit(EXIT_FAILED if report.failed or report.dropped else EXIT_OK)


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback is reachable by others.",
)
@click.option(
    "--port",
    default=8787,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0 picks a free one).",
)
@click.option("--no-intervals", is_flag=True, help="Do not run on-interval functions.")
@click.option(
    "--subscribe-timeout",
    type=click.FloatRange(min=0.1),
    help="Seconds a subscribe long-poll waits for messages (default 280).",
)
@click.option(
    "--record",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save every execution a client causes as a scenario in FILE (a *.test.toml).",
)
@session_options(json_help="Print NDJSON on stdout: one JSON object per server event.")
def dev(
    host: str,
    port: int,
    no_intervals: bool,
    subscribe_timeout: float | None,
    record: Path | None,
    **options: Any,
) -> None:
    """Serve the project and its web console: on-request URLs, a PubNub REST subset, hot
    reload, intervals."""
    # Ctrl-C while it loads (once it serves, serve's own handlers take it over).
    with ctrl_c_exits_130():
        import asyncio

        from pfunc.cli.session import prepare_session
        from pfunc.server.log import DevLog
        from pfunc.server.serve import serve

        try:
            if not host.strip():  # it would listen everywhere, and print unusable addresses
                raise PfuncUsageError(
                    "--host is empty; give an address: 127.0.0.1 (this machine only) or "
                    "0.0.0.0 (every interface)"
                )
            session = prepare_session(options)
            if session.project.config_file is None:
                raise PfuncUsageError(
                    "no pfunc.toml here or above; pfunc dev serves a project. Create one with "
                    "pfunc init, or cd into a project"
                )
            if record is not None and not record.name.endswith(".test.toml"):
                raise PfuncUsageError(
                    f"--record {record}: name a scenario file ending in .test.toml, so that "
                    "pfunc test finds it (e.g. --record tests/recorded.test.toml)"
                )
            root = session.project.root.resolve()
            if record is not None and not record.resolve().is_relative_to(root):
                # Its scenarios name the project's functions, found from the file's folder up.
                raise PfuncUsageError(
                    f"--record {record}: the file must be inside the project ({root}), whose "
                    "functions its scenarios name (e.g. --record tests/recorded.test.toml)"
                )
            asyncio.run(
                serve(
                    session,
                    host,
                    port,
                    intervals=not no_intervals,
                    log=DevLog(session.as_json),
                    subscribe_timeout=subscribe_timeout,
                    record=record.resolve() if record else None,
                )
            )
        except PfuncUsageError as error:
            usage_failure(str(error))


@main.command()
@click.argument("folder", type=click.Path(path_type=Path), default=".")
def init(folder: Path) -> None:
    """Create a working project in FOLDER (default: here): pfunc.toml, two handlers, tests."""
    from pfunc.scaffold import KEPT_IF_THERE, scaffold

    try:
        written = scaffold(folder)
    except PfuncUsageError as error:
        usage_failure(str(error))
    for path in written:
        click.echo(f"created {path}")
    for name in KEPT_IF_THERE:  # the folder's own, left as they were
        if folder / name not in written:
            hint = " (add .pfunc/ to it: pfunc's local state)" if name == ".gitignore" else ""
            click.echo(f"kept your {folder / name}{hint}")
    where = "" if folder == Path(".") else f"cd {shlex.quote(str(folder))} && "  # pasteable
    click.echo(f"\nNext: {where}pfunc dev   (and pfunc test to run the scenarios)")


@main.command(name="test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("-k", "pattern", help="Only scenarios whose name or file contains this text.")
@click.option("-x", "first_failure", is_flag=True, help="Stop at the first failing scenario.")
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write JUnit XML here (for CI systems).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@click.option(
    "-n",
    "workers",
    help="Run across N processes (or auto) through pytest-xdist, as `pytest -n` would.",
)
def test_command(
    paths: tuple[Path, ...],
    pattern: str | None,
    first_failure: bool,
    junit_path: Path | None,
    as_json: bool,
    workers: str | None,
) -> None:
    """Run scenario files (*.test.toml): PATHS, or the project's tests/ and examples/."""
    from pfunc.aio import run_on_new_loop
    from pfunc.project_file import load_project
    from pfunc.testing import report
    from pfunc.testing.runner import run_scenario
    from pfunc.testing.scenario import discover, load_scenarios, nothing_to_run, selected

    stop_at_once_on_ctrl_c()
    try:
        if paths:
            missing = [str(p) for p in paths if not p.exists()]
            if missing:
                raise PfuncUsageError(f"no such file or folder: {', '.join(missing)}")
            roots = list(paths)
        else:
            root = load_project().root
            roots = [folder for folder in (root / "tests", root / "examples") if folder.is_dir()]
            if not roots:  # say where it looked: *.test.toml beside pfunc.toml are not run
                raise PfuncUsageError(
                    f"no scenarios found: pfunc test looks in {root / 'tests'} and "
                    f"{root / 'examples'}, and neither is there; name the files or folders "
                    "to run (pfunc test .)"
                )
        if workers is not None and workers.strip() != "0":  # -n 0: here, as pytest-xdist's
            from pfunc.cli.parallel import run_with_pytest

            sys.exit(
                run_with_pytest(
                    discover(roots), workers, pattern, first_failure, junit_path, as_json
                )
            )
        found = [s for file in discover(roots) for s in load_scenarios(file)]
        scenarios = [s for s in found if selected(s, pattern)]
        if not scenarios:
            raise nothing_to_run(len(found), pattern)

        async def run_all() -> list[Any]:
            results = []
            for scenario in scenarios:
                results.append(await run_scenario(scenario))
                if first_failure and not results[-1].passed:
                    break
            return results

        results = run_on_new_loop(run_all())
    except PfuncUsageError as error:
        usage_failure(str(error))
    finally:
        from pfunc.sandbox.pool import close_warm

        close_warm()  # the warm contexts and Python workers the scenarios shared
    with to_reader():
        if as_json:
            click.echo(report.dump_json(results))
        else:
            report.render(results)
    if junit_path is not None:  # after the results: a path that cannot be written hides none
        try:
            report.write_junit(results, junit_path)
        except OSError as error:
            usage_failure(f"--junit {junit_path}: cannot write it: {error.strerror or error}")
    malformed = [r for r in results if r.malformed]
    if malformed:
        marked = '"malformed": true in the JSON' if as_json else "marked malformed above"
        usage_failure(
            f"{len(malformed)} scenario(s) have a step that cannot run as written "
            f"({marked}); fix the step"
        )
    sys.exit(EXIT_OK if all(r.passed for r in results) else EXIT_FAILED)
