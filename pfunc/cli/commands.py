"""The `pfunc` command line: click commands only (parse flags, call, render).

Heavy modules (rich, aiohttp) are imported inside the commands that need them, so
that `pfunc run --json` starts quickly.

Exit codes: 0 the handler completed (ok, abort or response); 1 the execution failed
(error outcome anywhere in the run, or --expect did not match); 2 a usage error (bad
flag, malformed JSON, missing file, unusable KV path, invalid pfunc.toml).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from pfunc import __version__
from pfunc.errors import PfuncUsageError
from pfunc.events import KIND_NAMES, PRESENCE_ACTIONS
from pfunc.limits import PROFILES
from pfunc.result import OUTCOMES

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _usage_failure(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _execute(prepare: Callable[[], Any], renderer: str) -> Any:
    """Prepare and execute a plan, then print its JSON or its report (rich, imported late).

    Usage errors raised while preparing or opening the store exit with code 2.
    """
    import asyncio

    try:
        plan = prepare()
        outcome = asyncio.run(plan.execute())
    except PfuncUsageError as error:
        _usage_failure(str(error))
    if plan.session.as_json:
        import json

        click.echo(json.dumps(outcome.to_json(), ensure_ascii=False))
    else:
        from pfunc import render

        getattr(render, renderer)(outcome)
    return outcome


def _store_options(limits_help: str) -> list[Callable[..., Any]]:
    """The flags that choose the project's store: its file, keyset and limits profile."""
    return [
        click.option(
            "--kv",
            "kv_path",
            type=click.Path(path_type=Path),
            help="KV store file (default .pfunc/kv.sqlite3 under the project root).",
        ),
        click.option("--keyset", help="Subscribe key that scopes the KV store."),
        click.option(
            "--limits", "limits_name", type=click.Choice(list(PROFILES)), help=limits_help
        ),
    ]


def _with(options: list[Callable[..., Any]], command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(options):
        command = option(command)
    return command


def session_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The flags every executing command shares: store, keyset, limits, clock, output."""
    return _with(
        [
            *_store_options("Limits profile (default: pfunc.toml's, else classic)."),
            click.option(
                "--timeout",
                type=click.FloatRange(min=0.001),
                help="Wall-time limit per execution, in seconds.",
            ),
            click.option(
                "--now",
                "now_text",
                help="Fix the execution clock, ISO-8601, e.g. 2026-01-01T12:00:00Z.",
            ),
            click.option(
                "--offline",
                is_flag=True,
                help="Refuse xhr requests that no [[mocks]] entry answers.",
            ),
            click.option(
                "--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout."
            ),
        ],
        command,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pfunc")
def main() -> None:
    """Run PubNub Functions locally, with the limits production applies."""


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

    result = _execute(lambda: prepare_run(target, **options), "render_result")
    expect = options.get("expect")
    if expect is not None and result.outcome != expect:
        click.echo(f"expected outcome {expect}, got {result.outcome}", err=True)
        sys.exit(EXIT_FAILED)
    failed = result.outcome == "error" or any(report.failed for report in result.triggered)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


def _publish_command(verb: str, summary: str) -> None:
    @main.command(name=verb, help=summary)
    @click.argument("channel")
    @click.argument("message")
    @click.option("--meta", "meta_json", help="Message meta as a JSON object.")
    @session_options
    def command(channel: str, message: str, **options: Any) -> None:
        from pfunc.cli.session import prepare_publish

        report = _execute(
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
@session_options
def dev(
    host: str, port: int, no_intervals: bool, subscribe_timeout: float | None, **options: Any
) -> None:
    """Serve the project: on-request URLs, a PubNub REST subset, hot reload, intervals."""
    import asyncio

    from pfunc.cli.session import prepare_session
    from pfunc.server.log import DevLog
    from pfunc.server.serve import serve

    try:
        session = prepare_session(options)
        if session.project.config_file is None:
            raise PfuncUsageError(
                "no pfunc.toml here or above; pfunc dev serves a project. Create one with "
                "pfunc init, or cd into a project"
            )
        asyncio.run(
            serve(
                session,
                host,
                port,
                intervals=not no_intervals,
                log=DevLog(session.as_json),
                subscribe_timeout=subscribe_timeout,
            )
        )
    except PfuncUsageError as error:
        _usage_failure(str(error))


# --- pfunc kv ---------------------------------------------------------------------------


def kv_options(command: Callable[..., Any]) -> Callable[..., Any]:
    return _with(
        [
            *_store_options("Limits profile for key and value checks."),
            click.option("--now", "now_text", help="Clock for TTLs and expiry, ISO-8601."),
            click.option("--json", "as_json", is_flag=True, help="Print JSON."),
        ],
        command,
    )


def _kv(
    options: dict[str, Any], action: Callable[[Any], Any], show: Callable[[Any], None] | None = None
) -> Any:
    """Run one KV tool action on the project's store, then print its result."""
    import asyncio

    from pfunc.cli.kvtool import KVTool
    from pfunc.cli.session import prepare_session

    async def go(session: Any) -> Any:
        async with session.engine() as engine:
            tool = KVTool(engine.runtime)
            outcome = await action(tool)
            for warning in tool.warnings:
                click.echo(f"warning: {warning}", err=True)
            return outcome

    try:
        session = prepare_session(options)
        outcome = asyncio.run(go(session))
    except PfuncUsageError as error:
        _usage_failure(str(error))
    if session.as_json:
        import json

        click.echo(json.dumps(outcome, ensure_ascii=False))
    elif show is not None:
        show(outcome)
    return outcome


@main.group()
def kv() -> None:
    """Read and change the project's KV store (safe while pfunc dev runs)."""


@kv.command(name="list")
@click.option("--prefix", default="", help="Only keys that start with this.")
@kv_options
def kv_list(prefix: str, **options: Any) -> None:
    """List live items with their values and expiry."""
    import json

    def show(items: list[dict[str, Any]]) -> None:
        for item in items:
            value = json.dumps(item["value"], ensure_ascii=False)
            value = value if len(value) <= 60 else value[:57] + "..."
            click.echo(f"{item['key']}  {value}  (expires {item['expires_at']})")
        click.echo(f"{len(items)} item(s)", err=True)

    _kv(options, lambda tool: tool.list_items(prefix), show)


@kv.command(name="get")
@click.argument("key")
@kv_options
def kv_get(key: str, **options: Any) -> None:
    """Print the item under KEY as JSON (exit 1 when there is none)."""
    import json

    def show(value: Any) -> None:
        if value is not None:
            click.echo(json.dumps(value, indent=2, ensure_ascii=False))

    value = _kv(options, lambda tool: tool.get(key), show)
    if value is None:
        click.echo(f"no live item under {key!r}", err=True)
        sys.exit(EXIT_FAILED)


@kv.command(name="set")
@click.argument("key")
@click.argument("value")
@click.option("--ttl", type=float, help="Minutes to live (default 1,440; clamped 1..525,600).")
@kv_options
def kv_set(key: str, value: str, ttl: float | None, **options: Any) -> None:
    """Store VALUE (JSON) under KEY, checked like kvstore.set."""
    _kv(options, lambda tool: tool.set(key, value, ttl), lambda _: click.echo(f"set {key}"))


@kv.command(name="rm")
@click.argument("key")
@kv_options
def kv_rm(key: str, **options: Any) -> None:
    """Remove the item and the counter under KEY."""
    _kv(options, lambda tool: tool.remove(key), lambda _: click.echo(f"removed {key}"))


@kv.command(name="counters")
@click.option("--prefix", default="", help="Only keys that start with this.")
@kv_options
def kv_counters(prefix: str, **options: Any) -> None:
    """List counters and their values."""

    def show(counters: list[dict[str, Any]]) -> None:
        for counter in counters:
            click.echo(f"{counter['key']}  {counter['value']}")
        click.echo(f"{len(counters)} counter(s)", err=True)

    _kv(options, lambda tool: tool.list_counters(prefix), show)


@kv.command(name="incr")
@click.argument("key")
@click.argument("amount", type=int, default=1)
@kv_options
def kv_incr(key: str, amount: int, **options: Any) -> None:
    """Add AMOUNT (default 1, may be negative) to the counter KEY; print the new value."""
    _kv(options, lambda tool: tool.incr(key, amount), lambda value: click.echo(str(value)))


@kv.command(name="export")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@kv_options
def kv_export(file: Path, **options: Any) -> None:
    """Write every live item and counter of the keyset to FILE (JSON)."""
    _kv(
        options,
        lambda tool: tool.export(file),
        lambda n: click.echo(f"exported {n['items']} item(s), {n['counters']} counter(s)"),
    )


@kv.command(name="import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@kv_options
def kv_import(file: Path, **options: Any) -> None:
    """Load a FILE written by pfunc kv export (items keep their expiry)."""
    _kv(
        options,
        lambda tool: tool.import_(file),
        lambda n: click.echo(f"imported {n['items']} item(s), {n['counters']} counter(s)"),
    )


@kv.command(name="clear")
@click.option("--yes", is_flag=True, help="Confirm: delete every item and counter.")
@kv_options
def kv_clear(yes: bool, **options: Any) -> None:
    """Delete every item and counter of the keyset (needs --yes)."""
    if not yes:
        _usage_failure(
            "pfunc kv clear deletes every item and counter of the keyset; run it again with --yes"
        )
    _kv(options, lambda tool: tool.clear(), lambda _: click.echo("cleared"))


@main.command()
@click.argument("folder", type=click.Path(path_type=Path), default=".")
def init(folder: Path) -> None:
    """Create a working project in FOLDER (default: here): pfunc.toml, two handlers, tests."""
    from pfunc.scaffold import scaffold

    try:
        written = scaffold(folder)
    except PfuncUsageError as error:
        _usage_failure(str(error))
    for path in written:
        click.echo(f"created {path}")
    where = "" if folder == Path(".") else f"cd {folder} && "
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
def test_command(
    paths: tuple[Path, ...],
    pattern: str | None,
    first_failure: bool,
    junit_path: Path | None,
    as_json: bool,
) -> None:
    """Run scenario files (*.test.toml): PATHS, or the project's tests/ and examples/."""
    import asyncio

    from pfunc.project import load_project
    from pfunc.testing import report
    from pfunc.testing.runner import run_scenario
    from pfunc.testing.scenario import discover, load_scenarios

    try:
        if paths:
            missing = [str(p) for p in paths if not p.exists()]
            if missing:
                raise PfuncUsageError(f"no such file or folder: {', '.join(missing)}")
            roots = list(paths)
        else:
            root = load_project().root
            roots = [folder for folder in (root / "tests", root / "examples") if folder.is_dir()]
        scenarios = [s for file in discover(roots) for s in load_scenarios(file)]
        if pattern:
            scenarios = [s for s in scenarios if pattern in s.name or pattern in str(s.path)]
        if not scenarios:
            raise PfuncUsageError("no scenarios found (files named *.test.toml)")

        async def run_all() -> list[Any]:
            results = []
            for scenario in scenarios:
                results.append(await run_scenario(scenario))
                if first_failure and not results[-1].passed:
                    break
            return results

        results = asyncio.run(run_all())
    except PfuncUsageError as error:
        _usage_failure(str(error))
    if junit_path is not None:
        report.write_junit(results, junit_path)
    if as_json:
        click.echo(report.dump_json(results))
    else:
        report.render(results)
    sys.exit(EXIT_OK if all(r.passed for r in results) else EXIT_FAILED)
