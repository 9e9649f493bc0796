import numpy as np
import pytest
from reportdata import CLASS_NAMES, XSS_LAYER, FakeMaps, make_maps, make_report_run
from test_encode import unpack

from epochscope import RunError, open_run
from epochscope.colors import class_colors_hex
from epochscope.html.payload import HIGHLIGHT_COUNT, build_payload
from epochscope.run import RunWriter


def test_payload_holds_every_epoch_point_and_class(report_run):
    run, maps = report_run
    p = build_payload(run, maps, layer=XSS_LAYER, method="fake")
    assert p["epochs"] == run.epochs and p["classNames"] == CLASS_NAMES
    assert len(p["colors"]) == len(CLASS_NAMES) and all(c.startswith("#") and len(c) == 7 for c in p["colors"])
    assert p["colors"] == class_colors_hex(len(CLASS_NAMES))  # as the static pictures (epochscope.colors)
    assert p["colors"][0] == "#1f77b4"  # tab10
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


def test_confusion_shows_the_test_set_as_confusion_png(report_run):
    """The report's matrix and confusion.png count the same split (the test set when there is one)."""
    from sklearn.metrics import confusion_matrix

    from epochscope.draw.confusion import ConfusionDisplay

    run, maps = report_run
    p = build_payload(run, maps, layer="x", method="fake")
    conf = unpack(p["confusion"])
    assert p["confusionSplit"] == "test" and p["confusionMissing"] == [0] * len(run.epochs)
    assert conf.shape == (len(run.epochs), 4, 4)
    assert (conf.sum(axis=(1, 2)) == run.manifest.test_size).all()
    for row, epoch in enumerate(run.epochs):  # an independent count at every epoch
        assert np.array_equal(conf[row], confusion_matrix(run.test_labels, run.test_predictions(epoch),
                                                          labels=range(4)))
    assert np.array_equal(conf[-1], ConfusionDisplay.from_run(run).counts)
    assert not np.array_equal(conf[-1], confusion_matrix(run.labels, run.predictions(run.epochs[-1]),
                                                         labels=range(4)))  # not the probe set


def probe_only_run(path, predictions, n_classes=3):
    """A run without a test set whose probe predictions are ``predictions`` ``(n_epochs, n)``."""
    labels = np.arange(predictions.shape[1]) % n_classes
    with RunWriter.open(path, framework="x", labels=labels, class_names=[f"c{c}" for c in range(n_classes)]) as w:
        w.declare_layer("h", (2,), 2, None)
        for epoch, pred in enumerate(predictions):
            with w.epoch(epoch) as ep:
                ep.set_activations("h", np.random.default_rng(epoch).normal(size=(len(labels), 2)))
                ep.set_predictions(pred)
    return open_run(path)


def test_confusion_without_test_set_counts_the_probe_set_and_missing_predictions(tmp_path):
    from sklearn.metrics import confusion_matrix

    from epochscope.draw.confusion import ConfusionDisplay

    rng = np.random.default_rng(0)
    pred = rng.integers(0, 3, size=(3, 30))
    pred[2, :4] = -1  # the model gave no prediction for four examples at the last epoch
    run = probe_only_run(tmp_path / "run", pred)
    p = build_payload(run, make_maps(run), layer="h", method="f")
    conf = unpack(p["confusion"])
    assert p["confusionSplit"] == "probe" and p["confusionMissing"] == [0, 0, 4]
    assert np.array_equal(conf[0], confusion_matrix(run.labels, pred[0], labels=range(3)))
    assert np.array_equal(conf[2], confusion_matrix(run.labels[4:], pred[2, 4:], labels=range(3)))
    png = ConfusionDisplay.from_run(run)
    assert np.array_equal(conf[2], png.counts) and png.unknown == 4


def test_predictions_outside_the_classes_are_told_apart_from_missing_ones(tmp_path):
    pred = np.zeros((2, 30), np.int64)
    pred[1, :3] = -1  # no prediction
    pred[1, 3:8] = 7  # a class the run does not name (a model with more outputs than classes)
    run = probe_only_run(tmp_path / "run", pred)
    p = build_payload(run, make_maps(run), layer="h", method="f")
    assert p["confusionMissing"] == [0, 8] and p["confusionOutside"] == [0, 5]
    points = unpack(p["probe"]["predictions"]).reshape(2, 30)
    assert (points[1, :3] == p["probe"]["unknownClass"]).all() and (points[1, 3:8] == p["probe"]["outsideClass"]).all()
    assert p["probe"]["outsideClass"] not in range(3)


def test_metrics_are_grouped_into_accuracy_and_loss_in_words_and_the_pictures_colours(report_run):
    from epochscope.colors import CURVE_COLORS

    run, maps = report_run
    m = build_payload(run, maps, layer="x", method="fake")["metrics"]
    assert [s["key"] for s in m["accuracy"]] == ["accuracy", "val_accuracy"]
    assert [s["name"] for s in m["accuracy"]] == ["training accuracy", "validation accuracy"]
    assert [s["name"] for s in m["loss"]] == ["training loss", "validation loss"]
    assert [s["color"] for s in m["loss"]] == [CURVE_COLORS["train"], CURVE_COLORS["val"]]  # as curves.png
    assert m["loss"][0]["values"][0] == pytest.approx(1.0) and m["epochs"] == run.epochs
    assert "epoch_seconds" not in [s["key"] for s in m["accuracy"] + m["loss"]]


def test_quality_in_words_and_nan_becomes_null(report_run):
    run, maps = report_run
    series = build_payload(run, maps, layer="x", method="fake")["quality"]["series"]
    by_key = {s["key"]: s for s in series}
    assert by_key["motion"]["values"][0] is None and by_key["motion"]["values"][1] == pytest.approx(0.2)
    assert by_key["trustworthiness"]["name"] == "map trustworthiness"
    assert by_key["cka_previous"]["name"] == "CKA to previous epoch"
    assert by_key["knn_accuracy_map"]["name"] == "kNN accuracy in the map"


def test_quality_keys_added_later_are_drawn_too(report_run):
    """Maps.quality gains separation figures (issue 13): the report draws whatever keys it holds."""
    run, maps = report_run
    q = dict(maps.quality, separation=np.linspace(0.1, 0.6, len(maps.epochs)),
             separation_layer=np.linspace(0.05, 0.3, len(maps.epochs)))
    p = build_payload(run, FakeMaps(maps.epochs, maps.coords, maps.test_coords, q, maps.bounds), layer="x", method="f")
    names = [s["name"] for s in p["quality"]["series"]]
    assert "class separation in the map" in names and "class separation in the layer" in names


def test_max_points_keeps_a_fixed_subset(report_run):
    run, maps = report_run
    a = build_payload(run, maps, layer="x", method="fake", max_points=50)
    b = build_payload(run, maps, layer="x", method="fake", max_points=50)
    idx = unpack(a["probe"]["index"])
    assert len(idx) == 50 and np.array_equal(idx, unpack(b["probe"]["index"]))
    assert np.all(np.diff(idx) > 0)
    assert np.array_equal(unpack(a["probe"]["labels"]), run.labels[idx])
    assert a["thumbnails"]["count"] == 50 + run.manifest.test_size  # test set (40) under the cap
    assert unpack(a["confusion"]).sum(axis=(1, 2))[0] == run.manifest.test_size  # confusion counts every example


def test_most_forgotten_are_points_with_events(report_run):
    run, maps = report_run
    p = build_payload(run, maps, layer="x", method="fake")["probe"]
    events = unpack(p["forgetting"])
    top = p["mostForgotten"]
    assert 0 < len(top) <= HIGHLIGHT_COUNT
    assert all(events[i] > 0 for i in top)
    assert events[top[0]] == events.max()


def test_most_forgotten_of_a_subset_follow_the_analysis_ranking(report_run):
    from epochscope.analysis import forgetting_events, most_forgotten

    run, maps = report_run
    p = build_payload(run, maps, layer="x", method="fake", max_points=60)["probe"]
    idx = unpack(p["index"])
    assert np.array_equal(unpack(p["forgetting"]), forgetting_events(run)[idx])
    ranked = [i for i in most_forgotten(run, run.manifest.probe_size) if i in set(idx.tolist())]
    assert p["mostForgotten"] and [int(idx[k]) for k in p["mostForgotten"]] == ranked[:HIGHLIGHT_COUNT]


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
    with pytest.raises(ValueError, match="max_points"):
        build_payload(run, maps, layer="x", method="f", max_points=0)
    with pytest.raises(RunError, match="no epoch"):
        build_payload(run, FakeMaps([], maps.coords[:0], None, {}, maps.bounds, {0: "NaN"}), layer="x", method="f")


def test_runs_without_images_have_no_thumbnails(tmp_path):
    run = open_run(make_report_run(tmp_path / "run", images=False, n_probe=40, n_test=8, n_epochs=2))
    p = build_payload(run, make_maps(run), layer="x", method="f")
    assert p["thumbnails"] is None


def test_curves_carry_the_colours_of_the_static_pictures(report_run):
    """Training blue and validation red as in curves.png, the quality curves as in quality.png:
    the colours come from epochscope.colors, none is picked in the viewer by position."""
    from epochscope.colors import CURVE_COLORS, QUALITY_COLORS

    run, maps = report_run
    p = build_payload(run, maps, layer="x", method="fake")
    colors = {s["key"]: s["color"] for s in p["metrics"]["accuracy"] + p["metrics"]["loss"]}
    assert colors["accuracy"] == colors["loss"] == CURVE_COLORS["train"]
    assert colors["val_accuracy"] == colors["val_loss"] == CURVE_COLORS["val"]
    quality = {s["key"]: s["color"] for s in p["quality"]["series"]}
    assert quality and all(quality[name] == color for name, color in QUALITY_COLORS.items() if name in quality)
    assert len(set(quality.values())) == len(quality)  # one colour per curve of the chart


def test_curves_of_one_role_get_distinct_colours(tmp_path):
    """Two training accuracies (``accuracy`` and ``top5_accuracy``) must not share blue: a reader
    could not tell them apart."""
    from epochscope.html.payload import _metrics

    class FakeRun:
        metrics = [{"epoch": 0, "accuracy": 0.5, "top5_accuracy": 0.8, "val_accuracy": 0.4}]

    colors = [s["color"] for s in _metrics(FakeRun())["accuracy"]]
    assert len(set(colors)) == 3
