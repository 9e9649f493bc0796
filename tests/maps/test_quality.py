import numpy as np

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
