"""How many optimisation passes a warm frame of the ``umap`` chain gets (no UMAP needed)."""

import numpy as np
import pytest

from epochscope.maps.umap_chain import FULL_CHANGE, UmapChainSettings, changed_fraction, warm_passes


def test_changed_fraction_counts_new_neighbours_and_ignores_the_point_itself():
    rng = np.random.default_rng(0)
    old = np.stack([np.concatenate([[i], rng.choice(np.delete(np.arange(100), i), 10, replace=False)])
                    for i in range(100)])
    assert changed_fraction(old, old) == 0.0
    new = old.copy()
    new[:50, 1:6] = -1 - np.arange(5)  # half the points swap 5 of their 10 neighbours for new ones
    assert changed_fraction(new, old) == pytest.approx(0.25)
    # the order of the neighbours does not matter, only the set
    assert changed_fraction(np.concatenate([old[:, :1], old[:, :0:-1]], axis=1), old) == 0.0


def test_warm_passes_scale_with_the_change_between_bounds():
    assert warm_passes(FULL_CHANGE, 20, 5) == 20
    assert warm_passes(0.9, 20, 5) == 20
    assert warm_passes(FULL_CHANGE / 2, 20, 5) == 10
    assert warm_passes(0.0, 20, 5) == 5
    assert warm_passes(0.0, 20, 20) == 20  # min == max: a fixed count


def test_min_warm_epochs_above_warm_epochs_is_refused():
    with pytest.raises(ValueError, match="min_warm_epochs"):
        UmapChainSettings(warm_epochs=10, min_warm_epochs=20)
    with pytest.raises(ValueError, match="min_warm_epochs"):
        UmapChainSettings(min_warm_epochs=0)
