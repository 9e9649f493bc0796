"""When a recorder records: every N epochs, every N optimizer steps, and where a record inside
an epoch sits in training (its step and fractional epoch).

Plain rules, no framework: the adapters ask them at their framework's batch and epoch ends.

- **Epochs.** The model before training (epoch 0, or the epoch a resumed training starts at)
  is always recorded; after it, the end of epoch ``e`` when ``e % every_n_epochs == 0``.
- **Steps.** With ``every_n_steps=N`` the run's records are numbered by *step*: the optimizer
  steps done since training began (Keras' ``optimizer.iterations``, Lightning's
  ``trainer.global_step``, the PyTorch recorder's ``rec.step()`` count). A record is taken at
  the first batch end whose step reaches a new multiple of N (exactly at the multiples when
  every batch ends with a step; Keras' ``steps_per_execution`` or Lightning's gradient
  accumulation can make the step jump past one), and the recorded epoch ends are numbered by
  their step too.
- **Fractional epoch** of a record inside an epoch: ``completed_epochs + batches_done /
  batches_per_epoch``, from the framework's own count of the epoch's batches. When the
  epoch's length is unknown (an ``IterableDataset``, a generator without ``steps``), it is
  unknown inside the epoch (``None``, stored as ``null``); epoch ends are always known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._errors import RunError
from ..run import RunWriter
from ..run.timeline import EPOCHS_DONE_KEY
from .settings import RecordSettings

__all__ = ["Schedule", "fractional_epoch", "last_time", "open_schedule"]


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


@dataclass
class Schedule:
    """The recording schedule of one session: ``every_n_epochs`` (>= 1) and ``every_n_steps``
    (``None``: records only at epoch ends, numbered by epoch)."""

    every_n_epochs: int = 1
    every_n_steps: int | None = None
    #: The step last looked at (by :meth:`step_due`), so a step reached twice or jumped over is handled once.
    last_step: int | None = None

    @property
    def by_step(self) -> bool:
        """Whether records are taken inside epochs (and numbered by step)."""
        return self.every_n_steps is not None

    def wants_epoch(self, epoch: int) -> bool:
        """Whether the end of epoch ``epoch`` is recorded (every ``every_n_epochs``-th)."""
        return int(epoch) % self.every_n_epochs == 0

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
