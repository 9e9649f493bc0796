"""What every importer shares: snapshot numbers from file names, metric rows, writing the run.

Metric names go through :func:`epochscope.metric_names.normalise_metrics`, the one
normaliser every recorder uses too (``main/accuracy`` -> ``accuracy``, ``val_acc`` ->
``val_accuracy``, ``train_loss_epoch`` -> ``loss``, ``train_loss_step`` dropped).

Imported runs hold weights and metrics but no probe set (other tools do not save what a
layer output on fixed examples). The manifest still needs one (``probe_size >= 1``), so an
importer writes a *placeholder probe*: one example of class 0 whose prediction is ``-1``
(unknown), and says so in ``manifest.info["probe"] = "placeholder"``. The class names are
``class 0 .. class K-1`` with K the output size of the last layer of the weight chain, so
the classes match the network that is drawn.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import RunError
from ..metric_names import metric_value, normalise_metrics
from ..run.fileio import read_text

log = logging.getLogger("epochscope")

PLACEHOLDER_PROBE = "placeholder"

# Most specific first: "epoch=3-step=120.ckpt" is epoch 3, "snapshot_iter_1200" iteration 1200.
_NUMBER_PATTERNS = (
    ("epoch", re.compile(r"epoch[=_\-.]?(\d+)", re.IGNORECASE)),
    ("iteration", re.compile(r"(?:iteration|iter|step)s?[=_\-.]?(\d+)", re.IGNORECASE)),
    ("number", re.compile(r"(\d+)(?!.*\d)")),
)

# What an importer writes into a metrics row itself: the frame's epoch (a metric of that
# name in a log is kept as "user_epoch"; the epoch column of a log is read, not stored).
IMPORT_RESERVED = ("epoch",)

def snapshot_number(name: str) -> tuple[str, int] | None:
    """The number a snapshot's file name ends in and what it counts, or None.

    >>> snapshot_number("snapshot_iter_1200"), snapshot_number("epoch=3-step=120.ckpt"), snapshot_number("model_10.pth")
    (('iteration', 1200), ('epoch', 3), ('number', 10))
    """
    for kind, pattern in _NUMBER_PATTERNS:
        m = pattern.search(name)
        if m:
            return kind, int(m.group(1))
    return None


def normalise_row(row: Mapping[str, Any]) -> dict[str, float | int]:
    """Numeric metrics of one log row under the names the pictures look for (non-numbers dropped).

    The row's ``epoch`` is the number it is filed under, not a metric, and is left out.
    """
    return normalise_metrics({k: v for k, v in row.items() if k != "epoch"}, reserved=IMPORT_RESERVED)


def read_metrics_file(path: str | Path) -> dict[int, dict[str, float | int]]:
    """Per-epoch metrics from a CSV (header row) or JSON file (a list of rows, or ``{column: [values]}``).

    Every row needs an ``epoch``; rows of the same epoch are merged, later values winning
    (Lightning's CSV logger writes train and validation figures on separate rows).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"metrics: no such file {path}; give a CSV or JSON file of per-epoch metrics")
    text = read_text(path, what="metrics file")  # a regular file of bounded size, or a RunError naming it
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as err:
            raise RunError(f"{path}: not valid JSON ({type(err).__name__}: {err})") from err
        if isinstance(data, Mapping):
            columns = {k: v for k, v in data.items() if isinstance(v, list)}
            n = max((len(v) for v in columns.values()), default=0)
            rows = [{k: v[i] for k, v in columns.items() if i < len(v)} for i in range(n)]
        elif isinstance(data, list):
            rows = data
        else:
            raise RunError(f"{path}: expected a list of per-epoch objects or an object of columns, got {type(data).__name__}")
    else:
        try:
            rows = list(csv.DictReader(text.splitlines()))
        except csv.Error as err:
            raise RunError(f"{path}: not a valid CSV file ({err})") from err
    return rows_by_epoch(rows, where=str(path))


def rows_by_epoch(rows: Iterable[Any], *, where: str) -> dict[int, dict[str, float | int]]:
    """Merge metric rows by their ``epoch`` value (rows without one are skipped with a note).

    A later row's value replaces an earlier one's, except that NaN never replaces a number:
    a log that writes NaN where a row did not measure a metric (Lightning writes its train and
    validation figures on separate rows) must not erase the figure another row holds.
    """
    merged: dict[int, dict[str, float | int]] = {}
    skipped = 0
    for row in rows:
        epoch = metric_value(row.get("epoch")) if isinstance(row, Mapping) else None
        if epoch is None or isinstance(epoch, float) and not math.isfinite(epoch):
            skipped += 1
            continue
        into = merged.setdefault(int(epoch), {})
        for name, value in normalise_row(row).items():
            if not (isinstance(value, float) and math.isnan(value) and name in into):
                into[name] = value
    if not merged and skipped:
        raise RunError(f"{where}: no row has an 'epoch' value; add an epoch column so rows can be matched to snapshots")
    if skipped:
        log.info("%s: %d rows without an epoch were skipped", where, skipped)
    return merged


def output_classes(weights: Mapping[str, np.ndarray]) -> list[str]:
    """``class 0 .. class K-1`` for the output size K of the weight chain (one class if none is found)."""
    from ..weight_layout import find_chain, layer_sizes

    try:
        k = layer_sizes(find_chain(weights))[-1]
    except ValueError:
        k = 1
    return [f"class {i}" for i in range(k)]


def write_imported_run(out: str | Path, *, framework: str, frames: Iterable[tuple[int, Mapping[str, np.ndarray],
                                                                                      Mapping[str, Any]]],
                       info: Mapping[str, Any], progress: bool = False, total: int | None = None) -> Path:
    """Write ``(epoch, weights, metrics)`` frames, in the order given, into a new run at ``out``.

    The class names come from the first frame's weights; the probe is a placeholder (see the
    module doc). ``out`` must not exist or be an empty folder.

    All or nothing: the run is written into a hidden folder beside ``out``
    (``.NAME.tmp-PID``) and renamed to ``out`` only when every frame is in, so a failed or
    interrupted import leaves nothing behind, and running it again needs no other option.
    """
    from .._progress import progress as bar
    from ..run import RunWriter, open_run

    out = Path(out)
    _check_out(out)
    frames = iter(frames)
    try:
        first = next(frames)
    except StopIteration:
        raise RunError("no snapshots to import") from None
    classes = output_classes(first[1])
    staging = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        count = 0
        with RunWriter.open(staging, framework=framework, labels=np.zeros(1, np.int64), class_names=classes,
                            info={**info, "probe": PLACEHOLDER_PROBE}, resume=False) as writer:
            for epoch, weights, metrics in bar(_chain_first(first, frames), desc="importing", enabled=progress,
                                               total=total):
                with writer.epoch(epoch) as ep:
                    ep.set_weights(weights)
                    ep.set_predictions(np.full(1, -1))
                    ep.set_metrics(metrics)
                count += 1
        held = len(open_run(staging).epochs)
        if held != count:  # every frame must be listed and read back
            raise RunError(f"importing into {out}: wrote {count} snapshots but the run lists {held}; nothing was kept")
        _check_out(out)  # still free: nobody created it meanwhile
        if out.is_dir():
            out.rmdir()  # empty (checked): a folder cannot be renamed onto another on every platform
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("imported %d snapshots into %s", count, out)
    return out


def _check_out(out: Path) -> None:
    """``out`` must be new or an empty folder (an import never writes into or over another run)."""
    if out.is_symlink() or out.exists() and not out.is_dir():
        raise RunError(f"{out}: exists and is not a folder; give a new folder for the imported run (--out)")
    if out.is_dir() and any(out.iterdir()):
        what = "already holds a run" if (out / "manifest.json").exists() else "is not empty"
        raise RunError(f"{out}: {what}; give a new folder for the imported run (--out), or delete this one first")


def _chain_first(first, rest):
    yield first
    yield from rest
