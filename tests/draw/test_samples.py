import numpy as np
import pytest

import epochscope
from epochscope.draw.samples import SamplesDisplay, as_images, pick_examples


def test_image_layouts():
    assert as_images(np.zeros((2, 1, 5, 6))).shape == (2, 5, 6)
    assert as_images(np.zeros((2, 5, 6, 1))).shape == (2, 5, 6)
    assert as_images(np.zeros((2, 3, 5, 6))).shape == (2, 5, 6, 3)
    assert as_images(np.zeros((2, 5, 6))).shape == (2, 5, 6)
    with pytest.raises(ValueError, match="not images"):
        as_images(np.zeros((2, 4)))


def test_every_class_shows_up():
    labels = np.repeat([0, 1, 2], [50, 3, 47])
    picked = pick_examples(labels, 9)
    assert len(picked) == 9 and set(labels[picked]) == {0, 1, 2}


def test_grid_of_probe_images_with_class_titles(synthetic_run):
    run = epochscope.open_run(synthetic_run)
    disp = SamplesDisplay.from_run(run).plot()
    assert len(disp.images) == 100
    assert len(disp.titles_) == 100
    idx = pick_examples(run.labels, 100)
    assert [t.get_text() for t in disp.titles_] == [run.class_names[run.labels[i]] for i in idx]
    mosaic = disp.image_.get_array()
    assert mosaic.shape[0] > 10 * 8 and mosaic.shape[1] > 10 * 8
    # The first image sits in the first cell, scaled to [0, 1] over the whole set.
    x = np.asarray(run.probe_inputs[idx], dtype=np.float32)[:, 0]
    first = (x[0] - x.min()) / (x.max() - x.min())
    cell_h = mosaic.shape[0] // 10
    pad, strip = 1, cell_h - 8 - 1
    np.testing.assert_allclose(mosaic[strip:strip + 8, pad:pad + 8], first, atol=1e-3)


def test_one_class_per_column_when_columns_match_classes():
    labels = np.random.default_rng(0).integers(0, 10, 500)
    picked = pick_examples(labels, 100).reshape(10, 10)
    for col in range(10):
        assert set(labels[picked[:, col]]) == {col}
