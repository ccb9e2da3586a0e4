"""Flag text to values: `@file` and `-` for text, JSON with errors that show a correct
form, name=value and 'Name: value' pairs, and the event flags of `pfunc run` as an
EventSpec for the one event builder."""

from __future__ import annotations

import json
import sys
from typing import Any

from pfunc import jsonio
from pfunc.channels import name_problem
from pfunc.errors import PfuncUsageError
from pfunc.events import EventSpec
from pfunc.request_fields import first_values, joined_headers
from pfunc.result import shortened

# EventSpec field -> the flag that sets it, for errors in the user's own words.
_FLAG_OF_FIELD = {"headers": "--header", "event": "--event"}


def spell_flag(field_name: str) -> str:
    return _FLAG_OF_FIELD.get(field_name, "--" + field_name)


FLAG_FILE_LIMIT = 64 << 20  # characters read from an @file: a handler's whole memory


def read_text_flag(flag: str, value: str, stdin_text: str | None = None) -> str:
    """A flag's text: literal, `@file` for a file's contents, or `-` for standard input."""
    if value == "-":
        if stdin_text is None and (sys.stdin is None or sys.stdin.closed):
            raise PfuncUsageError(f"{flag} -: there is no standard input to read")
        try:
            return stdin_text if stdin_text is not None else sys.stdin.read()
        except UnicodeDecodeError:
            raise PfuncUsageError(f"{flag} -: standard input is not UTF-8 text") from None
    if value.startswith("@"):
        path = value[1:]
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read(FLAG_FILE_LIMIT + 1)  # /dev/zero, a log: not to the end
        except OSError as error:
            raise PfuncUsageError(
                f"{flag} {value}: cannot read {path}: {error.strerror or error}"
            ) from None
        except UnicodeDecodeError:
            raise PfuncUsageError(f"{flag} {value}: {path} is not UTF-8 text") from None
        if len(text) > FLAG_FILE_LIMIT:
            raise PfuncUsageError(
                f"{flag} {value}: {path} holds more than {FLAG_FILE_LIMIT >> 20} MiB; an event "
                "that large would not fit a handler's memory"
            )
        return text
    return value


def parse_json_flag(flag: str, value: str, *, want_object: bool = False) -> Any:
    """JSON from a flag, with an error that quotes the input and shows a correct form."""
    # A byte-order mark (Windows Notepad saves one) is no part of the JSON: RFC 8259 lets
    # a parser ignore it, and the shell-quoting hint it drew did not apply to a file.
    text = read_text_flag(flag, value).removeprefix("\ufeff")
    try:
        parsed = jsonio.loads(text)
    except jsonio.JSONValueError as error:
        raise PfuncUsageError(f"{flag} is not valid JSON: {error}") from None
    except json.JSONDecodeError as error:
        quoted = shortened(text, 80)
        what = error.msg.removesuffix(" at")  # json's "Invalid control character at"
        raise PfuncUsageError(
            f"{flag} is not valid JSON ({what} at line {error.lineno} column "
            f"{error.colno}): {quoted}\n  Quote keys and strings with double quotes and wrap the "
            f'whole value in single quotes for the shell, e.g. {flag} \'{{"userId":"u1"}}\''
        ) from None
    if want_object and not isinstance(parsed, dict):
        raise PfuncUsageError(f'{flag} must be a JSON object, e.g. {flag} \'{{"uuid":"u1"}}\'')
    return parsed


def parse_query_flags(values: tuple[str, ...]) -> dict[str, str]:
    pairs = []
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise PfuncUsageError(
                f"--query {item!r}: write it as name=value, e.g. --query token=abc"
            )
        pairs.append((name, value))
    return first_values(pairs)


def parse_header_flags(values: tuple[str, ...]) -> dict[str, str]:
    pairs = []
    for item in values:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise PfuncUsageError(
                f"--header {item!r}: write it as 'Name: value', e.g. --header 'X-Token: abc'"
            )
        pairs.append((name.strip(), value.strip()))
    return joined_headers(pairs)


def _given(flags: dict[str, Any], name: str) -> bool:
    value = flags.get(name)
    return value is not None and value != ()


def event_spec_from_flags(flags: dict[str, Any]) -> EventSpec:
    """The EventSpec that `pfunc run`'s event flags describe (unset flags stay unset)."""
    # (Text that is not UTF-8 was refused as the command line was read: PfuncCommand.)
    channel = flags.get("channel")
    if channel is not None and (problem := name_problem(channel)):
        raise PfuncUsageError(f"--channel {channel!r}: {problem}")
    spec = EventSpec(
        channel=channel,
        method=flags.get("method"),
        path=flags.get("http_path"),
        action=flags.get("action"),
        uuid=flags.get("uuid"),
        occupancy=flags.get("occupancy"),
    )
    if _given(flags, "message"):
        spec.message = parse_json_flag("--message", flags["message"])
    if _given(flags, "params_json"):
        spec.params = parse_json_flag("--params", flags["params_json"], want_object=True)
    if _given(flags, "meta_json"):
        spec.meta = parse_json_flag("--meta", flags["meta_json"], want_object=True)
    if _given(flags, "state_json"):
        spec.state = parse_json_flag("--state", flags["state_json"], want_object=True)
    if _given(flags, "query"):
        spec.query = parse_query_flags(flags["query"])
    if _given(flags, "header"):
        spec.headers = parse_header_flags(flags["header"])
    if _given(flags, "body"):
        spec.body = read_text_flag("--body", flags["body"])
    return spec
