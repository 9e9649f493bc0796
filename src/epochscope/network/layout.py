"""Where the network's nodes sit, and how wide layers collapse into groups of neurons (numpy only).

Example::

    node_layout([4, 5, 3])        # (12, 2) node centres in the unit square
    node_groups(784, 32)          # first neuron of each of 32 displayed nodes
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["collapse", "node_groups", "node_layout"]


def node_groups(n: int, max_nodes: int) -> np.ndarray:
    """Start index of each displayed node's block of neurons: ``arange(n)`` when ``n <= max_nodes``,
    else ``max_nodes`` contiguous blocks of (nearly) equal size.

    >>> node_groups(10, 4)
    array([0, 3, 6, 8])
    """
    if n <= max_nodes:
        return np.arange(n)
    return np.cumsum([0] + [len(b) for b in np.array_split(np.arange(n), max_nodes)][:-1])


def collapse(m: np.ndarray, out_starts: np.ndarray, in_starts: np.ndarray) -> np.ndarray:
    """Mean of ``m`` (``(..., n_out, n_in)``) over blocks of rows and columns starting at the given
    indices (see :func:`node_groups`); ``m`` itself when no block holds more than one neuron.

    >>> collapse(np.arange(4.0).reshape(2, 2), np.array([0]), np.array([0, 1])).tolist()
    [[1.0, 2.0]]
    """
    if len(out_starts) == m.shape[-2] and len(in_starts) == m.shape[-1]:
        return m
    sums = np.add.reduceat(np.add.reduceat(m, out_starts, axis=-2), in_starts, axis=-1)
    rows = np.diff(np.append(out_starts, m.shape[-2]))
    cols = np.diff(np.append(in_starts, m.shape[-1]))
    return (sums / np.outer(rows, cols)).astype(np.float32)


def node_layout(counts: Sequence[int]) -> np.ndarray:
    """Node centres ``(sum(counts), 2)`` in the unit square: one column per layer, centred vertically.

    Columns sit at evenly spaced x from 0 to 1; nodes share one vertical spacing (that of the
    fullest column), first node on top, so narrower columns are centred.

    >>> node_layout([1, 2]).round(2).tolist()
    [[0.0, 0.5], [1.0, 1.0], [1.0, 0.0]]
    """
    counts = [int(c) for c in counts]
    tallest = max(counts)
    step = 1.0 / (tallest - 1) if tallest > 1 else 0.0
    xs = np.linspace(0.0, 1.0, len(counts)) if len(counts) > 1 else np.array([0.5])
    parts = []
    for x, n in zip(xs, counts):
        y = 0.5 - (np.arange(n) - (n - 1) / 2) * step
        parts.append(np.column_stack([np.full(n, x), y]))
    return np.concatenate(parts).astype(np.float64)
