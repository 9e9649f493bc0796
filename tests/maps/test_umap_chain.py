"""The UMAP-based methods on small synthetic runs (slow: fresh UMAP fits and umap-learn's numba JIT)."""

import numpy as np
import pytest
from synthetic import make_synthetic_run

import epochscope
from epochscope.maps.quality import separation
from epochscope.maps.umap_chain import UmapChainSettings
from epochscope.run import RunWriter

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_path(tmp_path_factory):
    return make_synthetic_run(tmp_path_factory.mktemp("maps") / "run", n_probe=240, n_test=60, n_epochs=5)


@pytest.fixture(scope="module")
def chain(run_path):
    return epochscope.embed(run_path, "hidden", progress=False)


def _class_centres(xy, labels):
    return np.stack([xy[labels == c].mean(axis=0) for c in range(labels.max() + 1)])


def test_chain_is_the_default_and_fills_the_contract(chain):
    assert chain.method == "umap" and chain.params == UmapChainSettings().params()
    assert chain.epochs == [0, 1, 2, 3, 4]
    assert chain.coords.shape == (5, 240, 2) and chain.test_coords.shape == (5, 60, 2)
    assert np.all(np.isfinite(chain.coords)) and np.all(np.isfinite(chain.test_coords))


def test_chain_separates_the_classes_at_the_end_and_stays_steady(chain):
    q = chain.quality
    assert q["knn_accuracy_map"][-1] > 0.95 and q["trustworthiness"][-1] > 0.85
    # consecutive late frames barely move: far below the first, noisy-to-clustered step (a share,
    # not a fixed figure: UMAP's SGD is chaotic and the figures differ between CPUs; measured
    # 0.22-0.31 of 1.25 on an AMD EPYC, under 0.3 of about the same on an Intel Xeon)
    assert np.all(q["motion"][2:] < 0.3 * q["motion"][1])


def test_chain_test_points_land_beside_their_class(chain, run_path):
    run = epochscope.open_run(run_path)
    xy, test_xy = chain.frame(4), chain.test_frame(4)
    centres = _class_centres(xy, run.labels)
    nearest = np.argmin(np.linalg.norm(test_xy[:, None] - centres[None], axis=2), axis=1)
    assert np.mean(nearest == run.test_labels) > 0.95


def test_chain_cache_hit_is_identical(chain, run_path):
    again = epochscope.embed(run_path, "hidden", progress=False)
    np.testing.assert_array_equal(again.coords, chain.coords)
    np.testing.assert_array_equal(again.test_coords, chain.test_coords)


def test_serial_chain_reproduces(run_path):
    a = epochscope.embed(run_path, "hidden", parallel=False, cache=False, progress=False, epochs=[3, 4])
    b = epochscope.embed(run_path, "hidden", parallel=False, cache=False, progress=False, epochs=[3, 4])
    np.testing.assert_array_equal(a.coords, b.coords)
    for name in a.quality:
        np.testing.assert_array_equal(a.quality[name], b.quality[name])


def test_place_points_lands_where_umap_transform_does(run_path):
    import umap

    from epochscope.maps.knn import place_points

    run = epochscope.open_run(run_path)
    x = np.asarray(run.activations("hidden", 4), np.float32)
    xt = np.asarray(run.test_activations("hidden", 4), np.float32)
    mapper = umap.UMAP(n_neighbors=15, random_state=0).fit(x)
    ours = place_points(x, mapper.embedding_, xt, n_neighbors=15)
    theirs = mapper.transform(xt)
    scale = np.sqrt(np.mean(np.sum((mapper.embedding_ - mapper.embedding_.mean(0)) ** 2, axis=1)))
    # same neighbourhoods, same start, same optimiser: within a small fraction of the map's radius
    assert np.median(np.linalg.norm(ours - theirs, axis=1)) / scale < 0.1


@pytest.mark.parametrize("method", ["umap-independent", "aligned-umap"])
def test_other_umap_methods_fill_the_contract(run_path, method):
    maps = epochscope.embed(run_path, "hidden", method=method, epochs=[2, 3, 4], cache=False, progress=False)
    run = epochscope.open_run(run_path)
    assert maps.coords.shape == (3, 240, 2) and maps.test_coords.shape == (3, 60, 2)
    assert maps.quality["knn_accuracy_map"][-1] > 0.9
    centres = _class_centres(maps.frame(4), run.labels)
    nearest = np.argmin(np.linalg.norm(maps.test_frame(4)[:, None] - centres[None], axis=2), axis=1)
    assert np.mean(nearest == run.test_labels) > 0.9


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="coherence"):
        UmapChainSettings(coherence=-0.1)
    with pytest.raises(ValueError, match="warm_epochs"):
        UmapChainSettings(warm_epochs=0)
    with pytest.raises(ValueError, match="first_epochs"):
        UmapChainSettings(first_epochs=0)
    with pytest.raises(ValueError, match="learning_rate"):
        UmapChainSettings(learning_rate=0)


def test_nndescent_neighbours_come_from_the_local_join_and_match_the_exact_ones(run_path, monkeypatch):
    # knn="nndescent" used pynndescent, which compiled for 60-110 s in every process; it is now
    # NN-descent's local join on kernels cached once per machine, the exact search only a fallback.
    from epochscope.maps import umap_chain
    from epochscope.maps.knn import exact_knn

    run = epochscope.open_run(run_path)
    x3, x4 = (np.asarray(run.activations("hidden", e), np.float32) for e in (3, 4))
    exact3, exact4 = exact_knn(x3, 15)[0], exact_knn(x4, 15)[0]

    def no_exact(data, k, queries=None):  # the recall check's sample of queries is allowed
        if queries is None:
            raise AssertionError("fell back to the exact search")
        return exact_knn(data, k, queries=queries)

    monkeypatch.setattr(umap_chain, "exact_knn", no_exact)
    cold = umap_chain.nearest_neighbours(x3, 15, method="nndescent")[0]
    warm = umap_chain.nearest_neighbours(x4, 15, method="nndescent", previous=cold)[0]
    for found, exact in ((cold, exact3), (warm, exact4)):
        assert found.shape == (240, 15) and np.all(found[:, 0] == np.arange(240))
        recall = np.mean([len(set(a) & set(b)) / 15 for a, b in zip(found, exact)])
        assert recall > 0.95, recall


def test_chain_with_nndescent_neighbours_matches_the_exact_one(run_path):
    maps = epochscope.embed(run_path, "hidden", knn="nndescent", epochs=[2, 3, 4], cache=False, progress=False)
    assert maps.params["knn"] == "nndescent"
    assert maps.quality["knn_accuracy_map"][-1] > 0.95 and maps.quality["trustworthiness"][-1] > 0.85


def test_short_test_placement_agrees_with_the_long_one(chain, run_path):
    """The chain places test points with 10 optimisation passes (UMAP's transform: 100; before: 30).

    The few passes only settle points already started at their neighbours' weighted mean:
    they land close to the 30-pass placement, beside the same class (majority of the 10
    nearest probe points in the map).
    """
    from epochscope.maps.knn import exact_knn, place_points

    run = epochscope.open_run(run_path)
    epoch = chain.epochs[-1]
    x = np.asarray(run.activations("hidden", epoch), np.float32)
    xt = np.asarray(run.test_activations("hidden", epoch), np.float32)
    layout = chain.frame(epoch)
    assert chain.params["test_epochs"] == 10
    short = place_points(x, layout, xt, n_neighbors=15, n_epochs=10)
    long = place_points(x, layout, xt, n_neighbors=15, n_epochs=30)
    scale = np.sqrt(np.mean(np.sum((layout - layout.mean(0)) ** 2, axis=1)))
    # measured 0.09 here (tiny blobs: where a point sits inside its blob is noise) and 0.02 on
    # the MNIST benchmark run; the class it lands beside is what matters
    assert np.median(np.linalg.norm(short - long, axis=1)) / scale < 0.15

    def beside(points):
        nn, _ = exact_knn(layout, 10, queries=points)
        return np.array([np.bincount(row).argmax() for row in run.labels[nn]])

    assert np.mean(beside(short) == beside(long)) >= 0.95
    assert np.mean(beside(short) == run.test_labels) > 0.9


def _run_from_factors(path, factors, *, n=400, n_classes=5, width=16, seed=0):
    """A run whose epoch ``e`` holds class centres scaled by ``factors[e]`` plus fixed noise and a little jitter.

    Each point keeps its own noise from epoch to epoch (as a layer keeps most neighbourhoods),
    so the classes separate exactly as fast as the factors grow.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    centres = rng.normal(size=(n_classes, width)) * 2.0
    base = rng.normal(size=(n, width))
    with RunWriter.open(path, framework="synthetic", labels=labels,
                        class_names=[f"class {c}" for c in range(n_classes)]) as w:
        w.declare_layer("hidden", (width,), width, None)
        for epoch, factor in enumerate(factors):
            with w.epoch(epoch) as ep:
                jitter = 0.3 * rng.normal(size=base.shape)
                ep.set_activations("hidden", (factor * centres[labels] + base + jitter).astype(np.float32))
    return path


def _shares(values):
    """Each step's share of the whole rise from the first epoch to the last."""
    values = np.asarray(values, dtype=float)
    return np.diff(values) / (values[-1] - values[0])


def test_frames_separate_as_the_layer_does_without_a_last_frame_jump(tmp_path):
    # classes pull apart over six epochs, then the layer stays as it is for two more
    factors = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.6, 0.6]
    path = _run_from_factors(tmp_path / "run", factors)
    maps = epochscope.embed(path, "hidden", cache=False, progress=False)
    sep, layer = maps.quality["separation"], maps.quality["separation_layer"]
    # the map's story is the layer's: it rises as the layer's separation rises ...
    assert sep[-1] > sep[0] + 0.5
    ranks = np.argsort(np.argsort(sep[:7])), np.argsort(np.argsort(layer[:7]))
    assert np.corrcoef(*ranks)[0, 1] > 0.8
    # ... and stays when the layer stays: no jump at the end (the old chain's fault)
    assert np.all(np.abs(np.diff(layer[6:])) < 0.01)
    assert np.all(np.abs(np.diff(sep[6:])) < 0.05)
    # No step takes a larger share of the whole rise than the layer's own step does, beyond
    # what UMAP itself shows: a fresh UMAP per epoch shows noise as noise until the classes
    # part, then snaps them into clusters (its steps' shares deviate from the layer's by up to
    # 0.08 here), so the margin is the fresh fits' own deviation plus 0.05 of seed noise.
    import umap

    run = epochscope.open_run(path)
    fresh = np.array([[separation(umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=seed)
                                  .fit_transform(np.asarray(run.activations("hidden", e))), run.labels)
                       for e in run.epochs] for seed in (0, 1, 2)])
    umap_own = np.maximum(np.max([_shares(f) for f in fresh], axis=0) - _shares(layer), 0.0)
    assert np.all(_shares(sep) <= _shares(layer) + umap_own + 0.05), (np.round(sep, 3), np.round(fresh, 3))
    # and every frame is as separated as fresh fits of its epoch show it. On 400 points one
    # fresh fit is a noisy reference (seeds 0-2 differ by up to 0.036 on a frame here), so
    # the reference is the mean of three.
    assert np.max(np.abs(sep - fresh.mean(axis=0))) < 0.05, (np.round(sep, 3), np.round(fresh, 3))


@pytest.mark.parametrize("knn", ["exact", "nndescent"])
def test_map_shows_no_clusters_the_layer_does_not_have(run_path, knn):
    # Epoch 0 of the synthetic run is pure noise: its classes are not separable in the layer.
    # Started from the clustered epoch 1, the chain must not carry those clusters back into it.
    maps = epochscope.embed(run_path, "hidden", knn=knn, cache=False, progress=False)
    q = maps.quality
    assert q["knn_accuracy_layer"][0] < 0.6
    assert q["knn_accuracy_map"][0] < q["knn_accuracy_layer"][0] + 0.2, (
        f"map k-NN accuracy {q['knn_accuracy_map'][0]:.2f} vs layer {q['knn_accuracy_layer'][0]:.2f} at epoch 0")
    assert q["knn_accuracy_map"][-1] > 0.95


def test_a_layer_that_loses_its_clusters_loses_them_on_the_map(tmp_path):
    # Forward in time a frame starts from the previous one: when the layer falls back to
    # noise (a reset, a diverging run), the clusters of the frame before must not survive.
    path = _run_from_factors(tmp_path / "run", [0.0, 0.6, 0.6, 0.0])
    maps = epochscope.embed(path, "hidden", cache=False, progress=False)
    q = maps.quality
    assert q["knn_accuracy_map"][2] > 0.95 and q["knn_accuracy_layer"][3] < 0.6
    assert q["knn_accuracy_map"][3] < q["knn_accuracy_layer"][3] + 0.2
    assert q["separation"][3] < 0.1


def test_adding_an_epoch_leaves_the_frames_before_it_unchanged(tmp_path):
    # What incremental embedding relies on: a frame depends only on the epochs up to it.
    path = _run_from_factors(tmp_path / "run", [0.0, 0.2, 0.4, 0.6], n=200)
    short = epochscope.embed(path, "hidden", epochs=[0, 1, 2], cache=False, progress=False)
    full = epochscope.embed(path, "hidden", cache=False, progress=False)
    np.testing.assert_array_equal(full.coords[:3], short.coords)
    np.testing.assert_array_equal(full.quality["separation"][:3], short.quality["separation"])


def test_a_layer_that_does_not_change_does_not_move_on_the_map(tmp_path):
    # A frozen layer (fine-tuning a head on a frozen backbone) records the same outputs every
    # epoch. The chain re-optimised each such frame 100 passes from the last one, which
    # reshuffled every cluster's inside: points moved 1.3-2.3x the within-class radius and
    # kept a quarter to a third of their 10 map neighbours, motion 0.08-0.12 for a layer
    # that did not move. Incremental embedding must give the same frames.
    rng = np.random.default_rng(0)
    labels = np.arange(300) % 3
    still = (np.repeat(rng.normal(size=(3, 16)) * 1.5, 100, axis=0)[np.argsort(np.argsort(labels))]
             + rng.normal(size=(300, 16))).astype(np.float32)
    moved = still + 0.5 * rng.normal(size=still.shape).astype(np.float32)
    layers = [moved, still, still, still, moved]

    def record(epochs):
        with RunWriter.open(tmp_path / "run", framework="synthetic", labels=labels,
                            class_names=["a", "b", "c"]) as w:
            if epochs[0] == 0:
                w.declare_layer("hidden", (16,), 16, None)
            for epoch in epochs:
                with w.epoch(epoch) as ep:
                    ep.set_activations("hidden", layers[epoch])

    record([0, 1, 2])
    epochscope.embed(tmp_path / "run", "hidden", progress=False)  # cached: epochs 0-2
    record([3, 4])
    maps = epochscope.embed(tmp_path / "run", "hidden", progress=False)  # continued from the cache
    # the same layout, up to the float rounding of aligning a frame onto its identical neighbour
    np.testing.assert_allclose(maps.coords[2], maps.coords[1], rtol=0, atol=1e-5)
    np.testing.assert_allclose(maps.coords[3], maps.coords[1], rtol=0, atol=1e-5)
    assert np.all(maps.quality["motion"][2:4] < 1e-6)
    assert maps.quality["motion"][4] > 0.01  # the layer moved again: so does the map
    full = epochscope.embed(tmp_path / "run", "hidden", cache=False, progress=False)
    np.testing.assert_array_equal(maps.coords, full.coords)


def _map_neighbours_kept(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean share of each point's k nearest map neighbours in frame ``a`` still among them in ``b``."""
    from sklearn.neighbors import NearestNeighbors

    na = NearestNeighbors(n_neighbors=k + 1).fit(a).kneighbors(a, return_distance=False)[:, 1:]
    nb = NearestNeighbors(n_neighbors=k + 1).fit(b).kneighbors(b, return_distance=False)[:, 1:]
    return float(np.mean([len(set(r) & set(s)) / k for r, s in zip(na, nb)]))


def test_a_layer_that_changes_only_slightly_keeps_its_points_in_place(tmp_path):
    # Late in training a layer moves by tiny amounts: every point keeps its neighbours in the
    # layer. Re-optimised from the last frame with a weak uniform pull, each cluster's inside
    # was reshuffled anyway (points kept 24-33 % of their 10 map neighbours from frame to
    # frame, motion 0.07-0.11), motion the layer does not have. A point whose neighbourhood
    # did not change is now held at its place; a layer that really moves still moves the map.
    rng = np.random.default_rng(0)
    labels = np.arange(300) % 3
    base = (rng.normal(size=(3, 16))[labels] * 1.5 + rng.normal(size=(300, 16))).astype(np.float32)
    drift = [base + 1e-3 * rng.normal(size=base.shape).astype(np.float32) for _ in range(4)]
    moved = base + 0.5 * rng.normal(size=base.shape).astype(np.float32)
    layers = [base, *drift, moved]
    with RunWriter.open(tmp_path / "run", framework="synthetic", labels=labels, class_names=["a", "b", "c"]) as w:
        w.declare_layer("hidden", (16,), 16, None)
        for epoch, x in enumerate(layers):
            with w.epoch(epoch) as ep:
                ep.set_activations("hidden", x)
    maps = epochscope.embed(tmp_path / "run", "hidden", cache=False, progress=False)
    layer_kept = [_map_neighbours_kept(layers[e], layers[e + 1]) for e in range(4)]
    map_kept = [_map_neighbours_kept(maps.coords[e], maps.coords[e + 1]) for e in range(4)]
    assert min(layer_kept) > 0.95, layer_kept
    assert min(map_kept) > 0.8, f"map neighbours kept {map_kept} while the layer kept {layer_kept}"
    motion = maps.quality["motion"]
    assert np.all(motion[1:5] < 0.03), motion
    assert motion[5] > 3 * motion[1:5].max(), motion  # the layer moved: so does the map
    # UMAP's own steps for every point (steady=False) are what reshuffled the clusters
    churn = epochscope.embed(tmp_path / "run", "hidden", cache=False, progress=False, steady=False)
    churn_kept = [_map_neighbours_kept(churn.coords[e], churn.coords[e + 1]) for e in range(4)]
    assert max(churn_kept) < 0.5, churn_kept  # measured 0.28-0.34


def test_each_point_is_pulled_by_the_share_of_its_neighbours_it_kept(tmp_path, monkeypatch):
    # The frame after a large change lagged its fresh fit (issue run, epoch 1: 0.595 against
    # 0.615) while one pull weight held every point, whose neighbourhoods the layer had replaced.
    # Each warm frame's pull weights must be the share of its layer neighbours a point kept,
    # counted here independently of the chain's own kept_neighbours.
    from epochscope.maps import umap_chain
    from epochscope.maps.knn import exact_knn

    path = _run_from_factors(tmp_path / "run", [0.0, 0.6, 0.6])
    weights = []
    real = umap_chain.umap_layout

    def spy(*args, anchor_weight=None, **kwargs):
        weights.append(anchor_weight)
        return real(*args, anchor_weight=anchor_weight, **kwargs)

    monkeypatch.setattr(umap_chain, "umap_layout", spy)
    epochscope.embed(path, "hidden", cache=False, progress=False)
    run = epochscope.open_run(path)
    knn = [exact_knn(np.asarray(run.activations("hidden", e)), 15)[0] for e in run.epochs]
    expected = [[len((set(now[i]) & set(before[i])) - {i}) / len(set(now[i]) - {i}) for i in range(len(now))]
                for before, now in zip(knn, knn[1:])]
    warm = [w for w in weights if w is not None]  # the first frame is a fresh fit: no pull
    assert len(warm) == 2
    for got, want in zip(warm, expected):
        np.testing.assert_allclose(got, want)
    assert np.mean(warm[0]) < 0.5 < np.mean(warm[1])  # the big change pulls little, the rest more
