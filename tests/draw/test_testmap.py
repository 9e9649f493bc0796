import numpy as np
import pytest
from scipy import ndimage

import epochscope
from epochscope.draw.mapframe import MapFrameRenderer
from epochscope.draw.testmap import train_test_map
from epochscope.draw.timelapse import Timelapse, map_subtitle


@pytest.fixture
def run_and_maps(synthetic_run):
    run = epochscope.open_run(synthetic_run)
    return run, epochscope.embed(run, "hidden", method="pca", progress=False)


def test_stars_sit_on_the_test_maps_coordinates(run_and_maps):
    run, maps = run_and_maps
    r = MapFrameRenderer(maps.bounds, run.labels, run.class_names, subtitle=map_subtitle(maps))
    img = train_test_map(run, maps, renderer=r)
    gold = np.linalg.norm(img.astype(float) - [255, 215, 0], axis=2) < 40
    expected = r.pixels(maps.test_coords[-1])
    inside = ((expected[:, 0] > r._cols[0] + 8) & (expected[:, 0] < r._cols[1] - 8)
              & (expected[:, 1] > r._rows[0] + 8) & (expected[:, 1] < r._rows[1] - 8))
    assert inside.sum() > 20
    # Every test point has gold (a star) within a few pixels; probe points alone would give none.
    grown = ndimage.binary_dilation(gold, iterations=3)
    for x, y in expected[inside]:
        assert grown[int(y), int(x)]
    assert "30 test examples" in r.caption.get_text()


def test_same_map_as_the_last_frame(run_and_maps):
    run, maps = run_and_maps
    last = Timelapse.from_run(run, maps, progress=False).frames[-1]
    img = train_test_map(run, maps)
    assert img.shape == last.shape
    r = MapFrameRenderer(maps.bounds, run.labels, run.class_names)
    (r0, r1), (c0, c1) = r._rows, r._cols
    same = (img[r0:r1, c0:c1] == last[r0:r1, c0:c1]).all(axis=2)
    assert same.mean() > 0.85  # only the stars differ inside the map


def test_needs_test_coordinates(fake_maps):
    fake_maps.test_coords = None
    with pytest.raises(ValueError, match="no test"):
        train_test_map(object(), fake_maps)
