"""UMAP's spectral start: the leading eigenvectors of the fuzzy graph's normalised Laplacian.

The same computation as umap-learn's ``umap.spectral.spectral_layout`` for a connected
graph (scipy's ARPACK ``eigsh`` with umap-learn's settings), then its scaling to [0, 10]
per axis, without importing umap (which costs seconds and compiles nothing we need).
A graph in several pieces is handed to umap-learn's ``spectral_layout``, which lays out
the pieces' centroids first (imported only then).
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["spectral_start"]

log = logging.getLogger("epochscope")


def _connected_layout(graph, rng: np.random.RandomState) -> np.ndarray:
    import scipy.sparse
    import scipy.sparse.linalg

    n = graph.shape[0]
    sqrt_deg = np.sqrt(np.asarray(graph.sum(axis=0)).ravel())
    d = scipy.sparse.spdiags(1.0 / sqrt_deg, 0, n, n)
    laplacian = scipy.sparse.identity(n, dtype=np.float64) - d @ graph @ d
    k = 3
    try:
        values, vectors = scipy.sparse.linalg.eigsh(
            laplacian, k, which="SM", ncv=max(2 * k + 1, int(np.sqrt(n))), tol=1e-4, v0=np.ones(n), maxiter=n * 5)
    except scipy.sparse.linalg.ArpackError:
        log.warning("spectral start failed (eigen-solver did not converge); starting from random positions")
        return rng.uniform(-10.0, 10.0, size=(n, 2))
    order = np.argsort(values)[1:k]
    return vectors[:, order]


def spectral_start(data: np.ndarray, graph, seed: int = 0) -> np.ndarray:
    """A float32 ``(n, 2)`` start for UMAP's optimiser, spanning [0, 10] on each axis.

    Parameters
    ----------
    data : ``(n, d)`` the layer's values (used only when the graph is in several pieces).
    graph : UMAP's symmetric fuzzy graph (scipy sparse).
    seed : seed of the small jitter umap-learn adds and of any random fallback.

    Example::

        start = spectral_start(x, fuzzy_graph(idx, dist))
    """
    import scipy.sparse.csgraph

    rng = np.random.RandomState(seed)
    n = graph.shape[0]
    if n <= 3:
        start = rng.uniform(-10.0, 10.0, size=(n, 2))
    else:
        pieces, _ = scipy.sparse.csgraph.connected_components(graph)
        if pieces > 1:
            from .._optional import require

            require("umap", extra="maps", purpose="the spectral start of a neighbour graph in several pieces")
            from umap.spectral import spectral_layout

            start = spectral_layout(np.asarray(data), graph, 2, rng, metric="euclidean", metric_kwds={})
        else:
            start = _connected_layout(graph.astype(np.float64), rng)
    # umap-learn's noisy_scale_coords, then its rescaling to [0, 10] per axis
    start = np.asarray(start, dtype=np.float64)
    start = (start * (10.0 / max(np.abs(start).max(), 1e-12))).astype(np.float32)
    start = start + rng.normal(scale=0.0001, size=start.shape).astype(np.float32)
    span = np.maximum(start.max(axis=0) - start.min(axis=0), 1e-12)
    return (10.0 * (start - start.min(axis=0)) / span).astype(np.float32)
