"""The `pfunc` command's entry point (and `python -m pfunc`'s).

Start-up creates tens of thousands of objects (modules, classes, click's commands) and no
garbage, yet their allocation triggers the cyclic garbage collector again and again:
measured, about 10 ms of a 95 ms `pfunc run`. The command line's modules are imported with
the collector paused, then frozen out of its scans, so that later collections (a `pfunc
dev` runs for hours) never walk them again.
"""

from __future__ import annotations

import contextlib


def main() -> None:
    try:
        _main()
    except KeyboardInterrupt:  # before a command takes Ctrl-C over (Python's own imports)
        import sys

        with contextlib.suppress(OSError):
            sys.stderr.write("Aborted!\n")
        raise SystemExit(130) from None


def _main() -> None:
    import gc
    import os

    try:
        os.getcwd()  # every command reads the project from here (not --help, --version)
    except FileNotFoundError:
        import sys

        if not {"-h", "--help", "--version"} & set(sys.argv[1:]):
            sys.stderr.write("Error: the current folder no longer exists; cd to one that does\n")
            raise SystemExit(2) from None

    collecting = gc.isenabled()
    gc.disable()
    try:
        from pfunc.cli.commands import main as command_line

        gc.freeze()
    finally:
        if collecting:
            gc.enable()
    try:
        command_line()
    except OSError as error:
        # What a command writes could not be written (a full disk, /dev/full): one line,
        # as every other failure of the machine, not a traceback. (A closed pipe is
        # click's, or to_reader's, to handle.)
        import errno
        import sys

        if error.errno == errno.EPIPE:
            raise
        with contextlib.suppress(OSError):
            sys.stderr.write(f"Error: {error.strerror or error}\n")
        raise SystemExit(1) from None
