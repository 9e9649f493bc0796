"""The framework-free core of every recorder, and the contract an adapter keeps.

An adapter (PyTorch, Keras, Lightning) knows its framework; this core knows none. Writing
an adapter for another framework means keeping these five promises (docs/frameworks.md,
"Writing an adapter", shows the whole loop):

1. **Settings.** The recorder takes the shared keyword arguments and builds one
   :class:`~epochscope.record.settings.RecordSettings` (``settings_from_options``), which
   checks them; it then checks its examples with
   :func:`~epochscope.record.probe.select_examples` and opens a
   :class:`RecordingSession` with the settings. It repeats none of these checks.
2. **Batch axis first, channel first.** :meth:`EpochRecording.add_batch` takes, per layer,
   a numpy array ``(b, C, ...)``: examples on the first axis, then channels, then any
   spatial axes (a channel-last framework moves its last axis to position 1, as Keras'
   adapter does), and the model's ``(b, n_classes)`` logits or probabilities.
3. **Weights in PyTorch's layout**, as float32 numpy arrays named ``"<layer>.weight"`` and
   ``"<layer>.bias"``: ``(out, in)`` for a dense layer, ``(out, in, *kernel)`` for a
   convolution (``(in, out, *kernel)`` for a transposed one), so every picture reads every
   run alike. Passed to :meth:`EpochRecording.commit`.
4. **Metric names.** The adapter hands its framework's raw metrics (Keras' ``logs``,
   Lightning's ``trainer.callback_metrics``, the user's dict) to
   :meth:`EpochRecording.commit`, which passes them through
   :func:`epochscope.metric_names.normalise_metrics`, the one normaliser; values the adapter
   measures itself under a reserved name (Lightning's global ``step``) go in ``counters``.
5. **Epoch numbers.** Epoch 0 is the model before training; after it, the epoch the
   framework has just finished (its own counter, or the run's next epoch when the
   framework restarts counting at every ``fit``). :meth:`RecordingSession.start_epoch`
   takes the number; the run refuses one it already holds.

The core encodes labels, reduces wide layers, turns model outputs into predicted classes,
writes into the run and commits each epoch atomically.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._errors import StorageError
from ..metric_names import RESERVED, normalise_metrics
from ..run import RunWriter
from ..run.manifest import inputs_fingerprint
from .labels import encode_labels
from .settings import REDUCE_METHODS, RecordSettings, Reduction

__all__ = ["REDUCE_METHODS", "EpochRecording", "RecordingSession", "Reducer", "Reduction", "predicted_classes",
           "reduction_description"]

log = logging.getLogger("epochscope")

_FLOAT16_MAX = float(np.finfo(np.float16).max)


class Reducer:
    """Maps one layer's batch output ``(n, *shape)`` to stored rows ``(n, width)``."""

    def __init__(self, shape: tuple[int, ...], settings: Reduction, matrix: np.ndarray | None = None) -> None:
        self.shape = shape
        flat = int(np.prod(shape)) if shape else 1
        self.pool = settings.method == "pool" and len(shape) >= 2 and flat > settings.max_width
        pooled = shape[0] if self.pool else flat
        self.matrix: np.ndarray | None = None
        if settings.method != "none" and pooled > settings.max_width:
            if matrix is None:
                rng = np.random.default_rng(settings.seed)
                matrix = (rng.standard_normal((pooled, settings.width)) / np.sqrt(settings.width)).astype(np.float32)
            if matrix.shape != (pooled, settings.width):
                raise ValueError(f"stored projection matrix has shape {matrix.shape}, expected {(pooled, settings.width)}")
            self.matrix = matrix
        self.width = self.matrix.shape[1] if self.matrix is not None else pooled
        self.description: dict[str, Any] | None = None
        if self.pool or self.matrix is not None:
            steps = (["pool"] if self.pool else []) + (["project"] if self.matrix is not None else [])
            self.description = {"method": "+".join(steps), "from": flat, "to": self.width, "seed": settings.seed}

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = batch.reshape(len(batch), *self.shape) if self.shape else batch.reshape(len(batch), 1)
        if self.pool:
            x = x.reshape(len(x), self.shape[0], -1).mean(axis=2)
        x = x.reshape(len(x), -1).astype(np.float32, copy=False)
        if self.matrix is not None:
            x = x @ self.matrix
        return x


def reduction_description(shape: tuple[int, ...], settings: Reduction) -> dict[str, Any] | None:
    """What :class:`Reducer` would store for an output of ``shape`` (its ``description``), without
    drawing a projection matrix: how a resume checks its settings against the run before training."""
    flat = int(np.prod(shape)) if shape else 1
    pool = settings.method == "pool" and len(shape) >= 2 and flat > settings.max_width
    pooled = shape[0] if pool else flat
    project = settings.method != "none" and pooled > settings.max_width
    if not (pool or project):
        return None
    steps = (["pool"] if pool else []) + (["project"] if project else [])
    return {"method": "+".join(steps), "from": flat, "to": settings.width if project else pooled, "seed": settings.seed}


def predicted_classes(outputs: np.ndarray | None, n: int) -> np.ndarray:
    """Predicted class per example from the model's outputs (logits or probabilities).

    Two or more columns: the arg-max; one column: a threshold at 0 for logits or 0.5 for
    probabilities in [0, 1]; anything else: ``-1`` (unknown).
    """
    if outputs is None:
        return np.full(n, -1, dtype=np.int64)
    out = np.asarray(outputs, dtype=np.float32).reshape(n, -1)
    if out.shape[1] >= 2:
        return out.argmax(axis=1).astype(np.int64)
    if out.shape[1] == 1:
        threshold = 0.5 if (out.min() >= 0 and out.max() <= 1) else 0.0
        return (out[:, 0] > threshold).astype(np.int64)
    return np.full(n, -1, dtype=np.int64)


class RecordingSession:
    """Owns the run writer for one recorder; creates one :class:`EpochRecording` per epoch.

    Parameters
    ----------
    settings : what to record and how (run folder, layers, class names, reduction, ...).
    probe_labels, test_labels : labels in any form :func:`encode_labels` accepts (already
        checked by :func:`~epochscope.record.probe.select_examples`).
    framework : recorded in the manifest ("torch", "keras", ...).
    probe_inputs, test_inputs : inputs to keep for thumbnails (kept when
        ``settings.keep_inputs`` and each example has at most ``max_input_values`` values).
    info : extra facts for the manifest (model name, backend...).

    Example::

        session = RecordingSession(RecordSettings("runs/x", ["hidden"]), probe_labels=y, framework="numpy")
        with session.start_epoch(0) as rec:
            rec.add_batch("probe", 0, {"hidden": activations}, logits)
        session.close()
    """

    max_input_values = 4096

    def __init__(
        self,
        settings: RecordSettings,
        *,
        probe_labels: object,
        framework: str,
        test_labels: object | None = None,
        probe_inputs: np.ndarray | None = None,
        test_inputs: np.ndarray | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(settings, RecordSettings):
            raise TypeError(f"settings: expected a RecordSettings, got {type(settings).__name__}; "
                            "build one with RecordSettings(run_dir, layers, ...)")
        self.settings = settings
        self.layers = list(settings.layers)
        class_names = settings.class_names
        labels, names = encode_labels(probe_labels, class_names, what="probe labels")
        test = None
        if test_labels is not None:
            test, test_names = encode_labels(test_labels, class_names, what="test labels")
            if class_names is None and len(test_names) > len(names):
                names = test_names  # a class that only the test set shows
        self.labels, self.class_names, self.test_labels = labels, names, test
        if len(np.unique(labels)) < 2:
            log.warning(
                "probe labels hold a single class (%r): maps will show one colour and accuracy says little; "
                "give a probe with examples of every class (epochscope.stratified_probe picks one)",
                names[int(labels[0])],
            )
        self._warned: set[str] = set()  # layers already warned about (NaN, float16 range)
        self._warned_metrics: set[str] = set()  # reserved metric names already warned about
        self.reduction = settings.reduction
        keep = (settings.keep_inputs and probe_inputs is not None
                and int(np.prod(np.shape(probe_inputs)[1:])) <= self.max_input_values)
        # A resume on other examples is refused: the run keeps a fingerprint of the inputs it was recorded on.
        fingerprints = {split: inputs_fingerprint(x) for split, x, y in (("probe", probe_inputs, labels),
                                                                          ("test", test_inputs, test))
                        if x is not None and y is not None}
        self.writer = RunWriter.open(
            settings.run_dir,
            framework=framework,
            labels=labels,
            class_names=names,
            test_labels=test,
            probe_inputs=np.asarray(probe_inputs) if keep else None,
            test_inputs=np.asarray(test_inputs) if keep and test_inputs is not None and test is not None else None,
            info=info,
            resume=settings.resume,
            fingerprints=fingerprints,
        )
        try:  # a resume that leaves out a layer or reduces one otherwise is refused now, before training
            self.writer.check_layers(self.layers, lambda info: reduction_description(info.output_shape, self.reduction))
        except BaseException:
            self.writer.close()
            raise
        self._reducers: dict[str, Reducer] = {}
        self._after_skipped = 0  # epochs left out on a full disk (on_disk_full="skip") keep their numbers
        self.started = time.time()

    @property
    def next_epoch(self) -> int:
        return max(self.writer.next_epoch, self._after_skipped)

    @property
    def path(self) -> str:
        return str(self.writer.path)

    def reducer(self, layer: str, shape: tuple[int, ...]) -> Reducer:
        """The layer's reducer, built (and declared in the manifest) on first sight."""
        if layer not in self._reducers:
            reducer = Reducer(shape, self.reduction, self.writer.reduction_matrix(layer))
            if reducer.matrix is not None:
                self.writer.save_reduction_matrix(layer, reducer.matrix)
            self.writer.declare_layer(layer, shape, reducer.width, reducer.description)
            self._reducers[layer] = reducer
        reducer = self._reducers[layer]
        if reducer.shape != shape:
            raise ValueError(f"layer '{layer}' output shape changed from {reducer.shape} to {shape} per example")
        return reducer

    def start_epoch(self, epoch: int | None = None) -> EpochRecording:
        """Begin recording ``epoch`` (default: the next one)."""
        epoch = self.next_epoch if epoch is None else int(epoch)
        return EpochRecording(self, epoch)

    def close(self) -> None:
        self.writer.close()


class EpochRecording:
    """One epoch being captured: feed batches, then :meth:`commit` (or use ``with``)."""

    def __init__(self, session: RecordingSession, epoch: int) -> None:
        self.session = session
        self.epoch = epoch
        self.builder = session.writer.epoch(epoch)
        self._predictions = {"probe": np.full(len(session.labels), -1, np.int64)}
        if session.test_labels is not None:
            self._predictions["test"] = np.full(len(session.test_labels), -1, np.int64)
        self._t0 = time.perf_counter()
        self.committed = False
        #: the disk was full and ``on_disk_full="skip"``: this epoch is left out (nothing more is written)
        self.skipped = False

    def _disk_full(self, err: StorageError) -> None:
        """The epoch could not be written (the builder has discarded it): raise, or leave it out and go on."""
        if self.session.settings.on_disk_full != "skip":
            raise err
        self.skipped = True
        self.session._after_skipped = max(self.session._after_skipped, self.epoch + 1)
        log.warning("%s. Epoch %d is left out and training goes on (on_disk_full='skip').", err, self.epoch)

    def __enter__(self) -> EpochRecording:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        elif not self.committed:
            self.builder.discard()

    def add_batch(self, split: str, start: int, layer_outputs: Mapping[str, np.ndarray],
                  model_outputs: np.ndarray | None) -> None:
        """Store one batch: ``layer_outputs[layer]`` is ``(b, *shape)`` channel-first,
        ``model_outputs`` the model's ``(b, n_classes)`` logits or probabilities (or None)."""
        if self.skipped:
            return
        try:
            self._add_batch(split, start, layer_outputs, model_outputs)
        except StorageError as err:
            self._disk_full(err)

    def _add_batch(self, split: str, start: int, layer_outputs: Mapping[str, np.ndarray],
                   model_outputs: np.ndarray | None) -> None:
        b = None
        for layer, out in layer_outputs.items():
            out = np.asarray(out)
            if not np.issubdtype(out.dtype, np.number):
                raise TypeError(f"layer '{layer}' produced {out.dtype} values; only numeric outputs can be recorded")
            b = len(out)
            reducer = self.session.reducer(layer, tuple(out.shape[1:]))
            rows = self._storable(layer, reducer(out))
            self.builder.layer_buffer(layer, split=split)[start:start + b] = rows
        if model_outputs is not None:
            b = len(model_outputs) if b is None else b
            self._predictions[split][start:start + b] = predicted_classes(model_outputs, b)

    def _storable(self, layer: str, rows: np.ndarray) -> np.ndarray:
        """Rows ready for float16 storage: finite values beyond its range are clipped rather than
        silently turned into infinities; NaN/inf from the model are kept and reported once per layer."""
        warned = self.session._warned
        finite = np.isfinite(rows)
        if not finite.all() and layer not in warned:
            warned.add(layer)  # once per layer: a diverged model stays diverged
            log.warning("layer '%s' output NaN or infinite values at epoch %d (%d of %d in one batch); the model "
                        "has probably diverged (try a lower learning rate). They are recorded as they are.",
                        layer, self.epoch, int((~finite).sum()), rows.size)
        big = finite & (np.abs(rows) > _FLOAT16_MAX)
        if big.any():
            if f"range:{layer}" not in warned:
                warned.add(f"range:{layer}")
                log.warning("layer '%s' output values up to %.3g at epoch %d, beyond the float16 range in which "
                            "activations are stored; they are clipped to ±%g", layer, float(np.abs(rows[big]).max()),
                            self.epoch, _FLOAT16_MAX)
            rows = np.where(big, np.sign(rows) * _FLOAT16_MAX, rows)
        return rows

    def commit(self, metrics: Mapping[str, Any] | None = None, weights: Mapping[str, np.ndarray] | None = None,
               *, counters: Mapping[str, float | int] | None = None) -> int:
        """Write predictions, weights and metrics and make the epoch durable; returns the epoch.

        ``metrics`` are the framework's or the user's, raw: they are stored under the names
        :func:`~epochscope.metric_names.normalise_metrics` gives them, and never under a
        reserved name. ``counters`` are values the adapter itself measures under a reserved
        name (Lightning's ``step``), stored as given. ``weights`` follow the adapter contract
        (PyTorch layout; see the module docstring).
        """
        if self.committed or self.skipped:
            return self.epoch
        try:
            return self._commit(metrics, weights, counters)
        except StorageError as err:
            self._disk_full(err)
            return self.epoch

    def _commit(self, metrics: Mapping[str, Any] | None, weights: Mapping[str, np.ndarray] | None,
                counters: Mapping[str, float | int] | None) -> int:
        s = self.session
        unknown = sorted(set(counters or {}) - RESERVED)
        if unknown:
            raise ValueError(f"counters: expected reserved names ({', '.join(sorted(RESERVED))}), got {unknown}; "
                             "pass other values as metrics")
        row: dict[str, Any] = {}
        for split, labels in (("probe", s.labels), ("test", s.test_labels)):
            if labels is None:
                continue
            pred = self._predictions[split]
            self.builder.set_predictions(pred, split=split)
            if (pred >= 0).any():
                row[f"{split}_accuracy"] = float((pred == labels).mean())
        if weights:
            self.builder.set_weights(weights)
        row.update(normalise_metrics(metrics, reserved=RESERVED, warned=s._warned_metrics))
        row.update(counters or {})
        row["wall_time"] = time.time()
        row["elapsed"] = time.time() - s.started
        row["record_seconds"] = time.perf_counter() - self._t0
        self.builder.set_metrics(row)
        self.builder.commit()
        self.committed = True
        return self.epoch
