"""The exceptions epochscope raises for its own failures, and the message helpers.

Mistakes by the caller (a wrong argument, an unknown layer name) raise the built-in
``ValueError`` / ``TypeError``; problems epochscope finds in data it reads or writes raise
one of the classes below, all subclasses of :class:`EpochscopeError`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

__all__ = [
    "EpochscopeError",
    "RunError",
    "NotARunError",
    "RunLockedError",
    "DamagedFileError",
    "StorageError",
    "MissingDependencyError",
    "CompileCacheError",
    "OutputError",
    "OutputPathError",
    "damaged_file_error",
    "stops_on_damage",
    "unknown_name_message",
]


class EpochscopeError(Exception):
    """Base class of every error that epochscope raises about its own data or setup."""


class RunError(EpochscopeError):
    """A run directory is missing, malformed, from a newer version, or inconsistent."""


class NotARunError(RunError):
    """The folder given as a run holds no epochscope manifest."""


class RunLockedError(RunError):
    """Another process is already writing to this run."""


class DamagedFileError(RunError):
    """A run file could not be read: truncated, corrupted, missing where every epoch holds one, a
    link or a FIFO in its place, or another shape than the manifest declares. Raised by the run's
    file readers (:mod:`epochscope.run.fileio`), so a picture or the report can tell damage (stop,
    and say `epochscope check`: :func:`stops_on_damage`) from a run that merely lacks something."""


class StorageError(EpochscopeError, OSError):
    """The file system refused a write or a read: the disk is full, the run is on a read-only
    file system, or permission is missing. Not the caller's mistake and not damage in the run:
    the message names the file and what to do (free space, copy the run somewhere writable).
    Also an :class:`OSError`, so handlers written for those still catch it (``errno`` is the
    file system's)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "the file system refused"


class MissingDependencyError(EpochscopeError, ImportError):
    """An optional dependency needed for this feature is not installed."""


class CompileCacheError(EpochscopeError, RuntimeError):
    """numba can store its compiled code nowhere (no writable cache folder); the message says
    how to give it one (``NUMBA_CACHE_DIR``)."""


class OutputError(EpochscopeError):
    """A picture, animation or report could not be written (disk full, read-only folder, no
    permission): the environment's fault, exit status 1 on the command line. The message names
    the file and the cause."""

    exit_code = 1


class OutputPathError(OutputError, ValueError):
    """The output path given cannot be used (``--out`` is a file where a folder is needed, or lies
    below a file): the caller's mistake, so also a ``ValueError``; exit status 2."""

    exit_code = 2


class _DamageTold(RunError):
    """A damaged file told as :func:`damaged_file_error` says; keeps the reader's error so an outer
    :func:`stops_on_damage` can tell it again with what the caller asked for (the render, not the
    maps inside it)."""

    def __init__(self, message: str, run_path: object, damage: BaseException) -> None:
        super().__init__(message)
        self.run_path, self.damage = run_path, damage


def damaged_file_error(run_path: object, err: BaseException, stops: str) -> RunError:
    """``err`` (a run file that could not be read) as the error that stops a picture or the report:
    the reader's message (it names the file), ``stops`` (what is not made: ``"the report is not
    written"``) and what to do. A damaged file is never drawn as "nothing recorded" (absent).

    >>> str(damaged_file_error("runs/a", RunError("runs/a/epochs/000001/weights.npz: truncated"), "the render stops"))[:58]
    'runs/a/epochs/000001/weights.npz: truncated; the render st'
    """
    if isinstance(err, _DamageTold):
        err = err.damage
    return _DamageTold(f"{err}; {stops}, as it would show what the file holds as missing: "
                       f"`epochscope check {run_path}` says what is damaged and what its --repair can mend, "
                       "or restore the file from a backup", run_path, err)


@contextmanager
def stops_on_damage(run: object, stops: str) -> Iterator[None]:
    """Inside the block, a run file that cannot be read (:class:`DamagedFileError`, from any reader
    however deep) stops it as :func:`damaged_file_error` says: one line with the file, ``stops``
    and `epochscope check`. ``run``: a :class:`~epochscope.Run` or its path, as the caller was
    given it (anything else, e.g. several runs side by side, is named ``RUN``). Errors that are no
    damage pass unchanged. Blocks may nest: the outermost says what stops (``epochscope.embed``
    says the maps are not made; inside a render, the render stops), and the advice is given once.

    Example::

        with stops_on_damage(run, "the render stops"):
            draw_everything(run)
    """
    try:
        yield
    except _DamageTold as err:  # told inside: its run is the one that holds the file (side by side: one of two)
        raise damaged_file_error(err.run_path, err, stops) from err.damage
    except DamagedFileError as err:
        raise damaged_file_error(_run_path(run), err, stops) from err


def _run_path(run: object) -> object:
    """The folder to name in `epochscope check` for ``run`` (a Run, a path, or something else)."""
    path = getattr(run, "path", None)
    if path is not None:
        return path
    return run if isinstance(run, (str, os.PathLike)) else "RUN"


def unknown_name_message(kind: str, given: str, available: Iterable[str], *, limit: int = 30) -> str:
    """Return "<kind> 'x' not found; did you mean 'y'? <Kind>s: a, b, ..." with close matches first.

    >>> unknown_name_message("layer", "hiden", ["conv", "hidden"])
    "layer 'hiden' not found; did you mean 'hidden'? Layers: hidden, conv"
    """
    names = [str(n) for n in available]
    close = difflib.get_close_matches(str(given), names, n=3, cutoff=0.5)
    ordered = close + [n for n in names if n not in close]
    shown = ", ".join(ordered[:limit]) + (f", … ({len(ordered) - limit} more)" if len(ordered) > limit else "")
    hint = f"; did you mean '{close[0]}'?" if close else "."
    listing = f" {kind[:1].upper()}{kind[1:]}s: {shown}" if names else f" There are no {kind}s."
    return f"{kind} '{given}' not found{hint}{listing}"
