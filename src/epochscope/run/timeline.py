"""Where each record of a run sits in training: its optimizer step and its (fractional) epoch.

A run is one ordered sequence of records (the committed folders ``epochs/NNNNNN``). What a
record's number counts is the manifest's ``record_unit``:

- ``"epoch"`` (every run of schema version 1): one record per recorded epoch, numbered by the
  epochs of training done (0 is the model before training). A run recorded every fifth epoch
  holds 0, 5, 10, ...
- ``"step"`` (schema version 2): records taken inside epochs too, each numbered by its *step*,
  the optimizer steps (batches) done since training began (0 is the model before training).
  Its metrics row also holds ``"step"`` (the same number) and ``"epochs_done"``, the epochs of
  training done as a float: ``completed_epochs + batches_done / batches_per_epoch``, e.g.
  0.25 a quarter into the first epoch, exactly 3.0 at the end of the third. When the epoch's
  length is unknown (an ``IterableDataset``, a generator without ``steps_per_epoch``) it is
  known only at epoch ends and ``null`` elsewhere; the pictures then put the records on a
  step axis instead of guessing.

An epoch run holds whole epochs only. An epoch that training left part-way (``max_steps``
reached, a stop asked for in its middle) is not recorded, and the recorder notes it in the
manifest's ``info`` under ``"cut_short"``: ``{"<epoch>": "<why, and how much of it ran>"}``,
e.g. ``{"3": "max_steps=10 reached, after 2 of its 4 batches"}`` (:func:`cut_short_epochs`
reads it; a run without it, or with it in another shape, reads as before), so that
``epochscope check`` names it rather than taking its absence for a lost epoch.

Steps strictly increase along the records (they are the folder numbers); ``epochs_done`` never
decreases. A run that breaks either rule is refused (:class:`~epochscope.RunError`, and
``epochscope check`` says which file).

Example::

    tl = run.timeline
    tl.axis                 # "epoch": every record has its fractional epoch; else "step"
    tl.value(120)           # 0.2559 (the record's place on that axis)
    tl.label(120)           # "epoch 0.26 · step 120"
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import RunError

__all__ = ["CUT_SHORT_KEY", "EPOCHS_DONE_KEY", "RECORD_UNITS", "STEP_KEY", "Timeline", "check_time_point",
           "cut_short_epochs", "format_epochs"]

#: What a record's number may count (the manifest's ``record_unit``).
RECORD_UNITS = ("epoch", "step")
#: The metrics-row keys a step run's records hold (reserved metric names: a user metric of that
#: name is kept as ``user_step`` / ``user_epochs_done``).
STEP_KEY = "step"
EPOCHS_DONE_KEY = "epochs_done"


#: The manifest ``info`` key naming the epochs training left part-way (not recorded; see the module doc).
CUT_SHORT_KEY = "cut_short"


def cut_short_epochs(info: Mapping[str, Any]) -> dict[int, str]:
    """``{epoch: why}`` of the epochs a manifest's ``info`` says were cut short (:data:`CUT_SHORT_KEY`);
    empty when it says none, and for a value of another shape (written by another tool), which is
    no note of this kind.

    >>> cut_short_epochs({"cut_short": {"3": "max_steps=10 reached"}}), cut_short_epochs({})
    ({3: 'max_steps=10 reached'}, {})
    """
    value = info.get(CUT_SHORT_KEY)
    if not isinstance(value, Mapping):
        return {}
    return {int(k): str(v) for k, v in value.items() if isinstance(k, str) and k.isdigit() and isinstance(v, str)}


def format_epochs(value: float) -> str:
    """A fractional epoch as short text: two decimals at most, whole epochs without any.

    >>> format_epochs(3.0), format_epochs(0.25), format_epochs(0.2559)
    ('3', '0.25', '0.26')
    """
    text = f"{float(value):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def check_time_point(step: Any, epochs_done: Any) -> tuple[int, float | None]:
    """``(step, epochs_done)`` checked: a whole step >= 0 and a finite epoch count >= 0 or ``None``.

    Raises ``TypeError``/``ValueError`` naming the value (the recorders' mistakes, never the user's data).
    """
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise TypeError(f"step: expected a whole number of optimizer steps, got {type(step).__name__} {step!r}")
    if step < 0:
        raise ValueError(f"step: expected a number of optimizer steps >= 0, got {step}")
    if epochs_done is None:
        return int(step), None
    if isinstance(epochs_done, bool) or not isinstance(epochs_done, (int, float, np.integer, np.floating)):
        raise TypeError(f"epochs_done: expected a number of epochs or None, got {type(epochs_done).__name__}")
    value = float(epochs_done)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"epochs_done: expected a finite number of epochs >= 0, got {value}")
    return int(step), value


@dataclass(frozen=True)
class Timeline:
    """The records of a run and where each sits in training.

    ``records``: the record numbers, ascending (:attr:`Run.epochs`); ``unit``: what they count
    (``"epoch"`` or ``"step"``, see the module doc); ``steps[i]``: record i's step (``None`` in
    an epoch run); ``epochs[i]``: its epochs of training done (the record number in an epoch
    run; ``None`` where a step run does not know it).
    """

    records: tuple[int, ...]
    unit: str = "epoch"
    steps: tuple[int | None, ...] = ()
    epochs: tuple[float | None, ...] = ()

    @classmethod
    def of_epochs(cls, records: Sequence[int]) -> Timeline:
        """The timeline of an epoch run (every run of schema 1): record ``e`` is epoch ``e``."""
        records = tuple(int(r) for r in records)
        return cls(records, "epoch", (None,) * len(records), tuple(float(r) for r in records))

    @classmethod
    def from_rows(cls, unit: str, records: Sequence[int], rows: Sequence[Mapping[str, Any]],
                  where: Sequence[str] | None = None) -> Timeline:
        """The timeline from the records' metrics rows; :class:`RunError` naming the record when
        a row contradicts the rules (its step is not its number, ``epochs_done`` is not a finite
        number >= 0 or decreases)."""
        if unit not in RECORD_UNITS:
            raise RunError(f"record_unit {unit!r} is not one of {RECORD_UNITS}")
        if unit == "epoch":
            return cls.of_epochs(records)
        names = list(where) if where is not None else [f"record {r}" for r in records]
        steps: list[int] = []
        epochs: list[float | None] = []
        last: tuple[float, int] | None = None
        for record, row, name in zip(records, rows, names):
            stored = row.get(STEP_KEY)
            if stored is not None and (isinstance(stored, bool) or stored != record):
                raise RunError(f"{name}: \"step\" is {stored!r} but the record's folder is step {record}; the run was "
                               "edited or damaged (epochscope check names the records)")
            value = row.get(EPOCHS_DONE_KEY)
            if value is not None:
                try:
                    _, value = check_time_point(record, value)
                except (TypeError, ValueError) as err:
                    raise RunError(f"{name}: {err}") from err
                if last is not None and value < last[0]:
                    raise RunError(f"{name}: epochs_done {value} at step {record} is less than {last[0]} at step "
                                   f"{last[1]}; epochs never go back along a run (epochscope check names the records)")
                last = (value, record)
            steps.append(int(record))
            epochs.append(value)
        return cls(tuple(int(r) for r in records), "step", tuple(steps), tuple(epochs))

    # -- what the pictures ask
    @property
    def by_step(self) -> bool:
        """Whether the records are numbered by step (records inside epochs)."""
        return self.unit == "step"

    @property
    def axis(self) -> str:
        """The time axis the pictures use: ``"epoch"`` when every record's epoch is known, else ``"step"``."""
        return "epoch" if all(e is not None for e in self.epochs) else "step"

    def _index(self, record: int) -> int:
        try:
            return self.records.index(int(record))
        except ValueError:
            raise ValueError(f"record {record} is not in the run (records: {self.records[:5]}...)") from None

    def value(self, record: int) -> float:
        """The record's place on :attr:`axis`: its (fractional) epoch, or its step."""
        i = self._index(record)
        if self.axis == "epoch":
            return float(self.epochs[i])  # type: ignore[arg-type]
        return float(self.steps[i])  # type: ignore[arg-type]

    def values(self, records: Sequence[int] | None = None) -> np.ndarray:
        """:meth:`value` of each record (all of them by default), float64."""
        records = self.records if records is None else records
        return np.array([self.value(r) for r in records], dtype=np.float64)

    @property
    def axis_label(self) -> str:
        """The axis title: ``"epoch"`` or ``"step"``."""
        return self.axis

    def label(self, record: int) -> str:
        """The record as words: ``"epoch 3"`` in an epoch run, ``"epoch 0.26 · step 120"`` in a
        step run (``"step 120"`` where its epoch is unknown)."""
        i = self._index(record)
        if not self.by_step:
            return f"epoch {self.records[i]}"
        epoch = self.epochs[i]
        step = f"step {self.steps[i]}"
        return step if epoch is None else f"epoch {format_epochs(epoch)} · {step}"

    def title(self, record: int) -> str:
        """:meth:`label` with a capital first letter, for a frame's title."""
        text = self.label(record)
        return text[:1].upper() + text[1:]
