"""Every entry point that reads a run says what to do about a damaged file (each test failed before its fix).

``epochscope embed``, ``epochscope report`` (and their Python functions) and the notebook's network
display stopped on a truncated activations or weights file with the reader's message alone: the file
named, nothing about ``epochscope check``, which says what is damaged and what ``--repair`` mends.
Render already said it (tests/draw/test_damaged_files.py); a render that embeds must still say that
the render stops, not that the maps are not made.
"""

from __future__ import annotations

import pytest
from synthetic import make_synthetic_run, truncate

import epochscope
from epochscope import RunError
from epochscope.cli import main


@pytest.fixture
def run_path(tmp_path):
    path = make_synthetic_run(tmp_path / "run", n_probe=60, n_test=15, n_epochs=3)
    (activations,) = path.glob("epochs/000001/probe/hidden-*.npy")
    truncate(activations)
    return path


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(("command", "stops"), [
    (["embed", "--method", "pca"], "the maps are not made"),
    (["report", "--method", "pca", "--out", "OUT/r.html"], "the report is not written"),
    (["render", "--method", "pca", "--out", "OUT"], "the render stops"),
])
def test_a_damaged_activations_file_stops_each_command_with_the_check(command, stops, run_path, tmp_path, capsys):
    args = [a.replace("OUT", str(tmp_path / "out")) for a in command]
    rc = main(["-q", args[0], str(run_path), *args[1:]])
    line = _one_line(capsys)
    assert rc == 2, line
    assert "epochs/000001/probe/hidden-" in line and "truncated or corrupted" in line, line
    assert f"{stops}" in line and line.count("epochscope check") == 1, line
    assert f"`epochscope check {run_path}`" in line and "--repair" in line, line
    assert not (tmp_path / "out" / "r.html").exists()


def test_the_python_functions_raise_the_same(run_path, tmp_path):
    with pytest.raises(RunError, match=r"the maps are not made.*epochscope check .*--repair"):
        epochscope.embed(run_path, method="pca", progress=False)
    with pytest.raises(RunError, match=r"the report is not written.*epochscope check .*--repair"):
        epochscope.report(run_path, tmp_path / "r.html", method="pca", progress=False)


def test_the_notebook_network_display_names_the_check(tmp_path):
    from epochscope.draw.network import NetworkDisplay

    path = make_synthetic_run(tmp_path / "run", n_probe=60, n_test=15, n_epochs=3)
    truncate(path / "epochs/000001/weights.npz")
    with pytest.raises(RunError, match=r"weights.npz.*the network is not drawn.*epochscope check .*--repair"):
        NetworkDisplay.from_run(path)


@pytest.mark.parametrize(("command", "damaged", "stops"), [
    (["export", "tensorboard", "RUN", "--out", "OUT"], "epochs/000002/metrics.json", "the export is not written"),
    (["export", "tensorboard", "RUN", "--out", "OUT", "--epochs", "1"], "epochs/000001/probe/hidden-*.npy",
     "the export is not written"),
    (["info", "RUN"], "manifest.json", "the run's summary is not printed"),
    (["export", "tensorboard", "RUN", "--out", "OUT"], "manifest.json", "the export is not written"),
])
def test_export_and_info_name_the_check_too(command, damaged, stops, tmp_path, capsys):
    """Before: the reader's message alone ("metrics.json: unreadable JSON (...)"), nothing about
    `epochscope check`; the export wrote nothing, info printed nothing."""
    pytest.importorskip("tensorboard")
    path = make_synthetic_run(tmp_path / "run", n_probe=60, n_test=15, n_epochs=3)
    (target,) = path.glob(damaged)
    truncate(target)
    rc = main(["-q", *[a.replace("RUN", str(path)).replace("OUT", str(tmp_path / "tb")) for a in command]])
    line = _one_line(capsys)
    assert rc == 2, line
    assert damaged.split("*")[0] in line and stops in line and line.count("epochscope check") == 1, line
    assert f"`epochscope check {path}`" in line, line
    assert not (tmp_path / "tb").exists()
    assert capsys.readouterr().out == ""
