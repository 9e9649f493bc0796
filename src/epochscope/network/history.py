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

from ..weight_layout import Link, find_chain, flatten_order, layer_sizes, weight_layers
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
    left_out : ``{epoch: layer names}`` of the epochs that hold weights but lack layers of the
        chain, so are not drawn (epochs without any weights are not in it).

    Example::

        history = NetworkHistory.from_run(run)
        frame = history.frame(3, NetworkSettings(top_k=10))
    """

    def __init__(self, epochs: Sequence[int], chain: Sequence[Link], magnitudes: Sequence[np.ndarray],
                 groups: Sequence[np.ndarray], *, left_out: Mapping[int, Sequence[str]] | None = None) -> None:
        self.epochs = np.asarray(epochs, dtype=np.int64)
        self.left_out = {int(e): tuple(names) for e, names in (left_out or {}).items()}
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
        """Build from one ``{name: array}`` dict per epoch (which layers, which epochs: :meth:`from_run`).

        ``channels_last``: a dense layer after a conv reads the flattened output position-major
        (see :mod:`epochscope.weight_layout`).

        >>> w = [{"a.weight": np.full((3, 2), float(t))} for t in range(3)]
        >>> NetworkHistory.from_weights([0, 1, 2], w).magnitudes[0].shape
        (3, 3, 2)
        """
        weights = list(weights)
        epochs = [int(e) for e in epochs]
        if not weights:
            raise ValueError("weights: expected at least one epoch of weights, got none")
        if len(epochs) != len(weights):
            raise ValueError(f"epochs and weights must have the same length, got {len(epochs)} and {len(weights)}")
        by_epoch = dict(zip(epochs, weights))
        return cls._build(epochs, by_epoch.__getitem__, layers=layers, shape=shape, max_nodes=max_nodes,
                          channels_last=channels_last)

    @classmethod
    def from_run(cls, run: Any, *, layers: Sequence[str] | None = None, shape: Sequence[int] | None = None,
                 max_nodes: int = 32, progress: bool = False) -> NetworkHistory:
        """Read the weights of every epoch of ``run`` (a :class:`~epochscope.Run`) that recorded them.

        Which layers: ``layers``, or every weight layer of the epoch that holds them all (the
        chain is inferred from their shapes, :func:`~epochscope.weight_layout.find_chain` with
        ``whole=True``: weight layers that form no one chain are refused, never left out).
        Which epochs: those holding every layer of the chain; the others are left out
        (:attr:`left_out`), each said in one warning, as ``epochscope check`` warns of epochs
        without weights. How a flattened conv output is ordered comes from the run's declaration
        (:func:`epochscope.weight_layout.flatten_order`).

        Raises :class:`~epochscope.RunError` when no epoch holds weights, ``ValueError`` as
        :func:`~epochscope.weight_layout.find_chain` and when no epoch holds every weight layer
        (epochs holding different layers: ``layers`` picks the ones to draw).
        """
        from .._errors import RunError
        from .._progress import progress as bar

        channels_last = flatten_order(run.manifest.info) == "channels_last"
        epochs = run.epochs
        with_weights = [e for e in epochs if run.has_weights(e)]
        if not with_weights:
            raise RunError(
                f"{run.path}: no epoch holds weights, so there is no network to draw; record with "
                "weights='auto' (the default of epochscope.torch.Recorder) or import checkpoints"
            )
        history = cls._build(with_weights, run.weights, layers=layers, shape=shape, max_nodes=max_nodes,
                             channels_last=channels_last,
                             progress=lambda it: bar(it, desc="reading weights", enabled=progress,
                                                     total=len(with_weights)))
        held = set(with_weights)
        without = [e for e in epochs if e not in held]
        if without:
            # What `epochscope check` warns of, said where the picture leaves those epochs out.
            log.warning("network: %s of %s hold%s no weights and %s left out of the drawing (recorded with "
                        "weights=None there, or the file was deleted; `epochscope check %s` lists them)",
                        _epochs_text(without), run.path, "s" if len(without) == 1 else "",
                        "is" if len(without) == 1 else "are", run.path)
        return history

    @classmethod
    def _build(cls, epochs: Sequence[int], read: Callable[[int], Mapping[str, np.ndarray]], *, layers, shape,
               max_nodes, channels_last: bool = False,
               progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None) -> NetworkHistory:
        """Read each epoch's weights (``read(epoch)``, ``epochs`` ascending) and build the history.

        The chain comes from the epoch that holds every weight layer (or, with ``layers``, the
        first that holds those), known only once every epoch was read: the first epoch's chain is
        taken meanwhile, and the weights are read a second time only where it was not that one.
        """
        NetworkSettings(max_nodes=max_nodes)  # validates max_nodes
        if not epochs:
            raise ValueError("weights: expected at least one epoch of weights, got none")
        shapes: dict[int, dict[str, _Shape]] = {}  # every epoch's arrays, by shape only

        def guess(weights: Mapping[str, np.ndarray]) -> tuple[Link, ...] | None:
            try:  # the first epoch's chain, a guess: the final one is chosen with every epoch seen
                return find_chain(weights, layers=layers, shape=shape, channels_last=channels_last,
                                  whole=layers is None)
            except ValueError:
                return None

        first: tuple[Link, ...] | None = None
        groups: list[np.ndarray] = []
        rows: dict[int, list[np.ndarray]] = {}
        for epoch in (progress(epochs) if progress else epochs):
            w = read(epoch)
            shapes[epoch] = {k: _Shape(np.shape(v)) for k, v in w.items()}
            if epoch == epochs[0]:
                first = guess(w)
                groups = _groups(first, max_nodes)
            row = _magnitudes(first, w, groups) if first else None
            if row is not None:
                rows[epoch] = row
        chain = find_chain(shapes[_reference_epoch(shapes, layers)], layers=layers, shape=shape,
                           channels_last=channels_last, whole=layers is None)
        if chain != first:  # the first epoch lacked a layer: read again for the chain of the epoch that has them
            groups = _groups(chain, max_nodes)
            rows = {}
            for epoch in (progress(epochs) if progress else epochs):
                row = _magnitudes(chain, read(epoch), groups)
                if row is not None:
                    rows[epoch] = row
        left_out = {e: tuple(lk.name for lk in chain if lk.weight_key not in shapes[e]) for e in epochs
                    if e not in rows}
        if left_out:
            gaps: dict[tuple[str, ...], list[int]] = {}
            for e, names in left_out.items():
                gaps.setdefault(names, []).append(e)
            log.warning("network: %s; %s left out of the drawing, which shows the chain %s; to draw every epoch, "
                        "name the layers they all hold with layers= (--layers NAME ...)",
                        "; ".join(f"{_epochs_text(es)} lack{'s' if len(es) == 1 else ''} layer"
                                  f"{'s' if len(names) > 1 else ''} {', '.join(names)}"
                                  for names, es in gaps.items()),
                        "it is" if len(left_out) == 1 else "they are", "-".join(map(str, layer_sizes(chain))))
        if layers is None:
            _say_what_shapes_cannot_tell(chain)
        drawn = [e for e in epochs if e in rows]  # in the order given: the constructor checks it ascends
        mags = [np.stack([rows[e][j] for e in drawn]).astype(np.float32, copy=False) for j in range(len(chain))]
        return cls(drawn, chain, mags, groups, left_out=left_out)

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


@dataclass(frozen=True)
class _Shape:
    """An array's stand-in for :func:`~epochscope.weight_layout.find_chain`, which reads shapes only."""

    shape: tuple[int, ...]


def _weight_names(arrays: Mapping[str, Any]) -> set[str]:
    return {lk.name for lk in weight_layers(arrays)}


def _reference_epoch(shapes: Mapping[int, Mapping[str, _Shape]], layers: Sequence[str] | None) -> int:
    """The epoch whose weights give the chain: the first holding every weight layer any epoch
    holds (with ``layers``: the first holding those). Raises ``ValueError`` naming the epochs'
    layers when no epoch does."""
    held = {e: _weight_names(arrays) for e, arrays in shapes.items()}
    if layers is not None and not isinstance(layers, str):  # (a string: find_chain says how to write it)
        holds = {str(name): [e for e, arrays in shapes.items() if name in held[e] or name in arrays]
                 for name in layers}
        together = [e for e in shapes if all(e in es for es in holds.values())]
        if together:
            return together[0]
        if all(holds.values()):
            raise ValueError("layers: no epoch holds all of " + ", ".join(holds) + " ("
                             + "; ".join(f"{name} at {_epochs_text(es)}" for name, es in holds.items())
                             + "); name layers that some epochs hold together")
        return next(iter(shapes))  # a name no epoch holds: find_chain names the layers there are
    if layers is not None:
        return next(iter(shapes))
    every = set().union(*held.values())
    for e, names in held.items():
        if names == every:
            return e
    kinds: dict[frozenset[str], list[int]] = {}
    for e, names in held.items():
        kinds.setdefault(frozenset(names), []).append(e)
    raise ValueError(
        "weights: no epoch holds every weight layer, so which network to draw cannot be told ("
        + "; ".join(f"{_epochs_text(es)}: {', '.join(sorted(names))}" for names, es in kinds.items())
        + "); name the layers to draw with layers= (--layers NAME ...): the epochs that hold them all are drawn"
    )


def _groups(chain: Sequence[Link] | None, max_nodes: int) -> list[np.ndarray]:
    """Each column's node groups (:func:`~epochscope.network.layout.node_groups`) for ``chain``."""
    return [node_groups(n, max_nodes) for n in layer_sizes(chain)] if chain else []


def _magnitudes(chain: Sequence[Link], weights: Mapping[str, np.ndarray], groups: Sequence[np.ndarray]
                ) -> list[np.ndarray] | None:
    """Every layer's collapsed edge values at one epoch (``groups``: :func:`_groups` of ``chain``), or
    ``None`` when the epoch lacks a layer of ``chain``."""
    if any(link.weight_key not in weights for link in chain):
        return None
    return [collapse(link_magnitude(link, weights[link.weight_key]), groups[j + 1], groups[j])
            for j, link in enumerate(chain)]


def _say_what_shapes_cannot_tell(chain: Sequence[Link]) -> None:
    """One line naming the layers with as many inputs as outputs: the chain would connect without
    any of them, so their shapes cannot tell whether they run one after another, in this order, or
    side by side (attention's query, key and value); they are drawn in recording order."""
    square = [lk.name for lk in chain if lk.kind != "flatten" and lk.n_in == lk.n_out]
    if square:
        log.info("network: layer%s %s %s as many inputs as outputs, so the shapes cannot tell whether %s one "
                 "after another in this order or side by side (parallel branches, as attention's query, key and "
                 "value); drawn in recording order %s; if the model is wired otherwise, name the layers to draw "
                 "with layers= (--layers NAME ...)", "s" if len(square) > 1 else "", ", ".join(square),
                 "have" if len(square) > 1 else "has", "they run" if len(square) > 1 else "it runs",
                 " -> ".join(lk.name for lk in chain))


def _epochs_text(epochs: Sequence[int]) -> str:
    """``"epoch 3"`` or ``"epochs 0, 2..4"``."""
    from ..run.summary import epoch_spans

    return f"epoch{'s' if len(epochs) > 1 else ''} {epoch_spans(sorted(int(e) for e in epochs))}"


def _robust_scale(values: np.ndarray, percentile: float) -> float:
    """A percentile of ``|values|``, floored so an all-zero layer divides by something positive."""
    a = np.abs(np.asarray(values, dtype=np.float64)).ravel()
    if a.size == 0:
        return 1.0
    s = float(np.percentile(a, percentile))
    if s <= 0.0:
        s = float(a.max())
    return s if s > 0.0 else 1.0
