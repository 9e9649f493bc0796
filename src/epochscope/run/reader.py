"""Reading a run directory: :class:`Run`, opened with :func:`open_run`.

Arrays come back memory-mapped and are read with ``allow_pickle=False`` through the checked
readers of :mod:`epochscope.run.fileio`; every path comes from :mod:`epochscope.run.layout`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import DamagedFileError, NotARunError
from .fileio import is_real_dir, is_regular, load_npy, load_npz, read_json
from .layout import MANIFEST_FILE, RunLayout, layer_file, metrics_file, predictions_file, weights_file
from .manifest import LayerInfo, Manifest
from .texts import MAX_TEXTS_BYTES, parse_texts
from .timeline import Timeline

__all__ = ["EMPTY_WEIGHTS", "MAX_METRICS_BYTES", "Run", "open_run"]

#: The largest metrics row read (one epoch's numbers; a row is a few hundred bytes).
MAX_METRICS_BYTES = 4 * 2**20

#: What a weights file that holds no array is (the reader's error and ``epochscope check`` say it alike).
EMPTY_WEIGHTS = ("an archive that holds no array; the writer writes no weights file for an epoch without weights, "
                 "so the file was damaged or replaced")


class Run:
    """A run directory opened for reading. Use :func:`open_run` to get one.

    Arrays come back memory-mapped (read-only), so a run larger than memory can be read
    an epoch at a time. The epoch list is re-read from disk on every access, so a run can
    be rendered while training still appends to it.

    A run may come from someone else: every file is read through the checked readers of
    :mod:`epochscope.run.fileio` (regular files only, no link followed below the run's folder,
    every array checked against the shape the manifest declares before it is read), so a
    damaged or hostile run raises :class:`~epochscope.RunError` naming the file, never hangs
    and never exhausts memory. A file that cannot be read raises its subclass
    :class:`~epochscope._errors.DamagedFileError` (what the pictures stop on).

    Example::

        run = epochscope.open_run("runs/mnist")
        run.epochs                       # [0, 1, 2, ...]
        run.activations("hidden", 3)     # float16 array (n_probe, 512)
        run.metrics[-1]["val_accuracy"]
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        #: Every path inside this run (see :mod:`epochscope.run.layout`).
        self.layout = RunLayout(self.path)
        if not self.path.is_dir():
            what = "is a file, not a folder" if self.path.exists() else "no such folder"
            raise NotARunError(f"{self.path}: {what}; give the folder a recorder wrote (it holds {MANIFEST_FILE})")
        try:
            raw = read_json(self.layout.manifest, root=self.path)
        except FileNotFoundError as err:
            raise NotARunError(
                f"{self.path} is not an epochscope run: {MANIFEST_FILE} is missing. "
                "Point at the folder given as run_dir when recording (e.g. OUT/run for the demo)."
            ) from err
        if not isinstance(raw, dict):
            raise DamagedFileError(f"{self.layout.manifest}: expected a JSON object")
        self.manifest = Manifest.from_json(raw, where=str(self.layout.manifest))

    # -- what the run holds
    def __repr__(self) -> str:
        epochs = self.epochs
        span = f"{epochs[0]}..{epochs[-1]}" if epochs else "none"
        return f"Run({str(self.path)!r}, epochs={span}, layers={self.layers}, probe={self.manifest.probe_size})"

    @property
    def epochs(self) -> list[int]:
        """The finished records' numbers, ascending: the epochs, in a run recorded once an epoch;
        the optimizer steps, in a run recorded inside epochs (``manifest.record_unit == "step"``;
        :attr:`timeline` gives each record's step and fractional epoch)."""
        return self.layout.finished_epochs()

    @property
    def timeline(self) -> Timeline:
        """Where each finished record sits in training: its step and (fractional) epoch, the time
        axis and labels the pictures use (see :mod:`epochscope.run.timeline`). Raises
        :class:`RunError` naming the record when a step run's records contradict each other."""
        records = self.epochs
        if self.manifest.record_unit == "epoch":
            return Timeline.of_epochs(records)
        rows = [self.epoch_metrics(r) for r in records]
        where = [str(metrics_file(self.layout.epoch_dir(r))) for r in records]
        return Timeline.from_rows(self.manifest.record_unit, records, rows, where)

    @property
    def layers(self) -> list[str]:
        """Names of the recorded layers, in recording order."""
        return [info.name for info in self.manifest.layers]

    @property
    def framework(self) -> str:
        """The framework that recorded the run (``"torch"``, ``"keras"``, ``"chainer"``, ...)."""
        return self.manifest.framework

    @property
    def class_names(self) -> list[str]:
        """The class names, indexed by label."""
        return list(self.manifest.class_names)

    @property
    def labels(self) -> np.ndarray:
        """Integer class of every probe example: int64 ``(n_probe,)``, indices into :attr:`class_names`."""
        return load_npy(self.layout.labels("probe"), mmap=False, root=self.path, shape=(self.manifest.probe_size,))

    @property
    def test_labels(self) -> np.ndarray | None:
        """Integer class of every test example: int64 ``(n_test,)``, or ``None`` when no test set was recorded."""
        if not self.manifest.test_size:
            return None
        return load_npy(self.layout.labels("test"), mmap=False, root=self.path, shape=(self.manifest.test_size,))

    @property
    def probe_inputs(self) -> np.ndarray | None:
        """The probe inputs, float16 ``(n_probe, *input_shape)`` memory-mapped, when they were kept
        (``keep_inputs=True``, each input of 4,096 values or fewer that float16 holds exactly), else ``None``."""
        if not self.manifest.has_probe_inputs:
            return None
        return load_npy(self.layout.inputs("probe"), root=self.path, shape=self._input_shape(self.manifest.probe_size))

    @property
    def test_inputs(self) -> np.ndarray | None:
        """The test inputs, float16 ``(n_test, *input_shape)`` memory-mapped, when they were kept, else ``None``."""
        if not self.manifest.has_test_inputs:
            return None
        return load_npy(self.layout.inputs("test"), root=self.path, shape=self._input_shape(self.manifest.test_size))

    @property
    def probe_texts(self) -> list[str] | None:
        """The probe examples' texts (one string each) when the run kept them, else ``None``."""
        return self._texts("probe", self.manifest.has_probe_texts, self.manifest.probe_size)

    @property
    def test_texts(self) -> list[str] | None:
        """The test examples' texts when the run kept them, else ``None``."""
        return self._texts("test", self.manifest.has_test_texts, self.manifest.test_size)

    def _texts(self, split: str, kept: bool, n: int) -> list[str] | None:
        if not kept or not n:
            return None
        path = self.layout.texts(split)
        try:
            value = read_json(path, root=self.path, max_bytes=MAX_TEXTS_BYTES)
        except FileNotFoundError as err:
            raise DamagedFileError(f"{path}: file missing from the run") from err
        return parse_texts(value, n, str(path))

    def _input_shape(self, n: int) -> tuple[int, ...] | None:
        shape = self.manifest.input_shape
        return None if shape is None else (n, *shape)

    @property
    def has_test(self) -> bool:
        """Whether a test set was recorded beside the probe set."""
        return self.manifest.test_size > 0

    def layer_info(self, layer: str) -> LayerInfo:
        """Shape and reduction of one recorded layer (``ValueError`` listing the layers if unknown)."""
        return self.manifest.layer(layer)

    # -- per epoch
    def epoch_dir(self, epoch: int) -> Path:
        """Folder of one finished epoch (``ValueError`` listing the epochs if it is not there, or for a
        number that is not whole: 4.5 names no epoch, and was read as epoch 4)."""
        if isinstance(epoch, bool) or not float(epoch).is_integer():
            raise ValueError(f"epoch must be a whole number, got {epoch!r}")
        epoch = int(epoch)
        # A negative number names no epoch; said the same way as any other missing epoch.
        path = self.layout.epoch_dir(epoch) if epoch >= 0 else None
        if path is None or not is_real_dir(path):  # a link is not an epoch (never followed)
            epochs = self.epochs
            span = f"{epochs[0]}..{epochs[-1]}" if epochs else "none yet"
            raise ValueError(f"epoch {epoch} is not in the run {self.path} (epochs: {span})")
        return path

    def _layer_file(self, split: str, layer: str, epoch: int) -> Path:
        info = self.layer_info(layer)
        return layer_file(self.epoch_dir(epoch), split, info.key)

    def activations(self, layer: str, epoch: int) -> np.ndarray:
        """The probe set's outputs of ``layer`` at ``epoch``: float16 ``(n_probe, width)``, memory-mapped.

        Raises ``ValueError`` for a layer or epoch the run does not hold (the message lists those
        it holds) and :class:`~epochscope._errors.DamagedFileError` for a file that is missing,
        truncated or not of that shape and dtype.
        """
        return load_npy(self._layer_file("probe", layer, epoch), root=self.path,
                        shape=(self.manifest.probe_size, self.layer_info(layer).width))

    def test_activations(self, layer: str, epoch: int) -> np.ndarray | None:
        """The test set's outputs of ``layer`` at ``epoch``: float16 ``(n_test, width)``,
        memory-mapped, or ``None`` when no test set was recorded. Raises as :meth:`activations`."""
        if not self.has_test:
            return None
        return load_npy(self._layer_file("test", layer, epoch), root=self.path,
                        shape=(self.manifest.test_size, self.layer_info(layer).width))

    def layer_epochs(self, layer: str) -> list[int]:
        """The finished epochs that hold ``layer``'s outputs, ascending.

        Every epoch, unless the layer was added when the run was resumed (it is held from
        that epoch on) or files were deleted. Maps and pictures of a layer draw these epochs.

        >>> run.layer_epochs("classifier")  # doctest: +SKIP
        [5, 6, 7]
        """
        key = self.layer_info(layer).key
        return [e for e in self.epochs if is_regular(layer_file(self.layout.epoch_dir(e), "probe", key))]

    def predictions(self, epoch: int) -> np.ndarray:
        """Predicted class of every probe example at ``epoch``: int64 ``(n_probe,)``, ``-1`` where the
        model gave none. Raises as :meth:`activations`."""
        return load_npy(predictions_file(self.epoch_dir(epoch), "probe"), mmap=False, root=self.path,
                        shape=(self.manifest.probe_size,))

    def test_predictions(self, epoch: int) -> np.ndarray | None:
        """Predicted class of every test example at ``epoch``: int64 ``(n_test,)``, or ``None``
        without a test set. Raises as :meth:`activations`."""
        if not self.has_test:
            return None
        return load_npy(predictions_file(self.epoch_dir(epoch), "test"), mmap=False, root=self.path,
                        shape=(self.manifest.test_size,))

    def has_weights(self, epoch: int) -> bool:
        """Whether weights were recorded at ``epoch`` (they are optional per epoch)."""
        return weights_file(self.epoch_dir(epoch)).exists() or weights_file(self.epoch_dir(epoch)).is_symlink()

    def weights(self, epoch: int) -> dict[str, np.ndarray]:
        """The recorded weights at ``epoch`` as ``{parameter name: float32 array}`` (empty if none).

        Raises :class:`~epochscope._errors.DamagedFileError` for a weights file that cannot be read
        or holds no array: the writer writes none for an epoch without weights, so an empty one is
        damage, never an epoch that recorded no weights."""
        path = weights_file(self.epoch_dir(epoch))
        if not path.exists() and not path.is_symlink():
            return {}
        weights = load_npz(path, root=self.path)
        if not weights:
            raise DamagedFileError(f"{path}: {EMPTY_WEIGHTS}")
        return weights

    def epoch_metrics(self, epoch: int) -> dict[str, Any]:
        """The metrics row of one epoch; its ``"epoch"`` is always the epoch's own number.

        A row whose stored ``"epoch"`` says otherwise (a user metric of that name overwrote it
        in runs recorded before epochscope kept it apart) keeps that value as ``"user_epoch"``.
        """
        epoch = int(epoch)
        path = metrics_file(self.epoch_dir(epoch))
        try:
            row = read_json(path, root=self.path, max_bytes=MAX_METRICS_BYTES)
        except FileNotFoundError as err:
            raise DamagedFileError(f"{path}: file missing from the run") from err
        if not isinstance(row, dict):
            raise DamagedFileError(f"{path}: expected a JSON object")
        stored = row.get("epoch")
        if stored != epoch or isinstance(stored, bool):
            if "epoch" in row:
                row.setdefault("user_epoch", stored)
            row = {"epoch": epoch, **{k: v for k, v in row.items() if k != "epoch"}}
        return row

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """One metrics dict per finished epoch, in epoch order."""
        return [self.epoch_metrics(e) for e in self.epochs]

    # -- derived data
    @property
    def cache_dir(self) -> Path:
        """Folder for derived data (2-D maps); it may not exist yet."""
        return self.layout.cache_dir

    def describe(self) -> str:
        """A human-readable summary, as printed by ``epochscope info`` (see :func:`epochscope.run.summary.describe`)."""
        from .summary import describe

        return describe(self)


def open_run(path: str | os.PathLike[str]) -> Run:
    """Open a run directory for reading.

    Raises :class:`~epochscope.NotARunError` when ``path`` holds no manifest and
    :class:`~epochscope.RunError` when the manifest is malformed or from a newer version.

    >>> run = open_run("runs/mnist")  # doctest: +SKIP
    """
    return Run(path)
