"""Errors pfunc raises for the user's mistakes (as opposed to the handler's).

Each carries a message that names what was wrong and what to do; the CLI prints it
without a traceback and exits with code 2.
"""


class PfuncUsageError(Exception):
    """Bad input to pfunc itself: a flag, a file, a configuration value."""


class HandlerLoadError(Exception):
    """The handler file could not be turned into a runnable handler.

    This ends the execution as an `error` outcome (exit code 1), not a usage error:
    the user's code is at fault, and the report should show where.
    """

    def __init__(
        self,
        error_type: str,
        message: str,
        stack: str = "",
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack = stack
        self.line = line
        self.column = column
