"""The openTSNE method on a small synthetic run."""

import numpy as np
import pytest
from synthetic import make_synthetic_run

import epochscope

pytest.importorskip("openTSNE")


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    path = make_synthetic_run(tmp_path_factory.mktemp("tsne") / "run", n_probe=150, n_test=30, n_epochs=4)
    return path, epochscope.embed(path, "hidden", method="tsne", perplexity=10, cache=False, progress=False)


def test_tsne_fills_the_contract_and_separates_classes(maps):
    path, m = maps
    assert m.method == "tsne" and m.params["perplexity"] == 10
    assert m.coords.shape == (4, 150, 2) and m.test_coords.shape == (4, 30, 2)
    assert np.all(np.isfinite(m.coords)) and np.all(np.isfinite(m.test_coords))
    assert m.quality["knn_accuracy_map"][-1] > 0.95


def test_tsne_test_points_land_beside_their_class(maps):
    path, m = maps
    run = epochscope.open_run(path)
    xy = m.frame(3)
    centres = np.stack([xy[run.labels == c].mean(axis=0) for c in range(3)])
    nearest = np.argmin(np.linalg.norm(m.test_frame(3)[:, None] - centres[None], axis=2), axis=1)
    assert np.mean(nearest == run.test_labels) > 0.9


def test_tsne_needs_three_perplexities_of_examples(tmp_path):
    path = make_synthetic_run(tmp_path / "r", n_probe=40, n_test=5)
    with pytest.raises(ValueError, match="at least 91"):
        epochscope.embed(path, method="tsne", progress=False)
