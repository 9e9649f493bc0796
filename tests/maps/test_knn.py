import numpy as np
import pytest
import scipy.sparse

from epochscope.maps.knn import _weighted_start, changed_fraction, exact_knn


def test_exact_knn_matches_brute_force_and_puts_self_first():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 7)).astype(np.float32)
    idx, dist = exact_knn(x, 6, block=64)
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    np.testing.assert_array_equal(idx[:, 0], np.arange(300))
    np.testing.assert_array_equal(np.sort(idx, axis=1), np.sort(np.argsort(d, axis=1)[:, :6], axis=1))
    np.testing.assert_allclose(dist, np.sort(d, axis=1)[:, :6], atol=1e-3)
    q = rng.normal(size=(20, 7)).astype(np.float32)
    qi, _ = exact_knn(x, 3, queries=q)
    dq = np.linalg.norm(q[:, None] - x[None], axis=2)
    np.testing.assert_array_equal(qi, np.argsort(dq, axis=1)[:, :3])


def test_exact_knn_agrees_with_scikit_learn():
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(2)
    x = rng.normal(size=(500, 40)).astype(np.float32)
    ours, _ = exact_knn(x, 11)
    theirs = NearestNeighbors(n_neighbors=10, algorithm="brute").fit(x).kneighbors(return_distance=False)
    assert np.mean([len(np.intersect1d(a[1:], b)) for a, b in zip(ours, theirs)]) == 10


def test_changed_fraction_counts_new_neighbours_and_ignores_the_point_itself():
    rng = np.random.default_rng(0)
    old = np.stack([np.concatenate([[i], rng.choice(np.delete(np.arange(100), i), 10, replace=False)])
                    for i in range(100)])
    assert changed_fraction(old, old) == 0.0
    new = old.copy()
    new[:50, 1:6] = -1 - np.arange(5)  # half the points swap 5 of their 10 neighbours for new ones
    assert changed_fraction(new, old) == pytest.approx(0.25)
    # the order of the neighbours does not matter, only the set
    assert changed_fraction(np.concatenate([old[:, :1], old[:, :0:-1]], axis=1), old) == 0.0


def test_weighted_start_matches_umaps_loop():
    pytest.importorskip("umap")
    from umap.umap_ import init_graph_transform

    rng = np.random.default_rng(1)
    layout = rng.normal(size=(50, 2)).astype(np.float32)
    dense = rng.random((8, 50)) * (rng.random((8, 50)) < 0.2)
    dense[3] = 0.0
    dense[3, 7] = 0.4
    dense[5, 9] = 1.0  # a duplicate of probe point 9
    graph = scipy.sparse.csr_matrix(dense)
    ours = _weighted_start(graph, layout, np.zeros(8, dtype=int))
    theirs = init_graph_transform(graph, layout)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def _drifting_layer(n=2000, width=32, seed=0):
    """Two epochs of a layer: the second moves every point a little (as training does)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 8, n)
    before = (rng.normal(size=(8, width))[labels] * 2 + rng.normal(size=(n, width))).astype(np.float32)
    after = (before + 0.3 * rng.normal(size=before.shape)).astype(np.float32)
    return before, after


def _recall(found, exact):
    return np.mean([len(np.intersect1d(a, b)) for a, b in zip(found, exact)]) / exact.shape[1]


@pytest.mark.slow
def test_refined_search_finds_the_exact_neighbours_from_the_previous_graph():
    from epochscope.maps.knn import refine_knn

    before, after = _drifting_layer()
    start, _ = exact_knn(before, 15)
    exact, exact_d = exact_knn(after, 15)
    assert changed_fraction(exact, start) > 0.1  # the layer did move
    found, dist = refine_knn(after, start)
    assert _recall(found, exact) > 0.98
    np.testing.assert_array_equal(found[:, 0], np.arange(len(after)))  # itself first, at distance 0
    assert np.all(dist[:, 0] == 0) and np.all(np.diff(dist, axis=1) >= 0)
    agree = found == exact
    np.testing.assert_allclose(dist[agree], exact_d[agree], rtol=1e-3, atol=1e-3)


@pytest.mark.slow
def test_refined_query_search_finds_the_test_points_neighbours():
    from epochscope.maps.knn import refine_query_knn

    before, after = _drifting_layer(seed=1)
    rng = np.random.default_rng(5)
    q_before = before[:200] + rng.normal(size=(200, before.shape[1])).astype(np.float32)
    q_after = after[:200] + rng.normal(size=(200, before.shape[1])).astype(np.float32)
    start, _ = exact_knn(before, 15, queries=q_before)
    graph, _ = exact_knn(after, 15)
    exact, _ = exact_knn(after, 15, queries=q_after)
    found, dist = refine_query_knn(after, q_after, start, graph)
    # measured 0.92 here (noisy queries between blobs of 250 isotropic points) and 0.98 on the
    # MNIST CNN's layer; the chain checks a sample against exact neighbours before using it
    assert _recall(found, exact) > 0.9
    assert np.all(np.diff(dist, axis=1) >= 0)


@pytest.mark.slow
def test_warm_search_that_misses_neighbours_is_redone_exactly():
    from epochscope.maps import umap_chain

    before, after = _drifting_layer(n=umap_chain.EXACT_KNN_LIMIT + 200, width=16, seed=2)
    # a start graph of closed cliques of 15 consecutive points: searching its neighbours'
    # neighbours never leaves a clique, so the refined search misses most true neighbours
    n = len(after) - len(after) % 15
    after = after[:n]
    cliques = (np.arange(n)[:, None] // 15) * 15 + np.arange(15)[None, :]
    cliques = np.stack([np.concatenate([[i], np.delete(row, np.flatnonzero(row == i))]) for i, row in enumerate(cliques)])
    found, _ = umap_chain.nearest_neighbours(after, 15, previous=cliques.astype(np.int32))
    exact, _ = exact_knn(after, 15)
    assert _recall(found, exact) > 0.99


@pytest.mark.slow
def test_forest_search_finds_nearly_all_exact_neighbours_from_scratch():
    from epochscope.maps.knn import forest_knn

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 3000)
    x = (rng.normal(size=(10, 64))[labels] * 2 + rng.normal(size=(3000, 64))).astype(np.float32)
    found, dist = forest_knn(x, 15)
    exact, _ = exact_knn(x, 15)
    np.testing.assert_array_equal(found[:, 0], np.arange(len(x)))
    assert np.all(np.diff(dist, axis=1) >= 0)
    # measured 0.99 on the MNIST CNN's layer; isotropic 64-D noise around ten centres is harder
    assert _recall(found, exact) > 0.9
