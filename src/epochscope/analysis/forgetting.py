"""Per-example learning dynamics from a run's recorded predictions: which examples were
classified right at each epoch, and forgetting events (Toneva et al., 2019, "An Empirical
Study of Example Forgetting during Deep Neural Network Learning"): an example is forgotten
when it is classified right at one recorded epoch and wrong at the next.
"""

from __future__ import annotations

import numpy as np

__all__ = ["correctness", "count_forgetting", "forgetting_events", "most_forgotten"]


def correctness(run, *, split: str = "probe") -> tuple[list[int], np.ndarray]:
    """``(epochs, correct)`` where ``correct[e, i]`` (bool ``(n_epochs, n_examples)``) says whether
    example ``i`` was classified right at the ``e``-th recorded epoch.

    ``split`` is ``"probe"`` or ``"test"``; ``ValueError`` for another value or a run without
    a test set; a missing predictions file raises the run's ``RunError``.
    """
    if split not in ("probe", "test"):
        raise ValueError(f"split must be 'probe' or 'test', got {split!r}")
    labels = run.labels if split == "probe" else run.test_labels
    if labels is None:
        raise ValueError(f"the run {run.path} recorded no test set")
    epochs = run.epochs
    get = run.predictions if split == "probe" else run.test_predictions
    correct = np.zeros((len(epochs), len(labels)), dtype=bool)
    for row, epoch in enumerate(epochs):
        correct[row] = get(epoch) == labels
    return epochs, correct


def count_forgetting(correct: np.ndarray) -> np.ndarray:
    """Forgetting events per example (int64 ``(n_examples,)``) from a ``correct`` matrix
    ``(n_epochs, n_examples)``: right at one epoch and wrong at the next. Examples the model
    never learns have zero events.

    >>> count_forgetting(np.array([[1, 1], [0, 1], [1, 1], [0, 0]], dtype=bool)).tolist()
    [2, 1]
    """
    correct = np.asarray(correct, dtype=bool)
    if len(correct) < 2:
        return np.zeros(correct.shape[1] if correct.ndim == 2 else 0, dtype=np.int64)
    return (correct[:-1] & ~correct[1:]).sum(axis=0).astype(np.int64)


def forgetting_events(run, *, split: str = "probe") -> np.ndarray:
    """Forgetting events per example of ``split`` over every recorded epoch of ``run``."""
    return count_forgetting(correctness(run, split=split)[1])


def most_forgotten(run, k: int = 10, *, split: str = "probe") -> np.ndarray:
    """Indices of the ``k`` examples with the most forgetting events (at least one), most first;
    ties go to the example that was wrong most often. ``ValueError`` when ``k < 1``."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    _, correct = correctness(run, split=split)
    events = count_forgetting(correct)
    wrong = (~correct).sum(axis=0)
    order = np.lexsort((-wrong, -events))
    return order[events[order] > 0][:k]
