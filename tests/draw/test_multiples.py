import numpy as np
import pytest

from epochscope.draw.multiples import LayerEpochGrid, spread_epochs


def test_spread_epochs():
    assert spread_epochs(range(11), 6) == [0, 2, 4, 6, 8, 10]
    assert spread_epochs([3, 4], 6) == [3, 4]
    assert spread_epochs(range(100), 3) == [0, 50, 99]


def test_a_row_per_layer_and_a_column_per_epoch(maps_factory):
    layers = [maps_factory(n_epochs=10, layer=name, seed=i) for i, name in enumerate(["conv", "hidden", "out"])]
    grid = LayerEpochGrid.from_maps(layers, np.arange(300) % 3, ["a", "b", "c"]).plot()
    assert grid.axes_.shape == (3, 6)
    assert [ax.get_title() for ax in grid.axes_[0]] == [f"epoch {e}" for e in (0, 2, 4, 5, 7, 9)]
    assert [ax.get_ylabel() for ax in grid.axes_[:, 0]] == ["conv", "hidden", "out"]
    # Each row keeps its layer's fixed axes: every cell in a row shows the same range.
    for row, m in zip(grid.axes_, layers):
        limits = {(ax.get_xlim(), ax.get_ylim()) for ax in row}
        assert len(limits) == 1
        (x0, x1), (y0, y1) = limits.pop()
        assert x0 < m.bounds[0] and x1 > m.bounds[1] and y0 < m.bounds[2] and y1 > m.bounds[3]
        # Points are drawn: the image in each cell has opaque pixels.
        for ax in row:
            assert (ax.images[0].get_array()[..., 3] > 0).sum() > 100


def test_chosen_epochs_must_exist_for_every_layer(maps_factory):
    a = maps_factory(epochs=[0, 1, 2])
    b = maps_factory(epochs=[1, 2, 3])
    grid = LayerEpochGrid.from_maps([a, b], np.arange(300) % 3, ["a", "b", "c"])
    assert grid.epochs == [1, 2]
    with pytest.raises(ValueError, match="not embedded"):
        LayerEpochGrid.from_maps([a, b], np.arange(300) % 3, ["a", "b", "c"], epochs=[0])
