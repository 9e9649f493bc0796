"""epochscope.report and `epochscope report` end to end, with the real embedder (PCA: no numba)."""

import json

import pytest
from synthetic import make_synthetic_run

import epochscope
from epochscope.cli import main


@pytest.fixture(scope="module")
def run_path(tmp_path_factory):
    return make_synthetic_run(tmp_path_factory.mktemp("r") / "run", n_probe=90, n_test=12, n_epochs=4)


def payload_of(path):
    text = path.read_text(encoding="utf-8")
    return json.loads(text.split('id="epochscope-data">', 1)[1].split("</script>", 1)[0])


def test_report_writes_one_html_file(run_path, tmp_path):
    out = epochscope.report(run_path, tmp_path / "sub" / "r.html", method="pca", progress=False)
    assert out == tmp_path / "sub" / "r.html" and out.exists()
    data = payload_of(out)
    assert data["epochs"] == [0, 1, 2, 3] and data["info"]["method"] == "pca" and data["info"]["layer"] == "hidden"
    assert data["probe"]["count"] == 90 and data["test"]["count"] == 12
    assert data["thumbnails"]["count"] == 102 and data["network"]["available"]
    assert data["quality"]["series"]["trustworthiness"][0] is not None
    assert [p.name for p in out.parent.iterdir()] == ["r.html"]  # no temporary file left


def test_report_max_points(run_path, tmp_path):
    out = epochscope.report(epochscope.open_run(run_path), tmp_path / "r.html", method="pca", max_points=30,
                            progress=False)
    data = payload_of(out)
    assert data["probe"]["count"] == 30 and data["test"]["count"] == 12 and data["info"]["shownPoints"] == 30


@pytest.mark.parametrize("kwargs,match", [
    ({"out": "r.png"}, "html"), ({"max_points": 0}, "max_points"), ({"layer": "nope"}, "hidden"),
    ({"method": "nope"}, "pca"),
])
def test_report_bad_arguments(run_path, tmp_path, kwargs, match):
    kwargs = {"out": tmp_path / "r.html", **kwargs}
    with pytest.raises(ValueError, match=match):
        epochscope.report(run_path, progress=False, **kwargs)


def test_cli_report(run_path, tmp_path, capsys):
    out = tmp_path / "cli.html"
    assert main(["--quiet", "report", str(run_path), "--out", str(out), "--method", "pca", "--max-points", "50"]) == 0
    assert "report written to" in capsys.readouterr().out
    assert payload_of(out)["probe"]["count"] == 50


def test_cli_report_errors_are_one_line(run_path, tmp_path, capsys):
    assert main(["report", str(run_path), "--out", str(tmp_path / "x.txt"), "--method", "pca"]) == 1
    assert "error: out must name an .html file" in capsys.readouterr().err
