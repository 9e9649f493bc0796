"""numba kernels of :mod:`.sgd` (imported only when a layout is optimised; compiled once per machine).

Kept in their own module so that importing :mod:`.sgd` does not import numba, and so that
numba's on-disk cache (``cache=True``) is keyed by this file alone: any change here is
recompiled once.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["optimize"]

_MASK32 = 0xFFFFFFFF


@numba.njit(cache=True, inline="always")
def _seed_state(seed, epoch, chunk):
    # A 32-bit xorshift state from (seed, pass, chunk), never 0.
    h = (seed * 0x9E3779B1 + epoch * 0x85EBCA77 + chunk * 0xC2B2AE3D + 0x27D4EB2F) & _MASK32
    h ^= h >> 15
    h = (h * 0x2C1B3C6D) & _MASK32
    h ^= h >> 12
    h = (h * 0x297A2D39) & _MASK32
    h ^= h >> 15
    if h == 0:
        h = 0x6A09E667
    return h


@numba.njit(cache=True, inline="always")
def _next(state):
    state ^= (state << 13) & _MASK32
    state ^= state >> 17
    state ^= (state << 5) & _MASK32
    return state


@numba.njit(cache=True, inline="always")
def _clip(value):
    if value > 4.0:
        return np.float32(4.0)
    if value < -4.0:
        return np.float32(-4.0)
    return value


@numba.njit(cache=True, fastmath=True)
def _pull(i, alpha, coherence, head_emb, anchor, weight):
    w = alpha * coherence
    if weight.shape[0] > 0:
        w *= weight[i]
    if w > 1.0:  # a step past the anchor (above 2: away from it, growing) is never the pull's minimum
        w = 1.0
    head_emb[i, 0] += w * (anchor[i, 0] - head_emb[i, 0])
    head_emb[i, 1] += w * (anchor[i, 1] - head_emb[i, 1])


@numba.njit(cache=True, fastmath=True)
def _chunk_edges(c, start, stop, epoch, alpha, emb, tail_src, delta, head, tail, eps, next_sample, eps_neg,
                 next_neg, a, b, gamma, move_other, rate, state):
    # The edges start..stop of chunk c, whose heads are rows of emb that only this chunk
    # moves: they are read and written live. Every other point is read from tail_src (the
    # pass's snapshot when the graph is laid out on itself, the fixed layout when placing
    # points) and, when both ends move, pulled through delta[c], applied after the pass. So
    # no chunk reads what another chunk writes during a pass, and the result does not depend
    # on which thread runs which chunk.
    n_tail = tail_src.shape[0]
    a32 = np.float32(a)
    b32 = np.float32(b)
    attract = np.float32(-2.0 * a * b)
    repel = np.float32(2.0 * gamma * b)
    alpha32 = np.float32(alpha)
    one = np.float32(1.0)
    scaled = rate.shape[0] > 0
    for i in range(start, stop):
        if next_sample[i] > epoch or eps[i] <= 0.0:
            continue
        j = head[i]
        k = tail[i]
        if move_other and k == j:  # a loop: no force (UMAP's d = 0), not a pull to where j was
            dx = np.float32(0.0)
            dy = np.float32(0.0)
        else:
            dx = emb[j, 0] - tail_src[k, 0]
            dy = emb[j, 1] - tail_src[k, 1]
        d2 = dx * dx + dy * dy
        if d2 > 0.0:
            pb = d2**b32
            coeff = attract * (pb / d2) / (a32 * pb + one)
        else:
            coeff = np.float32(0.0)
        gx = _clip(coeff * dx) * alpha32
        gy = _clip(coeff * dy) * alpha32
        hx = gx
        hy = gy
        if scaled:
            hx = gx * rate[j]
            hy = gy * rate[j]
        emb[j, 0] += hx
        emb[j, 1] += hy
        if move_other:
            if scaled:
                gx = gx * rate[k]
                gy = gy * rate[k]
            delta[c, k, 0] -= gx
            delta[c, k, 1] -= gy
        next_sample[i] += eps[i]
        n_neg = int((epoch - next_neg[i]) / eps_neg[i])
        hx0 = emb[j, 0]
        hy0 = emb[j, 1]
        sx = np.float32(0.0)
        sy = np.float32(0.0)
        for _ in range(n_neg):
            state = _next(state)
            m = (state * n_tail) >> 32
            if move_other and m == j:
                continue  # the point itself: no force (UMAP's d = 0)
            dx = hx0 - tail_src[m, 0]
            dy = hy0 - tail_src[m, 1]
            d2 = dx * dx + dy * dy
            if d2 > 0.0:
                coeff = repel / ((np.float32(0.001) + d2) * (a32 * d2**b32 + one))
                sx += _clip(coeff * dx)
                sy += _clip(coeff * dy)
        if scaled:
            sx = sx * rate[j]
            sy = sy * rate[j]
        emb[j, 0] += sx * alpha32
        emb[j, 1] += sy * alpha32
        if n_neg > 0:
            next_neg[i] += n_neg * eps_neg[i]
    return state


@numba.njit(cache=True, fastmath=True, parallel=True)
def optimize(emb, tail_emb, head, tail, eps, n_epochs, a, b, gamma, initial_alpha, negative_sample_rate,
             move_other, anchor, coherence, anchor_weight, rate, seed, edge_bounds):
    """UMAP's SGD (+ coherence pull) in fixed chunks of edges on numba's threads; arrays are
    changed in place. ``edge_bounds``: ``(chunks + 1,)`` edge ranges of the chunks, edges
    sorted by head so that no two chunks move the same head. The result depends on the
    chunks (each draws its own negative samples), never on the threads."""
    n = emb.shape[0]
    n_chunks = edge_bounds.shape[0] - 1
    next_sample = eps.copy()
    eps_neg = eps / negative_sample_rate
    next_neg = eps_neg.copy()
    pull = coherence > 0.0 and anchor.shape[0] == n
    shared = move_other  # the graph laid out on itself: others read from the snapshot, pulled via delta
    snap = emb.copy() if shared else np.empty((0, 2), dtype=np.float32)
    delta = np.zeros((n_chunks if shared else 0, n if shared else 0, 2), dtype=np.float32)
    tail_src = snap if shared else tail_emb
    for epoch in range(n_epochs):
        alpha = initial_alpha * (1.0 - epoch / n_epochs)
        for c in numba.prange(n_chunks):
            _chunk_edges(c, edge_bounds[c], edge_bounds[c + 1], epoch, alpha, emb, tail_src, delta, head, tail, eps,
                         next_sample, eps_neg, next_neg, a, b, gamma, move_other, rate, _seed_state(seed, epoch, c))
        if shared or pull:
            for i in numba.prange(n):
                if shared:
                    for c in range(n_chunks):
                        emb[i, 0] += delta[c, i, 0]
                        emb[i, 1] += delta[c, i, 1]
                        delta[c, i, 0] = 0.0
                        delta[c, i, 1] = 0.0
                if pull:
                    _pull(i, alpha, coherence, emb, anchor, anchor_weight)
                if shared:
                    snap[i, 0] = emb[i, 0]
                    snap[i, 1] = emb[i, 1]
