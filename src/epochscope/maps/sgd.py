"""UMAP's layout optimiser with a coherence term, compiled once per machine.

Why epochscope owns this kernel instead of calling umap-learn's ``optimize_layout_euclidean``:

- **the coherence term.** A frame of the time-lapse is optimised on its own epoch's fuzzy
  graph, exactly as UMAP would optimise it, plus a pull of each point toward its place in
  the previous frame (the temporal coherence term of dynamic t-SNE: Rauber, Falcão & Telea
  2016, "Visualizing time-dependent data using dynamic t-SNE", EuroVis short papers;
  umap-learn's ``AlignedUMAP`` adds the same kind of term but optimises all epochs jointly).
  umap-learn's optimiser has no such term;
- **compilation once per machine.** umap-learn compiles its layout kernels with numba in
  every new process (measured: 20-45 s of a first embed on 2 cores) because they are not
  cached on disk. These kernels use ``cache=True``: the first call on a machine compiles
  and stores them in numba's cache, later processes load them in well under a second.
- **threads that keep a map reproducible.** umap-learn's ``parallel=True`` lets threads race
  on shared points (lock-free), so its maps vary from call to call; here the edges run in
  fixed chunks that never read what another chunk writes during a pass
  (:func:`chunk_bounds`, :func:`optimize_layout`'s ``parallel``): all cores, one map.

The SGD itself is UMAP's (McInnes, Healy & Melville 2018, arXiv:1802.03426, section 3.2
and umap-learn's ``_optimize_layout_euclidean_single_epoch``): each edge is sampled every
``epochs_per_sample`` passes and pulls its two ends together with the gradient of
``log(1 / (1 + a d^(2b)))``, clipped to [-4, 4]; each sample also pushes the head away
from ``negative_sample_rate`` random points with the repulsive gradient ``2 gamma b /
((0.001 + d^2)(1 + a d^(2b)))``, clipped the same way; the learning rate falls linearly
from ``initial_alpha`` to 0. The coherence term adds, once per pass,
``-alpha * coherence * w_i * (y_i - anchor_i)`` to every point (``w_i``: ``anchor_weight``, 1 by default): the gradient of
``coherence * w_i / 2 * |y_i - anchor_i|^2``; a step factor ``alpha * coherence * w_i`` above 1
(a learning rate and coherence far above the defaults) is capped at 1, onto the anchor, as
a larger one would step past it. A test checks
that on the same fuzzy graph this optimiser's layouts are as trustworthy and as separated
as umap-learn's (``tests/maps/test_sgd.py``).

Where the compiled code is kept: numba's cache, next to this file in ``__pycache__`` when
that folder is writable, else in the user's cache folder (``~/.cache/numba`` on Linux);
``NUMBA_CACHE_DIR`` overrides both (numba's own rules). A changed source file is
recompiled once.
"""

from __future__ import annotations

import numpy as np

__all__ = ["optimize_layout", "compiled_kernel", "chunk_bounds", "CHUNKS", "PASS_PARTS"]

#: The optimiser's edges are split into this many chunks of head rows (see :func:`chunk_bounds`),
#: run as 8 tasks on numba's threads, each task stepping through 4 chunks at once
#: (``_sgd_kernels.LANES``): an edge's pushes wait on each other's power function, edges of
#: other chunks do not, so four in flight keep a core busy (measured: 1.5x on one thread). A
#: fixed number, not the machine's thread count, so a map is the same on every machine and with
#: any number of threads. More chunks read more neighbours from the pass's snapshot (measured on
#: 1,500-6,000 points with 1 to 16 chunks: the same trustworthiness and separation, within 0.003
#: and 0.01).
CHUNKS = 32

#: A pass over the edges is cut into this many parts; after each, the pulls every chunk made
#: on other chunks' points land and the snapshot the chunks read is renewed. With one part (a
#: snapshot per pass) the first frame of the 60,000-digit run came out clearly less separated
#: than umap-learn's optimiser on the same graph and start (0.447-0.460 over three seeds
#: against 0.494; 200 passes): pulls computed from positions a whole pass old. Two parts:
#: 0.480-0.506, four: 0.498-0.516 (measured, docs/maps.md); two cost about 4 % more time at
#: 5,000 points.
PASS_PARTS = 2

_kernel = None


def compiled_kernel():
    """The numba kernel ``optimize``, compiled or loaded from numba's on-disk cache on first use."""
    global _kernel
    if _kernel is None:
        from .._optional import import_compiled, require

        require("numba", extra="maps", purpose="UMAP maps")
        _kernel = import_compiled("epochscope.maps._sgd_kernels").optimize
    return _kernel


def chunk_bounds(head: np.ndarray, eps: np.ndarray, n_rows: int, chunks: int = CHUNKS) -> tuple[np.ndarray, np.ndarray]:
    """Split edges sorted by head into ``chunks`` runs of whole head rows with about equal work.

    Work is an edge's samples per pass (``1 / epochs_per_sample``; its negative samples follow
    it), so a chunk of many rarely sampled edges is not mistaken for a busy one.

    Returns ``(edge_bounds, row_bounds)``, int64 ``(chunks + 1,)``: chunk ``c`` holds edges
    ``edge_bounds[c]:edge_bounds[c + 1]``, whose heads are the rows ``row_bounds[c]:row_bounds[c + 1]``
    of ``0..n_rows``, so no two chunks move the same point. A row with very many edges can
    leave a chunk empty.

    >>> chunk_bounds(np.array([0, 0, 1, 2, 2, 3]), np.ones(6), 4, chunks=2)
    (array([0, 3, 6]), array([0, 2, 4]))
    """
    if chunks < 1:
        raise ValueError(f"chunks must be >= 1, got {chunks}")
    work = np.cumsum(np.where(eps > 0, 1.0 / np.where(eps > 0, eps, 1.0), 0.0))
    total = work[-1] if len(work) else 0.0
    cut = np.searchsorted(work, total * np.arange(1, chunks) / chunks, side="right")
    first = head[np.minimum(cut, len(head) - 1)] if len(head) else np.zeros(chunks - 1, dtype=np.int64)
    rows = np.concatenate([[0], np.minimum(first, n_rows), [n_rows]]).astype(np.int64)
    rows = np.maximum.accumulate(rows)
    return np.searchsorted(head, rows, side="left").astype(np.int64), rows


def _require_finite(name: str, values: np.ndarray) -> None:
    # NaN or inf in a layout would spread along the edges to the whole map
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite (it holds NaN or inf)")


def optimize_layout(head_embedding: np.ndarray, tail_embedding: np.ndarray | None, head: np.ndarray,
                    tail: np.ndarray, epochs_per_sample: np.ndarray, n_epochs: int, *, a: float, b: float,
                    gamma: float = 1.0, initial_alpha: float = 1.0, negative_sample_rate: float = 5.0,
                    anchor: np.ndarray | None = None, coherence: float = 0.0,
                    rate: np.ndarray | None = None, seed: int = 0, parallel: bool = True,
                    anchor_weight: np.ndarray | None = None) -> np.ndarray:
    """Run UMAP's SGD on a 2-D layout for ``n_epochs`` passes; returns the optimised layout.

    Parameters
    ----------
    head_embedding : ``(n, 2)`` start of the points being laid out (copied, not changed).
    tail_embedding : ``None`` to lay out one graph on itself (UMAP's fit; both ends of an
        edge move), or an ``(m, 2)`` layout held fixed that the heads are placed against
        (UMAP's transform); edges then point from heads to rows of ``tail_embedding``.
    head, tail : int edge ends; ``epochs_per_sample`` float per edge (see
        :func:`.fuzzy.epochs_per_sample`; -1 never samples the edge).
    a, b, gamma, initial_alpha, negative_sample_rate : UMAP's parameters (:func:`.fuzzy.ab_params`).
    anchor : ``(n, 2)`` place of each head point in the neighbouring frame, or ``None``.
    coherence : weight of the pull toward ``anchor`` (0: plain UMAP).
    anchor_weight : ``(n,)`` per-point scale in [0, 1] of that pull, or ``None`` (1 for all).
    rate : ``(n,)`` per-point scale in [0, 1] of every SGD step that moves a point (0 holds
        it against the graph's forces), or ``None`` (1 for all: UMAP's SGD). The coherence
        pull is not scaled by it: a held point that starts at its anchor (as the time-lapse's
        warm frames start) stays there.
    seed : seed of the negative sampling.
    parallel : run the :data:`CHUNKS` chunks of edges on numba's threads (``False``: on this
        thread only). The layout is the same either way, bit for bit: during a pass each chunk
        moves only its own head points, sees every other point as it was when the pass began,
        and its pulls on those land after the pass (see :func:`chunk_bounds`). Unlike umap-learn's ``parallel=True``
        (lock-free threads racing on shared rows), threads never make a map irreproducible.

    Example::

        graph = fuzzy_graph(idx, dist).tocoo()
        layout = optimize_layout(start, None, graph.row, graph.col, epochs_per_sample(graph.data, 200),
                                 200, a=1.577, b=0.895)
    """
    head_embedding = np.array(head_embedding, dtype=np.float32, order="C", copy=True)
    if head_embedding.ndim != 2 or head_embedding.shape[1] != 2:
        raise ValueError(f"head_embedding must be (n, 2), got {head_embedding.shape}")
    _require_finite("head_embedding", head_embedding)
    move_other = tail_embedding is None
    if move_other:
        tail_arr = head_embedding
    else:
        tail_arr = np.ascontiguousarray(tail_embedding, dtype=np.float32)
        # the kernel reads columns 0 and 1 without bounds checks
        if tail_arr.ndim != 2 or tail_arr.shape[1] != 2:
            raise ValueError(f"tail_embedding must be (m, 2), got {tail_arr.shape}")
        _require_finite("tail_embedding", tail_arr)
    if not np.isfinite(coherence):
        raise ValueError(f"coherence must be a finite number, got {coherence!r}")
    if not (np.isfinite(negative_sample_rate) and negative_sample_rate >= 0):
        raise ValueError(f"negative_sample_rate must be a finite number >= 0, got {negative_sample_rate!r}")
    if anchor is None or coherence <= 0:
        anchor_arr = np.zeros((0, 2), dtype=np.float32)
        coherence = 0.0
    else:
        anchor_arr = np.ascontiguousarray(anchor, dtype=np.float32)
        if anchor_arr.shape != head_embedding.shape:
            raise ValueError(f"anchor {anchor_arr.shape} must match the layout {head_embedding.shape}")
        _require_finite("anchor", anchor_arr)
    if anchor_weight is None:
        weights = np.zeros(0, dtype=np.float32)
    else:
        weights = np.ascontiguousarray(anchor_weight, dtype=np.float32)
        if weights.shape != (len(head_embedding),) or not np.all((weights >= 0) & (weights <= 1)):
            raise ValueError(f"anchor_weight must be ({len(head_embedding)},) values in [0, 1], got shape "
                             f"{weights.shape}")
    if rate is None:
        rates = np.zeros(0, dtype=np.float32)
    else:
        rates = np.ascontiguousarray(rate, dtype=np.float32)
        if rates.shape != (len(head_embedding),) or not np.all((rates >= 0) & (rates <= 1)):
            raise ValueError(f"rate must be ({len(head_embedding)},) values in [0, 1], got shape {rates.shape}")
    head, tail = np.asarray(head), np.asarray(tail)
    eps = np.ascontiguousarray(epochs_per_sample, dtype=np.float64)
    if not head.shape == tail.shape == eps.shape or head.ndim != 1:
        raise ValueError(f"head, tail and epochs_per_sample must be 1-D of one length, got {head.shape}, "
                         f"{tail.shape}, {eps.shape}")
    if len(head) == 0 or n_epochs <= 0:
        return head_embedding
    if not (np.issubdtype(head.dtype, np.integer) and np.issubdtype(tail.dtype, np.integer)):
        raise ValueError(f"head and tail must hold integers, got {head.dtype} and {tail.dtype}")
    # the kernel does not check indices (numba): a bad one would read or write outside the layout;
    # checked before the cast to int32, which would wrap 2**32 round to 0
    if head.min() < 0 or head.max() >= len(head_embedding) or tail.min() < 0 or tail.max() >= len(tail_arr):
        raise ValueError(f"edge ends must index the layouts: head in 0..{len(head_embedding) - 1}, tail in "
                         f"0..{len(tail_arr) - 1}, got {head.min()}..{head.max()} and {tail.min()}..{tail.max()}")
    if np.any(np.isnan(eps)):  # a NaN edge would be sampled on every pass
        raise ValueError("epochs_per_sample must not be NaN (-1: never sampled)")
    head = np.ascontiguousarray(head, dtype=np.int32)
    tail = np.ascontiguousarray(tail, dtype=np.int32)
    # one order for any order given (the chunks need edges grouped by head): the same map from
    # the same graph however its edges are listed (repeated edges too: ordered by their eps)
    dh, dt = np.diff(head), np.diff(tail)
    if np.any((dh < 0) | ((dh == 0) & ((dt < 0) | ((dt == 0) & (np.diff(eps) < 0))))):
        order = np.lexsort((eps, tail, head))
        head, tail, eps = head[order], tail[order], eps[order]
    edge_bounds, _ = chunk_bounds(head, eps, len(head_embedding))
    kernel = compiled_kernel()
    import numba

    threads = numba.get_num_threads()
    if not parallel:
        numba.set_num_threads(1)  # this thread's setting only (numba's threading layer masks the rest)
    try:
        kernel(head_embedding, tail_arr, head, tail, eps, np.int64(n_epochs), np.float64(a), np.float64(b),
               np.float64(gamma), np.float64(initial_alpha), np.float64(negative_sample_rate), bool(move_other),
               anchor_arr, np.float64(coherence), weights, rates, np.int64(seed), edge_bounds, np.int64(PASS_PARTS))
    finally:
        numba.set_num_threads(threads)
    return head_embedding
