import base64
import io

import numpy as np
import pytest
from PIL import Image

from epochscope.html.thumbnails import as_images, sprite_sheet


def decode(uri):
    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


@pytest.mark.parametrize("shape,expected", [
    ((5, 1, 8, 8), (5, 8, 8)), ((5, 8, 8), (5, 8, 8)), ((5, 3, 8, 8), (5, 8, 8, 3)),
    ((5, 8, 8, 3), (5, 8, 8, 3)), ((5, 8, 8, 1), (5, 8, 8)),
])
def test_as_images_accepts_common_layouts(shape, expected):
    assert as_images(np.zeros(shape, dtype=np.float16)).shape == expected


@pytest.mark.parametrize("shape", [(5, 4), (5, 2, 3), (5, 7, 8, 8)])
def test_feature_vectors_are_not_images(shape):
    assert as_images(np.zeros(shape)) is None
    assert as_images(None) is None


def test_sprite_places_each_image_in_its_tile():
    images = np.zeros((7, 6, 5), dtype=np.float16)
    for i in range(7):
        images[i, i % 6, :] = 1.0  # a bright row at a different height per image
    s = sprite_sheet(images)
    sheet = decode(s.uri)
    assert (s.tile_h, s.tile_w, s.count) == (6, 5, 7)
    for i in range(7):
        r, c = divmod(i, s.cols)
        tile = sheet[r * 6:(r + 1) * 6, c * 5:(c + 1) * 5]
        assert tile[i % 6].min() == 255 and np.delete(tile, i % 6, axis=0).max() == 0


def test_large_images_are_shrunk_and_rgb_kept():
    s = sprite_sheet(np.random.default_rng(0).random((3, 64, 64, 3)))
    assert (s.tile_h, s.tile_w) == (32, 32)
    assert decode(s.uri).ndim == 3


def test_mnist_sized_sprite_is_compact():
    rng = np.random.default_rng(0)
    digits = np.zeros((2000, 28, 28), dtype=np.float16)
    digits[:, 8:20, 10:18] = rng.random((2000, 12, 8)) > 0.5
    s = sprite_sheet(digits)
    assert len(s.uri) < 2000 * 28 * 28 * 0.5  # well under the raw bytes, even in base64
