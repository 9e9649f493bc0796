"""UMAP's spectral start computed with scipy alone, against umap-learn's."""

import numpy as np
import pytest

from epochscope.maps.fuzzy import fuzzy_graph
from epochscope.maps.knn import exact_knn
from epochscope.maps.spectral import spectral_start


def _data(n=400, seed=0, spread=3.0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    return (rng.normal(size=(3, 10))[labels] * spread + rng.normal(size=(n, 10))).astype(np.float32), labels


def test_start_spans_ten_and_keeps_clusters_apart():
    # three clusters this far apart make a graph in several pieces: umap-learn lays those out
    pytest.importorskip("umap", reason="a graph in several pieces goes to umap-learn's spectral_layout")
    x, labels = _data()
    start = spectral_start(x, fuzzy_graph(*exact_knn(x, 15)), seed=0)
    assert start.shape == (400, 2) and start.dtype == np.float32
    np.testing.assert_allclose(start.min(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(start.max(axis=0), 10.0, atol=1e-4)
    centres = np.stack([start[labels == c].mean(axis=0) for c in range(3)])
    spread = max(start[labels == c].std(axis=0).max() for c in range(3))
    gaps = [np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i)]
    assert min(gaps) > 2 * spread


def test_same_eigenvectors_as_umap_learn():
    umap_spectral = pytest.importorskip("umap.spectral")
    x, _ = _data(spread=0.6)  # overlapping classes: one connected graph
    graph = fuzzy_graph(*exact_knn(x, 15))
    ours = spectral_start(x, graph, seed=0)
    theirs = umap_spectral.spectral_layout(x, graph, 2, np.random.RandomState(0))
    for axis in range(2):  # the same vectors up to sign and scale
        assert abs(np.corrcoef(ours[:, axis], theirs[:, axis])[0, 1]) > 0.99


def test_disconnected_graph_falls_back_to_umap_learn():
    pytest.importorskip("umap.spectral")
    x, labels = _data(spread=40.0)  # far-apart classes: 15-NN graphs in three pieces
    start = spectral_start(x, fuzzy_graph(*exact_knn(x, 15)), seed=0)
    assert np.all(np.isfinite(start)) and start.shape == (400, 2)
