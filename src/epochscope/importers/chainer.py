"""A run from a Chainer trainer's result directory, read without Chainer.

A Chainer ``Trainer`` writes into its result directory:

- snapshots (``extensions.snapshot()``: ``snapshot_iter_1200``; or
  ``snapshot_object(model, "model_epoch_{.updater.epoch}")``): numpy zip files whose model
  weights sit under ``updater/model:main/predictor/<link>/W`` (out x in) and ``.../b``
  (``predictor/<link>/W`` in a model-only snapshot);
- ``log``: a JSON list of per-epoch rows (``epoch``, ``iteration``, ``main/loss``,
  ``main/accuracy``, ``validation/main/loss``, ``validation/main/accuracy``, ``elapsed_time``).
  A trainer resumed from an earlier snapshot may append to it, so that one epoch holds two
  different rows at one iteration; a trainer snapshot keeps the log as of its own moment
  (``extensions/LogReport/_log``), which tells which row belongs to the snapshot's model
  (see :func:`_settle_conflicts`).

Weights are stored in the run under PyTorch-style names (``l1.weight``, ``l1.bias``), so
every picture reads them like a recorded run. Metrics are renamed to ``loss``,
``accuracy``, ``val_loss``, ``val_accuracy``. Nothing is read with pickle.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import RunError
from ..metric_names import metric_value
from ..run.fileio import load_npz, npz_members, read_text
from ._common import normalise_row, rows_by_epoch, snapshot_number, write_imported_run

__all__ = ["import_chainer", "read_chainer_snapshot"]

log = logging.getLogger("epochscope")

MODEL_PREFIX = "updater/model:main/"
_NOT_MODEL = ("updater/", "extensions/", "stop_trigger", "_snapshot_elapsed_time")
_PARAM_NAMES = {"W": "weight", "b": "bias"}
# Where a trainer snapshot keeps LogReport's rows as of that moment (a JSON string).
_SNAPSHOT_LOG = re.compile(r"extensions/[^/]+/_log")


@dataclass(frozen=True)
class _Snapshot:
    path: Path
    kind: str  # what the file name's number counts: epoch, iteration or number
    number: int
    epoch: int | None  # from the updater's iterator when the snapshot holds it
    iteration: int | None
    log: tuple[dict[str, Any], ...] | None = None  # LogReport's rows as of the snapshot, when it holds them


def import_chainer(result_dir: str | os.PathLike[str], out: str | os.PathLike[str], *,
                   progress: bool = False) -> Path:
    """Write a run at ``out`` from a Chainer result directory (snapshots + ``log``).

    Parameters
    ----------
    result_dir : the trainer's ``out`` folder, holding snapshot files and, optionally, ``log``.
    out : a new or empty folder for the run.
    progress : show a progress bar.

    Frames are in epoch order: the epoch a trainer snapshot stored
    (``updater/iterator:main/epoch``), else the number in its name (``snapshot_epoch_7``;
    ``snapshot_iter_1200`` is matched to its epoch through the log's ``iteration``), never
    the order of the files on disk. Returns ``out`` as a ``Path``.

    All or nothing: on any error no run is left at ``out``. Raises ``FileNotFoundError`` for a
    ``result_dir`` that does not exist, :class:`~epochscope.RunError` when it holds no snapshot
    (the message says how Chainer saves them), when a snapshot cannot be read, or when ``out``
    already holds a run or is a file, and :class:`~epochscope.StorageError` when the run cannot
    be written (disk full, read-only).

    Example::

        epochscope.import_chainer("result", "runs/chainer-mlp")
        epochscope.network_animation("runs/chainer-mlp", "network.gif")
    """
    result_dir = Path(result_dir)
    if not result_dir.is_dir():
        raise FileNotFoundError(f"result_dir: no such folder {result_dir}; give the Chainer trainer's out folder")
    log_rows = _read_log(result_dir / "log")
    snapshots = _find_snapshots(result_dir)
    if not snapshots:
        raise RunError(
            f"{result_dir}: no snapshot files found (numpy zip files named like snapshot_iter_1200 or "
            "model_epoch_5 holding '.../W' arrays); save them with chainer.training.extensions.snapshot()"
        )
    frames, unit = _order(snapshots, log_rows)
    log_rows = _settle_conflicts(log_rows, frames, unit)
    metrics = _metrics_by(unit, log_rows, [n for n, _ in frames])

    def produce():
        for number, snap in frames:
            yield number, read_chainer_snapshot(snap.path), {**metrics.get(number, {}), **_counters(snap)}

    info = {"imported_from": "chainer", "source": str(result_dir.resolve()), "frame_unit": unit,
            "snapshots": [s.path.name for _, s in frames]}
    return write_imported_run(out, framework="chainer", frames=produce(), info=info, progress=progress,
                              total=len(frames))


def read_chainer_snapshot(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The model weights of one Chainer snapshot, under PyTorch-style names, in stored order.

    ``updater/model:main/predictor/l1/W`` becomes ``l1.weight`` and ``.../b`` ``l1.bias``;
    nested links keep their path with dots (``block1.conv.weight``).

    >>> read_chainer_snapshot("result/snapshot_iter_100")["l1.weight"].shape  # doctest: +SKIP
    (5, 4)
    """
    path = Path(path)
    # Through the checked reader: each array's declared size is checked against what the archive
    # can hold before anything is allocated, and only the model's arrays are read (not the optimizer's).
    names = _members(path)
    keys = _model_keys(names)
    if not keys:
        raise RunError(f"{path}: holds no model weights (no '.../W' arrays; keys: {names[:8]})")
    arrays = _load(path, [key for key, _ in keys])
    weights = {_torch_name(stripped): np.asarray(arrays[key], dtype=np.float32) for key, stripped in keys}
    return _forward_order(weights)


def _members(path: Path) -> list[str]:
    try:
        return npz_members(path, follow_links=True)
    except RunError as err:
        raise RunError(f"{err}; expected a numpy zip file saved by Chainer") from err


def _load(path: Path, keys: list[str]) -> dict[str, np.ndarray]:
    try:
        return load_npz(path, members=keys, follow_links=True)
    except RunError as err:
        raise RunError(f"{err}; expected a numpy zip file saved by Chainer") from err


def _model_keys(names: list[str]) -> list[tuple[str, str]]:
    """(key, name inside the model) for the model's parameters, in stored order."""
    if any(n.startswith(MODEL_PREFIX) for n in names):
        pairs = [(n, n[len(MODEL_PREFIX):]) for n in names if n.startswith(MODEL_PREFIX)]
    else:  # a model-only snapshot (snapshot_object)
        pairs = [(n, n) for n in names if not n.startswith(_NOT_MODEL)]
    if pairs and all(s.startswith("predictor/") for _, s in pairs):
        pairs = [(k, s[len("predictor/"):]) for k, s in pairs]
    has_weights = any(s.rsplit("/", 1)[-1] == "W" for _, s in pairs)
    return pairs if has_weights else []


def _forward_order(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The stored order, unless the links' natural name order (l1, l2, ...) chains more layers.

    Older Chainer versions kept a Chain's children in a set, so the stored order need not be
    the forward order.
    """
    from ..weight_layout import find_chain

    def natural(name: str) -> list[Any]:
        return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name.rsplit(".", 1)[0])]

    resorted = {k: weights[k] for k in sorted(weights, key=natural)}

    def chained(w: dict[str, np.ndarray]) -> int:
        try:
            return len(find_chain(w))
        except ValueError:
            return 0

    return resorted if chained(resorted) > chained(weights) else weights


def _torch_name(name: str) -> str:
    *link, param = name.split("/")
    return ".".join([*link, _PARAM_NAMES.get(param, param)])


def _read_log(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        log.info("%s: no log file, so the run gets no metrics", path.parent)
        return []
    try:
        rows = json.loads(read_text(path, what="Chainer log"))
    except (ValueError, RecursionError) as err:
        raise RunError(f"{path}: unreadable Chainer log ({type(err).__name__}: {err}); expected the JSON list "
                       "LogReport writes") from err
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise RunError(f"{path}: expected a JSON list of objects (Chainer's LogReport), got {type(rows).__name__}")
    return rows


def _find_snapshots(folder: Path) -> list[_Snapshot]:
    found = []
    for path in folder.iterdir():
        if not path.is_file() or path.name == "log":  # is_file: regular files (and links to them) only
            continue
        parsed = snapshot_number(path.name)
        if parsed is None or not _is_zip(path):
            continue
        files = _members(path)
        if not _model_keys(files):
            log.info("%s: no model weights inside, skipped", path.name)
            continue
        counters = _load(path, [k for k in (_EPOCH_KEY, _ITERATION_KEY) if k in files])
        found.append(_Snapshot(path, parsed[0], parsed[1], _int_key(counters, _EPOCH_KEY),
                               _int_key(counters, _ITERATION_KEY), _snapshot_log(path, files)))
    return found


_EPOCH_KEY = "updater/iterator:main/epoch"
_ITERATION_KEY = "updater/iteration"


def _is_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    except OSError:
        return False


def _snapshot_log(path: Path, files: list[str]) -> tuple[dict[str, Any], ...] | None:
    """LogReport's rows as a trainer snapshot stored them (``extensions/LogReport/_log``), if any
    (read through the checked, bounded reader like every other member)."""
    key = next((k for k in sorted(files) if _SNAPSHOT_LOG.fullmatch(k)), None)
    if key is None:
        return None
    try:
        rows = json.loads(str(_load(path, [key])[key][()]))
    except (ValueError, TypeError, IndexError, RecursionError, RunError) as err:
        log.info("%s: its log (%s) is unreadable (%s); not used", path.name, key, err)
        return None
    return tuple(r for r in rows if isinstance(r, dict)) if isinstance(rows, list) else None


def _row_key(row: dict[str, Any]) -> tuple[int | None, int | None]:
    epoch, iteration = metric_value(row.get("epoch")), metric_value(row.get("iteration"))
    return (None if epoch is None else int(epoch)), (None if iteration is None else int(iteration))


def _settle_conflicts(rows: list[dict[str, Any]], frames: list[tuple[int, _Snapshot]], unit: str) -> list[dict[str, Any]]:
    """The log with each conflict settled: two rows of one epoch at one iteration that disagree
    (a trainer resumed from an earlier snapshot appended its own rows for epochs already logged).

    The row kept is the one the epoch's snapshot holds in its own log (the rows as of the moment
    that model was saved), with a warning naming the epoch. A snapshot without a log cannot tell:
    then the epoch's conflicting rows are all left out, with a warning, rather than a guess.
    Rows of one epoch at different iterations (a log written several times an epoch) are no conflict.
    """
    groups: dict[tuple[int | None, int | None], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_row_key(row), []).append(row)
    conflicts = {key for key, group in groups.items()
                 if key[0] is not None and len({json.dumps(normalise_row(r), sort_keys=True) for r in group}) > 1}
    if not conflicts:
        return rows
    by_epoch = {number: snap for number, snap in frames} if unit == "epoch" else {}
    by_iteration = {snap.iteration if snap.iteration is not None else number: snap for number, snap in frames} \
        if unit == "iteration" else {}
    settled, done = [], set()
    for row in rows:
        key = _row_key(row)
        if key not in conflicts:
            settled.append(row)
            continue
        if key in done:
            continue
        done.add(key)
        epoch, iteration = key
        snap = by_epoch.get(epoch) or by_iteration.get(iteration)
        own = [r for r in (snap.log or ()) if _row_key(r) == key] if snap is not None else []
        count = len(groups[key])
        if own:
            log.warning("Chainer log: epoch %d has %d different rows at iteration %s (a resumed trainer appended to the "
                        "log); kept the one %s holds in its own log, which belongs to its model", epoch, count,
                        iteration, snap.path.name)
            settled.extend(own)
        else:
            why = f"{snap.path.name} holds no log" if snap is not None else "no snapshot of that epoch was found"
            log.warning("Chainer log: epoch %d has %d different rows at iteration %s (a resumed trainer appended to the "
                        "log) and %s to tell which belongs to its model; that epoch's metrics are left out", epoch,
                        count, iteration, why)
    return settled


def _int_key(arrays: dict[str, np.ndarray], key: str) -> int | None:
    if key not in arrays:
        return None
    value = metric_value(arrays[key])
    return None if value is None or isinstance(value, float) and not np.isfinite(value) else int(value)


def _order(snapshots: list[_Snapshot], rows: list[dict[str, Any]]) -> tuple[list[tuple[int, _Snapshot]], str]:
    """Number every snapshot (epoch when that is known for all and unique) and sort by it."""
    epoch_of_iteration = {int(r["iteration"]): int(r["epoch"]) for r in rows
                          if metric_value(r.get("iteration")) is not None
                          and metric_value(r.get("epoch")) is not None}

    def epoch(s: _Snapshot) -> int | None:
        if s.epoch is not None:
            return s.epoch
        if s.kind == "epoch":
            return s.number
        iteration = s.iteration if s.iteration is not None else (s.number if s.kind == "iteration" else None)
        return epoch_of_iteration.get(iteration) if iteration is not None else None

    def iteration(s: _Snapshot) -> int | None:
        return s.iteration if s.iteration is not None else (s.number if s.kind == "iteration" else None)

    for unit, key in (("epoch", epoch), ("iteration", iteration), ("number", lambda s: s.number)):
        numbers = [key(s) for s in snapshots]
        if all(n is not None for n in numbers) and len(set(numbers)) == len(numbers):
            if unit != "epoch":
                log.warning("Chainer snapshots: epochs are not known for every snapshot; frames are numbered by %s",
                            unit)
            return sorted(zip(numbers, snapshots), key=lambda p: p[0]), unit
    names = sorted(s.path.name for s in snapshots)
    raise RunError(f"Chainer snapshots: two files give the same epoch/number, so their order is ambiguous: {names[:10]}; "
                   "keep one snapshot per epoch")


def _metrics_by(unit: str, rows: list[dict[str, Any]], numbers: list[int]) -> dict[int, dict[str, Any]]:
    if not rows:
        return {}
    if unit == "epoch":
        return rows_by_epoch(rows, where="Chainer log")
    if unit == "iteration":
        # The latest log row at or before each snapshot's iteration.
        ordered = sorted((int(metric_value(r["iteration"])), r) for r in rows
                         if metric_value(r.get("iteration")) is not None)
        out = {}
        for n in numbers:
            before = [r for it, r in ordered if it <= n]
            if before:
                out[n] = rows_by_epoch([{**before[-1], "epoch": n}], where="Chainer log")[n]
        return out
    return {}


def _counters(s: _Snapshot) -> dict[str, int]:
    out = {}
    if s.iteration is not None or s.kind == "iteration":
        out["iteration"] = s.iteration if s.iteration is not None else s.number
    return out
