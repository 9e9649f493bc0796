"""Per-epoch metrics from a TensorBoard log directory (event files), for the checkpoint importer.

Lightning's default logger (``TensorBoardLogger``) writes its scalars as TensorBoard event
files beside the checkpoints (``lightning_logs/version_0/events.out.tfevents.*`` next to
``lightning_logs/version_0/checkpoints/``); so do ``torch.utils.tensorboard.SummaryWriter``,
Keras' TensorBoard callback and ``epochscope export tensorboard``. The files are read with
TensorBoard's own reader (``plugin_event_accumulator.EventAccumulator``, the one TensorBoard's
scalar dashboard uses, with its sampling turned off so that no point is dropped).

Which epoch a point belongs to: Lightning logs a scalar ``epoch`` (the trainer's current epoch,
counted from 0 as in its checkpoint names ``epoch=3-step=120.ckpt``) at every step it logs
anything, so a point at step *s* belongs to the ``epoch`` logged at *s* (or the last one logged
before *s*). A log without an ``epoch`` scalar (a plain ``add_scalar(tag, value, epoch)``) is
taken to count its steps in epochs, and a warning says so. Points of one epoch are merged as
the CSV rows are (:func:`epochscope.importers._common.rows_by_epoch`: later steps win, NaN never
replaces a number), and names go through :mod:`epochscope.metric_names` (``train_loss_epoch`` ->
``loss``, ``val/acc`` -> ``val_accuracy``, per-batch ``*_step`` values dropped). Values are
TensorBoard's float32, written as the shortest decimal that gives the same float32 back.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np

from .._errors import RunError
from .._optional import require
from ._common import rows_by_epoch

__all__ = ["EVENT_FILE_PATTERN", "is_event_log", "find_event_log", "event_log_dir", "read_event_metrics"]

log = logging.getLogger("epochscope")

#: How TensorBoard names its event files (``events.out.tfevents.<time>.<host>...``).
EVENT_FILE_PATTERN = "events.out.tfevents.*"
_EPOCH_TAG = "epoch"
_SCALARS_PLUGIN = "scalars"


def _has_events(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() for p in folder.glob(EVENT_FILE_PATTERN))


def is_event_log(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a TensorBoard log (a folder, or an event file) rather than a CSV or JSON file.

    >>> is_event_log("metrics.csv"), is_event_log("events.out.tfevents.1700000000.host.1.0")
    (False, True)
    """
    path = Path(path)
    return path.is_dir() or path.name.startswith("events.out.tfevents.")


def find_event_log(checkpoints: str | os.PathLike[str]) -> Path | None:
    """The TensorBoard log beside a checkpoints folder, or ``None``: event files in the folder
    itself or in its parent (Lightning's ``version_N/`` holds ``checkpoints/`` and the events)."""
    folder = Path(checkpoints)
    for candidate in (folder, folder.parent):
        if _has_events(candidate):
            return candidate
    return None


def event_log_dir(path: str | os.PathLike[str]) -> Path:
    """The one folder (a TensorBoard *run*) whose event files hold the metrics of ``path``.

    ``path`` may be an event file, a folder holding event files, or a log directory with exactly
    one run below it (``lightning_logs/`` with a single ``version_0/``). Raises
    ``FileNotFoundError`` for a missing path and ``ValueError`` when it holds no event file or
    several runs (they are listed: pass one of them).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"metrics: no such file or folder {path}; give a TensorBoard log folder "
                                "(the one holding events.out.tfevents.* files)")
    if path.is_file():
        if not path.name.startswith("events.out.tfevents."):
            raise ValueError(f"metrics: {path} is not a TensorBoard event file (events.out.tfevents.*)")
        return path.parent
    if _has_events(path):
        return path
    runs = sorted({p.parent for p in path.rglob(EVENT_FILE_PATTERN) if p.is_file()})
    if not runs:
        raise ValueError(f"metrics: {path} holds no TensorBoard event file (events.out.tfevents.*); "
                         "give the log folder the logger wrote, or a CSV/JSON file")
    if len(runs) > 1:
        names = ", ".join(str(r.relative_to(path)) for r in runs[:10])
        raise ValueError(f"metrics: {path} holds {len(runs)} TensorBoard runs ({names}); "
                         f"pass the one that goes with these checkpoints, e.g. --metrics {runs[-1]}")
    return runs[0]


def _float32(value: np.ndarray) -> float:
    """TensorBoard's float32 as the shortest decimal that gives the same float32 back."""
    return float(str(np.float32(value.item())))


def read_event_metrics(path: str | os.PathLike[str]) -> dict[int, dict[str, float | int]]:
    """Per-epoch metrics from the scalars of a TensorBoard log (see the module doc for the rules).

    Returns ``{epoch: {metric: value}}`` with names normalised as every importer's. Raises
    :class:`~epochscope.MissingDependencyError` without ``pip install 'epochscope[tensorboard]'``,
    :class:`~epochscope.RunError` for unreadable event files or a log with no scalar, and what
    :func:`event_log_dir` raises.

    >>> read_event_metrics("lightning_logs/version_0")  # doctest: +SKIP
    {0: {'loss': 0.52, 'val_loss': 0.47, 'val_accuracy': 0.84}, 1: {...}}
    """
    folder = event_log_dir(path)
    require("tensorboard", extra="tensorboard", purpose="reading TensorBoard event files")
    from tensorboard.backend.event_processing import plugin_event_accumulator as pea
    from tensorboard.util import tensor_util

    # size_guidance 0 = keep every point (the default keeps a random sample of 1,000 per tag).
    acc = pea.EventAccumulator(str(folder), size_guidance={pea.TENSORS: 0})
    try:
        acc.Reload()
    except Exception as err:  # the reader raises DataLossError, OSError, DecodeError... for a damaged file
        raise RunError(f"{folder}: the TensorBoard event files cannot be read ({type(err).__name__}: {err})") from err
    tags = [t for t in acc.Tags().get("tensors", [])
            if acc.SummaryMetadata(t).plugin_data.plugin_name == _SCALARS_PLUGIN]
    if not tags:
        raise RunError(f"{folder}: the TensorBoard log holds no scalar; nothing to import as metrics")
    points: list[tuple[int, float, str, float]] = []
    for tag in tags:
        for event in acc.Tensors(tag):
            value = tensor_util.make_ndarray(event.tensor_proto)
            if value.size == 1:
                points.append((int(event.step), float(event.wall_time), tag, _float32(value)))
    points.sort(key=lambda p: (p[0], p[1]))
    epochs = [(step, value) for step, _, tag, value in points if tag == _EPOCH_TAG]
    if not epochs:
        log.warning("%s: no 'epoch' scalar in the TensorBoard log; its steps are taken as epoch numbers", folder)
    bad = [value for _, value in epochs if not (math.isfinite(value) and value.is_integer() and value >= 0)]
    if bad:
        raise RunError(f"{folder}: the 'epoch' scalar holds values that are not epoch numbers ({bad[:5]})")
    rows, unplaced, k, current = [], 0, 0, None
    for step, _, tag, value in points:
        if tag == _EPOCH_TAG:
            continue
        if epochs:
            while k < len(epochs) and epochs[k][0] <= step:  # the last epoch logged at or before this step
                current = int(epochs[k][1])
                k += 1
            if current is None:
                unplaced += 1
                continue
            rows.append({"epoch": current, tag: value})
        else:
            rows.append({"epoch": step, tag: value})
    if unplaced:
        log.warning("%s: %d points logged before the first 'epoch' scalar have no epoch and were not imported",
                    folder, unplaced)
    merged = rows_by_epoch(rows, where=str(folder))
    log.info("metrics of %d epochs read from the TensorBoard log %s (%d scalar tags)", len(merged), folder, len(tags))
    return merged
