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


#: Chunks one thread interleaves: their edges are independent (no chunk reads what another
#: writes during a pass), so a step of each of LANES chunks is in flight at once instead of one
#: edge waiting on its last push's power function (measured: most of a pass is that wait).
LANES = 4


@numba.njit(cache=True, fastmath=True)
def _task_edges(t, lo, hi, epoch, alpha, emb, tail_src, delta, head, tail, eps, next_sample,
                eps_neg, next_neg, a, b, gamma, move_other, rate, states):
    # Edges lo[c]:hi[c] of the chunks c = t*LANES .. t*LANES + LANES - 1, one of each at a time. A
    # chunk's heads are rows of emb that only this chunk moves: read and written live (carried
    # in hx, hy through an edge's negative samples). Every other point is read from tail_src
    # (the snapshot taken before this part when the graph is laid out on itself, the fixed
    # layout when placing points) and, when both ends move, pulled through delta[t], applied
    # after the part. So the result is that of the chunks run one after the other, whichever
    # thread runs which. states: each chunk's random state, carried from part to part.
    n_tail = tail_src.shape[0]
    a32 = np.float32(a)
    b32 = np.float32(b)
    attract = np.float32(-2.0 * a * b)
    repel = np.float32(2.0 * gamma * b)
    alpha32 = np.float32(alpha)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    scaled = rate.shape[0] > 0
    pos = np.empty(LANES, dtype=np.int64)
    stop = np.empty(LANES, dtype=np.int64)
    state = np.empty(LANES, dtype=np.int64)
    heads = np.zeros(LANES, dtype=np.int64)
    n_neg = np.empty(LANES, dtype=np.int64)
    hx = np.zeros(LANES, dtype=np.float32)
    hy = np.zeros(LANES, dtype=np.float32)
    for lane in range(LANES):
        c = t * LANES + lane
        pos[lane] = lo[c]
        stop[lane] = hi[c]
        state[lane] = states[c]
    while True:
        busy = False
        most = 0
        for lane in range(LANES):
            n_neg[lane] = -1
            i = pos[lane]
            while i < stop[lane] and (next_sample[i] > epoch or eps[i] <= 0.0):
                i += 1
            pos[lane] = i + 1
            if i >= stop[lane]:
                continue
            busy = True
            j = head[i]
            k = tail[i]
            heads[lane] = j
            x = emb[j, 0]
            y = emb[j, 1]
            if move_other and k == j:  # a loop: no force (UMAP's d = 0), not a pull to where j was
                dx = zero
                dy = zero
            else:
                dx = x - tail_src[k, 0]
                dy = y - tail_src[k, 1]
            d2 = dx * dx + dy * dy
            if d2 > 0.0:
                pb = d2**b32  # one power: d2 ** (b - 1) == pb / d2
                coeff = attract * (pb / d2) / (a32 * pb + one)
            else:
                coeff = zero
            gx = _clip(coeff * dx) * alpha32
            gy = _clip(coeff * dy) * alpha32
            if scaled:  # a separate branch keeps unscaled steps free of an extra rounding
                x += gx * rate[j]
                y += gy * rate[j]
            else:
                x += gx
                y += gy
            if move_other:
                if scaled:
                    gx = gx * rate[k]
                    gy = gy * rate[k]
                delta[t, k, 0] -= gx
                delta[t, k, 1] -= gy
            hx[lane] = x
            hy[lane] = y
            next_sample[i] += eps[i]
            n = 0  # eps_neg 0: no negative samples (negative_sample_rate 0, attraction only)
            if eps_neg[i] > 0.0:
                n = int((epoch - next_neg[i]) / eps_neg[i])
            if n > 0:
                next_neg[i] += n * eps_neg[i]
            else:
                n = 0  # never negative: n_neg[lane] >= 0 marks the lane's head for write-back
            n_neg[lane] = n
            most = max(most, n)
        if not busy:
            break
        for s in range(most):
            for lane in range(LANES):
                if s >= n_neg[lane]:
                    continue
                st = _next(state[lane])
                state[lane] = st
                m = (st * n_tail) >> 32  # uniform in [0, n_tail) without a division
                if move_other and m == heads[lane]:
                    continue  # the point itself: no force (UMAP's d = 0)
                dx = hx[lane] - tail_src[m, 0]
                dy = hy[lane] - tail_src[m, 1]
                d2 = dx * dx + dy * dy
                if d2 > 0.0:
                    coeff = repel / ((np.float32(0.001) + d2) * (a32 * d2**b32 + one))
                    gx = _clip(coeff * dx) * alpha32
                    gy = _clip(coeff * dy) * alpha32
                    if scaled:
                        gx = gx * rate[heads[lane]]
                        gy = gy * rate[heads[lane]]
                    hx[lane] += gx
                    hy[lane] += gy
        for lane in range(LANES):
            if n_neg[lane] >= 0:
                emb[heads[lane], 0] = hx[lane]
                emb[heads[lane], 1] = hy[lane]
    for lane in range(LANES):
        states[t * LANES + lane] = state[lane]


@numba.njit(cache=True, fastmath=True, parallel=True)
def optimize(emb, tail_emb, head, tail, eps, n_epochs, a, b, gamma, initial_alpha, negative_sample_rate,
             move_other, anchor, coherence, anchor_weight, rate, seed, edge_bounds, parts):
    """UMAP's SGD (+ coherence pull) in fixed chunks of edges on numba's threads; arrays are
    changed in place. ``edge_bounds``: ``(chunks + 1,)`` edge ranges of the chunks (a multiple
    of LANES), edges sorted by head so that no two chunks move the same head; ``parts``: each
    pass in that many parts, the deferred pulls applied and the snapshot renewed after each.
    The result depends on the chunks (each draws its own negative samples) and the parts,
    never on the threads."""
    n = emb.shape[0]
    n_tasks = (edge_bounds.shape[0] - 1) // LANES  # the chunks, LANES to a task
    next_sample = eps.copy()
    # negative_sample_rate 0: eps_neg 0 marks "no negative samples" (eps / 0 made the count int(nan))
    eps_neg = eps / negative_sample_rate if negative_sample_rate > 0.0 else np.zeros_like(eps)
    next_neg = eps_neg.copy()
    pull = coherence > 0.0 and anchor.shape[0] == n
    # laid out on itself (move_other): other points read from the snapshot, pulled via delta
    snap = emb.copy() if move_other else np.empty((0, 2), dtype=np.float32)
    delta = np.zeros((n_tasks if move_other else 0, n if move_other else 0, 2), dtype=np.float32)
    tail_src = snap if move_other else tail_emb
    n_chunks = n_tasks * LANES
    if not move_other:
        parts = 1  # nothing deferred: the passes need no parts
    # each part's share of each chunk's edges, the same in every pass
    lo = np.empty((parts, n_chunks), dtype=np.int64)
    hi = np.empty((parts, n_chunks), dtype=np.int64)
    for part in range(parts):
        for c in range(n_chunks):
            size = edge_bounds[c + 1] - edge_bounds[c]
            lo[part, c] = edge_bounds[c] + size * part // parts
            hi[part, c] = edge_bounds[c] + size * (part + 1) // parts
    states = np.empty(n_chunks, dtype=np.int64)
    for epoch in range(n_epochs):
        alpha = initial_alpha * (1.0 - epoch / n_epochs)
        for c in range(n_chunks):
            states[c] = _seed_state(seed, epoch, c)
        for part in range(parts):
            for t in numba.prange(n_tasks):
                _task_edges(t, lo[part], hi[part], epoch, alpha, emb, tail_src, delta, head, tail, eps,
                            next_sample, eps_neg, next_neg, a, b, gamma, move_other, rate, states)
            last = part == parts - 1
            if move_other or (pull and last):
                for i in numba.prange(n):
                    if move_other:
                        for t in range(n_tasks):
                            emb[i, 0] += delta[t, i, 0]
                            emb[i, 1] += delta[t, i, 1]
                            delta[t, i, 0] = 0.0
                            delta[t, i, 1] = 0.0
                    if pull and last:
                        _pull(i, alpha, coherence, emb, anchor, anchor_weight)
                    if move_other:
                        snap[i, 0] = emb[i, 0]
                        snap[i, 1] = emb[i, 1]
