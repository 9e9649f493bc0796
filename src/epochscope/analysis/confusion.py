"""Confusion counts: one implementation for ``confusion.png`` and the report's matrix.

Counted with numpy's ``bincount`` rather than scikit-learn's ``confusion_matrix``: the same
counts (a test checks them against scikit-learn), without importing scikit-learn (seconds)
to draw one picture.
"""

from __future__ import annotations

import numpy as np

__all__ = ["confusion_counts", "confusion_over_epochs", "confusion_split"]


def confusion_split(run) -> str:
    """The split a run's confusion matrix shows: ``"test"`` when the run recorded a test set
    (held-out data is the honest measure), else ``"probe"``. The PNG and the report both ask here."""
    return "test" if run.has_test else "probe"


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``counts[true, predicted]`` as int64 ``(n_classes, n_classes)``.

    Predictions outside ``0..n_classes-1`` (``-1``: the model gave none; or a class the run
    does not name) are left out; count them with ``((y_pred < 0) | (y_pred >= n_classes)).sum()``.
    Raises ``ValueError`` when the two arrays differ in length.

    >>> confusion_counts(np.array([0, 0, 1]), np.array([0, 1, 1]), 2).tolist()
    [[1, 1], [0, 1]]
    """
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    ok = (y_pred >= 0) & (y_pred < n_classes) & (y_true >= 0) & (y_true < n_classes)
    flat = y_true[ok] * n_classes + y_pred[ok]
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes).astype(np.int64)


def confusion_over_epochs(y_true: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts at every epoch: int64 ``(n_epochs, n_classes, n_classes)`` from ``predictions``
    ``(n_epochs, n_examples)`` (each row as :func:`confusion_counts`)."""
    predictions = np.asarray(predictions)
    return np.stack([confusion_counts(y_true, row, n_classes) for row in predictions]) if len(predictions) else \
        np.zeros((0, n_classes, n_classes), dtype=np.int64)
