"""write_report: the report for maps already in hand (hand-made here; no embedder runs)."""

import json

import numpy as np
import pytest
from reportdata import XSS_LAYER, make_maps, make_report_run
from synthetic import make_synthetic_run
from test_encode import unpack

import epochscope
from epochscope import open_run
from epochscope.html.report import write_report


def payload_of(path):
    text = path.read_text(encoding="utf-8")
    return json.loads(text.split('id="epochscope-data">', 1)[1].split("</script>", 1)[0])


def script_of(path):
    return path.read_text(encoding="utf-8").rsplit("<script>", 1)[1].split("</script>", 1)[0]


def test_write_report_writes_one_html_file(report_run, tmp_path):
    run, maps = report_run
    out = write_report(run.path, maps, tmp_path / "sub" / "r.html", layer=XSS_LAYER, method="fake")  # a path works
    assert out == tmp_path / "sub" / "r.html" and out.exists()
    data = payload_of(out)
    assert data["epochs"] == run.epochs and data["info"]["method"] == "fake" and data["info"]["layer"] == XSS_LAYER
    assert data["probe"]["count"] == 200 and data["test"]["count"] == 40
    assert data["thumbnails"]["count"] == 240 and data["network"]["available"]
    assert {s["key"]: s for s in data["quality"]["series"]}["trustworthiness"]["values"][0] == pytest.approx(0.7)
    assert data["confusionSplit"] == "test"
    assert [p.name for p in out.parent.iterdir()] == ["r.html"]  # no temporary file left


def test_write_report_max_points(report_run, tmp_path):
    run, maps = report_run
    data = payload_of(write_report(run, maps, tmp_path / "r.html", layer="h", method="fake", max_points=30))
    assert data["probe"]["count"] == 30 and data["test"]["count"] == 30 and data["info"]["shownPoints"] == 30


@pytest.mark.parametrize("kwargs,match", [({"out": "r.png"}, r"\.html"), ({"max_points": 0}, "max_points"),
                                          ({"max_points": 2.5}, "max_points")])
def test_write_report_bad_arguments(report_run, tmp_path, kwargs, match):
    run, maps = report_run
    kwargs = {"out": "r.html", **kwargs}
    kwargs["out"] = tmp_path / "new" / kwargs["out"]
    with pytest.raises(ValueError, match=match):
        write_report(run, maps, layer="h", method="fake", **kwargs)
    assert not (tmp_path / "new").exists()  # nothing written


def test_the_test_hook_is_only_in_reports_built_for_tests(report_run, tmp_path):
    run, maps = report_run
    plain = script_of(write_report(run, maps, tmp_path / "plain.html", layer="h", method="fake"))
    hooked = script_of(write_report(run, maps, tmp_path / "test.html", layer="h", method="fake", test_hook=True))
    assert "window.epochscope" not in plain and "drawTime" not in plain
    assert "window.epochscope = {" in hooked and hooked.startswith(plain.removesuffix("})();\n"))


def test_report_of_a_run_without_images_or_test_maps(tmp_path):
    run = open_run(make_report_run(tmp_path / "run", images=False, n_probe=40, n_test=8, n_epochs=2))
    data = payload_of(write_report(run, make_maps(run, test=False), tmp_path / "r.html", layer="h", method="f"))
    assert data["thumbnails"] is None and data["test"] is None
    # The maps show no test points, yet the matrix still counts the run's test set, as confusion.png does.
    assert data["confusionSplit"] == "test"


def test_epochscope_report_end_to_end(tmp_path):
    """One pass through the public ``epochscope.report`` (embed with PCA, then write_report): a
    report for people, without the test hook, whose matrix is confusion.png's."""
    from epochscope.draw.confusion import ConfusionDisplay

    run = open_run(make_synthetic_run(tmp_path / "run", n_probe=60, n_test=12, n_epochs=3))
    out = epochscope.report(run, tmp_path / "r.html", method="pca", progress=False)
    data = payload_of(out)
    assert data["epochs"] == [0, 1, 2] and data["info"]["layer"] == "hidden" and data["test"]["count"] == 12
    assert "window.epochscope" not in script_of(out)
    assert np.array_equal(unpack(data["confusion"])[-1], ConfusionDisplay.from_run(run).counts)
