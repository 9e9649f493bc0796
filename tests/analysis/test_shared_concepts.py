"""The shared concept modules agree with independent computations (matplotlib, scikit-learn, loops)."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from epochscope.analysis import confusion_counts, confusion_over_epochs, count_forgetting
from epochscope.colors import class_colors, class_colors_hex, diverging_rgb, hex_to_rgb, rgb_to_hex


@pytest.mark.parametrize("n", [1, 3, 10, 11, 20])
def test_class_colors_are_matplotlibs_tab_palettes(n):
    from matplotlib import colormaps

    expected = np.array(colormaps["tab10" if n <= 10 else "tab20"].colors[:n])
    np.testing.assert_allclose(class_colors(n), expected, atol=0.5 / 255)


def test_many_class_colors_follow_the_hue_wheel():
    n = 37
    rgb = class_colors(n)
    for i in (0, 5, 36):
        sat = 0.85 if i % 2 == 0 else 0.55
        np.testing.assert_allclose(rgb[i], colorsys.hsv_to_rgb(i / n, sat, 0.9), atol=1e-12)
    assert len({tuple(c) for c in np.round(rgb, 6)}) == n


def test_colors_reject_no_classes():
    with pytest.raises(ValueError, match="at least 1"):
        class_colors(0)


def test_hex_round_trip():
    hexes = class_colors_hex(20)
    assert rgb_to_hex(hex_to_rgb(hexes)) == hexes
    assert rgb_to_hex(diverging_rgb(np.array([-1.0]))) == ["#2166ac"]


def test_colors_module_does_not_import_matplotlib():
    import subprocess
    import sys

    code = "import sys, epochscope.colors, epochscope.analysis; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_confusion_counts_match_scikit_learn():
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 500)
    p = rng.integers(-1, 5, 500)  # -1 (no prediction) and 4 (a class the run does not name) are left out
    keep = (p >= 0) & (p < 4)
    np.testing.assert_array_equal(confusion_counts(y, p, 4), confusion_matrix(y[keep], p[keep], labels=range(4)))
    over = confusion_over_epochs(y, np.stack([p, y]), 4)
    assert over.shape == (2, 4, 4)
    np.testing.assert_array_equal(over[1], np.diag(np.bincount(y, minlength=4)))


def test_count_forgetting_matches_a_loop():
    rng = np.random.default_rng(1)
    correct = rng.random((7, 50)) < 0.6
    expected = [sum(correct[e, i] and not correct[e + 1, i] for e in range(6)) for i in range(50)]
    assert count_forgetting(correct).tolist() == expected
    assert count_forgetting(correct[:1]).tolist() == [0] * 50
