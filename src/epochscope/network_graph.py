"""The network as a graph: layer sizes, node layout and per-edge values, from recorded weights.

Everything here is numpy only, so the GIF renderer (:mod:`epochscope.draw.network`) and the
HTML report draw the same graph with the same numbers and colours.

How weights become a graph:

- **The chain.** Weight arrays named ``<layer>.weight`` / ``<layer>/W`` (out x in, PyTorch
  and Chainer) or ``<layer>/kernel`` (in x out, Keras) are taken in recording order; dense
  layers link where one's outputs are the next one's inputs, which gives the layer sizes
  (e.g. 4-5-5-5-3) with no model at hand.
- **Conv layers** become channel-to-channel edges weighted by the L2 norm of each
  (out, in) kernel; a dense layer fed by a flattened conv output gets one edge per
  (channel, unit), weighted by the norm over the spatial positions.
- **Edge values** are magnitudes ``|w|``: width grows with ``|w|``, colour shows the change of
  ``|w|`` against a reference snapshot (the previous frame or the first). Both are divided by a
  per-layer percentile over the whole run, never by a weight, so widths compare across
  frames and one wild edge (or one that started near zero) cannot wash out the rest.
- **Wide layers**: columns wider than ``max_nodes`` collapse contiguous neurons into groups
  (edge value = mean magnitude over the block) and ``top_k`` keeps exactly ``k`` edges per
  layer per frame.

Example::

    history = NetworkHistory.from_run(open_run("runs/iris"))
    history.sizes                      # (4, 5, 5, 5, 3)
    frame = history.frame(10, NetworkSettings(reference="initial"))
    rgb = diverging_rgb(frame.change)  # (n_edges, 3) red = grew, blue = shrank
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .colors import GREW_RGB, NEUTRAL_RGB, SHRANK_RGB, diverging_rgb, rgb_to_hex

__all__ = [
    "Link",
    "NetworkSettings",
    "NetworkHistory",
    "EdgeFrame",
    "find_chain",
    "layer_sizes",
    "link_magnitude",
    "node_groups",
    "collapse",
    "node_layout",
    "top_k_indices",
    "diverging_rgb",
    "rgb_to_hex",
    "GREW_RGB",
    "SHRANK_RGB",
    "NEUTRAL_RGB",
    "WIDTH_PERCENTILE",
    "CHANGE_PERCENTILE",
]

log = logging.getLogger("epochscope")

REFERENCES = ("previous", "initial")
TOP_BY = ("weight", "change")
# Robust scales: a percentile of the run's values, not the maximum, so a few extreme edges
# saturate instead of shrinking everything else to nothing.
WIDTH_PERCENTILE = 98.0
CHANGE_PERCENTILE = 90.0
# Above this many edges in one layer, the default (top_k=None) keeps only the strongest.
AUTO_TOP_K_NODES = 16
AUTO_TOP_K = 150

_WEIGHT_SUFFIX = re.compile(r"^(?P<name>.+?)[./](?P<kind>weight|W|kernel)$")
_BIAS_NAMES = ("bias", "b")


@dataclass(frozen=True)
class Link:
    """One weight layer of the chain, joining column ``i`` (``n_in`` nodes) to ``i + 1`` (``n_out``).

    ``kind`` is ``"dense"``, ``"conv"`` (channel to channel) or ``"flatten"`` (a dense layer
    fed by a conv's flattened output: ``spatial`` inputs per channel). ``layout`` says how the
    array is stored: ``"out_in"`` (PyTorch, Chainer) or ``"in_out"`` (Keras kernels).
    ``channels_last`` says a flattened conv output was ordered position-major (Keras:
    ``hw * C + c``) rather than channel-major (PyTorch: ``c * HW + hw``).
    """

    name: str
    weight_key: str
    bias_key: str | None
    kind: str
    n_in: int
    n_out: int
    layout: str = "out_in"
    spatial: int = 1
    shape: tuple[int, ...] = ()
    channels_last: bool = False


@dataclass(frozen=True)
class NetworkSettings:
    """How edges are chosen and scaled for drawing.

    Parameters
    ----------
    reference : ``"previous"`` colours the change since the previous frame, ``"initial"`` since
        the first recorded epoch.
    top_k : keep exactly this many edges per layer in every frame (the largest by ``top_by``);
        ``None`` keeps all edges when no column is wider than 16 neurons, else 150 per layer.
    top_by : ``"weight"`` ranks edges by ``|w|``, ``"change"`` by the size of the change.
    max_nodes : columns wider than this are collapsed into this many groups of neurons.

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


# --------------------------------------------------------------------------- the chain


def _candidates(weights: Mapping[str, np.ndarray]) -> list[Link]:
    """Every array that looks like a dense or conv weight, as an unchained Link, in given order."""
    found = []
    for key, array in weights.items():
        m = _WEIGHT_SUFFIX.match(key)
        shape = tuple(np.shape(array))
        if not m or len(shape) < 2 or len(shape) > 5:
            continue
        name, kind = m.group("name"), m.group("kind")
        sep = key[len(name)]
        bias = next((f"{name}{sep}{b}" for b in _BIAS_NAMES if f"{name}{sep}{b}" in weights), None)
        layout = "in_out" if kind == "kernel" else "out_in"
        if len(shape) == 2:
            n_out, n_in = shape if layout == "out_in" else shape[::-1]
            found.append(Link(name, key, bias, "dense", int(n_in), int(n_out), layout, 1, shape))
        else:
            n_out, n_in = shape[:2] if layout == "out_in" else (shape[-1], shape[-2])
            found.append(Link(name, key, bias, "conv", int(n_in), int(n_out), layout, 1, shape))
    return found


def _joined(prev: Link, cur: Link, channels_last: bool = False) -> Link | None:
    """``cur`` adjusted to follow ``prev``, or None when the sizes do not connect."""
    if prev.n_out == cur.n_in:
        return cur
    if prev.kind == "conv" and cur.kind == "dense" and cur.n_in % prev.n_out == 0:
        return Link(cur.name, cur.weight_key, cur.bias_key, "flatten", prev.n_out, cur.n_out, cur.layout,
                    cur.n_in // prev.n_out, cur.shape, channels_last or cur.layout == "in_out")
    return None


def _runs(links: Sequence[Link], channels_last: bool = False) -> list[list[Link]]:
    """Split links into maximal connected runs."""
    runs: list[list[Link]] = []
    for link in links:
        joined = _joined(runs[-1][-1], link, channels_last) if runs else None
        if joined is None:
            runs.append([link])
        else:
            runs[-1].append(joined)
    return runs


def _describe(links: Sequence[Link]) -> str:
    return ", ".join(f"{l.name} {l.shape}" for l in links) or "none"


def find_chain(weights: Mapping[str, np.ndarray], *, layers: Sequence[str] | None = None,
               shape: Sequence[int] | None = None, channels_last: bool = False) -> tuple[Link, ...]:
    """Find the chain of dense (and conv) layers in one epoch's weights.

    Parameters
    ----------
    weights : ``{parameter name: array}`` as :meth:`Run.weights` returns it.
    layers : the layers to chain, in order (names such as ``"l1"`` or keys such as
        ``"l1.weight"``); by default the longest connected run of weight layers in recording order.
    shape : the expected layer sizes (e.g. ``(4, 5, 5, 5, 3)``); a mismatch raises a
        ``ValueError`` naming the layer. Without ``layers``, the chain is the run of layers whose
        sizes match ``shape``.
    channels_last : a dense layer after a conv reads the flattened output position-major
        (Keras models, even when their kernels were stored in PyTorch's layout).

    >>> w = {"a.weight": np.zeros((5, 4)), "a.bias": np.zeros(5), "b.weight": np.zeros((3, 5))}
    >>> layer_sizes(find_chain(w))
    (4, 5, 3)
    """
    candidates = _candidates(weights)
    if not candidates:
        raise ValueError(
            "weights: expected arrays named '<layer>.weight', '<layer>/W' or '<layer>/kernel' with 2 or more "
            f"dimensions, got {list(weights)[:12] or 'no arrays'}; record the run with weights (weights='auto')"
        )
    if layers is not None:
        chosen = _pick(candidates, layers)
        chain = [chosen[0]]
        for link in chosen[1:]:
            joined = _joined(chain[-1], link, channels_last)
            if joined is None:
                raise ValueError(
                    f"layers: layer '{link.name}' takes {link.n_in} inputs but '{chain[-1].name}' gives "
                    f"{chain[-1].n_out} outputs, so they do not form a chain; choose layers that follow each other "
                    f"(weight layers: {_describe(candidates)})"
                )
            chain.append(joined)
    else:
        runs = _runs(candidates, channels_last)
        if shape is not None:
            chain = _match_shape(runs, tuple(int(s) for s in shape)) or max(runs, key=len)
        else:
            chain = max(runs, key=len)
        skipped = [l.name for l in candidates if l.name not in {c.name for c in chain}]
        if skipped:
            log.info("network: drawing the chain %s; layers outside it: %s",
                     "-".join(str(s) for s in layer_sizes(chain)), ", ".join(skipped))
    if shape is not None:
        _check_shape(chain, tuple(int(s) for s in shape))
    return tuple(chain)


def _pick(candidates: list[Link], layers: Sequence[str]) -> list[Link]:
    from ._errors import unknown_name_message

    by_name = {l.name: l for l in candidates} | {l.weight_key: l for l in candidates}
    if isinstance(layers, str):
        raise TypeError(f"layers must be a list of layer names, got the string {layers!r}; write [{layers!r}]")
    if not layers:
        raise ValueError("layers must name at least one weight layer")
    picked = []
    for name in layers:
        if name not in by_name:
            raise ValueError(unknown_name_message("weight layer", str(name), [l.name for l in candidates]))
        picked.append(by_name[name])
    return picked


def _match_shape(runs: list[list[Link]], shape: tuple[int, ...]) -> list[Link] | None:
    n = len(shape) - 1
    for run in runs:
        for start in range(len(run) - n + 1):
            window = run[start:start + n]
            if n > 0 and layer_sizes(window) == shape:
                return window
    return None


def _check_shape(chain: Sequence[Link], shape: tuple[int, ...]) -> None:
    sizes = layer_sizes(chain)
    if len(shape) != len(sizes):
        raise ValueError(
            f"shape: expected {len(sizes)} sizes for the chain {'-'.join(map(str, sizes))} "
            f"({_describe(chain)}), got {len(shape)}: {'-'.join(map(str, shape))}; pass layers= to pick other layers"
        )
    for i, (want, got) in enumerate(zip(shape, sizes)):
        if want != got:
            link = chain[i - 1] if i > 0 else chain[0]
            side = "outputs" if i > 0 else "inputs"
            raise ValueError(
                f"shape: size {i} is {want} but layer '{link.name}' (weights {link.shape}) has {got} {side}; "
                f"the weights give {'-'.join(map(str, sizes))}"
            )


def layer_sizes(chain: Sequence[Link]) -> tuple[int, ...]:
    """Nodes per column: the first layer's inputs, then every layer's outputs (e.g. ``(4, 5, 3)``)."""
    if not chain:
        return ()
    return (chain[0].n_in, *(l.n_out for l in chain))


def link_magnitude(link: Link, array: np.ndarray) -> np.ndarray:
    """Non-negative edge values ``(n_out, n_in)`` of one layer: ``|w|``, or kernel norms for conv.

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
    else:  # flatten: channel-major (PyTorch: c * HW + hw) or channels-last (Keras: hw * C + c)
        w = w if link.layout == "out_in" else w.T  # (out, flattened in)
        if link.channels_last:
            m = np.sqrt(np.square(w).reshape(link.n_out, link.spatial, link.n_in).sum(axis=1))
        else:
            m = np.sqrt(np.square(w).reshape(link.n_out, link.n_in, link.spatial).sum(axis=2))
    return np.ascontiguousarray(m, dtype=np.float32)


# --------------------------------------------------------------------------- nodes and layout


def node_groups(n: int, max_nodes: int) -> np.ndarray:
    """Start index of each displayed node's block of neurons: ``arange(n)`` when ``n <= max_nodes``.

    >>> node_groups(10, 4)
    array([0, 3, 6, 8])
    """
    if n <= max_nodes:
        return np.arange(n)
    return np.cumsum([0] + [len(b) for b in np.array_split(np.arange(n), max_nodes)][:-1])


def collapse(m: np.ndarray, out_starts: np.ndarray, in_starts: np.ndarray) -> np.ndarray:
    """Mean of ``m`` (``(..., n_out, n_in)``) over blocks of rows and columns starting at the given indices."""
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


# --------------------------------------------------------------------------- edges


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
        """RGB ``(n_edges, 3)`` of every edge (see :func:`diverging_rgb`)."""
        return diverging_rgb(self.change)

    def segments(self, node_xy: np.ndarray) -> np.ndarray:
        """Line segments ``(n_edges, 2, 2)`` from source to destination node centres."""
        return np.stack([node_xy[self.src], node_xy[self.dst]], axis=1)


class NetworkHistory:
    """A run's chain of layers with each edge's magnitude at every recorded epoch.

    Build it with :meth:`from_run` (or :meth:`from_weights`), then ask :meth:`frame` for the
    edges of one epoch. Memory is bounded by the collapsed graph: wide columns are reduced
    to ``max_nodes`` groups while each epoch is read.

    Attributes
    ----------
    epochs : ``(n_frames,)`` the epoch of every frame, ascending.
    chain : the :class:`Link` of every layer.
    sizes : neurons per column (e.g. ``(4, 5, 5, 5, 3)``).
    counts : displayed nodes per column (``sizes`` with wide columns collapsed).
    groups : per column, the first neuron of every displayed node.
    magnitudes : per layer, ``(n_frames, counts[i + 1], counts[i])`` float32.
    node_xy : ``(sum(counts), 2)`` node centres in the unit square.

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

        >>> w = [{"a.weight": np.full((3, 2), float(t))} for t in range(3)]
        >>> NetworkHistory.from_weights([0, 1, 2], w).magnitudes[0].shape
        (3, 3, 2)
        """
        weights = list(weights)
        if not weights:
            raise ValueError("weights: expected at least one epoch of weights, got none")
        return cls._build(list(epochs), lambda i: weights[i], layers=layers, shape=shape, max_nodes=max_nodes,
                          channels_last=channels_last)

    @classmethod
    def from_run(cls, run, *, layers: Sequence[str] | None = None, shape: Sequence[int] | None = None,
                 max_nodes: int = 32, progress: bool = False) -> NetworkHistory:
        """Read the weights of every epoch of ``run`` (a :class:`~epochscope.Run`) that recorded them.

        A run recorded from Keras flattens conv outputs channels-last; that is taken from
        ``run.framework``.
        """
        from ._errors import RunError
        from ._progress import progress as bar

        epochs = [e for e in run.epochs if (run.epoch_dir(e) / "weights.npz").exists()]
        if not epochs:
            raise RunError(
                f"{run.path}: no epoch holds weights, so there is no network to draw; record with "
                "weights='auto' (the default of epochscope.torch.Recorder) or import checkpoints"
            )
        skipped = len(run.epochs) - len(epochs)
        if skipped:
            log.info("network: %d epochs of %s hold no weights and are left out", skipped, run.path)
        return cls._build(epochs, lambda i: run.weights(epochs[i]), layers=layers, shape=shape,
                          max_nodes=max_nodes, channels_last=str(run.framework).lower().startswith(("keras", "tf")),
                          progress=lambda it: bar(it, desc="reading weights", enabled=progress,
                                                                       total=len(epochs)))

    @classmethod
    def _build(cls, epochs, read, *, layers, shape, max_nodes, channels_last=False, progress=None) -> NetworkHistory:
        NetworkSettings(max_nodes=max_nodes)  # validates max_nodes
        first = read(0)
        chain = find_chain(first, layers=layers, shape=shape, channels_last=channels_last)
        sizes = layer_sizes(chain)
        groups = [node_groups(n, max_nodes) for n in sizes]
        mags = [np.empty((len(epochs), len(groups[i + 1]), len(groups[i])), np.float32) for i in range(len(chain))]
        indices = range(len(epochs))
        for i in (progress(indices) if progress else indices):
            w = first if i == 0 else read(i)
            for j, link in enumerate(chain):
                if link.weight_key not in w:
                    raise ValueError(f"epoch {epochs[i]}: layer '{link.name}' ({link.weight_key}) is missing "
                                     f"from the recorded weights (present: {list(w)[:12]})")
                mags[j][i] = collapse(link_magnitude(link, w[link.weight_key]), groups[j + 1], groups[j])
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

    def effective_top_k(self, settings: NetworkSettings) -> int | None:
        """The ``top_k`` actually used (``None`` = every edge); see :class:`NetworkSettings`."""
        if settings.top_k is not None:
            return int(settings.top_k)
        return AUTO_TOP_K if max(self.sizes) > AUTO_TOP_K_NODES else None

    def frame(self, index: int, settings: NetworkSettings = NetworkSettings()) -> EdgeFrame:
        """The edges of frame ``index`` (position in :attr:`epochs`) under ``settings``."""
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame {index} out of range: the history has {len(self)} frames")
        index %= len(self)
        k = self.effective_top_k(settings)
        scales = self.change_scales(settings.reference)
        parts = []
        for i in range(len(self.chain)):
            mag = self.magnitudes[i][index].ravel()
            if settings.reference == "previous":
                ref = self.magnitudes[i][index - 1].ravel() if index > 0 else mag
            else:
                ref = self.magnitudes[i][0].ravel()
            delta = mag - ref  # a difference, never a ratio: a weight near zero cannot blow up
            keep = np.arange(mag.size) if k is None else top_k_indices(mag if settings.top_by == "weight"
                                                                       else np.abs(delta), k)
            src, dst = self._edge_ends[i]
            parts.append((src[keep], dst[keep], np.full(len(keep), i), mag[keep], delta[keep],
                          np.clip(mag[keep] / self.width_scales[i], 0.0, 1.0),
                          np.clip(delta[keep] / scales[i], -1.0, 1.0)))
        src, dst, link, mag, delta, width, change = (np.concatenate(c) for c in zip(*parts))
        order = np.argsort(np.abs(change), kind="stable")  # most changed on top
        return EdgeFrame(int(self.epochs[index]), src[order], dst[order], link[order], width[order].astype(np.float32),
                         change[order].astype(np.float32), mag[order], delta[order])

    def column_labels(self) -> list[str]:
        """One label per column: ``"input 4"``, ``"l1 5"``, ..., noting collapsed columns."""
        names = ["input", *(l.name for l in self.chain)]
        convs = [self.chain[0].kind == "conv", *(l.kind == "conv" for l in self.chain)]
        labels = []
        for name, size, count, conv in zip(names, self.sizes, self.counts, convs):
            text = f"{name}\n{size}{' ch' if conv else ''}"
            labels.append(text + (f" ({count} groups)" if count < size else ""))
        return labels


def _robust_scale(values: np.ndarray, percentile: float) -> float:
    """A percentile of ``|values|``, floored so an all-zero layer divides by something positive."""
    a = np.abs(np.asarray(values, dtype=np.float64)).ravel()
    if a.size == 0:
        return 1.0
    s = float(np.percentile(a, percentile))
    if s <= 0.0:
        s = float(a.max())
    return s if s > 0.0 else 1.0
