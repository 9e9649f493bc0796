"""When a recorder records: every N epochs, every N optimizer steps, and where a record inside
an epoch sits in training (its step and fractional epoch).

Plain rules, no framework: the adapters ask them at their framework's batch and epoch ends.

- **Epochs.** The model before training (epoch 0, or the epoch a resumed training starts at)
  is always recorded; after it, the end of epoch ``e`` when ``e % every_n_epochs == 0``, and
  the end of the last epoch trained, whatever its number. Where the adapter knows at the
  epoch's end that it is the last (the framework's planned epochs or steps reached, or its
  early stop already asked for), it records it then; otherwise the epoch end left out is kept
  as :class:`LeftOut` (its metrics and a :func:`fingerprint` of the model's weights) and
  recorded when training ends (:func:`record_left_out`: Keras' and Lightning's
  ``on_train_end``, the Trainer's last log, the PyTorch recorder's ``close()``), but only while
  the weights are still the ones the epoch ended with: a model changed in between (best
  weights restored, averaged weights swapped in) is never recorded under that epoch's number,
  and a warning says what happened and what to do.
- **Steps.** With ``every_n_steps=N`` the run's records are numbered by *step*: the optimizer
  steps done since training began (Keras' ``optimizer.iterations``, Lightning's
  ``trainer.global_step``, the PyTorch recorder's ``rec.step()`` count). A record is taken at
  the first batch end whose step reaches a new multiple of N (exactly at the multiples when
  every batch ends with a step; Keras' ``steps_per_execution`` or Lightning's gradient
  accumulation can make the step jump past one), and the recorded epoch ends are numbered by
  their step too.
- **An epoch cut short** (``max_steps`` reached, a stop asked for in the middle of an epoch):
  the frameworks still call their epoch-end hook, but the model is no whole epoch's. A run
  numbered by epoch records whole epochs only, so it is not recorded (its number would claim an
  epoch training never finished): :meth:`~epochscope.record.core.RecordingSession.cut_short`
  warns and notes it in the run; a run numbered by step records it at the fraction of the epoch
  it reached.
- **Fractional epoch** of a record inside an epoch: ``completed_epochs + batches_done /
  batches_per_epoch``, from the framework's own count of the epoch's batches. When the
  epoch's length is unknown (an ``IterableDataset``, a generator without ``steps``), it is
  unknown inside the epoch (``None``, stored as ``null``); epoch ends are always known.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import RunError
from ..metric_names import metric_value
from ..run import RunWriter
from ..run.timeline import EPOCHS_DONE_KEY
from .settings import RecordSettings

__all__ = ["LeftOut", "Schedule", "batches_part", "fingerprint", "fractional_epoch", "last_time", "metrics_now", "open_schedule",
           "record_left_out"]

log = logging.getLogger("epochscope")


def fractional_epoch(completed_epochs: int | None, batches_done: int, batches_per_epoch: float | None) -> float | None:
    """``completed_epochs + batches_done / batches_per_epoch``, or ``None`` when it is not known
    (no epoch count, an unknown or infinite epoch length, or more batches than the length says).

    >>> fractional_epoch(2, 30, 120), fractional_epoch(0, 5, None)
    (2.25, None)
    """
    if completed_epochs is None or batches_per_epoch is None:
        return None
    length = float(batches_per_epoch)
    if not math.isfinite(length) or length <= 0 or batches_done < 0 or batches_done > length:
        return None
    return float(completed_epochs) + batches_done / length


def batches_part(batches_done: int | None, batches: float | None) -> str:
    """How much of an epoch ran, as words: ``"after 2 of its 4 batches"``.

    >>> batches_part(2, 4), batches_part(2, None), batches_part(None, float("inf"))
    ('after 2 of its 4 batches', 'after 2 batches of unknown length', 'its length unknown')
    """
    if batches is not None and math.isfinite(float(batches)):
        return f"after {batches_done} of its {int(batches)} batches"
    return f"after {batches_done} batches of unknown length" if batches_done is not None else "its length unknown"


def fingerprint(arrays: Iterable[Any]) -> str:
    """A digest of every value of ``arrays`` (the model's weights, in a fixed order), their dtypes
    and shapes: equal digests mean the model was not changed in between.

    >>> fingerprint([np.zeros(3)]) == fingerprint([np.zeros(3)]) != fingerprint([np.ones(3)])
    True
    """
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(array.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def metrics_now(metrics: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``metrics`` as the numbers they hold now (:func:`~epochscope.metric_names.metric_value`,
    ``None`` where a value is not one number, which the core leaves out as it would), so that a
    record taken later stores the values of the epoch's end, even if a tensor or dict given is
    changed in place meanwhile."""
    return None if metrics is None else {key: metric_value(value) for key, value in metrics.items()}


@dataclass
class LeftOut:
    """An epoch end that ``every_n_epochs`` left out while nobody knew yet whether it was the
    last: kept so that the end of training can still record it (:func:`record_left_out`)."""

    #: What it is, for messages ("epoch 7", "the end of epoch 7 (step 70)").
    name: str
    #: :func:`fingerprint` of the model's weights as the epoch ended (``None``: could not be read).
    weights: str | None
    #: Records it, with the metrics the epoch ended with; returns the record's number.
    record: Callable[[], Any]


@dataclass
class Schedule:
    """The recording schedule of one session: ``every_n_epochs`` (>= 1) and ``every_n_steps``
    (``None``: records only at epoch ends, numbered by epoch)."""

    every_n_epochs: int = 1
    every_n_steps: int | None = None
    #: The step last looked at (by :meth:`step_due`), so a step reached twice or jumped over is handled once.
    last_step: int | None = None
    #: The last epoch end left out, while it may be the last of training (cleared by any later
    #: record, and by the adapters when another epoch starts); see :func:`record_left_out`.
    left_out: LeftOut | None = None

    @property
    def by_step(self) -> bool:
        """Whether records are taken inside epochs (and numbered by step)."""
        return self.every_n_steps is not None

    def wants_epoch(self, epoch: int, *, last: bool = False) -> bool:
        """Whether the end of epoch ``epoch`` is recorded: every ``every_n_epochs``-th, and the
        last epoch of training (``last``: known to be the last at its end) always."""
        return bool(last) or int(epoch) % self.every_n_epochs == 0

    def step_due(self, step: int) -> bool:
        """Whether a batch end at ``step`` is recorded: the step reached a new multiple of
        ``every_n_steps`` since the step last looked at. Remembers ``step``."""
        if not self.by_step:
            return False
        step = int(step)
        previous, self.last_step = self.last_step, step
        if previous is None:
            return step > 0 and step % self.every_n_steps == 0  # type: ignore[operator]
        return step // self.every_n_steps > previous // self.every_n_steps  # type: ignore[operator]


def open_schedule(writer: RunWriter, settings: RecordSettings) -> Schedule:
    """The schedule of a session writing through ``writer``: marks a new run as numbered by step
    when ``settings.every_n_steps`` is set, and refuses a resume that would mix numberings
    (:class:`~epochscope.RunError` saying what to do)."""
    schedule = Schedule(settings.every_n_epochs, settings.every_n_steps)
    if schedule.by_step:
        writer.set_record_unit("step")
        held = writer.epochs
        schedule.last_step = held[-1] if held else None
    elif writer.manifest.record_unit == "step" and writer.epochs:
        raise RunError(f"cannot resume {writer.path}: its records are numbered by optimizer step (it was recorded "
                       "with every_n_steps=N); pass every_n_steps= again to continue it, or record into a new folder")
    return schedule


def last_time(writer: RunWriter) -> tuple[int, float | None] | None:
    """``(step, epochs_done)`` of a step run's last record, or ``None`` when it holds none."""
    held = writer.epochs
    if not held or writer.manifest.record_unit != "step":
        return None
    row = writer.run.epoch_metrics(held[-1])
    value = row.get(EPOCHS_DONE_KEY)
    return held[-1], (float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None)


def record_left_out(schedule: Schedule, weights_now: Callable[[], str | None], advice: str) -> int | None:
    """At the end of training: record the epoch end :attr:`Schedule.left_out` holds (the last
    epoch trained, which ``every_n_epochs`` left out before it was known to be the last), when
    the model's weights (``weights_now()``, a :func:`fingerprint`) are still the ones it ended
    with. Otherwise nothing is recorded under its number and a warning says so, with ``advice``
    (what to do, in the adapter's terms). Returns the record's number, or ``None``."""
    left, schedule.left_out = schedule.left_out, None
    if left is None:
        return None
    now = weights_now()
    if left.weights is None or now != left.weights:
        why = ("its weights could not be read to tell whether the model changed since" if left.weights is None or
               now is None else "the model's weights changed between its end and the end of training")
        log.warning("%s, the last one trained, is not recorded: every_n_epochs=%d left it out at its end, and %s, so "
                    "the model now is not the one it ended with. %s", left.name, schedule.every_n_epochs, why, advice)
        return None
    return left.record()
