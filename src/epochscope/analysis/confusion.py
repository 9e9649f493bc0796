"""Confusion counts: one implementation for ``confusion.png`` and the report's matrix.

Counted with numpy's ``bincount`` rather than scikit-learn's ``confusion_matrix``: the same
counts (a test checks them against scikit-learn), without importing scikit-learn (seconds)
to draw one picture.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_FULL_CLASSES", "ConfusionSummary", "confusion_classes", "confusion_counts", "confusion_over_epochs",
           "confusion_split", "confusion_summary"]

#: Up to this many classes a confusion matrix shows every class; beyond, the classes most often
#: confused and one row and column for all the others (a 20,000-class matrix is 400 million cells).
MAX_FULL_CLASSES = 30


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


def confusion_classes(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, k: int = 20) -> np.ndarray:
    """The ``k`` classes a reduced confusion matrix shows: those with the most errors (as the true
    class or as the prediction), ties to the lower class index; ascending. All classes when
    ``n_classes <= k``. Memory grows with the number of examples, never with ``n_classes ** 2``.

    >>> confusion_classes(np.array([0, 1, 2, 2]), np.array([0, 2, 1, 2]), 3, k=2).tolist()
    [1, 2]
    """
    if n_classes <= k:
        return np.arange(n_classes)
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    bad = (y_true != y_pred) & (y_true >= 0) & (y_true < n_classes)
    errors = np.bincount(y_true[bad], minlength=n_classes)
    pred_bad = bad & (y_pred >= 0) & (y_pred < n_classes)
    errors = errors + np.bincount(y_pred[pred_bad], minlength=n_classes)
    order = np.lexsort((np.arange(n_classes), -errors))
    return np.sort(order[:k])


class ConfusionSummary:
    """Confusion counts over a chosen list of classes plus one "other" row and column for the rest.

    ``counts`` int64 ``(k + 1, k + 1)`` (the last row/column: every other class; its diagonal
    cell mixes right answers and confusions among those classes), ``classes`` the class index of
    each shown row, ``correct`` and ``total`` over every example with a prediction, ``unknown``
    the examples without one (``-1`` or a class the run does not name).
    """

    def __init__(self, counts: np.ndarray, classes: np.ndarray, correct: int, total: int, unknown: int) -> None:
        self.counts, self.classes, self.correct, self.total, self.unknown = counts, classes, correct, total, unknown


def confusion_summary(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, classes: np.ndarray) -> ConfusionSummary:
    """Counts of ``classes`` (from :func:`confusion_classes`) and "other", without a dense
    ``n_classes x n_classes`` array.

    >>> s = confusion_summary(np.array([0, 1, 2, 2]), np.array([0, 2, 1, 2]), 3, np.array([1, 2]))
    >>> s.counts.tolist(), s.correct
    ([[0, 1, 0], [1, 1, 0], [0, 0, 1]], 2)
    """
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    classes = np.asarray(classes, dtype=np.int64)
    k = len(classes)
    ok = (y_pred >= 0) & (y_pred < n_classes) & (y_true >= 0) & (y_true < n_classes)
    slot = np.full(n_classes, k, dtype=np.int64)
    slot[classes] = np.arange(k)
    rows, cols = slot[y_true[ok]], slot[y_pred[ok]]
    counts = np.bincount(rows * (k + 1) + cols, minlength=(k + 1) ** 2).reshape(k + 1, k + 1).astype(np.int64)
    return ConfusionSummary(counts, classes, int((y_true[ok] == y_pred[ok]).sum()), int(ok.sum()),
                            int((~ok).sum()))
