"""What the command line prints (issue 15): progress on stderr, -q/-v anywhere, -v without other
libraries' chatter, a quiet `info --json | head`, dates and plurals, imported runs drawn, and a
--shape that does not match the model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from synthetic import make_synthetic_run

from epochscope import open_run
from epochscope.cli import main

SRC = Path(__file__).resolve().parents[2] / "src"


def cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m epochscope ARGS`` in a fresh process, stderr a pipe (not a terminal), as in a log."""
    full = {**os.environ, "PYTHONPATH": str(SRC), "EPOCHSCOPE_PROGRESS_DELAY": "0", **(env or {})}
    return subprocess.run([sys.executable, "-m", "epochscope", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=full)


@pytest.fixture(scope="module")
def run_path(tmp_path_factory) -> Path:
    return make_synthetic_run(tmp_path_factory.mktemp("cli") / "run", n_epochs=5)


def test_progress_of_every_long_step_goes_to_stderr(run_path, tmp_path):
    out = cli("render", run_path, "--out", tmp_path / "pics", "--method", "pca")
    assert out.returncode == 0, out.stderr
    err = out.stderr
    # Maps, frames and the network each say how far they are, on stderr, in lines a log can hold.
    for step in ("pca hidden: 5/5", "drawing frames: 5/5", "drawing network: 5/5"):
        assert step in err, err
    assert "\r" not in err  # not a terminal: whole lines, no redrawn bar
    assert "curves.png" in out.stdout and "drawing" not in out.stdout
    report = cli("report", run_path, "--out", tmp_path / "r.html", "--method", "pca")
    assert report.returncode == 0 and "writing r.html" in report.stderr


@pytest.mark.parametrize("flag", ["-q", "--quiet"])
def test_quiet_after_the_command_silences_progress_and_logs(run_path, tmp_path, flag):
    out = cli("render", run_path, "--out", tmp_path / "pics", "--method", "pca", flag)
    assert out.returncode == 0, out.stderr
    assert out.stderr == "" and out.stdout == ""
    before = cli(flag, "render", run_path, "--out", tmp_path / "pics2", "--method", "pca")
    assert before.returncode == 0 and before.stderr == ""


def test_verbose_after_the_command_shows_our_debug_log_only(run_path, tmp_path):
    out = cli("render", run_path, "--out", tmp_path / "pics", "--method", "pca", "-v")
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert any(line.startswith("timelapse") for line in lines)  # epochscope's own debug lines
    assert not [line for line in lines if "findfont" in line or "font_manager" in line]  # matplotlib's, not shown
    assert len(lines) < 200
    # -v also shows the traceback of an error.
    bad = cli("render", run_path, "--out", tmp_path / "x", "--layer", "nope", "--method", "pca", "-v")
    assert bad.returncode != 0 and "Traceback" in bad.stderr and "layer 'nope' not found" in bad.stderr


@pytest.mark.slow
def test_verbose_embed_prints_under_200_lines(run_path):
    """`epochscope -v embed RUN --no-cache` printed 40,689 lines of numba's compiler log."""
    pytest.importorskip("umap")
    out = cli("-v", "embed", run_path, "--no-cache", "--n-neighbors", "10", timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    total = len(out.stderr.splitlines()) + len(out.stdout.splitlines())
    assert total < 200, out.stderr[:3000]


def test_info_json_into_head_exits_quietly(tmp_path):
    # Enough classes that the JSON is larger than a pipe's buffer: head closes it early.
    run = make_synthetic_run(tmp_path / "run", n_classes=3, n_epochs=2)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["info"] = {"notes": ["x" * 100] * 3000}
    (run / "manifest.json").write_text(json.dumps(manifest))
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    pipe = subprocess.run(f"{sys.executable} -m epochscope info {run} --json | head -n 3", shell=True,
                          capture_output=True, text=True, env=env, timeout=120)
    assert pipe.stdout.splitlines()[0] == "{"
    assert pipe.stderr == "", pipe.stderr  # no BrokenPipeError traceback, no "Exception ignored"


def test_info_shows_a_date_and_says_one_epoch(tmp_path, capsys):
    run = make_synthetic_run(tmp_path / "run", n_epochs=1)
    metrics = json.loads((run / "epochs" / "000000" / "metrics.json").read_text())
    metrics.update({"wall_time": 1.796e9, "elapsed": 12.5})
    (run / "epochs" / "000000" / "metrics.json").write_text(json.dumps(metrics))
    assert main(["info", str(run)]) == 0
    text = capsys.readouterr().out
    assert "wall_time=2026-11-30 " in text and "UTC" in text and "1.796e+09" not in text
    assert "elapsed=12.5 s" in text
    assert "(1 finished)" in text


def test_render_says_one_frame_not_one_frames(tmp_path, capsys):
    run = make_synthetic_run(tmp_path / "run", n_epochs=1)
    assert main(["render", str(run), "--out", str(tmp_path / "pics"), "--method", "pca", "--no-network"]) == 0
    assert "(1 frame)" in capsys.readouterr().out


# ------------------------------------------------------------------ runs imported from checkpoints


def imported_run(path: Path, sizes=(4, 5, 3), n_epochs: int = 4, names=None) -> Path:
    """A run written by the importers' own writer: weights and metrics, a placeholder probe."""
    from epochscope.importers._common import write_imported_run

    rng = np.random.default_rng(0)
    names = names or [f"l{i + 1}" for i in range(len(sizes) - 1)]
    frames = []
    for e in range(n_epochs):
        w = {f"{n}.weight": rng.normal(size=(b, a)).astype(np.float32) for n, a, b in zip(names, sizes, sizes[1:])}
        frames.append((e + 1, w, {"loss": 1.0 / (e + 1), "accuracy": 0.5 + 0.1 * e, "val_accuracy": 0.45 + 0.1 * e}))
    return write_imported_run(path, framework="chainer", frames=frames, info={"imported_from": "chainer", "source": "x"})


def test_render_and_report_draw_what_an_imported_run_holds(tmp_path):
    run = imported_run(tmp_path / "run")
    out = cli("render", run, "--out", tmp_path / "pics")
    assert out.returncode == 0, out.stderr
    written = {Path(line).name for line in out.stdout.split()}
    assert written == {"curves.png", "network.gif"}
    skipped = [line for line in out.stderr.splitlines() if "skipped" in line]
    assert len(skipped) == 1 and "imported from chainer checkpoints" in skipped[0] and "no probe examples" in skipped[0]
    report = cli("report", run, "--out", tmp_path / "r.html")
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "r.html").read_text()
    data = json.loads(page.split('id="epochscope-data">', 1)[1].split("</script>", 1)[0])
    assert data["probe"] is None and data["confusion"] is None and data["network"]["available"]
    assert "imported from chainer checkpoints" in data["skippedNote"]
    assert [s["name"] for s in data["metrics"]["accuracy"]] == ["training accuracy", "validation accuracy"]


def test_info_shows_no_placeholder_as_data(tmp_path, capsys):
    run = imported_run(tmp_path / "run")
    assert main(["info", str(run)]) == 0
    text = capsys.readouterr().out
    assert "probe     none: imported from chainer checkpoints" in text
    assert "1 examples" not in text and "class 0" not in text
    assert "classes   3 outputs (names not recorded)" in text


def test_network_shape_that_does_not_match_the_model_is_an_error(tmp_path, capsys):
    run = imported_run(tmp_path / "run", sizes=(784, 64, 32, 10), names=["fc1", "fc2", "fc3"], n_epochs=2)
    assert main(["network", str(run), "--out", str(tmp_path / "n.gif"), "--shape", "64", "32", "10"]) == 2
    err = capsys.readouterr().err
    assert "leaves out fc1" in err and "784 64 32 10" in err
    assert not (tmp_path / "n.gif").exists()
    assert main(["-q", "network", str(run), "--out", str(tmp_path / "n.gif"), "--shape", "784", "64", "32", "10"]) == 0


def test_an_imported_run_renders_in_python_too(tmp_path, caplog):
    import epochscope

    run = imported_run(tmp_path / "run")
    with caplog.at_level("WARNING", logger="epochscope"):
        paths = epochscope.render(run, tmp_path / "pics", progress=False)
    assert sorted(p.name for p in paths) == ["curves.png", "network.gif"]
    assert len([r for r in caplog.records if "skipped" in r.getMessage()]) == 1
    assert open_run(run).epochs == [1, 2, 3, 4]


def test_characters_missing_from_the_font_are_told_once_and_quiet_means_quiet(tmp_path):
    """Class names in a script the font lacks (here a private-use character no font has):
    matplotlib warns once per character per place a text is laid out (24 lines for four CJK
    names); the command line says it in one line, and -q prints nothing."""
    from epochscope.run import RunWriter

    labels = np.arange(30) % 3
    with RunWriter.open(tmp_path / "run", framework="synthetic", labels=labels, class_names=["\ue000a", "\ue001b", "c"],
                        test_labels=labels[:9]) as w:
        w.declare_layer("hidden", (4,), 4, None)
        for epoch in range(2):
            with w.epoch(epoch) as ep:
                ep.set_activations("hidden", np.random.default_rng(epoch).normal(size=(30, 4)).astype(np.float32))
                ep.set_activations("hidden", np.random.default_rng(9).normal(size=(9, 4)).astype(np.float32), split="test")
                ep.set_predictions(labels)
                ep.set_predictions(labels[:9], split="test")
                ep.set_metrics({"loss": 1.0 / (epoch + 1), "accuracy": 0.5})
    quiet = cli("render", tmp_path / "run", "--out", tmp_path / "q", "--method", "pca", "--no-network", "-q")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    loud = cli("render", tmp_path / "run", "--out", tmp_path / "l", "--method", "pca", "--no-network")
    assert loud.returncode == 0, loud.stderr
    assert "Warning" not in loud.stderr, loud.stderr
    told = [line for line in loud.stderr.splitlines() if "font" in line]
    assert len(told) == 1 and "\\ue000" in told[0] and "\\ue001" in told[0], loud.stderr


def test_a_run_from_pytorch_checkpoints_is_not_called_checkpoints_checkpoints(tmp_path, capsys):
    """The PyTorch importer records ``imported_from: "pytorch checkpoints"``; info and the skipped
    note read "imported from pytorch checkpoints", once."""
    from epochscope.analysis import run_contents
    from epochscope.importers._common import write_imported_run

    w = {"fc.weight": np.ones((3, 4), np.float32)}
    run = write_imported_run(tmp_path / "run", framework="torch", frames=[(1, w, {"loss": 1.0})],
                             info={"imported_from": "pytorch checkpoints", "source": "x"})
    assert main(["info", str(run)]) == 0
    text = capsys.readouterr().out
    assert "imported from pytorch checkpoints, which" in text and "checkpoints checkpoints" not in text
    note = run_contents(open_run(run)).skipped_note()
    assert "imported from pytorch checkpoints, which" in note and "checkpoints checkpoints" not in note
