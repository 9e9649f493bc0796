"""A run from a folder of per-epoch PyTorch checkpoints (``state_dict`` files).

Each ``.pt``/``.pth``/``.ckpt`` file is read with ``torch.load(..., weights_only=True)``
(never unpickling arbitrary objects). A file may hold a bare ``state_dict`` or a dict with
one under ``state_dict`` (Lightning), ``model_state_dict``, ``model``, ``net`` or
``weights``; its other number-valued entries (``loss``, ``accuracy``...) become metrics.
Frames are ordered by the number parsed from each file name (``epoch=3-step=120.ckpt``,
``model_10.pth``, ``ckpt_epoch_7.pt``), never by the order of the files on disk.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import RunError
from .._optional import require
from ._common import normalise_row, read_metrics_file, snapshot_number, write_imported_run
from .tensorboard_log import find_event_log, is_event_log, read_event_metrics

__all__ = ["import_checkpoints", "read_checkpoint"]

log = logging.getLogger("epochscope")

SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
_STATE_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")
_PREFIXES = ("module.", "model.", "_orig_mod.")


def import_checkpoints(folder: str | os.PathLike[str], out: str | os.PathLike[str], *,
                       metrics: str | os.PathLike[str] | None = None, progress: bool = False) -> Path:
    """Write a run at ``out`` from a folder of per-epoch PyTorch checkpoints.

    Parameters
    ----------
    folder : holds one checkpoint per epoch; the number in each file name orders the frames
        (``epoch=3...`` wins over other numbers; files without a number are skipped).
    out : a new or empty folder for the run.
    metrics : optional CSV or JSON file of per-epoch metrics with an ``epoch`` column, matched to
        the checkpoints by that number (Lightning's ``metrics.csv`` and Keras' CSVLogger work as
        they are; ``train_acc``/``val_acc`` are renamed ``accuracy``/``val_accuracy``), or a
        TensorBoard log folder (event files: Lightning's default ``TensorBoardLogger``), read
        as :mod:`epochscope.importers.tensorboard_log` says. Without it, event files in
        ``folder`` or its parent (Lightning's ``version_N/``) are used when the ``tensorboard``
        extra is installed.
    progress : show a progress bar.

    Returns ``out`` as a ``Path``.

    All or nothing: on any error no run is left at ``out``. Raises ``FileNotFoundError`` for a
    ``folder`` or ``metrics`` file that does not exist, :class:`~epochscope.RunError` when
    ``folder`` holds no checkpoint with an epoch number in its name, when a checkpoint or the
    metrics file cannot be read, or when ``out`` already holds a run or is a file,
    :class:`~epochscope.MissingDependencyError` without torch (``epochscope[torch]``), and
    :class:`~epochscope.StorageError` when the run cannot be written.

    Example::

        epochscope.import_checkpoints("checkpoints/", "runs/mlp", metrics="metrics.csv")
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder: no such folder {folder}; give the folder holding the checkpoint files")
    if metrics is None:
        metrics = _beside(folder)
    table = {} if metrics is None else read_event_metrics(metrics) if is_event_log(metrics) else read_metrics_file(metrics)
    numbered = _numbered_files(folder)
    require("torch", extra="torch", purpose="reading PyTorch checkpoints")

    def produce():
        for number, path in numbered:
            weights, extra = read_checkpoint(path)
            yield number, weights, {**extra, **table.get(number, {})}

    info = {"imported_from": "pytorch checkpoints", "source": str(folder.resolve()),
            "frame_unit": "epoch" if all(snapshot_number(p.name)[0] == "epoch" for _, p in numbered) else "number",
            "snapshots": [p.name for _, p in numbered]}
    if metrics is not None:
        info["metrics_file"] = str(Path(metrics).resolve())
        missing = [n for n, _ in numbered if n not in table]
        if missing:
            log.warning("metrics: no row for epochs %s of the checkpoints", missing[:10])
    return write_imported_run(out, framework="torch", frames=produce(), info=info, progress=progress,
                              total=len(numbered))


def _beside(folder: Path) -> Path | None:
    """The TensorBoard log Lightning writes beside its checkpoints, when it can be read."""
    found = find_event_log(folder)
    if found is not None:
        try:
            require("tensorboard", extra="tensorboard")
        except ImportError as err:
            log.warning("metrics: TensorBoard event files in %s are not read: %s", found, err)
            return None
        log.info("metrics: reading the TensorBoard event files in %s", found)
    return found


def _numbered_files(folder: Path) -> list[tuple[int, Path]]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES]
    numbered, skipped = {}, []
    for path in files:
        parsed = snapshot_number(path.stem)
        if parsed is None:
            skipped.append(path.name)
            continue
        number = parsed[1]
        if number in numbered:
            raise RunError(f"{folder}: {numbered[number].name} and {path.name} both give epoch {number}; "
                           "keep one checkpoint per epoch (move the other out of the folder)")
        numbered[number] = path
    if skipped:
        log.warning("%s: no epoch number in %s; skipped", folder, ", ".join(sorted(skipped)[:10]))
    if not numbered:
        raise RunError(f"{folder}: no checkpoint files with an epoch number in their name "
                       f"(expected names like model_10.pth or epoch=3.ckpt with suffix {', '.join(SUFFIXES)})")
    return sorted(numbered.items())


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, float | int]]:
    """The floating-point tensors of one checkpoint's ``state_dict`` as float32 arrays, and its scalar metrics.

    Read with ``torch.load(path, map_location="cpu", weights_only=True)``; a prefix shared by
    every key (``module.`` from DataParallel, ``model.`` from Lightning) is removed.

    >>> weights, metrics = read_checkpoint("checkpoints/model_10.pth")  # doctest: +SKIP
    """
    torch = require("torch", extra="torch", purpose="reading PyTorch checkpoints")
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError... for a bad file
        raise RunError(f"{path}: cannot be read as a weights-only PyTorch checkpoint ({type(err).__name__}: "
                       f"{str(err).splitlines()[0] if str(err) else ''}); epochscope never unpickles objects") from err
    state, extra = _state_dict(obj, path)
    weights = {k: v.detach().float().cpu().numpy() for k, v in state.items()
               if isinstance(v, torch.Tensor) and v.is_floating_point()}
    if not weights:
        raise RunError(f"{path}: the state_dict holds no floating-point tensors")
    return _strip_prefix(weights), normalise_row({k: v for k, v in extra.items() if k not in ("global_step",)})


def _state_dict(obj: Any, path: Path) -> tuple[Mapping[str, Any], dict[str, Any]]:
    if not isinstance(obj, Mapping):
        raise RunError(f"{path}: expected a state_dict (a mapping of names to tensors), got {type(obj).__name__}")
    if any(_is_tensor(v) for v in obj.values()):
        return obj, {}
    for key in _STATE_KEYS:
        if isinstance(obj.get(key), Mapping):
            extra = {k: v for k, v in obj.items() if k != key and not isinstance(v, (Mapping, list, tuple))}
            return obj[key], extra
    raise RunError(f"{path}: no state_dict found; top-level keys are {list(obj)[:12]} "
                   f"(looked for tensors or one of {', '.join(_STATE_KEYS)})")


def _is_tensor(v: Any) -> bool:
    return type(v).__name__ in ("Tensor", "Parameter") and hasattr(v, "detach")


def _strip_prefix(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    for prefix in _PREFIXES:
        while weights and all(k.startswith(prefix) for k in weights):
            weights = {k[len(prefix):]: v for k, v in weights.items()}
    return weights
