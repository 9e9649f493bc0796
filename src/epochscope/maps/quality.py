"""Quality figures of a sequence of maps: how faithful each frame is and how much it moves.

All figures are computed on a fixed subsample of the probe set (at most 2,000 examples,
the same for every epoch), so they stay cheap and comparable across epochs and methods.
"""

from __future__ import annotations

import numpy as np

__all__ = ["quality_subsample", "map_neighbours", "trustworthiness", "motion", "knn_accuracy", "linear_cka", "separation",
           "pairwise_distances", "map_distances", "frame_quality", "CkaTerm"]


def quality_subsample(n: int, size: int = 2000, seed: int = 0) -> np.ndarray:
    """Sorted indices of a fixed random subsample of ``min(n, size)`` examples.

    >>> quality_subsample(3).tolist(), quality_subsample(5, size=3).tolist()
    ([0, 1, 2], [2, 3, 4])
    """
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def _k_for(n: int, k: int) -> int:
    # scikit-learn's trustworthiness needs k < n / 2.
    return max(1, min(k, (n - 1) // 2))


def pairwise_distances(points: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(n, n)`` float32 between the rows of ``points`` (one matrix product).

    Shared by the quality figures of one frame, which all rank or average the same
    distances in the layer (:func:`frame_quality`).

    >>> pairwise_distances(np.array([[0.0, 0.0], [3.0, 4.0]])).tolist()
    [[0.0, 25.0], [25.0, 0.0]]
    """
    points = np.asarray(points)
    if points.dtype != np.float64:
        points = points.astype(np.float32)
    sq = np.einsum("ij,ij->i", points, points)
    dist = points @ points.T
    dist *= -2.0
    dist += sq[:, None]
    dist += sq[None, :]
    np.maximum(dist, 0.0, out=dist)
    np.fill_diagonal(dist, 0.0)
    return dist


def map_neighbours(frame: np.ndarray, k: int) -> np.ndarray:
    """Indices ``(n, k)`` of each point's ``k`` nearest other points in a 2-D frame (scipy's k-d tree).

    >>> map_neighbours(np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]]), 1).ravel().tolist()
    [1, 0, 1]
    """
    from scipy.spatial import cKDTree

    frame = np.asarray(frame, dtype=np.float64)
    k = min(k, len(frame) - 1)
    _, idx = cKDTree(frame).query(frame, k=k + 1)
    idx = np.asarray(idx).reshape(len(frame), k + 1)
    # drop the point itself (usually first; a duplicate of it may come first), else the farthest
    is_self = idx == np.arange(len(frame))[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.ones(idx.shape, dtype=bool)
    keep[np.arange(len(frame)), drop] = False
    return idx[keep].reshape(len(frame), k)


def trustworthiness(high: np.ndarray, low: np.ndarray, k: int = 10, *, squared_distances: np.ndarray | None = None,
                    neighbours: np.ndarray | None = None) -> float:
    """Trustworthiness of ``low`` (2-D) as a map of ``high`` with ``k`` neighbours (as scikit-learn's).

    1.0 means every point's neighbours in the map are also its neighbours in the layer.
    Computed as :func:`sklearn.manifold.trustworthiness` defines it, but ranking only the
    ``k`` map neighbours of each point instead of sorting every row of the distance matrix.
    Why not scikit-learn's function: measured on the 2,000-point quality subsample of a
    5,000 x 512 layer (2 busy cores), it takes 0.61-0.85 s a frame (the full ``argsort``
    of a 2,000 x 2,000 matrix) against 0.26-0.32 s here, less again when a frame's other
    figures share the layer's distances (``squared_distances``, from
    :func:`pairwise_distances`) and the map's neighbours (``neighbours``, from
    :func:`map_neighbours`). A test checks both give the same value.

    >>> x = np.random.default_rng(0).normal(size=(100, 5))
    >>> trustworthiness(x, x[:, :2]) > 0.7
    True
    """
    from .knn import count_below

    n = len(high) if squared_distances is None else len(squared_distances)
    if n < 4:
        return float("nan")
    k = _k_for(n, k)
    dist = pairwise_distances(high) if squared_distances is None else np.asarray(squared_distances)
    map_nn = map_neighbours(low, k) if neighbours is None else np.asarray(neighbours)[:, :k]
    to_nn = np.take_along_axis(dist, map_nn, axis=1)
    # rank of each map neighbour among the layer's neighbours of the point (1 = nearest); each
    # point ranks itself first, as in scikit-learn: its own entry is taken out of the count and
    # counted as below, which spares copying the matrix to mark its diagonal
    own = np.diagonal(dist)[:, None]
    ranks = count_below(dist, to_nn) + 1 - (own < to_nn)
    penalty = np.maximum(ranks - k, 0).sum()
    return float(1.0 - penalty * (2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))))


def _normalise(frame: np.ndarray) -> np.ndarray:
    centred = np.asarray(frame, dtype=np.float64) - np.mean(frame, axis=0)
    rms = np.sqrt(np.mean(np.sum(centred**2, axis=1)))
    return centred / rms if rms > 0 else centred


def motion(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean displacement between two frames after the best rotation/mirror, in units of the RMS radius.

    Both frames are centred and scaled to unit RMS radius first, so the figure compares
    across methods whatever their scale; 0 means the frames are the same picture.

    >>> a = np.random.default_rng(0).normal(size=(50, 2))
    >>> round(motion(a, -3 * a), 6)
    0.0
    """
    from scipy.linalg import orthogonal_procrustes

    a, b = _normalise(previous), _normalise(current)
    rotation, _ = orthogonal_procrustes(b, a)
    return float(np.mean(np.linalg.norm(b @ rotation - a, axis=1)))


def knn_accuracy(points: np.ndarray, labels: np.ndarray, k: int = 10, *,
                 squared_distances: np.ndarray | None = None, neighbours: np.ndarray | None = None) -> float:
    """Leave-one-out k-nearest-neighbour class accuracy (majority vote) among ``points``.

    ``squared_distances`` (from :func:`pairwise_distances`) or ``neighbours`` (each point's
    nearest others, e.g. from :func:`map_neighbours`) spare computing them again.

    >>> knn_accuracy(np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]]), np.array([0, 0, 0, 1, 1, 1]), k=2)
    1.0
    """
    from .knn import exact_knn, smallest_k

    labels = np.asarray(labels)
    n = len(labels)
    if n < 2:
        return float("nan")
    k = max(1, min(k, n - 1))
    if neighbours is not None:
        neighbours = labels[np.asarray(neighbours)[:, :k]]
    elif squared_distances is None:
        idx, _ = exact_knn(np.asarray(points, dtype=np.float32), k + 1)
        neighbours = labels[idx[:, 1:]]  # column 0 is the point itself
    else:
        dist = np.array(squared_distances, copy=True)
        np.fill_diagonal(dist, np.inf)
        neighbours = labels[smallest_k(dist, k)]
    n_classes = int(labels.max()) + 1
    votes = np.zeros((n, n_classes), dtype=np.int64)
    for j in range(k):
        np.add.at(votes, (np.arange(n), neighbours[:, j]), 1)
    return float(np.mean(votes.argmax(axis=1) == labels))


def _silhouette(dist: np.ndarray, labels: np.ndarray) -> float:
    # scikit-learn's silhouette_score from a full distance matrix: a = mean distance to the
    # point's own class (itself left out), b = the smallest mean distance to another class,
    # s = (b - a) / max(a, b), 0 for a point alone in its class; the mean over points.
    classes, index = np.unique(labels, return_inverse=True)
    counts = np.bincount(index).astype(np.float64)
    onehot = np.zeros((len(labels), len(classes)), dtype=dist.dtype)
    onehot[np.arange(len(labels)), index] = 1.0
    sums = (dist @ onehot).astype(np.float64)  # per point, summed distance to each class
    rows = np.arange(len(labels))
    own = counts[index] - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        a = sums[rows, index] / own
        means = sums / counts[None, :]
        means[rows, index] = np.inf
        b = means.min(axis=1)
        s = (b - a) / np.maximum(a, b)
    s[(own == 0) | ~np.isfinite(s)] = 0.0
    return float(s.mean())


def separation(points: np.ndarray | None, labels: np.ndarray, *, squared_distances: np.ndarray | None = None,
               distances: np.ndarray | None = None) -> float:
    """How well the classes separate: the silhouette score of ``points`` grouped by class.

    From -1 to 1: near 0 when the classes are mixed, towards 1 when each class is a tight
    cluster far from the others. Computed on the map's 2-D points (``separation`` in
    ``Maps.quality``) and on the layer's own values (``separation_layer``), so a map's story
    can be checked against the layer's. Given ``squared_distances`` (from
    :func:`pairwise_distances`), the Euclidean distances are taken from them; given
    ``distances`` (Euclidean, e.g. from :func:`map_distances`), those are used. NaN with fewer
    than two classes (or a class per point).

    The value is scikit-learn's ``silhouette_score`` (a test checks they agree to 1e-6),
    computed here from the distance matrix the other figures share. Why not call it:
    importing ``sklearn.metrics`` costs 3.3-4.4 s in every fresh process on the 2 shared
    cores we measured on (pandas and scipy.stats come with it), more than all of a run's
    quality figures, and nothing else on the default path needs scikit-learn.

    >>> labels = np.array([0, 0, 1, 1])
    >>> round(separation(np.array([[0.0], [0.1], [5.0], [5.1]]), labels), 2)
    0.98
    """
    labels = np.asarray(labels)
    n_classes = len(np.unique(labels))
    if not 2 <= n_classes <= len(labels) - 1:
        return float("nan")
    if distances is not None:
        return _silhouette(np.asarray(distances), labels)
    if squared_distances is None:
        squared_distances = pairwise_distances(np.asarray(points, dtype=np.float64).reshape(len(labels), -1))
    dist = np.sqrt(np.maximum(squared_distances, 0.0))
    np.fill_diagonal(dist, 0.0)
    return _silhouette(dist, labels)


def map_distances(frame: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(n, n)`` float32 between the points of a 2-D frame.

    From the coordinates' differences (scipy's ``cdist``), not from the expansion that
    :func:`pairwise_distances` uses for wide layers, whose cancellation loses the digits of
    near points in 2-D; 3x faster than that expansion in float64 (20 against 61 ms with the
    silhouette, 2,000 points, measured).

    >>> map_distances(np.array([[0.0, 0.0], [3.0, 4.0]])).tolist()
    [[0.0, 5.0], [5.0, 0.0]]
    """
    from scipy.spatial.distance import cdist

    frame = np.asarray(frame, dtype=np.float64)
    return cdist(frame, frame).astype(np.float32)


def frame_quality(layer: np.ndarray | None, frame: np.ndarray, labels: np.ndarray, k: int = 10, *,
                  squared_distances: np.ndarray | None = None) -> dict[str, float]:
    """The quality figures of one frame that need no other frame, from the layer's and the map's points.

    Returns ``trustworthiness``, ``knn_accuracy_map``, ``knn_accuracy_layer``, ``separation``
    and ``separation_layer`` (see :func:`trustworthiness`, :func:`knn_accuracy`,
    :func:`separation`). The layer's pairwise distances are computed once and shared (pass
    them as ``squared_distances``, from :func:`pairwise_distances`, to share them further, e.g.
    with :meth:`CkaTerm.from_squared_distances`). Pass the same fixed subsample every frame
    (:func:`quality_subsample`).
    """
    dist = pairwise_distances(layer) if squared_distances is None else squared_distances
    frame = np.asarray(frame, dtype=np.float64)
    # the map's nearest other points from a 2-D k-d tree: 2-4 ms where ranking the 2,000 x 2,000
    # distance matrix (argpartition) took 40-50 ms a frame (measured, AMD EPYC)
    near = map_neighbours(frame, min(k, len(frame) - 1)) if len(frame) >= 4 else None
    return {
        "trustworthiness": trustworthiness(None, frame, k=k, squared_distances=dist, neighbours=near),
        "knn_accuracy_map": knn_accuracy(frame, labels, k=k, neighbours=near),
        "knn_accuracy_layer": knn_accuracy(None, labels, k=k, squared_distances=dist),
        "separation": separation(None, labels, distances=map_distances(frame)),
        "separation_layer": separation(None, labels, squared_distances=dist),
    }


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear centred kernel alignment between two representations of the same examples.

    1.0 when ``y`` is a rotation and scaling of ``x``; near 0 for unrelated ones
    (Kornblith et al. 2019, eq. 5: ``||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F)`` with centred
    ``X`` and ``Y``), computed from the features, in float64. NaN if either is constant.
    The maps' quality figures compute the same value from distances (:class:`CkaTerm`);
    a test checks the two agree.

    >>> x = np.random.default_rng(0).normal(size=(100, 5))
    >>> round(linear_cka(x, 2 * x), 6)
    1.0
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    denom = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    if denom <= 0:
        return float("nan")
    return float(np.linalg.norm(y.T @ x) ** 2 / denom)


class CkaTerm:
    """One representation prepared for linear CKA, from its examples' squared distances.

    The centred Gram matrix is minus half the double-centred squared distances (classical
    scaling: Torgerson 1952, Gower 1966), so a frame's CKA to the previous one reuses the
    distance matrix its other quality figures share (:func:`pairwise_distances`) instead of
    three products of the features: on the 2,000-point quality subsample of a 512-wide
    layer, about 12 ms a frame against about 100 ms (measured, 2 busy cores). Agrees with
    :func:`linear_cka` within 1e-8 on the benchmark runs' layers (a test checks 1e-6).

    >>> x = np.random.default_rng(0).normal(size=(50, 4))
    >>> a = CkaTerm.from_squared_distances(pairwise_distances(x))
    >>> b = CkaTerm.from_squared_distances(pairwise_distances(3 * x))
    >>> round(a.cka(b), 4)
    1.0
    """

    def __init__(self, centred_gram: np.ndarray) -> None:
        self.gram = centred_gram
        self.norm = float(np.sqrt(_sum_of_products(centred_gram, centred_gram)))

    @classmethod
    def from_squared_distances(cls, squared_distances: np.ndarray) -> CkaTerm:
        """The term of the examples whose squared Euclidean distances are ``squared_distances`` ``(n, n)``."""
        d = np.asarray(squared_distances, dtype=np.float32)
        means = d.mean(axis=1, dtype=np.float64)
        gram = d - means.astype(np.float32)[:, None]
        gram -= means.astype(np.float32)[None, :]
        gram += np.float32(means.mean())
        gram *= np.float32(-0.5)
        return cls(gram)

    def cka(self, other: CkaTerm) -> float:
        """Linear CKA between this representation and ``other`` (same examples, same order); NaN if either is constant."""
        denom = self.norm * other.norm
        if denom <= 0:
            return float("nan")
        return _sum_of_products(self.gram, other.gram) / denom


def _sum_of_products(a: np.ndarray, b: np.ndarray) -> float:
    # float32 products summed a row at a time, the rows' sums added in float64: within 1e-8 of
    # float64 throughout on the runs' layers, where one float32 dot product of 4 million terms
    # drifted by 1e-5 (measured)
    return float(np.einsum("ij,ij->i", a, b).astype(np.float64).sum())
