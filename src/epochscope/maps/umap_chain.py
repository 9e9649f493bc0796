"""The default map method: a warm-started UMAP chain over the epochs.

Each epoch's map starts from its neighbour's finished map instead of from scratch:

1. exact k nearest neighbours of the probe set in the layer (blocked matrix products;
   for a few thousand examples faster than building an approximate index),
2. UMAP's fuzzy graph from those neighbours (``umap.umap_.fuzzy_simplicial_set``),
3. UMAP's layout optimiser (``optimize_layout_euclidean``) started from the
   neighbouring epoch's layout for a few passes at a reduced learning rate, so the map
   moves only as much as the layer changed: ``warm_epochs`` passes when 40 % of the
   neighbours changed, proportionally fewer (at least ``min_warm_epochs``) when fewer did;
4. test points placed as ``UMAP.transform`` places them (see :mod:`.knn`);
5. (in :func:`epochscope.embed`) orthogonal Procrustes onto the neighbouring frame.

Only the anchor frame gets a full, spectrally initialised fit, and any warm frame whose map
separates the classes clearly better than its layer does (it inherited clusters from its
neighbour's map that the layer does not have). By default the chain runs
backwards from the last epoch: the trained model's map is the cleanest, so its cluster
placement is the one every earlier frame inherits, and played forward the classes pull
apart into the places where they end up (see docs/maps.md for the measurements).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._optional import require
from .._progress import progress as progress_bar
from .base import MethodSettings, SequenceResult, Stopwatch
from .knn import exact_knn, place_points

__all__ = ["UmapChainSettings", "umap_layout"]


#: Above this many probe examples the exact search gives way to NN-descent (umap-learn
#: switches at the same size). Measured on 5,000 x 512: exact 0.5-1.2 s per epoch,
#: NN-descent 0.4 s cold and 0.11 s warm-started from the previous epoch's graph (recall 0.998).
EXACT_KNN_LIMIT = 4096

#: Fraction of changed neighbours at which a warm frame gets all ``warm_epochs`` passes; a
#: frame whose graph changed less gets proportionally fewer (at least ``min_warm_epochs``).
#: Measured on the benchmark run: 13-18 % of the neighbours change between late epochs,
#: 48 % between epochs 0 and 1.
FULL_CHANGE = 0.4

#: A warm frame whose map separates the classes better than the layer itself does (k-NN
#: class accuracy in the map above the layer's by more than this) has inherited structure
#: from its neighbour's map that the layer does not have: it is fitted again from scratch.
#: Labels only detect the failure; the refit itself never sees them.
MAX_INVENTED_SEPARATION = 0.15

#: A warm-started NN-descent must find at least this share of the exact neighbours of a
#: sample of points, or the search is redone cold: started from another epoch's graph it
#: can stay in that graph's neighbourhoods when the layer changed a lot.
MIN_WARM_RECALL = 0.9
RECALL_SAMPLE = 256


def changed_fraction(indices: np.ndarray, previous: np.ndarray) -> float:
    """Mean fraction of each point's neighbours (itself excluded) that are not among its previous ones.

    >>> changed_fraction(np.array([[0, 1, 2], [1, 0, 2]]), np.array([[0, 1, 3], [1, 0, 2]]))
    0.25
    """
    new, old = np.asarray(indices)[:, 1:], np.asarray(previous)[:, 1:]
    both = np.sort(np.concatenate([new, old], axis=1), axis=1)
    shared = np.count_nonzero(both[:, 1:] == both[:, :-1], axis=1)
    return float(1.0 - np.mean(shared) / max(new.shape[1], 1))


def warm_passes(changed: float, warm_epochs: int, min_warm_epochs: int) -> int:
    """Optimisation passes for a warm frame whose neighbour graph changed by ``changed`` (0..1).

    >>> warm_passes(0.4, 20, 5), warm_passes(0.15, 20, 5), warm_passes(0.0, 20, 5)
    (20, 8, 5)
    """
    return int(min(warm_epochs, max(min_warm_epochs, round(warm_epochs * changed / FULL_CHANGE))))


def nearest_neighbours(x: np.ndarray, n_neighbors: int, *, method: str = "auto",
                       previous: np.ndarray | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_neighbors`` nearest probe examples of each probe example in the layer.

    ``method="exact"``: blocked matrix products (:func:`.knn.exact_knn`), free of numba
    compilation; ``"nndescent"``: pynndescent, warm-started from ``previous`` (the
    neighbouring epoch's neighbour indices) when given, which makes it several times faster
    than a cold search; ``"auto"``: exact up to :data:`EXACT_KNN_LIMIT` examples.
    """
    if method == "exact" or (method == "auto" and len(x) <= EXACT_KNN_LIMIT):
        return exact_knn(x, n_neighbors)
    from pynndescent import NNDescent

    def search(init_graph: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        index = NNDescent(x, n_neighbors=n_neighbors, init_graph=init_graph, random_state=seed, n_jobs=-1,
                          compressed=True, low_memory=True)
        indices, dists = index.neighbor_graph
        return indices.astype(np.int32), dists.astype(np.float32)

    indices, dists = search(previous)
    if previous is not None and sampled_recall(x, indices, seed=seed) < MIN_WARM_RECALL:
        indices, dists = search(None)
    return indices, dists


def invented_separation(layout: np.ndarray, knn: np.ndarray, labels: np.ndarray) -> float:
    """How much better the map's neighbours share a class than the layer's neighbours do.

    Both are k-NN class agreement (``knn`` holds each point's layer neighbours, itself first);
    a clearly positive value means the map shows class structure the layer does not have.
    """
    from sklearn.neighbors import NearestNeighbors

    labels = np.asarray(labels)
    k = knn.shape[1]
    in_layer = float(np.mean(labels[knn[:, 1:]] == labels[:, None]))
    map_knn = NearestNeighbors(n_neighbors=k).fit(layout).kneighbors(layout, return_distance=False)
    in_map = float(np.mean(labels[map_knn[:, 1:]] == labels[:, None]))
    return in_map - in_layer


def sampled_recall(x: np.ndarray, indices: np.ndarray, *, sample: int = RECALL_SAMPLE, seed: int = 0) -> float:
    """Share of the exact ``k`` nearest neighbours that ``indices`` holds, on a random sample of rows.

    >>> x = np.arange(10.0)[:, None]
    >>> sampled_recall(x, exact_knn(x, 3)[0])
    1.0
    """
    rows = np.random.default_rng(seed).choice(len(x), size=min(sample, len(x)), replace=False)
    exact, _ = exact_knn(x, indices.shape[1], queries=x[rows])
    found = [len(np.intersect1d(exact[i], indices[r], assume_unique=True)) for i, r in enumerate(rows)]
    return float(np.sum(found) / exact.size)


def _graph(x: np.ndarray, n_neighbors: int, seed: int, *, knn: str = "auto", previous: np.ndarray | None = None):
    from umap.umap_ import fuzzy_simplicial_set

    indices, dists = nearest_neighbours(x, n_neighbors, method=knn, previous=previous, seed=seed)
    graph, _, _ = fuzzy_simplicial_set(x, n_neighbors, np.random.RandomState(seed), "euclidean",
                                       knn_indices=indices, knn_dists=dists)
    return graph, indices


def umap_layout(graph, init: np.ndarray, *, n_epochs: int, learning_rate: float = 1.0, min_dist: float = 0.1,
                spread: float = 1.0, seed: int = 0, parallel: bool = True) -> np.ndarray:
    """Optimise a 2-D layout of UMAP's fuzzy ``graph`` for ``n_epochs`` passes, starting from ``init``.

    The same steps as ``umap.umap_.simplicial_set_embedding`` after its initialisation,
    except that ``init`` is used as it is: umap-learn would rescale it to [0, 10] per axis,
    which distorts the aspect ratio of a finished map at every epoch.

    Example::

        layout = umap_layout(graph, previous_layout, n_epochs=40, learning_rate=0.5)
    """
    from umap.layouts import optimize_layout_euclidean
    from umap.umap_ import find_ab_params, make_epochs_per_sample

    graph = graph.tocoo()
    graph.sum_duplicates()
    # Edges too weak to be sampled even once in n_epochs only add noise (as in umap-learn).
    graph.data[graph.data < graph.data.max() / float(max(n_epochs, 10))] = 0.0
    graph.eliminate_zeros()
    a, b = find_ab_params(spread, min_dist)
    rng_state = np.random.default_rng(seed).integers(-(2**31) + 1, 2**31 - 1, 3).astype(np.int64)
    layout = np.array(init, dtype=np.float32, order="C", copy=True)
    return optimize_layout_euclidean(
        layout, layout, graph.row, graph.col, n_epochs, graph.shape[1], make_epochs_per_sample(graph.data, n_epochs),
        a, b, rng_state, gamma=1.0, initial_alpha=learning_rate, negative_sample_rate=5.0, parallel=parallel,
        move_other=True,
    )


def _spectral_start(x: np.ndarray, graph, seed: int) -> np.ndarray:
    from umap.spectral import spectral_layout
    from umap.umap_ import noisy_scale_coords

    rs = np.random.RandomState(seed)
    try:
        start = spectral_layout(x, graph, 2, rs, metric="euclidean", metric_kwds={})
    except Exception:  # noqa: BLE001 - a disconnected or degenerate graph: fall back like umap-learn does
        start = rs.uniform(-10, 10, size=(graph.shape[0], 2))
    start = noisy_scale_coords(np.asarray(start, dtype=np.float32), rs, max_coord=10, noise=0.0001)
    return 10.0 * (start - start.min(axis=0)) / np.maximum(start.max(axis=0) - start.min(axis=0), 1e-12)


@dataclass(frozen=True)
class UmapChainSettings(MethodSettings):
    """Settings of ``method="umap"``, the warm-started chain.

    Parameters
    ----------
    n_neighbors : neighbours per point in the layer (UMAP's ``n_neighbors``).
    min_dist : UMAP's ``min_dist``.
    first_epochs : optimisation passes of the anchor frame (a full fit).
    warm_epochs : passes of a frame started from its neighbour's map whose neighbour graph
        changed a lot (40 % of the neighbours or more); frames that changed less get
        proportionally fewer passes, at least ``min_warm_epochs`` (set it equal to
        ``warm_epochs`` for a fixed count).
    min_warm_epochs : the fewest passes of a warm frame.
    warm_learning_rate : initial learning rate of the warm passes (UMAP's default is 1.0);
        lower keeps frames steadier.
    direction : ``"backward"`` (anchor = last epoch; default) or ``"forward"`` (anchor = first).
    test_epochs : passes when placing test points (UMAP's transform uses 100; 0 keeps
        the weighted mean of the neighbours' positions).
    knn : ``"auto"`` (exact neighbours up to 4,096 examples, else NN-descent warm-started
        from the neighbouring epoch's graph), ``"exact"`` or ``"nndescent"``.
    seed : random seed of the spectral start and the sampling.
    parallel : numba-parallel layout (faster on several cores; the maps then vary
        slightly from call to call, like umap-learn without ``random_state``).

    Example::

        maps = epochscope.embed(run, "hidden", method="umap", warm_epochs=60, direction="forward")
    """

    name: ClassVar[str] = "umap"
    n_neighbors: int = 15
    min_dist: float = 0.1
    first_epochs: int = 100
    warm_epochs: int = 20
    min_warm_epochs: int = 5
    warm_learning_rate: float = 0.5
    direction: str = "backward"
    test_epochs: int = 10
    knn: str = "auto"
    seed: int = 0
    parallel: bool = True

    def __post_init__(self) -> None:
        for name in ("n_neighbors", "first_epochs", "warm_epochs", "min_warm_epochs"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < (2 if name == "n_neighbors" else 1):
                raise ValueError(f"{name} must be an integer >= {2 if name == 'n_neighbors' else 1}, got {value!r}")
        if self.min_warm_epochs > self.warm_epochs:
            raise ValueError(f"min_warm_epochs ({self.min_warm_epochs}) must not exceed warm_epochs ({self.warm_epochs})")
        if not isinstance(self.test_epochs, int) or self.test_epochs < 0:
            raise ValueError(f"test_epochs must be an integer >= 0, got {self.test_epochs!r}")
        if not 0 < self.warm_learning_rate <= 10:
            raise ValueError(f"warm_learning_rate must lie in (0, 10], got {self.warm_learning_rate!r}")
        if not 0 <= self.min_dist <= 1:
            raise ValueError(f"min_dist must lie in [0, 1], got {self.min_dist!r}")
        if self.direction not in ("backward", "forward"):
            raise ValueError(f"direction must be 'backward' or 'forward', got {self.direction!r}")
        if self.knn not in ("auto", "exact", "nndescent"):
            raise ValueError(f"knn must be 'auto', 'exact' or 'nndescent', got {self.knn!r}")

    @property
    def min_examples(self) -> int:
        return self.n_neighbors + 1

    def embed_sequence(self, source, *, progress: bool = True) -> SequenceResult:
        require("umap", extra="maps", purpose="UMAP maps")
        epochs = list(source.epochs)
        order = list(range(len(epochs)))
        if self.direction == "backward":
            order.reverse()
        coords: list = [None] * len(epochs)
        tests: list = [None] * len(epochs)
        timings: dict[str, float] = {}
        previous = previous_knn = None
        for step, i in enumerate(progress_bar(order, desc=f"umap {source.layer}", enabled=progress)):
            with Stopwatch(timings, "fit"):
                x = source.probe(epochs[i])
                graph, knn = _graph(x, self.n_neighbors, self.seed, knn=self.knn, previous=previous_knn)
                layout = None
                if previous is not None:
                    passes = warm_passes(changed_fraction(knn, previous_knn), self.warm_epochs, self.min_warm_epochs)
                    timings["warm_passes"] = timings.get("warm_passes", 0.0) + passes
                    layout = umap_layout(graph, previous, n_epochs=passes,
                                         learning_rate=self.warm_learning_rate, min_dist=self.min_dist,
                                         seed=self.seed + step, parallel=self.parallel)
                    if invented_separation(layout, knn, source.labels) > MAX_INVENTED_SEPARATION:
                        timings["restarts"] = timings.get("restarts", 0.0) + 1
                        layout = None
                if layout is None:
                    layout = umap_layout(graph, _spectral_start(x, graph, self.seed), n_epochs=self.first_epochs,
                                         min_dist=self.min_dist, seed=self.seed, parallel=self.parallel)
            if step == 0:
                timings["first_epoch"] = timings["fit"]
            coords[i] = layout
            previous, previous_knn = layout, knn
            with Stopwatch(timings, "test"):
                t = source.test(epochs[i])
                if t is not None:
                    tests[i] = place_points(x, layout, t, n_neighbors=self.n_neighbors, n_epochs=self.test_epochs,
                                            min_dist=self.min_dist, seed=self.seed)
        return SequenceResult(coords, tests, align="procrustes",
                              anchor="last" if self.direction == "backward" else "first", timings=timings)
