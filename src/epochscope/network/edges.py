"""The edges of the network drawing: each layer's edge values, the edges of one frame, top-k
(numpy only). The GIF renderer and the HTML report draw these same numbers.

- An edge's value is the magnitude ``|w|`` of its weight; a conv layer gives one edge per
  (out channel, in channel) weighted by the L2 norm of that kernel; a dense layer fed by a
  flattened conv output gives one edge per (unit, channel), weighted by the norm over the
  spatial positions (in the flatten order the run declares, see
  :mod:`epochscope.weight_layout`).
- Widths and colours are scaled values in [0, 1] and [-1, 1] (:class:`EdgeFrame`); both
  renderers map a width to a line width between :data:`MIN_LINEWIDTH` and :data:`MAX_LINEWIDTH`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..colors import diverging_rgb
from ..weight_layout import Link

__all__ = ["EdgeFrame", "MAX_LINEWIDTH", "MIN_LINEWIDTH", "link_magnitude", "max_linewidth_for", "top_k_indices"]

#: Line width of an edge of width 0 and of width 1 (matplotlib points in the GIF at 100 dpi,
#: CSS pixels in the report).
MIN_LINEWIDTH = 0.3
MAX_LINEWIDTH = 5.0


def max_linewidth_for(edges_per_layer: float) -> float:
    """The widest line for a drawing with this many edges per layer: :data:`MAX_LINEWIDTH` up to 40
    edges, thinner with the square root of the count beyond (many full-width edges merge into a
    wall of colour), never below 1.2. Both renderers use it.

    >>> max_linewidth_for(10), round(max_linewidth_for(160), 2)
    (5.0, 2.5)
    """
    return float(np.clip(MAX_LINEWIDTH * np.sqrt(40.0 / max(float(edges_per_layer), 1.0)), 1.2, MAX_LINEWIDTH))


def link_magnitude(link: Link, array: np.ndarray) -> np.ndarray:
    """Non-negative edge values ``(n_out, n_in)`` float32 of one layer: ``|w|``, or kernel norms
    for conv and flatten links. Raises ``ValueError`` when ``array`` no longer has the link's shape.

    >>> link_magnitude(Link("a", "a.weight", None, "dense", 2, 1), np.array([[-3.0, 4.0]]))
    array([[3., 4.]], dtype=float32)
    """
    w = np.asarray(array, dtype=np.float32)
    if tuple(w.shape) != tuple(link.shape) and link.shape:
        raise ValueError(f"layer '{link.name}': weights changed shape from {link.shape} to {w.shape} during the run")
    if link.kind == "dense":
        m = np.abs(w) if link.layout == "out_in" else np.abs(w).T
    elif link.kind == "conv":
        if link.layout == "out_in":  # (out, in, *kernel)
            m = np.sqrt(np.square(w).reshape(w.shape[0], w.shape[1], -1).sum(axis=2))
        else:  # (*kernel, in, out)
            m = np.sqrt(np.square(w).reshape(-1, w.shape[-2], w.shape[-1]).sum(axis=0)).T
    else:  # flatten: channel-major (c * HW + hw) or channels-last (hw * C + c)
        w = w if link.layout == "out_in" else w.T  # (out, flattened in)
        if link.channels_last:
            m = np.sqrt(np.square(w).reshape(link.n_out, link.spatial, link.n_in).sum(axis=1))
        else:
            m = np.sqrt(np.square(w).reshape(link.n_out, link.n_in, link.spatial).sum(axis=2))
    return np.ascontiguousarray(m, dtype=np.float32)


def top_k_indices(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of exactly ``min(k, len(values))`` largest values, ascending by index (ties broken arbitrarily).

    >>> top_k_indices(np.array([0.1, 0.9, 0.5, 0.7]), 2)
    array([1, 3])
    """
    values = np.asarray(values).ravel()
    if k >= values.size:
        return np.arange(values.size)
    return np.sort(np.argpartition(-values, k - 1)[:k])


@dataclass(frozen=True)
class EdgeFrame:
    """The edges to draw in one frame, ordered so the most changed are drawn last (on top).

    ``src``/``dst`` index the nodes of :attr:`NetworkHistory.node_xy`; ``link`` is the layer of
    each edge; ``width`` is ``|w|`` over the layer's run-wide scale in [0, 1]; ``change`` is the
    change of ``|w|`` against the reference over the layer's run-wide scale, clipped to [-1, 1]
    (> 0 grew, < 0 shrank); ``magnitude`` and ``delta`` are the unscaled values.
    """

    epoch: int
    src: np.ndarray
    dst: np.ndarray
    link: np.ndarray
    width: np.ndarray
    change: np.ndarray
    magnitude: np.ndarray
    delta: np.ndarray

    def __len__(self) -> int:
        return len(self.src)

    def colors(self) -> np.ndarray:
        """RGB ``(n_edges, 3)`` in [0, 1] of every edge (:func:`epochscope.colors.diverging_rgb`)."""
        return diverging_rgb(self.change)

    def linewidths(self, max_linewidth: float = MAX_LINEWIDTH) -> np.ndarray:
        """Line widths ``(n_edges,)``: :data:`MIN_LINEWIDTH` at width 0 up to ``max_linewidth`` at 1."""
        return MIN_LINEWIDTH + (max_linewidth - MIN_LINEWIDTH) * self.width

    def segments(self, node_xy: np.ndarray) -> np.ndarray:
        """Line segments ``(n_edges, 2, 2)`` from source to destination node centres."""
        return np.stack([node_xy[self.src], node_xy[self.dst]], axis=1)
