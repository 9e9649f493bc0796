import numpy as np
import pytest

from epochscope.maps.quality import knn_accuracy, linear_cka, motion, quality_subsample, trustworthiness


def test_motion_is_zero_for_a_rotated_scaled_copy_and_grows_with_noise():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 2))
    t = np.deg2rad(30)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    assert motion(a, 4 * a @ rot + 1) < 1e-9
    small = motion(a, a + 0.05 * rng.normal(size=a.shape))
    large = motion(a, a + 0.5 * rng.normal(size=a.shape))
    assert 0 < small < large < 1.5


def test_trustworthiness_separates_a_faithful_map_from_a_shuffled_one():
    rng = np.random.default_rng(1)
    high = rng.normal(size=(300, 2)) @ rng.normal(size=(2, 20))
    faithful = high[:, :2]  # rank 2: the first two columns keep every distance ordering
    assert trustworthiness(high, faithful) > 0.95
    assert trustworthiness(high, rng.permutation(faithful)) < 0.6


def test_knn_accuracy_and_cka_ranges():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(3), 50)
    clustered = np.eye(3)[labels] * 10 + rng.normal(size=(150, 3))
    assert knn_accuracy(clustered, labels) == 1.0
    assert knn_accuracy(rng.normal(size=(150, 3)), labels) < 0.6
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    assert abs(linear_cka(clustered, 3 * clustered @ q) - 1) < 1e-6  # invariant to rotation and scale
    assert linear_cka(clustered, rng.normal(size=(150, 3))) < 0.2
    # a layer wider than the sample count takes the Gram-matrix route: the same value
    wide, other = rng.normal(size=(40, 100)), rng.normal(size=(40, 100))
    other[:, :50] += wide[:, :50]

    def reference(x, y):
        x, y = x - x.mean(0), y - y.mean(0)
        return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))

    assert abs(linear_cka(wide, other) - reference(wide, other)) < 1e-5


def test_quality_subsample_is_fixed_and_bounded():
    a, b = quality_subsample(10_000), quality_subsample(10_000)
    assert len(a) == 2000 and np.array_equal(a, b) and np.all(np.diff(a) > 0)
    assert np.array_equal(quality_subsample(50), np.arange(50))


def test_trustworthiness_agrees_with_scikit_learn():
    from sklearn.manifold import trustworthiness as sk

    rng = np.random.default_rng(5)
    high = rng.normal(size=(400, 30))
    for low in (high[:, :2], high[:, :2] + rng.normal(size=(400, 2)), rng.normal(size=(400, 2))):
        assert abs(trustworthiness(high, low, k=10) - sk(high, low, n_neighbors=10)) < 1e-6


def test_separation_is_scikit_learns_silhouette_score():
    from sklearn.metrics import silhouette_score

    from epochscope.maps.quality import pairwise_distances, separation

    rng = np.random.default_rng(7)
    labels = rng.integers(0, 5, 600)
    labels[0] = 5  # a class of one point: scikit-learn scores it 0
    for spread in (0.0, 0.5, 3.0):
        x = rng.normal(size=(5 + 1, 20))[labels] * spread + rng.normal(size=(600, 20))
        assert abs(separation(x, labels) - silhouette_score(x, labels)) < 1e-6
        assert abs(separation(None, labels, squared_distances=pairwise_distances(x)) - silhouette_score(x, labels)) < 1e-4
        low = x[:, :2]
        assert abs(separation(low, labels) - silhouette_score(low, labels)) < 1e-6
    assert np.isnan(separation(x, np.zeros(600, dtype=int)))


def test_separation_rises_as_classes_pull_apart():
    from epochscope.maps.quality import separation

    rng = np.random.default_rng(8)
    labels = np.arange(300) % 3
    centres = rng.normal(size=(3, 10))
    noise = rng.normal(size=(300, 10))
    values = [separation(f * 3 * centres[labels] + noise, labels) for f in (0.0, 0.3, 0.6, 1.0)]
    assert abs(values[0]) < 0.05 and np.all(np.diff(values) > 0.05) and values[-1] > 0.5


def test_cka_from_distances_is_linear_cka_of_the_features():
    """The maps' CKA comes from the shared squared distances (double centring); checked against
    the features' formula and against an independent float64 Gram computation."""
    from epochscope.maps.quality import CkaTerm, pairwise_distances

    rng = np.random.default_rng(9)
    x = rng.normal(size=(300, 40)) * 5 + 30  # far from the origin: centring matters
    y = np.tanh(x @ rng.normal(size=(40, 60)) / 10) + 0.3 * rng.normal(size=(300, 60))
    wide = rng.normal(size=(300, 500))

    def gram_cka(a, b):  # Kornblith et al. eq. 3 with HKH, in float64
        h = np.eye(len(a)) - 1.0 / len(a)
        ka, kb = h @ a @ a.T @ h, h @ b @ b.T @ h
        return np.sum(ka * kb) / (np.linalg.norm(ka) * np.linalg.norm(kb))

    for a, b in ((x, y), (x, wide), (y, 3 * y + 1)):
        from_distances = CkaTerm.from_squared_distances(pairwise_distances(a)).cka(
            CkaTerm.from_squared_distances(pairwise_distances(b)))
        assert abs(from_distances - gram_cka(a, b)) < 1e-6
        assert abs(linear_cka(a, b) - gram_cka(a, b)) < 1e-9
    assert np.isnan(CkaTerm.from_squared_distances(np.zeros((5, 5))).cka(
        CkaTerm.from_squared_distances(pairwise_distances(x[:5]))))


@pytest.mark.parametrize("numba_loaded", [True, False])
def test_trustworthiness_agrees_with_scikit_learn_on_both_paths(numba_loaded, monkeypatch):
    """The ranks come from a numba kernel when numba is loaded (the UMAP maps) and from numpy
    otherwise; both must give scikit-learn's value. With duplicate examples (layer distance 0)
    scikit-learn ranks tied neighbours in its sort's arbitrary order; there the figure must be
    the definition's with each point first and ties ranked by strictly nearer points, written
    out here one point at a time."""
    import sys

    from sklearn.manifold import trustworthiness as sk

    from epochscope.maps.quality import map_neighbours

    if numba_loaded:
        pytest.importorskip("numba")
    else:
        monkeypatch.delitem(sys.modules, "numba", raising=False)
    rng = np.random.default_rng(6)
    high = rng.normal(size=(300, 30))
    lows = (high[:, :2], high[:, :2] + rng.normal(size=(300, 2)), rng.normal(size=(300, 2)))
    for low in lows:
        assert abs(trustworthiness(high, low, k=10) - sk(high, low, n_neighbors=10)) < 1e-6

    high[150:170] = high[:20]
    for low in lows:
        d = ((high[:, None, :] - high[None, :, :]) ** 2).sum(-1)
        penalty = 0
        for i, near in enumerate(map_neighbours(low, 10)):
            for j in near:
                rank = 1 + sum(1 for m in range(300) if m != i and d[i, m] < d[i, j])
                penalty += max(rank - 10, 0)
        assert abs(trustworthiness(high, low, k=10) - (1 - penalty * 2 / (300 * 10 * (600 - 30 - 1)))) < 1e-9
