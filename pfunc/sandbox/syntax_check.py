"""Whether a handler's source compiles, without running any of it: what `pfunc dev` says
of each function when it starts and when pfunc.toml names new ones, so a file that
cannot load is named at once, not at its first event.

The module is compiled in a context of its own with nothing of pfunc's in it, after a
`throw` on the empty line prepare_module puts first: the engine reports what does not
compile, and no line of the handler's runs."""

from __future__ import annotations

from pfunc.errors import HandlerLoadError
from pfunc.sandbox.source import load_error, prepare_module

_CHECK_BYTES = 16 << 20  # what compiling may take (a file of megabytes of code)


def syntax_error(source: str, display_path: str) -> HandlerLoadError | None:
    """The load error a handler's source gives for its syntax alone, or None."""
    if display_path.endswith(".py"):
        return _python_syntax_error(source, display_path)
    try:
        prepared = prepare_module(source, display_path)
    except HandlerLoadError as error:  # an import statement
        return error
    import quickjs  # the dev server has loaded it already; pfunc run never comes here

    context = quickjs.Context()
    context.set_memory_limit(_CHECK_BYTES)
    try:
        context.module("throw 0;" + prepared)  # compiled whole; stopped before its code
    except (quickjs.JSException, MemoryError) as error:
        failure = load_error(str(error), display_path, source)  # worded as a load's would be
        return failure if failure.error_type == "SyntaxError" else None  # else: compiled
    return None


def _python_syntax_error(source: str, display_path: str) -> HandlerLoadError | None:
    try:
        compile(source, display_path, "exec", dont_inherit=True)
    except SyntaxError as error:
        line, column = error.lineno or 1, error.offset or 1
        return HandlerLoadError(
            "SyntaxError",
            f"{display_path}:{line}:{column}: {error.msg}",
            line=line,
            column=column,
        )
    except ValueError as error:  # a NUL byte in the source
        return HandlerLoadError("SyntaxError", f"{display_path}: {error}")
    return None
