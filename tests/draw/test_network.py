"""The network animation: frames, sizes, colours that change, the marker that walks along the curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic import make_synthetic_run

from epochscope import RunError
from epochscope.draw.network import NetworkFigure, network_animation
from epochscope.network import NetworkHistory, NetworkSettings
from epochscope.run import open_run


def gif_frames(path: Path) -> list[np.ndarray]:
    im = Image.open(path)
    frames = []
    for i in range(im.n_frames):
        im.seek(i)
        frames.append(np.asarray(im.convert("RGB")).astype(int))
    return frames


def red_edges(frame):  # the "grew" end of the colour map (#b2182b), not the marker's pure red
    r, g, b = frame[..., 0], frame[..., 1], frame[..., 2]
    return (r > 140) & (r < 215) & (g < 90) & (b < 100)


def blue_edges(frame):
    r, g, b = frame[..., 0], frame[..., 1], frame[..., 2]
    return (b > 130) & (r < 90) & (g < 140)


def marker(frame):
    r, g, b = frame[..., 0], frame[..., 1], frame[..., 2]
    return (r > 230) & (g < 40) & (b < 40)


@pytest.fixture(scope="module")
def animated(tmp_path_factory):
    """A synthetic 4-5-3 run of 5 epochs (l1 weights grow 10 % per epoch, l2 shrink 5 %) and its GIF."""
    root = tmp_path_factory.mktemp("net")
    run = make_synthetic_run(root / "run")
    out = network_animation(run, root / "network.gif", progress=False)
    return run, out, gif_frames(out)


def test_one_frame_per_epoch_at_the_figure_size(animated):
    run, out, frames = animated
    assert out.exists() and out.suffix == ".gif"
    assert len(frames) == len(open_run(run).epochs) == 5
    assert frames[0].shape == (500, 1200, 3)


def test_grown_layer_is_red_shrunk_layer_is_blue_and_colours_change(animated):
    _, _, frames = animated
    # The network panel (x 432..1176 px, hidden column at ~804 px), above the colour bar and legend.
    first, later = frames[0][:420, 440:1170], frames[2][:420, 440:1170]
    # Frame 0 against "previous" has no change: neither end of the colour map on the edges.
    assert red_edges(first).sum() < 50 and blue_edges(first).sum() < 50
    # l1 (input -> hidden, left half of the network) grew: red; l2 (right half) shrank: blue.
    left, right = later[:, 20:350], later[:, 380:710]
    assert red_edges(left).sum() > 500 and red_edges(left).sum() > 5 * blue_edges(left).sum()
    assert blue_edges(right).sum() > 500 and blue_edges(right).sum() > 5 * red_edges(right).sum()


def test_the_marker_walks_along_the_curve(animated):
    _, _, frames = animated
    curve = slice(0, 420)
    xs = []
    for f in frames:
        ys_, xs_ = np.nonzero(marker(f[:, curve]))
        assert len(xs_) > 20, "red marker missing from the curve panel"
        xs.append(xs_.mean())
    assert all(b > a + 10 for a, b in zip(xs, xs[1:]))


def test_figure_has_one_column_of_nodes_per_layer(synthetic_run):
    history = NetworkHistory.from_run(open_run(synthetic_run))
    fig = NetworkFigure(history, {r["epoch"]: r for r in open_run(synthetic_run).metrics})
    try:
        xy = fig.nodes.get_offsets()
        assert len(xy) == 4 + 5 + 3
        assert len(np.unique(np.round(xy[:, 0], 6))) == 3
        fig.update(3)
        assert len(fig.edges.get_segments()) == 4 * 5 + 5 * 3
        assert fig.epoch_text.get_text() == "epoch 3"
        assert list(fig.marker.get_xdata()) == [3]
    finally:
        fig.close()


def test_top_k_and_reference_initial(tmp_path, synthetic_run):
    history = NetworkHistory.from_run(open_run(synthetic_run))
    settings = NetworkSettings(reference="initial", top_k=3)
    fig = NetworkFigure(history, {}, settings, figsize=(8, 4))
    try:
        pixels = fig.render(4)
        assert pixels.shape == (400, 800, 3)
        assert len(fig.edges.get_segments()) == 6  # 3 per layer
    finally:
        fig.close()


def test_mp4_and_figsize(tmp_path, synthetic_run):
    pytest.importorskip("imageio_ffmpeg")
    out = network_animation(synthetic_run, tmp_path / "net.mp4", figsize=(6, 3), fps=5, progress=False)
    from media import read_mp4

    frames = read_mp4(out)
    assert len(frames) == 5 and frames[0].shape[:2] == (300, 600)


def test_bad_arguments_fail_before_drawing(tmp_path, synthetic_run):
    with pytest.raises(ValueError, match="suffix"):
        network_animation(synthetic_run, tmp_path / "net.png", progress=False)
    with pytest.raises(ValueError, match="reference"):
        network_animation(synthetic_run, tmp_path / "n.gif", reference="first", progress=False)
    with pytest.raises(ValueError, match="fps"):
        network_animation(synthetic_run, tmp_path / "n.gif", fps=0, progress=False)
    with pytest.raises(ValueError, match="figsize"):
        network_animation(synthetic_run, tmp_path / "n.gif", figsize=(0, 3), progress=False)
    with pytest.raises(ValueError, match="layer 'l1'.*has 5 outputs"):
        network_animation(synthetic_run, tmp_path / "n.gif", shape=(4, 6, 3), progress=False)
    assert not list(tmp_path.glob("*.gif"))


def test_a_run_without_weights_says_how_to_record_them(tmp_path):
    run = make_synthetic_run(tmp_path / "run", weights=False, n_epochs=2)
    with pytest.raises(RunError, match="weights='auto'"):
        network_animation(run, tmp_path / "n.gif", progress=False)


def test_cli_network(tmp_path, synthetic_run):
    from epochscope.cli import main

    out = tmp_path / "cli.gif"
    assert main(["-q", "network", str(synthetic_run), "--out", str(out), "--top-k", "4", "--top-by", "change",
                 "--reference", "initial", "--figsize", "6", "3", "--fps", "4"]) == 0
    frames = gif_frames(out)
    assert len(frames) == 5 and frames[0].shape == (300, 600, 3)
    assert main(["-q", "network", str(synthetic_run), "--out", str(tmp_path / "x.gif"), "--shape", "4", "9", "3"]) == 2


def test_the_display_shows_the_animation_frame(synthetic_run):
    import io

    from epochscope import NetworkDisplay

    run = open_run(synthetic_run)
    display = NetworkDisplay.from_run(run, epoch=3, reference="initial", top_k=4)
    history = NetworkHistory.from_run(run)
    fig = NetworkFigure(history, {r["epoch"]: r for r in run.metrics}, NetworkSettings(reference="initial", top_k=4))
    try:
        frame = fig.render(3)
    finally:
        fig.close()
    with Image.open(io.BytesIO(display._repr_png_())) as image:
        shown = np.asarray(image.convert("RGB")).astype(int)
    assert shown.shape == frame.shape == (500, 1200, 3)
    # The same picture (blitting draws the moving parts over a saved background: a few edge pixels differ).
    assert (np.abs(shown - frame).max(axis=2) > 40).mean() < 0.002
    assert display.epoch == 3 and len(display.edges_.get_segments()) == 8
