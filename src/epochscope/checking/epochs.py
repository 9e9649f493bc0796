"""Checks of the epochs: the sequence of finished epochs, each epoch's arrays, weights and
metrics row against the manifest, leftovers of killed writers among them, and the plan to
drop damaged trailing epochs.

What is optional stays optional: weights (an epoch recorded with ``weights=None``), epochs
(a run recorded every fifth epoch), a layer's outputs before the epoch it was added on
resume, predictions of classes the probe does not have. Only damage to an epoch's own files
(missing, truncated, unreadable) makes it a candidate for repair, and only at the end of the
run; a repair that would remove most of the run's epochs is refused unless forced.

The epoch-folder naming rule and every file name inside an epoch come from
:mod:`epochscope.run.layout`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .._errors import RunError
from ..run.fileio import load_npz, read_json
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
from ..run.reader import EMPTY_WEIGHTS, MAX_METRICS_BYTES
from ..run.summary import epoch_spans
from ..run.timeline import cut_short_epochs
from .agreement import Agreement
from .context import CheckContext, strip_where
from .timeline import check_timeline

__all__ = ["check_epochs", "plan_drops"]


def check_epochs(ctx: CheckContext, agree: Agreement) -> None:
    """Check the epochs folder and every finished epoch; sets ``ctx.epochs`` and ``ctx.damaged``."""
    folder = ctx.layout.epochs_dir
    if folder.is_symlink():
        ctx.link(folder, "where the epochs folder belongs (readers see no epochs)", belongs=True)
        return
    if not folder.is_dir():
        ctx.add("problem", EPOCHS_DIR, "missing folder (it holds every recorded epoch)")
        return
    epochs = []
    for entry in ctx.entries(folder):
        p = folder / entry.name
        epoch = parse_epoch_name(entry.name)
        partial = parse_partial_epoch_name(entry.name)
        if entry.is_symlink():
            ctx.link(p, "among the epochs (readers skip it)", belongs=False)
        elif epoch is not None and entry.is_dir(follow_symlinks=False):
            epochs.append(epoch)
        elif partial:
            live = ctx.writer is not None and pid_alive(partial[1])
            ctx.leftover(p, f"unfinished epoch {partial[0]}", live=live)
        elif is_temporary(entry.name):
            ctx.leftover(p, "temporary file", live=ctx.writer is not None)
        else:
            ctx.add("warning", p, "unknown entry among the epochs (ignored; not removed by repair)")
    epochs.sort()  # by number: "1000000" sorts before "999999" as text
    ctx.epochs = epochs
    _check_sequence(ctx, epochs)
    m = ctx.manifest
    fields = {"probe": agree.declare("probe_size", m.probe_size, "probe_size"),
              "test": agree.declare("test_size", m.test_size, "test_size")}
    widths = {info.name: agree.declare(f"width:{info.name}", info.width, f"the width of layer '{info.name}'")
              for info in m.layers}
    first_seen: dict[str, int] = {}
    beyond: dict[int, int] = {}  # epoch -> highest predicted class beyond the class names
    for epoch in epochs:
        _check_epoch(ctx, agree, epoch, ctx.layout.epoch_dir(epoch), first_seen, fields, widths, beyond)
    check_timeline(ctx, epochs)
    if beyond and not ctx.classes_short:
        n = len(m.class_names)
        ctx.add("note", EPOCHS_DIR, f"predictions of classes beyond the {n} class names (up to class {max(beyond.values())}) "
                f"in epochs {epoch_spans(sorted(beyond))}: the model has more outputs than the probe has classes; "
                "pictures count them as wrong answers")
    with_weights = [e for e in epochs if os.path.lexists(weights_file(ctx.layout.epoch_dir(e)))]
    if with_weights:
        for epoch in sorted(set(epochs) - set(with_weights)):
            ctx.add("warning", weights_file(ctx.layout.epoch_dir(epoch)),
                    f"no weights at this epoch, while epochs {epoch_spans(with_weights)} hold them (recorded with "
                    "weights=None here, or the file was deleted); weights are optional: the network picture leaves "
                    "this epoch out", epoch)
    _check_weight_names(ctx)


def _check_weight_names(ctx: CheckContext) -> None:
    """An epoch whose weights lack arrays other epochs hold (a layer recorded from some epoch on, a file
    written by another tool): the network picture leaves it out (network/history.py), so say so here."""
    held = ctx.weight_names
    if len(held) < 2:
        return
    every = frozenset().union(*held.values())
    for epoch, names in sorted(held.items()):
        lacking = sorted(every - names)
        if lacking:
            others = sorted(e for e, n in held.items() if not set(lacking) - n)
            shown = ", ".join(lacking[:5]) + (f" and {len(lacking) - 5} more" if len(lacking) > 5 else "")
            ctx.add("warning", weights_file(ctx.layout.epoch_dir(epoch)),
                    f"lacks {shown}, which epochs {epoch_spans(others) if others else 'others'} hold: the network "
                    "picture leaves this epoch out (or, with layers= naming what every epoch holds, draws those)",
                    epoch)


def _check_sequence(ctx: CheckContext, epochs: list[int]) -> None:
    """Gaps between epochs: a regular stride is a note, an irregular gap a warning (never a problem).

    Works from the gaps alone, never from the range of numbers (epochs may be iteration counts in
    the billions).
    """
    if not epochs:
        return
    if ctx.manifest is not None and ctx.manifest.record_unit == "step":
        # Records every N steps and at epoch ends: uneven gaps are the rule, not a loss.
        return
    # An epoch training left part-way is not recorded, and the recorder said so (run/timeline.py): a note,
    # and no gap; once recorded whole (training resumed inside it), nothing to say.
    cut = {e: why for e, why in cut_short_epochs(ctx.manifest.info if ctx.manifest is not None else {}).items()
           if e not in set(epochs)}
    for epoch, why in sorted(cut.items()):
        ctx.add("note", EPOCHS_DIR, f"epoch {epoch} was cut short ({why}): its model is not recorded, as it is no "
                "whole epoch's")
    gaps = [b - a for a, b in zip(epochs, epochs[1:])]
    # every_n_epochs records the last epoch trained whatever the stride: a last gap shorter than every other
    # one leaves nothing out, so the stride is read from the gaps before it.
    last_trained = len(gaps) >= 2 and gaps[-1] < min(gaps[:-1])
    body = gaps[:-1] if last_trained else gaps
    if body and len(set(body)) == 1 and body[0] != 1:
        shown = ", ".join(map(str, epochs)) if len(epochs) <= 4 else f"{epochs[0]}, {epochs[1]}, {epochs[2]}, …, {epochs[-1]}"
        ctx.add("note", EPOCHS_DIR, f"recorded every {body[0]} epochs{' and at the last one trained' * last_trained} "
                f"({shown})")
    elif (ends := _training_ends(epochs, gaps)) is not None:
        stride, extra = ends
        extra = [e for e in extra if e != epochs[0]]  # the run's first record (a warning below when not 0)
        shown = f"{epochs[0]}, {epochs[1]}, {epochs[2]}, …, {epochs[-1]}" if len(epochs) > 4 else ", ".join(map(str, epochs))
        named = ", ".join(map(str, extra[:10])) + (f" and {len(extra) - 10} more" if len(extra) > 10 else "")
        ctx.add("note", EPOCHS_DIR, f"recorded every {stride} epochs"
                f"{f' and at the last epoch of each training ({named})' if extra else ''} ({shown})")
    elif len(set(body)) > 1:
        # The usual step (every epoch, every fifth...) tells which epochs a gap leaves out.
        step = min(set(body), key=lambda d: (-body.count(d), d))
        strided = epochs[:len(body) + 1]
        regular = all((e - epochs[0]) % step == 0 for e in strided)
        unit = step if regular else 1
        holes = [(a + unit, b - unit, (b - a) // unit - 1) for a, b in zip(strided, strided[1:]) if b - a > unit]
        # epochs cut short lost nothing: they leave the holes (a hole of them alone is none)
        holes = [part for hole in holes for part in _without(hole, unit, cut)]
        count = sum(n for _, _, n in holes)
        parts = []
        for lo, hi, n in holes[:20]:
            parts.append(str(lo) if n == 1 else f"{lo}..{hi}" if unit == 1 else f"{n} epochs from {lo} to {hi}")
        shown = ", ".join(parts) + (f" and {len(holes) - 20} more gaps" if len(holes) > 20 else "")
        usual = f", recorded every {step} epochs otherwise" if regular and step > 1 else ""
        if holes:
            ctx.add("warning", EPOCHS_DIR, f"epoch{'s' * (count > 1)} {shown} missing between {epochs[0]} and "
                    f"{epochs[-1]} (recorded without {'them' if count > 1 else 'it'}, or deleted{usual}); readers and "
                    "pictures use the epochs that are there")
    if epochs[0] != 0:
        ctx.add("warning", EPOCHS_DIR, f"the first recorded epoch is {epochs[0]}, not 0 (the untrained model)")


def _without(hole: tuple[int, int, int], unit: int, cut: Mapping[int, str]) -> list[tuple[int, int, int]]:
    """``hole`` ``(first, last, count)`` of missing epochs ``unit`` apart, less the epochs ``cut`` names:
    the stretches left, as holes of the same form. Walks the cut epochs, never the hole (a hole may
    span billions of numbers).

    >>> _without((2, 6, 5), 1, {2: "", 4: ""})
    [(3, 3, 1), (5, 6, 2)]
    """
    first, last, _ = hole
    inside = sorted(e for e in cut if first <= e <= last and (e - first) % unit == 0)
    parts, start = [], first
    for e in [*inside, last + unit]:
        if e > start:
            parts.append((start, e - unit, (e - start) // unit))
        start = e + unit
    return parts


def _training_ends(epochs: list[int], gaps: list[int]) -> tuple[int, list[int]] | None:
    """``(N, the epochs off the stride)`` when ``epochs`` are every multiple of N from the first one
    on the stride to the last, plus epochs off it that end a training (``every_n_epochs=N`` records
    the last epoch of each ``fit``, each resumed run; and the run's first record, whatever its
    number), else ``None``. The stride is tried from the most common gap; it is kept only when
    most stretches between two multiples hold no epoch off the stride, so a run of every epoch
    with some deleted is never read as one."""
    order = sorted(set(gaps), key=lambda d: (-gaps.count(d), -d))
    for stride in order:
        if stride < 2:
            continue
        grid = [e for e in epochs if e % stride == 0]
        if len(grid) < 2 or any(b - a != stride for a, b in zip(grid, grid[1:])):
            continue  # a multiple is missing (or none): not this stride
        extra = [e for e in epochs if e % stride != 0]
        if any(e < grid[0] - stride or e > grid[-1] + stride for e in extra):
            continue
        if any(e < grid[0] for e in extra[1:]):
            continue  # only the run's first record comes before the stride
        inside = {(e - grid[0]) // stride for e in extra if grid[0] < e < grid[-1]}
        if len(inside) > (len(grid) - 1) - len(inside):
            continue
        return stride, extra
    return None


def _special(message: str) -> bool:
    return "a link" in message or "regular file" in message


def _check_epoch(ctx: CheckContext, agree: Agreement, epoch: int, folder: Path, first_seen: dict[str, int],
                 fields: dict[str, str], widths: dict[str, str], beyond: dict[int, int]) -> None:
    m = ctx.manifest
    splits = [("probe", m.probe_size)] + ([("test", m.test_size)] if m.test_size else [])
    linked = set()
    for split, _ in splits:
        if (folder / split).is_symlink():
            ctx.link(folder / split, f"where epoch {epoch}'s {split} folder belongs", epoch, belongs=True)
            linked.add(split)
    for info in m.layers:
        tag = f"layer:{info.name}"
        if tag not in first_seen and not any(os.path.lexists(layer_file(folder, s, info.key))
                                             for s, _ in splits if s not in linked):
            continue  # no file of this layer yet: a layer added on resume, reported below
        first_seen.setdefault(tag, epoch)
        for split, n in splits:
            if split in linked:
                continue
            path = layer_file(folder, split, info.key)
            what = f"layer '{info.name}' on the {split} set: {n} examples × {info.width} values"
            header = ctx.header(path, what, epoch)
            if header is not None:
                ctx.dtype_is(path, header, ("float16",), what, epoch)
                agree.observe(path, header, (n, info.width), (fields[split], widths[info.name]), what, epoch)
    for info in m.layers:
        start = first_seen.get(f"layer:{info.name}")
        if start is None and epoch == ctx.epochs[-1]:
            ctx.add("warning", layer_file(folder, "probe", info.key),
                    f"layer '{info.name}' is in the manifest but no epoch holds its outputs (declared by a recorder "
                    "that stopped before its first epoch finished); it has nothing to draw", epoch)
        elif start is not None and start == epoch and epoch != ctx.epochs[0]:
            ctx.add("warning", layer_file(folder, "probe", info.key),
                    f"layer '{info.name}' has outputs from epoch {epoch} on only (added when the run was resumed, "
                    f"or the files of epochs {epoch_spans(ctx.epochs[:ctx.epochs.index(epoch)])} were deleted); "
                    "its maps and pictures cover those epochs", epoch)
    for split, n in splits:
        path = predictions_file(folder, split)
        what = f"predicted class of every {split} example, -1 where unknown"
        header = ctx.header(path, what, epoch)
        if header is None:
            continue
        agree.observe(path, header, (n,), (fields[split],), what, epoch)
        if ctx.dtype_is(path, header, ("int64",), what, epoch) and header.shape == (n,):
            values = ctx.values(path, header)
            if values is not None and values.size:
                lo, hi = int(values.min()), int(values.max())
                if lo < -1:
                    ctx.add("problem", path, f"predicted classes range {lo}..{hi}, expected -1 (unknown) or a class "
                            "index", epoch)
                elif hi >= len(m.class_names):
                    beyond[epoch] = max(beyond.get(epoch, hi), hi)
    _check_weights(ctx, epoch, weights_file(folder))
    _check_metrics(ctx, epoch, metrics_file(folder))
    known = {layer_file(folder, "probe", info.key).name for info in m.layers}
    for entry in ctx.entries(folder):
        p = folder / entry.name
        if entry.name in SPLITS and entry.is_dir(follow_symlinks=False):
            for inner in ctx.entries(p):
                q = p / inner.name
                if inner.is_symlink() and inner.name not in known:
                    ctx.link(q, "in the epoch", epoch, belongs=False)
                elif inner.name not in known or (entry.name == "test" and not m.test_size):
                    ctx.add("warning", q, "unknown file in the epoch (ignored; not removed by repair)", epoch)
        elif entry.is_symlink() and entry.name not in EPOCH_FILES:
            ctx.link(p, "in the epoch", epoch, belongs=False)
        elif entry.name not in EPOCH_FILES:
            ctx.add("warning", p, "unknown file in the epoch (ignored; not removed by repair)", epoch)


def _unreadable(ctx: CheckContext, epoch: int, path: Path, err: RunError) -> None:
    """A file of the epoch that could not be read: damage in the file itself marks the epoch damaged;
    a special file (a FIFO, a device) is a problem only."""
    message = strip_where(ctx.rel_text(str(err)), ctx.rel(path))
    if _special(message):
        ctx.add("problem", path, message, epoch)
    else:
        ctx.damage(path, message, epoch)


def _check_weights(ctx: CheckContext, epoch: int, path: Path) -> None:
    if path.is_symlink():
        ctx.link(path, "where the epoch's weights belong", epoch, belongs=True)
        return
    if not path.exists():
        return  # optional; an epoch without weights among epochs with weights is a warning (check_epochs)
    try:
        arrays = load_npz(path, root=ctx.root)
    except RunError as err:
        _unreadable(ctx, epoch, path, err)
        return
    if not arrays:  # the readers refuse it too (Run.weights): no picture leaves the epoch out unsaid
        ctx.damage(path, EMPTY_WEIGHTS, epoch)
        return
    ctx.weight_names[epoch] = frozenset(arrays)
    odd = [f"{k} ({a.dtype})" for k, a in arrays.items() if a.dtype != np.float32]
    if odd:
        ctx.add("problem", path, f"arrays that are not float32: {', '.join(odd[:5])}", epoch)


def _check_metrics(ctx: CheckContext, epoch: int, path: Path) -> None:
    if path.is_symlink():
        ctx.link(path, "where the epoch's metrics row belongs", epoch, belongs=True)
        return
    if not path.exists():
        ctx.damage(path, "missing (the epoch's metrics row)", epoch)
        ctx.broken_rows.add(epoch)
        return
    try:
        row = read_json(path, root=ctx.root, max_bytes=MAX_METRICS_BYTES)
    except RunError as err:
        _unreadable(ctx, epoch, path, err)
        if isinstance(err.__cause__, (ValueError, RecursionError)):  # not JSON (or not UTF-8): broken in itself
            ctx.broken_rows.add(epoch)
        return
    if not isinstance(row, dict):
        ctx.damage(path, f"expected a JSON object (one metrics row), got {type(row).__name__}", epoch)
        ctx.broken_rows.add(epoch)
        return
    if row.get("epoch") != epoch or isinstance(row.get("epoch"), bool):
        ctx.add("warning", path, f"\"epoch\" is {row.get('epoch')!r}, expected {epoch} (the folder's epoch); readers "
                "use the folder's number and keep this value as user_epoch", epoch)
    odd = [k for k, v in row.items() if not (v is None or isinstance(v, (int, float, str, bool)))]
    if odd:
        ctx.add("warning", path, f"values that are not numbers or text: {', '.join(odd[:5])}", epoch)
    diverged = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
    if diverged:
        ctx.add("note", path, f"non-finite {', '.join(diverged[:5])} (the model may have diverged)", epoch)


def plan_drops(ctx: CheckContext) -> set[int]:
    """Plan to drop the damaged *trailing* epochs; returns them. Damage in the middle is only reported.

    An epoch is dropped only for damage to its own files (missing, truncated, unreadable), each
    named in the plan; a file that merely disagrees with the manifest never costs an epoch, nor
    does a damaged metrics row alone (it is planned to be written anew, without metrics).
    """
    # An epoch whose only damage is a metrics row that is missing or broken in itself keeps its
    # activations, weights and predictions: the row is written anew without metrics (their values
    # are lost), never the epoch dropped. Not for a row that is whole but unreadable to us (too
    # large, no permission: it may be read elsewhere), nor in a run numbered by step, whose rows
    # also place each record in time (a row without it would move the run's pictures to steps).
    step_run = ctx.manifest is not None and ctx.manifest.record_unit == "step"
    damaged: dict[int, list[str]] = {}
    held: list[int] = []  # a row unreadable here but perhaps whole: neither dropped nor rewritten
    for epoch, reasons in ctx.damaged.items():
        row_path = metrics_file(ctx.layout.epoch_dir(epoch))
        if not all(r.startswith(ctx.rel(row_path) + ": ") for r in reasons):
            damaged[epoch] = reasons
            continue
        if epoch not in ctx.broken_rows:
            held.append(epoch)
            continue
        if step_run:
            damaged[epoch] = reasons
            continue
        row = {"epoch": epoch}
        shown = "; ".join(r.removeprefix(ctx.rel(row_path) + ": ") for r in reasons)
        ctx.plan(row_path, f"damaged metrics row of epoch {epoch} ({shown}): written anew without metrics, keeping the "
                 "epoch's whole activations, weights and predictions (the row's values are lost)",
                 rewrite=json.dumps(row))
    dropped: set[int] = set()
    for epoch in reversed(ctx.epochs):
        if epoch not in damaged:
            break
        dropped.add(epoch)
        reasons = damaged[epoch]
        folder = ctx.layout.epoch_dir(epoch)
        shown = "; ".join(r.removeprefix(ctx.rel(folder) + "/") for r in reasons[:3])
        more = f"; and {len(reasons) - 3} more" if len(reasons) > 3 else ""
        # Everything in the folder goes with it: say so for files epochscope did not write.
        foreign = sorted(f.path.removeprefix(ctx.rel(folder) + "/") for f in ctx.findings
                         if f.epoch == epoch and f.path.startswith(ctx.rel(folder) + "/")
                         and ("unknown file" in f.message or "a link" in f.message))
        also = f"; with it {', '.join(foreign[:5])}{' …' if len(foreign) > 5 else ''}, not epochscope's" if foreign else ""
        ctx.plan(folder, f"damaged trailing epoch {epoch} ({shown}{more}{also})")
    middle = sorted(set(damaged) - dropped)
    if middle:
        ctx.unrepairable.append(
            f"epoch{'s' * (len(middle) > 1)} {epoch_spans(middle)} damaged but followed by good epochs; repair never "
            "drops a good epoch. Restore the files named above from a backup, or delete the damaged epochs' "
            f"folders and everything after them from {ctx.layout.epochs_dir} and record again from there."
        )
    if held:
        ctx.unrepairable.append(
            f"epoch{'s' * (len(held) > 1)} {epoch_spans(sorted(held))}: a metrics row this process cannot read (over "
            f"the {MAX_METRICS_BYTES:,}-byte limit, or no permission) may still be whole, so repair neither drops its "
            "epoch nor rewrites it. Make it readable (permissions), or shrink it (keep per-example values out of "
            "set_metrics), then check again.")
    rewritten = set(ctx.damaged) - set(damaged) - set(held)
    disagreeing = sorted({f.epoch for f in ctx.findings if f.level == "problem" and f.epoch is not None
                          and not (f.epoch in rewritten and f.path == ctx.rel(metrics_file(ctx.layout.epoch_dir(f.epoch))))}
                         - set(damaged) - set(held))
    if disagreeing:
        ctx.unrepairable.append(
            f"epoch{'s' * (len(disagreeing) > 1)} {epoch_spans(disagreeing)}: whole files that disagree with the "
            "manifest, or links where files belong (see above); repair deletes nothing for that. Restore those "
            "files from a backup, or replace each link by the file it points to.")
    return dropped
