"""The pictures of a run recorded inside epochs: every time axis shows the records' fractional
epochs (steps where those are unknown), every frame names its epoch and step; a run recorded once
an epoch draws as before (integer epochs, "Epoch N")."""

import json

import numpy as np
import pytest
from synthetic import STEP_RECORDS, make_step_run, make_synthetic_run

import epochscope
from epochscope.draw.curves import CurvesDisplay
from epochscope.draw.network import NetworkDisplay
from epochscope.draw.quality import QualityDisplay
from epochscope.draw.timelapse import MapDisplay, Timelapse

STEPS = [s for s, _ in STEP_RECORDS]
EPOCHS = [d for _, d in STEP_RECORDS]


@pytest.fixture
def step_run(tmp_path):
    return epochscope.open_run(make_step_run(tmp_path / "steps"))


@pytest.fixture
def maps_of(maps_factory):
    return lambda run: maps_factory(n=run.manifest.probe_size, n_test=run.manifest.test_size, epochs=run.epochs)


def test_curves_put_each_record_at_its_fractional_epoch(step_run):
    disp = CurvesDisplay.from_run(step_run).plot()
    np.testing.assert_allclose(disp.lines_["accuracy"].get_xdata(), EPOCHS)
    np.testing.assert_allclose(disp.lines_["loss"].get_ydata(), [1 / (i + 1) for i in range(len(STEPS))])
    assert [ax.get_xlabel() for ax in disp.axes_] == ["epoch", "epoch"]


def test_records_whose_epoch_is_unknown_put_the_curves_on_a_step_axis(step_run):
    row = step_run.path / "epochs" / "000003" / "metrics.json"
    row.write_text(json.dumps({**json.loads(row.read_text()), "epochs_done": None}))
    disp = CurvesDisplay.from_run(step_run).plot()
    np.testing.assert_array_equal(disp.lines_["accuracy"].get_xdata(), STEPS)
    assert disp.axes_[0].get_xlabel() == "step"


def test_quality_and_frames_name_the_epoch_and_step(step_run, maps_of):
    maps = maps_of(step_run)
    q = QualityDisplay.from_run(step_run, maps).plot()
    np.testing.assert_allclose(q.lines_["trustworthiness"].get_xdata(), EPOCHS)
    assert q.axes_[1].get_xlabel() == "epoch" and q.motion_ax_.get_ylabel() == "motion (map radii per record)"
    lapse = Timelapse.from_run(step_run, maps, progress=False)
    assert lapse.titles == ["Epoch 0 · step 0", "Epoch 0.6 · step 3", "Epoch 1 · step 5", "Epoch 1.2 · step 6",
                            "Epoch 1.8 · step 9", "Epoch 2 · step 10"]
    frame = MapDisplay.from_run(step_run, maps, epoch=3)
    assert frame.title == "Epoch 0.6 · step 3" and np.array_equal(frame.image, lapse.frames[1])
    # the title is drawn: the frames of records 3 and 5 differ where their titles differ, not only in the points
    other = MapDisplay.from_run(step_run, maps_of(step_run), epoch=5)
    top = slice(0, frame.image.shape[0] // 12)
    assert (frame.image[top] != other.image[top]).any()


def test_the_network_curve_and_frame_label_follow_the_records(step_run):
    disp = NetworkDisplay.from_run(step_run, epoch=6).plot()
    assert disp.epoch_text_.get_text() == "epoch 1.2 · step 6"
    np.testing.assert_allclose(disp.marker_.get_xdata(), [1.2])
    curve = disp.ax_curve_.lines[0]
    np.testing.assert_allclose(curve.get_xdata(), EPOCHS)
    assert disp.ax_curve_.get_xlabel() == "epoch"


def test_an_epoch_run_draws_as_before(tmp_path, maps_of):
    run = epochscope.open_run(make_synthetic_run(tmp_path / "r", n_epochs=4))
    maps = maps_of(run)
    curves = CurvesDisplay.from_run(run).plot()
    x = curves.lines_["accuracy"].get_xdata()
    assert list(x) == [0, 1, 2, 3] and np.asarray(x).dtype.kind == "i" and curves.axes_[0].get_xlabel() == "epoch"
    assert list(curves.axes_[0].get_xticks()) == [0, 1, 2, 3]
    q = QualityDisplay.from_run(run, maps).plot()
    assert q.motion_ax_.get_ylabel() == "motion (map radii per epoch)"
    assert Timelapse.from_run(run, maps, progress=False).titles == ["Epoch 0", "Epoch 1", "Epoch 2", "Epoch 3"]
    net = NetworkDisplay.from_run(run, epoch=2).plot()
    assert net.epoch_text_.get_text() == "epoch 2" and list(net.marker_.get_xdata()) == [2]
