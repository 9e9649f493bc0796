"""One pass of the checker over a run: where findings and the repair plan are collected.

:class:`CheckContext` carries what the checks share (the run's root and layout, its
manifest once read, the finished epochs, the live writer) and the small primitives every
check uses: record a finding, plan a removal, report a leftover, check one array's header.
The checks themselves live in :mod:`.files`, :mod:`.epochs` and :mod:`.caches`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .._errors import RunError
from ..run.fileio import read_npy_header
from ..run.layout import RunLayout
from ..run.lock import lock_holder
from ..run.manifest import Manifest
from .report import Finding, RepairAction

__all__ = ["CheckContext", "strip_where"]


class CheckContext:
    """Findings, repair plan and shared state of one pass over the run at ``root``.

    ``holding_lock``: the caller (repair) holds the run's writer lock, so no other writer
    can be at work and leftovers are never "being written right now".
    """

    def __init__(self, root: Path, *, holding_lock: bool = False) -> None:
        self.root = root
        self.layout = RunLayout(root)
        self.findings: list[Finding] = []
        self.actions: list[RepairAction] = []
        self.unrepairable: list[str] = []
        # While repair holds the lock itself, no other writer can be at work.
        self.writer = None if holding_lock else lock_holder(root)
        self.manifest: Manifest | None = None
        self.epochs: list[int] = []

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

    def plan(self, path: Path, what: str) -> None:
        """Plan the removal of ``path`` (carried out only by ``repair=True``)."""
        self.actions.append(RepairAction(self.rel(path), what))

    def leftover(self, path: Path, what: str, *, live: bool) -> None:
        """A temporary file or folder: in progress when its writer lives, else removable."""
        if live:
            self.add("note", path, f"{what} being written right now (ignored by readers)")
        else:
            self.add("warning", path, f"{what} left by an interrupted writer (ignored by readers)")
            self.plan(path, f"leftover {what}")

    # -- arrays
    def array(self, path: Path, shape: tuple[int, ...] | None, dtypes: Iterable[str], what: str,
              epoch: int | None = None, *, load: bool = False) -> np.ndarray | None:
        """Check one ``.npy`` file's header (and size) against the manifest; returns the data when ``load``."""
        dtypes = tuple(dtypes)
        if not path.is_file():
            self.add("problem", path, f"missing ({what})", epoch)
            return None
        rel = self.rel(path)
        try:
            with open(path, "rb") as fh:
                got_shape, fortran, dtype = read_npy_header(fh, os.fstat(fh.fileno()).st_size, rel)
                # Small arrays (labels, predictions) are read here, from the same handle.
                count = int(np.prod(got_shape, dtype=np.int64))
                data = np.fromfile(fh, dtype=dtype, count=count) if load and dtype.name in dtypes else None
        except RunError as err:
            self.add("problem", path, strip_where(str(err), rel), epoch)
            return None
        except OSError as err:
            self.add("problem", path, f"cannot be read ({err})", epoch)
            return None
        wrong = []
        if shape is not None and got_shape != shape:
            wrong.append(f"shape {got_shape}, expected {shape}")
        if dtype.name not in dtypes:
            wrong.append(f"dtype {dtype.name}, expected {' or '.join(dtypes)}")
        if wrong:
            self.add("problem", path, "; ".join(wrong) + f" ({what})", epoch)
            return None
        return None if data is None else data.reshape(got_shape, order="F" if fortran else "C")

    def classes(self, path: Path, values: np.ndarray | None, low: int, what: str, epoch: int | None = None) -> None:
        """A problem when ``values`` (class indices) fall outside ``low..n_classes-1``."""
        if values is None or not len(values):
            return
        n = len(self.manifest.class_names)
        lo, hi = int(values.min()), int(values.max())
        if lo < low or hi >= n:
            self.add("problem", path, f"{what} range {lo}..{hi}, expected {low}..{n - 1} ({n} class names)", epoch)


def strip_where(message: str, where: Path | str) -> str:
    """Drop a leading ``"<path>: "`` from an error message (the finding carries the path)."""
    for prefix in (f"{where}: ", f"{where} "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message
