"""epochscope's UMAP optimiser against umap-learn's, its coherence term, and its on-disk compilation cache.

Slow: the kernels compile on the first call on a machine (later processes load them).
"""

import subprocess
import sys

import numpy as np
import pytest

from epochscope.maps.fuzzy import ab_params, epochs_per_sample, fuzzy_graph
from epochscope.maps.knn import exact_knn
from epochscope.maps.quality import separation, trustworthiness
from epochscope.maps.sgd import compiled_kernels, optimize_layout

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, 1500)
    x = (rng.normal(size=(6, 24))[labels] * 1.5 + rng.normal(size=(1500, 24))).astype(np.float32)
    graph = fuzzy_graph(*exact_knn(x, 15)).tocoo()
    n_epochs = 200
    graph.data[graph.data < graph.data.max() / n_epochs] = 0.0
    graph.eliminate_zeros()
    start = rng.uniform(0, 10, size=(1500, 2)).astype(np.float32)
    return x, labels, graph, epochs_per_sample(graph.data, n_epochs), n_epochs, start


def test_same_quality_as_umap_learns_optimiser_on_the_same_graph(problem):
    from umap.layouts import optimize_layout_euclidean

    x, labels, graph, eps, n_epochs, start = problem
    a, b = ab_params(1.0, 0.1)
    ours = optimize_layout(start, None, graph.row, graph.col, eps, n_epochs, a=a, b=b, seed=0)
    rng_state = np.random.RandomState(0).randint(-(2**31) + 1, 2**31 - 1, 3).astype(np.int64)
    theirs = start.copy()
    theirs = optimize_layout_euclidean(theirs, theirs, graph.row, graph.col, n_epochs, len(x), eps, a, b, rng_state,
                                       1.0, 1.0, 5.0, parallel=False, move_other=True)
    # same objective, same schedule: as faithful and as separated (measured: both 0.94-0.95 / 0.93-0.95)
    assert abs(trustworthiness(x, ours) - trustworthiness(x, theirs)) < 0.01
    assert abs(separation(ours, labels) - separation(theirs, labels)) < 0.03
    # and at UMAP's scale (the same min_dist means the same cluster size)
    def spread(y):
        return np.median([np.linalg.norm(y[labels == c] - y[labels == c].mean(0), axis=1).mean() for c in range(6)])
    assert 0.8 < spread(ours) / spread(theirs) < 1.25


def test_serial_runs_reproduce_and_seeds_differ(problem):
    x, labels, graph, eps, n_epochs, start = problem
    a, b = ab_params(1.0, 0.1)
    one = optimize_layout(start, None, graph.row, graph.col, eps, 20, a=a, b=b, seed=3)
    two = optimize_layout(start, None, graph.row, graph.col, eps, 20, a=a, b=b, seed=3)
    other = optimize_layout(start, None, graph.row, graph.col, eps, 20, a=a, b=b, seed=4)
    np.testing.assert_array_equal(one, two)
    assert not np.array_equal(one, other)
    threaded = optimize_layout(start, None, graph.row, graph.col, eps, n_epochs, a=a, b=b, seed=3, parallel=True)
    assert separation(threaded, labels) > 0.8


def test_coherence_pulls_points_toward_their_anchor(problem):
    x, labels, graph, eps, n_epochs, start = problem
    a, b = ab_params(1.0, 0.1)
    anchor = optimize_layout(start, None, graph.row, graph.col, eps, n_epochs, a=a, b=b, seed=0)
    moved = anchor + np.float32(3.0) * np.random.default_rng(1).normal(size=anchor.shape).astype(np.float32)

    def distance_to_anchor(coherence):
        y = optimize_layout(moved, None, graph.row, graph.col, eps, 100, a=a, b=b, seed=1, anchor=anchor,
                            coherence=coherence)
        return float(np.mean(np.linalg.norm(y - anchor, axis=1)))

    free, weak, strong = distance_to_anchor(0.0), distance_to_anchor(0.01), distance_to_anchor(0.3)
    assert strong < weak < free


def test_per_point_rates_hold_points_and_ones_give_umaps_map(problem):
    x, labels, graph, eps, n_epochs, start = problem
    a, b = ab_params(1.0, 0.1)
    n = len(start)
    held = np.arange(n) % 2 == 0
    rate = np.where(held, 0.0, 1.0).astype(np.float32)
    y = optimize_layout(start, None, graph.row, graph.col, eps, 50, a=a, b=b, seed=2, rate=rate)
    np.testing.assert_array_equal(y[held], start[held])  # a rate of 0 never moves the point
    assert np.all(np.linalg.norm(y[~held] - start[~held], axis=1).mean() > 0.1)
    half = optimize_layout(start, None, graph.row, graph.col, eps, 50, a=a, b=b, seed=2,
                           rate=np.full(n, 0.5, np.float32))
    full = optimize_layout(start, None, graph.row, graph.col, eps, 50, a=a, b=b, seed=2)
    ones = optimize_layout(start, None, graph.row, graph.col, eps, 50, a=a, b=b, seed=2, rate=np.ones(n, np.float32))
    assert not np.array_equal(half, full)
    # the same steps up to float rounding, which UMAP's chaotic SGD amplifies: compare what the maps show
    assert abs(separation(ones, labels) - separation(full, labels)) < 0.05
    with pytest.raises(ValueError, match=r"rate must be"):
        optimize_layout(start, None, graph.row, graph.col, eps, 5, a=a, b=b, rate=np.full(n, 2.0, np.float32))


def test_kept_neighbours_counts_each_points_unchanged_neighbours():
    from epochscope.maps.umap_chain import kept_neighbours

    before = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0]])
    after = np.array([[0, 2, 1], [1, 2, 3], [2, 3, 4]])
    np.testing.assert_allclose(kept_neighbours(after, before), [1.0, 0.5, 0.0])  # itself not counted
    with pytest.raises(ValueError, match="differ in shape"):
        kept_neighbours(after[:, :2], before)


def test_tail_held_fixed_when_placing_points(problem):
    x, labels, graph, eps, n_epochs, start = problem
    a, b = ab_params(1.0, 0.1)
    tail = start.copy()
    heads = np.zeros((5, 2), dtype=np.float32)
    optimize_layout(heads, tail, np.arange(5), np.arange(5), np.ones(5), 10, a=a, b=b)
    np.testing.assert_array_equal(tail, start)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        optimize_layout(np.zeros((4, 3)), None, [0], [1], [1.0], 5, a=1.0, b=1.0)
    with pytest.raises(ValueError, match="anchor"):
        optimize_layout(np.zeros((4, 2)), None, [0], [1], [1.0], 5, a=1.0, b=1.0, anchor=np.zeros((3, 2)),
                        coherence=0.1)


def test_kernels_compile_once_per_machine_and_load_from_numbas_cache():
    serial, threaded = compiled_kernels()
    optimize_layout(np.zeros((3, 2)), None, [0], [1], [1.0], 2, a=1.0, b=1.0)  # compiled or loaded now
    code = (
        "import numpy as np\n"
        "from epochscope.maps.sgd import compiled_kernels, optimize_layout\n"
        "optimize_layout(np.zeros((3, 2)), None, [0], [1], [1.0], 2, a=1.0, b=1.0)\n"
        "optimize_layout(np.zeros((3, 2)), None, [0], [1], [1.0], 2, a=1.0, b=1.0, parallel=True)\n"
        "s, p = compiled_kernels()\n"
        "print(sum(s.stats.cache_hits.values()), sum(s.stats.cache_misses.values()),"
        " sum(p.stats.cache_hits.values()), sum(p.stats.cache_misses.values()))\n"
    )
    optimize_layout(np.zeros((3, 2)), None, [0], [1], [1.0], 2, a=1.0, b=1.0, parallel=True)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    serial_hits, serial_misses, threaded_hits, threaded_misses = map(int, out)
    assert serial_hits >= 1 and serial_misses == 0
    assert threaded_hits >= 1 and threaded_misses == 0
