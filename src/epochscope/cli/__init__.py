"""The ``epochscope`` command line: one module per command, each with ``register(subparsers)``.

Command modules import nothing heavy at module level, so ``epochscope --help`` is instant.

Exit status: 0 done; 1 the environment failed (disk full, read-only or unwritable folder,
another process writing the run, a missing optional package, out of memory; ``check`` also
says 1 when problems remain); 2 the user's input is wrong (a bad option or value, a path that
does not exist, a folder that is not a run, a damaged or malformed run or file); 130 Ctrl-C
(``serve`` ends with 0 then: that is how it stops). Every ``--help`` ends with these (:data:`EXIT_HELP`). An error is
one line, ``epochscope COMMAND: error: …``, naming the file and the cause; ``-v`` shows the
traceback. Everything printed goes through :func:`echo`, which shows control characters from a
run escaped (:func:`epochscope._text.printable`).
``-q``/``--quiet`` and ``-v``/``--verbose`` are accepted before and after the command
(``epochscope render RUN --out X -q``). ``-v`` shows epochscope's own debug log and the
traceback of an error; other libraries' loggers (numba, matplotlib, openTSNE) stay at warnings.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator, Sequence

from .._errors import EpochscopeError, MissingDependencyError, RunLockedError, StorageError
from .._text import printable

__all__ = ["EXIT_ENVIRONMENT", "EXIT_HELP", "EXIT_INPUT", "echo", "exit_status", "main", "build_parser"]

#: Exit status when the environment failed (disk, permissions, another writer, a missing package).
EXIT_ENVIRONMENT = 1
#: Exit status when the user's input is wrong (options, paths, the run or file given).
EXIT_INPUT = 2

# In order of appearance in --help.
COMMANDS = ("demo", "info", "embed", "render", "network", "report", "serve", "import_", "export", "check")

#: Ends every command's --help (a command with other statuses, as ``check`` and ``serve``, sets its own epilog).
EXIT_HELP = ("exit status: 0 done, 1 the environment failed (disk full, read-only or unwritable folder, another "
             "process writing the run, a missing optional package, out of memory), 2 a mistake in what was given "
             "(an option or value, a path, a folder that is not a run, a damaged run file), 130 interrupted (Ctrl-C)")

_QUIET_HELP = "no progress bars or log messages"
_VERBOSE_HELP = "epochscope's debug log, and the traceback of an error"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="epochscope",
        description="Watch a neural network learn: record layers every epoch, then draw maps, curves and the network.",
        epilog=EXIT_HELP,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("-q", "--quiet", action="store_true", help=_QUIET_HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help=_VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    _accept_options_after_command(parser)
    return parser


def _accept_options_after_command(parser: argparse.ArgumentParser) -> None:
    """Give every (sub)command ``-q``/``-v`` too, and :data:`EXIT_HELP` under its help. ``SUPPRESS`` as
    the flags' default, so a command's parser never resets a flag given before the command to False."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if child.epilog is None:  # the exit statuses, unless the command states its own
                    child.epilog = EXIT_HELP
                if "--quiet" not in child._option_string_actions:
                    child.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=_QUIET_HELP)
                    child.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                                       help=_VERBOSE_HELP)
                _accept_options_after_command(child)


def _version() -> str:
    from .. import __version__

    return __version__


def echo(text: object = "", *, err: bool = False) -> None:
    """Print ``text`` for the user, control characters escaped (line breaks kept): every command prints so."""
    print(printable(text, keep="\n"), file=sys.stderr if err else sys.stdout)


def exit_status(err: BaseException) -> int:
    """:data:`EXIT_ENVIRONMENT` or :data:`EXIT_INPUT` for an error that ends a command (see the module doc)."""
    if isinstance(getattr(err, "exit_code", None), int):  # OutputError / OutputPathError say which
        return err.exit_code
    if isinstance(err, (StorageError, RunLockedError, MissingDependencyError, MemoryError)):
        return EXIT_ENVIRONMENT
    if isinstance(err, (FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError)):
        return EXIT_INPUT  # a path the user gave
    if isinstance(err, OSError):
        return EXIT_ENVIRONMENT
    return EXIT_INPUT


def _one_line(err: BaseException) -> str:
    if isinstance(err, OSError) and not isinstance(err, EpochscopeError) and err.strerror:
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}{err.strerror}"
    if isinstance(err, MemoryError):
        return f"out of memory ({err or 'MemoryError'}); close other programs or use a machine with more memory"
    return str(err) or type(err).__name__


class _TerminalSafe(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record), keep="\n")


def _configure_logging(level: int):
    """epochscope's logger to stderr at ``level``, for the run of one command; returns a function
    that undoes it. The root logger is left alone, so other libraries (numba's compiler,
    matplotlib's font lookups, openTSNE) only show their warnings: ``-v`` is epochscope's own
    debug log. Records still propagate (to a host's or a test's handlers); the root logger of a
    plain command line has none."""
    log = logging.getLogger("epochscope")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_TerminalSafe("%(message)s"))
    before = log.level
    log.addHandler(handler)
    log.setLevel(level)

    def undo() -> None:
        log.removeHandler(handler)
        log.setLevel(before)

    return undo


#: matplotlib's warning for a character its font cannot draw (it is drawn as a box).
_MISSING_GLYPH = re.compile(r"Glyph (\d+) .*missing from font")


@contextlib.contextmanager
def _missing_glyphs_told_once() -> Iterator[None]:
    """matplotlib warns about a character its font lacks once per character and per place a text
    is laid out: a run whose class names are in a script the font lacks printed dozens of warning
    lines (also under ``-q``). Inside the block those warnings are gathered and told in one log
    line at the end (silenced by ``-q``); every other warning is shown as before."""
    missing: set[str] = set()
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            found = _MISSING_GLYPH.search(str(message))
            if found:
                missing.add(chr(int(found.group(1))))
                return
            shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        try:
            yield
        finally:
            if missing:
                chars = ", ".join(printable(c) if c.isprintable() else ascii(c)[1:-1] for c in sorted(missing))
                logging.getLogger("epochscope").info(
                    "the drawing font has no glyph for %d character%s in the run's names (%s): they are drawn as "
                    "boxes; install a font that has them (e.g. Noto) for matplotlib to use", len(missing),
                    "" if len(missing) == 1 else "s", chars)


#: What Ctrl-C leaves, by command (every output is written to a temporary name and renamed, a
#: render's pictures move in only when all are drawn, a recorder commits whole epochs).
INTERRUPTED = {
    "demo": "every finished epoch is saved",
    "import": "every finished epoch is saved",
    "render": "the output folder is left as it was",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 environment, 2 the user's input; see the module doc)."""
    # torch's OpenMP threads busy-wait by default, which slows training 8-9x when another
    # process shares a small machine's cores; must be set before torch is imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose else logging.INFO)
    undo_logging = _configure_logging(level)
    try:
        with _missing_glyphs_told_once():
            status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below, not at exit
        return status
    except BrokenPipeError:
        # `epochscope info --json | head`: the reader stopped reading; that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (EpochscopeError, ValueError, TypeError, OSError, MemoryError, RecursionError) as err:
        if args.verbose:
            raise
        echo(f"epochscope {args.command}: error: {_one_line(err)}".replace("\n", " "), err=True)
        return exit_status(err)
    except KeyboardInterrupt:
        print(f"interrupted; {INTERRUPTED.get(args.command, 'nothing half-written is left')}", file=sys.stderr)
        return 130
    finally:
        undo_logging()
