"""Per-example learning dynamics computed from a run's recorded predictions (numpy only).

Shared by the pictures and the HTML report, so both tell the same story.
"""

from __future__ import annotations

import numpy as np

from .run import Run

__all__ = ["correctness", "forgetting_events", "most_forgotten"]


def correctness(run: Run, *, split: str = "probe") -> tuple[list[int], np.ndarray]:
    """``(epochs, correct)`` where ``correct[e, i]`` says whether example ``i`` was classified
    right at the ``e``-th recorded epoch (``split`` is ``"probe"`` or ``"test"``)."""
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


def forgetting_events(run: Run, *, split: str = "probe") -> np.ndarray:
    """Per example, how often it was classified right at one epoch and wrong at the next
    (Toneva et al., 2019). Examples the model never learns have zero events."""
    _, correct = correctness(run, split=split)
    if len(correct) < 2:
        return np.zeros(correct.shape[1], dtype=np.int64)
    return (correct[:-1] & ~correct[1:]).sum(axis=0).astype(np.int64)


def most_forgotten(run: Run, k: int = 10, *, split: str = "probe") -> np.ndarray:
    """Indices of the ``k`` examples with the most forgetting events (at least one), most first;
    ties go to the example that was wrong most often."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    _, correct = correctness(run, split=split)
    events = (correct[:-1] & ~correct[1:]).sum(axis=0) if len(correct) > 1 else np.zeros(correct.shape[1], int)
    wrong = (~correct).sum(axis=0)
    order = np.lexsort((-wrong, -events))
    return order[events[order] > 0][:k]
