import numpy as np
import pytest

import epochscope
from epochscope.analysis import confusion_counts
from epochscope.draw.confusion import ConfusionDisplay


def test_counts_sum_to_the_test_size_and_match_the_predictions(synthetic_run):
    run = epochscope.open_run(synthetic_run)
    disp = ConfusionDisplay.from_run(run, epoch=2)
    y, p = run.test_labels, run.test_predictions(2)
    assert disp.split == "test" and disp.epoch == 2
    assert disp.counts.sum() == run.manifest.test_size == len(y)
    assert np.trace(disp.counts) == (y == p).sum()
    for t in range(3):
        assert disp.counts[t].sum() == (y == t).sum()
    disp.plot()
    assert disp.text_.shape == (3, 3)
    assert [[t.get_text() for t in row] for row in disp.text_] == [[str(c) for c in row] for row in disp.counts]
    assert f"accuracy {(y == p).mean():.3f}" in disp.ax_.get_title()
    assert [t.get_text() for t in disp.ax_.get_xticklabels()] == run.class_names


def test_last_epoch_by_default_and_probe_on_request(synthetic_run):
    run = epochscope.open_run(synthetic_run)
    assert ConfusionDisplay.from_run(run).epoch == run.epochs[-1]
    probe = ConfusionDisplay.from_run(run, split="probe")
    assert probe.counts.sum() == run.manifest.probe_size
    with pytest.raises(ValueError, match="split"):
        ConfusionDisplay.from_run(run, split="train")


def test_unknown_predictions_are_left_out_but_count_as_wrong():
    counts = confusion_counts(np.array([0, 1, 1, 2]), np.array([0, -1, 1, 0]), 3)
    assert counts.tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]
    disp = ConfusionDisplay(counts=counts, class_names=["a", "b", "c"], unknown=1)
    assert disp.accuracy == pytest.approx(2 / 4)


def test_many_classes_drop_the_cell_values():
    disp = ConfusionDisplay(counts=np.eye(40, dtype=np.int64), class_names=[str(i) for i in range(40)]).plot()
    assert disp.text_ is None


def test_a_run_imported_from_checkpoints_has_no_confusion_matrix_to_draw(tmp_path):
    """An imported run's one-example probe is a placeholder: drawing it gave "Probe set at epoch 3,
    accuracy 0.000 (1 examples)" with invented class names. It must say what the run lacks instead."""
    import numpy as np

    from epochscope import open_run
    from epochscope.importers._common import write_imported_run

    w = {"fc.weight": np.ones((3, 4), np.float32)}
    path = write_imported_run(tmp_path / "run", framework="chainer", frames=[(1, w, {"loss": 1.0}), (2, w, {"loss": 0.5})],
                              info={"imported_from": "chainer", "source": "x"})
    with pytest.raises(ValueError, match="no predictions.*imported from chainer checkpoints"):
        ConfusionDisplay.from_run(open_run(path))
