import numpy as np
import pytest
from scipy import ndimage

from epochscope.colors import class_colors
from epochscope.draw.mapframe import MapFrameRenderer, padded_bounds

GOLD = np.array([0xFF, 0xD7, 0x00])


def _renderer(maps, labels, **kw):
    return MapFrameRenderer(maps.bounds, labels, ["a", "b", "c"], subtitle="layer hidden · fake", **kw)


def test_frames_share_size_axes_and_everything_but_points_and_text(fake_maps):
    labels = np.arange(300) % 3
    r = _renderer(fake_maps, labels)
    frames = [r.draw(c, title=f"Epoch {i}", caption=f"accuracy 0.{i}") for i, c in enumerate(fake_maps.coords)]
    assert {f.shape for f in frames} == {(600, 800, 3)}
    assert r.ax.get_xlim() == pytest.approx(r.xlim) and r.ax.get_ylim() == pytest.approx(r.ylim)
    # Outside the map axes, the title and the caption, every pixel is the same in every frame (legend included).
    (r0, r1), (c0, c1) = r._rows, r._cols
    mask = np.ones(frames[0].shape[:2], bool)
    mask[r0 - 2:r1 + 2, c0 - 2:c1 + 2] = False
    mask[:60, :] = False   # title
    mask[-60:, :] = False  # caption
    for f in frames[1:]:
        np.testing.assert_array_equal(f[mask], frames[0][mask])
    # The points differ between epochs (clusters tighten).
    assert not np.array_equal(frames[0][r0:r1, c0:c1], frames[-1][r0:r1, c0:c1])


def test_limits_keep_the_data_and_equal_scale(fake_maps):
    r = _renderer(fake_maps, np.arange(300) % 3)
    xmin, xmax, ymin, ymax = fake_maps.bounds
    assert r.xlim[0] < xmin and r.xlim[1] > xmax and r.ylim[0] < ymin and r.ylim[1] > ymax
    bbox = r.ax.bbox
    x_scale = bbox.width / (r.xlim[1] - r.xlim[0])
    y_scale = bbox.height / (r.ylim[1] - r.ylim[0])
    assert x_scale == pytest.approx(y_scale, rel=1e-6)


def test_padded_bounds():
    assert padded_bounds((0, 1, 0, 1), 2.0, pad=0) == (-0.5, 1.5, 0.0, 1.0)
    assert padded_bounds((0, 4, 0, 1), 2.0, pad=0) == (0.0, 4.0, -0.5, 1.5)
    with pytest.raises(ValueError, match="bounds"):
        padded_bounds((0, np.nan, 0, 1), 1.0)


def test_points_land_on_their_pixels_in_their_class_colour():
    coords = np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]])
    labels = np.array([0, 1, 2])
    r = MapFrameRenderer((-1, 1, -1, 1), labels, ["a", "b", "c"], radius=4)
    img = r.draw(coords)
    colors = class_colors(3) * 255
    for (x, y), lab in zip(r.pixels(coords), labels):
        np.testing.assert_allclose(img[int(y), int(x)], colors[lab], atol=2)


def test_class_colours_in_the_label_proportions(color_counts):
    # 50 / 30 / 20 % of points on a grid with no overlap: pixel counts follow the labels.
    side = 20
    gx, gy = np.meshgrid(np.arange(side), np.arange(side))
    coords = np.column_stack([gx.ravel(), gy.ravel()]).astype(float)
    labels = np.repeat([0, 1, 2], [200, 120, 80])
    r = MapFrameRenderer((0, side - 1, 0, side - 1), labels, ["a", "b", "c"], radius=3)
    img = r.draw(coords)
    counts = color_counts(img, class_colors(3), tol=20)
    assert counts.min() > 0
    np.testing.assert_allclose(counts / counts.sum(), [0.5, 0.3, 0.2], atol=0.02)


def test_stars_are_drawn_at_the_test_coordinates(fake_maps):
    r = _renderer(fake_maps, np.arange(300) % 3)
    test = np.array([[-4.0, -3.0], [0.0, 0.0], [4.0, 3.0]])
    img = r.draw(fake_maps.coords[0] * 0 + 100, test_coords=test)  # probe points far off the map
    gold = np.linalg.norm(img.astype(float) - GOLD, axis=2) < 40
    blobs, n = ndimage.label(gold)
    sizes = ndimage.sum(gold, blobs, range(1, n + 1))
    bodies = [i + 1 for i in range(n) if sizes[i] >= 8]  # the star's body; thin tips may come apart
    assert len(bodies) == 3
    centres = np.array(ndimage.center_of_mass(gold, blobs, bodies))[:, ::-1]  # (x, y)
    expected = r.pixels(test)
    for e in expected:
        assert np.min(np.linalg.norm(centres - e, axis=1)) < 2.0


def test_rings_drawn_around_chosen_points():
    coords = np.array([[0.0, 0.0], [0.5, 0.5]])
    r = MapFrameRenderer((-1, 1, -1, 1), np.array([0, 1]), ["a", "b"], radius=3)
    plain = r.draw(coords)
    ringed = r.draw(coords, rings=[1])
    x, y = r.pixels(coords[1:])[0]
    window = (slice(int(y) - 14, int(y) + 15), slice(int(x) - 14, int(x) + 15))
    dark = (ringed[window].sum(axis=2) < 150).sum() - (plain[window].sum(axis=2) < 150).sum()
    assert dark > 30


def test_coords_must_match_labels(fake_maps):
    r = _renderer(fake_maps, np.arange(300) % 3)
    with pytest.raises(ValueError, match="coords"):
        r.draw(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="labels"):
        MapFrameRenderer((0, 1, 0, 1), np.array([0, 5]), ["a", "b"])
