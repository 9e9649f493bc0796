import numpy as np
import pytest
from PIL import Image

from epochscope.draw.animate import SharedPalette, write_animation


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
