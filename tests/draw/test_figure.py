"""The library's own canvas: every Display shows itself as a real PNG, draws into the user's axes,
and nothing the library draws changes the user's matplotlib state (backend, figures, rcParams)."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic import make_synthetic_run

import epochscope
from epochscope.draw.figure import FrameDisplay, figure_png, new_figure, subfigure_at

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_and_maps(tmp_path_factory):
    run = epochscope.open_run(make_synthetic_run(tmp_path_factory.mktemp("r") / "run", layers=("hidden", "out"),
                                                 n_epochs=3))
    maps = [epochscope.embed(run, layer, method="pca", progress=False) for layer in run.layers]
    return run, maps


def displays(run, maps):
    """Every public Display, built from the run (and maps where the picture needs them), with the
    pixel size its picture must have."""
    return {
        "ConfusionDisplay": (epochscope.ConfusionDisplay.from_run(run), (450, 414)),
        "CurvesDisplay": (epochscope.CurvesDisplay.from_run(run), (1000, 400)),
        "ForgettingDisplay": (epochscope.ForgettingDisplay.from_run(run, maps[0]), (1100, 820)),
        "QualityDisplay": (epochscope.QualityDisplay.from_run(run, maps[0]), (800, 700)),
        "SamplesDisplay": (epochscope.SamplesDisplay.from_run(run), (870, 1000)),
        "LayerEpochGrid": (epochscope.LayerEpochGrid.from_run(run, maps), (760, 470)),
        "MapDisplay": (epochscope.MapDisplay.from_run(run, maps[0], epoch=1), (800, 600)),
        "Timelapse": (epochscope.Timelapse.from_run(run, maps[0], progress=False), (800, 600)),
        "TrainTestMapDisplay": (epochscope.TrainTestMapDisplay.from_run(run, maps[0]), (800, 600)),
        "NetworkDisplay": (epochscope.NetworkDisplay.from_run(run, epoch=1), (1200, 500)),
    }


def test_every_display_is_covered():
    names = {n for n in epochscope.__all__ if n.endswith("Display") or n in ("LayerEpochGrid", "Timelapse")}
    import inspect

    source = inspect.getsource(displays)
    assert names == set(re.findall(r'"(\w+)": \(epochscope\.', source))


def test_each_display_shows_itself_as_a_png_of_its_size(run_and_maps):
    run, maps = run_and_maps
    for name, (display, (width, height)) in displays(run, maps).items():
        png = display._repr_png_()  # draws the display first when it was not plotted yet
        assert png.startswith(PNG_SIGNATURE), name
        with Image.open(io.BytesIO(png)) as image:
            image.load()
            assert image.size == (width, height), name
            pixels = np.asarray(image.convert("RGB")).astype(int)
        assert pixels.std() > 10, f"{name}: an empty picture"  # something is drawn on the white page


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize("user_style", ["dark_background", "ggplot"])
def test_the_users_style_does_not_change_the_librarys_own_pictures(run_and_maps, user_style):
    """A picture of the library's own is white: under a user's dark style its titles, axis labels
    and class legend were drawn white on white (the legend's class names vanished)."""
    import matplotlib.style

    run, maps = run_and_maps
    folder = Path(run.path).parent
    plain = {name: _pixels(d._repr_png_()) for name, (d, _) in displays(run, maps).items()}
    plain["network.gif"] = _pixels(epochscope.network_animation(run, folder / "net.gif", progress=False).read_bytes())
    with matplotlib.style.context(user_style):
        styled = {name: _pixels(d._repr_png_()) for name, (d, _) in displays(run, maps).items()}
        gif = epochscope.network_animation(run, folder / f"net-{user_style}.gif", progress=False)
        styled["network.gif"] = _pixels(gif.read_bytes())
    for name, pixels in plain.items():
        assert styled[name].shape == pixels.shape, name
        assert np.array_equal(styled[name], pixels), f"{name}: drawn differently under the user's {user_style!r} style"


def test_plot_returns_the_display_with_its_artists_on_an_off_screen_figure(run_and_maps):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    run, maps = run_and_maps
    for name, (display, _) in displays(run, maps).items():
        assert display.plot() is display, name
        assert isinstance(display.figure_.canvas, FigureCanvasAgg), name
    network = epochscope.NetworkDisplay.from_run(run, epoch=1).plot()
    frame = network.history.frame(network.index, network.settings)
    assert len(network.edges_.get_segments()) == len(frame) and network.epoch_text_.get_text() == "epoch 1"
    np.testing.assert_allclose(network.edges_.get_colors()[:, :3], frame.colors())
    assert list(network.marker_.get_xdata()) == [1]


def test_displays_draw_into_the_users_axes(run_and_maps):
    import matplotlib.pyplot as plt

    run, maps = run_and_maps
    for name, (display, size) in displays(run, maps).items():
        fig, ax = plt.subplots(figsize=(9, 7))
        assert display.plot(ax=ax) is display, name
        assert display.figure_ is fig, name
        # A picture of several panels fills the place of the one Axes it was given.
        assert len(fig.axes) >= 1 and (ax in fig.axes) == (len(fig.subfigs) == 0), name
        with Image.open(io.BytesIO(figure_png(fig))) as image:
            assert image.size == (900, 700), name
        # A map's own picture stays its frame, whatever axes it was shown in.
        expected = size if isinstance(display, FrameDisplay) else (900, 700)
        with Image.open(io.BytesIO(display._repr_png_())) as image:
            assert image.size == expected, name
        plt.close(fig)


def test_subfigure_at_takes_the_axes_place():
    fig = new_figure((8, 4))
    left, right = fig.subplots(1, 2)
    sub = subfigure_at(right)
    assert right not in fig.axes and left in fig.axes
    axes = sub.subplots(2, 1)
    fig.canvas.draw()
    x0 = min(a.get_window_extent().x0 for a in axes)
    assert x0 > left.get_window_extent().x1  # the new panels sit where the right axes was
    placed = fig.add_axes((0.1, 0.1, 0.3, 0.3))  # by position, not on a grid
    np.testing.assert_allclose(subfigure_at(placed).bbox.bounds, (80, 40, 240, 120))


def test_a_map_display_is_the_time_lapse_frame(run_and_maps):
    run, maps = run_and_maps
    lapse = epochscope.Timelapse.from_run(run, maps[0], progress=False)
    one = epochscope.MapDisplay.from_run(run, maps[0], epoch=1)
    np.testing.assert_array_equal(one.image, lapse.frames[1])
    assert one.title == lapse.titles[1] and one.caption == lapse.captions[1]
    with Image.open(io.BytesIO(one._repr_png_())) as image:
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), lapse.frames[1])
    # On its own figure the frame is shown 1:1: the figure's pixels are the frame's.
    shown = lapse.plot(epoch=1)
    with Image.open(io.BytesIO(figure_png(shown.figure_))) as image:
        assert np.abs(np.asarray(image.convert("RGB")).astype(int) - lapse.frames[1]).max() <= 2
    with pytest.raises(ValueError, match="epoch 7"):
        epochscope.MapDisplay.from_run(run, maps[0], epoch=7)


def test_the_time_lapse_is_an_inline_animation(run_and_maps):
    run, maps = run_and_maps
    lapse = epochscope.Timelapse.from_run(run, maps[0], progress=False)
    html = lapse._repr_html_()
    data = base64.b64decode(re.search(r'src="data:image/gif;base64,([^"]+)"', html).group(1))
    with Image.open(io.BytesIO(data)) as gif:
        assert gif.n_frames == 3 and gif.size == (800, 600) and gif.info["duration"] == 500


def test_a_network_display_needs_an_epoch_with_weights(run_and_maps):
    run, _ = run_and_maps
    assert epochscope.NetworkDisplay.from_run(run).epoch == run.epochs[-1]
    with pytest.raises(ValueError, match="epoch 9 holds no weights"):
        epochscope.NetworkDisplay.from_run(run, epoch=9)


STATE_SCRIPT = r"""
import json, sys
import matplotlib
matplotlib.use(sys.argv[3])
user_pyplot = sys.argv[4] == "pyplot"
if user_pyplot:
    import matplotlib.pyplot as plt
    plt.figure()  # a figure of the user's own, which must survive
rc_before = {k: repr(v) for k, v in matplotlib.rcParams.items()}
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from synthetic import make_synthetic_run
import epochscope

out = Path(sys.argv[2])
run = make_synthetic_run(out / "run", layers=("hidden", "out"), n_epochs=3)
epochscope.network_animation(run, out / "net.gif", progress=False)
epochscope.render(run, out / "pics", method="pca", progress=False, smooth=True)
epochscope.NetworkDisplay.from_run(run)._repr_png_()
epochscope.CurvesDisplay.from_run(run).plot()._repr_png_()
changed = sorted(k for k, v in matplotlib.rcParams.items() if repr(v) != rc_before[k])
state = {"backend": matplotlib.get_backend(), "changed": changed,
         "pyplot_loaded": "matplotlib.pyplot" in sys.modules}
if user_pyplot:
    state["figures"] = plt.get_fignums()
print(json.dumps(state))
"""


@pytest.mark.parametrize(("backend", "user"), [("svg", "pyplot"), ("pdf", "none")])
def test_drawing_leaves_the_users_matplotlib_state_as_it_was(tmp_path, backend, user):
    tests = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", STATE_SCRIPT, str(tests), str(tmp_path), backend, user],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    state = json.loads(out.stdout.strip().splitlines()[-1])
    assert state["backend"] == backend  # never switched to Agg
    assert state["changed"] == []  # no rcParams left changed
    if user == "pyplot":
        assert state["figures"] == [1]  # the user's figure is there, and no figure of ours
    else:
        assert not state["pyplot_loaded"]  # the library never imports pyplot
    assert (tmp_path / "net.gif").exists() and (tmp_path / "pics" / "timelapse.gif").exists()


@pytest.fixture(scope="module")
def other_run_and_maps(tmp_path_factory):
    """A second run with another probe and test size, and its maps."""
    run = epochscope.open_run(make_synthetic_run(tmp_path_factory.mktemp("o") / "run", n_probe=90, n_test=12,
                                                 n_epochs=3))
    return run, epochscope.embed(run, "hidden", method="pca", progress=False)


def test_maps_of_another_run_are_refused_with_what_to_do(run_and_maps, other_run_and_maps):
    run, maps = run_and_maps
    other_run, other_maps = other_run_and_maps
    calls = {
        "ForgettingDisplay": lambda: epochscope.ForgettingDisplay.from_run(run, other_maps),
        # Quality reads no probe label, and drew another run's quality under this run's accuracy.
        "QualityDisplay": lambda: epochscope.QualityDisplay.from_run(run, other_maps),
        "LayerEpochGrid": lambda: epochscope.LayerEpochGrid.from_run(run, [maps[0], other_maps]),
        "MapDisplay": lambda: epochscope.MapDisplay.from_run(run, other_maps),
        "Timelapse": lambda: epochscope.Timelapse.from_run(run, other_maps, progress=False),
        "TrainTestMapDisplay": lambda: epochscope.TrainTestMapDisplay.from_run(other_run, maps[0]),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=r"another run.*epochscope\.embed\(run, 'hidden'\)") as info:
            call()
        assert "\n" not in str(info.value), name


def test_test_points_of_another_run_are_refused(run_and_maps, other_run_and_maps, tmp_path):
    run, maps = run_and_maps
    # The same probe size, but no test set: maps with test points cannot be laid on it.
    labels = run.labels
    with epochscope.RunWriter.open(tmp_path / "bare", framework="synthetic", labels=labels,
                                   class_names=run.class_names) as w:
        w.declare_layer("hidden", (16,), 16, None)
        for epoch in run.epochs:
            with w.epoch(epoch) as ep:
                ep.set_activations("hidden", np.asarray(run.activations("hidden", epoch), np.float32))
                ep.set_predictions(labels)
    bare = epochscope.open_run(tmp_path / "bare")
    with pytest.raises(ValueError, match=r"recorded no test set.*another run"):
        epochscope.TrainTestMapDisplay.from_run(bare, maps[0])
    with pytest.raises(ValueError, match=r"recorded no test set.*another run"):
        epochscope.MapDisplay.from_run(bare, maps[0], test_points=True)
