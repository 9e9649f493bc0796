"""One pass of the checker over a run: where findings and the repair plan are collected.

:class:`CheckContext` carries what the checks share (the run's root and layout, its
manifest once read, the finished epochs, the live writer) and the small primitives every
check uses: record a finding, plan a removal, report a leftover, list a folder without
following links, read one array's header. The checks themselves live in :mod:`.files`,
:mod:`.epochs`, :mod:`.agreement` and :mod:`.caches`.

Two kinds of trouble are kept apart, because only one of them may ever cost data:

- **damage** (:meth:`CheckContext.damage`): a file epochscope wrote is missing, truncated,
  unreadable or malformed in itself. A damaged *trailing* epoch is what repair drops (an
  epoch whose only damage is its metrics row gets a row without metrics instead).
- **disagreement**: a whole, readable file that disagrees with the manifest or the layout
  (a shape, a dtype, a range), or a link or special file where a run file belongs. It is a
  problem that is reported with what to do, never a reason to delete anything: when every
  epoch disagrees alike, the shared file is the one to blame (:mod:`.agreement`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._errors import RunError
from ..run.fileio import open_checked, read_npy_header
from ..run.layout import RunLayout
from ..run.lock import lock_holder
from ..run.manifest import Manifest
from .report import Finding, RepairAction

__all__ = ["CheckContext", "Header", "strip_where"]


@dataclass(frozen=True)
class Header:
    """What an array file's header says (read without loading the data)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool


class CheckContext:
    """Findings, repair plan and shared state of one pass over the run at ``root``.

    ``holding_lock``: the caller (repair) holds the run's writer lock, so no other writer
    can be at work and leftovers are never "being written right now". ``find_writer=False``: do
    not ask the lock who writes (asking takes a shared lock for an instant, and a writer starting
    in that instant would find the run locked); leftovers then read as left by an interrupted
    writer (warnings, never problems).
    """

    def __init__(self, root: Path, *, holding_lock: bool = False, find_writer: bool = True) -> None:
        self.root = root
        self.layout = RunLayout(root)
        self.findings: list[Finding] = []
        self.actions: list[RepairAction] = []
        self.unrepairable: list[str] = []
        #: epoch -> why it is damaged (files missing, truncated or unreadable in themselves).
        self.damaged: dict[int, list[str]] = {}
        #: epochs whose metrics row is missing or broken in itself (not JSON, not one object), as
        #: opposed to whole but unreadable here (too large, no permission): what repair may write anew.
        self.broken_rows: set[int] = set()
        # While repair holds the lock itself, no other writer can be at work.
        self.writer = None if holding_lock or not find_writer else lock_holder(root)
        self.manifest: Manifest | None = None
        self.epochs: list[int] = []
        #: the labels hold classes the manifest's class names do not reach (reported once, on the manifest)
        self.classes_short = False
        #: epoch -> the names of the arrays its weights file holds (those that could be read)
        self.weight_names: dict[int, frozenset[str]] = {}

    # -- recording findings
    def rel(self, path: Path) -> str:
        """``path`` relative to the run, with ``/`` separators (``""`` for the run itself)."""
        return path.relative_to(self.root).as_posix() if path != self.root else ""

    def rel_text(self, message: str) -> str:
        """``message`` with every path inside the run written relative to it (findings carry relative paths)."""
        return message.replace(f"{self.root}{os.sep}", "")

    def add(self, level: str, path: Path | str, message: str, epoch: int | None = None) -> None:
        """Record a finding about ``path`` (a path, or one already relative to the run)."""
        rel = path if isinstance(path, str) else self.rel(path)
        self.findings.append(Finding(level, rel, message, epoch))

    def damage(self, path: Path, message: str, epoch: int | None = None) -> None:
        """A problem in the file itself (missing, truncated, unreadable); it marks ``epoch`` damaged."""
        self.add("problem", path, message, epoch)
        if epoch is not None:
            self.damaged.setdefault(epoch, []).append(f"{self.rel(path)}: {message}")

    def plan(self, path: Path, what: str, *, rewrite: str = "") -> None:
        """Plan the removal of ``path``, or with ``rewrite`` (JSON text) writing it anew (carried
        out only by ``repair=True``)."""
        self.actions.append(RepairAction(self.rel(path), what, rewrite=rewrite))

    def leftover(self, path: Path, what: str, *, live: bool) -> None:
        """A temporary file or folder: in progress when its writer lives, else removable."""
        if live:
            self.add("note", path, f"{what} being written right now (ignored by readers)")
        else:
            self.add("warning", path, f"{what} left by an interrupted writer (ignored by readers)")
            self.plan(path, f"leftover {what}")

    # -- the file system, never through a link
    def entries(self, folder: Path) -> list[os.DirEntry]:
        """The entries of ``folder`` in name order, listed without following any link (``[]`` if unreadable)."""
        try:
            with os.scandir(folder) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError:
            return []

    def link(self, path: Path, where: str, epoch: int | None = None, *, belongs: bool) -> None:
        """Report a link found in the run; it is never followed, and repair removes neither it nor its target.

        ``belongs``: a run file or folder belongs at ``path`` (a problem: readers refuse it), else a warning.
        """
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        level = "problem" if belongs else "warning"
        self.add(level, path, f"a link (to {target}) {where}; epochscope never follows links in a run and repair "
                 "does not remove it" + ("; replace it by the file or folder itself" if belongs else ""), epoch)

    def header(self, path: Path, what: str, epoch: int | None = None, *, required: bool = True) -> Header | None:
        """Read one ``.npy`` file's header (and check its size); ``None`` after reporting why it cannot be read.

        A missing (``required``) or unreadable file is damage; a link or a special file where
        the array belongs is a problem that is not damage (see the module doc).
        """
        if path.is_symlink():
            self.link(path, f"where the {what} belongs", epoch, belongs=True)
            return None
        if not os.path.lexists(path):
            if required:
                self.damage(path, f"missing ({what})", epoch)
            return None
        rel = self.rel(path)
        try:
            with open_checked(path, root=self.root) as fh:
                shape, fortran, dtype = read_npy_header(fh, os.fstat(fh.fileno()).st_size, rel)
        except RunError as err:
            message = strip_where(self.rel_text(str(err)), rel)
            if "regular file" in message or "a link" in message:
                self.add("problem", path, message, epoch)
            else:
                self.damage(path, message, epoch)
            return None
        except OSError as err:
            self.damage(path, f"cannot be read ({err})", epoch)
            return None
        return Header(tuple(shape), dtype, fortran)

    def values(self, path: Path, header: Header) -> np.ndarray | None:
        """The data of a small array whose header was read (labels, predictions); ``None`` if unreadable."""
        try:
            with open_checked(path, root=self.root) as fh:
                read_npy_header(fh, os.fstat(fh.fileno()).st_size, self.rel(path))
                count = int(np.prod(header.shape, dtype=np.int64))
                data = np.fromfile(fh, dtype=header.dtype, count=count)
        except (RunError, OSError, ValueError):
            return None
        if data.size != int(np.prod(header.shape, dtype=np.int64)):
            return None
        return data.reshape(header.shape, order="F" if header.fortran else "C")

    def dtype_is(self, path: Path, header: Header, dtypes: Iterable[str], what: str, epoch: int | None = None) -> bool:
        """A problem (not damage) when the array's dtype is not one of ``dtypes``."""
        dtypes = tuple(dtypes)
        if header.dtype.name in dtypes:
            return True
        self.add("problem", path, f"dtype {header.dtype.name}, expected {' or '.join(dtypes)} ({what})", epoch)
        return False


def strip_where(message: str, where: Path | str) -> str:
    """Drop a leading ``"<path>: "`` from an error message (the finding carries the path)."""
    for prefix in (f"{where}: ", f"{where} "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message
