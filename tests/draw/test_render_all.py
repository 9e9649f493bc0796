import importlib.util

import numpy as np
import pytest
from PIL import Image
from synthetic import make_synthetic_run

import epochscope
from epochscope.cli import main


@pytest.fixture(scope="module")
def two_layer_run(tmp_path_factory):
    return make_synthetic_run(tmp_path_factory.mktemp("runs") / "run", layers=("hidden", "out"), n_epochs=4)


def test_render_writes_every_picture(two_layer_run, tmp_path):
    out = tmp_path / "pics"
    # MP4 needs the video extra; the core-only CI run checks everything else.
    video = importlib.util.find_spec("imageio_ffmpeg") is not None
    formats = ("gif", "mp4") if video else ("gif",)
    paths = epochscope.render(two_layer_run, out, method="pca", formats=formats, epoch=1, progress=False)
    names = {p.relative_to(out).as_posix() for p in paths}
    frames = [f"frames/epoch_{e:03d}.png" for e in range(4)]
    assert names == {"samples.png", *frames, *(f"timelapse.{f}" for f in formats), "curves.png", "train_test_map.png",
                     "confusion.png", "confusion_epoch_1.png", "layers_epochs.png", "forgetting.png", "quality.png",
                     "network.gif"}
    assert all(p.stat().st_size > 1000 for p in paths)
    assert sorted(p.name for p in (out / "frames").iterdir()) == [f.split("/")[1] for f in frames]
    with Image.open(out / "timelapse.gif") as gif:
        assert gif.n_frames == 4 and gif.info["duration"] == 500 and gif.info["loop"] == 0
    # no temporary files left behind; the one hidden file lists what this render wrote
    assert [p.name for p in out.rglob(".*")] == [epochscope.pipeline.RENDER_RECORD]
    with Image.open(out / "network.gif") as gif:  # the network shares the time-lapse's timing
        assert gif.n_frames == 4 and gif.info["duration"] == 500


def test_single_layer_run_without_images_skips_samples_and_grid(tmp_path):
    run = make_synthetic_run(tmp_path / "run", images=False, n_epochs=3)
    paths = epochscope.render(run, tmp_path / "pics", method="pca", progress=False, smooth=True)
    names = {p.name for p in paths}
    assert "samples.png" not in names and "layers_epochs.png" not in names
    assert {"timelapse.gif", "timelapse_smooth.gif", "forgetting.png", "quality.png"} <= names
    with Image.open(tmp_path / "pics" / "timelapse_smooth.gif") as gif:
        assert gif.n_frames == 2 * 6 + 1


def test_given_maps_are_drawn_without_embedding(two_layer_run, tmp_path, monkeypatch):
    run = epochscope.open_run(two_layer_run)
    maps = epochscope.embed(run, "hidden", method="pca", progress=False)
    import epochscope.pipeline as pipeline

    calls = []
    real = pipeline._embed
    monkeypatch.setattr(pipeline, "_embed", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    epochscope.render(run, tmp_path / "pics", maps=maps, progress=False)
    assert calls == ["out"]  # only the other layer, for the layer x epoch grid


def test_the_drawing_room_draws_the_maps_it_is_given(tmp_path, maps_factory):
    from epochscope.draw.render_all import render_maps

    run = epochscope.open_run(make_synthetic_run(tmp_path / "run", layers=("hidden", "out"), n_epochs=4))
    # Maps made by hand (not by the embedder): the pictures show exactly these.
    maps = maps_factory(n_epochs=4, n=len(run.labels), n_test=len(run.test_labels), labels=run.labels,
                        test_labels=run.test_labels, epochs=run.epochs)
    paths = render_maps(run, maps, tmp_path / "pics", progress=False)
    names = {p.name for p in paths}
    assert "layers_epochs.png" not in names  # no layer_maps given: no grid, and nothing embedded
    assert {"timelapse.gif", "train_test_map.png", "forgetting.png", "quality.png"} <= names
    assert not run.cache_dir.exists()  # no map was computed
    grid = render_maps(run, maps, tmp_path / "grid", layer_maps=[maps, maps_factory(n_epochs=4, n=len(run.labels),
                       labels=run.labels, epochs=run.epochs, layer="out", seed=1)], progress=False)
    assert "layers_epochs.png" in {p.name for p in grid}


def test_bad_arguments_fail_before_anything_is_drawn(two_layer_run, tmp_path):
    out = tmp_path / "pics"
    with pytest.raises(ValueError, match="formats"):
        epochscope.render(two_layer_run, out, method="pca", formats=("gif", "webm"), progress=False)
    with pytest.raises(ValueError, match="epoch 99"):
        epochscope.render(two_layer_run, out, method="pca", epoch=99, progress=False)
    with pytest.raises(ValueError, match="duration"):
        epochscope.render(two_layer_run, out, method="pca", duration_ms=0, progress=False)
    assert not out.exists()


def test_cli_render(two_layer_run, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["render", str(two_layer_run), "--out", str(out), "--method", "pca", "--format", "gif",
                 "--layer", "out", "--epoch", "2", "--test-points", "--duration", "250"]) == 0
    printed = capsys.readouterr().out
    assert "confusion_epoch_2.png" in printed and "(4 frames)" in printed
    with Image.open(out / "timelapse.gif") as gif:
        assert gif.info["duration"] == 250
    frame = np.asarray(Image.open(out / "frames" / "epoch_003.png").convert("RGB")).astype(float)
    inside = frame[70:520, 30:580]  # the map axes (title, caption and legend lie outside)
    assert (np.linalg.norm(inside - [0x22, 0x22, 0x22], axis=2) < 30).sum() > 100  # the test points' outlines
    assert main(["render", str(two_layer_run), "--out", str(out), "--layer", "nope", "--method", "pca"]) == 2  # the user's input
    assert "layer 'nope' not found" in capsys.readouterr().err


@pytest.mark.slow
def test_render_with_the_default_umap_maps(tmp_path):
    pytest.importorskip("umap")
    run = make_synthetic_run(tmp_path / "run", n_probe=200, n_epochs=3)
    paths = epochscope.render(run, tmp_path / "pics", progress=False, n_neighbors=10)
    assert (tmp_path / "pics" / "timelapse.gif").exists()
    assert len([p for p in paths if p.parent.name == "frames"]) == 3


def test_a_second_render_into_the_same_folder_leaves_nothing_of_the_first(tmp_path):
    """Rendering run B where run A was rendered: the folder shows B only (A's extra frames and its
    layer grid were left beside B's pictures, a folder of two runs); files epochscope did not write
    there, and files reached through a link, are left alone."""
    a = make_synthetic_run(tmp_path / "a", n_epochs=6, layers=("hidden", "other"))
    b = make_synthetic_run(tmp_path / "b", n_epochs=3)
    out = tmp_path / "pics"
    epochscope.render(epochscope.open_run(a), out, method="pca", progress=False, network=False)
    assert (out / "frames" / "epoch_005.png").is_file() and (out / "layers_epochs.png").is_file()
    (out / "notes.txt").write_text("mine")
    (out / "frames" / "epoch_099.png").write_text("mine too: not written by epochscope")
    outside = tmp_path / "outside.png"
    outside.write_text("outside")
    written = epochscope.render(epochscope.open_run(b), out, method="pca", progress=False, network=False)
    frames = sorted(p.name for p in (out / "frames").iterdir())
    assert frames == ["epoch_000.png", "epoch_001.png", "epoch_002.png", "epoch_099.png"]
    assert not (out / "layers_epochs.png").exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert all(p.exists() for p in written)
    # A render that fails part-way removes nothing: the earlier pictures stay until a render succeeds.
    with pytest.raises(ValueError):
        epochscope.render(epochscope.open_run(a), out, method="pca", progress=False, epoch=99)
    assert (out / "frames" / "epoch_002.png").is_file()
    assert outside.read_text() == "outside"


def test_render_logs_name_the_files_where_they_end_up(two_layer_run, tmp_path, caplog):
    """A render draws into a hidden staging folder and moves the pictures in at the end; its log
    lines (the network's "-> PATH", -v's one line per picture) named the staging folder, a path
    that no longer exists once the command returns."""
    out = tmp_path / "pics"
    with caplog.at_level("DEBUG", logger="epochscope"):
        epochscope.render(two_layer_run, out, method="pca", progress=False)
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if ".partial" in m or ".render." in m]
    assert any(m.startswith("network animation:") and m.endswith(f"-> {out / 'network.gif'}") for m in messages)
