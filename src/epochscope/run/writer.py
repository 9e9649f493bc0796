"""Writing a run directory: :class:`RunWriter` creates or resumes a run and appends epochs
through :class:`EpochBuilder`.

An epoch is written into ``epochs/.partial-NNNNNN-PID/`` and renamed to ``epochs/NNNNNN``
when complete, so the rename is the commit: a process killed at any instant leaves either
the whole epoch or none of it. The list of epochs is the list of those folders; nothing
else needs updating. A writer holds the run's :class:`~epochscope.run.lock.RunLock`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import RunError
from .fileio import fsync_dir, json_default, load_npy, save_npy_atomic, write_json_atomic
from .layout import (
    EPOCHS_DIR,
    LOCK_FILE,
    MANIFEST_FILE,
    ROOT_NAMES,
    SPLIT_FILES,
    SPLITS,
    RunLayout,
    is_temporary,
    layer_file,
    layer_key,
    metrics_file,
    predictions_file,
    weights_file,
)
from .lock import RunLock
from .manifest import LayerInfo, Manifest
from .reader import Run

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
        overwrite: bool = False,
    ) -> RunWriter:
        """Create the run at ``path``, or reopen it to append (``resume=True``).

        Resuming checks that the probe labels and classes match what the run holds, so a
        different probe set cannot be appended to an old run by mistake. ``overwrite=True``
        removes the run the folder holds and starts a fresh one; it removes only a folder that
        opens as an epochscope run (or one a killed writer left half-created) and refuses,
        removing nothing, a folder that holds anything else.
        """
        path = Path(path)
        labels = np.asarray(labels, dtype=np.int64)
        test_labels = None if test_labels is None else np.asarray(test_labels, dtype=np.int64)
        path.mkdir(parents=True, exist_ok=True)
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
                _check_resume(existing, labels, class_names, test_labels)
                manifest = existing.manifest
            else:
                if not _is_interrupted_creation(path):
                    raise RunError(f"{path} exists, is not empty and holds no {MANIFEST_FILE}; "
                                   "choose an empty or new folder")
                manifest = _create(path, framework, labels, class_names, test_labels, probe_inputs, test_inputs, info)
            _remove_partials(path)
            return cls(path, manifest, lock)
        except BaseException:
            lock.release()
            raise

    # -- context / lifetime
    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the run's lock. Safe to call twice."""
        self._lock.release()

    # -- state
    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def epochs(self) -> list[int]:
        return self.run.epochs

    @property
    def next_epoch(self) -> int:
        """The epoch number that follows the last finished one (0 for a new run)."""
        epochs = self.epochs
        return epochs[-1] + 1 if epochs else 0

    def declare_layer(self, name: str, output_shape: Sequence[int], width: int,
                      reduction: Mapping[str, Any] | None) -> LayerInfo:
        """Add a layer to the manifest, or check that it matches what the run already holds."""
        shape = tuple(int(s) for s in output_shape)
        for info in self._manifest.layers:
            if info.name == name:
                if info.output_shape != shape or info.width != width:
                    raise RunError(
                        f"layer '{name}' outputs {shape} (stored width {width}) but the run at {self.path} "
                        f"recorded {info.output_shape} (width {info.width}); record into a new folder"
                    )
                return info
        info = LayerInfo(name=name, key=layer_key(name), output_shape=shape, width=int(width),
                         reduction=dict(reduction) if reduction else None)
        self._manifest = self._manifest.with_layer(info)
        write_json_atomic(self.layout.manifest, self._manifest.to_json())
        self.run.manifest = self._manifest
        return info

    def update_info(self, items: Mapping[str, Any]) -> None:
        """Add ``items`` to the manifest's ``info`` (facts decided while recording, such as the
        one-output threshold), written atomically."""
        self._manifest = dataclasses.replace(self._manifest, info={**self._manifest.info, **dict(items)})
        write_json_atomic(self.layout.manifest, self._manifest.to_json())
        self.run.manifest = self._manifest

    def reduction_matrix(self, name: str) -> np.ndarray | None:
        """The stored projection matrix of a layer, or ``None`` if none was saved yet."""
        path = self.layout.reduction(layer_key(name))
        return load_npy(path, mmap=False) if path.exists() else None

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


def _check_resume(run: Run, labels: np.ndarray, class_names: Sequence[str], test_labels: np.ndarray | None) -> None:
    m = run.manifest
    problems = []
    if m.probe_size != len(labels) or not np.array_equal(run.labels, labels):
        problems.append(f"probe labels differ (run has {m.probe_size} examples, given {len(labels)})")
    if list(m.class_names) != [str(c) for c in class_names]:
        problems.append(f"class names differ (run has {list(m.class_names)[:10]})")
    given_test = 0 if test_labels is None else len(test_labels)
    if m.test_size != given_test:
        problems.append(f"test set size differs (run has {m.test_size}, given {given_test})")
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
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        info=dict(info or {}),
    )
    layout = RunLayout(path)
    layout.split_dir("probe").mkdir(exist_ok=True)
    save_npy_atomic(layout.labels("probe"), labels)
    if probe_inputs is not None:
        save_npy_atomic(layout.inputs("probe"), probe_inputs)
    if test_labels is not None:
        layout.split_dir("test").mkdir(exist_ok=True)
        save_npy_atomic(layout.labels("test"), test_labels)
        if test_inputs is not None:
            save_npy_atomic(layout.inputs("test"), test_inputs)
    layout.epochs_dir.mkdir(exist_ok=True)
    # The manifest goes last: a folder is a run only once everything it names exists.
    write_json_atomic(layout.manifest, manifest.to_json())
    return manifest


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
    for epoch in reversed(layout.finished_epochs()):  # the last first: the epochs left stay a prefix
        shutil.rmtree(layout.epoch_dir(epoch))
    for name in sorted(names - {MANIFEST_FILE}):
        target = path / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    layout.manifest.unlink(missing_ok=True)
    fsync_dir(path)


def _remove_partials(path: Path) -> None:
    for p in RunLayout(path).partial_epoch_dirs():
        log.info("removing unfinished epoch %s left by an interrupted writer", p)
        shutil.rmtree(p, ignore_errors=True)


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
        if self._dir.exists():
            shutil.rmtree(self._dir)
        self._dir.mkdir(parents=True)
        for split in SPLITS:
            (self._dir / split).mkdir()
        self._buffers: dict[tuple[str, str], np.memmap] = {}
        self._metrics: dict[str, Any] = {}
        self._done = False

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

    def layer_buffer(self, layer: str, *, split: str = "probe") -> np.memmap:
        """A writable float16 ``(n, width)`` array on disk for a declared layer, filled batch by batch.

        Writing straight into a memory-mapped file keeps memory bounded by one batch, however
        large the probe set.
        """
        key = (split, layer)
        if key not in self._buffers:
            info = self.writer.manifest.layer(layer)
            n = self._split_size(split)
            self._buffers[key] = np.lib.format.open_memmap(
                layer_file(self._dir, split, info.key), mode="w+", dtype=np.float16, shape=(n, info.width)
            )
        return self._buffers[key]

    def set_activations(self, layer: str, array: np.ndarray, *, split: str = "probe") -> None:
        """Store a declared layer's whole ``(n, width)`` output for this epoch."""
        buf = self.layer_buffer(layer, split=split)
        array = np.asarray(array)
        if array.shape != buf.shape:
            raise ValueError(f"layer '{layer}' ({split}): expected shape {buf.shape}, got {array.shape}")
        buf[...] = array

    def set_predictions(self, predicted: np.ndarray, *, split: str = "probe") -> None:
        """Store the predicted class of every example (``-1`` where unknown)."""
        n = self._split_size(split)
        predicted = np.asarray(predicted, dtype=np.int64).reshape(-1)
        if len(predicted) != n:
            raise ValueError(f"predictions ({split}): expected {n} values, got {len(predicted)}")
        np.save(predictions_file(self._dir, split), predicted, allow_pickle=False)

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Store named weight arrays (as float32) for this epoch."""
        arrays = {str(k): np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        if arrays:
            with open(weights_file(self._dir), "wb") as fh:
                np.savez(fh, **arrays)

    def set_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Set (or add to) this epoch's metrics row; values must be JSON numbers or strings."""
        for k, v in metrics.items():
            if isinstance(v, (np.generic,)):
                v = v.item()
            self._metrics[str(k)] = v

    def commit(self) -> None:
        """Flush every file and rename the epoch into place (the atomic step)."""
        if self._done:
            return
        m = self.writer.manifest
        missing = [(s, info.name) for info in m.layers for s in (SPLITS if m.test_size else ("probe",))
                   if (s, info.name) not in self._buffers]
        if missing:
            self.discard()
            raise ValueError(f"epoch {self.epoch}: no activations were given for {missing}")
        for buf in self._buffers.values():
            buf.flush()
        self._buffers.clear()
        # Every epoch holds predictions (the layout promises them): -1 where none were given.
        for split in SPLITS:
            if (split == "probe" or m.test_size) and not predictions_file(self._dir, split).exists():
                self.set_predictions(np.full(self._split_size(split), -1, dtype=np.int64), split=split)
        with open(metrics_file(self._dir), "w", encoding="utf-8") as fh:
            json.dump({"epoch": self.epoch, **self._metrics}, fh, indent=2, default=json_default)
        for p in self._dir.rglob("*"):
            if p.is_file():
                with open(p, "rb+") as fh:
                    os.fsync(fh.fileno())
        final = self.writer.layout.epoch_dir(self.epoch)
        aside = self._set_aside_replaced() if self.replace else []
        os.rename(self._dir, final)
        fsync_dir(final.parent)
        for folder in aside:
            shutil.rmtree(folder, ignore_errors=True)
        self._done = True

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
        self._buffers.clear()
        shutil.rmtree(self._dir, ignore_errors=True)
        self._done = True
