"""What the commands share: exit codes, the usage-error exit, the store and session
flags, and how a plan is executed and printed."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import click

from pfunc.errors import PfuncUsageError
from pfunc.events import is_unicode
from pfunc.limits import PROFILES

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def usage_failure(message: str) -> NoReturn:
    from pfunc.terminal import visible

    # A name in the message (a file, a key) may hold an escape sequence: shown, not run.
    click.echo(f"Error: {visible(message)}", err=True)
    sys.exit(EXIT_USAGE)


def stop_at_once_on_ctrl_c() -> None:
    """Ctrl-C ends the command at once (exit 130), as the terminal's default does: Python
    would only hear it once the engine returned, which a handler's endless loop puts off
    to its time limit. Nothing is lost: a store write is a SQLite transaction, whole or
    absent."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def ctrl_c_exits_130() -> Iterator[None]:
    """Ctrl-C: "Aborted!" and 130, as a shell reports a command it ended (click's own
    exit is 1, which a script reads as a failure of the command's own: kv get's "no
    item", pfunc test's "a scenario failed"). A write interrupted mid-way is one SQLite
    transaction, rolled back."""
    try:
        yield
    except KeyboardInterrupt:
        click.echo("Aborted!", err=True)
        sys.exit(130)


def execute(prepare: Callable[[], Any], renderer: str) -> Any:
    """Prepare and execute a plan, then print its JSON or its report (imported late).

    The plan runs without an event loop (aio.py: asyncio is imported only if a call waits
    on the network). Usage errors raised while preparing or opening the store exit with
    code 2.
    """
    from pfunc.aio import run_without_loop

    stop_at_once_on_ctrl_c()
    try:
        plan = prepare()
        outcome = run_without_loop(plan.execute())
    except PfuncUsageError as error:
        usage_failure(str(error))
    with to_reader():
        if plan.session.as_json:
            import json

            click.echo(json.dumps(outcome.to_json(), ensure_ascii=False))
        else:
            from pfunc import render

            getattr(render, renderer)(outcome)
    return outcome


@contextlib.contextmanager
def to_reader() -> Iterator[None]:
    """Output that a reader may stop reading (`| head -1`): the command still ends as it
    would have, not with click's exit 1 for a closed pipe."""
    try:
        yield
    except BrokenPipeError:
        reader_gone()


def reader_gone() -> None:
    """The reader closed the pipe (`pfunc run ... | head -1`): the rest of the output has
    nowhere to go, and the exit code still says how the execution ended (click would
    exit 1, which here means the execution failed)."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # what is still buffered goes nowhere at exit
    os.close(devnull)


def store_options(limits_help: str) -> list[Callable[..., Any]]:
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


def with_options(
    options: list[Callable[..., Any]], command: Callable[..., Any]
) -> Callable[..., Any]:
    for option in reversed(options):
        command = option(command)
    return command


def session_options(
    command: Callable[..., Any] | None = None,
    *,
    json_help: str = "Print exactly one JSON object on stdout.",
) -> Any:
    """The flags every executing command shares: store, keyset, limits, clock, output.
    Used bare (@session_options), or with the --json flag's own wording for a command
    whose JSON is not one object (@session_options(json_help=...))."""
    if command is None:
        return lambda decorated: session_options(decorated, json_help=json_help)
    return with_options(
        [
            *store_options("Limits profile (default: pfunc.toml's, else classic)."),
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
            click.option("--json", "as_json", is_flag=True, help=json_help),
        ],
        command,
    )


# Flags that read a file when their value starts with @ (flags.read_text_flag): the name
# after the @ is a path, which need not be UTF-8.
_FILE_READING = frozenset({"message", "body", "meta_json", "params_json", "state_json"})
# Values that are paths (a handler file, or a function's name) though not click.Paths.
_PATH_VALUES = frozenset({"target"})


class PfuncCommand(click.Command):
    """Every pfunc command: a text argument or flag whose bytes were not UTF-8 (the shell
    passes bytes; Python holds the bad ones as lone surrogates) is one usage error here,
    named by its flag, rather than a traceback wherever it is first written (a store, a
    JSON line, the engine). Paths are exempt: a file name need not be UTF-8."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            rest = super().parse_args(ctx, args)
        except click.UsageError as error:
            # click's parser leaves some without their command ("Option '--kv' requires
            # an argument"): the error then pointed at `pfunc --help`, not this command's.
            error.ctx = error.ctx or ctx
            raise
        reading_stdin = []
        for param in self.get_params(ctx):
            if isinstance(param.type, click.Path) or param.name in _PATH_VALUES:
                continue
            shown = param.opts[0] if isinstance(param, click.Option) else param.human_readable_name
            value = ctx.params.get(param.name or "")
            if param.name in _FILE_READING and value == "-":
                reading_stdin.append(shown)
            for text in value if isinstance(value, tuple | list) else [value]:
                if not isinstance(text, str) or is_unicode(text):
                    continue
                if param.name in _FILE_READING and text.startswith("@"):
                    continue
                raise click.UsageError(f"{shown} is not UTF-8 text; write it as UTF-8", ctx)
        if len(reading_stdin) > 1:  # the first would read it all, the next nothing
            named = ", ".join(reading_stdin[:-1]) + " and " + reading_stdin[-1]
            raise click.UsageError(
                f"{named} all read standard input (-); give all but one as text or @file", ctx
            )
        return rest


class PfuncGroup(click.Group):
    """A group whose commands, and groups, check their text as PfuncCommand does."""

    command_class = PfuncCommand
    group_class = type  # a group made with @group.group is of this group's class


class NegativeNumbersAsValues(PfuncCommand):
    """A command whose values may be negative numbers (`kv set balance -1`, `publish chat
    -1`): click reads any `-x` as an option, so the command lets unknown options through
    as values, and this puts back click's own error for a mistyped option (`--meat`), which
    would otherwise be reported as an extra argument or taken as the message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", {})["ignore_unknown_options"] = True
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        options = [param for param in self.get_params(ctx) if isinstance(param, click.Option)]
        names = {name for option in options for name in option.opts + option.secondary_opts}
        taking_values = {
            name
            for option in options
            if not option.is_flag and not option.count
            for name in option.opts
        }
        tokens = iter(args)
        for token in tokens:
            if token == "--":
                break
            name = token.split("=", 1)[0]
            if name in taking_values and "=" not in token:
                next(tokens, None)  # the option's value, whatever it looks like
            elif _looks_like_option(token) and name not in names:
                import difflib

                close = difflib.get_close_matches(name, sorted(names), n=3)
                said = f"No such option '{name}' (a value that starts with - goes after --)"
                raise click.NoSuchOption(name, said, possibilities=close, ctx=ctx)
        return super().parse_args(ctx, args)


def _looks_like_option(token: str) -> bool:
    # "-" is stdin; "-1", "-.5", "-1e3" and "-Infinity" are numbers, not options.
    if not token.startswith("-") or token == "-":
        return False
    rest = token.lstrip("-")
    return not (rest[:1].isdigit() or rest[:1] == "." or rest in ("Infinity", "NaN"))
