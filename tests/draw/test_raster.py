import numpy as np
import pytest

from epochscope.draw.raster import composite_over, disc_radius_for, splat_discs


def test_one_disc_covers_its_area_and_is_antialiased():
    rgb, cover = splat_discs(np.array([[20.3, 15.7]]), np.array([1.0, 0.0, 0.0]), shape=(40, 50), radius=4.0)
    assert cover.shape == (40, 50) and rgb.shape == (40, 50, 3)
    assert cover.sum() == pytest.approx(np.pi * 16, rel=0.03)
    assert cover[15, 20] == 1.0  # pixel containing the centre
    assert cover[0, 0] == 0.0
    edge = (cover > 0) & (cover < 1)
    assert edge.sum() > 10  # soft edge, not a hard stair-step
    np.testing.assert_allclose(rgb[..., 0], cover, atol=1e-6)  # premultiplied pure red
    assert rgb[..., 1:].max() == 0


def test_later_points_lie_on_top():
    xy = np.array([[10.0, 10.0], [10.5, 10.5]])
    colors = np.array([[1.0, 0, 0], [0, 0, 1.0]])
    rgb, cover = splat_discs(xy, colors, shape=(20, 20), radius=3)
    assert rgb[10, 10].tolist() == [0.0, 0.0, 1.0]
    rgb2, _ = splat_discs(xy[::-1], colors[::-1], shape=(20, 20), radius=3)
    assert rgb2[10, 10].tolist() == [1.0, 0.0, 0.0]


def test_points_outside_or_nan_are_skipped():
    xy = np.array([[-50.0, 5.0], [5.0, 500.0], [np.nan, 3.0], [0.5, 0.5]])
    rgb, cover = splat_discs(xy, np.array([0.0, 1.0, 0.0]), shape=(10, 10), radius=2)
    assert cover[0, 0] == 1.0
    assert cover[:, 5:].max() == 0  # only the disc in the corner, clipped at the border
    assert 0 < cover.sum() < np.pi * 4


def test_composite_over_blends_by_coverage():
    bg = np.full((1, 2, 3), 255, dtype=np.uint8)
    rgb = np.array([[[1.0, 0, 0], [0.5, 0, 0]]], dtype=np.float32)
    cover = np.array([[1.0, 0.5]], dtype=np.float32)
    composite_over(bg, rgb, cover)
    assert bg[0, 0].tolist() == [255, 0, 0]
    assert bg[0, 1].tolist() == [255, 128, 128]


def test_bad_arguments():
    with pytest.raises(ValueError, match="radius"):
        splat_discs(np.zeros((1, 2)), np.zeros(3), shape=(4, 4), radius=0)
    with pytest.raises(ValueError, match="colors"):
        splat_discs(np.zeros((2, 2)), np.zeros((3, 3)), shape=(4, 4), radius=1)
    with pytest.raises(ValueError, match="shape"):
        splat_discs(np.zeros((2, 2)), np.zeros(3), shape=(0, 4), radius=1)


def test_radius_shrinks_with_more_points():
    assert disc_radius_for(100, 500 * 500) == 5.0
    assert disc_radius_for(5000, 500 * 500) < disc_radius_for(1000, 500 * 500)
    assert disc_radius_for(10**7, 100) == 1.2
