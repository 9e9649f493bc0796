"""embed() and Maps on small synthetic runs with the fast PCA method (no numba)."""

import numpy as np
import pytest
from synthetic import blob_activations, make_synthetic_run

import epochscope
from epochscope.maps import api, pca
from epochscope.maps.cache import maps_cache_dir
from epochscope.run import RunWriter, open_run


def _count_fits(monkeypatch):
    calls = []
    original = pca.PcaSettings.embed_sequence

    def counting(self, source, **kw):
        calls.append(list(source.epochs))
        return original(self, source, **kw)

    monkeypatch.setattr(pca.PcaSettings, "embed_sequence", counting)
    return calls


def test_maps_contract_shapes_and_dtypes(synthetic_run):
    maps = epochscope.embed(synthetic_run, method="pca", progress=False)
    assert isinstance(maps, epochscope.Maps)
    assert maps.layer == "hidden" and maps.method == "pca" and maps.params == {"scale": "rms"}
    assert maps.epochs == [0, 1, 2, 3, 4] and maps.skipped == {}
    assert maps.coords.shape == (5, 120, 2) and maps.coords.dtype == np.float32
    assert maps.test_coords.shape == (5, 30, 2) and maps.test_coords.dtype == np.float32
    assert set(maps.quality) == {"trustworthiness", "motion", "knn_accuracy_map", "knn_accuracy_layer", "cka_previous",
                                 "separation", "separation_layer"}
    np.testing.assert_array_equal(maps.frame(3), maps.coords[3])
    np.testing.assert_array_equal(maps.test_frame(3), maps.test_coords[3])
    xmin, xmax, ymin, ymax = maps.bounds
    inside = ((maps.coords[..., 0] >= xmin) & (maps.coords[..., 0] <= xmax)
              & (maps.coords[..., 1] >= ymin) & (maps.coords[..., 1] <= ymax))
    assert inside.mean() > 0.98


def test_cache_hit_returns_identical_arrays_without_recomputing(synthetic_run, monkeypatch):
    calls = _count_fits(monkeypatch)
    first = epochscope.embed(synthetic_run, "hidden", method="pca", progress=False)
    second = epochscope.embed(synthetic_run, "hidden", method="pca", progress=False)
    assert len(calls) == 1
    np.testing.assert_array_equal(first.coords, second.coords)
    np.testing.assert_array_equal(first.test_coords, second.test_coords)
    for name in first.quality:
        np.testing.assert_array_equal(first.quality[name], second.quality[name])
    assert first.bounds == second.bounds and first.epochs == second.epochs
    # other settings or --no-cache compute again
    epochscope.embed(synthetic_run, "hidden", method="pca", scale="none", progress=False)
    epochscope.embed(synthetic_run, "hidden", method="pca", cache=False, progress=False)
    assert len(calls) == 3


def test_cache_paths_are_hashes_not_layer_names(tmp_path):
    path = make_synthetic_run(tmp_path / "r", layers=("../evil/layer",))
    epochscope.embed(path, "../evil/layer", method="pca", progress=False)
    entries = [p.name for p in maps_cache_dir(open_run(path)).iterdir()]
    assert len(entries) == 1 and all(c in "0123456789abcdef" for c in entries[0])
    assert not (tmp_path / "evil").exists()


def test_half_written_cache_is_ignored(synthetic_run, monkeypatch):
    calls = _count_fits(monkeypatch)
    epochscope.embed(synthetic_run, method="pca", progress=False)
    (entry,) = maps_cache_dir(open_run(synthetic_run)).iterdir()
    (entry / "meta.json").unlink()  # as if the writer died before its last file
    (maps_cache_dir(open_run(synthetic_run)) / ".tmp-abc-1").mkdir()
    maps = epochscope.embed(synthetic_run, method="pca", progress=False)
    assert len(calls) == 2 and maps.coords.shape == (5, 120, 2)


def test_appended_epochs_are_embedded_on_the_next_call(synthetic_run, monkeypatch):
    calls = _count_fits(monkeypatch)
    epochscope.embed(synthetic_run, method="pca", progress=False)
    run = open_run(synthetic_run)
    labels, test_labels = run.labels, run.test_labels
    with RunWriter.open(synthetic_run, framework="synthetic", labels=labels, class_names=run.class_names,
                        test_labels=test_labels) as w, w.epoch(5) as ep:
        ep.set_activations("hidden", blob_activations(labels, 4, 5))
        ep.set_activations("hidden", blob_activations(test_labels, 4, 5, seed=3), split="test")
    maps = epochscope.embed(synthetic_run, method="pca", progress=False)
    assert maps.epochs == [0, 1, 2, 3, 4, 5] and len(calls) == 2


def test_nan_epoch_is_reported_skipped_and_the_others_embedded(tmp_path, caplog):
    labels = np.arange(60) % 3
    with RunWriter.open(tmp_path / "r", framework="synthetic", labels=labels, class_names=["a", "b", "c"]) as w:
        w.declare_layer("hidden", (8,), 8, None)
        for epoch in range(4):
            acts = blob_activations(labels, epoch, 4, width=8)
            if epoch == 2:
                acts[5, 3] = np.nan
                acts[7, 1] = np.inf
            with w.epoch(epoch) as ep:
                ep.set_activations("hidden", acts)
    with caplog.at_level("WARNING", logger="epochscope"):
        maps = epochscope.embed(tmp_path / "r", method="pca", progress=False)
    assert maps.epochs == [0, 1, 3]
    assert list(maps.skipped) == [2] and "2 NaN/Inf" in maps.skipped[2]
    assert "[2]" in caplog.text
    assert np.all(np.isfinite(maps.coords)) and maps.test_coords is None
    with pytest.raises(ValueError, match="epoch 2 was not embedded"):
        maps.frame(2)


def test_epoch_whose_layer_file_is_gone_or_a_link_is_reported_skipped(tmp_path, caplog):
    # An epoch whose activations file was deleted or replaced by a link (readers never follow
    # links) fell out of the maps without a word: "3 epochs", the time-lapse jumped from 1 to 3.
    path = make_synthetic_run(tmp_path / "r", n_epochs=5)
    run = open_run(path)
    key = run.layer_info("hidden").key
    linked = path / "epochs" / "000002" / "probe" / f"{key}.npy"
    outside = tmp_path / "outside.npy"
    linked.rename(outside)
    linked.symlink_to(outside)
    (path / "epochs" / "000004" / "probe" / f"{key}.npy").unlink()  # the last epoch too
    with caplog.at_level("WARNING", logger="epochscope"):
        maps = epochscope.embed(path, "hidden", method="pca", progress=False)
    assert maps.epochs == [0, 1, 3]
    assert sorted(maps.skipped) == [2, 4] and "not a regular file" in maps.skipped[2]
    assert "[2, 4]" in caplog.text
    assert sorted(epochscope.embed(path, "hidden", method="pca", progress=False).skipped) == [2, 4]  # from the cache
    assert outside.exists()


def test_test_points_land_beside_their_class(synthetic_run):
    maps = epochscope.embed(synthetic_run, method="pca", progress=False)
    run = open_run(synthetic_run)
    xy, test_xy = maps.frame(4), maps.test_frame(4)
    centres = np.stack([xy[run.labels == c].mean(axis=0) for c in range(3)])
    nearest = np.argmin(np.linalg.norm(test_xy[:, None] - centres[None], axis=2), axis=1)
    assert np.mean(nearest == run.test_labels) > 0.95


def test_quality_figures_are_in_range_and_reproduce(synthetic_run):
    a = epochscope.embed(synthetic_run, method="pca", cache=False, progress=False)
    b = epochscope.embed(synthetic_run, method="pca", cache=False, progress=False)
    q = a.quality
    for name in q:
        assert len(q[name]) == 5
        np.testing.assert_allclose(q[name], b.quality[name])
    assert np.isnan(q["motion"][0]) and np.isnan(q["cka_previous"][0])
    assert np.all((q["trustworthiness"] > 0.5) & (q["trustworthiness"] <= 1))
    assert np.all(q["motion"][1:] >= 0)
    for name in ("knn_accuracy_map", "knn_accuracy_layer", "cka_previous"):
        assert np.all((q[name][1:] >= 0) & (q[name][1:] <= 1))
    # the clusters form: late epochs classify well, the first does not
    assert q["knn_accuracy_layer"][-1] > 0.95 > q["knn_accuracy_layer"][0]
    # and separate: silhouettes lie in [-1, 1] and rise over training, in the layer and in the map
    for name in ("separation", "separation_layer"):
        assert np.all((q[name] >= -1) & (q[name] <= 1))
        assert q[name][-1] > q[name][0] + 0.3


def test_clear_errors_for_bad_layer_method_option_and_epochs(synthetic_run):
    with pytest.raises(ValueError, match="did you mean 'hidden'"):
        epochscope.embed(synthetic_run, "hiden", method="pca")
    with pytest.raises(ValueError, match="umap-independent"):
        epochscope.embed(synthetic_run, method="umop")
    with pytest.raises(TypeError, match="options are: scale"):
        epochscope.embed(synthetic_run, method="pca", n_neighbors=5)
    with pytest.raises(ValueError, match=r"epochs \[9\]"):
        epochscope.embed(synthetic_run, method="pca", epochs=[1, 9])
    with pytest.raises(TypeError, match="run must be"):
        epochscope.embed(42)


def test_too_few_examples_for_the_neighbour_count(tmp_path):
    path = make_synthetic_run(tmp_path / "r", n_probe=12, n_test=3)
    settings = api.method_settings("umap", {"n_neighbors": 15})
    assert settings.min_examples == 16
    with pytest.raises(ValueError, match="12 probe examples.*at least 16"):
        epochscope.embed(path, method="umap", n_neighbors=15, progress=False)


def test_selected_epochs_only(synthetic_run):
    maps = epochscope.embed(synthetic_run, method="pca", epochs=[4, 1], progress=False)
    assert maps.epochs == [1, 4] and maps.coords.shape[0] == 2
