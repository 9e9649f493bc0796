import numpy as np
import pytest

from epochscope.draw.quality import QualityDisplay


def test_quality_under_the_accuracy_curve(fake_maps):
    metrics = [{"epoch": e, "accuracy": 0.5 + 0.1 * e, "val_accuracy": 0.4 + 0.1 * e} for e in fake_maps.epochs]
    disp = QualityDisplay.from_maps(fake_maps, metrics).plot()
    top, bottom = disp.axes_
    assert disp.lines_["accuracy"] in top.lines and disp.lines_["val_accuracy"] in top.lines
    for key in ("trustworthiness", "cka_previous", "knn_accuracy_map"):
        assert disp.lines_[key] in bottom.lines
        q = fake_maps.quality[key]
        ok = np.isfinite(q)
        np.testing.assert_allclose(disp.lines_[key].get_ydata(), q[ok])
        np.testing.assert_array_equal(disp.lines_[key].get_xdata(), np.array(fake_maps.epochs)[ok])
    assert disp.lines_["motion"] in disp.motion_ax_.lines
    assert len(disp.lines_["motion"].get_xdata()) == len(fake_maps.epochs) - 1  # NaN first epoch left out
    assert top.get_position().y0 > bottom.get_position().y1  # accuracy above


def test_metrics_per_map_epoch(fake_maps):
    with pytest.raises(ValueError, match="one row per map epoch"):
        QualityDisplay.from_maps(fake_maps, [{}])
