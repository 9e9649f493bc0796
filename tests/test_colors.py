"""The weight-change scale of the network drawing (the class colours: tests/analysis/test_shared_concepts.py)."""

import numpy as np

from epochscope.colors import GREW_RGB, NEUTRAL_RGB, SHRANK_RGB, diverging_rgb, rgb_to_hex


def test_colour_map_ends_and_hex():
    rgb = diverging_rgb(np.array([-1.0, 0.0, 1.0, 7.0]))
    np.testing.assert_allclose(rgb[0], SHRANK_RGB)
    np.testing.assert_allclose(rgb[1], NEUTRAL_RGB)
    np.testing.assert_allclose(rgb[2], GREW_RGB)
    np.testing.assert_allclose(rgb[3], GREW_RGB)  # clipped
    assert rgb_to_hex(rgb[:1]) == ["#2166ac"]


