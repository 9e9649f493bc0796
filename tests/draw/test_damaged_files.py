"""A damaged run file fails ``epochscope render`` loudly, with what to do (each test failed before its fix).

The time-lapse read every epoch's test predictions (``--test-points``) and took any error as "none
recorded at this epoch": a truncated ``test_predictions.npy`` drew that frame's test points without a
single cross, as if the model got every one right. ``network.gif`` was left out with one info line
(silent without ``-v``) when a weights file could not be read. Every finished epoch of a run with a
test set holds its test predictions, and the network is drawn only when weights were recorded, so both
are damage: the render stops with the reader's message naming the file and ``epochscope check`` (what
:func:`epochscope.html.payload.damaged` says for the report). What a run really lacks (no weights
recorded) is still no error.
"""

from __future__ import annotations

import pytest
from synthetic import make_synthetic_run, truncate

import epochscope
from epochscope import RunError
from epochscope.cli import main


@pytest.fixture
def run_path(tmp_path):
    return make_synthetic_run(tmp_path / "run", n_probe=60, n_test=15, n_epochs=3)


def _render_cli(run_path, out, *extra: str) -> int:
    return main(["-q", "render", str(run_path), "--out", str(out), "--method", "pca", "--format", "gif", *extra])


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


DAMAGE = {
    # (file, render options): the test predictions are read for the time-lapse's test points
    "test predictions truncated": ("epochs/000001/test_predictions.npy", ("--test-points",)),
    "weights truncated": ("epochs/000001/weights.npz", ()),
    # Every other file render reads (each stopped with the reader's message alone, no `epochscope check`):
    # the confusion matrix and train + test map read the last epoch's test predictions, the forgetting
    # counts every epoch's probe predictions, the embedding the activations, the curves the metrics rows.
    "last test predictions truncated": ("epochs/000002/test_predictions.npy", ()),
    "probe predictions truncated": ("epochs/000001/predictions.npy", ()),
    "activations truncated": ("epochs/000001/probe/hidden-*.npy", ()),
    "test activations truncated": ("epochs/000001/test/hidden-*.npy", ()),
    "metrics row truncated": ("epochs/000001/metrics.json", ()),
    "probe labels truncated": ("probe/labels.npy", ()),
    "probe inputs truncated": ("probe/inputs.npy", ()),
}


def _damage(run_path, pattern: str) -> str:
    """Truncate the file ``pattern`` names (a layer's file name holds a hash); returns its path in the run."""
    (path,) = run_path.glob(pattern)
    truncate(path, 20 if path.suffix == ".json" else 50)
    return str(path.relative_to(run_path))


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_file_stops_the_render_naming_the_file_and_the_check(case, run_path, tmp_path, capsys):
    pattern, options = DAMAGE[case]
    rel = _damage(run_path, pattern)
    rc = _render_cli(run_path, tmp_path / "pics", *options)
    line = _one_line(capsys)
    assert rc == 2, line  # a damaged run is the input's fault (cli module doc)
    assert rel in line and ("truncated or corrupted" in line or "unreadable JSON" in line), line
    assert f"epochscope check {run_path}" in line and "--repair" in line, line
    assert line.count("epochscope check") == 1, line  # said once, however deep the reader sat


@pytest.mark.parametrize("case", list(DAMAGE))
def test_render_in_python_raises_for_a_damaged_file(case, run_path, tmp_path):
    pattern, options = DAMAGE[case]
    _damage(run_path, pattern)
    with pytest.raises(RunError, match=r"epochscope check .*--repair"):
        epochscope.render(run_path, tmp_path / "pics", method="pca", progress=False, test_points=bool(options))


def test_a_run_recorded_without_weights_still_renders_without_the_network(tmp_path, capsys):
    run_path = make_synthetic_run(tmp_path / "run", n_probe=60, n_test=15, n_epochs=3, weights=False)
    assert _render_cli(run_path, tmp_path / "pics", "--test-points") == 0, capsys.readouterr().err
    assert (tmp_path / "pics" / "timelapse.gif").exists() and not (tmp_path / "pics" / "network.gif").exists()


def test_weights_missing_at_some_epochs_are_left_out_not_damage(run_path, tmp_path):
    """Weights are optional per epoch: an epoch without weights.npz is left out of network.gif."""
    (run_path / "epochs/000001/weights.npz").unlink()
    paths = epochscope.render(run_path, tmp_path / "pics", method="pca", progress=False)
    assert "network.gif" in {p.name for p in paths}


# ------------------------------------------------------------------ epochscope network


def _flip_a_byte(path) -> None:
    """Damage an archive inside, its size kept: the member's checksum no longer matches."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _no_arrays(path) -> None:
    """An archive that holds no array (the writer never writes one: an epoch without weights has no file)."""
    import zipfile

    with zipfile.ZipFile(path, "w"):
        pass


NETWORK_DAMAGE = {
    "first weights truncated": ("epochs/000000/weights.npz", truncate),
    "middle weights truncated": ("epochs/000001/weights.npz", truncate),
    "last weights truncated": ("epochs/000002/weights.npz", truncate),
    "weights corrupted inside": ("epochs/000001/weights.npz", _flip_a_byte),
    # Was drawn without that epoch, one info line (silent with -q) saying it held no weights.
    "weights archive without arrays": ("epochs/000001/weights.npz", _no_arrays),
    "metrics row truncated": ("epochs/000001/metrics.json", lambda p: truncate(p, 20)),
}


@pytest.mark.parametrize("case", list(NETWORK_DAMAGE))
def test_a_damaged_file_stops_epochscope_network_naming_the_file_and_the_check(case, run_path, tmp_path, capsys):
    rel, damage = NETWORK_DAMAGE[case]
    damage(run_path / rel)
    out = tmp_path / "network.gif"
    rc = main(["-q", "network", str(run_path), "--out", str(out)])
    line = _one_line(capsys)
    assert rc == 2, line
    assert rel in line and f"epochscope check {run_path}" in line and "--repair" in line, line
    assert line.count("epochscope check") == 1, line
    assert not out.exists()  # no drawing that leaves the epoch out


def test_network_animation_in_python_raises_for_a_damaged_weights_file(run_path, tmp_path):
    truncate(run_path / "epochs/000001/weights.npz")
    with pytest.raises(RunError, match=r"epochs/000001/weights\.npz.*epochscope check .*--repair"):
        epochscope.network_animation(run_path, tmp_path / "network.gif", progress=False)


def test_check_reports_a_weights_archive_without_arrays(run_path):
    """What render and network send the user to must find the damage too."""
    _no_arrays(run_path / "epochs/000001/weights.npz")
    report = epochscope.check_run(run_path)
    assert any(f.path == "epochs/000001/weights.npz" and "no array" in f.message for f in report.problems), str(report)


# ------------------------------------------------------------------ a render that stops midway


def _pictures(out) -> dict:
    """Every entry under ``out`` (hidden ones too) with its inode and time: a file written again differs."""
    return {str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(out.rglob("*"))}


def test_a_render_that_stops_leaves_the_earlier_pictures_as_they_were(run_path, tmp_path, capsys):
    """The pictures drawn before the damaged file was read (frames, time-lapse, curves, ...) replaced
    the earlier render's one by one, and the stop said nothing of it: the folder mixed this run's new
    pictures with older ones. Now a render writes into a hidden folder and moves its pictures in only
    when all are drawn; a render that stops changes nothing."""
    out = tmp_path / "pics"
    assert _render_cli(run_path, out) == 0, capsys.readouterr().err
    before = _pictures(out)
    truncate(run_path / "epochs/000001/weights.npz")  # network.gif is drawn last
    # --smooth and --epoch: this render would add pictures the earlier one did not write
    assert _render_cli(run_path, out, "--smooth", "--epoch", "1") == 2
    line = _one_line(capsys)
    assert "epochs/000001/weights.npz" in line and f"{out} is left as it was" in line, line
    assert _pictures(out) == before  # not one picture written, nothing left behind


def test_the_next_render_removes_the_folder_a_killed_render_was_drawing_into(run_path, tmp_path, capsys):
    out = tmp_path / "pics"
    stage = out / ".render.4194303-abcdef.partial"  # a render's hidden folder; pid 4194303 runs no more
    (stage / "frames").mkdir(parents=True)
    (stage / "frames" / "epoch_000.png").write_bytes(b"a picture of a render that was killed")
    assert _render_cli(run_path, out, "--no-network") == 0, capsys.readouterr().err
    assert not stage.exists() and (out / "frames" / "epoch_000.png").is_file()
    assert not [p for p in out.iterdir() if ".partial" in p.name]


# ------------------------------------------------------------------ what network.gif leaves out is said


def _gif_frames(path) -> int:
    from PIL import Image

    with Image.open(path) as gif:
        return gif.n_frames


def test_weights_at_middle_epochs_only_are_drawn_saying_which_are_left_out(tmp_path, capsys):
    """Only the first and last epoch were asked whether they hold weights: a run holding them at
    middle epochs got no network.gif and no word."""
    run_path = make_synthetic_run(tmp_path / "run", n_probe=60, n_test=15, n_epochs=4)
    for epoch in (0, 3):
        (run_path / f"epochs/00000{epoch}/weights.npz").unlink()
    assert _render_cli(run_path, tmp_path / "pics") == 0
    assert _gif_frames(tmp_path / "pics" / "network.gif") == 2  # epochs 1 and 2
    line = _one_line(capsys)  # as `epochscope check` warns of each epoch without weights
    assert "epochs 0, 3" in line and "no weights" in line and f"epochscope check {run_path}" in line, line


def test_weights_that_form_no_one_chain_are_said_not_drawn_in_part(tmp_path, capsys):
    """A second head (l3, as l2 fed by l1): the chain l1 -> l2 was drawn as the whole network,
    and a network refused for its weights was one info line (silent under -q)."""
    import numpy as np

    from epochscope.run import open_run

    run_path = make_synthetic_run(tmp_path / "run", n_probe=60, n_test=15, n_epochs=2)
    for epoch in open_run(run_path).epochs:
        path = run_path / f"epochs/{epoch:06d}/weights.npz"
        with np.load(path) as held:
            arrays = dict(held)
        np.savez(path, **arrays, **{"l3.weight": np.ones((3, 5), np.float32)})
    assert _render_cli(run_path, tmp_path / "pics") == 0  # the other pictures are drawn
    assert not (tmp_path / "pics" / "network.gif").exists()
    line = _one_line(capsys)
    assert "no network.gif" in line and "leave out l3 (3, 5)" in line, line
    assert f"epochscope network {run_path} --layers" in line, line
