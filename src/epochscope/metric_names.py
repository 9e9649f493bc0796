"""One spelling for training metrics, whatever a framework, a logger or a user called them.

The pictures look for ``loss``, ``accuracy``, ``val_loss`` and ``val_accuracy``. Every
recorder (in :mod:`epochscope.record.core`, so the PyTorch, Keras and Lightning adapters
alike) and every importer passes the metrics it stores through :func:`normalise_metrics`;
nothing else renames a metric. This module depends on nothing else in epochscope.

The rules, for each name:

1. **Lightning's forked names.** ``name_step`` (one batch's value, logged with
   ``on_step=True, on_epoch=True``) is dropped; ``name_epoch`` (the epoch's aggregate)
   becomes ``name``, or is dropped when ``name`` is logged too (Lightning puts the same
   epoch value under both in ``trainer.callback_metrics``).
2. **Paths.** A split first: ``train/loss`` -> ``loss``, ``val/acc`` / ``valid/acc`` /
   ``validation/acc`` -> ``val_accuracy``, ``test/acc`` -> ``test_accuracy``. Chainer's
   reporter prefix ``main/`` goes: ``main/loss`` -> ``loss``, ``validation/main/accuracy``
   -> ``val_accuracy``. TensorBoard tags with the split last: ``Loss/train`` -> ``loss``,
   ``Accuracy/val`` -> ``val_accuracy``. Any other ``/`` becomes ``_`` (``lr-Adam/pg1`` ->
   ``lr-Adam_pg1``).
3. **Synonyms** of the canonical names (case-insensitive): ``acc``, ``train_acc``,
   ``train_accuracy``, ``training_accuracy`` -> ``accuracy``; ``train_loss`` -> ``loss``;
   ``val_acc``, ``valid_*``, ``validation_*``, ``eval_*`` (Hugging Face's ``Trainer``) ->
   ``val_accuracy``/``val_loss``;
   ``test_acc`` -> ``test_accuracy``; Chainer's ``elapsed_time`` -> ``elapsed``. Other names
   are kept as they are (``train_seconds``, ``lr-Adam``, ``val_f1``).
4. **Keras' descriptive accuracies** (``sparse_categorical_accuracy``,
   ``categorical_accuracy``, ``binary_accuracy``, and their ``val_`` forms) are kept and
   also copied to ``accuracy``/``val_accuracy`` when no accuracy was logged under that name.
5. **Two names for one place.** When two given names would both become ``x``, the one
   spelled ``x`` already wins and the other keeps its own name (``/`` as ``_``):
   ``{"acc": .1, "accuracy": .2}`` stays as given.
6. **Reserved names** are what epochscope writes into a metrics row itself
   (:data:`RESERVED`: ``epoch``, ``step``, ``epochs_done``, ``wall_time``, ``elapsed``, ``record_seconds``,
   ``probe_accuracy``, ``test_accuracy``). A user metric that would land on one never
   replaces it: it is kept as ``user_<name>`` (``{"epoch": 3}`` -> ``{"user_epoch": 3}``)
   and a warning says so. An importer passes the names it writes itself (``epoch``).

Values: numbers, numeric strings and one-element arrays or tensors of any framework become
``float`` (``int`` for integers); NaN and infinities are kept, since a diverged loss is worth
seeing; anything else (text, arrays of several values, ``None``, booleans) is left out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping
from typing import Any

__all__ = ["CANONICAL", "RESERVED", "metric_name", "metric_value", "normalise_metrics"]

log = logging.getLogger("epochscope")

#: The names the pictures look for.
CANONICAL = ("loss", "accuracy", "val_loss", "val_accuracy")

#: Names epochscope writes into a recorded run's metrics row itself: the run's ``epoch``; the
#: recording core's ``wall_time``, ``elapsed``, ``record_seconds``, ``probe_accuracy`` and
#: ``test_accuracy``; the Lightning adapter's ``step`` (the trainer's global step); a step run's
#: ``step`` and ``epochs_done`` (see epochscope.run.timeline).
RESERVED = frozenset({"epoch", "step", "epochs_done", "wall_time", "elapsed", "record_seconds", "probe_accuracy",
                      "test_accuracy"})

# A split word and the prefix it gives the metric's name.
_SPLITS = {"train": "", "training": "", "val": "val_", "valid": "val_", "validation": "val_", "eval": "val_",
           "test": "test_"}
# Base names with one spelling (matched case-insensitively).
_BASES = {"loss": "loss", "acc": "accuracy", "accuracy": "accuracy"}
# Kept as they are, and copied to accuracy / val_accuracy when no accuracy was logged.
_ACCURACY_KINDS = ("categorical_accuracy", "sparse_categorical_accuracy", "binary_accuracy")
# Other names with one spelling: Chainer's LogReport times the run from its start, as `elapsed` does.
_SYNONYMS = {"elapsed_time": "elapsed"}
# Chainer's reporter name for the model a trainer optimises.
_CHAINER_MAIN = "main"
_RESERVED_PREFIX = "user_"


def metric_value(value: Any) -> float | int | None:
    """A JSON-ready number from a metric value, or ``None`` when it is not one number.

    Python, numpy, torch, JAX and TensorFlow scalars and one-element arrays, and numeric
    strings (CSV cells) are accepted; integers stay ``int``; NaN and infinities are kept.

    >>> metric_value("0.5"), metric_value(3), metric_value(float("nan")), metric_value([1, 2])
    (0.5, 3, nan, None)
    """
    if value is None or isinstance(value, (bool, bytes)):
        return None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    shape = getattr(value, "shape", None)
    if shape is None and isinstance(value, (list, tuple)):
        if len(value) != 1:
            return None
        value = value[0]
    elif shape is not None and len(shape) > 0 and math.prod(int(s) for s in shape) != 1:
        return None
    if hasattr(value, "item"):  # numpy, torch, jax, tf: the Python number inside
        try:
            value = value.item()
        except (TypeError, ValueError, RuntimeError):
            return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _with_split(prefix: str, base: str) -> str:
    canonical = _BASES.get(base.lower())
    return prefix + (canonical if canonical else base)


def _renamed(name: str) -> str:
    """Rules 2 and 3 for one name (after the ``_step``/``_epoch`` suffix was handled)."""
    parts = name.split("/")
    if len(parts) > 1 and all(parts):
        first, last = parts[0].lower(), parts[-1].lower()
        if first in _SPLITS:  # val/acc, validation/main/loss
            rest = parts[1:]
            if rest[0] == _CHAINER_MAIN and len(rest) > 1:
                rest = rest[1:]
            return _with_split(_SPLITS[first], "_".join(rest))
        if parts[0] == _CHAINER_MAIN:  # main/loss
            return _with_split("", "_".join(parts[1:]))
        if last in _SPLITS:  # Loss/train, Accuracy/val (TensorBoard tags)
            return _with_split(_SPLITS[last], "_".join(parts[:-1]))
    name = name.replace("/", "_")
    if name in _SYNONYMS:
        return _SYNONYMS[name]
    lower = name.lower()
    if lower in _BASES:
        return _BASES[lower]
    for split, prefix in _SPLITS.items():
        if lower.startswith(split + "_") and lower[len(split) + 1:] in _BASES:
            return prefix + _BASES[lower[len(split) + 1:]]
    return name


def metric_name(raw: str) -> str | None:
    """The one spelling of a metric name (rules 1 to 3), or ``None`` for a per-batch ``_step`` value.

    Rules 4 to 6 need the other names of the row; :func:`normalise_metrics` applies them.

    >>> metric_name("validation/main/accuracy"), metric_name("Loss/train"), metric_name("val/acc_epoch")
    ('val_accuracy', 'loss', 'val_accuracy')
    """
    raw = str(raw)
    if raw.endswith("_step"):
        return None
    if raw.endswith("_epoch") and len(raw) > len("_epoch"):
        raw = raw[: -len("_epoch")]
    return _renamed(raw)


def normalise_metrics(raw: Mapping[str, Any] | None, *, reserved: Collection[str] = RESERVED,
                      warned: set[str] | None = None) -> dict[str, float | int]:
    """One row of metrics under one spelling (see the module docstring for the rules).

    Parameters
    ----------
    raw : metric name -> value, as a framework, a logger or a user gives them.
    reserved : names the caller writes into the row itself; a metric that would land on one
        is kept as ``user_<name>`` instead. Recorders use :data:`RESERVED`; importers pass
        the names they write (``("epoch",)``).
    warned : names already warned about (a recorder passes one set for a whole run, so the
        warning comes once); ``None`` warns at every call.

    Returns a new dict in the order of ``raw``, copies of descriptive accuracies last.

    >>> normalise_metrics({"acc": 0.5, "val/loss": 1.3, "train_loss_step": 2.0, "epoch": 4})
    {'accuracy': 0.5, 'val_loss': 1.3, 'user_epoch': 4}
    """
    values: dict[str, float | int] = {}
    for key, value in (raw or {}).items():
        number = metric_value(value)
        if number is not None:
            values[str(key)] = number
    # (raw key, its one spelling, its own name with "/" as "_") for the keys that stay.
    entries: list[tuple[str, str, str]] = []
    for key in values:
        name = metric_name(key)
        if name is None:
            continue
        if key.endswith("_epoch") and key[: -len("_epoch")] in values:
            continue  # Lightning's copy of `name`'s epoch value
        entries.append((key, name, key.replace("/", "_")))
    spelled = {key for key, name, _ in entries if key == name}
    out: dict[str, float | int] = {}
    for key, name, own in entries:
        target = name if (name == key or name not in spelled) and name not in out else own
        if target in out:
            log.debug("metric %r dropped: %r already holds another value", key, target)
            continue
        out[target] = values[key]
    for prefix in ("", "val_"):
        if prefix + "accuracy" not in out:
            kind = next((prefix + k for k in _ACCURACY_KINDS if prefix + k in out), None)
            if kind is not None:
                out[prefix + "accuracy"] = out[kind]
    return _set_aside_reserved(out, frozenset(reserved), warned)


def _set_aside_reserved(row: dict[str, float | int], reserved: frozenset[str],
                        warned: set[str] | None) -> dict[str, float | int]:
    if not reserved.intersection(row):
        return row
    out: dict[str, float | int] = {}
    for name, value in row.items():
        if name in reserved:
            kept = _RESERVED_PREFIX + name
            if warned is None or name not in warned:
                if warned is not None:
                    warned.add(name)
                log.warning("metric '%s' is a name epochscope writes itself; your value is stored as '%s' "
                            "(rename the metric to silence this)", name, kept)
            name = kept
        out.setdefault(name, value)
    return out
