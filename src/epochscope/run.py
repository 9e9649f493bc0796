"""The run directory: the contract between recording and drawing.

This module is the only one that knows the layout on disk. Everything else asks it:
recorders write through :class:`RunWriter`, the embedder, renderers and the CLI read
through :class:`Run` (opened with :func:`open_run`).

Layout (schema version 1)::

    RUN/
      manifest.json                 what was recorded (see Manifest)
      probe/labels.npy              int64 (n_probe,)
      probe/inputs.npy              optional, float16 (n_probe, *input_shape)
      test/labels.npy               optional, int64 (n_test,)
      test/inputs.npy               optional, float16 (n_test, *input_shape)
      reductions/<layer-key>.npy    fixed projection matrices of wide layers
      epochs/000000/                one folder per finished epoch, renamed into place
        probe/<layer-key>.npy       float16 (n_probe, width): the layer's outputs
        test/<layer-key>.npy        float16 (n_test, width)
        predictions.npy             int64 (n_probe,) predicted class, -1 if unknown
        test_predictions.npy        int64 (n_test,)
        weights.npz                 float32 arrays keyed by parameter name
        metrics.json                one row: loss, accuracy, val_loss, ... and times
      cache/                        derived data (2-D maps), owned by epochscope.embed

An epoch is written into ``epochs/.partial-NNNNNN-PID/`` and renamed to ``epochs/NNNNNN``
when complete, so the rename is the commit: a process killed at any instant leaves either
the whole epoch or none of it. The list of epochs is the list of those folders; nothing
else needs updating. Arrays are read with ``allow_pickle=False`` and memory-mapped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import NotARunError, RunError, RunLockedError, unknown_name_message
from ._fileio import _fsync_dir, _json_default, _read_json, load_npy, load_npz, save_npy_atomic, write_json_atomic

__all__ = [
    "SCHEMA_VERSION",
    "LayerInfo",
    "Manifest",
    "Run",
    "RunWriter",
    "open_run",
    "layer_key",
]

log = logging.getLogger("epochscope")

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
EPOCHS_DIR = "epochs"
CACHE_DIR = "cache"
LOCK_FILE = ".lock"
_EPOCH_NAME = re.compile(r"\d{6}")
_SAFE_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,80}")
SPLITS = ("probe", "test")


def layer_key(name: str) -> str:
    """The file-name-safe key of a layer name: readable part plus a short hash.

    Any name maps to a single path component (no separators, no leading dot), so
    ``"../../x"`` or ``"features.0/conv"`` can never leave the run directory, and two
    names that sanitise alike still get different keys.

    >>> layer_key("features.0/conv")
    'features_0_conv-3b0b7b5f'
    """
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", name).lstrip("-")[:48] or "layer"
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    return f"{readable}-{digest}"


def _check_key(key: str, where: str) -> str:
    if not isinstance(key, str) or not _SAFE_KEY.fullmatch(key):
        raise RunError(f"{where}: file key {key!r} is not a safe file name; the manifest was edited or corrupted")
    return key


@dataclass(frozen=True)
class LayerInfo:
    """One recorded layer: its name, on-disk key, per-example output shape and reduction.

    ``width`` is the number of values stored per example; ``reduction`` is ``None`` when
    the output was stored as is (flattened), else a dict such as
    ``{"method": "project", "from": 25088, "to": 512, "seed": 0}``.
    """

    name: str
    key: str
    output_shape: tuple[int, ...]
    width: int
    reduction: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "output_shape": list(self.output_shape)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LayerInfo:
        return cls(
            name=str(d["name"]),
            key=_check_key(d["key"], "manifest layers"),
            output_shape=tuple(int(s) for s in d["output_shape"]),
            width=int(d["width"]),
            reduction=dict(d["reduction"]) if d.get("reduction") else None,
        )


@dataclass(frozen=True)
class Manifest:
    """What a run holds; serialised as ``manifest.json``.

    The epochs are not listed here: they are the committed epoch folders (see module doc).
    """

    framework: str
    probe_size: int
    class_names: tuple[str, ...]
    test_size: int = 0
    layers: tuple[LayerInfo, ...] = ()
    input_shape: tuple[int, ...] | None = None
    has_probe_inputs: bool = False
    has_test_inputs: bool = False
    created: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.probe_size < 1:
            raise ValueError(f"probe_size must be at least 1, got {self.probe_size}")
        if len(self.class_names) < 1:
            raise ValueError("class_names must name at least one class")

    def layer(self, name: str) -> LayerInfo:
        for info in self.layers:
            if info.name == name:
                return info
        raise ValueError(unknown_name_message("layer", name, [i.name for i in self.layers]) + " (recorded in this run)")

    def with_layer(self, info: LayerInfo) -> Manifest:
        return dataclasses.replace(self, layers=(*self.layers, info))

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["layers"] = [layer.to_json() for layer in self.layers]
        d["class_names"] = list(self.class_names)
        d["input_shape"] = list(self.input_shape) if self.input_shape is not None else None
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any], *, where: str = MANIFEST_FILE) -> Manifest:
        version = d.get("schema_version")
        if not isinstance(version, int):
            raise RunError(f"{where}: no schema_version; this is not an epochscope manifest")
        if version > SCHEMA_VERSION:
            raise RunError(
                f"{where}: schema version {version} is newer than this epochscope reads ({SCHEMA_VERSION}); "
                "upgrade epochscope (pip install -U epochscope)"
            )
        try:
            return cls(
                framework=str(d["framework"]),
                probe_size=int(d["probe_size"]),
                class_names=tuple(str(c) for c in d["class_names"]),
                test_size=int(d.get("test_size", 0)),
                layers=tuple(LayerInfo.from_json(x) for x in d.get("layers", [])),
                input_shape=tuple(int(s) for s in d["input_shape"]) if d.get("input_shape") is not None else None,
                has_probe_inputs=bool(d.get("has_probe_inputs", False)),
                has_test_inputs=bool(d.get("has_test_inputs", False)),
                created=str(d.get("created", "")),
                info=dict(d.get("info") or {}),
                schema_version=version,
            )
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            raise RunError(f"{where}: malformed manifest ({type(err).__name__}: {err})") from err



# --------------------------------------------------------------------------- reading


class Run:
    """A run directory opened for reading. Use :func:`open_run` to get one.

    Arrays come back memory-mapped (read-only), so a run larger than memory can be read
    an epoch at a time. The epoch list is re-read from disk on every access, so a run can
    be rendered while training still appends to it.

    Example::

        run = epochscope.open_run("runs/mnist")
        run.epochs                       # [0, 1, 2, ...]
        run.activations("hidden", 3)     # float16 array (n_probe, 512)
        run.metrics[-1]["val_accuracy"]
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            what = "is a file, not a folder" if self.path.exists() else "no such folder"
            raise NotARunError(f"{self.path}: {what}; give the folder a recorder wrote (it holds {MANIFEST_FILE})")
        try:
            raw = _read_json(self.path / MANIFEST_FILE)
        except FileNotFoundError as err:
            raise NotARunError(
                f"{self.path} is not an epochscope run: {MANIFEST_FILE} is missing. "
                "Point at the folder given as run_dir when recording (e.g. OUT/run for the demo)."
            ) from err
        if not isinstance(raw, dict):
            raise RunError(f"{self.path / MANIFEST_FILE}: expected a JSON object")
        self.manifest = Manifest.from_json(raw, where=str(self.path / MANIFEST_FILE))

    # -- what the run holds
    def __repr__(self) -> str:
        epochs = self.epochs
        span = f"{epochs[0]}..{epochs[-1]}" if epochs else "none"
        return f"Run({str(self.path)!r}, epochs={span}, layers={self.layers}, probe={self.manifest.probe_size})"

    @property
    def epochs(self) -> list[int]:
        """The finished epochs, ascending."""
        folder = self.path / EPOCHS_DIR
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if _EPOCH_NAME.fullmatch(p.name) and p.is_dir())

    @property
    def layers(self) -> list[str]:
        """Names of the recorded layers, in recording order."""
        return [info.name for info in self.manifest.layers]

    @property
    def framework(self) -> str:
        return self.manifest.framework

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest.class_names)

    @property
    def labels(self) -> np.ndarray:
        """Integer class of every probe example (index into :attr:`class_names`)."""
        return load_npy(self.path / "probe" / "labels.npy", mmap=False)

    @property
    def test_labels(self) -> np.ndarray | None:
        """Integer class of every test example, or ``None`` when no test set was recorded."""
        if not self.manifest.test_size:
            return None
        return load_npy(self.path / "test" / "labels.npy", mmap=False)

    @property
    def probe_inputs(self) -> np.ndarray | None:
        """The probe inputs (float16, memory-mapped) when they were kept, else ``None``."""
        if not self.manifest.has_probe_inputs:
            return None
        return load_npy(self.path / "probe" / "inputs.npy")

    @property
    def test_inputs(self) -> np.ndarray | None:
        """The test inputs (float16, memory-mapped) when they were kept, else ``None``."""
        if not self.manifest.has_test_inputs:
            return None
        return load_npy(self.path / "test" / "inputs.npy")

    @property
    def has_test(self) -> bool:
        return self.manifest.test_size > 0

    def layer_info(self, layer: str) -> LayerInfo:
        """Shape and reduction of one recorded layer (``ValueError`` listing the layers if unknown)."""
        return self.manifest.layer(layer)

    # -- per epoch
    def epoch_dir(self, epoch: int) -> Path:
        """Folder of one finished epoch (``ValueError`` listing the epochs if it is not there)."""
        epoch = int(epoch)
        path = self.path / EPOCHS_DIR / f"{epoch:06d}"
        if not path.is_dir():
            epochs = self.epochs
            span = f"{epochs[0]}..{epochs[-1]}" if epochs else "none yet"
            raise ValueError(f"epoch {epoch} is not in the run {self.path} (epochs: {span})")
        return path

    def _layer_file(self, split: str, layer: str, epoch: int) -> Path:
        info = self.layer_info(layer)
        return self.epoch_dir(epoch) / split / f"{_check_key(info.key, 'layer key')}.npy"

    def activations(self, layer: str, epoch: int) -> np.ndarray:
        """The probe set's outputs of ``layer`` at ``epoch``: float16 ``(n_probe, width)``, memory-mapped."""
        return load_npy(self._layer_file("probe", layer, epoch))

    def test_activations(self, layer: str, epoch: int) -> np.ndarray | None:
        """The test set's outputs of ``layer`` at ``epoch``, or ``None`` when no test set was recorded."""
        if not self.has_test:
            return None
        return load_npy(self._layer_file("test", layer, epoch))

    def predictions(self, epoch: int) -> np.ndarray:
        """Predicted class of every probe example at ``epoch`` (``-1`` where the model gave none)."""
        return load_npy(self.epoch_dir(epoch) / "predictions.npy", mmap=False)

    def test_predictions(self, epoch: int) -> np.ndarray | None:
        """Predicted class of every test example at ``epoch``, or ``None`` without a test set."""
        if not self.has_test:
            return None
        return load_npy(self.epoch_dir(epoch) / "test_predictions.npy", mmap=False)

    def weights(self, epoch: int) -> dict[str, np.ndarray]:
        """The recorded weights at ``epoch`` as ``{parameter name: float32 array}`` (empty if none)."""
        path = self.epoch_dir(epoch) / "weights.npz"
        if not path.exists():
            return {}
        return load_npz(path)

    def epoch_metrics(self, epoch: int) -> dict[str, Any]:
        """The metrics row of one epoch (always has ``"epoch"``)."""
        path = self.epoch_dir(epoch) / "metrics.json"
        try:
            row = _read_json(path)
        except FileNotFoundError as err:
            raise RunError(f"{path}: file missing from the run") from err
        if not isinstance(row, dict):
            raise RunError(f"{path}: expected a JSON object")
        return row

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """One metrics dict per finished epoch, in epoch order."""
        return [self.epoch_metrics(e) for e in self.epochs]

    # -- derived data
    @property
    def cache_dir(self) -> Path:
        """Folder for derived data (2-D maps); it may not exist yet."""
        return self.path / CACHE_DIR

    def describe(self) -> str:
        """A human-readable summary, as printed by ``epochscope info``."""
        m = self.manifest
        epochs = self.epochs
        lines = [
            f"run       {self.path}",
            f"framework {m.framework}   schema {m.schema_version}   created {m.created}",
            f"epochs    {f'{epochs[0]}..{epochs[-1]} ({len(epochs)} finished)' if epochs else 'none finished'}",
            f"probe     {m.probe_size} examples, {len(m.class_names)} classes"
            + (f", inputs {tuple(m.input_shape)}" if m.has_probe_inputs and m.input_shape else ""),
            f"test      {m.test_size} examples" if m.test_size else "test      none",
            "classes   " + ", ".join(m.class_names[:20]) + (" …" if len(m.class_names) > 20 else ""),
            "layers:",
        ]
        for info in m.layers:
            red = ""
            if info.reduction:
                red = f"  (reduced: {info.reduction.get('method')} {info.reduction.get('from')} -> {info.reduction.get('to')})"
            lines.append(f"  {info.name:<20} output {tuple(info.output_shape)}  stored {info.width} values{red}")
        if epochs:
            weights = self.weights(epochs[-1])
            if weights:
                lines.append(f"weights   {len(weights)} arrays: " + ", ".join(list(weights)[:8]) + (" …" if len(weights) > 8 else ""))
            last = self.epoch_metrics(epochs[-1])
            shown = {k: v for k, v in last.items() if k != "epoch" and isinstance(v, (int, float))}
            lines.append(f"last      epoch {epochs[-1]}: " + ", ".join(f"{k}={v:.4g}" for k, v in shown.items()))
        return "\n".join(lines)


def open_run(path: str | os.PathLike[str]) -> Run:
    """Open a run directory for reading.

    Raises :class:`~epochscope.NotARunError` when ``path`` holds no manifest and
    :class:`~epochscope.RunError` when the manifest is malformed or from a newer version.

    >>> run = open_run("runs/mnist")  # doctest: +SKIP
    """
    return Run(path)


# --------------------------------------------------------------------------- writing


class _Lock:
    """An exclusive advisory lock on RUN/.lock, held while a writer is open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; single-writer is then the user's job
            return
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise RunLockedError(
                f"{self.path.parent} is being written by another process ({holder}); "
                "wait for it to finish or record into another folder"
            ) from err
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing the descriptor releases the flock
            self._fh = None


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

    def __init__(self, path: Path, manifest: Manifest, lock: _Lock) -> None:
        self.path = path
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
    ) -> RunWriter:
        """Create the run at ``path``, or reopen it to append (``resume=True``).

        Resuming checks that the probe labels and classes match what the run holds, so a
        different probe set cannot be appended to an old run by mistake.
        """
        path = Path(path)
        labels = np.asarray(labels, dtype=np.int64)
        test_labels = None if test_labels is None else np.asarray(test_labels, dtype=np.int64)
        path.mkdir(parents=True, exist_ok=True)
        lock = _Lock(path / LOCK_FILE)
        lock.acquire()
        try:
            if (path / MANIFEST_FILE).exists():
                existing = Run(path)
                if not resume:
                    raise RunError(
                        f"{path} already holds a run (epochs {existing.epochs}); pass resume=True to append "
                        "to it or choose another folder"
                    )
                _check_resume(existing, labels, class_names, test_labels)
                manifest = existing.manifest
            else:
                if not _is_interrupted_creation(path):
                    raise RunError(f"{path} exists, is not empty and holds no {MANIFEST_FILE}; choose an empty or new folder")
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

    def declare_layer(self, name: str, output_shape: Sequence[int], width: int, reduction: Mapping[str, Any] | None) -> LayerInfo:
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
        write_json_atomic(self.path / MANIFEST_FILE, self._manifest.to_json())
        self.run.manifest = self._manifest
        return info

    def reduction_matrix(self, name: str) -> np.ndarray | None:
        """The stored projection matrix of a layer, or ``None`` if none was saved yet."""
        path = self.path / "reductions" / f"{layer_key(name)}.npy"
        return load_npy(path, mmap=False) if path.exists() else None

    def save_reduction_matrix(self, name: str, matrix: np.ndarray) -> None:
        """Store a layer's projection matrix so every later epoch (and a resume) uses the same one."""
        (self.path / "reductions").mkdir(exist_ok=True)
        save_npy_atomic(self.path / "reductions" / f"{layer_key(name)}.npy", matrix)

    def epoch(self, epoch: int) -> EpochBuilder:
        """Start writing ``epoch``; commit by leaving the ``with`` block (or ``commit()``)."""
        epoch = int(epoch)
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if epoch in self.epochs:
            raise ValueError(
                f"epoch {epoch} is already recorded in {self.path} (epochs {self.epochs[0]}..{self.epochs[-1]}); "
                f"the next epoch to record is {self.next_epoch}"
            )
        return EpochBuilder(self, epoch)


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
    (path / "probe").mkdir(exist_ok=True)
    save_npy_atomic(path / "probe" / "labels.npy", labels)
    if probe_inputs is not None:
        save_npy_atomic(path / "probe" / "inputs.npy", probe_inputs)
    if test_labels is not None:
        (path / "test").mkdir(exist_ok=True)
        save_npy_atomic(path / "test" / "labels.npy", test_labels)
        if test_inputs is not None:
            save_npy_atomic(path / "test" / "inputs.npy", test_inputs)
    (path / EPOCHS_DIR).mkdir(exist_ok=True)
    # The manifest goes last: a folder is a run only once everything it names exists.
    write_json_atomic(path / MANIFEST_FILE, manifest.to_json())
    return manifest


def _is_interrupted_creation(path: Path) -> bool:
    """True when ``path`` is empty or holds only what :func:`_create` writes before the manifest.

    A recorder killed while creating a run leaves such a folder; it must be possible to
    record into it again rather than refuse it as someone else's folder.
    """
    names = set(os.listdir(path))
    if not names <= {LOCK_FILE, "probe", "test", EPOCHS_DIR}:
        return False
    for split in SPLITS:
        folder = path / split
        if folder.exists() and not (folder.is_dir() and all(
                p.name in ("labels.npy", "inputs.npy") or (p.name.startswith(".") and ".tmp-" in p.name)
                for p in folder.iterdir())):
            return False
    epochs = path / EPOCHS_DIR
    return not epochs.exists() or (epochs.is_dir() and not any(epochs.iterdir()))


def _remove_partials(path: Path) -> None:
    folder = path / EPOCHS_DIR
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name.startswith(".partial-"):
                log.info("removing unfinished epoch %s left by an interrupted writer", p)
                shutil.rmtree(p, ignore_errors=True)


class EpochBuilder:
    """Collects one epoch's arrays in a hidden folder and renames it into place on commit.

    Use as a context manager: leaving the block normally commits, an exception discards
    everything written for the epoch.
    """

    def __init__(self, writer: RunWriter, epoch: int) -> None:
        self.writer = writer
        self.epoch = epoch
        self._dir = writer.path / EPOCHS_DIR / f".partial-{epoch:06d}-{os.getpid()}"
        if self._dir.exists():
            shutil.rmtree(self._dir)
        (self._dir / "probe").mkdir(parents=True)
        (self._dir / "test").mkdir()
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
                self._dir / split / f"{info.key}.npy", mode="w+", dtype=np.float16, shape=(n, info.width)
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
        name = "predictions.npy" if split == "probe" else "test_predictions.npy"
        np.save(self._dir / name, predicted, allow_pickle=False)

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Store named weight arrays (as float32) for this epoch."""
        arrays = {str(k): np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        if arrays:
            with open(self._dir / "weights.npz", "wb") as fh:
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
        missing = [(s, l.name) for l in m.layers for s in (("probe", "test") if m.test_size else ("probe",))
                   if (s, l.name) not in self._buffers]
        if missing:
            self.discard()
            raise ValueError(f"epoch {self.epoch}: no activations were given for {missing}")
        for buf in self._buffers.values():
            buf.flush()
        self._buffers.clear()
        # Every epoch holds predictions (the layout promises them): -1 where none were given.
        for split, name in (("probe", "predictions.npy"), ("test", "test_predictions.npy")):
            if (split == "probe" or m.test_size) and not (self._dir / name).exists():
                self.set_predictions(np.full(self._split_size(split), -1, dtype=np.int64), split=split)
        with open(self._dir / "metrics.json", "w", encoding="utf-8") as fh:
            json.dump({"epoch": self.epoch, **self._metrics}, fh, indent=2, default=_json_default)
        for p in self._dir.rglob("*"):
            if p.is_file():
                with open(p, "rb+") as fh:
                    os.fsync(fh.fileno())
        final = self.writer.path / EPOCHS_DIR / f"{self.epoch:06d}"
        os.rename(self._dir, final)
        _fsync_dir(final.parent)
        self._done = True

    def discard(self) -> None:
        """Drop everything written for this epoch."""
        self._buffers.clear()
        shutil.rmtree(self._dir, ignore_errors=True)
        self._done = True
