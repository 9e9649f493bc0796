"""A run's network over time: the chain of layers and every edge's magnitude at every recorded
epoch, scaled for drawing (numpy only).

- **Edge values** are magnitudes ``|w|`` (:func:`~epochscope.network.edges.link_magnitude`):
  width grows with ``|w|``, colour shows the change of ``|w|`` against a reference snapshot (the
  previous frame or the first). Both are divided by a per-layer percentile over the whole run,
  never by a weight, so widths compare across frames and one wild edge (or one that started
  near zero) cannot wash out the rest.
- **Wide layers**: columns wider than ``max_nodes`` collapse contiguous neurons into groups
  (edge value = mean magnitude over the block) and ``top_k`` keeps exactly ``k`` edges per
  layer per frame. Then widths rank the drawn edges within the frame (linear in ``|w|`` from the
  weakest drawn, thinnest, to the strongest, widest), so the few edges shown are clearly graded
  even where a collapsed layer's values barely differ; how a layer changes over time is told by
  the colours and the layer summary. With every edge drawn, widths are ``|w|`` over the layer's
  run-wide scale, comparable across frames.
- **Layer summaries**: :meth:`NetworkHistory.layer_change` is the relative change of each
  layer's mean ``|w|`` against the reference, what a reader needs where every edge of a layer
  grew alike.

Example::

    history = NetworkHistory.from_run(open_run("runs/iris"))
    history.sizes                      # (4, 5, 5, 5, 3)
    frame = history.frame(10, NetworkSettings(reference="initial"))
    frame.colors()                     # (n_edges, 3) red = grew, blue = shrank
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..weight_layout import Link, find_chain, flatten_order, layer_sizes
from .edges import EdgeFrame, link_magnitude, top_k_indices
from .layout import collapse, node_groups, node_layout

__all__ = ["CHANGE_PERCENTILE", "NetworkHistory", "NetworkSettings", "WIDTH_PERCENTILE"]

log = logging.getLogger("epochscope")

REFERENCES = ("previous", "initial")
TOP_BY = ("weight", "change")
# Robust scales: a percentile of the run's values, not the maximum, so a few extreme edges
# saturate instead of shrinking everything else to nothing.
WIDTH_PERCENTILE = 98.0
CHANGE_PERCENTILE = 90.0
# Above this many neurons in one column, the default (top_k=None) keeps only the strongest edges:
# AUTO_EDGES_PER_NODE per node of the layer's larger column (64 between two 32-node columns), so
# a reader sees which connections matter instead of a wall of lines.
AUTO_TOP_K_NODES = 16
AUTO_EDGES_PER_NODE = 2


@dataclass(frozen=True)
class NetworkSettings:
    """How edges are chosen and scaled for drawing.

    Parameters
    ----------
    reference : ``"previous"`` colours the change since the previous frame, ``"initial"`` since
        the first recorded epoch.
    top_k : keep exactly this many edges per layer in every frame (the largest by ``top_by``);
        ``None`` keeps all edges when no column is wider than 16 neurons, else two per node of
        the layer's larger (displayed) column, e.g. 64 between two 32-node columns.
    top_by : ``"weight"`` ranks edges by ``|w|``, ``"change"`` by the size of the change.
    max_nodes : columns wider than this are collapsed into this many groups of neurons.

    Raises ``ValueError`` for a value outside these.

    >>> NetworkSettings(reference="initial", top_k=20).top_by
    'weight'
    """

    reference: str = "previous"
    top_k: int | None = None
    top_by: str = "weight"
    max_nodes: int = 32

    def __post_init__(self) -> None:
        if self.reference not in REFERENCES:
            raise ValueError(f"reference must be one of {REFERENCES}, got {self.reference!r}")
        if self.top_by not in TOP_BY:
            raise ValueError(f"top_by must be one of {TOP_BY}, got {self.top_by!r}")
        if self.top_k is not None and (isinstance(self.top_k, bool) or not isinstance(self.top_k, (int, np.integer))
                                       or self.top_k < 1):
            raise ValueError(f"top_k must be a positive integer or None (all edges), got {self.top_k!r}")
        if isinstance(self.max_nodes, bool) or not isinstance(self.max_nodes, (int, np.integer)) or self.max_nodes < 2:
            raise ValueError(f"max_nodes must be an integer >= 2, got {self.max_nodes!r}")


class NetworkHistory:
    """A run's chain of layers with each edge's magnitude at every recorded epoch.

    Build it with :meth:`from_run` (or :meth:`from_weights`), then ask :meth:`frame` for the
    edges of one epoch. Memory is bounded by the collapsed graph: wide columns are reduced
    to ``max_nodes`` groups while each epoch is read.

    Attributes
    ----------
    epochs : ``(n_frames,)`` the epoch of every frame, ascending.
    chain : the :class:`~epochscope.weight_layout.Link` of every layer.
    sizes : neurons per column (e.g. ``(4, 5, 5, 5, 3)``).
    counts : displayed nodes per column (``sizes`` with wide columns collapsed).
    groups : per column, the first neuron of every displayed node.
    magnitudes : per layer, ``(n_frames, counts[i + 1], counts[i])`` float32.
    node_xy : ``(sum(counts), 2)`` node centres in the unit square.
    node_offsets : ``(n_columns + 1,)`` index of each column's first node in ``node_xy``.

    Example::

        history = NetworkHistory.from_run(run)
        frame = history.frame(3, NetworkSettings(top_k=10))
    """

    def __init__(self, epochs: Sequence[int], chain: Sequence[Link], magnitudes: Sequence[np.ndarray],
                 groups: Sequence[np.ndarray]) -> None:
        self.epochs = np.asarray(epochs, dtype=np.int64)
        if len(self.epochs) and np.any(np.diff(self.epochs) <= 0):
            raise ValueError(f"epochs must be strictly increasing, got {self.epochs.tolist()[:20]}")
        self.chain = tuple(chain)
        self.sizes = layer_sizes(self.chain)
        self.groups = tuple(np.asarray(g) for g in groups)
        self.counts = tuple(len(g) for g in self.groups)
        self.magnitudes = [np.asarray(m, dtype=np.float32) for m in magnitudes]
        self.node_xy = node_layout(self.counts)
        self.node_offsets = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)
        self._edge_ends = []
        for i in range(len(self.chain)):
            n_out, n_in = self.counts[i + 1], self.counts[i]
            dst, src = np.divmod(np.arange(n_out * n_in), n_in)  # row-major over (out, in)
            self._edge_ends.append((src + self.node_offsets[i], dst + self.node_offsets[i + 1]))
        self.width_scales = [_robust_scale(m, WIDTH_PERCENTILE) for m in self.magnitudes]
        self._change_scales: dict[str, list[float]] = {}

    @classmethod
    def from_weights(cls, epochs: Sequence[int], weights: Sequence[Mapping[str, np.ndarray]], *,
                     layers: Sequence[str] | None = None, shape: Sequence[int] | None = None,
                     max_nodes: int = 32, channels_last: bool = False) -> NetworkHistory:
        """Build from one ``{name: array}`` dict per epoch (the chain comes from the first).

        ``channels_last``: a dense layer after a conv reads the flattened output position-major
        (see :mod:`epochscope.weight_layout`).

        >>> w = [{"a.weight": np.full((3, 2), float(t))} for t in range(3)]
        >>> NetworkHistory.from_weights([0, 1, 2], w).magnitudes[0].shape
        (3, 3, 2)
        """
        weights = list(weights)
        epochs = list(epochs)
        if not weights:
            raise ValueError("weights: expected at least one epoch of weights, got none")
        if len(epochs) != len(weights):
            raise ValueError(f"epochs and weights must have the same length, got {len(epochs)} and {len(weights)}")
        return cls._build(zip(epochs, weights), layers=layers, shape=shape, max_nodes=max_nodes,
                          channels_last=channels_last)

    @classmethod
    def from_run(cls, run: Any, *, layers: Sequence[str] | None = None, shape: Sequence[int] | None = None,
                 max_nodes: int = 32, progress: bool = False) -> NetworkHistory:
        """Read the weights of every epoch of ``run`` (a :class:`~epochscope.Run`) that recorded them.

        How a flattened conv output is ordered comes from the run's declaration
        (:func:`epochscope.weight_layout.flatten_order`). Raises :class:`~epochscope.RunError`
        when no epoch holds weights, ``ValueError`` as :func:`~epochscope.weight_layout.find_chain`.
        """
        from .._errors import RunError
        from .._progress import progress as bar

        channels_last = flatten_order(run.manifest.info) == "channels_last"
        epochs = run.epochs
        pairs = ((e, w) for e, w in ((e, run.weights(e)) for e in epochs) if w)
        try:
            history = cls._build(pairs, layers=layers, shape=shape, max_nodes=max_nodes, channels_last=channels_last,
                                 progress=lambda it: bar(it, desc="reading weights", enabled=progress,
                                                         total=len(epochs)))
        except _NoWeights:
            raise RunError(
                f"{run.path}: no epoch holds weights, so there is no network to draw; record with "
                "weights='auto' (the default of epochscope.torch.Recorder) or import checkpoints"
            ) from None
        skipped = len(epochs) - len(history)
        if skipped:
            log.info("network: %d epochs of %s hold no weights and are left out", skipped, run.path)
        return history

    @classmethod
    def _build(cls, pairs: Iterable[tuple[int, Mapping[str, np.ndarray]]], *, layers, shape, max_nodes,
               channels_last: bool = False,
               progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None) -> NetworkHistory:
        """Read ``(epoch, weights)`` pairs once each, in order; the chain comes from the first pair."""
        NetworkSettings(max_nodes=max_nodes)  # validates max_nodes
        epochs: list[int] = []
        chain: tuple[Link, ...] = ()
        groups: list[np.ndarray] = []
        per_epoch: list[list[np.ndarray]] = []
        for epoch, w in (progress(pairs) if progress else pairs):
            if not chain:
                chain = find_chain(w, layers=layers, shape=shape, channels_last=channels_last)
                groups = [node_groups(n, max_nodes) for n in layer_sizes(chain)]
            row = []
            for j, link in enumerate(chain):
                if link.weight_key not in w:
                    raise ValueError(f"epoch {epoch}: layer '{link.name}' ({link.weight_key}) is missing "
                                     f"from the recorded weights (present: {list(w)[:12]})")
                row.append(collapse(link_magnitude(link, w[link.weight_key]), groups[j + 1], groups[j]))
            epochs.append(int(epoch))
            per_epoch.append(row)
        if not epochs:
            raise _NoWeights
        mags = [np.stack([row[j] for row in per_epoch]).astype(np.float32, copy=False) for j in range(len(chain))]
        return cls(epochs, chain, mags, groups)

    # -- per frame
    def __len__(self) -> int:
        return len(self.epochs)

    def deltas(self, link: int, reference: str) -> np.ndarray:
        """Change of every edge's magnitude against the reference, ``(n_frames, n_out, n_in)`` (frame 0: zeros)."""
        m = self.magnitudes[link]
        if reference == "previous":
            return np.concatenate([np.zeros_like(m[:1]), np.diff(m, axis=0)])
        if reference == "initial":
            return m - m[:1]
        raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")

    def change_scales(self, reference: str) -> list[float]:
        """Per layer, the run-wide robust scale of changes (the ``CHANGE_PERCENTILE`` of ``|change|``)."""
        if reference not in self._change_scales:
            self._change_scales[reference] = [_robust_scale(self.deltas(i, reference)[1:], CHANGE_PERCENTILE)
                                              for i in range(len(self.chain))]
        return self._change_scales[reference]

    def layer_top_k(self, settings: NetworkSettings) -> list[int | None]:
        """Per layer, the number of edges drawn (``None`` = every edge); see :class:`NetworkSettings`."""
        if settings.top_k is not None:
            return [min(int(settings.top_k), self.counts[i] * self.counts[i + 1]) for i in range(len(self.chain))]
        if max(self.sizes) <= AUTO_TOP_K_NODES:
            return [None] * len(self.chain)
        out: list[int | None] = []
        for i in range(len(self.chain)):
            n_edges = self.counts[i] * self.counts[i + 1]
            k = AUTO_EDGES_PER_NODE * max(self.counts[i], self.counts[i + 1])
            out.append(None if k >= n_edges else k)
        return out

    def effective_top_k(self, settings: NetworkSettings) -> int | None:
        """The largest number of edges drawn in one layer (``None`` = every edge everywhere)."""
        ks = [k for k in self.layer_top_k(settings) if k is not None]
        return max(ks) if ks else None

    def layer_change(self, index: int, settings: NetworkSettings = NetworkSettings()) -> np.ndarray:
        """Per layer, the relative change of its mean ``|w|`` at frame ``index`` against the
        reference (``0.031`` = 3.1 % larger); NaN where the reference mean is 0.

        >>> w = [{"a.weight": np.full((3, 2), float(t + 1))} for t in range(3)]
        >>> NetworkHistory.from_weights([0, 1, 2], w).layer_change(2).round(3).tolist()
        [0.5]
        """
        index = int(index) % len(self)
        out = []
        for m in self.magnitudes:
            now = float(m[index].mean())
            ref = float(m[max(index - 1, 0)].mean() if settings.reference == "previous" else m[0].mean())
            out.append((now - ref) / ref if ref > 0 else np.nan)
        return np.asarray(out)

    def frame(self, index: int, settings: NetworkSettings = NetworkSettings()) -> EdgeFrame:
        """The edges of frame ``index`` (position in :attr:`epochs`) under ``settings``.

        Raises ``IndexError`` outside ``-len(self)..len(self) - 1``.
        """
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame {index} out of range: the history has {len(self)} frames")
        index %= len(self)
        ks = self.layer_top_k(settings)
        scales = self.change_scales(settings.reference)
        parts = []
        for i in range(len(self.chain)):
            k = ks[i]
            mag = self.magnitudes[i][index].ravel()
            if settings.reference == "previous":
                ref = self.magnitudes[i][index - 1].ravel() if index > 0 else mag
            else:
                ref = self.magnitudes[i][0].ravel()
            delta = mag - ref  # a difference, never a ratio: a weight near zero cannot blow up
            keep = np.arange(mag.size) if k is None else top_k_indices(mag if settings.top_by == "weight"
                                                                       else np.abs(delta), k)
            src, dst = self._edge_ends[i]
            if k is None:  # every edge: |w| over the layer's run-wide scale, comparable across frames
                width = np.clip(mag[keep] / self.width_scales[i], 0.0, 1.0)
            else:  # the strongest few: ranked within the frame, weakest drawn thin, strongest wide
                shown = mag[keep]
                lo, hi = (float(shown.min()), float(shown.max())) if len(shown) else (0.0, 0.0)
                width = (shown - lo) / (hi - lo) if hi > lo else np.full(len(shown), 0.5)
            parts.append((src[keep], dst[keep], np.full(len(keep), i), mag[keep], delta[keep], width,
                          np.clip(delta[keep] / scales[i], -1.0, 1.0)))
        src, dst, link, mag, delta, width, change = (np.concatenate(c) for c in zip(*parts))
        order = np.argsort(np.abs(change), kind="stable")  # most changed on top
        return EdgeFrame(int(self.epochs[index]), src[order], dst[order], link[order], width[order].astype(np.float32),
                         change[order].astype(np.float32), mag[order], delta[order])

    def column_labels(self) -> list[str]:
        """One label per column, one line per fact: ``"input\\n4"``, ``"l1\\n5"``, ...,
        ``"conv2D_1\\n32 ch"``, ``"hidden\\n512\\n(32 groups)"`` (a collapsed column)."""
        names = ["input", *(lk.name for lk in self.chain)]
        convs = [self.chain[0].kind == "conv", *(lk.kind == "conv" for lk in self.chain)]
        labels = []
        for name, size, count, conv in zip(names, self.sizes, self.counts, convs):
            text = f"{name}\n{size}{' ch' if conv else ''}"
            labels.append(text + (f"\n({count} groups)" if count < size else ""))
        return labels


class _NoWeights(Exception):
    """No (epoch, weights) pair was given: the caller says what that means for its source."""


def _robust_scale(values: np.ndarray, percentile: float) -> float:
    """A percentile of ``|values|``, floored so an all-zero layer divides by something positive."""
    a = np.abs(np.asarray(values, dtype=np.float64)).ravel()
    if a.size == 0:
        return 1.0
    s = float(np.percentile(a, percentile))
    if s <= 0.0:
        s = float(a.max())
    return s if s > 0.0 else 1.0
