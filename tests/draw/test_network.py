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


def marker(frame):  # the black ring at the frame's epoch (#222222)
    return (np.abs(frame - 0x22).max(axis=2) < 20)


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
    curve = (slice(30, 400), slice(40, 370))  # the curve panel
    still = np.logical_and.reduce([marker(f[curve]) for f in frames])  # dark in every frame: text, spines
    xs = []
    for f in frames:
        ys_, xs_ = np.nonzero(marker(f[curve]) & ~still)
        assert len(xs_) > 20, "the black marker is missing from the curve panel"
        xs.append(xs_.mean())
    assert all(b > a + 10 for a, b in zip(xs, xs[1:]))


def test_the_curves_use_the_colours_of_curves_png(animated):
    from epochscope.colors import CURVE_COLORS, hex_to_rgb

    _, _, frames = animated
    panel = frames[-1][40:380, 60:360]
    for role in ("train", "val"):
        colour = hex_to_rgb([CURVE_COLORS[role]])[0] * 255
        assert (np.abs(panel - colour).max(axis=2) < 25).sum() > 50, role
    orange = hex_to_rgb(["#ff7f0e"])[0] * 255
    assert (np.abs(panel - orange).max(axis=2) < 25).sum() == 0  # validation is red, as in curves.png


def test_one_epoch_shows_as_long_as_in_the_time_lapse(animated):
    _, out, _ = animated
    with Image.open(out) as gif:
        assert gif.info["duration"] == 500


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
    # The same picture (blitting draws the moving parts over a saved background, and the animation
    # stamps its changing text with Pillow where the display lets matplotlib draw it: a few edge and
    # glyph pixels differ).
    assert (np.abs(shown - frame).max(axis=2) > 40).mean() < 0.006
    assert display.epoch == 3 and len(display.edges_.get_segments()) == 8


# ------------------------------------------------------------------ layout: nothing clipped, nothing overlapping


def cnn_weights(epochs: int = 3, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """The classic MNIST CNN's weights (conv2D_1..4, hidden after a flatten, end), growing a little."""
    rng = np.random.default_rng(seed)
    shapes = {"conv2D_1.weight": (32, 1, 3, 3), "conv2D_2.weight": (32, 32, 3, 3), "conv2D_3.weight": (64, 32, 3, 3),
              "conv2D_4.weight": (64, 64, 3, 3), "hidden.weight": (512, 64 * 16), "end.weight": (10, 512)}
    base = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
    return [{k: v * (1 + 0.05 * t * rng.random(v.shape).astype(np.float32)) for k, v in base.items()}
            for t in range(epochs)]


def text_boxes(fig, animated=()):
    """Window extents of every text matplotlib actually draws on ``fig`` (labels, legends, ticks,
    titles), found by watching the renderer; ``animated`` artists are drawn after the canvas."""
    renderer = fig.canvas.get_renderer()
    drawn = {}
    real = renderer.draw_text

    def spy(gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if mtext is not None and s.strip():
            drawn[id(mtext)] = mtext
        return real(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    renderer.draw_text = spy
    try:
        fig.canvas.draw()
        for artist in animated:
            fig.draw_artist(artist)
    finally:
        del renderer.draw_text
    return [(t.get_text(), t.get_window_extent(renderer)) for t in drawn.values()]


def assert_no_clip_no_overlap(fig, animated=()):
    boxes = text_boxes(fig, animated)
    assert len(boxes) > 10
    W, H = fig.bbox.width, fig.bbox.height
    for text, bb in boxes:
        assert bb.x0 >= -0.5 and bb.y0 >= -0.5 and bb.x1 <= W + 0.5 and bb.y1 <= H + 0.5, f"{text!r} clipped: {bb}"
    for i, (ta, a) in enumerate(boxes):
        for tb, b in boxes[i + 1:]:
            ov_w = min(a.x1, b.x1) - max(a.x0, b.x0)
            ov_h = min(a.y1, b.y1) - max(a.y0, b.y0)
            assert ov_w <= 1 or ov_h <= 1, f"{ta!r} overlaps {tb!r}"


@pytest.mark.parametrize("figsize", [(6, 3), (8, 3), (6, 8), (12, 5), (40, 3), (40, 25)])
@pytest.mark.parametrize("net", ["iris", "cnn"])
def test_nothing_is_clipped_or_overlaps_at_any_accepted_size(net, figsize, synthetic_run):
    """Issue 15: --figsize 10 4 cut off the title and the top nodes; CNN layer labels ran together."""
    if net == "iris":
        w = [mlp_weights_iris(seed=s) for s in range(4)]
    else:
        w = cnn_weights(4)
    history = NetworkHistory.from_weights(range(4), w)
    metrics = {e: {"epoch": e, "accuracy": 0.5 + 0.1 * e, "val_accuracy": 0.45 + 0.1 * e} for e in range(4)}
    fig = NetworkFigure(history, metrics, figsize=figsize)
    try:
        fig.render(3)
        renderer = fig.fig.canvas.get_renderer()
        for t in fig.summary_texts + [fig.epoch_text]:  # animated: drawn per frame, not by canvas.draw
            assert t.get_text()
        assert_no_clip_no_overlap(fig.fig, animated=fig.summary_texts + [fig.epoch_text])
        # Every node lies inside the network's axes, whole.
        ax = fig.ax_net.get_window_extent(renderer)
        centres = fig.ax_net.transData.transform(history.node_xy)
        r = fig.node_radius
        assert (centres[:, 0] - r >= ax.x0 - 0.5).all() and (centres[:, 0] + r <= ax.x1 + 0.5).all()
        assert (centres[:, 1] - r >= ax.y0 - 0.5).all() and (centres[:, 1] + r <= ax.y1 + 0.5).all()
        # Labels and summaries stay off the nodes.
        for t in fig.column_texts + fig.summary_texts:
            bb = t.get_window_extent(renderer)
            inside = ((centres[:, 0] + r > bb.x0) & (centres[:, 0] - r < bb.x1)
                      & (centres[:, 1] + r > bb.y0) & (centres[:, 1] - r < bb.y1))
            assert not inside.any(), f"{t.get_text()!r} covers a node"
    finally:
        fig.close()


def mlp_weights_iris(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = (4, 5, 5, 5, 3)
    return {f"l{i + 1}.weight": rng.normal(size=(b, a)).astype(np.float32) for i, (a, b) in enumerate(zip(sizes, sizes[1:]))}


def test_sizes_below_the_smallest_readable_one_are_refused(tmp_path, synthetic_run):
    from epochscope.cli import main

    with pytest.raises(ValueError, match=r"between 6 x 3 and 40 x 25 inches.*got 5 x 4"):
        network_animation(synthetic_run, tmp_path / "n.gif", figsize=(5, 4), progress=False)
    assert main(["network", str(synthetic_run), "--out", str(tmp_path / "n.gif"), "--figsize", "10", "2"]) == 2
    assert not (tmp_path / "n.gif").exists()


def test_a_conv_net_is_drawn_with_few_graded_edges_and_layer_summaries():
    history = NetworkHistory.from_weights(range(3), cnn_weights(3))
    assert history.counts == (1, 32, 32, 32, 32, 32, 10)
    fig = NetworkFigure(history, {})
    try:
        fig.render(2)
        per_layer = np.bincount(history.frame(2).link)
        assert per_layer.max() <= 64  # two per node of a 32-node column, not 150
        widths = np.asarray(fig.edges.get_linewidths())
        assert widths.max() > 2.5 * widths.min()  # clearly graded
        texts = [t.get_text() for t in fig.summary_texts]
        assert len(texts) == 6 and all("%" in t for t in texts)
        labels = [t.get_text() for t in fig.column_texts]
        assert labels[0].startswith("input") and "conv2D_4" in labels[4] and "(32 groups)" in labels[5]
    finally:
        fig.close()


def test_a_change_that_rounds_to_zero_reads_plus_zero_not_minus_zero():
    from synthetic import mlp_weights

    w0 = mlp_weights((4, 5, 3))
    w1 = {k: v * (1 - 1e-5) for k, v in w0.items()}  # shrank by 0.001 %: "-0.0%" would read as a loss
    fig = NetworkFigure(NetworkHistory.from_weights([0, 1], [w0, w1]), {})
    try:
        fig.render(1)
        texts = [t.get_text() for t in fig.summary_texts]
        assert texts and all(t.endswith("+0.0%") for t in texts), texts
    finally:
        fig.close()


@pytest.mark.parametrize("figsize, why", [((5, 3), "smaller cannot hold the labels"),
                                          ((1000, 1000), "bigger than any screen"),
                                          ((float("nan"), 4), "finite")])
def test_figsize_out_of_range_says_which_way(figsize, why):
    from epochscope.draw.network import _check_figsize

    with pytest.raises(ValueError, match=why) as err:
        _check_figsize(figsize)
    assert ("cannot hold the labels" in str(err.value)) == (why.startswith("smaller"))


# ------------------------------------------------------------------ the epoch line and the curve's legend


def _rising_curves(epochs: int = 8):
    """An MLP's history and rising accuracy curves: the legend goes to the lower right, where the
    epoch line passes over the last epochs."""
    history = NetworkHistory.from_weights(range(epochs), [mlp_weights_iris(seed=s) for s in range(epochs)])
    metrics = {e: {"epoch": e, "accuracy": 0.5 + 0.06 * e, "val_accuracy": 0.45 + 0.06 * e} for e in range(epochs)}
    return history, metrics


def _legend_box(ax, renderer):
    """The curve legend's box where it is drawn now (read before the epoch line moves: matplotlib's
    "best" place is sought again at every look, and counts the line as data)."""
    return ax.get_legend().get_window_extent(renderer).frozen()


def _region(pixels, box):
    h = pixels.shape[0]
    return pixels[int(np.ceil(h - box.y1)):int(h - box.y0), int(np.ceil(box.x0)):int(box.x1)]


def _line_inside(ax, x, box) -> bool:
    line_x = ax.transData.transform((x, 0))[0]
    return box.x0 + 1 < line_x < box.x1 - 1


def test_the_epoch_line_never_crosses_the_curve_legend():
    """The grey epoch line was blitted over the static background, legend included: at the epochs it
    passed through the legend, it ran through 'training' and 'validation'. The legend lies above the
    line now: its box reads the same in every frame, wherever the line is."""
    history, metrics = _rising_curves()
    drawing = NetworkFigure(history, metrics)
    try:
        box = _legend_box(drawing.ax_curve, drawing.fig.canvas.get_renderer())  # as the background drew it
        regions = [(_region(drawing.render(i), box), _line_inside(drawing.ax_curve, e, box))
                   for i, e in enumerate(history.epochs)]
    finally:
        drawing.close()
    clear = [r for r, inside in regions if not inside]
    crossed = [r for r, inside in regions if inside]
    assert clear and crossed, "the line should pass both beside and through the legend's box in this run"
    for region in crossed:
        assert (region == clear[0]).all()


def test_the_still_picture_keeps_the_legend_in_place_and_above_the_line():
    """NetworkDisplay draws one frame with matplotlib (no blitting): the legend stays where the
    animation has it, whatever the epoch (it moved away from the line, frame by frame), and lies
    above the line where the line passes it."""
    from epochscope import NetworkDisplay

    history, metrics = _rising_curves()
    regions = []
    for index, epoch in enumerate(history.epochs):
        display = NetworkDisplay(history=history, metrics=metrics, index=index).plot()
        fig = display.figure_
        fig.canvas.draw()
        pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
        box = _legend_box(display.ax_curve_, fig.canvas.get_renderer())
        regions.append((_region(pixels, box), _line_inside(display.ax_curve_, epoch, box), box.bounds))
    assert len({bounds for _, _, bounds in regions}) == 1, "the legend moved between epochs"
    clear = [r for r, inside, _ in regions if not inside]
    crossed = [r for r, inside, _ in regions if inside]
    assert clear and crossed
    for region in crossed:
        assert (region == clear[0]).all()


def test_the_display_of_an_epoch_lacking_a_layer_says_so(tmp_path):
    """An epoch left out for lacking a layer of the chain is not called an epoch without weights."""
    from epochscope import NetworkDisplay

    run_path = make_synthetic_run(tmp_path / "run", n_epochs=3)
    path = run_path / "epochs/000000/weights.npz"
    with np.load(path) as held:
        np.savez(path, **{k: v for k, v in held.items() if not k.startswith("l2.")})
    with pytest.raises(ValueError, match=r"epoch 0 lacks layer l2 of the chain l1 -> l2, so it is not drawn; "
                                         r"epochs drawn: 1\.\.2 \(2\).*layers="):
        NetworkDisplay.from_run(run_path, epoch=0)
    assert NetworkDisplay.from_run(run_path, epoch=0, layers=["l1"]).epoch == 0
    assert NetworkDisplay.from_run(run_path).history.sizes == (4, 5, 3)
