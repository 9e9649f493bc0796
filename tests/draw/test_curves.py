import numpy as np

import epochscope
from epochscope.draw.curves import CurvesDisplay


def test_one_point_per_epoch_for_each_recorded_series(synthetic_run):
    run = epochscope.open_run(synthetic_run)
    disp = CurvesDisplay.from_run(run).plot()
    assert set(disp.lines_) == {"accuracy", "val_accuracy", "loss", "val_loss"}
    for key, line in disp.lines_.items():
        np.testing.assert_array_equal(line.get_xdata(), run.epochs)
        np.testing.assert_allclose(line.get_ydata(), [m[key] for m in run.metrics])
    acc_ax, loss_ax = disp.axes_
    assert acc_ax.get_title() == "Accuracy" and loss_ax.get_title() == "Loss"
    assert disp.lines_["accuracy"] in acc_ax.lines and disp.lines_["loss"] in loss_ax.lines


def test_missing_values_are_skipped_not_drawn_as_zero():
    rows = [{"epoch": 0, "loss": 2.0, "accuracy": 0.1}, {"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.2}]
    disp = CurvesDisplay.from_metrics(rows).plot()
    assert "val_accuracy" not in disp.lines_
    np.testing.assert_array_equal(disp.lines_["val_loss"].get_xdata(), [1])


def test_draws_on_given_axes():
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2)
    disp = CurvesDisplay.from_metrics([{"epoch": 0, "loss": 1.0}]).plot(ax=axes)
    assert disp.figure_ is fig
