"""Check a run directory file by file, and repair what can be repaired without losing data.

:func:`check_run` validates the manifest, every array's shape and dtype against it, the
epoch sequence, each epoch's metrics row and the derived caches, and returns a
:class:`CheckReport` that says, per file, exactly what is wrong. ``repair=True`` then drops
what can be dropped safely: an incomplete or corrupt *trailing* epoch (never a good epoch
and never a damaged one in the middle of the run), unfinished ``.partial-*`` epoch folders
and temporary files left by killed writers, and stale, partial or corrupt cache entries.

Levels of a finding:

- ``problem``: reading this part of the run fails or gives wrong data; ``ok`` is False.
- ``warning``: harmless to readers but worth cleaning (leftovers of a killed process,
  stale caches, unknown files); ``repair`` removes leftovers and caches, never unknown files.
- ``note``: for information (a writer is recording right now, a layer added on resume).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import NotARunError, RunError
from .run import Manifest, Run
from .run.fileio import load_npz, read_npy_header
from .run.layout import CACHE_DIR, EPOCHS_DIR, LOCK_FILE, MANIFEST_FILE
from .run.lock import RunLock

__all__ = ["Finding", "RepairAction", "CheckReport", "check_run"]

log = logging.getLogger("epochscope")

LEVELS = ("problem", "warning", "note")
_EPOCH_DIR = re.compile(r"\d{6}")
_PARTIAL_EPOCH = re.compile(r"\.partial-(\d{6})-(\d+)(?:-.*)?")
_TRAILING_PID = re.compile(r"[-.](?:tmp-)?(\d+)$")
_EPOCH_FILES = {"probe", "test", "predictions.npy", "test_predictions.npy", "weights.npz", "metrics.json"}
_ROOT_NAMES = {MANIFEST_FILE, LOCK_FILE, "probe", "test", "reductions", EPOCHS_DIR, CACHE_DIR}
# Keys a cache entry's JSON may carry that tie it to the run; checked only when present.
_CACHE_IDENTITY = ("created", "probe_size", "test_size")


@dataclass(frozen=True)
class Finding:
    """One thing found wrong (or worth knowing) in a run.

    ``path`` is relative to the run folder, with ``/`` separators (``""`` is the run itself);
    ``epoch`` is set when the finding belongs to one epoch.
    """

    level: str
    path: str
    message: str
    epoch: int | None = None

    def __str__(self) -> str:
        return f"{self.level:<8} {self.path or '.'}: {self.message}"


@dataclass(frozen=True)
class RepairAction:
    """One change that ``repair=True`` makes (``done``) or would make (not ``done``)."""

    path: str
    what: str
    done: bool = False

    def __str__(self) -> str:
        return f"{'removed' if self.done else 'would remove'} {self.path}: {self.what}"


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check_run` found; ``str(report)`` is the text ``epochscope check`` prints.

    Attributes
    ----------
    path : the run folder.
    epochs : the finished epochs after any repair.
    findings : every :class:`Finding`, problems first.
    actions : the :class:`RepairAction` list: done when ``repaired``, else what repair would do.
    unrepairable : damage that repair leaves alone on purpose, with what to do about it.
    repaired : whether ``repair=True`` was asked for (and the actions were carried out).
    writer : the live process writing the run right now (``"pid 123"``), or ``None``.
    """

    path: Path
    epochs: tuple[int, ...] = ()
    findings: tuple[Finding, ...] = ()
    actions: tuple[RepairAction, ...] = ()
    unrepairable: tuple[str, ...] = ()
    repaired: bool = False
    writer: str | None = None

    @property
    def problems(self) -> list[Finding]:
        """The findings that make the run (partly) unreadable or wrong."""
        return [f for f in self.findings if f.level == "problem"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        """True when no problem remains (warnings and notes allowed)."""
        return not self.problems

    def about(self, path: str) -> list[Finding]:
        """The findings about one file or folder (relative path) or anything inside it."""
        path = path.rstrip("/")
        return [f for f in self.findings if f.path == path or f.path.startswith(path + "/")]

    def format(self) -> str:
        """The report as text: a summary line, then one line per finding and action."""
        epochs = self.epochs
        span = f"epochs {epochs[0]}..{epochs[-1]} ({len(epochs)})" if epochs else "no finished epochs"
        n_p, n_w = len(self.problems), len(self.warnings)
        verdict = "healthy" if self.ok else f"{n_p} problem{'s' * (n_p != 1)}"
        lines = [f"run {self.path}: {span}; {verdict}, {n_w} warning{'s' * (n_w != 1)}"]
        if self.writer:
            lines.append(f"being written right now by {self.writer}")
        lines += [f"  {f}" for f in self.findings]
        if self.actions:
            lines.append("repair:" if self.repaired else "`epochscope check RUN --repair` would:")
            lines += [f"  {a}" for a in self.actions]
        lines += [f"not repaired: {u}" for u in self.unrepairable]
        return "\n".join(lines)

    __str__ = format


def check_run(run: Run | str | os.PathLike[str], *, repair: bool = False) -> CheckReport:
    """Check a run directory and say, per file, exactly what is wrong.

    Parameters
    ----------
    run : a :class:`~epochscope.Run` or the path of a run folder.
    repair : drop an incomplete or corrupt trailing epoch (repeatedly, while the last epoch
        is damaged), unfinished ``.partial-*`` epoch folders and temporary files left by
        killed writers, and stale, partial or corrupt cache entries. A damaged epoch
        followed by good ones is never dropped; the report says what to do instead.
        Repairing takes the run's writer lock, so it is refused (``RunLockedError``) while
        a recorder is writing.

    Returns
    -------
    CheckReport : ``report.ok`` is True when no problem remains; ``print(report)`` explains.

    Raises
    ------
    NotARunError : the folder does not exist or holds nothing of a run.
    RunLockedError : ``repair=True`` while another process writes the run.

    Example::

        report = epochscope.check_run("runs/mnist")
        if not report.ok:
            print(report)                          # what is wrong, file by file
            epochscope.check_run("runs/mnist", repair=True)
    """
    path = Path(run.path if isinstance(run, Run) else run)
    if not path.is_dir():
        raise NotARunError(f"{path}: no such folder; give the folder a recorder wrote (it holds {MANIFEST_FILE})")
    if not repair:
        return _Checker(path).run()
    lock = RunLock(path) if (path / MANIFEST_FILE).is_file() else None
    if lock is not None:
        lock.acquire()  # RunLockedError names the writer; nothing is touched
    try:
        planned = _Checker(path, holding_lock=lock is not None).run()
        done = tuple(_carry_out(path, action) for action in planned.actions)
    finally:
        if lock is not None:
            lock.release()
    after = _Checker(path).run()
    return CheckReport(path=path, epochs=after.epochs, findings=after.findings, actions=done,
                       unrepairable=after.unrepairable, repaired=True, writer=after.writer)


# --------------------------------------------------------------------------- repair


def _carry_out(root: Path, action: RepairAction) -> RepairAction:
    target = root / action.path
    if target.is_symlink():  # remove the link only: never follow it out of the run
        target.unlink()
    elif target.is_dir():
        if target.parent.name == EPOCHS_DIR and _EPOCH_DIR.fullmatch(target.name):
            # Renaming first makes the drop atomic for readers: the epoch disappears at once,
            # and a kill during the deletion leaves an ordinary .partial folder.
            hidden = target.with_name(f".partial-{target.name}-{os.getpid()}-repair")
            os.rename(target, hidden)
            target = hidden
        shutil.rmtree(target, ignore_errors=True)
    elif target.exists():
        target.unlink()
    log.info("check --repair: removed %s (%s)", action.path, action.what)
    return RepairAction(action.path, action.what, done=True)


# --------------------------------------------------------------------------- checking


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process, or an unparseable number: leave it alone
    return True


def _lock_holder(root: Path) -> str | None:
    """Who holds the run's writer lock right now (``"pid 123"``), or ``None``; touches nothing."""
    lock = root / LOCK_FILE
    if not lock.is_file():
        return None
    try:
        import fcntl
    except ImportError:  # Windows: writers take no lock there
        return None
    try:
        with open(lock, encoding="utf-8", errors="replace") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return fh.read(100).strip() or "another process"
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    except OSError:
        return None
    return None


def _is_temporary(name: str) -> bool:
    """Names of files written under a temporary name and renamed when complete."""
    return name.startswith(".") and (".tmp-" in name or name.startswith(".tmp") or name.startswith(".partial"))


def _pid_of(name: str) -> int | None:
    m = _TRAILING_PID.search(name)
    return int(m.group(1)) if m else None


class _Checker:
    """One pass over a run; collects findings and the repair plan."""

    def __init__(self, root: Path, *, holding_lock: bool = False) -> None:
        self.root = root
        self.findings: list[Finding] = []
        self.actions: list[RepairAction] = []
        self.unrepairable: list[str] = []
        # While repair holds the lock itself, no other writer can be at work.
        self.writer = None if holding_lock else _lock_holder(root)
        self.manifest: Manifest | None = None
        self.epochs: list[int] = []

    # -- recording findings
    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() if path != self.root else ""

    def add(self, level: str, path: Path | str, message: str, epoch: int | None = None) -> None:
        rel = path if isinstance(path, str) else self.rel(path)
        self.findings.append(Finding(level, rel, message, epoch))

    def plan(self, path: Path, what: str) -> None:
        self.actions.append(RepairAction(self.rel(path), what))

    def leftover(self, path: Path, what: str, *, live: bool) -> None:
        """A temporary file or folder: in progress when its writer lives, else removable."""
        if live:
            self.add("note", path, f"{what} being written right now (ignored by readers)")
        else:
            self.add("warning", path, f"{what} left by an interrupted writer (ignored by readers)")
            self.plan(path, f"leftover {what}")

    # -- the pass
    def run(self) -> CheckReport:
        if self._manifest():
            self._run_files()
            bad = self._epochs()
            self._cache(self._plan_drops(bad))
        order = {level: i for i, level in enumerate(LEVELS)}
        findings = sorted(self.findings, key=lambda f: (order[f.level], f.epoch if f.epoch is not None else -1, f.path))
        return CheckReport(path=self.root, epochs=tuple(self.epochs), findings=tuple(findings),
                           actions=tuple(self.actions), unrepairable=tuple(self.unrepairable),
                           writer=self.writer)

    def _manifest(self) -> bool:
        root = self.root
        if not (root / MANIFEST_FILE).exists():
            if not (root / EPOCHS_DIR).is_dir() and not (root / "probe").is_dir():
                raise NotARunError(
                    f"{root} is not an epochscope run: {MANIFEST_FILE} is missing. "
                    "Point at the folder given as run_dir when recording (e.g. OUT/run for the demo)."
                )
            has_epochs = (root / EPOCHS_DIR).is_dir() and any(
                _EPOCH_DIR.fullmatch(p.name) for p in (root / EPOCHS_DIR).iterdir())
            hint = ("the manifest was deleted: the epochs cannot be read without it; restore it from a backup"
                    if has_epochs else
                    "the run's creation was interrupted before any epoch finished; record into this folder "
                    "again and the recorder starts it afresh")
            self.add("problem", MANIFEST_FILE, f"missing; {hint}")
            return False
        try:
            self.manifest = Run(root).manifest
        except RunError as err:
            self.add("problem", MANIFEST_FILE, _strip_where(str(err), root / MANIFEST_FILE))
            return False
        for p in sorted(root.iterdir()):
            if _is_temporary(p.name):
                self.leftover(p, "temporary file", live=self.writer is not None)
            elif p.name not in _ROOT_NAMES:
                self.add("warning", p, "unknown file or folder in the run (ignored; not removed by repair)")
        return True

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
            self.add("problem", path, _strip_where(str(err), rel), epoch)
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
        if values is None or not len(values):
            return
        n = len(self.manifest.class_names)
        lo, hi = int(values.min()), int(values.max())
        if lo < low or hi >= n:
            self.add("problem", path, f"{what} range {lo}..{hi}, expected {low}..{n - 1} ({n} class names)", epoch)

    def _run_files(self) -> None:
        m, root = self.manifest, self.root
        labels = self.array(root / "probe" / "labels.npy", (m.probe_size,), ("int64",),
                            f"probe labels: one int64 class per probe example, {m.probe_size}", load=True)
        self.classes(root / "probe" / "labels.npy", labels, 0, "labels")
        if m.has_probe_inputs:
            self.array(root / "probe" / "inputs.npy", (m.probe_size, *(m.input_shape or ())), ("float16",),
                       "probe inputs kept for thumbnails")
        if m.test_size:
            labels = self.array(root / "test" / "labels.npy", (m.test_size,), ("int64",),
                                f"test labels: one int64 class per test example, {m.test_size}", load=True)
            self.classes(root / "test" / "labels.npy", labels, 0, "labels")
            if m.has_test_inputs:
                self.array(root / "test" / "inputs.npy", (m.test_size, *(m.input_shape or ())), ("float16",),
                           "test inputs kept for thumbnails")
        for split in ("probe", "test"):
            folder = root / split
            if not folder.is_dir():
                continue
            for p in sorted(folder.iterdir()):
                if _is_temporary(p.name):
                    self.leftover(p, "temporary file", live=self.writer is not None)
                elif p.name not in ("labels.npy", "inputs.npy") or (split == "test" and not m.test_size):
                    self.add("warning", p, "unknown file (ignored; not removed by repair)")
        self._reductions()

    def _reductions(self) -> None:
        folder = self.root / "reductions"
        expected = {}
        for info in self.manifest.layers:
            if info.reduction and "project" in str(info.reduction.get("method", "")):
                expected[f"{info.key}.npy"] = info
        present = {p.name: p for p in sorted(folder.iterdir())} if folder.is_dir() else {}
        for name, info in expected.items():
            path = folder / name
            if name not in present:
                self.add("warning", path, f"missing projection matrix of layer '{info.name}'; a resumed recording "
                         "draws it again from the seed in the manifest")
                continue
            self.array(path, None, ("float32",), f"projection matrix of layer '{info.name}'")
            try:
                with open(path, "rb") as fh:
                    shape, _, _ = read_npy_header(fh, os.fstat(fh.fileno()).st_size, name)
                if len(shape) != 2 or shape[1] != info.width:
                    self.add("problem", path, f"shape {shape}, expected (n, {info.width}) "
                             f"(projection of layer '{info.name}' to {info.width} values)")
            except (RunError, OSError):
                pass  # already reported by array()
        for name, p in present.items():
            if _is_temporary(name):
                self.leftover(p, "temporary file", live=self.writer is not None)
            elif name not in expected:
                self.add("note", p, "projection matrix of no recorded layer (a layer recorded before the "
                         "run's manifest was updated, or a reduction that was later turned off)")

    # -- epochs
    def _epochs(self) -> set[int]:
        folder = self.root / EPOCHS_DIR
        if not folder.is_dir():
            self.add("problem", EPOCHS_DIR, "missing folder (it holds every recorded epoch)")
            return set()
        epochs = []
        for p in sorted(folder.iterdir()):
            partial = _PARTIAL_EPOCH.fullmatch(p.name)
            if _EPOCH_DIR.fullmatch(p.name) and p.is_dir():
                epochs.append(int(p.name))
            elif partial:
                live = self.writer is not None and _pid_alive(int(partial.group(2)))
                self.leftover(p, f"unfinished epoch {int(partial.group(1))}", live=live)
            elif _is_temporary(p.name):
                self.leftover(p, "temporary file", live=self.writer is not None)
            else:
                self.add("warning", p, "unknown entry among the epochs (ignored; not removed by repair)")
        self.epochs = epochs
        if epochs:
            missing = sorted(set(range(epochs[0], epochs[-1] + 1)) - set(epochs))
            if missing:
                self.add("problem", EPOCHS_DIR, f"epochs are not contiguous: {_spans(missing)} missing between "
                         f"{epochs[0]} and {epochs[-1]}")
            if epochs[0] != 0:
                self.add("warning", EPOCHS_DIR, f"the first recorded epoch is {epochs[0]}, not 0 (the untrained model)")
        bad: set[int] = set()
        first_seen: dict[str, int] = {}
        for epoch in epochs:
            before = sum(f.level == "problem" for f in self.findings)
            self._epoch(epoch, folder / f"{epoch:06d}", first_seen)
            if sum(f.level == "problem" for f in self.findings) > before:
                bad.add(epoch)
        start = first_seen.get("weights")
        for epoch in epochs[:epochs.index(start)] if start is not None else []:
            self.add("warning", folder / f"{epoch:06d}" / "weights.npz",
                     f"missing, while epochs from {start} on hold weights (recorded from epoch {start} on only, "
                     "or this file was deleted)", epoch)
        return bad

    def _epoch(self, epoch: int, folder: Path, first_seen: dict[str, int]) -> None:
        m = self.manifest
        splits = [("probe", m.probe_size)] + ([("test", m.test_size)] if m.test_size else [])
        for split, n in splits:
            for info in m.layers:
                path = folder / split / f"{info.key}.npy"
                tag = f"layer:{info.name}"
                if tag not in first_seen and not any((folder / s / f"{info.key}.npy").exists() for s, _ in splits):
                    continue  # no file of this layer yet: a layer added on resume, reported once below
                first_seen.setdefault(tag, epoch)
                self.array(path, (n, info.width), ("float16",),
                           f"layer '{info.name}' on the {split} set: {n} examples × {info.width} values", epoch)
        for info in m.layers:
            start = first_seen.get(f"layer:{info.name}")
            if start is None and epoch == self.epochs[-1]:
                self.add("problem", folder / "probe" / f"{info.key}.npy",
                         f"missing: layer '{info.name}' is in the manifest but no epoch holds its outputs", epoch)
            elif start is not None and start == epoch and epoch != self.epochs[0]:
                self.add("warning", folder / "probe" / f"{info.key}.npy",
                         f"layer '{info.name}' has outputs from epoch {epoch} on only (added when the run was resumed, "
                         f"or the files of epochs {_spans(self.epochs[:self.epochs.index(epoch)])} were deleted); "
                         "reading it at those epochs fails", epoch)
        for split, n in splits:
            name = "predictions.npy" if split == "probe" else "test_predictions.npy"
            values = self.array(folder / name, (n,), ("int64",),
                                f"predicted class of every {split} example, -1 where unknown", epoch, load=True)
            self.classes(folder / name, values, -1, "predicted classes", epoch)
        self._weights(epoch, folder / "weights.npz", first_seen)
        self._metrics(epoch, folder / "metrics.json")
        known = {f"{info.key}.npy" for info in m.layers}
        for p in sorted(folder.iterdir()):
            if p.name in ("probe", "test") and p.is_dir():
                for q in sorted(p.iterdir()):
                    if q.name not in known or (p.name == "test" and not m.test_size):
                        self.add("warning", q, "unknown file in the epoch (ignored; not removed by repair)", epoch)
            elif p.name not in _EPOCH_FILES:
                self.add("warning", p, "unknown file in the epoch (ignored; not removed by repair)", epoch)

    def _weights(self, epoch: int, path: Path, first_seen: dict[str, int]) -> None:
        if not path.exists():
            if "weights" in first_seen:
                self.add("problem", path, f"missing (epochs from {first_seen['weights']} on recorded weights)", epoch)
            return
        first_seen.setdefault("weights", epoch)
        try:
            arrays = load_npz(path)
        except RunError as err:
            self.add("problem", path, _strip_where(str(err), path), epoch)
            return
        odd = [f"{k} ({a.dtype})" for k, a in arrays.items() if a.dtype != np.float32]
        if odd:
            self.add("problem", path, f"arrays that are not float32: {', '.join(odd[:5])}", epoch)

    def _metrics(self, epoch: int, path: Path) -> None:
        if not path.is_file():
            self.add("problem", path, "missing (the epoch's metrics row)", epoch)
            return
        try:
            with open(path, encoding="utf-8") as fh:
                row = json.load(fh)
        except (OSError, ValueError, RecursionError) as err:
            self.add("problem", path, f"unreadable JSON ({type(err).__name__}: {err})", epoch)
            return
        if not isinstance(row, dict):
            self.add("problem", path, f"expected a JSON object (one metrics row), got {type(row).__name__}", epoch)
            return
        if row.get("epoch") != epoch or isinstance(row.get("epoch"), bool):
            self.add("problem", path, f"\"epoch\" is {row.get('epoch')!r}, expected {epoch} (the folder's epoch)", epoch)
        odd = [k for k, v in row.items() if not (v is None or isinstance(v, (int, float, str, bool)))]
        if odd:
            self.add("warning", path, f"values that are not numbers or text: {', '.join(odd[:5])}", epoch)
        diverged = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
        if diverged:
            self.add("note", path, f"non-finite {', '.join(diverged[:5])} (the model may have diverged)", epoch)

    def _plan_drops(self, bad: set[int]) -> set[int]:
        dropped: set[int] = set()
        for epoch in reversed(self.epochs):
            if epoch not in bad:
                break
            dropped.add(epoch)
            self.plan(self.root / EPOCHS_DIR / f"{epoch:06d}", f"damaged trailing epoch {epoch} (see the problems above)")
        middle = sorted(bad - dropped)
        if middle:
            self.unrepairable.append(
                f"epoch{'s' * (len(middle) > 1)} {_spans(middle)} damaged but followed by good epochs; repair never "
                "drops a good epoch. Restore the files named above from a backup, or delete the damaged epochs' "
                f"folders and everything after them from {self.root / EPOCHS_DIR} and record again from there."
            )
        if self.manifest is not None and (self.root / EPOCHS_DIR).is_dir():
            gaps = any(f.path == EPOCHS_DIR and "contiguous" in f.message for f in self.findings)
            if gaps:
                self.unrepairable.append("missing epochs in the middle cannot be recreated; record into a new run "
                                         "to get a contiguous sequence")
        return dropped

    # -- caches
    def _cache(self, dropped: set[int]) -> None:
        folder = self.root / CACHE_DIR
        if not folder.is_dir():
            return
        for kind in sorted(folder.iterdir()):
            if kind.is_dir() and not _is_temporary(kind.name):
                for entry in sorted(kind.iterdir()):
                    self._cache_entry(entry, dropped)
            else:
                self._cache_entry(kind, dropped)

    def _cache_entry(self, entry: Path, dropped: set[int]) -> None:
        if _is_temporary(entry.name):
            pid = _pid_of(entry.name)
            self.leftover(entry, "partial cache entry", live=pid is not None and _pid_alive(pid))
            return
        files = [entry] if entry.is_file() else sorted(p for p in entry.rglob("*") if p.is_file())
        if not files:
            self.add("warning", entry, "empty cache entry (recomputed when needed)")
            self.plan(entry, "empty cache entry")
            return
        broken, stale = [], []
        for path in files:
            error, doc = _read_cache_file(path)
            if error:
                broken.append(f"{self.rel(path)}: {error}")
            if isinstance(doc, dict):
                stale += self._stale_reasons(doc, dropped)
        if broken:
            self.add("problem", entry, "corrupt cache entry: " + "; ".join(broken[:3]))
            self.plan(entry, "corrupt cache entry (recomputed when needed)")
        elif stale:
            self.add("warning", entry, "stale cache entry: " + "; ".join(dict.fromkeys(stale)))
            self.plan(entry, "stale cache entry (recomputed when needed)")

    def _stale_reasons(self, doc: dict[str, Any], dropped: set[int]) -> Iterator[str]:
        m = self.manifest
        layer = doc.get("layer")
        if isinstance(layer, str) and layer not in [info.name for info in m.layers]:
            yield f"layer '{layer}' is not recorded in this run"
        listed = doc.get("epochs")
        if isinstance(listed, list) and all(isinstance(e, int) and not isinstance(e, bool) for e in listed):
            gone = sorted(set(listed) - set(self.epochs))
            if gone:
                yield f"built from epoch{'s' * (len(gone) > 1)} {_spans(gone)} that the run no longer holds"
            doomed = sorted(set(listed) & dropped)
            if doomed:
                yield f"built from damaged epoch{'s' * (len(doomed) > 1)} {_spans(doomed)}, which repair drops"
        for key in _CACHE_IDENTITY:
            if key in doc and doc[key] != getattr(m, key):
                yield f"{key} {doc[key]!r} differs from the run's {getattr(m, key)!r} (the run was recreated)"


def _read_cache_file(path: Path) -> tuple[str | None, Any]:
    """``(error, parsed JSON)`` for one cache file; files of unknown kinds are accepted as they are."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            with open(path, "rb") as fh:
                read_npy_header(fh, os.fstat(fh.fileno()).st_size, path.name)
        elif suffix == ".npz":
            load_npz(path)
        elif suffix == ".json":
            with open(path, encoding="utf-8") as fh:
                return None, json.load(fh)
    except RunError as err:
        return _strip_where(str(err), path.name), None
    except (OSError, ValueError, RecursionError) as err:
        return f"unreadable ({type(err).__name__}: {err})", None
    return None, None


def _strip_where(message: str, where: Path | str) -> str:
    """Drop a leading ``"<path>: "`` from an error message (the finding carries the path)."""
    for prefix in (f"{where}: ", f"{where} "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def _spans(numbers: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1..3, 7"``."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and runs[-1][1] == n - 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in runs)
