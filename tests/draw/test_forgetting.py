import numpy as np

import epochscope
from epochscope import analysis
from epochscope.draw.forgetting import ForgettingDisplay


def test_most_forgotten_shown_and_ringed(synthetic_run, fake_maps):
    run = epochscope.open_run(synthetic_run)
    fake = fake_maps.__class__(**{**vars(fake_maps)})
    fake.coords = np.random.default_rng(0).normal(size=(len(run.epochs), 120, 2)).astype(np.float32)
    fake.epochs = run.epochs
    disp = ForgettingDisplay.from_run(run, fake, k=5).plot()
    top = analysis.most_forgotten(run, 5)
    assert len(top) > 0
    np.testing.assert_array_equal(disp.top, top)
    np.testing.assert_allclose(disp.rings_.get_offsets(), fake.coords[-1][top])
    assert len(disp.thumb_axes_) == len(top)
    events = analysis.forgetting_events(run)
    for ax, i in zip(disp.thumb_axes_, top):
        assert f"{events[i]}× forgotten" in ax.get_title()
    heights = [p.get_height() for p in disp.hist_ax_.patches]
    assert heights == np.bincount(events).tolist()


def test_without_images_no_strip(synthetic_run, tmp_path, fake_maps):
    from synthetic import make_synthetic_run

    run = epochscope.open_run(make_synthetic_run(tmp_path / "noimg", images=False))
    fake_maps.coords = np.zeros((len(run.epochs), 120, 2), np.float32)
    fake_maps.epochs = run.epochs
    disp = ForgettingDisplay.from_run(run, fake_maps).plot()
    assert disp.thumb_axes_ == []


def test_one_recorded_epoch_says_forgetting_cannot_be_seen_yet(tmp_path, fake_maps):
    """With one epoch there is no second one to be wrong at: "none was ever forgotten" would
    claim a result the run cannot show."""
    from synthetic import make_synthetic_run

    run = epochscope.open_run(make_synthetic_run(tmp_path / "one", n_epochs=1))
    fake_maps.coords = np.zeros((1, 120, 2), np.float32)
    fake_maps.epochs = run.epochs
    title = ForgettingDisplay.from_run(run, fake_maps).plot().figure_._suptitle.get_text()
    assert "one recorded epoch" in title and "never" not in title and "none" not in title
def _label_boxes(disp):
    from matplotlib.text import Text

    renderer = disp.figure_.canvas.get_renderer()
    disp.figure_.canvas.draw()
    return [Text.get_window_extent(a, renderer) for a in disp.labels_]  # the text, not its leader line


def _overlap(a, b) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > 0.5 and min(a.y1, b.y1) - max(a.y0, b.y0) > 0.5


def test_labels_never_collide_and_cover_no_point():
    """Issue 15: "#2" was drawn under "#4" and the labels' boxes covered points."""
    rng = np.random.default_rng(0)
    n = 400
    labels = np.arange(n) % 4
    centres = np.array([[0, 0], [6, 0], [0, 6], [6, 6]])
    coords = centres[labels] + rng.normal(size=(n, 2)) * 0.6
    top = np.arange(10) * 4  # ten examples of class 0, all in one tight cluster: labels must spread out
    coords[top] = rng.normal(size=(10, 2)) * 0.15
    events = np.zeros(n, int)
    events[top] = np.arange(10, 0, -1)
    disp = ForgettingDisplay(events=events, top=top, coords=coords, labels=labels, class_names=list("abcd"),
                             bounds=(-2, 8, -2, 8), epoch=9).plot()
    boxes = _label_boxes(disp)
    assert [a.get_text() for a in disp.labels_] == [f"#{i}" for i in range(1, 11)]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not _overlap(a, b)
    ax = disp.map_ax_.get_window_extent()
    assert all(b.x0 >= ax.x0 and b.x1 <= ax.x1 and b.y0 >= ax.y0 and b.y1 <= ax.y1 for b in boxes)
    # No label covers a point's disc (there is room on this map), nor another example's ring.
    px = disp.map_ax_.transData.transform(coords)
    for b in boxes:
        covered = (px[:, 0] > b.x0 - 2) & (px[:, 0] < b.x1 + 2) & (px[:, 1] > b.y0 - 2) & (px[:, 1] < b.y1 + 2)
        assert not covered.any(), f"a label covers {covered.sum()} points"


def test_labels_of_examples_far_apart_stay_next_to_them():
    coords = np.array([[0.0, 0.0], [10.0, 10.0], [0.0, 10.0], [10.0, 0.0]])
    disp = ForgettingDisplay(events=np.array([3, 2, 1, 0]), top=np.array([0, 1, 2]), coords=coords,
                             labels=np.zeros(4, int), class_names=["a"], bounds=(-1, 11, -1, 11), epoch=1).plot()
    boxes = _label_boxes(disp)
    px = disp.map_ax_.transData.transform(coords[:3])
    for (x, y), b in zip(px, boxes):
        cx, cy = (b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2
        assert np.hypot(cx - x, cy - y) < 40  # right beside its ring, no leader line needed
