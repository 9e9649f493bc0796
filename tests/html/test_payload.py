import numpy as np
import pytest
from reportdata import CLASS_NAMES, XSS_LAYER, FakeMaps, make_maps, make_report_run
from test_encode import unpack

from epochscope import RunError, open_run
from epochscope.html.payload import HIGHLIGHT_COUNT, build_payload


def test_payload_holds_every_epoch_point_and_class(report_run):
    run, maps = report_run
    p = build_payload(run, maps, layer=XSS_LAYER, method="fake")
    assert p["epochs"] == run.epochs and p["classNames"] == CLASS_NAMES
    assert len(p["colors"]) == len(CLASS_NAMES) and all(c.startswith("#") and len(c) == 7 for c in p["colors"])
    assert p["colors"][0] == "#1f77b4"  # tab10, as draw.style.class_colors
    probe = p["probe"]
    assert probe["count"] == run.manifest.probe_size
    coords = unpack(probe["coords"])
    assert coords.shape == (len(run.epochs), run.manifest.probe_size, 2)
    # Quantised positions preserve the maps' geometry: the last frame's class centres are far apart.
    last = coords[-1].astype(float)
    labels = unpack(probe["labels"])
    centres = np.stack([last[labels == c].mean(axis=0) for c in range(len(CLASS_NAMES))])
    assert np.min(np.linalg.norm(centres[0] - centres[1:], axis=1)) > 10000
    assert np.array_equal(unpack(probe["predictions"])[2], run.predictions(run.epochs[2]))
    assert p["test"]["count"] == run.manifest.test_size


def test_confusion_counts_every_probe_prediction(report_run):
    run, maps = report_run
    conf = unpack(build_payload(run, maps, layer="x", method="fake")["confusion"])
    assert conf.shape == (len(run.epochs), 4, 4)
    assert (conf.sum(axis=(1, 2)) == run.manifest.probe_size).all()
    pred, labels = run.predictions(run.epochs[-1]), run.labels
    assert conf[-1, 1, 2] == np.sum((labels == 1) & (pred == 2))


def test_metrics_are_grouped_into_accuracy_and_loss(report_run):
    run, maps = report_run
    m = build_payload(run, maps, layer="x", method="fake")["metrics"]
    assert m["accuracy"] == ["accuracy", "val_accuracy"] and m["loss"] == ["loss", "val_loss"]
    assert m["series"]["loss"][0] == pytest.approx(1.0) and m["epochs"] == run.epochs


def test_quality_nan_becomes_null(report_run):
    run, maps = report_run
    q = build_payload(run, maps, layer="x", method="fake")["quality"]["series"]
    assert q["motion"][0] is None and q["motion"][1] == pytest.approx(0.2)


def test_max_points_keeps_a_fixed_subset(report_run):
    run, maps = report_run
    a = build_payload(run, maps, layer="x", method="fake", max_points=50)
    b = build_payload(run, maps, layer="x", method="fake", max_points=50)
    idx = unpack(a["probe"]["index"])
    assert len(idx) == 50 and np.array_equal(idx, unpack(b["probe"]["index"]))
    assert np.all(np.diff(idx) > 0)
    assert np.array_equal(unpack(a["probe"]["labels"]), run.labels[idx])
    assert a["thumbnails"]["count"] == 50 + run.manifest.test_size  # test set (40) under the cap
    assert unpack(a["confusion"]).sum(axis=(1, 2))[0] == run.manifest.probe_size  # confusion uses all


def test_most_forgotten_are_points_with_events(report_run):
    run, maps = report_run
    p = build_payload(run, maps, layer="x", method="fake")["probe"]
    events = unpack(p["forgetting"])
    top = p["mostForgotten"]
    assert 0 < len(top) <= HIGHLIGHT_COUNT
    assert all(events[i] > 0 for i in top)
    assert events[top[0]] == events.max()


def test_nan_coordinates_are_marked_missing(report_run):
    run, maps = report_run
    coords = maps.coords.copy()
    coords[1, 3] = np.nan
    p = build_payload(run, FakeMaps(maps.epochs, coords, None, maps.quality, maps.bounds), layer="x", method="f")
    assert unpack(p["probe"]["coords"])[1, 3].tolist() == [65535, 65535]
    assert p["test"] is None


def test_wrong_shapes_and_empty_maps_are_reported(report_run):
    run, maps = report_run
    with pytest.raises(ValueError, match="maps.coords"):
        build_payload(run, FakeMaps(maps.epochs, maps.coords[:, :10], None, {}, maps.bounds), layer="x", method="f")
    with pytest.raises(RunError, match="no epoch"):
        build_payload(run, FakeMaps([], maps.coords[:0], None, {}, maps.bounds, {0: "NaN"}), layer="x", method="f")


def test_runs_without_images_have_no_thumbnails(tmp_path):
    run = open_run(make_report_run(tmp_path / "run", images=False, n_probe=40, n_test=8, n_epochs=2))
    p = build_payload(run, make_maps(run), layer="x", method="f")
    assert p["thumbnails"] is None
