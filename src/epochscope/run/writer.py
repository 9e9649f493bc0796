"""Writing a run directory: :class:`RunWriter` creates or resumes a run and appends epochs
through :class:`EpochBuilder`.

An epoch is written into ``epochs/.partial-NNNNNN-PID/`` and renamed to ``epochs/NNNNNN``
when complete, so the rename is the commit: a process killed at any instant leaves either
the whole epoch or none of it. The list of epochs is the list of those folders; nothing
else needs updating. A writer holds the run's :class:`~epochscope.run.lock.RunLock`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import RunError
from .fileio import (
    MAX_JSON_BYTES,
    fsync_dir,
    is_storage_error,
    json_bytes,
    json_default,
    load_npy,
    read_json,
    save_npy_atomic,
    storage_error,
    storage_failure,
    storage_hint,
    write_bytes_atomic,
    write_json_atomic,
)
from .layout import (
    CACHE_DIR,
    EPOCHS_DIR,
    LOCK_FILE,
    MANIFEST_FILE,
    REDUCTIONS_DIR,
    ROOT_NAMES,
    SPLIT_FILES,
    SPLITS,
    RunLayout,
    is_temporary,
    layer_file,
    layer_key,
    metrics_file,
    predictions_file,
    temporary_pid,
    weights_file,
)
from .lock import RunLock, pid_alive
from .manifest import LayerInfo, Manifest
from .reader import MAX_METRICS_BYTES, Run
from .texts import bound_texts, check_texts
from .timeline import EPOCHS_DONE_KEY, RECORD_UNITS, STEP_KEY, check_time_point

__all__ = ["EpochBuilder", "RunWriter"]

log = logging.getLogger("epochscope")


class RunWriter:
    """Appends epochs to a run directory, creating it or resuming it.

    Used by the recorders and importers; users rarely need it directly. Holding a writer
    holds an exclusive lock on the run, so two processes cannot interleave epochs.

    Example::

        with RunWriter.open("runs/x", framework="numpy", labels=y, class_names=["a", "b"]) as w:
            with w.epoch(w.next_epoch) as ep:
                ep.set_activations("hidden", acts)       # (n_probe, width)
                ep.set_metrics({"loss": 0.3})
    """

    def __init__(self, path: Path, manifest: Manifest, lock: RunLock) -> None:
        self.path = path
        #: Every path inside this run (see :mod:`epochscope.run.layout`).
        self.layout = RunLayout(path)
        self._manifest = manifest
        self._lock = lock
        self.run = Run(path)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        framework: str,
        labels: np.ndarray,
        class_names: Sequence[str],
        test_labels: np.ndarray | None = None,
        probe_inputs: np.ndarray | None = None,
        test_inputs: np.ndarray | None = None,
        info: Mapping[str, Any] | None = None,
        resume: bool = True,
        fingerprints: Mapping[str, str] | None = None,
        overwrite: bool = False,
        probe_texts: Sequence[str] | None = None,
        test_texts: Sequence[str] | None = None,
    ) -> RunWriter:
        """Create the run at ``path``, or reopen it to append (``resume=True``).

        Resuming checks that the probe and test labels, the classes and the inputs'
        ``fingerprints`` (``{"probe": ..., "test": ...}`` from
        :func:`~epochscope.run.manifest.inputs_fingerprint`; stored when the run is created)
        match what the run holds, so other examples cannot be appended to an old run by mistake.
        ``overwrite=True`` removes the run the folder holds and starts a fresh one; it removes
        only a folder that opens as an epochscope run (or one a killed writer left half-created)
        and refuses, removing nothing, a folder that holds anything else.
        ``probe_texts`` / ``test_texts``: one text per example, kept in a new run as
        ``RUN/<split>/texts.json`` (bounded, see :mod:`epochscope.run.texts`); a resumed run
        keeps the texts it holds.
        A run holding a link where one of its own files or folders belongs is refused: a writer
        never writes through a link. Raises :class:`RunError` with the reason,
        :class:`~epochscope.StorageError` when the file system refuses, and ``ValueError``, writing
        nothing, when the new run's manifest would be larger than readers read (millions of class names).
        """
        path = Path(path)
        labels = np.asarray(labels, dtype=np.int64)
        test_labels = None if test_labels is None else np.asarray(test_labels, dtype=np.int64)
        texts = {"probe": None if probe_texts is None else check_texts(probe_texts, len(labels), "probe_texts"),
                 "test": None if test_texts is None or test_labels is None
                 else check_texts(test_texts, len(test_labels), "test_texts")}
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            if is_storage_error(err):
                raise storage_error(err, path, "create") from err
            raise
        _refuse_links(path)
        lock = RunLock(path)
        lock.acquire()
        try:
            if overwrite:
                _remove_run(path)
            if RunLayout(path).manifest.exists():
                existing = Run(path)
                if not resume:
                    raise RunError(
                        f"{path} already holds a run (epochs {existing.epochs}); pass resume=True to append "
                        "to it, overwrite=True to start a fresh run in its place, or choose another folder"
                    )
                _check_resume(existing, labels, class_names, test_labels, fingerprints or {})
                manifest = existing.manifest
            else:
                if not _is_interrupted_creation(path):
                    raise RunError(f"{path} exists, is not empty and holds no {MANIFEST_FILE}; "
                                   "choose an empty or new folder")
                manifest = _create(path, framework, labels, class_names, test_labels, probe_inputs, test_inputs, info,
                                   fingerprints or {}, texts)
            _remove_partials(path)
            return cls(path, manifest, lock)
        except BaseException as err:
            lock.release()
            if is_storage_error(err):
                raise storage_error(err, path, "write the run") from err
            raise

    # -- context / lifetime
    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the run's lock. Safe to call twice."""
        self._lock.release()

    def hand_over(self, finished: Callable[[], bool], give_up: Callable[[], None]) -> None:
        """Let the next writer in this process take the run over once ``finished()`` says this
        writer's training ended without closing it; ``give_up()`` is called first (see
        :meth:`~epochscope.run.lock.RunLock.hand_over`)."""
        self._lock.hand_over(finished, give_up)

    # -- state
    @property
    def manifest(self) -> Manifest:
        """The run's :class:`~epochscope.Manifest` (layers declared so far included)."""
        return self._manifest

    @property
    def epochs(self) -> list[int]:
        """The finished epochs on disk, ascending (what a reader of the run sees)."""
        return self.run.epochs

    @property
    def next_epoch(self) -> int:
        """The epoch number that follows the last finished one (0 for a new run)."""
        epochs = self.epochs
        return epochs[-1] + 1 if epochs else 0

    def declare_layer(self, name: str, output_shape: Sequence[int], width: int,
                      reduction: Mapping[str, Any] | None) -> LayerInfo:
        """Add a layer to the manifest, or check that it matches what the run already holds
        (its shape, stored width and reduction, seed included). ``ValueError``, the run unchanged,
        when the manifest would grow larger than readers read."""
        shape = tuple(int(s) for s in output_shape)
        for info in self._manifest.layers:
            if info.name == name:
                if info.output_shape != shape or info.width != width:
                    raise RunError(
                        f"layer '{name}' outputs {shape} (stored width {width}) but the run at {self.path} "
                        f"recorded {info.output_shape} (width {info.width}); record into a new folder"
                    )
                if not _same_reduction(info.reduction, reduction):
                    raise RunError(
                        f"layer '{name}' would be stored {describe_reduction(reduction)} but the run at {self.path} "
                        f"stored it {describe_reduction(info.reduction)}; epochs reduced otherwise are not comparable. "
                        "Resume with the same reduce= and seed=, or record into a new folder"
                    )
                return info
        info = LayerInfo(name=name, key=layer_key(name), output_shape=shape, width=int(width),
                         reduction=dict(reduction) if reduction else None)
        self._save_manifest(self._manifest.with_layer(info), f"adding layer '{name}'", f"Layer '{name}' was not added")
        return info

    def check_layers(self, names: Sequence[str],
                     planned_reduction: Callable[[LayerInfo], Mapping[str, Any] | None] | None = None) -> None:
        """Refuse, before anything is recorded, a resume that would leave out a layer the run holds
        or store one of them otherwise.

        ``names``: the layers the recorder will record (new ones are added from the next epoch
        on, which is allowed). ``planned_reduction(info)``: the reduction the recorder would
        apply to a recorded layer of ``info.output_shape`` (``None``: stored as is).
        """
        held = [info.name for info in self._manifest.layers]
        left_out = [n for n in held if n not in set(names)]
        if left_out and self.epochs:
            raise RunError(
                f"cannot resume {self.path}: it holds layers {', '.join(map(repr, held))} at every epoch but this "
                f"recorder leaves out {', '.join(map(repr, left_out))}; every epoch must hold every recorded layer. "
                "Record those layers too, or record into a new folder"
            )
        if planned_reduction is None:
            return
        for info in self._manifest.layers:
            if info.name in set(names):
                planned = planned_reduction(info)
                # The seed is not compared: a resumed layer is projected with the run's recorded seed
                # (its stored matrix, or the projection drawn again from that seed), whatever is given now.
                if not _same_reduction(info.reduction, planned):
                    raise RunError(
                        f"cannot resume {self.path}: layer '{info.name}' was stored {describe_reduction(info.reduction)} "
                        f"but these settings store it {describe_reduction(planned)}; epochs reduced otherwise "
                        "are not comparable. Resume with the run's reduce=, tokens= and widths, or record into a "
                        "new folder"
                    )

    def set_record_unit(self, unit: str) -> None:
        """Number this run's records by ``unit`` (``"step"``: records inside epochs, schema 2).

        Allowed while the run holds no record, or when it already counts ``unit``; a run of
        epoch-numbered records cannot switch (its numbers would mean two things), and the
        message says to record into a new folder. Written atomically.
        """
        if unit not in RECORD_UNITS:
            raise ValueError(f"record_unit: expected one of {RECORD_UNITS}, got {unit!r}")
        held = self._manifest.record_unit
        if held == unit:
            return
        if self.epochs:
            what = {"epoch": "once an epoch (its records are numbered by epoch)",
                    "step": "every N steps (its records are numbered by optimizer step)"}
            raise RunError(f"cannot resume {self.path}: it was recorded {what[held]}, and these settings record "
                           f"{what[unit]}; one run cannot mix both numberings. Record into a new folder, or resume "
                           f"with the run's own setting ({'every_n_steps=N' if held == 'step' else 'no every_n_steps'})")
        self._save_manifest(self._manifest.with_record_unit(unit), f"numbering the records by {unit}",
                            f"The records are not numbered by {unit}")

    def update_info(self, items: Mapping[str, Any]) -> None:
        """Add ``items`` to the manifest's ``info`` (facts decided while recording, such as the
        one-output threshold), written atomically."""
        keys = ", ".join(map(repr, items))
        self._save_manifest(dataclasses.replace(self._manifest, info={**self._manifest.info, **dict(items)}),
                            f"adding {keys} to the run's info", "Nothing was added to the info")

    def _save_manifest(self, manifest: Manifest, change: str, not_done: str) -> None:
        """Write ``manifest`` (atomically) as the run's; one larger than readers read raises
        ``ValueError`` (see :func:`_manifest_bytes`) and leaves the run as it was."""
        data = _manifest_bytes(manifest, self.layout.manifest, change,
                               f"{not_done}; the run is unchanged and every finished epoch is kept")
        write_bytes_atomic(self.layout.manifest, data)
        self._manifest = manifest
        self.run.manifest = manifest

    def reduction_matrix(self, name: str) -> np.ndarray | None:
        """The stored projection matrix of a layer, or ``None`` if none was saved yet."""
        path = self.layout.reduction(layer_key(name))
        return load_npy(path, mmap=False, root=self.path) if path.exists() or path.is_symlink() else None

    def save_reduction_matrix(self, name: str, matrix: np.ndarray) -> None:
        """Store a layer's projection matrix so every later epoch (and a resume) uses the same one."""
        self.layout.reductions_dir.mkdir(exist_ok=True)
        save_npy_atomic(self.layout.reduction(layer_key(name)), matrix)

    def epoch(self, epoch: int, *, replace: bool = False) -> EpochBuilder:
        """Start writing ``epoch``; commit by leaving the ``with`` block (or ``commit()``).

        An epoch the run already holds is refused, unless ``replace=True``: then committing it
        replaces that epoch and every later one (training resumed from an earlier checkpoint),
        and drops the maps cache, whose entries name epochs, not their contents.
        """
        epoch = int(epoch)
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if epoch in self.epochs and not replace:
            raise ValueError(
                f"epoch {epoch} is already recorded in {self.path} (epochs {self.epochs[0]}..{self.epochs[-1]}); "
                f"the next epoch to record is {self.next_epoch}; to start a fresh run in this folder pass "
                "overwrite=True, to replace this epoch and the later ones replace_epochs=True"
            )
        return EpochBuilder(self, epoch, replace=replace)


#: What a recorder's settings decide of a layer's reduction (the seed and the projection's kind
#: are the run's own: a resumed layer is reduced as the run recorded it).
_SETTINGS_KEYS = ("method", "from", "to", "tokens")


def _same_reduction(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether two layer reductions store the same values, as far as a recorder's settings decide them."""
    a, b = dict(a or {}), dict(b or {})
    return all(a.get(k) == b.get(k) for k in _SETTINGS_KEYS)


def describe_reduction(reduction: Mapping[str, Any] | None) -> str:
    """A layer's reduction as words: ``"as is"`` or ``"by project from 25088 to 512 values (seed 0)"``."""
    if not reduction:
        return "as is (no reduction)"
    r = dict(reduction)
    return f"by {r.get('method')} from {r.get('from')} to {r.get('to')} values (seed {r.get('seed')})"


def _refuse_links(path: Path) -> None:
    """A writer never writes through a link: refuse a run whose own entries are links."""
    for name in (MANIFEST_FILE, LOCK_FILE, EPOCHS_DIR, REDUCTIONS_DIR, CACHE_DIR, *SPLITS):
        entry = path / name
        if entry.is_symlink():
            raise RunError(f"{entry} is a link (to {os.readlink(entry)}); epochscope never writes through a link in a "
                           "run. Replace it by a real file or folder, or record into a new folder")


def _check_resume(run: Run, labels: np.ndarray, class_names: Sequence[str], test_labels: np.ndarray | None,
                  fingerprints: Mapping[str, str]) -> None:
    m = run.manifest
    problems = []
    if m.probe_size != len(labels) or not np.array_equal(run.labels, labels):
        problems.append(f"probe labels differ (run has {m.probe_size} examples, given {len(labels)})")
    if list(m.class_names) != [str(c) for c in class_names]:
        problems.append(f"class names differ (run has {list(m.class_names)[:10]})")
    given_test = 0 if test_labels is None else len(test_labels)
    if m.test_size != given_test:
        problems.append(f"test set size differs (run has {m.test_size}, given {given_test})")
    elif test_labels is not None and not np.array_equal(run.test_labels, test_labels):
        problems.append(f"test labels differ (same size, {given_test}, but other examples or another order)")
    for split in SPLITS:
        stored, given = m.fingerprints.get(split), fingerprints.get(split)
        if stored and given and stored != given:
            problems.append(f"{split} inputs differ from those the run was recorded on (fingerprint {given} is not "
                            f"the run's {stored}): other examples, another order or another preprocessing")
    if problems:
        raise RunError(f"cannot resume {run.path}: " + "; ".join(problems) + ". Record into a new folder.")


def _as_inputs(x: np.ndarray | None) -> np.ndarray | None:
    return None if x is None else np.asarray(x, dtype=np.float16)


def _create(
    path: Path,
    framework: str,
    labels: np.ndarray,
    class_names: Sequence[str],
    test_labels: np.ndarray | None,
    probe_inputs: np.ndarray | None,
    test_inputs: np.ndarray | None,
    info: Mapping[str, Any] | None,
    fingerprints: Mapping[str, str],
    texts: Mapping[str, list[str] | None],
) -> Manifest:
    if labels.ndim != 1:
        raise ValueError(f"labels must be one integer per probe example, got shape {labels.shape}")
    n_classes = len(class_names)
    for name, y in (("labels", labels), ("test_labels", test_labels)):
        if y is not None and len(y) and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"{name} must lie in 0..{n_classes - 1} (one per class name), got {y.min()}..{y.max()}")
    probe_inputs, test_inputs = _as_inputs(probe_inputs), _as_inputs(test_inputs)
    if probe_inputs is not None and len(probe_inputs) != len(labels):
        raise ValueError(f"probe_inputs has {len(probe_inputs)} examples but labels has {len(labels)}")
    if test_inputs is not None and (test_labels is None or len(test_inputs) != len(test_labels)):
        raise ValueError("test_inputs needs test_labels of the same length")
    manifest = Manifest(
        framework=framework,
        probe_size=len(labels),
        class_names=tuple(str(c) for c in class_names),
        test_size=0 if test_labels is None else len(test_labels),
        input_shape=tuple(probe_inputs.shape[1:]) if probe_inputs is not None else None,
        has_probe_inputs=probe_inputs is not None,
        has_test_inputs=test_inputs is not None,
        has_probe_texts=texts.get("probe") is not None,
        has_test_texts=texts.get("test") is not None,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        info=dict(info or {}),
        fingerprints={str(k): str(v) for k, v in fingerprints.items() if v},
    )
    layout = RunLayout(path)
    # Measured before anything is written: a manifest too large to read back makes no run at all.
    data = _manifest_bytes(manifest, layout.manifest, "creating the run",
                           "Nothing was written; the folder can be recorded into again")
    layout.split_dir("probe").mkdir(exist_ok=True)
    save_npy_atomic(layout.labels("probe"), labels)
    if probe_inputs is not None:
        save_npy_atomic(layout.inputs("probe"), probe_inputs)
    if test_labels is not None:
        layout.split_dir("test").mkdir(exist_ok=True)
        save_npy_atomic(layout.labels("test"), test_labels)
        if test_inputs is not None:
            save_npy_atomic(layout.inputs("test"), test_inputs)
    for split, given in texts.items():
        if given is not None:
            stored, cut = bound_texts(given)
            if cut:
                log.info("%d %s texts were cut to fit the run's bounds (epochscope.run.texts)", cut, split)
            write_json_atomic(layout.texts(split), stored)
    layout.epochs_dir.mkdir(exist_ok=True)
    # The manifest goes last: a folder is a run only once everything it names exists.
    write_bytes_atomic(layout.manifest, data)
    return manifest


#: What to do when an entry of the manifest makes it larger than readers read.
_MANIFEST_ADVICE = {
    "class_names": "give fewer or shorter class names (the run keeps every one in its manifest; integer labels "
                   "name one class per number up to the largest, so labels that are IDs rather than class indices "
                   "0..k-1 make that many classes: map them to 0..k-1 first)",
    "layers": "record fewer layers",
}


def _manifest_bytes(manifest: Manifest, path: Path, change: str, outcome: str) -> bytes:
    """The bytes ``manifest.json`` holds for ``manifest``. One larger than readers read
    (:data:`~epochscope.run.fileio.MAX_JSON_BYTES`) raises ``ValueError`` naming ``change``, its
    size, the limit, its largest entries and what to do, then ``outcome``: written, it would make
    a run every reader refuses as damaged."""
    d = manifest.to_json()
    data = json_bytes(d)
    if len(data) <= MAX_JSON_BYTES:
        return data
    sizes = sorted(((len(json_bytes({k: v})), str(k), v) for k, v in d.items()), key=lambda e: e[0], reverse=True)

    def entry(size: int, key: str, value: Any) -> str:
        items = f"{len(value):,} item{'' if len(value) == 1 else 's'}, " if isinstance(value, (list, dict)) else ""
        return f"{key!r} ({items}{size:,} bytes)"

    largest = ", ".join(entry(*e) for e in sizes[:3])
    advice = _MANIFEST_ADVICE.get(sizes[0][1], f"make {sizes[0][1]!r} smaller")
    raise ValueError(f"{change}, {path} would be {len(data):,} bytes as JSON, more than the {MAX_JSON_BYTES:,} a "
                     f"reader reads (the largest: {largest}); {advice}. {outcome}")


def _is_interrupted_creation(path: Path) -> bool:
    """True when ``path`` is empty or holds only what :func:`_create` writes before the manifest.

    A recorder killed while creating a run leaves such a folder; it must be possible to
    record into it again rather than refuse it as someone else's folder.
    """
    names = set(os.listdir(path))
    if not names <= {LOCK_FILE, *SPLITS, EPOCHS_DIR}:
        return False
    layout = RunLayout(path)
    for split in SPLITS:
        folder = layout.split_dir(split)
        if folder.exists() and not (folder.is_dir() and all(
                p.name in SPLIT_FILES or is_temporary(p.name) for p in folder.iterdir())):
            return False
    epochs = layout.epochs_dir
    return not epochs.exists() or (epochs.is_dir() and not any(epochs.iterdir()))


def _remove_run(path: Path) -> None:
    """Remove the run at ``path`` (its lock, held by the caller, stays), for ``overwrite=True``.

    Only a folder that opens as an epochscope run, or that a killed writer left half-created,
    is touched, and only when it holds nothing but a run's own files: anything else raises
    :class:`RunError` before a file is removed. The manifest goes last, so a process killed
    while removing leaves a run (with fewer epochs) or a folder a new run can be created in.
    """
    layout = RunLayout(path)
    names = set(os.listdir(path)) - {LOCK_FILE}
    if not names:
        return
    if not layout.manifest.exists():
        if not _is_interrupted_creation(path):
            raise RunError(f"{path} holds no {MANIFEST_FILE}, so it is not an epochscope run and overwrite=True leaves "
                           "it alone; choose another folder")
    else:
        foreign = sorted(n for n in names if n not in ROOT_NAMES and not is_temporary(n))
        if foreign:
            raise RunError(f"{path}: overwrite=True removes only an epochscope run, and this folder also holds "
                           f"{foreign[:5]}; move those away or choose another folder")
        try:
            Run(path)
        except RunError as err:
            raise RunError(f"{path} was not removed: overwrite=True removes only a folder that opens as an epochscope "
                           f"run, and this one does not ({err}); remove it yourself or choose another folder") from err
    log.info("overwrite=True: removing the run at %s", path)
    # The maps cache first: its entries name epochs, not their contents, so maps of the old run
    # must not outlive a kill below and be read back for the new epochs recorded under those numbers.
    cache = layout.cache_dir
    if cache.is_dir() and not cache.is_symlink():
        aside = cache.with_name(f".tmp-{cache.name}-{os.getpid()}")
        os.rename(cache, aside)
        shutil.rmtree(aside)
    for epoch in reversed(layout.finished_epochs()):  # the last first: the epochs left stay a prefix
        # Renamed before it is deleted, as repair does: a kill during the deletion leaves an
        # ordinary .partial folder (ignored, then removed), never a finished epoch missing files.
        hidden = layout.partial_epoch_dir(epoch, os.getpid(), "overwrite")
        os.rename(layout.epoch_dir(epoch), hidden)
        shutil.rmtree(hidden)
    for name in sorted(names - {MANIFEST_FILE}):
        target = path / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    layout.manifest.unlink(missing_ok=True)
    fsync_dir(path)


def _remove_partials(path: Path) -> None:
    """What an interrupted writer left (called holding the run's lock): unfinished epoch folders,
    and temporary files (``.NAME.tmp-PID``) of writers no longer running in the run's root, probe,
    test and reductions folders. Only regular files and the writer's own folders; never a link."""
    for p in RunLayout(path).partial_epoch_dirs():
        log.info("removing unfinished epoch %s left by an interrupted writer", p)
        shutil.rmtree(p, ignore_errors=True)
    for folder in (path, *(path / s for s in SPLITS), path / REDUCTIONS_DIR):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            pid = temporary_pid(entry.name)
            if not is_temporary(entry.name) or pid is None or pid_alive(pid) or not entry.is_file(follow_symlinks=False):
                continue
            log.info("removing %s, a temporary file left by an interrupted writer", entry.path)
            try:
                os.unlink(entry.path)
            except OSError:
                pass


class LayerFile:
    """One layer's ``(n, width)`` float16 outputs being written into an ``.npy`` file, rows at a time.

    What :meth:`EpochBuilder.layer_buffer` returns: ``buf[start:stop] = rows`` writes those rows
    (``buf[...] = array`` all of them). The file's blocks are allocated when it is created
    (``posix_fallocate``), so a disk too full for the epoch is found before anything is captured,
    and rows are written with ``os.pwrite``, never through a memory map: a full disk is an
    :class:`OSError` the writer can report, not a ``SIGBUS`` that kills the training process.
    """

    dtype = np.dtype(np.float16)

    def __init__(self, path: Path, shape: tuple[int, int]) -> None:
        self.path = path
        self.shape = (int(shape[0]), int(shape[1]))
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape})
        self._offset = len(header.getvalue())
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        size = self._offset + self.shape[0] * self._row_bytes
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            _write_all(self._fd, header.getvalue(), 0)
            if hasattr(os, "posix_fallocate"):
                try:
                    os.posix_fallocate(self._fd, 0, size)
                except OSError as err:
                    if is_storage_error(err):
                        raise
                    os.ftruncate(self._fd, size)  # a file system without fallocate: rows are still written with pwrite
            else:
                os.ftruncate(self._fd, size)
        except BaseException:
            self.close()
            raise

    def __len__(self) -> int:
        return self.shape[0]

    def _rows(self, key: Any) -> tuple[int, int]:
        if key is Ellipsis:
            return 0, self.shape[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step == 1:
                return start, max(start, stop)
        elif isinstance(key, (int, np.integer)):
            row = int(key) + (self.shape[0] if key < 0 else 0)
            if 0 <= row < self.shape[0]:
                return row, row + 1
        raise IndexError(f"{self.path.name}: rows are written by a contiguous slice (buf[start:stop] = rows), "
                         f"got {key!r}")

    def __setitem__(self, key: Any, value: Any) -> None:
        start, stop = self._rows(key)
        rows = np.broadcast_to(np.asarray(value, dtype=self.dtype), (stop - start, self.shape[1]))
        _write_all(self._fd, np.ascontiguousarray(rows).tobytes(), self._offset + start * self._row_bytes)

    def flush(self) -> None:
        """Make the rows durable (``fsync``)."""
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        """Close the file; safe to call twice."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


class EpochBuilder:
    """Collects one epoch's arrays in a hidden folder and renames it into place on commit.

    Use as a context manager: leaving the block normally commits, an exception discards
    everything written for the epoch.
    """

    def __init__(self, writer: RunWriter, epoch: int, *, replace: bool = False) -> None:
        self.writer = writer
        self.epoch = epoch
        self.replace = replace
        self._dir = writer.layout.partial_epoch_dir(epoch, os.getpid())
        self._buffers: dict[tuple[str, str], LayerFile] = {}
        self._metrics: dict[str, Any] = {}
        self._time: tuple[int, float | None] | None = None
        self._done = False
        try:
            if self._dir.is_symlink():
                self._dir.unlink()
            elif self._dir.exists():
                shutil.rmtree(self._dir)
            self._dir.mkdir(parents=True)
            for split in SPLITS:
                (self._dir / split).mkdir()
        except OSError as err:
            raise self._failed(err, self._dir) from err

    def __enter__(self) -> EpochBuilder:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()

    def _split_size(self, split: str) -> int:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        size = self.writer.manifest.probe_size if split == "probe" else self.writer.manifest.test_size
        if size == 0:
            raise ValueError("this run was created without a test set; pass test labels when creating it")
        return size

    def layer_buffer(self, layer: str, *, split: str = "probe") -> LayerFile:
        """A float16 ``(n, width)`` file for a declared layer, filled batch by batch
        (``buf[start:stop] = rows``; see :class:`LayerFile`).

        Writing straight to the file keeps memory bounded by one batch, however large the probe
        set. Its space is allocated here, so a full disk raises :class:`~epochscope.StorageError`
        before anything is captured (the epoch is discarded; finished epochs are kept).
        """
        key = (split, layer)
        if key not in self._buffers:
            info = self.writer.manifest.layer(layer)
            n = self._split_size(split)
            path = layer_file(self._dir, split, info.key)
            try:
                self._buffers[key] = LayerFile(path, (n, info.width))
            except OSError as err:
                raise self._failed(err, path) from err
        return _Guarded(self, self._buffers[key])

    def set_activations(self, layer: str, array: np.ndarray, *, split: str = "probe") -> None:
        """Store a declared layer's whole ``(n, width)`` output for this epoch."""
        buf = self.layer_buffer(layer, split=split)
        array = np.asarray(array)
        if array.shape != buf.shape:
            raise ValueError(f"layer '{layer}' ({split}): expected shape {buf.shape}, got {array.shape}")
        buf[...] = array

    def _failed(self, err: OSError, path: Path) -> BaseException:
        """What to raise for ``err`` met while writing ``path``: a :class:`StorageError` saying what to do
        when the file system refused (the epoch is discarded first, freeing its space), else ``err``."""
        if not is_storage_error(err):
            return err
        self.discard()
        return storage_failure(err, f"cannot write epoch {self.epoch} into {self.writer.path} ({path.name}): "
                                    f"{err.strerror or err}; {storage_hint(err)}. The epoch was discarded; every "
                                    "finished epoch is kept and recording into this folder again resumes after them")

    def set_predictions(self, predicted: np.ndarray, *, split: str = "probe") -> None:
        """Store the predicted class of every example (``-1`` where unknown)."""
        n = self._split_size(split)
        predicted = np.asarray(predicted, dtype=np.int64).reshape(-1)
        if len(predicted) != n:
            raise ValueError(f"predictions ({split}): expected {n} values, got {len(predicted)}")
        path = predictions_file(self._dir, split)
        try:
            np.save(path, predicted, allow_pickle=False)
        except OSError as err:
            raise self._failed(err, path) from err

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Store named weight arrays (as float32) for this epoch."""
        arrays = {str(k): np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        if arrays:
            path = weights_file(self._dir)
            try:
                with open(path, "wb") as fh:
                    np.savez(fh, **arrays)
            except OSError as err:
                raise self._failed(err, path) from err

    def set_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Set (or add to) this epoch's metrics row; values must be JSON numbers or strings.

        The row's ``"epoch"`` is always this epoch's number: a metric called ``epoch`` with
        another value is kept as ``user_epoch`` (the recorders' metric-name rule).
        """
        for k, v in metrics.items():
            if isinstance(v, (np.generic,)):
                v = v.item()
            self._metrics[str(k)] = v

    def set_time(self, step: int, epochs_done: float | None) -> None:
        """Where this record sits in training, in a run whose records count steps (required there):
        ``step`` (its number) and ``epochs_done`` (fractional epochs, ``None`` when the epoch's
        length is unknown). Stored in the metrics row as ``"step"`` and ``"epochs_done"``.

        Raises ``ValueError`` when the run counts epochs, when ``step`` is not this record's
        number, or when ``epochs_done`` is less than the previous record's (checked on commit).
        """
        if self.writer.manifest.record_unit != "step":
            raise ValueError(f"{self.writer.path} numbers its records by epoch; a step is stored only in a run "
                             "recorded every N steps (RunWriter.set_record_unit('step') before its first record)")
        step, epochs_done = check_time_point(step, epochs_done)
        if step != self.epoch:
            raise ValueError(f"step {step} is not this record's number ({self.epoch}); a step run numbers its "
                             "records by step")
        self._time = (step, epochs_done)

    def _check_time(self) -> dict[str, Any]:
        """The row's time keys of a step run's record, after checking its epoch against the previous record's."""
        if self.writer.manifest.record_unit != "step":
            return {}
        if self._time is None:
            raise ValueError(f"record {self.epoch}: a run recorded every N steps needs each record's time; call "
                             "set_time(step, epochs_done) before committing")
        step, epochs_done = self._time
        earlier = [e for e in self.writer.epochs if e < step]
        if epochs_done is not None and earlier:
            previous = read_json(metrics_file(self.writer.layout.epoch_dir(earlier[-1])), root=self.writer.path,
                                 max_bytes=MAX_METRICS_BYTES)
            before = previous.get(EPOCHS_DONE_KEY) if isinstance(previous, dict) else None
            if isinstance(before, (int, float)) and not isinstance(before, bool) and epochs_done < before:
                raise ValueError(f"record at step {step}: epochs_done {epochs_done} is less than {before} at step "
                                 f"{earlier[-1]}; epochs never go back along a run (give the epoch the training is in)")
        return {STEP_KEY: step, EPOCHS_DONE_KEY: epochs_done}

    def commit(self) -> None:
        """Flush every file and rename the epoch into place (the atomic step)."""
        if self._done:
            return
        m = self.writer.manifest
        try:
            time_keys = self._check_time()
        except ValueError:
            self.discard()
            raise
        missing = [(s, info.name) for info in m.layers for s in (SPLITS if m.test_size else ("probe",))
                   if (s, info.name) not in self._buffers]
        if missing:
            self.discard()
            raise ValueError(f"epoch {self.epoch}: no activations were given for {missing}")
        row = dict(self._metrics)
        if "epoch" in row:
            given = row.pop("epoch")
            if given != self.epoch:
                log.warning("metric 'epoch' (%r) is a name epochscope writes itself (the epoch's number, %d); your "
                            "value is stored as 'user_epoch'", given, self.epoch)
                row.setdefault("user_epoch", given)
        for key, value in time_keys.items():
            given = row.pop(key, value)
            if given != value:
                row.setdefault(f"user_{key}", given)
        row.update(time_keys)
        text = self._metrics_text({"epoch": self.epoch, **row})
        path = self._dir
        try:
            for buf in self._buffers.values():
                path = buf.path
                buf.flush()
                buf.close()
            self._buffers.clear()
            # Every epoch holds predictions (the layout promises them): -1 where none were given.
            for split in SPLITS:
                if (split == "probe" or m.test_size) and not predictions_file(self._dir, split).exists():
                    self.set_predictions(np.full(self._split_size(split), -1, dtype=np.int64), split=split)
            path = metrics_file(self._dir)
            with open(path, "wb") as fh:  # bytes: the size checked is the size on disk
                fh.write(text)
            for p in self._dir.rglob("*"):
                if p.is_file():
                    path = p
                    with open(p, "rb+") as fh:
                        os.fsync(fh.fileno())
            final = self.writer.layout.epoch_dir(self.epoch)
            path = final
            aside = self._set_aside_replaced() if self.replace else []
            os.rename(self._dir, final)
        except OSError as err:
            if self._done:  # already discarded by a failing step
                raise
            raise self._failed(err, path) from err
        fsync_dir(final.parent)
        for folder in aside:
            shutil.rmtree(folder, ignore_errors=True)
        self._done = True

    def _metrics_text(self, row: Mapping[str, Any]) -> bytes:
        """The metrics row as the bytes ``metrics.json`` holds; a row larger than readers read
        (:data:`~epochscope.run.reader.MAX_METRICS_BYTES`) discards the epoch and raises
        ``ValueError`` saying what to do, so no run is written that its readers call damaged."""
        text = json.dumps(row, indent=2, default=json_default).encode("utf-8")
        if len(text) <= MAX_METRICS_BYTES:
            return text
        self.discard()
        sizes = sorted(((len(json.dumps({k: v}, default=json_default)), str(k)) for k, v in row.items()), reverse=True)
        largest = ", ".join(f"{name!r} ({size:,} bytes)" for size, name in sizes[:3])
        raise ValueError(f"epoch {self.epoch}: its metrics row is {len(text):,} bytes as JSON, more than the "
                         f"{MAX_METRICS_BYTES:,} a reader reads ({len(row):,} values; the largest: {largest}); record "
                         "fewer or smaller metrics: a few numbers per epoch (per-example or per-class values belong "
                         "in the layers and predictions the run records, or summarised). The epoch was discarded; "
                         "every finished epoch is kept and the next one can be recorded")

    def _set_aside_replaced(self) -> list[Path]:
        """Move this epoch and every later one out of the run (last first, so what stays is a
        prefix of the epochs at every instant) and drop the maps cache; returns what to delete.

        The folders get ``.partial-…-replaced`` names, which readers ignore and the next writer
        removes, so a process killed here leaves a consistent run.
        """
        layout = self.writer.layout
        later = [e for e in self.writer.epochs if e >= self.epoch]
        aside = []
        for e in sorted(later, reverse=True):
            folder = layout.partial_epoch_dir(e, os.getpid(), "replaced")
            os.rename(layout.epoch_dir(e), folder)
            aside.append(folder)
        if later:
            log.info("replacing epochs %s..%s of %s", later[0], later[-1], self.writer.path)
            cache = layout.cache_dir
            if cache.exists():  # its maps name epochs, not their contents: they no longer describe the run
                moved = cache.with_name(f".tmp-{cache.name}-{os.getpid()}")
                os.rename(cache, moved)
                aside.append(moved)
            fsync_dir(layout.epochs_dir)
        return aside

    def discard(self) -> None:
        """Drop everything written for this epoch."""
        for buf in self._buffers.values():
            buf.close()
        self._buffers.clear()
        shutil.rmtree(self._dir, ignore_errors=True)
        self._done = True


class _Guarded:
    """A :class:`LayerFile` whose write errors discard the epoch and say what to do (see ``EpochBuilder._failed``)."""

    def __init__(self, builder: EpochBuilder, file: LayerFile) -> None:
        self._builder, self._file = builder, file
        self.shape, self.dtype, self.path = file.shape, file.dtype, file.path

    def __len__(self) -> int:
        return len(self._file)

    def __setitem__(self, key: Any, value: Any) -> None:
        try:
            self._file[key] = value
        except OSError as err:
            raise self._builder._failed(err, self._file.path) from err
