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
