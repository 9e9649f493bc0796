"""numba kernels of :func:`.knn.refine_knn` and :func:`.knn.smallest_k` (compiled once per machine: ``cache=True``).

Kept apart from :mod:`.knn` so that the exact search there runs without numba (numpy's
``argpartition`` then picks the k smallest, see :func:`.knn.smallest_k`).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["refine", "fresh_entries", "refine_queries", "rerank", "smallest", "distances_to"]


@numba.njit(cache=True, fastmath=True, inline="always")
def _sqdist(x, i, j):
    total = np.float32(0.0)
    for d in range(x.shape[1]):
        diff = x[i, d] - x[j, d]
        total += diff * diff
    return total


@numba.njit(cache=True, fastmath=True, inline="always")
def _sqdist2(q, i, x, j):
    total = np.float32(0.0)
    for d in range(x.shape[1]):
        diff = q[i, d] - x[j, d]
        total += diff * diff
    return total


@numba.njit(cache=True, fastmath=True)
def _insert(best_idx, best_d, j, dist):
    # best_d is sorted ascending; drop the last entry and insert (j, dist) in order.
    k = best_d.shape[0]
    if dist >= best_d[k - 1]:
        return
    pos = k - 1
    while pos > 0 and best_d[pos - 1] > dist:
        best_d[pos] = best_d[pos - 1]
        best_idx[pos] = best_idx[pos - 1]
        pos -= 1
    best_d[pos] = dist
    best_idx[pos] = j


@numba.njit(cache=True, fastmath=True)
def _refine_rows(x, graph, fresh, rev_ptr, rev_idx, rev_fresh, seed_idx, seed_d, start, stop, seen, out_idx, out_d):
    width = out_idx.shape[1]
    k = graph.shape[1]
    seeded = seed_idx.shape[0] > 0
    for i in range(start, stop):
        best_idx = out_idx[i]
        best_d = out_d[i]
        for p in range(width):
            best_idx[p] = -1
            best_d[p] = np.inf
        best_idx[0] = i
        best_d[0] = -1.0  # the point itself always comes first
        seen[i] = i
        if seeded:  # the last round's result, whose distances are already known
            for p in range(seed_idx.shape[1]):
                j = seed_idx[i, p]
                if j >= 0 and seen[j] != i:
                    seen[j] = i
                    _insert(best_idx, best_d, j, seed_d[i, p])
        # candidates: the point's neighbours and reverse neighbours in the graph, and theirs; a pair
        # through an old neighbour's old neighbour was measured in the last round (NN-descent's flags)
        for s in range(k + rev_ptr[i + 1] - rev_ptr[i]):
            if s < k:
                j = graph[i, s]
                new_j = fresh[i, s]
            else:
                j = rev_idx[rev_ptr[i] + s - k]
                new_j = rev_fresh[rev_ptr[i] + s - k]
            if j < 0:
                continue
            if seen[j] != i:
                seen[j] = i
                _insert(best_idx, best_d, j, _sqdist(x, i, j))
            for t in range(k):
                m = graph[j, t]
                if m >= 0 and seen[m] != i and (new_j or fresh[j, t]):
                    seen[m] = i
                    _insert(best_idx, best_d, m, _sqdist(x, i, m))
        best_d[0] = 0.0


@numba.njit(cache=True, fastmath=True, parallel=True)
def refine(x, graph, fresh, rev_ptr, rev_idx, rev_fresh, seed_idx, seed_d, width, n_chunks):
    """One round of neighbour-of-neighbour search from ``graph``: the ``width`` nearest ``(indices,
    squared distances)``, sorted. ``fresh`` marks the graph's entries new since the last round
    (``rev_fresh`` the same for the reverse lists); pairs through two old entries are skipped, as
    the last round's result ``seed_idx, seed_d`` (empty: none, every entry must then be fresh)
    already holds the best of them."""
    n = x.shape[0]
    out_idx = np.empty((n, width), dtype=np.int32)
    out_d = np.empty((n, width), dtype=np.float32)
    size = (n + n_chunks - 1) // n_chunks
    for c in numba.prange(n_chunks):
        start = c * size
        stop = min(n, start + size)
        if start < stop:
            seen = np.full(n, -1, dtype=np.int64)
            _refine_rows(x, graph, fresh, rev_ptr, rev_idx, rev_fresh, seed_idx, seed_d, start, stop, seen, out_idx,
                         out_d)
    return out_idx, out_d


@numba.njit(cache=True, parallel=True)
def fresh_entries(graph, previous):
    """``graph[i, t]`` not among ``previous[i]``, per entry (bool, the shape of ``graph``)."""
    out = np.empty(graph.shape, dtype=np.bool_)
    for i in numba.prange(graph.shape[0]):
        for t in range(graph.shape[1]):
            j = graph[i, t]
            new = True
            for u in range(previous.shape[1]):
                if previous[i, u] == j:
                    new = False
                    break
            out[i, t] = new
    return out


@numba.njit(cache=True, fastmath=True)
def _query_rows(queries, x, start, graph, start_row, stop_row, seen, out_idx, out_d):
    k = out_idx.shape[1]
    for i in range(start_row, stop_row):
        best_idx = out_idx[i]
        best_d = out_d[i]
        for p in range(k):
            best_idx[p] = -1
            best_d[p] = np.inf
        # candidates: the query's start neighbours among the data and their data neighbours
        for s in range(start.shape[1]):
            j = start[i, s]
            if j < 0:
                continue
            if seen[j] != i:
                seen[j] = i
                _insert(best_idx, best_d, j, _sqdist2(queries, i, x, j))
            for t in range(graph.shape[1]):
                m = graph[j, t]
                if m >= 0 and seen[m] != i:
                    seen[m] = i
                    _insert(best_idx, best_d, m, _sqdist2(queries, i, x, m))


@numba.njit(cache=True, fastmath=True, parallel=True)
def refine_queries(queries, x, start, graph, k, n_chunks):
    """One round of search for the ``k`` nearest rows of ``x`` to each query, among ``start``'s and their ``graph`` neighbours."""
    n = queries.shape[0]
    out_idx = np.empty((n, k), dtype=np.int32)
    out_d = np.empty((n, k), dtype=np.float32)
    size = (n + n_chunks - 1) // n_chunks
    for c in numba.prange(n_chunks):
        lo = c * size
        hi = min(n, lo + size)
        if lo < hi:
            seen = np.full(x.shape[0], -1, dtype=np.int64)
            _query_rows(queries, x, start, graph, lo, hi, seen, out_idx, out_d)
    return out_idx, out_d


@numba.njit(cache=True, fastmath=True)
def _rerank_rows(queries, x, candidates, start_row, stop_row, self_query, out_idx, out_d):
    k = out_idx.shape[1]
    for i in range(start_row, stop_row):
        best_idx = out_idx[i]
        best_d = out_d[i]
        for p in range(k):
            best_idx[p] = -1
            best_d[p] = np.inf
        if self_query:
            best_idx[0] = i
            best_d[0] = -1.0  # the point itself always comes first
        for s in range(candidates.shape[1]):
            j = candidates[i, s]
            if j < 0 or (self_query and j == i):
                continue
            _insert(best_idx, best_d, j, _sqdist2(queries, i, x, j))
        if self_query:
            best_d[0] = 0.0


@numba.njit(cache=True, fastmath=True, parallel=True)
def rerank(queries, x, candidates, k, self_query, n_chunks):
    """The ``k`` nearest of each row's distinct ``candidates`` (rows of ``x``) by distance in ``x``'s full
    space: ``(indices, squared distances)``, sorted; with ``self_query`` the row itself first."""
    n = candidates.shape[0]
    out_idx = np.empty((n, k), dtype=np.int32)
    out_d = np.empty((n, k), dtype=np.float32)
    size = (n + n_chunks - 1) // n_chunks
    for c in numba.prange(n_chunks):
        lo = c * size
        hi = min(n, lo + size)
        if lo < hi:
            _rerank_rows(queries, x, candidates, lo, hi, self_query, out_idx, out_d)
    return out_idx, out_d


@numba.njit(cache=True, inline="always")
def _before(v, w):
    # v ranks before w: ascending, NaN after every number (numpy's sort order)
    return v < w or (w != w and v == v)


@numba.njit(cache=True, parallel=True)
def smallest(values, k):
    """Column indices ``(m, k)`` of the ``k`` smallest entries of each row, ascending (ties: lower column
    first; NaN ranks after every number, as in numpy's sort)."""
    m, n = values.shape
    out = np.empty((m, k), dtype=np.int64)
    for i in numba.prange(m):
        best = np.empty(k, dtype=values.dtype)
        idx = out[i]
        count = 0
        for j in range(n):
            v = values[i, j]
            if count < k:
                p = count
                count += 1
            elif _before(v, best[k - 1]):
                p = k - 1
            else:
                continue
            while p > 0 and _before(v, best[p - 1]):
                best[p] = best[p - 1]
                idx[p] = idx[p - 1]
                p -= 1
            best[p] = v
            idx[p] = j
    return out


@numba.njit(cache=True, parallel=True)
def distances_to(queries, data, idx):
    """Squared distances ``(m, j)`` float64 from ``queries[i]`` to ``data[idx[i, t]]``: float32
    differences, float64 sums (``inf`` where ``idx`` is negative)."""
    m, j = idx.shape
    out = np.empty((m, j), dtype=np.float64)
    for i in numba.prange(m):
        for t in range(j):
            r = idx[i, t]
            if r < 0:
                out[i, t] = np.inf
                continue
            total = 0.0
            for d in range(data.shape[1]):
                diff = np.float64(np.float32(data[r, d] - queries[i, d]))
                total += diff * diff
            out[i, t] = total
    return out


@numba.njit(cache=True, parallel=True)
def count_below(values, thresholds):
    """``out[i, t]``: how many entries of row ``i`` of ``values`` are below ``thresholds[i, t]`` (one
    pass over each row; NaN is below nothing)."""
    m, n = values.shape
    k = thresholds.shape[1]
    out = np.zeros((m, k), dtype=np.int64)
    for i in numba.prange(m):
        # the row's thresholds ascending: most entries lie above the largest (one comparison);
        # an entry below it counts once, at the smallest threshold above it, and a cumulative
        # sum gives every threshold's count
        order = np.argsort(thresholds[i])  # NaN thresholds last: nothing is below them
        th = thresholds[i][order]
        real = k
        while real > 0 and th[real - 1] != th[real - 1]:
            real -= 1
        if real == 0:
            continue
        top = th[real - 1]
        hist = np.zeros(k, dtype=np.int64)
        for j in range(n):
            v = values[i, j]
            if v < top:
                t = 0
                while not v < th[t]:
                    t += 1
                hist[t] += 1
        total = 0
        for t in range(real):
            total += hist[t]
            out[i, order[t]] = total
    return out
