"""numba kernels of :func:`.knn.refine_knn` (compiled once per machine: ``cache=True``).

Kept apart from :mod:`.knn` so that the exact search there needs no numba at all.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["refine", "refine_queries"]


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
def _refine_rows(x, graph, rev_ptr, rev_idx, k, start, stop, seen, out_idx, out_d):
    for i in range(start, stop):
        best_idx = out_idx[i]
        best_d = out_d[i]
        for p in range(k):
            best_idx[p] = -1
            best_d[p] = np.inf
        best_idx[0] = i
        best_d[0] = -1.0  # the point itself always comes first
        seen[i] = i
        # candidates: the point's neighbours and reverse neighbours in the start graph, and theirs
        for s in range(graph.shape[1] + rev_ptr[i + 1] - rev_ptr[i]):
            if s < graph.shape[1]:
                j = graph[i, s]
            else:
                j = rev_idx[rev_ptr[i] + s - graph.shape[1]]
            if j < 0:
                continue
            if seen[j] != i:
                seen[j] = i
                _insert(best_idx, best_d, j, _sqdist(x, i, j))
            for t in range(graph.shape[1]):
                m = graph[j, t]
                if m >= 0 and seen[m] != i:
                    seen[m] = i
                    _insert(best_idx, best_d, m, _sqdist(x, i, m))
        best_d[0] = 0.0


@numba.njit(cache=True, fastmath=True, parallel=True)
def refine(x, graph, rev_ptr, rev_idx, k, n_chunks):
    """One round of neighbour-of-neighbour search from ``graph``: ``(indices, squared distances)``, sorted."""
    n = x.shape[0]
    out_idx = np.empty((n, k), dtype=np.int32)
    out_d = np.empty((n, k), dtype=np.float32)
    size = (n + n_chunks - 1) // n_chunks
    for c in numba.prange(n_chunks):
        start = c * size
        stop = min(n, start + size)
        if start < stop:
            seen = np.full(n, -1, dtype=np.int64)
            _refine_rows(x, graph, rev_ptr, rev_idx, k, start, stop, seen, out_idx, out_d)
    return out_idx, out_d


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
