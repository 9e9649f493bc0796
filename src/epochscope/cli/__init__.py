"""The ``epochscope`` command line: one module per command, each with ``register(subparsers)``.

Command modules import nothing heavy at module level, so ``epochscope --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from .._errors import EpochscopeError

__all__ = ["main", "build_parser"]

# In order of appearance in --help.
COMMANDS = ("demo", "info", "embed", "render", "network", "report", "import_", "export", "check")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="epochscope",
        description="Watch a neural network learn: record layers every epoch, then draw maps, curves and the network.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or log messages")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details (debug level)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    _add_quiet_verbose(parser)
    return parser


def _add_quiet_verbose(parser: argparse.ArgumentParser) -> None:
    """``-q``/``-v`` after a command too (``epochscope render RUN --out x -q``), at every level of
    subcommands. ``SUPPRESS`` leaves the value given before the command when none is given after."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                command.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                                     help="no progress bars or log messages")
                command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                                     help="log details (debug level)")
                _add_quiet_verbose(command)


def _version() -> str:
    from .. import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 error, 2 usage)."""
    # torch's OpenMP threads busy-wait by default, which slows training 8-9x when another
    # process shares a small machine's cores; must be set before torch is imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except (EpochscopeError, ValueError, TypeError, FileNotFoundError) as err:
        if args.verbose:
            raise
        print(f"epochscope {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; every finished epoch is saved", file=sys.stderr)
        return 130
