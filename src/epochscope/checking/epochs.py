"""Checks of the epochs: the sequence of finished epochs, each epoch's arrays, weights and
metrics row against the manifest, leftovers of killed writers among them, and the plan to
drop damaged trailing epochs.

The epoch-folder naming rule and every file name inside an epoch come from
:mod:`epochscope.run.layout`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .._errors import RunError
from ..run.fileio import load_npz
from ..run.layout import (
    EPOCH_FILES,
    EPOCHS_DIR,
    SPLITS,
    is_temporary,
    layer_file,
    metrics_file,
    parse_epoch_name,
    parse_partial_epoch_name,
    predictions_file,
    weights_file,
)
from ..run.lock import pid_alive
from ..run.summary import epoch_spans
from .context import CheckContext, strip_where

__all__ = ["check_epochs", "plan_drops"]


def check_epochs(ctx: CheckContext) -> set[int]:
    """Check the epochs folder and every finished epoch; sets ``ctx.epochs`` and returns the damaged epochs."""
    folder = ctx.layout.epochs_dir
    if not folder.is_dir():
        ctx.add("problem", EPOCHS_DIR, "missing folder (it holds every recorded epoch)")
        return set()
    epochs = []
    for p in sorted(folder.iterdir()):
        epoch = parse_epoch_name(p.name)
        partial = parse_partial_epoch_name(p.name)
        if epoch is not None and p.is_dir():
            epochs.append(epoch)
        elif partial:
            live = ctx.writer is not None and pid_alive(partial[1])
            ctx.leftover(p, f"unfinished epoch {partial[0]}", live=live)
        elif is_temporary(p.name):
            ctx.leftover(p, "temporary file", live=ctx.writer is not None)
        else:
            ctx.add("warning", p, "unknown entry among the epochs (ignored; not removed by repair)")
    ctx.epochs = epochs
    if epochs:
        missing = sorted(set(range(epochs[0], epochs[-1] + 1)) - set(epochs))
        if missing:
            ctx.add("problem", EPOCHS_DIR, f"epochs are not contiguous: {epoch_spans(missing)} missing between "
                    f"{epochs[0]} and {epochs[-1]}")
        if epochs[0] != 0:
            ctx.add("warning", EPOCHS_DIR, f"the first recorded epoch is {epochs[0]}, not 0 (the untrained model)")
    bad: set[int] = set()
    first_seen: dict[str, int] = {}
    for epoch in epochs:
        before = sum(f.level == "problem" for f in ctx.findings)
        _check_epoch(ctx, epoch, ctx.layout.epoch_dir(epoch), first_seen)
        if sum(f.level == "problem" for f in ctx.findings) > before:
            bad.add(epoch)
    start = first_seen.get("weights")
    for epoch in epochs[:epochs.index(start)] if start is not None else []:
        ctx.add("warning", weights_file(ctx.layout.epoch_dir(epoch)),
                f"missing, while epochs from {start} on hold weights (recorded from epoch {start} on only, "
                "or this file was deleted)", epoch)
    return bad


def _check_epoch(ctx: CheckContext, epoch: int, folder: Path, first_seen: dict[str, int]) -> None:
    m = ctx.manifest
    splits = [("probe", m.probe_size)] + ([("test", m.test_size)] if m.test_size else [])
    for split, n in splits:
        for info in m.layers:
            path = layer_file(folder, split, info.key)
            tag = f"layer:{info.name}"
            if tag not in first_seen and not any(layer_file(folder, s, info.key).exists() for s, _ in splits):
                continue  # no file of this layer yet: a layer added on resume, reported once below
            first_seen.setdefault(tag, epoch)
            ctx.array(path, (n, info.width), ("float16",),
                      f"layer '{info.name}' on the {split} set: {n} examples × {info.width} values", epoch)
    for info in m.layers:
        start = first_seen.get(f"layer:{info.name}")
        if start is None and epoch == ctx.epochs[-1]:
            ctx.add("problem", layer_file(folder, "probe", info.key),
                    f"missing: layer '{info.name}' is in the manifest but no epoch holds its outputs", epoch)
        elif start is not None and start == epoch and epoch != ctx.epochs[0]:
            ctx.add("warning", layer_file(folder, "probe", info.key),
                    f"layer '{info.name}' has outputs from epoch {epoch} on only (added when the run was resumed, "
                    f"or the files of epochs {epoch_spans(ctx.epochs[:ctx.epochs.index(epoch)])} were deleted); "
                    "reading it at those epochs fails", epoch)
    for split, n in splits:
        path = predictions_file(folder, split)
        values = ctx.array(path, (n,), ("int64",),
                           f"predicted class of every {split} example, -1 where unknown", epoch, load=True)
        _check_predictions(ctx, path, values, split, epoch, first_seen)
    _check_weights(ctx, epoch, weights_file(folder), first_seen)
    _check_metrics(ctx, epoch, metrics_file(folder))
    known = {layer_file(folder, "probe", info.key).name for info in m.layers}
    for p in sorted(folder.iterdir()):
        if p.name in SPLITS and p.is_dir():
            for q in sorted(p.iterdir()):
                if q.name not in known or (p.name == "test" and not m.test_size):
                    ctx.add("warning", q, "unknown file in the epoch (ignored; not removed by repair)", epoch)
        elif p.name not in EPOCH_FILES:
            ctx.add("warning", p, "unknown file in the epoch (ignored; not removed by repair)", epoch)


def _check_predictions(ctx: CheckContext, path: Path, values: np.ndarray | None, split: str, epoch: int,
                       first_seen: dict[str, int]) -> None:
    """Predicted classes: -1 (none) or a class index. An index beyond the run's classes is what a
    model with more outputs than the run names classes predicted: noted once per split, not damage."""
    if values is None or not len(values):
        return
    if int(values.min()) < -1:
        ctx.add("problem", path, f"predicted classes down to {int(values.min())}, expected -1 (none) or a class index",
                epoch)
    n = len(ctx.manifest.class_names)
    outside = values >= n
    if outside.any() and f"outside:{split}" not in first_seen:
        first_seen[f"outside:{split}"] = epoch
        ctx.add("note", path, f"{int(outside.sum())} {split} predictions name a class outside the run's {n} classes "
                f"(up to index {int(values.max())}): the model has more outputs than the run names classes; stored as "
                "the model gave them (noted at the first epoch only)", epoch)


def _check_weights(ctx: CheckContext, epoch: int, path: Path, first_seen: dict[str, int]) -> None:
    if not path.exists():
        if "weights" in first_seen:
            ctx.add("problem", path, f"missing (epochs from {first_seen['weights']} on recorded weights)", epoch)
        return
    first_seen.setdefault("weights", epoch)
    try:
        arrays = load_npz(path)
    except RunError as err:
        ctx.add("problem", path, strip_where(str(err), path), epoch)
        return
    odd = [f"{k} ({a.dtype})" for k, a in arrays.items() if a.dtype != np.float32]
    if odd:
        ctx.add("problem", path, f"arrays that are not float32: {', '.join(odd[:5])}", epoch)


def _check_metrics(ctx: CheckContext, epoch: int, path: Path) -> None:
    if not path.is_file():
        ctx.add("problem", path, "missing (the epoch's metrics row)", epoch)
        return
    try:
        with open(path, encoding="utf-8") as fh:
            row = json.load(fh)
    except (OSError, ValueError, RecursionError) as err:
        ctx.add("problem", path, f"unreadable JSON ({type(err).__name__}: {err})", epoch)
        return
    if not isinstance(row, dict):
        ctx.add("problem", path, f"expected a JSON object (one metrics row), got {type(row).__name__}", epoch)
        return
    if row.get("epoch") != epoch or isinstance(row.get("epoch"), bool):
        ctx.add("problem", path, f"\"epoch\" is {row.get('epoch')!r}, expected {epoch} (the folder's epoch)", epoch)
    odd = [k for k, v in row.items() if not (v is None or isinstance(v, (int, float, str, bool)))]
    if odd:
        ctx.add("warning", path, f"values that are not numbers or text: {', '.join(odd[:5])}", epoch)
    diverged = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
    if diverged:
        ctx.add("note", path, f"non-finite {', '.join(diverged[:5])} (the model may have diverged)", epoch)


def plan_drops(ctx: CheckContext, bad: set[int]) -> set[int]:
    """Plan to drop the damaged *trailing* epochs; returns them. Damage in the middle is only reported."""
    dropped: set[int] = set()
    for epoch in reversed(ctx.epochs):
        if epoch not in bad:
            break
        dropped.add(epoch)
        ctx.plan(ctx.layout.epoch_dir(epoch), f"damaged trailing epoch {epoch} (see the problems above)")
    middle = sorted(bad - dropped)
    if middle:
        ctx.unrepairable.append(
            f"epoch{'s' * (len(middle) > 1)} {epoch_spans(middle)} damaged but followed by good epochs; repair never "
            "drops a good epoch. Restore the files named above from a backup, or delete the damaged epochs' "
            f"folders and everything after them from {ctx.layout.epochs_dir} and record again from there."
        )
    if ctx.manifest is not None and ctx.layout.epochs_dir.is_dir():
        gaps = any(f.path == EPOCHS_DIR and "contiguous" in f.message for f in ctx.findings)
        if gaps:
            ctx.unrepairable.append("missing epochs in the middle cannot be recreated; record into a new run "
                                    "to get a contiguous sequence")
    return dropped
