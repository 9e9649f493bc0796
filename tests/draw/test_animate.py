import numpy as np
import pytest
from PIL import Image

from epochscope.draw.animate import OctreePalette, SharedPalette, gif_bytes, palette_sample, write_animation


def _frames(n=5):
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        f = np.full((60, 80, 3), 255, dtype=np.uint8)
        f[10:30, 10 + i:30 + i] = (31, 119, 180)
        f[35:50, 40:70] = (255, 127, 14)
        f[0:5] = rng.integers(0, 256, size=(5, 80, 3))  # a few arbitrary colours (anti-aliasing, text)
        frames.append(f)
    return frames


def test_shared_palette_keeps_the_main_colours_exact(tmp_path):
    frames = _frames()
    path = write_animation(frames, tmp_path / "a.gif", palette="shared", duration_ms=200)
    with Image.open(path) as gif:
        assert gif.n_frames == 5 and gif.info["duration"] == 200 and gif.info["loop"] == 0
        for i in range(5):
            gif.seek(i)
            got = np.asarray(gif.convert("RGB"))
            np.testing.assert_array_equal(got[5:], frames[i][5:])  # background and flat colours exact
            assert np.abs(got[:5].astype(int) - frames[i][:5]).mean() < 40  # the rest approximated


def test_shared_palette_maps_frames_to_its_entries():
    pal = SharedPalette(_frames(), exact=8)
    img = pal.apply(_frames()[0])
    assert img.mode == "P" and img.size == (80, 60)
    assert pal.colours[0] == (255, 255, 255)  # the most frequent colour comes first
    with pytest.raises(ValueError, match="exact"):
        SharedPalette(_frames(), exact=300)


def test_unknown_palette_is_refused(tmp_path):
    with pytest.raises(ValueError, match="palette"):
        write_animation(_frames(), tmp_path / "a.gif", palette="web")


def _gif_frames(source):
    with Image.open(source) as gif:
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")).astype(int))
    return frames


def test_octree_palette_keeps_flat_colours_and_streams_frames(tmp_path):
    frames = [np.full((20, 30, 3), c, np.uint8) for c in ((255, 0, 0), (0, 0, 255), (10, 200, 10))]
    palette = OctreePalette(frames)
    # An iterator of frames (drawn one by one), each mapped to 8 bits as it comes.
    path = write_animation(iter(frames), tmp_path / "x.gif", duration_ms=50, palette=palette)
    back = _gif_frames(path)
    assert len(back) == 3
    for f, b in zip(frames, back):
        assert np.abs(f.astype(int) - b).max() <= 8
    # The same frames by name, and Pillow images instead of arrays.
    by_name = _gif_frames(write_animation([Image.fromarray(f) for f in frames], tmp_path / "y.gif",
                                          duration_ms=50, palette="octree"))
    assert all(np.array_equal(a, b) for a, b in zip(back, by_name))


def test_gif_bytes_are_the_file_write_animation_writes(tmp_path):
    frames = _frames()
    data = gif_bytes(frames, duration_ms=200, palette="shared")
    path = write_animation(frames, tmp_path / "a.gif", duration_ms=200, palette="shared")
    assert data == path.read_bytes()


def test_frames_of_different_sizes_or_none_are_refused(tmp_path):
    frames = _frames(2) + [np.zeros((10, 10, 3), np.uint8)]
    for palette in ("adaptive", "shared", "octree"):
        with pytest.raises(ValueError, match="same size"):
            write_animation(frames, tmp_path / "a.gif", palette=palette)
        with pytest.raises(ValueError, match="no frames"):
            write_animation([], tmp_path / "a.gif", palette=palette)
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_palette_sample_spreads_over_the_frames():
    assert palette_sample(100, 5) == [0, 25, 50, 74, 99]
    assert palette_sample(3, 8) == [0, 1, 2]
    assert palette_sample(0, 5) == []
