"""The default map method: every frame a converged UMAP of its own epoch, held in place by the frame before.

A time-lapse must show what each epoch's layer holds, as a fresh UMAP of that epoch would
show it (clusters as tight or as loose, as mixed or as separate), while points keep their
places from frame to frame wherever the layer did not move them. Forward in time:

1. the k nearest neighbours of the probe set in the layer (exact up to 4,096 examples;
   above, the previous epoch's graph refined by NN-descent's local join, :mod:`.knn`);
2. UMAP's fuzzy graph from them (:mod:`.fuzzy`);
3. the first epoch: UMAP's own fit (spectral start, :mod:`.spectral`, then UMAP's
   optimiser for as many passes as ``umap.UMAP`` would run);
4. every later epoch: UMAP's optimiser on *its own* graph, ``warm_epochs`` passes (100,
   :data:`WARM_PASSES`, at every size) from learning rate 0.85 (enough to converge: the clusters
   tighten or loosen as the layer's do), started from the previous frame's layout and
   pulled toward it with weight ``coherence`` times the share of the point's neighbours that
   were its neighbours the epoch before (:func:`kept_neighbours`): the temporal coherence
   term of dynamic t-SNE (Rauber, Falcão & Telea 2016) on UMAP's objective (McInnes, Healy &
   Melville 2018), optimised one frame at a time instead of jointly as umap-learn's
   ``AlignedUMAP`` does (:mod:`.sgd`). A point whose neighbourhood the layer replaced has
   no place to keep, so it is not pulled (measured: with one weight for all, the frame after
   the issue run's largest change, epoch 0 to 1, lagged its fresh fit by 0.02 of separation);
5. test points placed as ``UMAP.transform`` places them (:func:`.knn.place_points`);
6. (in :func:`epochscope.embed`) orthogonal Procrustes onto the previous frame.

Why forward: a frame depends only on the frames before it, so adding an epoch to an
embedded run computes one frame and changes none of the others (incremental maps), and the
first frame is the untrained layer's own fit, not the trained model's clusters carried
back. The pass count and the coherence weight were chosen by measurement (docs/maps.md):
with them each frame's class separation stays within the seed-to-seed spread of fresh
UMAP fits of that epoch, while frames move about a third as much as the classic recipe's.

A warm frame whose map separates the classes clearly better than its layer does (it kept
clusters from the previous frame that the layer no longer has) is fitted again from a
spectral start.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._progress import progress as progress_bar
from .base import MethodSettings, SequenceResult, Stopwatch
from .fuzzy import ab_params, epochs_per_sample, fuzzy_graph
from .knn import (
    Screen,
    bounded_exact_knn,
    exact_knn,
    forest_knn,
    place_points,
    refine_knn,
    refine_query_knn,
    screened_query_knn,
    squared_distances_to,
)
from .sgd import compiled_kernel, optimize_layout
from .spectral import spectral_start

__all__ = ["UmapChainSettings", "umap_layout", "umap_default_epochs"]


#: Above this many probe examples the exact search gives way to a search warm-started from
#: the previous epoch's graph (umap-learn switches to NN-descent at the same size).
#: Measured on 5,000 x 512: exact 0.8-1.7 s per epoch, refined from the previous graph
#: 0.4 s (two rounds, 99.6 % of the exact neighbours).
EXACT_KNN_LIMIT = 4096

#: A warm frame whose map separates the classes better than the layer itself does (k-NN
#: class accuracy in the map above the layer's by more than this) has kept structure
#: from the previous frame that the layer does not have: it is fitted again from scratch.
#: Labels only detect the failure; the refit itself never sees them.
MAX_INVENTED_SEPARATION = 0.15

#: Cold searches (the first epoch, or a refined graph that failed its check) stay exact up
#: to this many examples; above, random projection trees and the local join
#: (:func:`.knn.forest_knn`) are faster (measured: 3.5 s against 0.8-2.5 s exact at 5,000
#: examples, and the exact search grows with the square of the probe size).
COLD_EXACT_LIMIT = 10_000

#: A warm-started search must find at least this share of the exact neighbours of a
#: sample of points, or it is redone cold: started from another epoch's graph it can stay
#: in that graph's neighbourhoods when the layer changed a lot.
MIN_WARM_RECALL = 0.95
RECALL_SAMPLE = 256

#: Above this many probe examples the neighbour searches screen candidates in the layer's
#: leading principal directions and rank them by exact distances (:class:`.knn.Screen`):
#: measured on 60,000 x 512 (MNIST CNN, epochs 0->1 and 5->6), a warm frame's search 1.2-2.0 s
#: screened against 2.4-3.8 s in the full layer, with the same recall (98.3-98.4 % against
#: 98.2 %). Below, the full-width search takes well under a second a frame.
SCREEN_ABOVE = 20_000


#: A layer that changes only a little (late training, a small learning rate, fine-tuning)
#: keeps most points' neighbours; UMAP's passes would still reshuffle every cluster's inside
#: (measured: 1e-3 noise on a fixed layer, 99.8 % of neighbours kept, yet points kept 28-34 %
#: of their 10 map neighbours from frame to frame; with this: 97-99 %). So a warm frame scales each point's
#: steps by the share of its neighbours that changed (full steps from FULL_RATE_POINT up)
#: while the layer as a whole changed less than STEADY_ALL_BELOW of its neighbour relations,
#: blending to UMAP's own steps for every point at FULL_RATE_ABOVE. The benchmark runs
#: change 9-50 % per epoch, so their frames are UMAP's own steps, bit for bit; in between
#: (2-8 %) the blend is not measured against fresh fits.
STEADY_ALL_BELOW = 0.02
FULL_RATE_ABOVE = 0.08
FULL_RATE_POINT = 0.1

#: Passes of a warm frame at any size: a fifth of UMAP's own 500 up to 10,000 examples
#: (measured: converged, see docs/maps.md). Not a fifth of the 200 umap-learn runs above:
#: measured on 60,000 MNIST digits (epochs 1-5, a fresh UMAP of each epoch as reference),
#: 40 passes left frames 0.03-0.05 less separated than the fresh fits (a lagging story,
#: 0.045 even without the coherence pull), 70 passes 0.01-0.035, 100 passes within 0.015.
WARM_PASSES = 100


def umap_default_epochs(n: int) -> int:
    """The optimisation passes ``umap.UMAP`` runs on ``n`` points: 500 up to 10,000, else 200.

    >>> umap_default_epochs(5000), umap_default_epochs(60000)
    (500, 200)
    """
    return 500 if n <= 10_000 else 200


def nearest_neighbours(x: np.ndarray, n_neighbors: int, *, method: str = "auto",
                       previous: np.ndarray | None = None, seed: int = 0, screen: Screen | None = None,
                       search: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_neighbors`` nearest probe examples of each probe example in the layer (itself first).

    ``method="exact"``: blocked matrix products (:func:`.knn.exact_knn`), nothing to compile.
    ``"nndescent"``: NN-descent's local join (Dong, Moses & Li 2011) on kernels compiled once
    per machine: the ``previous`` epoch's graph refined in the new layer
    (:func:`.knn.refine_knn`) when it finds at least :data:`MIN_WARM_RECALL` of the exact
    neighbours of a sample of points, else random projection trees refined by the same
    local join (:func:`.knn.forest_knn`), checked the same way, else the exact search
    (slower, never wrong). ``"auto"``: exact up to :data:`EXACT_KNN_LIMIT` examples; above,
    as ``"nndescent"`` but with cold searches exact up to :data:`COLD_EXACT_LIMIT`.
    (pynndescent, used here before, compiles its search in every process: 60-75 s measured
    on 2 busy cores.) ``screen``, ``search`` (``screen(x)``): a :class:`.knn.Screen` of the
    layer, where the local join then screens candidates (a screened search that fails the
    check is done again in the full layer before the exact fallback) and which speeds up the
    check's exact search (:func:`.knn.bounded_exact_knn`, exact all the same).
    """
    if method == "exact" or (method == "auto" and len(x) <= EXACT_KNN_LIMIT):
        return exact_knn(x, n_neighbors)
    if screen is not None and search is None:
        search = screen(x)
    spaces = (None,) if screen is None else (search, None)
    if previous is not None and previous.shape == (len(x), n_neighbors):
        for space in spaces:
            indices, dists = refine_knn(x, previous, search=space)
            if sampled_recall(x, indices, seed=seed, screen=screen, search=search) >= MIN_WARM_RECALL:
                return indices, dists
    if method == "auto" and len(x) <= COLD_EXACT_LIMIT:
        return exact_knn(x, n_neighbors)
    for space in spaces:
        indices, dists = forest_knn(x, n_neighbors, seed=seed, search=space)
        if sampled_recall(x, indices, seed=seed, screen=screen, search=search) >= MIN_WARM_RECALL:
            return indices, dists
    return exact_knn(x, n_neighbors)


def test_neighbours(x: np.ndarray, test: np.ndarray, n_neighbors: int, *, previous: np.ndarray | None = None,
                    graph: np.ndarray | None = None, seed: int = 0, screen: Screen | None = None,
                    search: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_neighbors`` nearest probe examples of each test example (for :func:`.knn.place_points`).

    Exact up to :data:`EXACT_KNN_LIMIT` probe examples. Above, when the test points'
    neighbours at the previous epoch (``previous``) and the probe set's neighbour graph
    (``graph``) are given, they are searched near those (:func:`.knn.refine_query_knn`)
    and kept if they hold :data:`MIN_WARM_RECALL` of the exact neighbours of a sample of
    test points; otherwise exactly. ``screen`` (with ``search``, ``screen(x)``): both
    searches screen candidates in its space and rank them exactly (:class:`.knn.Screen`).
    """
    k = min(n_neighbors, len(x))
    if previous is not None and graph is not None and len(x) > EXACT_KNN_LIMIT and previous.shape == (len(test), k):
        indices, dists = refine_query_knn(x, test, previous, graph, screen=screen, search=search)
        if sampled_recall(x, indices, queries=test, seed=seed, screen=screen, search=search) >= MIN_WARM_RECALL:
            return indices, dists
    if screen is not None:
        indices, dists = screened_query_knn(x, test, k, screen, search=search)
        if sampled_recall(x, indices, queries=test, seed=seed, screen=screen, search=search) >= MIN_WARM_RECALL:
            return indices, dists
    return exact_knn(x, k, queries=test)


def kept_neighbours(knn: np.ndarray, previous_knn: np.ndarray) -> np.ndarray:
    """Share of each point's nearest neighbours that were already its neighbours the epoch before.

    ``knn`` and ``previous_knn``: ``(n, k)`` int neighbour lists of the same probe set at two
    epochs (a point listed as its own neighbour is left out of the count). Returns ``(n,)``
    float64 in [0, 1]: 1 where the point's neighbourhood in the layer did not change.
    """
    knn, previous_knn = np.asarray(knn), np.asarray(previous_knn)
    if knn.shape != previous_knn.shape:
        raise ValueError(f"neighbour lists {knn.shape} and {previous_knn.shape} differ in shape")
    n, k = knn.shape
    rows, cols = np.arange(n)[:, None], np.arange(k)[None, :]
    others = (knn >= 0) & (knn != rows)
    # Sorted together, a neighbour in both lists shows as two equal neighbours: O(n k log k)
    # memory-light (a pairwise comparison takes n k^2 bytes: 600 MB at 60,000 x 100). The point
    # itself and missing entries (-1) get values of their own that match nothing.
    a = np.where(others, knn, -1 - cols)
    b = np.where((previous_knn >= 0) & (previous_knn != rows), previous_knn, -1 - k - cols)
    both = np.sort(np.concatenate([a, b], axis=1), axis=1)
    common = np.count_nonzero(both[:, 1:] == both[:, :-1], axis=1)
    return common / np.maximum(others.sum(axis=1), 1)


def invented_separation(layout: np.ndarray, knn: np.ndarray, labels: np.ndarray, *, sample: int = 10_000) -> float:
    """How much better the map's neighbours share a class than the layer's neighbours do.

    Both are k-NN class agreement (``knn`` holds each point's layer neighbours, itself first),
    over every point up to ``sample`` points, else over a fixed random ``sample`` of them
    (their neighbours still among all points); a clearly positive value means the map shows
    class structure the layer does not have.
    """
    from scipy.spatial import cKDTree

    labels = np.asarray(labels)
    k = knn.shape[1]
    rows = np.arange(len(labels))
    if len(rows) > sample:
        rows = np.sort(np.random.default_rng(0).choice(len(rows), size=sample, replace=False))
    in_layer = float(np.mean(labels[knn[rows, 1:]] == labels[rows, None]))
    _, map_knn = cKDTree(layout).query(layout[rows], k=k)  # a 2-D k-d tree: milliseconds for thousands of points
    in_map = float(np.mean(labels[map_knn[:, 1:]] == labels[rows, None]))
    return in_map - in_layer


def sampled_recall(x: np.ndarray, indices: np.ndarray, *, queries: np.ndarray | None = None,
                   sample: int = RECALL_SAMPLE, seed: int = 0, screen: Screen | None = None,
                   search: np.ndarray | None = None) -> float:
    """Share of the exact ``k`` nearest neighbours that ``indices`` holds, on a random sample of rows.

    ``indices`` are the neighbours among ``x`` of each row of ``x`` (or of ``queries``). The
    exact neighbours come from :func:`.knn.exact_knn`, or, given a ``screen`` of ``x``
    (``search``: ``screen(x)``), from :func:`.knn.bounded_exact_knn` bounded by the found
    neighbours' own distances: the same exact neighbours, measured on far fewer rows
    (on 60,000 x 512: 0.45 s a check by the plain search). A found neighbour counts when it
    is as near (float64 distances, 1e-6 relative) as the exact ``k``-th: among tied rows (a
    layer with duplicated rows) any choice is exact, and both searches give the same value.

    >>> x = np.arange(10.0)[:, None]
    >>> sampled_recall(x, exact_knn(x, 3)[0])
    1.0
    """
    source = x if queries is None else queries
    rows = np.random.default_rng(seed).choice(len(source), size=min(sample, len(source)), replace=False)
    found = np.asarray(indices)[rows]
    k = found.shape[1]
    near = np.sqrt(squared_distances_to(source[rows], x, found))
    if screen is None:
        exact, _ = exact_knn(x, k, queries=source[rows])
    else:
        upper = np.max(near, axis=1)  # inf for an incomplete list: no bound
        exact, _ = bounded_exact_knn(x, source[rows], k, screen, upper, search=search,
                                     self_rows=rows if queries is None else None)
    # the exact k-th distance measured the same way as the found ones, so ties compare equal
    kth = np.max(np.sqrt(squared_distances_to(source[rows], x, exact)), axis=1)
    hits = np.count_nonzero(near <= kth[:, None] * (1.0 + 1e-6), axis=1)
    return float(np.sum(hits) / exact.size)


def umap_layout(graph, init: np.ndarray, *, n_epochs: int, learning_rate: float = 1.0, min_dist: float = 0.1,
                spread: float = 1.0, anchor: np.ndarray | None = None, coherence: float = 0.0,
                rate: np.ndarray | None = None, seed: int = 0, parallel: bool = True,
                anchor_weight: np.ndarray | None = None) -> np.ndarray:
    """Optimise a 2-D layout of UMAP's fuzzy ``graph`` for ``n_epochs`` passes, starting from ``init``.

    The same steps as ``umap.umap_.simplicial_set_embedding`` after its initialisation
    (edges too weak to be sampled once in ``n_epochs`` passes dropped, UMAP's ``a, b`` and
    sampling schedule), except that ``init`` is used as it is (umap-learn would rescale it to
    [0, 10] per axis, distorting a finished map) and that each point may be pulled toward
    its ``anchor`` with weight ``coherence``, and each point's steps scaled by its ``rate``
    (:mod:`.sgd`).

    Example::

        layout = umap_layout(graph, previous, n_epochs=100, anchor=previous, coherence=0.01)
    """
    graph = graph.tocoo()
    graph.sum_duplicates()
    graph.data[graph.data < graph.data.max() / float(max(n_epochs, 10))] = 0.0
    graph.eliminate_zeros()
    a, b = ab_params(spread, min_dist)
    return optimize_layout(init, None, graph.row, graph.col, epochs_per_sample(graph.data, n_epochs), n_epochs,
                           a=a, b=b, initial_alpha=learning_rate, anchor=anchor, coherence=coherence, rate=rate,
                           seed=seed, parallel=parallel, anchor_weight=anchor_weight)


def _spectral_start(x: np.ndarray, graph, seed: int) -> np.ndarray:
    return spectral_start(x, graph, seed)


@dataclass(frozen=True)
class UmapChainSettings(MethodSettings):
    """Settings of ``method="umap"``: every frame a converged UMAP of its epoch, pulled toward the frame before.

    Parameters
    ----------
    n_neighbors : neighbours per point in the layer (UMAP's ``n_neighbors``).
    min_dist : UMAP's ``min_dist``.
    first_epochs : optimisation passes of the first frame (a fresh UMAP fit); ``None``:
        as many as ``umap.UMAP`` runs (500 up to 10,000 examples, else 200).
    warm_epochs : passes of every later frame, started from the previous frame's layout
        at the learning rate below; ``None``: 100 (:data:`WARM_PASSES`, a fifth of what
        ``umap.UMAP`` runs up to 10,000 examples). Enough to converge on the frame's own
        graph (measured: 150 change nothing, 60 start to lag; at 60,000 examples 40 lag by
        0.03-0.05 of separation); far fewer let a frame keep the previous frame's tightness.
    learning_rate : initial learning rate of every later frame, falling to 0 (UMAP's is 1.0;
        the first frame always uses 1.0). Lower keeps frames steadier but less converged;
        0.85 because each warm frame re-anneals a converged map and at 1.0 a resting
        layer's frames kept tightening (docs/maps.md, measured).
    coherence : weight of the pull of each point toward its place in the previous frame
        (0: none), scaled per point by the share of its neighbours in the layer that it kept
        since the previous epoch. Chosen by measurement (docs/maps.md): 0.015 keeps each frame's class
        separation within the seed-to-seed spread of fresh UMAP fits on the benchmark runs
        while frames move a fifth to a third as much as the classic recipe's; 0.02 and more
        let frames lag behind their layer.
    test_epochs : passes when placing test points (UMAP's transform uses 100; 0 keeps
        the weighted mean of the neighbours' positions).
    knn : ``"auto"`` (exact neighbours up to 4,096 examples, else NN-descent warm-started
        from the previous epoch's graph), ``"exact"`` or ``"nndescent"`` (NN-descent at any
        size); see :func:`nearest_neighbours`.
    steady : while the layer as a whole changed under 2 % of its neighbour relations since
        the previous epoch, each point moves in proportion to the share of its own
        neighbours that changed, and a point whose neighbours all stayed keeps its place
        (blending to UMAP's own steps at 8 %; see STEADY_ALL_BELOW); ``False``: UMAP's own
        steps for every point (a cluster's inside reshuffles every frame).
    seed : random seed of the spectral start and the sampling.
    parallel : optimise on numba's threads (``True`` or ``None``, the default) or on the
        calling thread only (``False``). The maps are the same either way, bit for bit, on any
        number of threads (:func:`.sgd.optimize_layout`).

    Example::

        maps = epochscope.embed(run, "hidden", method="umap", coherence=0.0)
    """

    name: ClassVar[str] = "umap"
    incremental: ClassVar[bool] = True
    n_neighbors: int = 15
    min_dist: float = 0.1
    first_epochs: int | None = None
    warm_epochs: int | None = None
    learning_rate: float = 0.85
    coherence: float = 0.015
    steady: bool = True
    test_epochs: int = 10
    knn: str = "auto"
    seed: int = 0
    parallel: bool | None = None

    def __post_init__(self) -> None:
        for name in ("n_neighbors", "first_epochs", "warm_epochs"):
            value = getattr(self, name)
            if name != "n_neighbors" and value is None:
                continue
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < (2 if name == "n_neighbors" else 1):
                raise ValueError(f"{name} must be an integer >= {2 if name == 'n_neighbors' else 1}, got {value!r}")
        if not isinstance(self.test_epochs, int) or self.test_epochs < 0:
            raise ValueError(f"test_epochs must be an integer >= 0, got {self.test_epochs!r}")
        if not 0 < self.learning_rate <= 10:
            raise ValueError(f"learning_rate must lie in (0, 10], got {self.learning_rate!r}")
        if not 0 <= self.coherence < 1:
            raise ValueError(f"coherence must lie in [0, 1), got {self.coherence!r}")
        if not isinstance(self.steady, bool):
            raise ValueError(f"steady must be True or False, got {self.steady!r}")
        if not 0 <= self.min_dist <= 1:
            raise ValueError(f"min_dist must lie in [0, 1], got {self.min_dist!r}")
        if self.parallel is not None and not isinstance(self.parallel, bool):
            raise ValueError(f"parallel must be True, False or None, got {self.parallel!r}")
        if self.knn not in ("auto", "exact", "nndescent"):
            raise ValueError(f"knn must be 'auto', 'exact' or 'nndescent', got {self.knn!r}")

    @property
    def min_examples(self) -> int:
        return self.n_neighbors + 1

    def _warm_passes(self, n: int) -> int:
        return self.warm_epochs or WARM_PASSES

    def _rates(self, kept: np.ndarray, knn: np.ndarray, reference_knn: np.ndarray | None,
               settled: bool) -> tuple[np.ndarray | None, float]:
        """Per-point step scale of a warm frame (``None``: UMAP's own steps; see STEADY_*) and the
        layer's drift: its share of changed neighbour relations since the epoch before (``kept``:
        :func:`kept_neighbours` of ``knn`` since then) or, if more, since ``reference_knn`` (the
        last frame with UMAP's own steps for every point).

        The drift gates the holding: it counts the change since the last full frame, not only
        since the epoch before, as small changes add up (a cluster splitting over many epochs,
        each under STEADY_ALL_BELOW) and the points they do not touch would otherwise stay held
        forever. Points are held only once ``settled`` (the last full frame was on nearly this graph).
        """
        if not self.steady:
            return None, 1.0
        changed = 1.0 - kept
        drift = float(changed.mean())
        if reference_knn is not None and reference_knn.shape == knn.shape:
            drift = max(drift, float(np.mean(1.0 - kept_neighbours(knn, reference_knn))))
        if not settled:
            return None, drift
        everyone = np.clip((drift - STEADY_ALL_BELOW) / (FULL_RATE_ABOVE - STEADY_ALL_BELOW), 0.0, 1.0)
        rates = np.minimum(np.maximum(changed / FULL_RATE_POINT, everyone), 1.0).astype(np.float32)
        return (None if np.all(rates == 1.0) else rates), drift

    def _fresh(self, x: np.ndarray, graph) -> np.ndarray:
        passes = self.first_epochs or umap_default_epochs(len(x))
        return umap_layout(graph, _spectral_start(x, graph, self.seed), n_epochs=passes, learning_rate=1.0,
                           min_dist=self.min_dist, seed=self.seed, parallel=self.parallel is not False)

    def embed_sequence(self, source, *, progress: bool = True, state: dict[str, np.ndarray] | None = None
                       ) -> SequenceResult:
        """Every frame of ``source.epochs`` in order; ``state`` (a :attr:`SequenceResult.state`
        of these settings) continues an earlier sequence: the first epoch here is then a warm
        frame started from that sequence's last one, exactly as in one longer call."""
        compiled_kernel()  # numba loaded (or its absence told) first, so exact searches use its top-k too
        epochs = list(source.epochs)
        coords: list = [None] * len(epochs)
        tests: list = [None] * len(epochs)
        timings: dict[str, float] = {}
        previous = previous_knn = previous_test_knn = previous_digest = reference_knn = None
        settled = True
        start = 0
        if state is not None:
            previous, previous_knn = state["layout"], state["knn"]
            reference_knn = state.get("reference_knn", previous_knn)
            settled = bool(state.get("settled", True))
            previous_test_knn = state.get("test_knn")
            previous_digest = bytes(state["probe_digest"]) if "probe_digest" in state else None
            start = int(state["step"])
            if previous.shape != (source.n_probe, 2) or previous_knn.shape != (source.n_probe, self.n_neighbors):
                raise ValueError(f"state holds a layout {previous.shape} and neighbours {previous_knn.shape}, "
                                 f"expected ({source.n_probe}, 2) and ({source.n_probe}, {self.n_neighbors})")
        for step, epoch in enumerate(progress_bar(epochs, desc=f"umap {source.layer}", enabled=progress), start=start):
            i = step - start
            with Stopwatch(timings, "fit"):
                x = source.probe(epoch)
                digest = hashlib.sha1(x.data).digest()
                with Stopwatch(timings, "knn"):
                    screen = search = None
                    if self.knn != "exact" and len(x) > SCREEN_ABOVE:
                        screen = Screen.fit(x, seed=self.seed)
                        search = None if screen is None else screen(x)
                    knn, dists = nearest_neighbours(x, self.n_neighbors, method=self.knn, previous=previous_knn,
                                                    seed=self.seed, screen=screen, search=search)
                graph = fuzzy_graph(knn, dists, self.n_neighbors)
                layout = None
                if previous is not None and digest == previous_digest:
                    # The layer did not change (a frozen layer, a repeated epoch): the previous
                    # frame already is a converged UMAP of this very graph. More passes would
                    # only reshuffle each cluster's inside (measured: 1.3-2.3x the within-class
                    # radius, 70 % of map neighbours replaced), motion the layer does not have.
                    layout = np.array(previous, dtype=np.float32)
                elif previous is not None:
                    # Points are held only once the map has had a full frame on nearly this graph:
                    # a warm frame after a large change is not yet converged (the frames after
                    # it still move toward a fresh fit's), and holding would freeze it there.
                    kept = kept_neighbours(knn, previous_knn)
                    rates, drift = self._rates(kept, knn, reference_knn if reference_knn is not previous_knn else None,
                                               settled)
                    if rates is None:  # UMAP's own steps for every point: the change so far is in the map
                        reference_knn, settled = knn, drift < STEADY_ALL_BELOW
                    layout = umap_layout(graph, previous, n_epochs=self._warm_passes(len(x)),
                                         learning_rate=self.learning_rate, rate=rates,
                                         min_dist=self.min_dist, anchor=previous, coherence=self.coherence,
                                         seed=self.seed + step, parallel=self.parallel is not False,
                                         anchor_weight=kept)
                    if invented_separation(layout, knn, source.labels) > MAX_INVENTED_SEPARATION:
                        timings["restarts"] = timings.get("restarts", 0.0) + 1
                        layout = None
                if layout is None:
                    layout = self._fresh(x, graph)
                    reference_knn, settled = knn, True
            if step == 0:
                timings["first_epoch"] = timings["fit"]
            coords[i] = layout
            previous, previous_knn, previous_digest = layout, knn, digest
            with Stopwatch(timings, "test"):
                t = source.test(epoch)
                if t is not None:
                    near = test_neighbours(x, t, self.n_neighbors, previous=previous_test_knn, graph=knn,
                                           seed=self.seed, screen=screen, search=search)
                    previous_test_knn = near[0]
                    tests[i] = place_points(x, layout, t, n_neighbors=self.n_neighbors, n_epochs=self.test_epochs,
                                            min_dist=self.min_dist, seed=self.seed, neighbours=near)
        state = {"layout": np.array(previous, dtype=np.float32), "knn": np.asarray(previous_knn, dtype=np.int32),
                 "reference_knn": np.asarray(reference_knn, dtype=np.int32), "settled": np.bool_(settled),
                 "step": np.int64(start + len(epochs))}
        if previous_digest is not None:
            state["probe_digest"] = np.frombuffer(previous_digest, dtype=np.uint8)
        if previous_test_knn is not None:
            state["test_knn"] = np.asarray(previous_test_knn, dtype=np.int32)
        return SequenceResult(coords, tests, align="procrustes", anchor="first", timings=timings, state=state)
