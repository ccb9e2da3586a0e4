"""`pfunc kv`: read and change the project's KV store from the command line."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from pfunc.cli.options import (
    EXIT_FAILED,
    NegativeNumbersAsValues,
    PfuncCommand,
    PfuncGroup,
    ctrl_c_exits_130,
    store_options,
    to_reader,
    usage_failure,
    with_options,
)
from pfunc.errors import PfuncUsageError
from pfunc.result import shortened
from pfunc.terminal import one_line


def kv_options(command: Callable[..., Any]) -> Callable[..., Any]:
    return with_options(
        [
            *store_options("Limits profile for key and value checks."),
            click.option("--now", "now_text", help="Clock for TTLs and expiry, ISO-8601."),
            click.option("--json", "as_json", is_flag=True, help="Print JSON."),
        ],
        command,
    )


@contextlib.contextmanager
def store_failures() -> Iterator[None]:
    """What can go wrong opening or using the store, as one line and an exit code: 2 for
    the user's mistakes, 1 for the file or the disk."""
    import sqlite3

    from pfunc.cli.kvtool import StoreWriteError
    from pfunc.store import StoreCorruptError

    try:
        yield
    except PfuncUsageError as error:
        usage_failure(str(error))
    except (StoreWriteError, StoreCorruptError) as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(EXIT_FAILED)
    except sqlite3.Error as error:  # a full disk, a read-only file, damage found on use
        if "locked" in str(error):  # another program held its write lock past the wait
            click.echo(
                "Error: the store stayed locked by another program's write for the whole "
                "wait; nothing was changed: run the command again once it is done",
                err=True,
            )
        else:
            click.echo(f"Error: the store refused: {error}", err=True)
        sys.exit(EXIT_FAILED)


def _kv(
    options: dict[str, Any],
    action: Callable[[Any], Any],
    show: Callable[[Any], None] | None = None,
    json_of: Callable[[Any], Any] | None = None,
    reads: bool = False,
) -> Any:
    """Run one KV tool action on the project's store, then print its result: with
    --json, as JSON (of `json_of(result)` when given), else by `show`. An action that
    only `reads` finds a store not yet made empty, and leaves no file behind."""
    import asyncio

    from pfunc.cli.kvtool import KVTool
    from pfunc.cli.session import prepare_session

    async def go(session: Any) -> Any:
        async with session.engine() as engine:
            engine.runtime.store.check()  # a damaged file is said, not half-listed
            tool = KVTool(engine.runtime)
            outcome = await action(tool)
            for warning in tool.warnings:
                click.echo(f"warning: {warning}", err=True)
            return outcome

    with ctrl_c_exits_130(), store_failures():
        session = prepare_session(options)
        path = session.kv_path
        if reads:
            session = _reading(session)
        # Not asyncio.run: its Ctrl-C cancels the task at its next await, after a long
        # import's one transaction has committed, and "Aborted!" then followed a complete
        # write. Here Ctrl-C interrupts the statements themselves and the transaction
        # rolls back: nothing written.
        loop = asyncio.new_event_loop()
        try:
            outcome = loop.run_until_complete(go(session))
        finally:
            loop.close()
        if session.kv_path != path:  # (said once it answered: a refused one says only why)
            click.echo(f"(no store at {path} yet: nothing stored)", err=True)
    with ctrl_c_exits_130(), to_reader():
        if session.as_json:
            from pfunc import jsonio

            shown = outcome if json_of is None else json_of(outcome)
            click.echo(jsonio.shown(shown))
        elif show is not None:
            show(outcome)
    return outcome


def _reading(session: Any) -> Any:
    """The session as a command that only reads needs it: a store not yet made is read as
    an empty one in memory, so that reading it makes no file."""
    if session.kv_path.exists():
        return session
    import dataclasses

    return dataclasses.replace(session, kv_path=Path(":memory:"))


@click.group(cls=PfuncGroup)
def kv() -> None:
    """Read and change the project's KV store (safe while pfunc dev runs)."""


PAGE = 1000  # keys per page of `kv list` and `kv counters`
MAX_PAGE = 1_000_000

page_options = [
    click.option("--prefix", default="", help="Only keys that start with this."),
    click.option("--after", default=None, help="Start after this key (the next page)."),
    click.option(
        "--limit",
        type=click.IntRange(1, MAX_PAGE),
        default=PAGE,
        show_default=True,
        help="Keys per page.",
    ),
]


def paged(command: Any) -> Any:
    for option in reversed(page_options):
        command = option(command)
    return command


def _page_end(shown: list[dict[str, Any]], limit: int, what: str) -> None:
    """The count, and how to ask for the next page when there is one (quoted for a
    POSIX shell, so that it can be pasted as it is)."""
    from pfunc.terminal import shell_word

    more = len(shown) > limit
    with to_reader():
        click.echo(f"{min(len(shown), limit)} {what}(s)", err=True)
        if more:
            click.echo(f"more: add --after {shell_word(shown[limit - 1]['key'])}", err=True)


def _page(
    options: dict[str, Any], fetch: Callable[[Any], Any], limit: int, what: str, line: Callable
) -> None:
    """One page of `kv list` or `kv counters`: at most `limit` rows (as JSON with --json),
    then on stderr the count and the next page's --after. `fetch` asks for one row more,
    to know whether there is a next page."""

    def show(rows: list[dict[str, Any]]) -> None:
        for row in rows[:limit]:
            click.echo(line(row))

    rows = _kv(options, fetch, show, json_of=lambda rows: rows[:limit], reads=True)
    _page_end(rows, limit, what)


@kv.command(name="list")
@paged
@kv_options
def kv_list(prefix: str, after: str | None, limit: int, **options: Any) -> None:
    """List live items with their values and expiry, a page at a time."""
    from pfunc import jsonio

    def line(item: dict[str, Any]) -> str:
        value = shortened(jsonio.shown(item["value"]), 60)
        return f"{one_line(item['key'])}  {value}  (expires {item['expires_at']})"

    _page(options, lambda tool: tool.list_items(prefix, after, limit + 1), limit, "item", line)


@kv.command(name="get")
@click.argument("key")
@kv_options
def kv_get(key: str, **options: Any) -> None:
    """Print the item under KEY as JSON (exit 1 when there is none)."""
    from pfunc import jsonio

    def show(value: Any) -> None:
        if value is not None:
            click.echo(jsonio.shown(value, indent=2))

    value = _kv(options, lambda tool: tool.get(key), show, reads=True)
    if value is None:
        click.echo(f"no live item under {key!r}", err=True)
        sys.exit(EXIT_FAILED)


# A negative number is a value, not an option (`kv set balance -1`).
@kv.command(name="set", cls=NegativeNumbersAsValues)
@click.argument("key")
@click.argument("value")
@click.option("--ttl", type=float, help="Minutes to live (default 1,440; clamped 1..525,600).")
@kv_options
def kv_set(key: str, value: str, ttl: float | None, **options: Any) -> None:
    """Store VALUE (JSON) under KEY, checked like kvstore.set."""
    _kv(
        options,
        lambda tool: tool.set(key, value, ttl),
        lambda _: click.echo(f"set {one_line(key)}"),
    )


@kv.command(name="rm")
@click.argument("key")
@kv_options
def kv_rm(key: str, **options: Any) -> None:
    """Remove the item and the counter under KEY."""

    def show(removed: bool) -> None:
        click.echo(
            f"removed {one_line(key)}" if removed else f"nothing under {key!r}: nothing removed"
        )

    _kv(options, lambda tool: tool.remove(key), show, json_of=lambda removed: {"removed": removed})


@kv.command(name="counters")
@paged
@kv_options
def kv_counters(prefix: str, after: str | None, limit: int, **options: Any) -> None:
    """List counters and their values, a page at a time."""

    def line(counter: dict[str, Any]) -> str:
        return f"{one_line(counter['key'])}  {counter['value']}"

    _page(
        options, lambda tool: tool.list_counters(prefix, after, limit + 1), limit, "counter", line
    )


# A negative amount is an amount, not an option (`kv incr hits -5`).
@kv.command(name="incr", cls=NegativeNumbersAsValues)
@click.argument("key")
@click.argument("amount", type=int, default=1)
@kv_options
def kv_incr(key: str, amount: int, **options: Any) -> None:
    """Add AMOUNT (default 1, may be negative) to the counter KEY; print the new value."""
    _kv(options, lambda tool: tool.incr(key, amount), lambda value: click.echo(str(value)))


# FILE as typed: "-" is stdin or stdout, "./-" a file of that name (a Path reads both as -).
_FILE = click.Path(dir_okay=False, allow_dash=True)


@kv.command(name="export")
@click.argument("file", type=_FILE)
@kv_options
def kv_export(file: str, **options: Any) -> None:
    """Write every live item and counter of the keyset to FILE (JSON; - for stdout)."""

    def said(counts: dict[str, int], err: bool = False) -> None:
        summary = f"exported {counts['items']} item(s), {counts['counters']} counter(s)"
        click.echo(summary, err=err)

    if file != "-":
        _kv(options, lambda tool: tool.export(Path(file)), said, reads=True)
        return
    if options.get("as_json"):
        usage_failure("--json and FILE - would both write to stdout; give a FILE for the export")

    def to_stdout(text_and_counts: tuple[str, dict[str, int]]) -> None:
        text, counts = text_and_counts
        click.echo(text, nl=False)
        said(counts, err=True)  # stdout holds the export alone

    _kv(options, lambda tool: tool.export_text(), to_stdout, reads=True)


@kv.command(name="import")
@click.argument("file", type=_FILE)
@kv_options
def kv_import(file: str, **options: Any) -> None:
    """Load a FILE written by pfunc kv export (items keep their expiry; - for stdin)."""
    _kv(
        options,
        lambda tool: tool.import_(None if file == "-" else Path(file)),
        lambda n: click.echo(f"imported {n['items']} item(s), {n['counters']} counter(s)"),
    )


@kv.command(name="clear")
@click.option("--yes", is_flag=True, help="Confirm: delete every item and counter.")
@kv_options
def kv_clear(yes: bool, **options: Any) -> None:
    """Delete every item and counter of the keyset (needs --yes)."""
    if not yes:
        usage_failure(
            "pfunc kv clear deletes every item and counter of the keyset; run it again with --yes"
        )
    _kv(options, lambda tool: tool.clear(), lambda _: click.echo("cleared"))


@click.command(cls=PfuncCommand)
@click.argument("channel")
@click.option(
    "--count", type=click.IntRange(1, 100), default=25, show_default=True, help="Newest N."
)
@kv_options
def history(channel: str, count: int, **options: Any) -> None:
    """Print CHANNEL's stored messages (what fetchMessages returns), oldest first."""
    import asyncio

    from pfunc.cli.session import prepare_session

    async def read(session: Any) -> list[dict[str, Any]]:
        async with session.engine() as engine:
            engine.runtime.store.check()
            found = await engine.history.read(
                channel, count=count, now_ms=engine.runtime.clock.now_ms()
            )
        return [
            {
                "timetoken": str(m.timetoken),
                "publisher": m.publisher,
                "message": m.message,
                "meta": m.meta,
            }
            for m in found
        ]

    from pfunc.channels import channel_problem

    problem = channel_problem(channel)
    if problem or "*" in channel:
        usage_failure(f"channel {channel!r}: {problem or 'name one channel, not a wildcard'}")
    with store_failures():
        session = _reading(prepare_session(options))
        messages = asyncio.run(read(session))
    with to_reader():
        _show_history(channel, messages, session.as_json)


def _show_history(channel: str, messages: list[dict[str, Any]], as_json: bool) -> None:
    import json

    from pfunc import jsonio

    if as_json:
        click.echo(jsonio.shown(messages))
        return
    if not messages:
        click.echo(f"no stored messages on {channel}")
    for entry in messages:
        meta = f"  meta {json.dumps(entry['meta'])}" if entry["meta"] is not None else ""
        click.echo(
            f"{entry['timetoken']}  {entry['publisher']}  {jsonio.shown(entry['message'])}{meta}"
        )
