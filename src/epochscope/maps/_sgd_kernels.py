"""numba kernels of :mod:`.sgd` (imported only when a layout is optimised; compiled once per machine).

Kept in their own module so that importing :mod:`.sgd` does not import numba, and so that
numba's on-disk cache (``cache=True``) is keyed by this file alone: any change here is
recompiled once. Two entry points, serial and threaded, are separate functions because
numba's cache index tells functions apart by name and line, not by their ``parallel`` flag.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["optimize_serial", "optimize_parallel"]

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
def _edges(start, stop, epoch, alpha, head_emb, tail_emb, head, tail, eps, next_sample, eps_neg, next_neg,
           a, b, gamma, move_other, rate, state):
    # float32 arithmetic throughout (as umap-learn's rdist): powf is about twice as fast as pow.
    n_tail = tail_emb.shape[0]
    a32 = np.float32(a)
    b32 = np.float32(b)
    attract = np.float32(-2.0 * a * b)
    repel = np.float32(2.0 * gamma * b)
    alpha32 = np.float32(alpha)
    one = np.float32(1.0)
    scaled = rate.shape[0] > 0  # rate: per-point step scale, or empty for UMAP's own steps
    for i in range(start, stop):
        if next_sample[i] > epoch or eps[i] <= 0.0:
            continue
        j = head[i]
        k = tail[i]
        dx = head_emb[j, 0] - tail_emb[k, 0]
        dy = head_emb[j, 1] - tail_emb[k, 1]
        d2 = dx * dx + dy * dy
        if d2 > 0.0:
            pb = d2**b32  # one power: d2 ** (b - 1) == pb / d2
            coeff = attract * (pb / d2) / (a32 * pb + one)
        else:
            coeff = np.float32(0.0)
        gx = _clip(coeff * dx) * alpha32
        gy = _clip(coeff * dy) * alpha32
        if scaled:  # a separate branch keeps unscaled steps bit for bit UMAP's (no extra rounding)
            head_emb[j, 0] += gx * rate[j]
            head_emb[j, 1] += gy * rate[j]
            if move_other:
                tail_emb[k, 0] -= gx * rate[k]
                tail_emb[k, 1] -= gy * rate[k]
        else:
            head_emb[j, 0] += gx
            head_emb[j, 1] += gy
            if move_other:
                tail_emb[k, 0] -= gx
                tail_emb[k, 1] -= gy
        next_sample[i] += eps[i]
        n_neg = int((epoch - next_neg[i]) / eps_neg[i])
        for _ in range(n_neg):
            state = _next(state)
            m = (state * n_tail) >> 32  # uniform in [0, n_tail) without a division
            dx = head_emb[j, 0] - tail_emb[m, 0]
            dy = head_emb[j, 1] - tail_emb[m, 1]
            d2 = dx * dx + dy * dy
            if d2 > 0.0:
                coeff = repel / ((np.float32(0.001) + d2) * (a32 * d2**b32 + one))
                if scaled:
                    head_emb[j, 0] += _clip(coeff * dx) * alpha32 * rate[j]
                    head_emb[j, 1] += _clip(coeff * dy) * alpha32 * rate[j]
                else:
                    head_emb[j, 0] += _clip(coeff * dx) * alpha32
                    head_emb[j, 1] += _clip(coeff * dy) * alpha32
        if n_neg > 0:
            next_neg[i] += n_neg * eps_neg[i]
    return state


@numba.njit(cache=True, fastmath=True)
def _pull(i, alpha, coherence, head_emb, anchor):
    head_emb[i, 0] += alpha * coherence * (anchor[i, 0] - head_emb[i, 0])
    head_emb[i, 1] += alpha * coherence * (anchor[i, 1] - head_emb[i, 1])


@numba.njit(cache=True, fastmath=True)
def optimize_serial(head_emb, tail_emb, head, tail, eps, n_epochs, a, b, gamma, initial_alpha,
                    negative_sample_rate, move_other, anchor, coherence, rate, seed, n_chunks):
    """UMAP's SGD (+ coherence pull) on one thread; arrays are changed in place."""
    n_edges = head.shape[0]
    next_sample = eps.copy()
    eps_neg = eps / negative_sample_rate
    next_neg = eps_neg.copy()
    pull = coherence > 0.0 and anchor.shape[0] == head_emb.shape[0]
    for epoch in range(n_epochs):
        alpha = initial_alpha * (1.0 - epoch / n_epochs)
        state = _seed_state(seed, epoch, 0)
        _edges(0, n_edges, epoch, alpha, head_emb, tail_emb, head, tail, eps, next_sample, eps_neg, next_neg,
               a, b, gamma, move_other, rate, state)
        if pull:
            for i in range(head_emb.shape[0]):
                _pull(i, alpha, coherence, head_emb, anchor)


@numba.njit(cache=True, fastmath=True, parallel=True)
def optimize_parallel(head_emb, tail_emb, head, tail, eps, n_epochs, a, b, gamma, initial_alpha,
                      negative_sample_rate, move_other, anchor, coherence, rate, seed, n_chunks):
    """The same passes with contiguous blocks of edges on numba's threads (lock-free, as umap-learn's)."""
    n_edges = head.shape[0]
    next_sample = eps.copy()
    eps_neg = eps / negative_sample_rate
    next_neg = eps_neg.copy()
    pull = coherence > 0.0 and anchor.shape[0] == head_emb.shape[0]
    size = (n_edges + n_chunks - 1) // n_chunks
    for epoch in range(n_epochs):
        alpha = initial_alpha * (1.0 - epoch / n_epochs)
        for c in numba.prange(n_chunks):
            start = c * size
            stop = min(n_edges, start + size)
            if start < stop:
                _edges(start, stop, epoch, alpha, head_emb, tail_emb, head, tail, eps, next_sample, eps_neg,
                       next_neg, a, b, gamma, move_other, rate, _seed_state(seed, epoch, c))
        if pull:
            for i in numba.prange(head_emb.shape[0]):
                _pull(i, alpha, coherence, head_emb, anchor)

