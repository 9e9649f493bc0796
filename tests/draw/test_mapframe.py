import numpy as np
import pytest

from epochscope.colors import class_colors
from epochscope.draw.mapframe import MapFrameRenderer, padded_bounds


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


def test_test_points_in_their_class_colour_outlined_and_the_wrong_ones_crossed():
    probe = np.array([[0.0, 0.0], [1.0, 1.0]])
    r = MapFrameRenderer((-2, 2, -2, 2), np.array([0, 1]), ["a", "b", "c"], radius=4, test_legend=True)
    test = np.array([[-1.5, -1.0], [0.5, -1.0], [1.5, 1.5]])
    img = r.draw(probe, test_coords=test, test_labels=np.array([2, 0, 1]), test_wrong=np.array([False, True, False]))
    colors = class_colors(3) * 255
    for (x, y), c in zip(r.pixels(test), [2, 0, 1]):
        if c != 0:  # (the wrong one has a cross over its centre)
            np.testing.assert_allclose(img[int(y), int(x)], colors[c], atol=3)
        ring = img[int(y) - int(r.test_radius) - 3:int(y) + int(r.test_radius) + 4,
                   int(x) - int(r.test_radius) - 3:int(x) + int(r.test_radius) + 4]
        assert (ring.max(axis=2) < 110).sum() >= 12  # the dark outline
    # The wrong one (class 0, at 0.5, -1) carries a cross: dark pixels on its centre's diagonals.
    x, y = r.pixels(test[1:2])[0]
    d = int(r.test_radius) + 1
    diag = [img[int(y) + k, int(x) + k] for k in range(-d, d + 1)]
    assert sum(np.abs(p.astype(int) - 0x22).max() < 60 for p in diag) >= d
    # Probe points are drawn pale under test points, in full colour without them.
    px, py = r.pixels(probe[:1])[0]
    pale = img[int(py), int(px)].astype(float)
    full = r.draw(probe)[int(py), int(px)].astype(float)
    np.testing.assert_allclose(full, colors[0], atol=3)
    assert (pale > full + 40).all() and (pale - full).sum() > 200  # faded toward white
    assert [t.get_text() for t in r.fig.legends[0].get_texts()][-3:] == ["probe (pale)", "test (outlined)",
                                                                        "misclassified"]


def test_points_beyond_the_frame_are_drawn_at_its_edge_and_counted():
    """PCA frames clipped outlying points (issue 15): each is now a triangle at the edge, and the caption says so."""
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(200, 2)) * 0.5
    coords[:7] = [[30, 0], [-30, 1], [0, 40], [0, -40], [25, 25], [-9, 0.5], [np.nan, np.nan]]
    r = MapFrameRenderer((-3, 3, -3, 3), np.arange(200) % 3, ["a", "b", "c"])
    img = r.draw(coords, caption="accuracy 0.5")
    assert r.beyond == 6  # the NaN point has no position: not counted
    assert r.caption.get_text() == "accuracy 0.5 · 6 points beyond the frame, drawn at its edge as ▸"
    (r0, r1), (c0, c1) = r._rows, r._cols
    # A triangle in the class colour just inside each side the far points lie beyond.
    colors = class_colors(3) * 255
    for (side, rows, cols), c in zip([("right", slice(r0, r1), slice(c1 - 12, c1)),
                                      ("left", slice(r0, r1), slice(c0, c0 + 12)),
                                      ("top", slice(r0, r0 + 12), slice(c0, c1)),
                                      ("bottom", slice(r1 - 12, r1), slice(c0, c1))], [0, 1, 2, 0]):
        near = (np.abs(img[rows, cols].astype(int) - colors[c]).max(axis=2) < 30).sum()
        assert near > 5, side


def test_long_captions_wrap_within_the_frame():
    r = MapFrameRenderer((0, 1, 0, 1), np.zeros(3, int), ["a"])
    text = "accuracy 0.975 · val accuracy 0.900 · map trustworthiness 0.951 · " + "many words " * 12
    img = r.draw(np.full((3, 2), 0.5), caption=text)
    lines = r._caption_text.wrap(text, img.shape[1] - r._caption_text.x - 8, 2)
    assert len(lines) == 2 and lines[-1].endswith("…")
    assert all(r._caption_text.font.getlength(line) <= img.shape[1] - r._caption_text.x - 8 for line in lines)
    assert (img[-4:, :].sum(axis=2) < 600).sum() == 0  # nothing drawn on the bottom rows (no overflow)


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


def test_pca_frames_hold_every_point_or_mark_it(tmp_path):
    """PCA frames clipped up to 22 outlying points (issue 15). maps/align.py's robust_bounds keeps
    its quantiles (a few outliers must not shrink the picture); the frames draw every point beyond
    them at the edge and count it."""
    from epochscope import embed, open_run
    from epochscope.run import RunWriter

    rng = np.random.default_rng(3)
    n = 400
    labels = np.arange(n) % 2
    with RunWriter.open(tmp_path / "run", framework="x", labels=labels, class_names=["a", "b"]) as w:
        w.declare_layer("h", (6,), 6, None)
        for epoch in range(2):
            x = rng.normal(size=(n, 6)) + labels[:, None] * 3
            x[:12] *= 25  # heavy-tailed outliers along every direction
            with w.epoch(epoch) as ep:
                ep.set_activations("h", x)
                ep.set_predictions(labels)
    run = open_run(tmp_path / "run")
    maps = embed(run, "h", method="pca", progress=False)
    r = MapFrameRenderer(maps.bounds, run.labels, run.class_names)
    for i in range(len(maps.epochs)):
        xy = r.pixels(maps.coords[i])
        (r0, r1), (c0, c1) = r._rows, r._cols
        beyond = int(((xy[:, 0] < c0) | (xy[:, 0] > c1) | (xy[:, 1] < r0) | (xy[:, 1] > r1)).sum())
        assert beyond > 0  # the robust bounds leave some out ...
        r.draw(maps.coords[i], caption="accuracy 1.000")
        assert r.beyond == beyond  # ... and every one of them is drawn at the edge and counted
        assert r.caption.get_text().endswith(f"{beyond} point{'s' if beyond > 1 else ''} beyond the frame, "
                                             "drawn at its edge as ▸")
