"""Node positions and the grouping of wide layers."""

from __future__ import annotations

import numpy as np

from epochscope.network.layout import collapse, node_groups, node_layout


def test_layout_has_one_centred_column_per_layer():
    xy = node_layout([4, 5, 5, 5, 3])
    assert xy.shape == (22, 2)
    columns = np.split(xy, np.cumsum([4, 5, 5, 5]))
    assert [len(c) for c in columns] == [4, 5, 5, 5, 3]
    assert [float(c[0, 0]) for c in columns] == [0.0, 0.25, 0.5, 0.75, 1.0]
    for c in columns:
        assert np.allclose(c[:, 1].mean(), 0.5)  # centred
        assert np.all(np.diff(c[:, 1]) < 0)  # first node on top


def test_wide_columns_collapse_into_groups_with_the_block_mean():
    starts = node_groups(784, 32)
    assert len(starts) == 32 and starts[0] == 0
    assert np.array_equal(node_groups(10, 32), np.arange(10))
    m = np.arange(6 * 4, dtype=np.float32).reshape(6, 4)
    c = collapse(m, np.array([0, 3]), np.array([0, 2]))
    assert c.shape == (2, 2)
    np.testing.assert_allclose(c[1, 1], m[3:, 2:].mean())
