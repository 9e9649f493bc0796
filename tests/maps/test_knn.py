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


def _low_rank_layer(n=3000, width=128, rank=8, seed=4):
    """A wide layer whose values lie near a few directions, as trained layers' do (the MNIST CNN's
    512-wide hidden layer: 98 % of the variance in 39 directions)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    basis = np.linalg.qr(rng.normal(size=(width, rank)))[0].T
    signal = (rng.normal(size=(10, rank))[labels] * 3 + rng.normal(size=(n, rank))) @ basis
    return (signal + 0.05 * rng.normal(size=(n, width))).astype(np.float32)


def _true_distances(x, rows, found, queries=None):
    q = x if queries is None else queries
    return np.linalg.norm(q[rows][:, None, :].astype(np.float64) - x[found[rows]].astype(np.float64), axis=2)


def test_screen_keeps_the_fewest_directions_holding_the_variance_and_refuses_flat_spectra():
    from epochscope.maps.knn import Screen

    x = _low_rank_layer()
    screen = Screen.fit(x, variance=0.98)
    dims = screen.components.shape[0]
    centred = x - x.mean(axis=0)
    share = np.cumsum(np.linalg.svd(centred, compute_uv=False) ** 2) / np.sum(centred**2)
    assert dims <= 8 and share[dims - 1] >= 0.97  # the sample's count, checked on all rows
    projected = screen(x)
    assert projected.shape == (len(x), dims) and projected.dtype == np.float32
    np.testing.assert_allclose(projected, centred @ screen.components.T, atol=1e-3)
    # isotropic noise needs nearly every direction: screening would not pay
    assert Screen.fit(np.random.default_rng(0).normal(size=(2000, 64)).astype(np.float32)) is None


@pytest.mark.slow
def test_screened_searches_return_the_layers_own_neighbours_and_distances():
    from epochscope.maps.knn import Screen, forest_knn, refine_knn, screened_query_knn

    x = _low_rank_layer()
    after = (x + 0.5 * np.roll(x, 1, axis=1)).astype(np.float32)  # a linear change: neighbourhoods move, the rank stays low
    screen = Screen.fit(after)
    search = screen(after)
    exact, _ = exact_knn(after, 15)
    start, _ = exact_knn(x, 15)
    assert changed_fraction(exact, start) > 0.1  # the layer did move
    rows = np.arange(0, len(after), 7)
    for found, dist in (refine_knn(after, start, search=search), forest_knn(after, 15, search=search)):
        assert _recall(found, exact) > 0.98
        np.testing.assert_array_equal(found[:, 0], np.arange(len(after)))
        # distances measured in the full layer, not in the screen's few directions
        np.testing.assert_allclose(dist[rows], _true_distances(after, rows, found), rtol=1e-3, atol=1e-3)
    queries = after[:300] + 0.3 * np.random.default_rng(2).normal(size=(300, after.shape[1])).astype(np.float32)
    found, dist = screened_query_knn(after, queries, 15, screen, search=search)
    assert _recall(found, exact_knn(after, 15, queries=queries)[0]) > 0.98
    np.testing.assert_allclose(dist, _true_distances(after, np.arange(300), found, queries), rtol=1e-3, atol=1e-3)


def _local_join(x, graph):
    """One NN-descent round in numpy, every pair measured (the reference for the kernel's flags)."""
    n, k = graph.shape
    reverse = [[] for _ in range(n)]
    for i in range(n):
        for j in graph[i, 1:]:
            reverse[j].append(i)
    out = np.empty_like(graph)
    for i in range(n):
        near = set(graph[i]) | set(reverse[i])
        cand = np.array(sorted(near | {m for j in near for m in graph[j]}) )
        cand = cand[cand != i]
        d = np.sum((x[cand] - x[i]) ** 2, axis=1)
        out[i] = np.concatenate([[i], cand[np.argsort(d, kind="stable")[:k - 1]]])
    return out


@pytest.mark.slow
def test_second_round_skips_only_pairs_the_first_round_measured():
    """NN-descent's flags: round two measures only pairs through a new neighbour, so its result must
    be the k nearest of everything rounds one and two would find with every pair measured."""
    from epochscope.maps.knn import refine_knn

    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    # a random start graph: itself, then 5 other random points
    start = np.stack([np.concatenate([[i], rng.permutation(np.delete(np.arange(300), i))[:5]]) for i in range(300)])
    start = start.astype(np.int32)
    one = _local_join(x, start)
    two = _local_join(x, one)
    found, _ = refine_knn(x, start, rounds=2, tolerance=0.0)
    for i in range(300):
        union = np.array(sorted((set(one[i]) | set(two[i])) - {i}))
        best = union[np.argsort(np.sum((x[union] - x[i]) ** 2, axis=1), kind="stable")[:5]]
        assert set(found[i, 1:]) == set(best), i
    # and it is not merely round one again
    assert np.any(found != refine_knn(x, start, rounds=1, tolerance=0.0)[0])


def test_bounded_search_is_exact_whatever_the_bound():
    from epochscope.maps.knn import Screen, bounded_exact_knn

    x = _low_rank_layer(n=2000)
    screen = Screen.fit(x)
    rows = np.arange(0, 2000, 13)
    exact, exact_d = exact_knn(x, 15, queries=x[rows])
    exact[:, 0] = rows  # itself first (exact_knn of queries does not know they are rows of x)
    good = exact_d[:, -1] * 1.5  # a valid bound: the 15th distance, loosened
    for upper in (good, exact_d[:, -1] * 0.5, np.full(len(rows), np.inf)):  # valid, too small, none
        found, dist = bounded_exact_knn(x, x[rows], 15, screen, upper, self_rows=rows)
        assert np.mean([len(np.intersect1d(a, b)) for a, b in zip(found, exact)]) / 15 > 0.999
        np.testing.assert_allclose(dist[:, 1:], exact_d[:, 1:], rtol=1e-3, atol=1e-3)
        assert np.all(found[:, 0] == rows) and np.all(dist[:, 0] == 0)
    queries = x[:50] + 0.2
    q_exact, q_d = exact_knn(x, 15, queries=queries)
    found, dist = bounded_exact_knn(x, queries, 15, screen, q_d[:, -1] * 1.2)
    np.testing.assert_array_equal(np.sort(found, axis=1), np.sort(q_exact, axis=1))


def test_screen_of_a_one_wide_layer_is_none_not_a_crash():
    # (review) np.cov of one column is 0-d and eigh raised LinAlgError: a 1-wide layer of more
    # than 20,000 probe examples could not be mapped at all
    from epochscope.maps.knn import Screen

    x = np.random.default_rng(0).normal(size=(500, 1)).astype(np.float32)
    assert Screen.fit(x) is None


def test_bounded_search_refuses_a_wrong_k_or_wrong_self_rows():
    # (review) self_rows naming other rows put a row 7.7 away first "at distance 0"; k=0 was an IndexError
    from epochscope.maps.knn import Screen, bounded_exact_knn

    x = _low_rank_layer(n=600)
    screen = Screen.fit(x)
    rows = np.arange(0, 600, 50)
    up = np.full(len(rows), np.inf)
    with pytest.raises(ValueError, match="self_rows"):
        bounded_exact_knn(x, x[rows], 5, screen, up, self_rows=rows + 1)
    with pytest.raises(ValueError, match="self_rows"):
        bounded_exact_knn(x, x[rows], 5, screen, up, self_rows=rows[:3])
    for k in (0, -1, 601):
        with pytest.raises(ValueError, match="k must"):
            bounded_exact_knn(x, x[rows], k, screen, up)
    found, dist = bounded_exact_knn(x, x[rows], 5, screen, up, self_rows=rows)
    assert np.all(found[:, 0] == rows) and np.all(dist[:, 0] == 0)


def test_sampled_recall_counts_tied_neighbours_and_agrees_with_its_screened_form():
    # (review) on a layer of duplicated rows the screened check (bounded search, ties broken by
    # row order) scored the exact neighbours 0.87 while the plain check scored them 0.996: a
    # correct search was judged failed and searched again. A neighbour as near as the exact k-th
    # is as good as any other one at that distance.
    from epochscope.maps.knn import Screen
    from epochscope.maps.umap_chain import sampled_recall

    rng = np.random.default_rng(0)
    base = _low_rank_layer(n=300, width=48, rank=6)
    x = base[rng.integers(0, 300, 3000)]  # about 10 copies of every row
    screen = Screen.fit(x)
    indices, _ = exact_knn(x, 15)
    plain = sampled_recall(x, indices)
    screened = sampled_recall(x, indices, screen=screen, search=screen(x))
    assert plain == screened == 1.0
    # a missing neighbour still counts as missing
    worse = indices.copy()
    worse[:, -1] = (worse[:, 0] + 1500) % 3000
    assert sampled_recall(x, worse) == sampled_recall(x, worse, screen=screen, search=screen(x)) < 1.0
    q = x[:40] + 0.01
    qi, _ = exact_knn(x, 15, queries=q)
    assert sampled_recall(x, qi, queries=q) == sampled_recall(x, qi, queries=q, screen=screen, search=screen(x)) == 1.0


def test_exact_search_measures_distances_as_differences_not_by_the_expansion():
    """|q|^2 + |x|^2 - 2 q.x in float32 loses digits on a layer of large values: a duplicate row
    came out 0.0135 away. The distances must be the rows' own, measured independently here in float64."""
    rng = np.random.default_rng(11)
    x = (30.0 + rng.normal(size=(600, 48))).astype(np.float32)
    x[300:330] = x[:30]  # duplicated rows: their nearest other row is at distance 0
    idx, dist = exact_knn(x, 8)
    true = np.linalg.norm(x[idx].astype(np.float64) - x[:, None, :].astype(np.float64), axis=2)
    np.testing.assert_allclose(dist, true, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(idx[:, 0], np.arange(600))  # itself first, even beside its duplicate
    assert np.all(dist[:30, 1] == 0) and np.all(idx[:30, 1] == np.arange(300, 330))
    queries = x[:50] + np.float32(1e-3)
    q_idx, q_dist = exact_knn(x, 5, queries=queries)
    q_true = np.linalg.norm(x[q_idx].astype(np.float64) - queries[:, None, :].astype(np.float64), axis=2)
    np.testing.assert_allclose(q_dist, q_true, rtol=1e-6, atol=1e-6)


@pytest.fixture(params=["compiled", "numpy"])
def kernel_path(request, monkeypatch):
    """Run a test on the numba kernels' path and on numpy's (numba hidden from sys.modules)."""
    import sys

    if request.param == "compiled":
        pytest.importorskip("numba")
    else:
        monkeypatch.delitem(sys.modules, "numba", raising=False)
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_smallest_k_takes_the_k_smallest_of_each_row_in_order(kernel_path, dtype):
    from epochscope.maps.knn import smallest_k

    rng = np.random.default_rng(3)
    values = rng.normal(size=(57, 300)).astype(dtype)
    values[5, :] = 1.0  # a row of ties
    values[6, 10:20] = -9.0
    for k in (1, 7, 300):
        got = smallest_k(values, k)
        assert got.shape == (57, k) and got.dtype == np.int64
        chosen = np.take_along_axis(values, got, axis=1)
        np.testing.assert_array_equal(chosen, np.sort(values, axis=1)[:, :k])  # the k smallest, ascending
        assert all(len(set(row)) == k for row in got.tolist())  # each column once
    if kernel_path == "compiled":
        assert smallest_k(values, 4)[5].tolist() == [0, 1, 2, 3]  # ties: the lower column first
    with pytest.raises(ValueError, match="k must lie in"):
        smallest_k(values, 0)
    with pytest.raises(ValueError, match="k must lie in"):
        smallest_k(values, 301)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_smallest_k_ranks_nan_last_as_numpy_does(kernel_path, dtype):
    # a NaN among the first k columns must not stay among the k smallest and keep smaller values out
    from epochscope.maps.knn import smallest_k

    values = np.array([[np.nan, 3.0, 2.0, 1.0], [0.5, np.nan, np.nan, -1.0], [np.nan, np.inf, np.nan, 7.0]], dtype=dtype)
    assert smallest_k(values, 2).tolist() == [[3, 2], [3, 0], [3, 1]]
    assert smallest_k(values, 1).tolist() == [[3], [3], [3]]
    assert smallest_k(values, 4)[:2, :2].tolist() == [[3, 2], [3, 0]]
    with pytest.raises(TypeError):
        smallest_k(values, 2.0)  # not an integer: refused on both paths


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_count_below_counts_each_rows_entries_under_each_threshold(kernel_path, dtype):
    from epochscope.maps.knn import count_below

    rng = np.random.default_rng(4)
    values = rng.integers(0, 20, size=(80, 150)).astype(dtype)  # many ties with the thresholds
    thresholds = rng.integers(-1, 22, size=(80, 10)).astype(dtype)
    thresholds[2] = 7  # equal thresholds
    values[0, :5] = np.nan  # NaN is below nothing
    thresholds[1, 3] = np.nan  # nothing is below NaN
    thresholds[3] = np.nan
    expected = np.array([[sum(1 for v in row if v < t) for t in ths] for row, ths in zip(values.tolist(), thresholds.tolist())])
    got = count_below(values, thresholds)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)
    assert got[1, 3] == 0 and not got[3].any() and len(set(got[2])) == 1
    with pytest.raises(ValueError, match="must share m"):
        count_below(values, thresholds[:5])


def test_squared_distances_to_are_float64_sums_of_differences(kernel_path):
    from epochscope.maps.knn import squared_distances_to

    rng = np.random.default_rng(4)
    data = (30.0 + rng.normal(size=(40, 7))).astype(np.float32)  # far from 0: the expansion would lose digits
    queries = (30.0 + rng.normal(size=(5, 7))).astype(np.float32)
    idx = rng.integers(0, 40, size=(5, 6))
    idx[2, 3] = -1  # a missing neighbour
    got = squared_distances_to(queries, data, idx)
    want = np.array([[np.inf if r < 0 else float(np.sum((data[r].astype(np.float64) - queries[i]) ** 2))
                      for r in row] for i, row in enumerate(idx)])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got.dtype == np.float64 and np.isinf(got[2, 3])
    with pytest.raises(IndexError):
        squared_distances_to(queries, data, np.full((5, 6), 40))
