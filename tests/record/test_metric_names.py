"""One spelling for training metrics, whatever Keras or a Lightning user called them."""

import numpy as np
import pytest

from epochscope.record.metric_names import normalise_metrics


@pytest.mark.parametrize("raw, expected", [
    ({"acc": 0.5, "val_acc": 0.4, "loss": 1.2, "val_loss": 1.3},
     {"accuracy": 0.5, "val_accuracy": 0.4, "loss": 1.2, "val_loss": 1.3}),
    ({"accuracy": 0.5, "val_accuracy": 0.4}, {"accuracy": 0.5, "val_accuracy": 0.4}),
    ({"sparse_categorical_accuracy": 0.7, "val_sparse_categorical_accuracy": 0.6},
     {"sparse_categorical_accuracy": 0.7, "val_sparse_categorical_accuracy": 0.6, "accuracy": 0.7, "val_accuracy": 0.6}),
    ({"train_loss": 1.0, "train_loss_step": 2.0, "train_loss_epoch": 1.0, "val_acc_epoch": 0.3},
     {"loss": 1.0, "val_accuracy": 0.3}),
    ({"lr-Adam": 1e-3, "epoch": 4.0, "name": "adam", "hist": np.ones(3)}, {"lr-Adam": 1e-3}),
])
def test_normalises_names_and_keeps_the_rest(raw, expected):
    assert normalise_metrics(raw) == pytest.approx(expected)
    assert list(normalise_metrics(raw)) == list(expected)


def test_both_spellings_logged_keeps_both_as_given():
    assert normalise_metrics({"acc": 0.1, "accuracy": 0.2}) == {"acc": 0.1, "accuracy": 0.2}


def test_framework_scalars_become_floats():
    torch = pytest.importorskip("torch")
    out = normalise_metrics({"loss": torch.tensor(0.25), "accuracy": np.float32(0.5), "one": np.array([2.0]),
                             "nan": float("nan"), "none": None})
    assert out["loss"] == 0.25 and out["accuracy"] == 0.5 and out["one"] == 2.0 and np.isnan(out["nan"])
    assert "none" not in out and all(type(v) is float for v in out.values())
    assert normalise_metrics(None) == {}
