"""The background embedder of ``epochscope serve``: one thread, one run at a time.

Every :data:`SCAN_SECONDS` it walks LOGDIR (:func:`~epochscope.serve.runs.find_runs`), reads each
run's finished epochs and, for one run whose maps are behind its epochs, calls the public
:func:`epochscope.embed` (which caches its result in the run; incremental embedding, when the maps
have it, makes this cheaper without any change here). Runs the page looks at go first.

A run being recorded is read as any reader reads it: the epoch list is the list of epoch folders a
writer renamed into place (``epochs/NNNNNN``), so an epoch still being written
(``epochs/.partial-*``) is never seen, and the recorder's lock is never touched. A run that cannot be
read keeps its one-line error in the list; the others go on.

A run is checked as ``epochscope check`` checks it (:func:`epochscope.check_run`) when the server
first sees it, and again when a file it held changed or went away (each walk notes every file's
size, time and inode, reading none): a damaged run is listed as damaged, with what to do, and not
shown (its pictures would be stale, or fail); a run whose files changed is mapped again.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import DamagedFileError, NotARunError, RunError
from .._progress import observe
from .._text import printable
from ..run import open_run
from ..run.layout import CACHE_DIR, EPOCHS_DIR, MANIFEST_FILE, parse_epoch_name
from .runs import FoundRun, find_runs, relative_paths

__all__ = ["Embedder", "RunState", "SCAN_SECONDS", "RETRY_SECONDS"]

log = logging.getLogger("epochscope")

#: Seconds between two walks of LOGDIR when there is nothing to embed.
SCAN_SECONDS = 1.0
#: A run whose embedding failed is tried again after this long, or as soon as its epochs change.
RETRY_SECONDS = 30.0
#: Noting every run's files (:func:`run_files`) takes at most about this share of the time: in a folder
#: of many long runs, where one pass over their files takes T seconds, the next waits T / share (a
#: run new to the server is noted and checked at once all the same).
FILES_SHARE = 0.05
_ERROR_CHARS = 400


def one_line(err: BaseException) -> str:
    """An error as one line of at most a few hundred characters."""
    text = " ".join((str(err) or type(err).__name__).split())
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


@dataclass
class RunState:
    """What the server knows of one run (read and written under :attr:`Embedder.lock`)."""

    path: str
    folder: Path
    name: str = ""
    layers: list = field(default_factory=list)
    epochs: list = field(default_factory=list)
    layer: str | None = None
    #: The maps shown (an ``epochscope.Maps``), ``None`` before the first embedding (or for a run
    #: without activations, which shows curves and network only).
    maps: Any = None
    #: Grows by one each time what the page shows changes (new maps, or new epochs of a run without maps);
    #: pages see it plus :attr:`version_base` (:meth:`shown_version`).
    version: int = 0
    status: str = "waiting"
    error: str | None = None
    progress: tuple | None = None
    has_maps: bool = True
    failed: tuple | None = None  # (epochs, time) of the last failed embedding
    requested: list | None = None  # the epochs the maps were asked for
    shown_epochs: list | None = None  # a run without maps: the epochs its curves show
    seen: float = 0.0  # when the page last asked for this run
    #: The last version shown under this path by a run that went away: a run deleted and made again
    #: under the same name goes on from there, so pages and the payload cache never take its new data
    #: for the old run's (its own versions restarting at 1 did).
    version_base: int = 0
    identity: tuple | None = None  # the run folder's inode and its manifest's mtime: a replaced run is mapped again
    #: The run's files when it was last checked or walked (:func:`run_files`); ``None``: check it.
    files: dict | None = None
    checked: float = 0.0  # when it was last checked
    #: Why the run is not shown although it may have been (damaged, or it cannot be read now), else ``None``.
    damage: str | None = None
    #: What ``epochscope check`` warns of in a run that is shown (an epoch folder that is a link, which
    #: no reader follows, so the pictures leave it out), one line, else ``None``.
    warning: str | None = None

    def shown_version(self) -> int:
        """The version pages see: 0 before anything is shown, then growing, never repeating under this path."""
        return self.version_base + self.version if self.version else 0

    def as_json(self) -> dict[str, Any]:
        """The entry of ``GET /runs.json``."""
        mapped = [int(e) for e in self.maps.epochs] if self.maps is not None else []
        done, total = self.progress[1:] if self.progress else (None, None)
        return {"name": self.name, "path": self.path, "layers": list(self.layers), "epochs": list(self.epochs),
                "layer": self.layer, "mapped": mapped, "version": self.shown_version(),
                "ready": self.version > 0 and self.damage is None,
                "status": self.status, "error": self.error, "warning": self.warning,
                "progress": None if self.progress is None else {"step": self.progress[0], "done": done, "total": total}}


def run_files(folder: Path) -> dict[str, tuple[int, int, int, int]]:
    """``{path in the run: (inode, size, mtime_ns, mode)}`` of every file the pictures are drawn from: all
    but the caches (derived), the lock and hidden temporary files, in the finished epochs only (an epoch
    being written is not one yet). By ``lstat`` alone: no file is opened, no link followed."""
    files: dict[str, tuple[int, int, int, int]] = {}

    def walk(path: str, rel: str, depth: int) -> None:
        try:
            with os.scandir(path) as listing:
                entries = list(listing)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(".") or (not rel and entry.name == CACHE_DIR):
                continue
            if rel == EPOCHS_DIR + "/" and parse_epoch_name(entry.name) is None:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if depth < 4:  # epochs/NNNNNN/probe/FILE is the deepest a run holds
                    walk(entry.path, f"{rel}{entry.name}/", depth + 1)
            else:
                files[rel + entry.name] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)

    walk(os.fspath(folder), "", 0)
    return files


def _display_name(path: str, folder: Path) -> str:
    """The run's name as the page shows it: its path, control characters escaped (as the command line
    prints names), so a name cannot act on the text around it (reorder it, hide it, break its line)."""
    return printable(folder.resolve().name if path == "." else path)


class Embedder(threading.Thread):
    """The background thread: walks LOGDIR and embeds one run at a time (see the module doc).

    Parameters
    ----------
    logdir : the folder of runs.
    method : the map method (``"umap"``, ``"pca"``, ...), as :func:`epochscope.embed` takes it.
    layer : the layer to map in every run (default: each run's first recorded layer).
    options : the method's settings, passed to :func:`epochscope.embed`.
    scan_seconds : seconds between two walks when idle.
    """

    def __init__(self, logdir: str | Path, *, method: str = "umap", layer: str | None = None,
                 options: dict[str, Any] | None = None, scan_seconds: float = SCAN_SECONDS) -> None:
        super().__init__(name="epochscope serve: embedder", daemon=True)
        self.logdir = Path(os.path.abspath(logdir))
        self.method, self.layer, self.options = method, layer, dict(options or {})
        self.scan_seconds = scan_seconds
        self.lock = threading.Lock()
        self.runs: dict[str, RunState] = {}
        self.found: dict[str, FoundRun] = {}
        self._retired: dict[str, int] = {}  # path -> the last version shown by a run that went away
        self._files_due = 0.0  # when the runs' files are noted next (monotonic)
        self._files_cost = 0.0  # seconds the last walk spent noting them
        self._stop = threading.Event()
        self._wake = threading.Event()

    # -------------------------------------------------------------- read by the request threads
    def snapshot(self) -> list[dict[str, Any]]:
        """Every run's ``/runs.json`` entry, sorted by path."""
        with self.lock:
            return [self.runs[k].as_json() for k in sorted(self.runs)]

    def listed(self) -> dict[str, FoundRun]:
        """The runs found by the last walk, by path."""
        with self.lock:
            return dict(self.found)

    def shown(self, path: str) -> tuple[Any, int, RunState]:
        """``(maps, version, state)`` of one run, as one consistent pair; ``KeyError`` when not listed.
        Marks the run as looked at (it goes first in the queue)."""
        with self.lock:
            state = self.runs[path]
            state.seen = time.monotonic()
            self._wake.set()
            return state.maps, state.shown_version(), state

    def error_line(self, err: BaseException) -> str:
        """``err`` as a run's error line in the list: one line, paths relative to LOGDIR (none outside
        it), control characters escaped."""
        return printable(relative_paths(one_line(err), self.logdir))

    def stop(self) -> None:
        """Ask the thread to end after the embedding in progress (if any)."""
        self._stop.set()
        self._wake.set()

    # -------------------------------------------------------------- the thread
    def run(self) -> None:  # noqa: D102 (threading.Thread's)
        while not self._stop.is_set():
            try:
                busy = self.step()
            except Exception:  # the thread must not die: a surprise is logged, the walk goes on
                log.exception("serve: the embedder failed; trying again")
                busy = False
            if not busy:
                self._wake.wait(self.scan_seconds)
                self._wake.clear()

    def step(self) -> bool:
        """One walk of LOGDIR and at most one embedding; ``True`` when something was embedded."""
        found = {r.path: r for r in find_runs(self.logdir)}
        with self.lock:
            self.found = found
            for path in list(self.runs):
                if path not in found:
                    self._retired[path] = max(self._retired.get(path, 0), self.runs.pop(path).shown_version())
            for path, f in found.items():
                state = self.runs.get(path)
                if state is None or state.folder != f.folder:
                    if state is not None:
                        self._retired[path] = max(self._retired.get(path, 0), state.shown_version())
                    state = self.runs[path] = RunState(path, f.folder, name=_display_name(path, f.folder),
                                                       version_base=self._retired.get(path, 0))
                if f.error:
                    state.error, state.status = printable(f.error), "not shown"
        todo = []
        note_files = time.monotonic() >= self._files_due
        self._files_cost = 0.0
        for path, f in found.items():
            if f.error:
                continue
            work = self._refresh(path, f.folder, note_files)
            if work is not None:
                todo.append(work)
        if note_files:
            self._files_due = time.monotonic() + self._files_cost / FILES_SHARE
        if not todo:
            return False
        # The run the page looked at last goes first, then the others by path.
        todo.sort(key=lambda w: (-w[0].seen, w[0].path))
        state, run, epochs = todo[0]
        self._embed(state, run, epochs)
        return True

    def _refresh(self, path: str, folder: Path, note_files: bool = True):
        """Read one run's epochs; returns ``(state, run, epochs)`` when it needs embedding, else ``None``.
        ``note_files``: note its files (and check it if one changed); a run never noted is noted anyway."""
        state = self.runs.get(path)
        if state is None:
            return None
        try:
            run = open_run(folder)
            # A run deleted and recorded again (or copied in) under the same name may hold the same epoch
            # list: comparing epoch lists alone kept the old run's maps on screen.
            identity = (os.stat(folder).st_ino, os.stat(folder / MANIFEST_FILE).st_mtime_ns, run.manifest.created)
            layers = run.layers
            layer = self.layer or (layers[0] if layers else None)
            epochs_all = run.epochs
            with self.lock:
                state.layers, state.epochs = layers, epochs_all
            if layer is not None and layer not in layers:
                raise ValueError(f"layer {layer!r} is not recorded in this run (its layers: {', '.join(layers)})")
            epochs = run.layer_epochs(layer) if layer is not None else []
            files = None
            if note_files or state.files is None:
                t0 = time.perf_counter()
                files = run_files(folder)
                self._files_cost += time.perf_counter() - t0
        except (RunError, NotARunError, ValueError, OSError) as err:
            with self.lock:
                # Not shown while it cannot be read (the pictures would be stale), and checked when it can.
                state.error = state.damage = self.error_line(err)
                state.status, state.files = "cannot be read", None
                if isinstance(err, DamagedFileError):  # (its manifest): damage, told as the check's findings are
                    state.error = state.damage = self._damaged_line(self.error_line(err), path)
                    state.status = "damaged"
            return None
        if files is None:  # not noted this walk: shown as the last check found it
            if state.damage is not None:
                return None
        elif not self._check(state, folder, files):
            return None
        with self.lock:
            if state.identity is not None and state.identity != identity:
                state.requested, state.failed, state.shown_epochs = None, None, None
            state.identity = identity
            state.layer = layer
            state.has_maps = bool(epochs)
            if not epochs_all:
                state.error, state.status = None, "waiting for the first epoch"
                return None
            if not epochs:  # no activations (imported from checkpoints): curves and network only
                if state.shown_epochs != epochs_all:
                    state.shown_epochs = list(epochs_all)
                    state.version += 1
                state.error = None
                state.status = f"no activations recorded: curves and network, epochs {epochs_all[0]}–{epochs_all[-1]}"
                return None
            mapped = [int(e) for e in state.maps.epochs] if state.maps is not None else None
            requested = list(epochs)
            if mapped is not None and state.requested == requested:
                return None
            if state.failed and state.failed[0] == requested and time.monotonic() - state.failed[1] < RETRY_SECONDS:
                return None
            state.status = "queued"
        return state, run, requested

    def _check(self, state: RunState, folder: Path, files: dict) -> bool:
        """Whether the run may be shown. It is checked (:meth:`_damage`) when new to the server, when a file
        it held changed or went away, and every :data:`RETRY_SECONDS` while damaged; otherwise only its new
        files (new epochs) are noted. A run whose files changed, or that was not shown, is mapped again."""
        with self.lock:
            before, damaged, checked = state.files, state.damage, state.checked
        changed = before is not None and any(files.get(k) != v for k, v in before.items())
        if before is not None and not changed and (damaged is None or time.monotonic() - checked < RETRY_SECONDS):
            with self.lock:
                state.files = files
            return damaged is None
        damage, warning = self._damage(folder, state.path)
        with self.lock:
            state.files, state.checked, state.damage, state.warning = files, time.monotonic(), damage, warning
            if changed or damaged is not None:
                state.requested, state.failed, state.shown_epochs = None, None, None
            if damage is not None:
                state.error, state.status, state.progress = damage, "damaged", None
        if damage is not None and damage != damaged:
            log.warning("serve: %s: %s", printable(state.path), damage)
        return damage is None

    def _damage(self, folder: Path, path: str) -> tuple[str | None, str | None]:
        """``(damage, warning)``: the run's damage as one line with what to do (``None``: healthy), as
        ``epochscope check`` finds it (its problems), and what check warns of in it, one line (``None``:
        nothing). Its caches are left out: they are derived, and the embedding validates and rebuilds
        them; so are the warnings its ``--repair`` clears (a writer's leftovers, as a run being recorded
        has), which leave nothing out of the pictures."""
        from ..checking.api import inspect

        try:
            # check_run's own pass, without asking the lock who writes: the recorder's lock is never touched.
            report = inspect(folder, find_writer=False)
        except Exception as err:  # noqa: BLE001 (a run that cannot be checked is one line, the server goes on)
            return f"cannot be checked: {self.error_line(err)}", None
        where = "LOGDIR" if path == "." else f"LOGDIR/{path}"
        problems = [f for f in report.problems if f.path.split("/", 1)[0] != CACHE_DIR]
        if problems:
            return self._damaged_line(self._findings(problems, path), path), None
        repaired = {a.path for a in report.actions}
        warnings = [f for f in report.warnings if f.path.split("/", 1)[0] != CACHE_DIR and f.path not in repaired]
        if not warnings:
            return None, None
        # A few, not the first alone: a linked epoch folder also reads as an epoch missing, said first.
        line = f"warning: {self._findings(warnings, path, shown=3)}; `epochscope check {where}` says the same"
        return None, printable(relative_paths(line, self.logdir))

    def _damaged_line(self, findings: str, path: str) -> str:
        """``findings`` (the damaged files, named relative to LOGDIR) as the one line that a damaged run shows."""
        where = "LOGDIR" if path == "." else f"LOGDIR/{path}"
        line = (f"damaged: {findings}; not shown until repaired: `epochscope check {where}` "
                "says what is wrong and what its --repair can mend, or restore the files from a backup")
        return printable(relative_paths(line, self.logdir))

    @staticmethod
    def _findings(findings: list, path: str, shown: int = 1) -> str:
        """The first ``shown`` of ``findings`` as ``path/file: message`` (each cut to a few hundred
        characters), and how many more."""
        said = []
        for f in findings[:shown]:
            what = " ".join(f"{'' if path == '.' else path + '/'}{f.path}: {f.message}".split())
            said.append(what if len(what) <= 240 else what[:239] + "…")
        more = len(findings) - len(said)
        return "; ".join(said) + (f" (and {more} more)" if more else "")

    def _embed(self, state: RunState, run, epochs: list[int]) -> None:
        from ..maps.api import embed

        span = f"epochs {epochs[0]}–{epochs[-1]}" if len(epochs) > 1 else f"epoch {epochs[0]}"

        def report(desc: str, done: int, total: int | None) -> None:
            with self.lock:
                state.progress = (desc, done, total)
                state.status = f"embedding {span} ({self.method})" + (f": {done}/{total}" if total else "")

        with self.lock:
            state.status = f"embedding {span} ({self.method})"
            state.progress = None
        t0 = time.perf_counter()
        try:
            with observe(report):
                maps = embed(run, state.layer, self.method, epochs=epochs, progress=False, **self.options)
        except Exception as err:  # noqa: BLE001 (one run's failure is its error line; the server goes on)
            with self.lock:
                state.error, state.status, state.progress = self.error_line(err), "cannot be embedded", None
                state.failed = (epochs, time.monotonic())
            log.info("serve: %s: %s", printable(state.path), printable(one_line(err)))
            return
        seconds = time.perf_counter() - t0
        with self.lock:
            state.maps, state.requested = maps, epochs
            state.version += 1
            state.error, state.progress, state.failed = None, None, None
            state.status = f"up to date: {span} mapped in {seconds:.1f} s"
        log.info("serve: %s: %s mapped in %.1f s", printable(state.path), span, seconds)
