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
   adapter does), and the model's ``(b, n_classes)`` logits or probabilities, with ``size=b``
   (the examples in the batch), against which every array's first axis is checked. A
   *sequence* output is handed as ``(b, T, E)`` (tokens second, features last) and named in
   ``sequences``, with the inputs' token mask when they carry one; the core reduces it over
   its tokens as ``settings.tokens`` says. Arrays are copies the model can no longer change
   (snapshot each output when the layer returns it, not after the forward pass).
3. **Weights in PyTorch's layout**, as float32 numpy arrays named ``"<layer>.weight"`` and
   ``"<layer>.bias"``: ``(out, in)`` for a dense layer, ``(out, in, *kernel)`` for a
   convolution (``(in, out, *kernel)`` for a transposed one), so every picture reads every
   run alike. Passed to :meth:`EpochRecording.commit`.
4. **Metric names.** The adapter hands its framework's raw metrics (Keras' ``logs``,
   Lightning's ``trainer.callback_metrics``, the user's dict) to
   :meth:`EpochRecording.commit`, which passes them through
   :func:`epochscope.metric_names.normalise_metrics`, the one normaliser; values the adapter
   measures itself under a reserved name (Lightning's global ``step``) go in ``counters``.
5. **Epoch numbers.** Epoch 0 is the model before training; after it, the number of epochs
   the framework says the model has finished (Keras' ``epoch`` argument + 1, Lightning's
   ``current_epoch`` + 1), also after a resume from a checkpoint.
   :meth:`RecordingSession.start_epoch` takes the number; an epoch the run already holds is
   refused with a message that says how to go on (the adapter adds its framework's way in
   ``resume_help``), or replaced with every later one when ``settings.replace_epochs``.

The core encodes labels (one vocabulary for every split), checks the batch axis of every
array, reduces sequences and wide layers, turns model outputs into predicted classes (one
threshold rule for one-output models, decided once), writes into the run and commits an
epoch atomically, and only when every row of every layer was written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np

from .._errors import EpochscopeError, StorageError
from ..metric_names import RESERVED, normalise_metrics
from ..run import RunWriter
from ..run.manifest import inputs_fingerprint
from ..run.summary import epoch_spans
from ..run.timeline import CUT_SHORT_KEY, cut_short_epochs
from .labels import encode_splits
from .projection import PROJECTION_KIND, SparseProjection, legacy_gaussian
from .schedule import open_schedule
from .settings import REDUCE_METHODS, RecordSettings, Reduction

__all__ = ["REDUCE_METHODS", "EpochRecording", "RecordingSession", "Reducer", "Reduction", "decide_threshold",
           "predicted_classes", "reduction_description"]

log = logging.getLogger("epochscope")

_FLOAT16_MAX = float(np.finfo(np.float16).max)
# Integers up to 2**11 are exact in float16, the dtype kept inputs are stored in.
_FLOAT16_EXACT_INT = 2048


class Reducer:
    """Maps one layer's batch output ``(n, *shape)`` to stored rows ``(n, width)``.

    Steps, each optional, in order: ``tokens`` (a sequence ``(n, T, E)`` to ``(n, E)``: the
    mean over its tokens, or the first or last token; the real tokens only when a mask is
    given), ``pool`` (the mean over the spatial axes of ``(n, C, ...)``) and a fixed random
    projection to ``width`` values (:class:`~epochscope.record.projection.SparseProjection`
    from the seed, or a dense matrix a run recorded before it stored).
    ``description`` is what the manifest records (``None``: stored as it is, flattened).

    Build it with :meth:`plan` (a new layer) or :meth:`resume` (a layer the run holds).
    """

    def __init__(self, shape: tuple[int, ...], *, tokens: str | None = None, mask: str | None = None,
                 pool: bool = False, width: int | None = None, seed: int = 0,
                 matrix: np.ndarray | None = None) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.tokens, self.mask, self.pool, self.seed = tokens, mask, pool, int(seed)
        flat = int(np.prod(self.shape)) if self.shape else 1
        if tokens is not None and len(self.shape) != 2:
            raise ValueError(f"a token reduction needs a sequence (tokens, features) per example, got shape {self.shape}")
        kept = self.shape[1] if tokens is not None else (self.shape[0] if pool else flat)
        self.projection: SparseProjection | None = None
        self.matrix: np.ndarray | None = None
        if matrix is not None:
            if width is not None and matrix.shape != (kept, width):
                raise ValueError(f"stored projection matrix has shape {matrix.shape}, expected {(kept, width)}")
            self.matrix = np.asarray(matrix, dtype=np.float32)
        elif width is not None:
            self.projection = SparseProjection(kept, width, seed)
        if self.matrix is not None:
            self.width = int(self.matrix.shape[1])
        else:
            self.width = int(width) if self.projection is not None else kept
        steps = (["tokens"] if tokens else []) + (["pool"] if pool else []) + \
            (["project"] if self.matrix is not None or self.projection is not None else [])
        self.description: dict[str, Any] | None = None
        if steps:
            self.description = {"method": "+".join(steps), "from": flat, "to": self.width, "seed": self.seed}
            if tokens:
                self.description.update(tokens=tokens, mask=mask)
            if self.projection is not None:
                self.description.update(self.projection.describe())

    @classmethod
    def plan(cls, shape: tuple[int, ...], settings: Reduction, *, sequence: bool = False, tokens: str = "mean",
             mask: str | None = None) -> Reducer:
        """The reducer of a layer seen for the first time: ``sequence`` outputs ``(T, E)`` per
        example are reduced over their tokens (``tokens``, honouring the ``mask`` input when
        named); whatever is still wider than ``settings.max_width`` is pooled or projected."""
        shape = tuple(int(s) for s in shape)
        token_mode = tokens if sequence and len(shape) == 2 and tokens != "none" else None
        flat = int(np.prod(shape)) if shape else 1
        if token_mode:
            kept, pool = shape[1], False
        else:
            # Pooling a sequence kept whole would average each token's features: never done.
            pool = settings.method == "pool" and not sequence and len(shape) >= 2 and flat > settings.max_width
            kept = shape[0] if pool else flat
        width = settings.width if settings.method != "none" and kept > settings.max_width else None
        return cls(shape, tokens=token_mode, mask=mask if token_mode else None, pool=pool, width=width,
                   seed=settings.seed)

    @classmethod
    def resume(cls, shape: tuple[int, ...], reduction: Mapping[str, Any] | None, width: int,
               matrix: np.ndarray | None = None) -> Reducer:
        """The reducer a run recorded for a layer (its manifest ``reduction`` and stored ``width``),
        so a resumed recording stores the layer as the earlier epochs did. Runs recorded before
        the sparse projection stored their dense matrix (``matrix``); if that file was lost, it is
        drawn again from the recorded seed as those runs drew it."""
        if not reduction:
            return cls(shape)
        method = str(reduction.get("method", ""))
        seed = int(reduction.get("seed", 0))
        tokens = reduction.get("tokens") if "tokens" in method else None
        project = "project" in method
        if project and reduction.get("projection") != PROJECTION_KIND and matrix is None:
            flat_in = int(np.prod(shape)) if not tokens else int(shape[1])
            if "pool" in method:
                flat_in = int(shape[0])
            matrix = legacy_gaussian(flat_in, width, seed)
        return cls(shape, tokens=tokens, mask=reduction.get("mask"), pool="pool" in method,
                   width=width if project else None, seed=seed,
                   matrix=matrix if project and reduction.get("projection") != PROJECTION_KIND else None)

    def __call__(self, batch: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Stored rows (float32 ``(n, width)``) of one batch; ``mask`` (n, T), true for real
        tokens, is used when the reducer honours a mask."""
        n = len(batch)
        x = batch.reshape(n, *self.shape) if self.shape else batch.reshape(n, 1)
        if self.mask and mask is None:
            raise ValueError(f"this layer's tokens are averaged over the real tokens the inputs' '{self.mask}' marks "
                             "(as the run recorded it), but these inputs carry no such mask; give the same inputs")
        if self.tokens is not None:
            x = _reduce_tokens(np.asarray(x, dtype=np.float32), self.tokens, mask if self.mask else None)
        if self.pool:
            x = x.reshape(n, self.shape[0], -1).mean(axis=2)
        x = x.reshape(n, -1).astype(np.float32, copy=False)
        if self.matrix is not None:
            x = x @ self.matrix
        elif self.projection is not None:
            x = self.projection(x)
        return x


def reduction_description(info: Any, settings: Reduction, tokens: str = "mean") -> dict[str, Any] | None:
    """What a recorder with these settings would store for a recorded layer (``info``: its
    :class:`~epochscope.LayerInfo`), as :class:`Reducer` describes it: how a resume checks its
    settings against the run before training. A layer the run recorded as a token sequence is
    planned as one (the manifest's reduction says so)."""
    stored = dict(info.reduction or {})
    sequence = "tokens" in str(stored.get("method", "")) or (tokens == "none" and stored.get("tokens") is not None)
    return Reducer.plan(tuple(info.output_shape), settings, sequence=sequence, tokens=tokens,
                        mask=stored.get("mask")).description


def _reduce_tokens(x: np.ndarray, how: str, mask: np.ndarray | None) -> np.ndarray:
    """(n, T, E) -> (n, E): the mean over the (real) tokens, or the first / last (real) token.

    An example whose mask marks no token at all falls back to all of its tokens.
    """
    n, t = x.shape[:2]
    if mask is None:
        real = np.ones((n, t), dtype=bool)
    else:
        real = np.asarray(mask).astype(bool).reshape(n, t)
        real[~real.any(axis=1)] = True
    if how == "mean":
        weights = real.astype(np.float32)
        return np.einsum("nt,nte->ne", weights, x) / weights.sum(axis=1, keepdims=True)
    positions = np.arange(t)
    index = np.where(real, positions, t).min(axis=1) if how == "first" else np.where(real, positions, -1).max(axis=1)
    return x[np.arange(n), index]


def decide_threshold(scores: np.ndarray) -> float:
    """The class-1 threshold for a one-output model, from ALL of a capture's outputs:
    ``0.5`` when every finite value lies in [0, 1] (probabilities), else ``0.0`` (logits).

    >>> decide_threshold(np.array([0.1, 0.9])), decide_threshold(np.array([-2.0, 0.3]))
    (0.5, 0.0)
    """
    finite = scores[np.isfinite(scores)]
    return 0.5 if len(finite) and finite.min() >= 0 and finite.max() <= 1 else 0.0


def predicted_classes(outputs: np.ndarray | None, n: int, threshold: float | None = None) -> np.ndarray:
    """Predicted class per example from the model's outputs (logits or probabilities).

    Two or more columns: the arg-max, in the outputs' own precision; one column: 1 where the
    value is above ``threshold`` (``None``: :func:`decide_threshold` of these outputs), NaN
    gives -1; anything else: ``-1`` (unknown).
    """
    if outputs is None:
        return np.full(n, -1, dtype=np.int64)
    out = np.asarray(outputs)
    if out.dtype.kind not in "fc" or out.dtype.itemsize < 4:
        out = out.astype(np.float64 if out.dtype.kind in "iub" else np.float32)
    out = out.reshape(n, -1)
    if out.shape[1] >= 2:
        return out.argmax(axis=1).astype(np.int64)
    if out.shape[1] == 1:
        values = out[:, 0]
        threshold = decide_threshold(values) if threshold is None else threshold
        return np.where(np.isnan(values), -1, values > threshold).astype(np.int64)
    return np.full(n, -1, dtype=np.int64)


def _keepable(x: np.ndarray | None, limit: int) -> str | None:
    """Why ``x`` cannot be kept as float16 thumbnails, or ``None`` when it can."""
    if x is None:
        return "no inputs given"
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "fiub":
        return "the inputs are not one numeric array"
    if int(np.prod(x.shape[1:])) > limit:
        return f"each example holds more than {limit} values"
    if x.dtype.kind in "iu" and x.size and int(np.abs(x).max()) > _FLOAT16_EXACT_INT:
        return "integer inputs (token ids?) beyond 2048 would change in float16"
    return None


class RecordingSession:
    """Owns the run writer for one recorder; creates one :class:`EpochRecording` per epoch.

    Parameters
    ----------
    settings : what to record and how (run folder, layers, class names, reduction, ...).
    probe_labels, test_labels : labels in any form :func:`encode_labels` accepts (already
        checked by :func:`~epochscope.record.probe.select_examples`); both are encoded into
        one vocabulary (:func:`~epochscope.record.labels.class_vocabulary`).
    framework : recorded in the manifest ("torch", "keras", ...).
    probe_inputs, test_inputs : inputs to keep for thumbnails (kept when
        ``settings.keep_inputs``, each example has at most ``max_input_values`` values, and
        float16 holds them: integer inputs beyond 2048, such as token ids, are not kept).
    info : extra facts for the manifest (model name, backend...).
    resume_help : the adapter's sentence on how to continue a run in its framework, used when
        an epoch the run holds is recorded again; ``{next}`` and ``{last}`` are filled in.
    probe_texts, test_texts : one text per example (a text model's sentences), kept in a new
        run for the report's hover (``RUN/<split>/texts.json``, bounded; see
        :mod:`epochscope.run.texts`); checked by the writer.

    Example::

        session = RecordingSession(RecordSettings("runs/x", ["hidden"]), probe_labels=y, framework="numpy")
        with session.start_epoch(0) as rec:
            rec.add_batch("probe", 0, {"hidden": activations}, logits, size=len(activations))
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
        resume_help: str = "the next epoch to record is {next}",
        probe_texts: Collection[str] | None = None,
        test_texts: Collection[str] | None = None,
    ) -> None:
        if not isinstance(settings, RecordSettings):
            raise TypeError(f"settings: expected a RecordSettings, got {type(settings).__name__}; "
                            "build one with RecordSettings(run_dir, layers, ...)")
        self.settings = settings
        self.layers = list(settings.layers)
        splits = [("probe labels", probe_labels)] + ([("test labels", test_labels)] if test_labels is not None else [])
        encoded, names = encode_splits(splits, settings.class_names)
        labels, test = encoded[0], (encoded[1] if test_labels is not None else None)
        self.labels, self.class_names, self.test_labels = labels, names, test
        if len(np.unique(labels)) < 2:
            log.warning(
                "probe labels hold a single class (%r): maps will show one colour and accuracy says little; "
                "give a probe with examples of every class (epochscope.stratified_probe picks one)",
                names[int(labels[0])],
            )
        self.resume_help = resume_help
        self._warned: set[str] = set()  # layers and facts already warned about (NaN, float16 range, classes)
        self._warned_metrics: set[str] = set()  # reserved metric names already warned about
        self.reduction = settings.reduction
        why = _keepable(None if probe_inputs is None else probe_inputs, self.max_input_values) \
            if settings.keep_inputs else "keep_inputs=False"
        keep = why is None
        if settings.keep_inputs and probe_inputs is not None and not keep:
            log.info("probe inputs are not kept for thumbnails: %s", why)
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
            test_inputs=np.asarray(test_inputs) if keep and test_inputs is not None and test is not None
            and _keepable(test_inputs, self.max_input_values) is None else None,
            info=info,
            resume=settings.resume,
            fingerprints=fingerprints,
            overwrite=settings.overwrite,
            probe_texts=probe_texts,
            test_texts=test_texts if test is not None else None,
        )
        try:  # a resume that leaves out a layer or reduces one otherwise is refused now, before training
            self.writer.check_layers(self.layers, lambda info: reduction_description(info, self.reduction, settings.tokens))
            self.schedule = open_schedule(self.writer, settings)  # every N epochs / steps (record/schedule.py)
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
    def epochs(self) -> list[int]:
        """The epochs the run holds."""
        return self.writer.epochs

    @property
    def path(self) -> str:
        return str(self.writer.path)

    @property
    def binary_threshold(self) -> float | None:
        """The one-output threshold: the settings', else the one this run decided (manifest), else ``None``."""
        if self.settings.binary_threshold is not None:
            return self.settings.binary_threshold
        decided = self.writer.manifest.info.get("binary_threshold")
        return None if decided is None else float(decided)

    def reducer(self, layer: str, shape: tuple[int, ...], *, sequence: bool = False,
                mask_name: str | None = None, mask_tokens: int | None = None) -> Reducer:
        """The layer's reducer, built (and declared in the manifest) on first sight; a layer the
        run already holds is stored as the run recorded it."""
        if layer not in self._reducers:
            held = next((info for info in self.writer.manifest.layers if info.name == layer), None)
            if held is not None and held.output_shape == tuple(shape):
                reducer = Reducer.resume(shape, held.reduction, held.width, self.writer.reduction_matrix(layer))
            else:
                # The mask applies when it has one entry per token of this layer.
                mask = mask_name if sequence and len(shape) == 2 and mask_tokens == shape[0] else None
                if sequence and mask_name and mask is None and f"mask:{layer}" not in self._warned:
                    self._warned.add(f"mask:{layer}")
                    log.warning("layer '%s' outputs %s tokens but the inputs' '%s' has %s: its token reduction "
                                "uses every token", layer, shape[0], mask_name, mask_tokens)
                reducer = Reducer.plan(shape, self.reduction, sequence=sequence, tokens=self.settings.tokens, mask=mask)
            self.writer.declare_layer(layer, shape, reducer.width, reducer.description)
            self._reducers[layer] = reducer
        reducer = self._reducers[layer]
        if reducer.shape != tuple(shape):
            raise ValueError(f"layer '{layer}' output shape changed from {reducer.shape} to {tuple(shape)} per example; "
                             "record a layer whose output has the same shape for every batch")
        return reducer

    def start_epoch(self, epoch: int | None = None) -> EpochRecording:
        """Begin recording ``epoch`` (default: the next one).

        An epoch the run already holds raises ``ValueError`` saying how to go on, unless
        ``settings.replace_epochs``: then it replaces that epoch and every later one on commit.
        """
        if self.schedule.by_step:
            raise ValueError("this recorder records every N optimizer steps (every_n_steps): its records are numbered "
                             "by step and taken by its hooks (rec.step() and rec.record(epoch) with PyTorch); an "
                             "epoch-numbered record cannot be added to such a run")
        epoch = self.next_epoch if epoch is None else int(epoch)
        held = self.writer.epochs
        replace = epoch in held
        if replace and not self.settings.replace_epochs:
            raise ValueError(self.already_recorded(epoch))
        self.schedule.left_out = None  # a later model is recorded: an epoch end left out before is not the last
        return EpochRecording(self, epoch, replace=replace)

    def already_recorded(self, epoch: int) -> str:
        """The message for recording ``epoch`` again: what the run holds and the ways on."""
        held = self.writer.epochs
        last = held[-1]
        later = f"epoch {epoch}" if epoch == last else f"epochs {epoch}..{last}"
        how = self.resume_help.format(next=last + 1, last=last)
        return (f"epoch {epoch} is already recorded in {self.path} (epochs {epoch_spans(held)}); {how}. "
                f"To replace {later} with this training (resumed from an earlier checkpoint), pass "
                "replace_epochs=True to the Recorder; to start a fresh run in this folder, overwrite=True")

    # -- records inside epochs (every_n_steps): numbered by step; see record/schedule.py
    def start_step(self, step: int, epochs_done: float | None) -> EpochRecording:
        """Begin the record at optimizer step ``step`` (``epochs_done``: fractional epochs, ``None``
        if unknown) in a run numbered by step.

        The step this session recorded last is recorded again in its place (an epoch end that
        falls on a step just recorded: now with the epoch's metrics). A step at or before the
        run's last record is refused with how to go on, unless ``settings.replace_epochs``: then
        it replaces that record and every later one.
        """
        step = int(step)
        held = self.writer.epochs
        replace = bool(held) and step <= held[-1]
        if replace and step != self._last_step and not self.settings.replace_epochs:
            raise ValueError(self.step_already_recorded(step))
        self.schedule.left_out = None  # a later model is recorded: an epoch end left out before is not the last
        rec = EpochRecording(self, step, replace=replace)
        try:
            rec.builder.set_time(step, epochs_done)
        except BaseException:
            rec.builder.discard()
            raise
        self._last_step = step
        return rec

    _last_step: int | None = None

    def step_already_recorded(self, step: int) -> str | None:
        """The message for training that starts at ``step`` while the run holds later records
        (``None`` when it does not, or when they are to be replaced)."""
        held = self.writer.epochs
        if not held or step >= held[-1]:  # at the last record: training continues from it
            return None
        return (f"the run {self.path} holds records up to step {held[-1]}, but training is at step {step} (resumed "
                "from an earlier checkpoint, or a new optimizer that counts from 0); to replace the records from step "
                f"{step} on, pass replace_epochs=True to the Recorder; to continue the run, resume training from its "
                "last checkpoint; to start a fresh run in this folder, overwrite=True")

    def cut_short(self, epoch: int, why: str, advice: str) -> None:
        """Epoch ``epoch`` ended part-way (``why``: the cause and how much of it ran, e.g. ``"max_steps=6
        reached, after 2 of its 4 batches"``): it is not recorded, since its number would claim an epoch
        training did not finish. Warns (``advice``: how to record such a model, in the adapter's terms)
        and notes it in the manifest's info (``cut_short``, see :mod:`epochscope.run.timeline`), so
        ``epochscope check`` names it rather than taking its absence for a lost epoch.

        When ``every_n_epochs`` left out the epoch before (the last whole one, not known to be the last at
        its end) and the run does not hold it, it is lost too (the cut epoch changed its weights): the
        warning and the note say so, rather than the run reading as if training had ended earlier."""
        lost = self._last_whole_left_out(epoch)
        if lost is not None:
            why = f"{why}; epoch {lost}, the last whole epoch trained, not recorded: every_n_epochs=" \
                  f"{self.schedule.every_n_epochs} left it out"
            advice = (f"Epoch {lost}, the last whole epoch trained, is not recorded either: every_n_epochs="
                      f"{self.schedule.every_n_epochs} left it out at its end, and epoch {epoch} changed its weights "
                      f"(record every epoch, every_n_epochs=1, to keep it). {advice}")
        log.warning("epoch %d was cut short (%s): its model is not recorded as epoch %d, an epoch training did not "
                    "finish. %s", epoch, why, epoch, advice)
        noted = {str(e): w for e, w in cut_short_epochs(self.writer.manifest.info).items()}
        self.writer.update_info({CUT_SHORT_KEY: {**noted, str(int(epoch)): why}})

    def _last_whole_left_out(self, epoch: int) -> int | None:
        """The epoch before ``epoch`` when ``every_n_epochs`` left it out and the run does not hold it: it
        was trained after the run's last record (epochs follow each other), else ``None``."""
        before, held = int(epoch) - 1, self.writer.epochs
        if self.schedule.every_n_epochs == 1 or not held or before <= held[-1]:
            return None
        return None if self.schedule.wants_epoch(before) else before

    def decide_threshold(self, scores: np.ndarray) -> float:
        """The one-output threshold for this run: decided once from ``scores`` (all of the first
        capture's outputs) and written into the manifest, or the one decided before."""
        known = self.binary_threshold
        if known is not None:
            return known
        threshold = decide_threshold(scores)
        self.writer.update_info({"binary_threshold": threshold,
                                 "binary_threshold_rule": "one-output models: class 1 where the output is above this "
                                                          "value (0.5: probabilities, all outputs in [0, 1] at the "
                                                          "first capture; 0: logits)"})
        log.info("one-output model: class 1 where the output is above %g (%s), for every epoch of this run",
                 threshold, "probabilities" if threshold == 0.5 else "logits")
        return threshold

    def warn_once(self, key: str, message: str, *args: Any) -> None:
        """``log.warning(message, *args)`` the first time ``key`` is seen in this session."""
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    def close(self) -> None:
        self.writer.close()

    def hand_over(self, finished: Callable[[], bool], give_up: Callable[[], None]) -> None:
        """Once ``finished()`` says the training ended without closing this session (a framework that
        calls no hook when training fails), the next writer of the run in this process calls
        ``give_up()`` (the recorder's close) and takes the run over; until then it is refused."""
        self.writer.hand_over(finished, give_up)


class EpochRecording:
    """One epoch being captured: feed batches, then :meth:`commit` (or use ``with``)."""

    def __init__(self, session: RecordingSession, epoch: int, *, replace: bool = False) -> None:
        self.session = session
        self.epoch = epoch
        self.builder = session.writer.epoch(epoch, replace=replace)
        self._sizes = {"probe": len(session.labels)}
        if session.test_labels is not None:
            self._sizes["test"] = len(session.test_labels)
        self._predictions = {split: np.full(n, -1, np.int64) for split, n in self._sizes.items()}
        self._scores = {split: np.full(n, np.nan) for split, n in self._sizes.items()}  # one-output models
        self._one_column = False
        self._outputs_given = {split: np.zeros(n, bool) for split, n in self._sizes.items()}
        self._written: dict[tuple[str, str], np.ndarray] = {}
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
                  model_outputs: np.ndarray | None, *, size: int | None = None,
                  token_mask: tuple[str, np.ndarray] | None = None, sequences: Collection[str] = ()) -> None:
        """Store one batch of ``size`` examples from example ``start`` of ``split``.

        ``layer_outputs[layer]`` is ``(size, *shape)`` channel-first; a layer named in
        ``sequences`` is ``(size, T, E)`` and is reduced over its tokens (``settings.tokens``),
        honouring ``token_mask = (input name, (size, T) array, true for real tokens)`` when the
        inputs carry one. ``model_outputs`` are the model's ``(size, n_classes)`` logits or
        probabilities (or ``(size,)`` / ``(size, 1)`` for one output; or None). ``size``
        defaults to the first axis of ``model_outputs`` (else of the first layer's output).

        Raises ``ValueError`` naming the layer when an array's first axis is not the batch
        (e.g. a sequence-first ``(T, N, E)`` output) and ``TypeError`` for an output that is
        not an array of numbers per example.
        """
        if self.skipped:
            return
        try:
            self._add_batch(split, start, layer_outputs, model_outputs, size=size, token_mask=token_mask,
                            sequences=sequences)
        except StorageError as err:
            self._disk_full(err)

    def _add_batch(self, split: str, start: int, layer_outputs: Mapping[str, np.ndarray],
                   model_outputs: np.ndarray | None, *, size: int | None,
                   token_mask: tuple[str, np.ndarray] | None, sequences: Collection[str]) -> None:
        if split not in self._sizes:
            raise ValueError(f"split: expected one of {sorted(self._sizes)}, got {split!r}")
        n = self._sizes[split]
        arrays = {layer: np.asarray(out) for layer, out in layer_outputs.items()}
        for layer, out in arrays.items():
            _check_numeric(f"layer '{layer}'", out)
        outputs = None if model_outputs is None else np.asarray(model_outputs)
        if size is None:
            first = outputs if outputs is not None else next(iter(arrays.values()), None)
            if first is None:
                return
            _check_numeric("the model's output", first)
            size = len(first)
        size, start = int(size), int(start)
        if start < 0 or size < 1 or start + size > n:
            raise ValueError(f"batch of {size} examples from example {start} does not fit the {split} set of {n} examples")
        stop = start + size
        mask_name, mask = (None, None) if token_mask is None else (str(token_mask[0]), np.asarray(token_mask[1]))
        if mask is not None and (mask.ndim != 2 or len(mask) != size):
            raise ValueError(f"token_mask '{mask_name}': expected (batch, tokens) = ({size}, T), got shape {mask.shape}")
        # Every array is checked before anything of the batch is written.
        for layer, out in arrays.items():
            _check_batch_axis(f"layer '{layer}'", out, size)
        if outputs is not None:
            _check_numeric("the model's output", outputs)
            _check_batch_axis("the model", outputs, size)
        for layer, out in arrays.items():
            sequence = layer in sequences and out.ndim == 3
            reducer = self.session.reducer(layer, tuple(out.shape[1:]), sequence=sequence, mask_name=mask_name,
                                           mask_tokens=None if mask is None else mask.shape[1])
            rows = self._storable(layer, reducer(out, mask))
            self.builder.layer_buffer(layer, split=split)[start:stop] = rows
            written = self._written.setdefault((split, layer), np.zeros(n, bool))
            written[start:stop] = True
        if outputs is not None:
            self._add_outputs(split, start, outputs)

    def _add_outputs(self, split: str, start: int, outputs: np.ndarray) -> None:
        stop = start + len(outputs)
        size = stop - start
        self._outputs_given[split][start:stop] = True
        if outputs.ndim > 2:
            self.session.warn_once(
                "outputs-shape", "the model's output has %s values per example (shape %s for a batch), not one row of "
                "class scores: no predictions are recorded (-1); record the per-token or per-pixel outputs as a layer",
                "x".join(map(str, outputs.shape[1:])), outputs.shape)
            return
        columns = 1 if outputs.ndim == 1 else outputs.shape[1]
        if columns == 1:
            self._one_column = True
            self._scores[split][start:stop] = outputs.reshape(size).astype(np.float64)
        else:
            self._predictions[split][start:stop] = predicted_classes(outputs, size)

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

    def _unwritten(self) -> list[str]:
        """What was never written, as sentences (empty when the epoch is whole)."""
        missing = []
        for split, n in self._sizes.items():
            for layer in self.session.writer.manifest.layers:
                written = self._written.get((split, layer.name))
                if written is None:
                    if layer.name in self.session.layers:
                        missing.append(f"layer '{layer.name}' on the {split} set: no rows")
                elif not written.all():
                    missing.append(f"layer '{layer.name}' on the {split} set: rows "
                                   f"{epoch_spans(np.flatnonzero(~written).tolist())} of {n}")
            given = self._outputs_given[split]
            if given.any() and not given.all():
                missing.append(f"the model's outputs on the {split} set: rows "
                               f"{epoch_spans(np.flatnonzero(~given).tolist())} of {n}")
        return missing

    def commit(self, metrics: Mapping[str, Any] | None = None, weights: Mapping[str, np.ndarray] | None = None,
               *, counters: Mapping[str, float | int] | None = None) -> int:
        """Write predictions, weights and metrics and make the epoch durable; returns the epoch.

        ``metrics`` are the framework's or the user's, raw: they are stored under the names
        :func:`~epochscope.metric_names.normalise_metrics` gives them, and never under a
        reserved name. ``counters`` are values the adapter itself measures under a reserved
        name (Lightning's ``step``), stored as given. ``weights`` follow the adapter contract
        (PyTorch layout; see the module docstring).

        Raises :class:`~epochscope.EpochscopeError` (and writes nothing) when any row of a
        recorded layer, or of the model's outputs, was never written: an epoch is whole or absent.
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
        missing = self._unwritten()
        if missing:
            self.builder.discard()
            self.committed = True
            raise EpochscopeError(f"epoch {self.epoch} was not recorded: never written: " + "; ".join(missing)
                                  + ". The capture stopped early or a layer's output did not cover the batch")
        if self._one_column:
            given = np.concatenate([self._scores[split][self._outputs_given[split]] for split in self._sizes])
            threshold = s.decide_threshold(given)
            for split in self._sizes:
                one = self._outputs_given[split]
                scores = self._scores[split]
                self._predictions[split][one] = np.where(np.isnan(scores[one]), -1, scores[one] > threshold)
        row: dict[str, Any] = {}
        n_classes = len(s.class_names)
        for split, labels in (("probe", s.labels), ("test", s.test_labels)):
            if labels is None:
                continue
            pred = self._predictions[split]
            outside = pred >= n_classes
            if outside.any():
                s.warn_once("outside-classes", "the model predicts class index %d for %d %s examples at epoch %d, but "
                            "the run names %d classes (%s): such predictions are stored as the model gave them and "
                            "shown as 'outside the run's classes'; name every output with class_names=[...]",
                            int(pred[outside].max()), int(outside.sum()), split, self.epoch, n_classes,
                            ", ".join(s.class_names[:10]) + (" …" if n_classes > 10 else ""))
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


def _check_numeric(what: str, out: np.ndarray) -> None:
    if out.dtype.kind not in "fiub":
        kind = "complex" if out.dtype.kind == "c" else str(out.dtype)
        raise TypeError(f"{what} produced {kind} values; only real numbers can be recorded")
    if out.ndim == 0:
        raise TypeError(f"{what} returned a single number (a 0-d array), not one value per example: it reduced the "
                        "whole batch (a loss, a sum, a mean); record a layer whose output keeps the batch on its first axis")


def _check_batch_axis(what: str, out: np.ndarray, size: int) -> None:
    """``out``'s first axis must be the batch of ``size`` examples; else say what its layout looks like."""
    if out.shape[0] == size:
        return
    if out.ndim >= 2 and out.shape[1] == size:
        layout = ("its second axis is the batch, so it is sequence-first (T, N, ...), as recurrent and attention "
                  "layers built with batch_first=False output")
        fix = "build that layer batch-first (batch_first=True), or record a layer whose output has the batch first"
    else:
        layout = "none of its leading axes is the batch"
        fix = "record a layer whose output holds one row per example on its first axis"
    raise ValueError(f"{what} output shape {tuple(out.shape)} for a batch of {size} examples: its first axis "
                     f"({out.shape[0]}) is not the batch; {layout}. Nothing was stored; {fix}")
