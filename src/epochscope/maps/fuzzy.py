"""UMAP's fuzzy neighbour graph, computed with numpy and scipy (nothing to compile).

The same steps as umap-learn's ``fuzzy_simplicial_set`` on precomputed neighbours
(McInnes, Healy & Melville 2018, "UMAP: Uniform Manifold Approximation and Projection
for Dimension Reduction", arXiv:1802.03426, section 3 and appendix):

1. per point, ``rho`` = the distance to its nearest neighbour (``local_connectivity``-th
   non-zero distance) and ``sigma`` such that ``sum_j exp(-(d_j - rho) / sigma) = log2(k)``
   (binary search, :func:`smooth_knn_dist`);
2. membership strengths ``exp(-(d_j - rho) / sigma)`` of each directed neighbour edge;
3. the fuzzy union ``A + A.T - A * A.T``.

umap-learn runs steps 1-2 in numba kernels that are compiled in every new process and
not cached on disk; here they are vectorised over all points at once, which costs
0.02-0.05 s for 5,000 points and needs no compilation. A test checks the graph against
umap-learn's own (``tests/maps/test_fuzzy.py``). Also here: UMAP's ``a, b`` curve
parameters (:func:`ab_params`) and its edge sampling schedule (:func:`epochs_per_sample`).
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["smooth_knn_dist", "membership_strengths", "fuzzy_graph", "ab_params", "epochs_per_sample"]

#: umap-learn's constants (``umap/umap_.py``): binary-search tolerance and the smallest
#: ``sigma`` as a share of the mean neighbour distance.
SMOOTH_K_TOLERANCE = 1e-5
MIN_K_DIST_SCALE = 1e-3


def smooth_knn_dist(distances: np.ndarray, k: float, *, n_iter: int = 64, local_connectivity: float = 1.0,
                    bandwidth: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-point ``(sigma, rho)`` of UMAP's fuzzy graph, as ``umap.umap_.smooth_knn_dist`` computes them.

    ``distances`` is ``(n, k)``, each row a point's neighbour distances (the first column is
    skipped in the sum, as in umap-learn, where it holds the point itself). Returns two
    float32 arrays of length ``n``.

    >>> sigma, rho = smooth_knn_dist(np.array([[0.0, 1.0, 2.0, 3.0]]), 4)
    >>> float(rho[0]), 0.5 < float(sigma[0]) < 5
    (1.0, True)
    """
    distances = np.asarray(distances, dtype=np.float64)
    n = distances.shape[0]
    target = np.log2(k) * bandwidth
    # rho: the local_connectivity-th smallest non-zero distance, interpolated (umap-learn's rule).
    nonzero = np.sort(np.where(distances > 0, distances, np.inf), axis=1)
    count = np.count_nonzero(np.isfinite(nonzero), axis=1)
    index = int(np.floor(local_connectivity))
    interpolation = local_connectivity - index
    rho = np.zeros(n)
    enough = count >= local_connectivity
    if index > 0:
        rho[enough] = nonzero[enough, index - 1]
        if interpolation > SMOOTH_K_TOLERANCE and nonzero.shape[1] > index:
            rho[enough] += interpolation * (nonzero[enough, index] - nonzero[enough, index - 1])
    elif interpolation > 0:  # (local_connectivity 0: rho 0; 0 * inf would be NaN where every distance is 0)
        rho[enough] = interpolation * nonzero[enough, 0]
    some = ~enough & (count > 0)
    if some.any():
        rho[some] = np.max(np.where(np.isfinite(nonzero[some]), nonzero[some], -np.inf), axis=1)

    # Binary search of sigma for every row at once; a row stops where umap-learn's loop breaks.
    d = distances[:, 1:] - rho[:, None]
    positive = d > 0
    lo, hi, mid = np.zeros(n), np.full(n, np.inf), np.ones(n)
    active = np.ones(n, dtype=bool)
    for _ in range(n_iter):
        rows = np.flatnonzero(active)
        if not len(rows):
            break
        dr, mr = d[rows], mid[rows]
        psum = np.where(positive[rows], np.exp(-(np.maximum(dr, 0.0) / mr[:, None])), 1.0).sum(axis=1)
        done = np.abs(psum - target) < SMOOTH_K_TOLERANCE
        active[rows[done]] = False
        high = rows[~done & (psum > target)]
        hi[high] = mid[high]
        mid[high] = (lo[high] + hi[high]) / 2.0
        low = rows[~done & (psum <= target)]
        lo[low] = mid[low]
        unbounded = np.isinf(hi[low])
        mid[low] = np.where(unbounded, mid[low] * 2.0, (lo[low] + hi[low]) / 2.0)
    sigma = mid
    floor = MIN_K_DIST_SCALE * np.where(rho > 0, distances.mean(axis=1), distances.mean())
    sigma = np.maximum(sigma, floor)
    return sigma.astype(np.float32), rho.astype(np.float32)


def membership_strengths(indices: np.ndarray, distances: np.ndarray, sigma: np.ndarray, rho: np.ndarray, *,
                         bipartite: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The directed edges ``(rows, cols, strengths)`` of the fuzzy graph (``compute_membership_strengths``).

    A point's edge to itself gets strength 0 unless ``bipartite`` (queries are not the
    data); index -1 (a neighbour not found) gives no edge.
    """
    indices = np.asarray(indices)
    distances = np.asarray(distances, dtype=np.float64)
    n, k = indices.shape
    rows = np.repeat(np.arange(n, dtype=np.int32), k)
    cols = indices.reshape(-1).astype(np.int32)
    excess = distances - rho[:, None].astype(np.float64)
    s = sigma[:, None].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        vals = np.where((excess <= 0) | (s == 0), 1.0, np.exp(-(excess / np.where(s == 0, 1.0, s))))
    vals = vals.reshape(-1)
    if not bipartite:
        vals[cols == rows] = 0.0
    keep = cols >= 0
    return rows[keep], cols[keep], vals[keep].astype(np.float32)


def fuzzy_graph(indices: np.ndarray, distances: np.ndarray, n_neighbors: int | None = None, *,
                local_connectivity: float = 1.0):
    """UMAP's symmetric fuzzy graph (scipy CSR, float32) from each point's neighbours.

    Parameters
    ----------
    indices, distances : ``(n, k)`` neighbour indices and Euclidean distances, each
        point itself first (as :func:`.knn.exact_knn` and pynndescent return them).
    n_neighbors : the ``k`` of the target ``log2(k)`` (default: ``indices.shape[1]``).

    Example::

        idx, dist = exact_knn(x, 15)
        graph = fuzzy_graph(idx, dist)       # what umap-learn's fuzzy_simplicial_set returns
    """
    import scipy.sparse

    indices = np.asarray(indices)
    n = indices.shape[0]
    k = indices.shape[1] if n_neighbors is None else n_neighbors
    sigma, rho = smooth_knn_dist(distances, float(k), local_connectivity=local_connectivity)
    rows, cols, vals = membership_strengths(indices, distances, sigma, rho)
    directed = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(n, n)).tocsr()
    directed.eliminate_zeros()
    transpose = directed.T.tocsr()
    graph = directed + transpose - directed.multiply(transpose)
    graph = graph.tocsr().astype(np.float32)
    graph.eliminate_zeros()
    return graph


#: ``ab_params`` of the default settings, fitted once (importing scipy.optimize for the fit
#: costs 0.5-2.5 s in a fresh process); a test checks them against the fit.
_KNOWN_AB = {(1.0, 0.1): (1.57694346046584, 0.8950608779639974)}


@functools.lru_cache(maxsize=32)
def ab_params(spread: float = 1.0, min_dist: float = 0.1) -> tuple[float, float]:
    """UMAP's ``a, b``: the curve ``1 / (1 + a d^(2b))`` fitted to its ``min_dist``/``spread`` target.

    Same least-squares fit as ``umap.umap_.find_ab_params`` (scipy's ``curve_fit``); the
    default settings' values are stored.

    >>> a, b = ab_params(1.0, 0.1)
    >>> round(a, 2), round(b, 2)
    (1.58, 0.9)
    """
    known = _KNOWN_AB.get((float(spread), float(min_dist)))
    if known is not None:
        return known
    return _fit_ab(spread, min_dist)


def _fit_ab(spread: float, min_dist: float) -> tuple[float, float]:
    from scipy.optimize import curve_fit

    def curve(x, a, b):
        return 1.0 / (1.0 + a * x ** (2 * b))

    xv = np.linspace(0, spread * 3, 300)
    yv = np.zeros(xv.shape)
    yv[xv < min_dist] = 1.0
    yv[xv >= min_dist] = np.exp(-(xv[xv >= min_dist] - min_dist) / spread)
    params, _ = curve_fit(curve, xv, yv)
    return float(params[0]), float(params[1])


def epochs_per_sample(weights: np.ndarray, n_epochs: int) -> np.ndarray:
    """How many optimisation passes apart each edge is sampled (``make_epochs_per_sample``).

    The strongest edge is sampled every pass, an edge of half its strength every second
    pass; edges of strength 0 never (-1).

    >>> epochs_per_sample(np.array([1.0, 0.5, 0.0]), 10).tolist()
    [1.0, 2.0, -1.0]
    """
    weights = np.asarray(weights, dtype=np.float64)
    result = -np.ones(len(weights))
    n_samples = n_epochs * (weights / weights.max())
    result[n_samples > 0] = float(n_epochs) / n_samples[n_samples > 0]
    return result
