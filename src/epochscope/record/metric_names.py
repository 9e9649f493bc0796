"""One spelling for the usual training metrics, whatever a framework or a user called them.

Keras logs ``acc`` or ``accuracy`` (or ``sparse_categorical_accuracy``) depending on how
the model was compiled; Lightning users log ``train_loss``, ``val_acc``, ``loss_epoch``...
The pictures look for ``loss``, ``accuracy``, ``val_loss`` and ``val_accuracy``, so the
adapters pass their raw metrics through :func:`normalise_metrics` before recording.
"""

from __future__ import annotations

import math

from collections.abc import Mapping
from typing import Any

__all__ = ["CANONICAL", "SYNONYMS", "normalise_metrics"]

CANONICAL = ("loss", "accuracy", "val_loss", "val_accuracy")

# Pure synonyms: renamed to the canonical name (keeping both would only duplicate a curve).
SYNONYMS = {
    "acc": "accuracy",
    "train_acc": "accuracy",
    "train_accuracy": "accuracy",
    "train_loss": "loss",
    "val_acc": "val_accuracy",
    "valid_acc": "val_accuracy",
    "valid_accuracy": "val_accuracy",
    "valid_loss": "val_loss",
    "validation_loss": "val_loss",
    "validation_accuracy": "val_accuracy",
}

# Descriptive names: kept as they are, and copied to the canonical name when it is absent.
_ACCURACY_KINDS = ("categorical_accuracy", "sparse_categorical_accuracy", "binary_accuracy")


def _scalar(value: Any) -> float | None:
    """``float(value)`` for a number or a one-element array/tensor of any framework, else None."""
    if isinstance(value, (str, bytes)):
        return None
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) > 0:
        if math.prod(int(s) for s in shape) != 1:
            return None
        value = value.item() if hasattr(value, "item") else value
    try:
        number = float(value)  # numpy, torch, jax and tf scalars all implement __float__
    except (TypeError, ValueError, RuntimeError):
        return None
    return number  # NaN stays: a diverged loss is worth seeing


def normalise_metrics(raw: Mapping[str, Any] | None) -> dict[str, float]:
    """Scalar metrics under one spelling: ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``,
    plus every other scalar as it was named.

    - ``acc``/``train_acc``/``train_accuracy`` become ``accuracy``; ``val_acc`` becomes
      ``val_accuracy``; ``train_loss`` becomes ``loss`` (unless the canonical name is
      also present, in which case both are kept as given).
    - ``sparse_categorical_accuracy`` and its kin are kept and also copied to ``accuracy``
      (``val_`` likewise) when no accuracy was logged under that name.
    - Lightning's ``name_epoch`` becomes ``name`` (the epoch aggregate; dropped when ``name``
      is there too); ``name_step`` values (one batch's value) are dropped.
    - ``epoch`` is left out (the run numbers its epochs), and so are values that are not
      scalars (strings, arrays of several values).

    >>> normalise_metrics({"acc": 0.5, "val_acc": 0.4, "loss": 1.2})
    {'accuracy': 0.5, 'val_accuracy': 0.4, 'loss': 1.2}
    """
    scalars: dict[str, float] = {}
    for key, value in (raw or {}).items():
        number = _scalar(value)
        if number is not None:
            scalars[str(key)] = number
    names = set(scalars)
    out: dict[str, float] = {}
    for key, number in scalars.items():
        if key.endswith("_step") or key == "epoch":
            continue  # a single batch's value / the run numbers its epochs itself
        if key.endswith("_epoch"):
            if key[: -len("_epoch")] in names:
                continue  # Lightning logs the same epoch value under both names
            key = key[: -len("_epoch")]
        canonical = SYNONYMS.get(key)
        if canonical is not None and canonical not in names:
            key = canonical
        out.setdefault(key, number)
    for prefix in ("", "val_"):
        if prefix + "accuracy" not in out:
            for kind in _ACCURACY_KINDS:
                if prefix + kind in out:
                    out[prefix + "accuracy"] = out[prefix + kind]
                    break
    return out
