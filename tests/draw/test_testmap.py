import numpy as np
import pytest

import epochscope
from epochscope.draw.mapframe import MapFrameRenderer
from epochscope.draw.testmap import train_test_map
from epochscope.draw.timelapse import Timelapse, map_subtitle


@pytest.fixture
def run_and_maps(synthetic_run):
    run = epochscope.open_run(synthetic_run)
    return run, epochscope.embed(run, "hidden", method="pca", progress=False)


def test_test_points_carry_their_true_class_and_the_wrong_ones_a_cross(run_and_maps):
    """Issue 15: one-colour stars hid the clusters and told neither the class nor whether the model was right."""
    from epochscope.colors import class_colors

    run, maps = run_and_maps
    r = MapFrameRenderer(maps.bounds, run.labels, run.class_names, subtitle=map_subtitle(maps), test_legend=True)
    img = train_test_map(run, maps, renderer=r, epoch=2).astype(int)  # an epoch with mistakes
    expected = r.pixels(maps.test_coords[2])
    wrong = run.test_predictions(2) != run.test_labels
    colors = class_colors(3) * 255
    inside = ((expected[:, 0] > r._cols[0] + 8) & (expected[:, 0] < r._cols[1] - 8)
              & (expected[:, 1] > r._rows[0] + 8) & (expected[:, 1] < r._rows[1] - 8))
    assert inside.sum() > 20 and wrong.sum() > 0
    # The last-drawn test point at each spot shows its true class's colour (test points overlap a little).
    hits = 0
    for (x, y), c, bad in zip(expected[inside], run.test_labels[inside], wrong[inside]):
        patch = img[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2].reshape(-1, 3)
        hits += bool((np.abs(patch - colors[c]).max(axis=1) < 12).any()) or bool(bad)
    assert hits >= 0.8 * inside.sum()
    # A cross over each wrong one: its centre is dark.
    for (x, y) in expected[inside & wrong]:
        assert img[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2].max(axis=2).min() < 120
    caption = r.caption.get_text()
    assert caption.startswith("30 test examples in their true class's colour, projected onto the probe set's principal")
    assert f"{int(wrong.sum())} misclassified (×)" in caption


def test_same_map_as_the_last_frame(run_and_maps):
    run, maps = run_and_maps
    last = Timelapse.from_run(run, maps, progress=False).frames[-1]
    img = train_test_map(run, maps)
    assert img.shape == last.shape
    r = MapFrameRenderer(maps.bounds, run.labels, run.class_names)
    (r0, r1), (c0, c1) = r._rows, r._cols
    same = (img[r0:r1, c0:c1] == last[r0:r1, c0:c1]).all(axis=2)
    # Inside the map only the test points and the paler probe points differ: where neither lies, all is the same.
    blank = (last[r0:r1, c0:c1] == 255).all(axis=2) & (img[r0:r1, c0:c1] == 255).all(axis=2)
    assert same[blank].all() and same.mean() > 0.5


def test_needs_test_coordinates(fake_maps):
    fake_maps.test_coords = None
    with pytest.raises(ValueError, match="no test"):
        train_test_map(object(), fake_maps)


def test_caption_says_how_test_points_were_placed_and_how_many_sit_far():
    from epochscope.draw.testmap import caption_for_test_set, placement_note

    assert placement_note("umap") == "placed by UMAP's transform after the fit"
    assert "principal axes" in placement_note("pca") and "openTSNE" in placement_note("tsne")
    text = caption_for_test_set(1000, 0.93, method="umap", wrong=70, far=12)
    assert text.splitlines() == ["1,000 test examples in their true class's colour, placed by UMAP's transform after the fit",
                                 "70 misclassified (×) · test accuracy 0.930 · 12 placed far from every probe point"]


def test_far_placements_are_counted_against_the_probe_neighbourhoods():
    from epochscope.analysis import placement_quality

    rng = np.random.default_rng(0)
    probe = np.concatenate([rng.normal(size=(100, 2)) * 0.3, rng.normal(size=(100, 2)) * 0.3 + [10, 0]])
    labels = np.repeat([0, 1], 100)
    test = np.array([[0.1, 0.0], [10.1, 0.2], [5.0, 0.0], [0.0, 6.0]])  # in a cluster (x2), between, far off
    pl = placement_quality(probe, labels, test)
    assert pl.far.tolist() == [False, False, True, True]
    assert pl.neighbour_class.tolist()[:2] == [0, 1] and pl.neighbour_count.tolist()[:2] == [10, 10]
    mixed = placement_quality(probe, labels, np.array([[5.0, 0.0]]), k=200)
    assert mixed.mixed.tolist() == [True]  # half of each class around it
