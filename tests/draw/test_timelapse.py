import numpy as np
import pytest
from PIL import Image

import epochscope
from epochscope.draw.timelapse import Timelapse, ease_steps, epoch_caption

NAMES = ["a", "b", "c"]


@pytest.fixture
def lapse(fake_maps):
    metrics = [{"epoch": e, "accuracy": 0.5 + 0.1 * e, "val_accuracy": 0.45 + 0.1 * e} for e in fake_maps.epochs]
    return Timelapse.from_maps(fake_maps, np.arange(300) % 3, NAMES, metrics=metrics, progress=False)


def test_one_frame_per_epoch_all_the_same_size(lapse, fake_maps, tmp_path):
    assert len(lapse.frames) == len(fake_maps.epochs)
    assert lapse.titles == [f"Epoch {e}" for e in fake_maps.epochs]
    assert lapse.captions[2] == "accuracy 0.700 · val accuracy 0.650 · map trustworthiness 0.867"
    paths = lapse.save_frames(tmp_path / "frames")
    assert [p.name for p in paths] == [f"epoch_{e:03d}.png" for e in fake_maps.epochs]
    sizes = {Image.open(p).size for p in paths}
    assert sizes == {(800, 600)}
    np.testing.assert_array_equal(np.asarray(Image.open(paths[1]).convert("RGB")), lapse.frames[1])


def test_gif_has_the_frame_duration_and_loops_forever(lapse, tmp_path):
    path = lapse.save(tmp_path / "t.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 4
        assert gif.info["duration"] == 500
        assert gif.info["loop"] == 0
    path = lapse.save(tmp_path / "slow.gif", duration_ms=1200)
    with Image.open(path) as gif:
        assert gif.info["duration"] == 1200


def test_mp4_opens_with_the_right_frame_count(lapse, tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    from media import read_mp4

    path = lapse.save(tmp_path / "t.mp4")
    frames = read_mp4(path)
    assert len(frames) == 4
    assert frames[0].shape == lapse.frames[0].shape
    # Lossy, but the picture is the same picture.
    assert np.abs(frames[-1].astype(int) - lapse.frames[-1].astype(int)).mean() < 8


def test_bad_suffix_is_refused_before_writing(lapse, tmp_path):
    with pytest.raises(ValueError, match="suffix"):
        lapse.save(tmp_path / "t.avi")
    assert not list(tmp_path.iterdir())


def test_smooth_glides_between_the_key_frames(lapse, fake_maps):
    smooth = lapse.smooth(steps=3, progress=False)
    assert len(smooth.frames) == (len(fake_maps.epochs) - 1) * 3 + 1
    assert smooth.duration_ms == pytest.approx(500 / 3)
    # Key frames are drawn exactly as in the plain time-lapse; in-between frames differ from both neighbours.
    np.testing.assert_array_equal(smooth.frames[0], lapse.frames[0])
    np.testing.assert_array_equal(smooth.frames[-1], lapse.frames[-1])
    np.testing.assert_array_equal(smooth.frames[3], lapse.frames[1])
    assert not np.array_equal(smooth.frames[1], lapse.frames[0])
    assert not np.array_equal(smooth.frames[1], lapse.frames[1])


def test_test_points_optional_in_their_class_colours(fake_maps):
    labels = np.arange(300) % 3
    test_labels = np.arange(40) % 3
    wrong = [np.arange(40) < 5 for _ in fake_maps.epochs]
    plain = Timelapse.from_maps(fake_maps, labels, NAMES, progress=False)
    shown = Timelapse.from_maps(fake_maps, labels, NAMES, test_points=True, test_labels=test_labels, test_wrong=wrong,
                                progress=False)
    ink = [(np.linalg.norm(f.astype(float) - [0x22, 0x22, 0x22], axis=2) < 30)[70:520, 30:580].sum()
           for f in (plain.frames[-1], shown.frames[-1])]
    assert ink[0] == 0 and ink[1] > 40 * 5  # the test points' outlines and the crosses of the 5 wrong ones


def test_caption_and_easing():
    assert epoch_caption({"accuracy": 0.5}) == "accuracy 0.500"
    assert epoch_caption({"loss": 1.0}, float("nan")) == ""
    w = ease_steps(5)
    assert w[0] == 0 and np.all(np.diff(w) > 0) and w[-1] < 1
    with pytest.raises(ValueError):
        ease_steps(0)


def test_render_holds_one_frame_not_all(fake_maps, tmp_path, monkeypatch):
    """write_timelapse streams: frames are drawn one at a time and never collected (issue 14, kind 9)."""
    import gc
    import weakref

    from PIL import Image

    from epochscope.draw.timelapse import FrameMaker, write_timelapse

    maker = FrameMaker(fake_maps, np.arange(300) % 3, NAMES)
    frames_made = []
    original = maker.renderer.draw

    class Tracked(np.ndarray):
        pass

    def draw(*a, **k):
        out = original(*a, **k).view(Tracked)
        frames_made.append(weakref.ref(out))
        gc.collect()
        held = sum(r() is not None for r in frames_made[:-1])
        assert held <= 1, f"{held} earlier frames still held"  # the PNG being encoded, at most
        return out

    monkeypatch.setattr(maker.renderer, "draw", draw)
    paths = write_timelapse(maker, tmp_path, formats=("gif",), progress=False)
    maker.close()
    assert len(frames_made) == len(fake_maps.epochs) + min(8, len(fake_maps.epochs))  # + the palette's sample
    assert [p.name for p in paths] == [f"epoch_{e:03d}.png" for e in fake_maps.epochs] + ["timelapse.gif"]
    with Image.open(tmp_path / "timelapse.gif") as gif:
        assert gif.n_frames == len(fake_maps.epochs)


def test_from_run_with_pca_maps(synthetic_run, tmp_path):
    run = epochscope.open_run(synthetic_run)
    maps = epochscope.embed(run, "hidden", method="pca", progress=False)
    lapse = Timelapse.from_run(run, maps, progress=False)
    assert len(lapse.frames) == len(run.epochs) == len(maps.epochs)
    assert lapse.captions[-1].startswith("accuracy 1.000 · val accuracy 0.950 · map trustworthiness")
