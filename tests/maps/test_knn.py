import numpy as np
import pytest
import scipy.sparse

from epochscope.maps.knn import _weighted_start, exact_knn


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
