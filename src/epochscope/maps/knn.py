"""Exact nearest neighbours and UMAP-style placement of new points on a fitted map.

For a few thousand examples an exact k-nearest-neighbour search by blocked matrix
products is both faster and better than an approximate index (measured: see docs/maps.md),
and it needs no warm start. Placing test points follows ``umap.UMAP.transform`` step for
step (fuzzy weights to the k nearest probe points, weighted-mean start, a short
optimisation with the probe layout held fixed), but on the exact neighbours, with the
kernels of :mod:`.fuzzy` and :mod:`.sgd` (nothing compiled per process) and without
needing the ``UMAP`` object, so any 2-D layout of the probe set can receive test points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["exact_knn", "smallest_k", "count_below", "bounded_exact_knn", "squared_distances_to", "forest_knn", "refine_knn",
           "refine_query_knn",
           "screened_query_knn", "Screen", "changed_fraction", "place_points", "KNN_BLOCK_PAIRS"]

#: Query-data pairs whose distances one block of :func:`exact_knn` holds at a time (2**22:
#: 16 MiB of float32 distances plus 32 MiB of argpartition's int64 indices).
KNN_BLOCK_PAIRS = 2**22


def _threads() -> int:
    # the kernels' rows are independent: chunks only spread them over the threads
    import numba

    return int(numba.get_num_threads())


def _loaded_kernels():
    """The compiled kernels when numba is already imported (the UMAP maps), else ``None`` (PCA maps
    never import numba for them; numpy does the same work there)."""
    import sys

    if sys.modules.get("numba") is None:  # absent, or blocked (None) as in the missing-extra tests
        return None
    from .._optional import import_compiled

    return import_compiled("epochscope.maps._knn_kernels")


def _required_kernels(purpose: str):
    """The compiled kernels, or :class:`MissingDependencyError` naming the ``maps`` extra for ``purpose``."""
    from .._optional import import_compiled, require

    require("numba", extra="maps", purpose=purpose)
    return import_compiled("epochscope.maps._knn_kernels")


def smallest_k(values: np.ndarray, k: int) -> np.ndarray:
    """Column indices ``(m, k)`` int64 of the ``k`` smallest entries of each row of ``values`` (2-D,
    ``1 <= k <= values.shape[1]``), ascending by value.

    A numba kernel on numba's threads when numba is already loaded (the UMAP maps; measured on
    2 cores: 3 ms against 83 ms for numpy's single-threaded ``argpartition`` on a 2,000 x 2,000
    float32 block with k = 10, 9 ms against 287 ms on 2,048 x 5,000 with k = 15), else
    numpy's ``argpartition`` and a sort of the ``k``, so that maps without numba (PCA) never
    import it. The two differ only in which of several
    equal values (or NaNs, which rank after every number as in numpy's sort) is taken (the
    kernel: the lower column).

    >>> smallest_k(np.array([[3.0, 1.0, 2.0], [0.0, 5.0, -1.0]]), 2).tolist()
    [[1, 2], [2, 0]]
    """
    import operator

    k = operator.index(k)  # an integer (numpy's argpartition refuses 2.0; the kernel would take it)
    values = np.asarray(values)
    if values.ndim != 2 or not 1 <= k <= values.shape[1]:
        raise ValueError(f"k must lie in 1..{values.shape[-1] if values.ndim else 0} for a 2-D array, got k={k} "
                         f"and shape {values.shape}")
    kernels = _loaded_kernels()
    if kernels is not None and values.dtype in (np.float32, np.float64):
        return kernels.smallest(np.ascontiguousarray(values), int(k))
    part = np.argpartition(values, k - 1, axis=1)[:, :k] if k < values.shape[1] else \
        np.broadcast_to(np.arange(values.shape[1]), values.shape)
    order = np.argsort(np.take_along_axis(values, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64)


def count_below(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``(m, k)`` int64: how many entries of each row of ``values`` ``(m, n)`` lie below each of that
    row's ``thresholds`` ``(m, k)`` (strictly; NaN is below nothing).

    A numba kernel when numba is loaded (one pass over each row on numba's threads), else one
    numpy comparison of the whole matrix per threshold column. Ranks a map's neighbours among
    the layer's for the trustworthiness figure.

    >>> count_below(np.array([[3.0, 1.0, 2.0]]), np.array([[2.0, 3.5]])).tolist()
    [[1, 3]]
    """
    values = np.asarray(values)
    thresholds = np.asarray(thresholds, dtype=values.dtype)
    if values.ndim != 2 or thresholds.ndim != 2 or len(thresholds) != len(values):
        raise ValueError(f"values (m, n) and thresholds (m, k) must share m; got {values.shape} and {thresholds.shape}")
    kernels = _loaded_kernels()
    if kernels is not None and values.dtype in (np.float32, np.float64):
        return kernels.count_below(np.ascontiguousarray(values), np.ascontiguousarray(thresholds))
    out = np.empty(thresholds.shape, dtype=np.int64)
    for t in range(thresholds.shape[1]):
        out[:, t] = np.count_nonzero(values < thresholds[:, t:t + 1], axis=1)
    return out


def exact_knn(data: np.ndarray, k: int, *, queries: np.ndarray | None = None, block: int = 2048
              ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``data`` (Euclidean) for every row of ``queries``.

    Without ``queries`` the rows of ``data`` query themselves and each row is its own first
    neighbour at distance 0, as UMAP expects. Returns ``(indices int32, distances float32)``,
    both ``(n_queries, k)``, nearest first. Memory is bounded: at most ``block`` query rows and
    :data:`KNN_BLOCK_PAIRS` distances at a time, whatever ``len(data)`` and ``len(queries)``.

    >>> idx, dist = exact_knn(np.array([[0.0], [1.0], [3.0]]), 2)
    >>> idx.tolist()
    [[0, 1], [1, 0], [2, 1]]
    """
    data = np.ascontiguousarray(data, dtype=np.float32)
    self_query = queries is None
    q_all = data if self_query else np.ascontiguousarray(queries, dtype=np.float32)
    if not 1 <= k <= len(data):
        raise ValueError(f"k must lie in 1..{len(data)} (the number of points), got {k}")
    sq_data = np.einsum("ij,ij->i", data, data)
    # One block holds block x n distances (float32) and argpartition's int64 indices of the
    # same shape: 12 bytes a pair. Capping the pairs per block at KNN_BLOCK_PAIRS bounds the
    # peak (about 48 MiB) however many points and queries there are (a 60,000-point map with
    # 10,000 test points would otherwise take gigabytes), and the arithmetic runs in place.
    block = max(1, min(block, KNN_BLOCK_PAIRS // max(len(data), 1)))
    indices = np.empty((len(q_all), k), dtype=np.int32)
    distances = np.empty((len(q_all), k), dtype=np.float32)
    for start in range(0, len(q_all), block):
        q = q_all[start:start + block]
        d2 = q @ data.T
        d2 *= -2.0
        d2 += np.einsum("ij,ij->i", q, q)[:, None]
        d2 += sq_data[None, :]
        np.maximum(d2, 0.0, out=d2)
        if self_query:
            rows = np.arange(len(q))
            d2[rows, start + rows] = -1.0  # the point itself always comes first
        part = smallest_k(d2, k)
        del d2
        # The expansion |q|^2 + |x|^2 - 2 q.x loses digits to cancellation (a duplicate row came
        # out 0.0135 away, a distance of 0.87 off by 1.2e-3 on a layer of values near 30): it only
        # picks the candidates; their distances are measured again as differences.
        pd = squared_distances_to(q, data, part)
        if self_query:
            pd[np.arange(len(q))[:, None] == part - start] = -1.0  # the point itself always comes first
        order = np.argsort(pd, axis=1, kind="stable")
        indices[start:start + len(q)] = np.take_along_axis(part, order, axis=1)
        distances[start:start + len(q)] = np.sqrt(np.maximum(np.take_along_axis(pd, order, axis=1), 0.0))
    return indices, distances


def squared_distances_to(queries: np.ndarray, data: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Squared distances ``(m, j)`` float64 from ``queries[i]`` to ``data[idx[i, :]]``, as sums of squared
    differences (float32 differences, float64 sums; no cancellation as in the matrix-product expansion).

    A numba kernel on numba's threads when numba is loaded (as :func:`smallest_k`), else numpy a few
    rows at a time, so that rows x j x width stays under 2**22 values; ``inf`` where ``idx`` is -1
    (a missing neighbour).

    >>> squared_distances_to(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0], [1.0, 0.0]]), np.array([[0, -1]])).tolist()
    [[25.0, inf]]
    """
    queries = np.asarray(queries, dtype=np.float32)
    data = np.asarray(data, dtype=np.float32)
    idx = np.asarray(idx)
    if idx.size and idx.max() >= len(data):
        raise IndexError(f"row {idx.max()} asked of {len(data)} rows")
    kernels = _loaded_kernels()
    if kernels is not None and idx.ndim == 2 and queries.ndim == data.ndim == 2:
        return kernels.distances_to(np.ascontiguousarray(queries), np.ascontiguousarray(data),
                                    np.ascontiguousarray(idx, dtype=np.int64))
    out = np.empty(idx.shape, dtype=np.float64)
    step = max(1, 2**22 // max(idx.shape[1] * data.shape[1], 1))
    for lo in range(0, len(queries), step):
        gap = data[np.maximum(idx[lo:lo + step], 0)] - queries[lo:lo + step, None, :]
        out[lo:lo + step] = np.einsum("ijk,ijk->ij", gap, gap, dtype=np.float64)
    out[idx < 0] = np.inf
    return out


def bounded_exact_knn(data: np.ndarray, queries: np.ndarray, k: int, screen: Screen, upper: np.ndarray, *,
                      search: np.ndarray | None = None, self_rows: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The exact ``k`` nearest rows of ``data`` for each query, measuring only the rows that can be among them.

    ``upper``: ``(m,)`` a distance each query's ``k``-th nearest neighbour is known not to
    exceed (e.g. the farthest of ``k`` neighbours found by a faster search). A projection on
    orthonormal directions never lengthens a distance, so a row farther than ``upper`` in
    ``screen``'s space is farther in the full space too and is skipped without loss; the
    rest are measured in the full space. The result is the exact search's (the same as
    :func:`exact_knn`, ties apart) at a small part of its cost on a wide layer. A margin of
    1e-3 of the rows' largest norm covers float32 rounding in the projection. ``search``:
    ``screen(data)`` when already computed; ``self_rows``: the queries are these rows of
    ``data`` (each then comes first, at distance 0, as in :func:`exact_knn`). Returns
    ``(indices int32, distances float32)``, ``(m, k)``, nearest first.
    """
    data = np.ascontiguousarray(data, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    space = (screen(data) if search is None else search).astype(np.float64)
    near = screen(queries).astype(np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    if upper.shape != (len(queries),):
        raise ValueError(f"upper must hold one bound per query ({len(queries)}), got shape {upper.shape}")
    if not 1 <= k <= len(data):
        raise ValueError(f"k must lie in 1..{len(data)} (the number of rows), got {k}")
    if self_rows is not None:
        self_rows = np.asarray(self_rows)
        if self_rows.shape != (len(queries),) or not np.array_equal(data[self_rows], queries):
            raise ValueError("self_rows must name, for each query, the row of data it is (data[self_rows] == queries)")
    # float32 rounding in the projected coordinates (each a sum of `width` products) stays far
    # below this margin, so it can only add candidates, never lose one
    dims, width = screen.components.shape
    margin = (1e-3 + 2.0 * np.sqrt(dims) * width * 2.0**-24) * float(np.sqrt(np.max(np.einsum("ij,ij->i", data, data))))
    limit = (upper + margin) ** 2
    sq_space = np.einsum("ij,ij->i", space, space)
    indices = np.empty((len(queries), k), dtype=np.int32)
    distances = np.empty((len(queries), k), dtype=np.float32)
    for start in range(0, len(queries), 64):
        block = near[start:start + 64]
        d2 = sq_space[None, :] - 2.0 * (block @ space.T) + np.einsum("ij,ij->i", block, block)[:, None]
        for r, row in enumerate(d2):
            i = start + r
            cand = np.flatnonzero(row <= limit[i])
            found = _nearest_of(data, queries[i], cand, k, None if self_rows is None else self_rows[i])
            # Exact only if the k-th found lies within the bound (then every row as near is a
            # candidate); a bound that was too small is caught here and everything measured.
            # (half the margin: a row within rounding of the candidates' limit may have been left out)
            if found is None or found[1][-1] > upper[i] + margin / 2:
                found = _nearest_of(data, queries[i], np.arange(len(data)), k, None if self_rows is None else self_rows[i])
            indices[i], distances[i] = found
    return indices, distances


def _nearest_of(data, query, cand, k, itself):
    if len(cand) < k:
        return None
    full = squared_distances_to(query[None, :], data, cand[None, :])[0]
    if itself is not None:
        full[cand == itself] = -1.0
    order = np.argsort(full, kind="stable")[:k]
    return cand[order], np.sqrt(np.maximum(full[order], 0.0))


def changed_fraction(indices: np.ndarray, previous: np.ndarray) -> float:
    """Mean fraction of each point's neighbours (itself excluded) that are not among its previous ones.

    >>> changed_fraction(np.array([[0, 1, 2], [1, 0, 2]]), np.array([[0, 1, 3], [1, 0, 2]]))
    0.25
    """
    new, old = np.asarray(indices)[:, 1:], np.asarray(previous)[:, 1:]
    both = np.sort(np.concatenate([new, old], axis=1), axis=1)
    shared = np.count_nonzero(both[:, 1:] == both[:, :-1], axis=1)
    return float(1.0 - np.mean(shared) / max(new.shape[1], 1))


def _reverse(graph: np.ndarray, fresh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # CSR of who lists each point as a neighbour (the point itself, column 0, left out), with
    # each reverse entry's ``fresh`` flag (all True without ``fresh``)
    n = len(graph)
    targets = graph[:, 1:].reshape(-1)
    sources = np.repeat(np.arange(n, dtype=np.int32), graph.shape[1] - 1)
    flags = np.ones(len(targets), dtype=bool) if fresh is None else fresh[:, 1:].reshape(-1)
    keep = targets >= 0
    targets, sources, flags = targets[keep], sources[keep], flags[keep]
    order = np.argsort(targets, kind="stable")
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(targets, minlength=n), out=ptr[1:])
    return ptr, np.ascontiguousarray(sources[order], dtype=np.int32), np.ascontiguousarray(flags[order])


@dataclass(frozen=True)
class Screen:
    """A wide layer's leading principal directions, where a cheap first search screens candidates.

    A search for neighbours touches each candidate's whole row; on a 512-wide layer of 60,000
    examples that is memory traffic more than arithmetic (measured: 2.4 s a local-join round,
    1.6x faster with rows merely reordered by class). Projected on the directions that hold
    :data:`SCREEN_VARIANCE` of the variance (61-82 of 512 on the MNIST CNN's hidden layer), rows
    are 6-8x smaller; the search there keeps ``pool`` times as many candidates as needed and
    they are ranked by exact distances in the full layer, so the neighbours and their
    distances are the layer's own (measured on that layer, 400 sampled points, epochs 1 and 5:
    the 30 nearest in 32 dimensions hold 99.9-100 % of the exact 15 nearest; the 15 nearest
    alone, 89-91 %; 99 % rather than 98 % of the variance because on a low-rank synthetic
    layer 98 % left a signal direction out and recall fell to 97.4 %). ``mean``: ``(width,)``,
    ``components``: ``(dims, width)``, float32.
    """

    mean: np.ndarray
    components: np.ndarray

    @classmethod
    def fit(cls, data: np.ndarray, *, variance: float | None = None, max_share: float = 0.25, sample: int = 4096,
            seed: int = 0) -> Screen | None:
        """The fewest principal directions of a random sample of ``data`` holding ``variance`` of its
        variance, or ``None`` when more than ``max_share`` of the width would be needed (screening
        would not pay) or the data has no variance."""
        variance = SCREEN_VARIANCE if variance is None else variance
        data = np.asarray(data)
        if max_share * data.shape[1] < 1:  # not even one direction allowed (and np.cov of one column is 0-d)
            return None
        rows = np.random.default_rng(seed).choice(len(data), size=min(sample, len(data)), replace=False)
        part = np.asarray(data[np.sort(rows)], dtype=np.float64)
        mean = part.mean(axis=0)
        values, vectors = np.linalg.eigh(np.cov(part - mean, rowvar=False))
        values, vectors = np.maximum(values[::-1], 0.0), vectors[:, ::-1]
        total = values.sum()
        if total <= 0:
            return None
        dims = int(np.searchsorted(np.cumsum(values) / total, variance) + 1)
        if dims > max_share * data.shape[1]:
            return None
        return cls(mean.astype(np.float32), np.ascontiguousarray(vectors[:, :dims].T, dtype=np.float32))

    def __call__(self, data: np.ndarray) -> np.ndarray:
        """``data`` ``(n, width)`` projected: ``(n, dims)`` float32 (no centred copy of ``data`` is made)."""
        out = np.asarray(data, dtype=np.float32) @ self.components.T
        out -= self.mean @ self.components.T
        return np.ascontiguousarray(out)


#: Share of the layer's variance a :class:`Screen` keeps, and how many candidates per needed
#: neighbour its search passes on to the exact ranking (see :class:`Screen`; a pool of 3 gave
#: no better recall on the MNIST layer and took up to a third longer).
SCREEN_VARIANCE = 0.99
SCREEN_POOL = 2


def refine_knn(data: np.ndarray, start: np.ndarray, *, rounds: int = 4, tolerance: float = 0.02,
               search: np.ndarray | None = None, pool: int = SCREEN_POOL) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest neighbours of every row of ``data``, searched among the neighbours of a start graph.

    ``start`` is an ``(n, k)`` neighbour graph (itself first), typically the previous
    epoch's: each round looks at every point's neighbours and reverse neighbours in the
    current graph and at *their* neighbours (the local join of NN-descent, Dong, Moses &
    Li 2011), with exact distances in ``data``, and keeps the ``k`` nearest. Rounds stop
    when fewer than ``tolerance`` of the neighbours change (measured on a 5,000 x 512 CNN
    layer: two rounds from the previous epoch's graph find 99.6 % of the exact neighbours,
    0.2 s a round against 0.8-1.7 s for the exact search; the first epoch of training,
    where half the neighbours change, needs four for 99.1 %). Between two epochs of training
    a layer keeps most neighbourhoods, so this finds nearly all exact neighbours for a
    fraction of an exact search's cost (check it with :func:`.umap_chain.sampled_recall`).
    A numba kernel compiled once per machine (``cache=True``), unlike pynndescent's, which
    recompiles in every process (measured 60-75 s on 2 busy cores).

    ``search``: the same rows in a cheaper space (a :class:`Screen` of ``data``): the rounds
    run there, every round keeps ``pool * k`` candidates, and the last round's are ranked by their
    exact distances in ``data``.

    Returns ``(indices int32, distances float32)``, ``(n, k)``, nearest first.
    """
    kernels = _required_kernels("the warm-started neighbour search")

    data = np.ascontiguousarray(data, dtype=np.float32)
    graph = np.ascontiguousarray(start, dtype=np.int32)
    if graph.shape[0] != data.shape[0]:
        raise ValueError(f"start graph has {graph.shape[0]} rows for {data.shape[0]} points")
    space = data if search is None else np.ascontiguousarray(search, dtype=np.float32)
    if len(space) != len(data):
        raise ValueError(f"search has {len(space)} rows for {len(data)} points")
    k, chunks = graph.shape[1], 4 * _threads()
    # Screened, every round keeps the pool (its first k are the graph the next round walks), so the
    # last round's result is the pool the exact ranking needs.
    width = k if search is None else min(max(pool, 1) * k, len(data))
    fresh = np.ones(graph.shape, dtype=bool)  # the first round: every distance is new
    found = d2 = np.zeros((0, 0), dtype=np.float32)
    for _ in range(max(1, rounds)):
        ptr, rev, rev_fresh = _reverse(graph, fresh)
        found, d2 = kernels.refine(space, graph, fresh, ptr, rev, rev_fresh, found.astype(np.int32), d2, width, chunks)
        head = np.ascontiguousarray(found[:, :k])
        changed = changed_fraction(head, graph)
        fresh = kernels.fresh_entries(head, graph)
        graph = head
        if changed < tolerance:
            break
    if search is not None:
        graph, d2 = kernels.rerank(data, data, found, k, True, chunks)
    return graph, np.sqrt(np.maximum(d2[:, :k], 0.0))


def screened_query_knn(data: np.ndarray, queries: np.ndarray, k: int, screen: Screen, *, pool: int = SCREEN_POOL,
                       search: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``data`` for each query: an exact search in ``screen``'s space for
    ``pool * k`` candidates, ranked by exact distances in the full space (see :class:`Screen`).

    ``search``: ``screen(data)`` when already computed. Returns ``(indices int32, distances
    float32)``, ``(m, k)``, nearest first.
    """
    kernels = _required_kernels("the screened neighbour search")

    data = np.ascontiguousarray(data, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    space = screen(data) if search is None else search
    candidates, _ = exact_knn(space, min(max(pool, 1) * k, len(data)), queries=screen(queries))
    found, d2 = kernels.rerank(queries, data, candidates, k, False, 4 * _threads())
    return found, np.sqrt(np.maximum(d2, 0.0))


def _tree_leaves(data: np.ndarray, leaf_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    # A random projection tree (Dasgupta & Freund 2008, as pynndescent's initialisation):
    # split every node at the median of the points' projection on the line through two of
    # its random points, until leaves hold at most leaf_size points.
    leaves, stack = [], [np.arange(len(data))]
    while stack:
        node = stack.pop()
        if len(node) <= leaf_size:
            leaves.append(node)
            continue
        a, b = rng.choice(len(node), size=2, replace=False)
        normal = data[node[a]] - data[node[b]]
        if not np.any(normal):
            normal = rng.normal(size=data.shape[1]).astype(np.float32)
        side = data[node] @ normal
        order = np.argsort(side, kind="stable")
        half = len(node) // 2
        stack.extend([node[order[:half]], node[order[half:]]])
    return leaves


def forest_knn(data: np.ndarray, k: int, *, trees: int = 3, leaf_size: int = 128, seed: int = 0,
               search: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest neighbours of every row without an all-pairs search: a cold start for large probes.

    Candidates: each point's nearest among the points sharing a leaf of ``trees`` random
    projection trees (numpy: one small matrix product per leaf); then :func:`refine_knn`
    searches their neighbourhoods with exact distances until the graph settles (the
    initialisation and local join of NN-descent, Dong, Moses & Li 2011, as pynndescent
    does it, but with kernels compiled once per machine instead of in every process).
    Check the result with :func:`.umap_chain.sampled_recall`. Returns ``(indices int32,
    distances float32)``, itself first. Measured on the MNIST CNN's 512-wide layer: 98.9 %
    of the exact neighbours for 5,000 examples, 97.9 % for 60,000 (97 s on 2 busy cores,
    where pynndescent spends 60-75 s compiling before it starts). At least two trees:
    one tree's leaves are closed neighbourhoods the local join cannot leave. ``search``: as
    for :func:`refine_knn` (trees and rounds in that space, candidates ranked in ``data``).
    """
    full = np.ascontiguousarray(data, dtype=np.float32)
    data = full if search is None else np.ascontiguousarray(search, dtype=np.float32)
    n = len(data)
    k = min(k, n)
    rng = np.random.default_rng(seed)
    best_d = np.full((n, k), np.inf, dtype=np.float32)
    best_i = np.full((n, k), -1, dtype=np.int64)
    best_i[:, 0], best_d[:, 0] = np.arange(n), -1.0  # itself first
    for _ in range(max(1, trees)):
        for leaf in _tree_leaves(data, max(leaf_size, 2 * k), rng):
            sub = data[leaf]
            sq = np.einsum("ij,ij->i", sub, sub)
            d2 = sq[:, None] + sq[None, :] - 2.0 * (sub @ sub.T)
            np.fill_diagonal(d2, np.inf)  # itself is already in place
            # merge the leaf's candidates with what earlier trees found, without duplicates
            cand_i = np.concatenate([best_i[leaf], np.broadcast_to(leaf, d2.shape)], axis=1)
            cand_d = np.concatenate([best_d[leaf], d2.astype(np.float32)], axis=1)
            order = np.argsort(cand_i, axis=1, kind="stable")
            sorted_i = np.take_along_axis(cand_i, order, axis=1)
            dup = np.zeros(sorted_i.shape, dtype=bool)
            dup[:, 1:] = sorted_i[:, 1:] == sorted_i[:, :-1]
            cand_d[np.arange(len(leaf))[:, None], order[:, 1:]] = np.where(
                dup[:, 1:], np.inf, cand_d[np.arange(len(leaf))[:, None], order[:, 1:]])
            keep = np.argsort(cand_d, axis=1, kind="stable")[:, :k]
            best_i[leaf] = np.take_along_axis(cand_i, keep, axis=1)
            best_d[leaf] = np.take_along_axis(cand_d, keep, axis=1)
    start = np.where(np.isfinite(best_d), best_i, -1).astype(np.int32)
    return refine_knn(full, start, rounds=8, search=search)


def refine_query_knn(data: np.ndarray, queries: np.ndarray, start: np.ndarray, graph: np.ndarray, *,
                     rounds: int = 4, tolerance: float = 0.02, screen: Screen | None = None,
                     search: np.ndarray | None = None, pool: int = SCREEN_POOL) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows of ``data`` for each query, searched near a start guess (as :func:`refine_knn`).

    ``start`` is ``(m, k)``: each query's guessed neighbours among ``data`` (e.g. the test
    points' neighbours at the previous epoch); ``graph`` is ``data``'s own neighbour graph
    (itself first). Each round looks at the current neighbours and their ``graph``
    neighbours, with exact distances. ``screen``: the rounds run in that :class:`Screen`'s
    space (``search``: ``screen(data)`` when already computed), a last round keeps ``pool * k``
    candidates and those are ranked by exact distances in ``data``. Returns ``(indices
    int32, distances float32)``, ``(m, k)``, nearest first.
    """
    kernels = _required_kernels("the warm-started neighbour search")

    data = np.ascontiguousarray(data, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    space, query_space = data, queries
    if screen is not None:
        space = screen(data) if search is None else np.ascontiguousarray(search, dtype=np.float32)
        query_space = screen(queries)
    current = np.ascontiguousarray(start, dtype=np.int32)
    graph = np.ascontiguousarray(graph, dtype=np.int32)
    k, chunks = current.shape[1], 4 * _threads()
    d2 = None
    for _ in range(max(1, rounds)):
        found, d2 = kernels.refine_queries(query_space, space, current, graph, k, chunks)
        # (column 0 is a neighbour here, not the query itself: compare whole rows)
        changed = changed_fraction(np.pad(found, ((0, 0), (1, 0))), np.pad(current, ((0, 0), (1, 0))))
        current = found
        if changed < tolerance:
            break
    if screen is not None:
        candidates, _ = kernels.refine_queries(query_space, space, current, graph, min(max(pool, 1) * k, len(data)),
                                               chunks)
        current, d2 = kernels.rerank(queries, data, candidates, k, False, chunks)
    return current, np.sqrt(np.maximum(d2, 0.0))


def place_points(probe_data: np.ndarray, probe_layout: np.ndarray, new_data: np.ndarray, *, n_neighbors: int = 15,
                 n_epochs: int = 100, min_dist: float = 0.1, spread: float = 1.0, seed: int = 0,
                 neighbours: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Place ``new_data`` on a fitted 2-D ``probe_layout`` the way ``umap.UMAP.transform`` does.

    Parameters
    ----------
    probe_data : (n, d) the layer's values for the probe set the layout was fitted on.
    probe_layout : (n, 2) the probe set's map.
    new_data : (m, d) the layer's values for the points to place (e.g. the test set).
    n_neighbors, min_dist, spread : as for the UMAP that made the layout.
    n_epochs : optimisation epochs with the probe layout held fixed (UMAP uses 100 for
        small data); 0 keeps the fuzzy-weighted mean of the neighbours' positions.
    neighbours : the new points' ``(indices, distances)`` among the probe points, when
        already known (otherwise :func:`exact_knn` finds them).

    The steps are ``UMAP.transform``'s: fuzzy weights to the ``n_neighbors`` nearest probe
    points (local connectivity one less than in the fit), a start at their weighted mean,
    then UMAP's optimiser (:mod:`.sgd`, learning rate 0.25) with the probe layout held
    fixed. No ``UMAP`` object and nothing compiled per process is needed.

    Example::

        test_xy = place_points(x_probe, maps.frame(9), x_test)
    """
    import scipy.sparse

    from .fuzzy import ab_params, epochs_per_sample, membership_strengths, smooth_knn_dist
    from .sgd import optimize_layout

    layout = np.ascontiguousarray(probe_layout, dtype=np.float32)
    k = min(n_neighbors, len(layout))
    indices, dists = exact_knn(probe_data, k, queries=new_data) if neighbours is None else neighbours
    # Same membership strengths as UMAP.transform: local connectivity one less than in fit.
    sigmas, rhos = smooth_knn_dist(dists, float(k), local_connectivity=0.0)
    rows, cols, vals = membership_strengths(indices, dists, sigmas, rhos, bipartite=True)
    graph = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(len(new_data), len(layout)))
    csr = graph.tocsr()
    csr.eliminate_zeros()
    placed = _weighted_start(csr, layout, indices[:, 0])
    if n_epochs <= 0 or graph.nnz == 0:
        return placed
    graph.data[graph.data < graph.data.max() / float(n_epochs)] = 0.0
    graph.eliminate_zeros()
    a, b = ab_params(spread, min_dist)
    return optimize_layout(placed, layout, graph.row, graph.col, epochs_per_sample(graph.data, n_epochs), n_epochs,
                           a=a, b=b, initial_alpha=0.25, seed=seed).astype(np.float32)


def _weighted_start(graph, layout: np.ndarray, nearest: np.ndarray) -> np.ndarray:
    """``umap.umap_.init_graph_transform`` without its Python loop (0.34 s -> 2 ms for 1,000 points).

    Each new point starts at the strength-weighted mean of its neighbours' positions, or
    exactly on a probe point it duplicates (strength 1). Where UMAP would give NaN (no
    neighbour with any strength) the point starts on its nearest neighbour instead.
    """
    sums = np.asarray(graph.sum(axis=1)).ravel()
    placed = np.asarray(graph @ layout, dtype=np.float64)
    has = sums > 0
    placed[has] /= sums[has, None]
    placed[~has] = layout[nearest[~has]]
    ones = graph.copy()
    ones.data = (ones.data == 1.0).astype(np.int8)
    ones.eliminate_zeros()
    rows = np.flatnonzero(np.diff(ones.indptr))
    if len(rows):
        placed[rows] = layout[ones.indices[ones.indptr[rows]]]
    return np.ascontiguousarray(placed, dtype=np.float32)
