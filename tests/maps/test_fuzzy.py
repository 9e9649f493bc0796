"""UMAP's fuzzy graph in numpy: its defining properties (fast) and umap-learn's own graph (slow)."""

import numpy as np
import pytest

from epochscope.maps.fuzzy import ab_params, epochs_per_sample, fuzzy_graph, membership_strengths, smooth_knn_dist
from epochscope.maps.knn import exact_knn


def _points(n=300, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    return (rng.normal(size=(4, 12))[labels] * 3 + rng.normal(size=(n, 12))).astype(np.float32)


def test_sigma_solves_umaps_equation_and_rho_is_the_nearest_distance():
    idx, dist = exact_knn(_points(), 15)
    sigma, rho = smooth_knn_dist(dist, 15.0)
    np.testing.assert_allclose(rho, dist[:, 1], rtol=1e-6)  # the nearest other point (column 0 is itself)
    excess = np.maximum(dist[:, 1:] - rho[:, None], 0.0)
    total = np.exp(-excess / sigma[:, None]).sum(axis=1)
    np.testing.assert_allclose(total, np.log2(15), atol=1e-3)


def test_graph_is_symmetric_fuzzy_union_without_self_loops():
    idx, dist = exact_knn(_points(), 10)
    graph = fuzzy_graph(idx, dist)
    dense = graph.toarray()
    np.testing.assert_allclose(dense, dense.T, atol=1e-6)
    assert np.all(np.diag(dense) == 0) and dense.min() >= 0 and dense.max() <= 1 + 1e-6
    # the fuzzy union of directed strengths: a + b - a * b
    sigma, rho = smooth_knn_dist(dist, 10.0)
    rows, cols, vals = membership_strengths(idx, dist, sigma, rho)
    directed = np.zeros_like(dense)
    directed[rows, cols] = vals
    np.testing.assert_allclose(dense, directed + directed.T - directed * directed.T, atol=1e-6)
    # each point's nearest neighbour is fully a member (strength 1)
    np.testing.assert_allclose(dense[np.arange(len(idx)), idx[:, 1]], 1.0, atol=1e-6)


def test_ab_params_and_sampling_schedule_match_umaps_values():
    from epochscope.maps.fuzzy import _fit_ab

    a, b = ab_params(1.0, 0.1)
    assert abs(a - 1.5769) < 1e-3 and abs(b - 0.8951) < 1e-3  # umap-learn's well-known values
    np.testing.assert_allclose((a, b), _fit_ab(1.0, 0.1), rtol=1e-6)  # the stored values are the fit's
    a2, b2 = ab_params(1.0, 0.5)  # other settings are fitted
    assert a2 < a and b2 > b
    eps = epochs_per_sample(np.array([0.8, 0.2, 0.4]), 200)
    np.testing.assert_allclose(eps, [1.0, 4.0, 2.0])


@pytest.mark.slow
@pytest.mark.parametrize("local_connectivity", [1.0, 0.0])
def test_same_graph_as_umap_learn(local_connectivity):
    from umap.umap_ import fuzzy_simplicial_set
    from umap.umap_ import smooth_knn_dist as umap_smooth

    x = _points(500, seed=1)
    idx, dist = exact_knn(x, 15)
    ours = smooth_knn_dist(dist, 15.0, local_connectivity=local_connectivity)
    theirs = umap_smooth(dist, 15.0, local_connectivity=local_connectivity)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-6)
    if local_connectivity == 1.0:
        graph, _, _ = fuzzy_simplicial_set(x, 15, np.random.RandomState(0), "euclidean", knn_indices=idx,
                                           knn_dists=dist)
        assert abs(fuzzy_graph(idx, dist) - graph.tocsr()).max() < 1e-5


def test_a_point_whose_neighbours_all_coincide_with_it_gets_rho_zero_without_a_warning():
    """Test points of a constant layer (every distance 0), placed with local_connectivity=0: rho was
    0 * inf = NaN, and numpy's "invalid value encountered in multiply" reached the user's terminal."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sigma, rho = smooth_knn_dist(np.zeros((2, 5)), 5.0, local_connectivity=0.0)
    assert rho.tolist() == [0.0, 0.0] and np.all(np.isfinite(sigma))
    _, rho = smooth_knn_dist(np.array([[0.0, 0.0, 1.0, 2.0]]), 4.0, local_connectivity=0.0)
    assert rho.tolist() == [0.0]  # (interpolation 0: rho 0 wherever a distance is not 0, as before)
