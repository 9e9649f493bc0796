"""Checks of a step run's time axis: each record's ``step`` and ``epochs_done`` (see
:mod:`epochscope.run.timeline`).

In a run whose records count steps (``record_unit: "step"``, schema 2) every record's metrics
row must say its step, equal to its folder's number, and its ``epochs_done``: a finite number
>= 0 that never decreases along the records, or ``null`` where the epoch's length was unknown.
A row that breaks a rule is a *problem* (the pictures refuse to draw such a run), never
repaired away: the records' data is whole, only their place in time is in doubt. A run that
counts epochs has nothing to check here, and a ``step`` in its rows is the trainer's counter,
kept as a metric (Lightning's global step in runs recorded once an epoch).
"""

from __future__ import annotations

from ..run.fileio import read_json
from ..run.layout import metrics_file
from ..run.reader import MAX_METRICS_BYTES
from ..run.timeline import EPOCHS_DONE_KEY, STEP_KEY, check_time_point, format_epochs
from .context import CheckContext

__all__ = ["check_timeline"]


def check_timeline(ctx: CheckContext, records: list[int]) -> None:
    """Report every record of a step run whose step or epochs_done breaks the rules (module doc)."""
    if ctx.manifest is None or ctx.manifest.record_unit != "step":
        return
    last: tuple[float, int] | None = None
    for record in records:
        path = metrics_file(ctx.layout.epoch_dir(record))
        try:
            row = read_json(path, root=ctx.root, max_bytes=MAX_METRICS_BYTES)
        except Exception:  # noqa: BLE001 - a missing or unreadable row is reported by the epoch checks
            continue
        if not isinstance(row, dict):
            continue
        step = row.get(STEP_KEY)
        if step is None or isinstance(step, bool) or step != record:
            ctx.add("problem", path, f"\"step\" is {step!r}, expected {record} (the folder's number: this run "
                    "numbers its records by optimizer step); the pictures refuse the run until it is restored", record)
        if EPOCHS_DONE_KEY not in row:
            ctx.add("problem", path, "no \"epochs_done\" (each record of a step run says the epochs of training done, "
                    "or null when unknown)", record)
            continue
        value = row[EPOCHS_DONE_KEY]
        if value is None:
            continue
        try:
            _, value = check_time_point(record, value)
        except (TypeError, ValueError) as err:
            ctx.add("problem", path, f"{err}", record)
            continue
        if last is not None and value < last[0]:
            ctx.add("problem", path, f"epochs_done {format_epochs(value)} is less than {format_epochs(last[0])} at "
                    f"step {last[1]}: epochs never go back along a run", record)
        last = (value, record)
