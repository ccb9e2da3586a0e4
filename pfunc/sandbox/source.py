"""Handler source preparation, the prelude's source, and error location mapping for the
JavaScript sandbox.

QuickJS gives no access to a module's default export and names every source
`<input>`; this module rewrites `export default` in place (keeping every line and
column where it was) and turns engine stacks into stacks that name the handler file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pfunc import sandbox as shared
from pfunc.errors import HandlerLoadError
from pfunc.modules import CONSTANTS, HOST_METHODS, SYNC_METHODS, SYNC_MODULES

# pfunc's own JavaScript is evaluated from this line on (see prelude()).
OWN_CODE_LINE = 100_001

_EXPORT_DEFAULT = re.compile(r"(?m)^([ \t]*)(export[ \t]+default)\b")
_EXPORT_DEFAULT_ANYWHERE = re.compile(r"(?<![.\w$])(export\s+default)\b")
_IMPORT_STATEMENT = re.compile(r"""(?m)^[ \t]*(import)(?=[ \t]*[\w*{"'])(?![ \t]*\.)""")
_TARGET = "__pfunc_m.d ="
# The engine's name for the module; its frames count lines from the empty line that
# prepare_module puts first (QuickJS words some columns of a module's first line one
# short: `request.reject()` there was reported as "request is not a function").
ENGINE_FILE = "<input>"

# A frame as QuickJS writes it (file <input>) or as the prelude's V8-style stacks do
# (the handler's file name).
_FRAME = re.compile(
    r"^\s*at (?:(?P<name>.*?) \()?(?P<file>[^()]*?|native)"
    r"(?::(?P<line>\d+):(?P<col>\d+))?\)?\s*$"
)


def prepare_module(source: str, display_path: str) -> str:
    """The handler source with its default export assigned to a global the host can read,
    one line down (ENGINE_FILE: every line number read from the engine is one more)."""
    found = _IMPORT_STATEMENT.search(source)
    if found:
        line = source.count("\n", 0, found.start(1)) + 1
        column = found.start(1) - (source.rfind("\n", 0, found.start(1)) + 1) + 1
        raise HandlerLoadError(
            "SyntaxError",
            f"{display_path}:{line}:{column}: import statements are not available in PubNub "
            'Functions; load built-in modules with require(), e.g. const db = require("kvstore")',
            stack=f"    at {display_path}:{line}:{column}",
            line=line,
            column=column,
        )

    def replace(match: re.Match[str]) -> str:
        original = match.group(match.lastindex or 0)
        # Same length as the text it replaces, so line and column numbers stay true.
        replacement = _TARGET.ljust(len(original)) if len(original) >= len(_TARGET) else _TARGET
        return match.group(0).replace(original, replacement)

    rewritten, count = _EXPORT_DEFAULT.subn(replace, source)
    if count == 0:
        rewritten = _EXPORT_DEFAULT_ANYWHERE.sub(replace, source)
    if rewritten.startswith("#!"):  # a hashbang is only allowed first: a comment, one down
        rewritten = "//" + rewritten[2:]
    return "\n" + rewritten


@dataclass
class Location:
    line: int
    column: int


def map_stack(stack: str, display_path: str) -> tuple[str, Location | None]:
    """Drop pfunc's own frames, name the handler file, and find the first handler frame."""
    frames: list[str] = []
    location: Location | None = None
    for raw in stack.splitlines():
        match = _FRAME.match(raw)
        if not match:
            continue
        name = match.group("name") or ""
        line_text = match.group("line")
        if name.startswith("__pfunc") or match.group("file") == "<eval>" or name == "<eval>":
            continue
        if line_text is not None and int(line_text) >= OWN_CODE_LINE:
            continue  # pfunc's own JavaScript (builtins and prelude)
        if match.group("file") == "native":
            frames.append(f"    at {name} (native)")
            continue
        line, column = match.group("line"), match.group("col")
        if line is not None and match.group("file") == ENGINE_FILE:
            line = str(int(line) - 1)  # the module starts one line down (prepare_module)
        where = f"{display_path}:{line}:{column}"
        if location is None and line is not None:
            location = Location(int(line), int(column))
        frames.append(f"    at {name} ({where})" if name else f"    at {where}")
    return "\n".join(frames), location


def split_engine_error(text: str) -> tuple[str, str, str]:
    """Split a QuickJS exception text into (type, message, stack)."""
    head, _, stack = text.partition("\n")
    error_type, sep, message = head.partition(": ")
    if not sep:
        return "Error", head, stack
    return error_type, message, stack


# QuickJS's words for the source ending where more was expected (an unclosed brace): the
# empty token is the end of the file.
_END_OF_INPUT = "unexpected token in expression: ''"


def load_error(text: str, display_path: str, source: str | None = None) -> HandlerLoadError:
    """A QuickJS exception at load (or compile) as the handler's load error: placed in its
    file, with a word on what PubNub Functions take instead where one helps. With the
    `source`, a file that ends too early is said as V8 says it ("Unexpected end of
    input"), at the end of its last line of code, where its code frame points."""
    error_type, message, raw_stack = split_engine_error(text)
    stack, location = map_stack(raw_stack, display_path)
    if message == _END_OF_INPUT and source is not None:
        # (Lines as the engine counts them: at "\n" alone. Only where the engine placed
        # it past the last line of code: an eval("1 +") in the handler's code is not.)
        code = [(n, line) for n, line in enumerate(source.split("\n"), 1) if line.strip()]
        if code and (location is None or location.line > code[-1][0]):
            message = "Unexpected end of input"
            location = Location(code[-1][0], len(code[-1][1]) + 1)
            stack = f"    at {display_path}:{location.line}:{location.column}"
    if "could not load module" in message:
        message += (
            "; import is not available in PubNub Functions, use require() for built-in modules"
        )
    elif "unexpected 'await'" in message:  # await in a function not marked async
        message += "; await works inside an async function: export default async (request) =>"
    where = f"{display_path}:{location.line}:{location.column}" if location else display_path
    return HandlerLoadError(
        error_type,
        f"{where}: {message}",
        stack=stack,
        line=location.line if location else None,
        column=location.column if location else None,
    )


@cache
def prelude() -> str:
    # Padded so that pfunc's own code starts at OWN_CODE_LINE: frames there are dropped.
    # Next to this module (importlib.resources costs 7 ms of imports).
    read = Path(__file__).parent.joinpath
    # The modules' names and methods come from the registry; the synchronous built-ins'
    # source is text the prelude compiles on first use. All on the first (padding) line.
    registry = (
        f"var __pfunc_hostMethods = {json.dumps(HOST_METHODS)};"
        f"var __pfunc_syncModules = {json.dumps(SYNC_MODULES)};"
        f"var __pfunc_syncMethods = {json.dumps(SYNC_METHODS)};"
        f"var __pfunc_constants = {json.dumps(CONSTANTS)};"
        f"var __pfunc_ownCodeLine = {OWN_CODE_LINE};"
        f"var __pfunc_consoleBudget = {shared.CONSOLE_BUDGET};"
        f"var __pfunc_consoleLineCost = {shared.CONSOLE_LINE_COST};"
        f"var __pfunc_builtinsSource = {json.dumps(read('builtins.js').read_text('utf-8'))};"
    )
    own = [read(name).read_text("utf-8") for name in ("callee.js", "prelude.js")]
    return registry + "\n" * (OWN_CODE_LINE - 1) + "\n".join(own)
