"""The one metric-name normaliser, on names spelled as each framework and logger really spells them.

Sources of the spellings: Keras 3's ``fit`` logs; Lightning 2.x's ``trainer.callback_metrics``
for ``self.log("train/loss", on_step=True, on_epoch=True)`` (``train/loss``, ``train/loss_step``,
``train/loss_epoch``) and its ``CSVLogger`` columns (``train/loss_epoch``, ``val/acc``; checked
against a real run in tests/importers/test_checkpoints.py); ``LearningRateMonitor``'s
``lr-Adam``; TensorBoard tags from PyTorch's tutorial (``Loss/train``, ``Accuracy/test``); the
keys of Chainer's ``LogReport`` (``main/loss``, ``validation/main/accuracy``, ``elapsed_time``).
"""

import logging

import numpy as np
import pytest

from epochscope.metric_names import RESERVED, metric_name, metric_value, normalise_metrics

RULES = [
    # Keras: compile(metrics=["accuracy"]) / ["acc"] / the descriptive metric objects
    ("keras accuracy", {"loss": 1.2, "accuracy": 0.5, "val_loss": 1.3, "val_accuracy": 0.4, "learning_rate": 1e-3},
     {"loss": 1.2, "accuracy": 0.5, "val_loss": 1.3, "val_accuracy": 0.4, "learning_rate": 1e-3}),
    ("keras acc", {"acc": 0.5, "val_acc": 0.4, "loss": 1.2, "val_loss": 1.3},
     {"accuracy": 0.5, "val_accuracy": 0.4, "loss": 1.2, "val_loss": 1.3}),
    ("keras sparse_categorical_accuracy", {"sparse_categorical_accuracy": 0.7, "val_sparse_categorical_accuracy": 0.6},
     {"sparse_categorical_accuracy": 0.7, "val_sparse_categorical_accuracy": 0.6, "accuracy": 0.7, "val_accuracy": 0.6}),
    ("keras categorical and binary", {"categorical_accuracy": 0.3, "val_binary_accuracy": 0.2},
     {"categorical_accuracy": 0.3, "val_binary_accuracy": 0.2, "accuracy": 0.3, "val_accuracy": 0.2}),
    # Lightning callback_metrics, self.log("train_loss", on_step=True, on_epoch=True), self.log("val_acc")
    ("lightning underscores", {"train_loss": 1.0, "train_loss_step": 2.0, "train_loss_epoch": 1.0, "val_acc_epoch": 0.3},
     {"loss": 1.0, "val_accuracy": 0.3}),
    # Lightning callback_metrics, self.log("train/loss", on_step=True, on_epoch=True), self.log("val/acc") ...
    ("lightning slashes", {"train/acc": 0.6, "train/acc_epoch": 0.6, "train/acc_step": 0.9, "train/loss": 0.8,
                           "train/loss_epoch": 0.8, "train/loss_step": 0.5, "val/acc": 0.55, "val/loss": 0.9},
     {"accuracy": 0.6, "loss": 0.8, "val_accuracy": 0.55, "val_loss": 0.9}),
    # ... and the same run's CSVLogger columns (no un-suffixed train/loss there)
    ("lightning metrics.csv", {"train/acc_epoch": 0.6, "train/loss_epoch": 0.8, "val/acc": 0.55, "val/loss": 0.9},
     {"accuracy": 0.6, "loss": 0.8, "val_accuracy": 0.55, "val_loss": 0.9}),
    ("lightning metrics.csv underscores", {"train_loss_step": 0.5, "train_loss_epoch": 0.8, "val_loss": 0.9},
     {"loss": 0.8, "val_loss": 0.9}),
    ("lightning valid/validation", {"valid/loss": 0.9, "validation_accuracy": 0.5, "training_loss": 1.1},
     {"val_loss": 0.9, "val_accuracy": 0.5, "loss": 1.1}),
    ("lightning lr monitor", {"lr-Adam": 1e-3, "lr-SGD/pg1": 0.1}, {"lr-Adam": 1e-3, "lr-SGD_pg1": 0.1}),
    # TensorBoard tags, split last (writer.add_scalar("Loss/train", ...))
    ("tensorboard tags", {"Loss/train": 0.7, "Accuracy/train": 0.8, "Loss/val": 0.9, "Accuracy/validation": 0.75},
     {"loss": 0.7, "accuracy": 0.8, "val_loss": 0.9, "val_accuracy": 0.75}),
    # Chainer LogReport (lr from observe_lr())
    ("chainer log", {"main/loss": 0.4, "main/accuracy": 0.9, "validation/main/loss": 0.5,
                     "validation/main/accuracy": 0.85, "validation/main/map": 0.7, "elapsed_time": 12.5, "lr": 0.01},
     {"loss": 0.4, "accuracy": 0.9, "val_loss": 0.5, "val_accuracy": 0.85, "val_map": 0.7, "elapsed": 12.5, "lr": 0.01}),
    # Hugging Face Trainer's state.log_history at an epoch's end (compute_metrics returning {"accuracy": ...})
    ("hugging face trainer", {"loss": 0.69, "grad_norm": 0.24, "learning_rate": 6.25e-06, "eval_loss": 0.693,
                              "eval_accuracy": 0.5, "eval_runtime": 0.0287, "eval_samples_per_second": 557.8},
     {"loss": 0.69, "grad_norm": 0.24, "learning_rate": 6.25e-06, "val_loss": 0.693, "val_accuracy": 0.5,
      "eval_runtime": 0.0287, "eval_samples_per_second": 557.8}),
    # names that must stay as they are
    ("other names", {"train_seconds": 3.5, "val_f1": 0.4, "grad_norm": 2.0, "ACC": 0.3},
     {"train_seconds": 3.5, "val_f1": 0.4, "grad_norm": 2.0, "accuracy": 0.3}),
]


@pytest.mark.parametrize("case,raw,expected", RULES, ids=[r[0] for r in RULES])
def test_one_spelling_per_metric(case, raw, expected):
    out = normalise_metrics(raw, reserved=())
    assert out == pytest.approx(expected)
    assert list(out) == list(expected)  # the order given, copies last


@pytest.mark.parametrize("raw,name", [
    ("val/acc", "val_accuracy"), ("val/acc_epoch", "val_accuracy"), ("train/loss_step", None),
    ("validation/main/accuracy", "val_accuracy"), ("main/loss", "loss"), ("Loss/train", "loss"),
    ("Accuracy/test", "test_accuracy"), ("test/acc", "test_accuracy"), ("test_acc", "test_accuracy"),
    ("val_acc", "val_accuracy"), ("valid_loss", "val_loss"), ("sparse_categorical_accuracy", "sparse_categorical_accuracy"),
    ("a/b/c", "a_b_c"), ("charts/episodic_return", "charts_episodic_return"), ("_epoch", "_epoch"),
])
def test_metric_name_of_one_name(raw, name):
    assert metric_name(raw) == name


def test_both_spellings_logged_keeps_both_as_given():
    assert normalise_metrics({"acc": 0.1, "accuracy": 0.2}) == {"acc": 0.1, "accuracy": 0.2}
    assert normalise_metrics({"accuracy": 0.2, "train/acc": 0.1}) == {"accuracy": 0.2, "train_acc": 0.1}
    # two renamed names for one place: the first keeps it, the second its own name
    assert normalise_metrics({"train_loss": 1.0, "Loss/train": 2.0}) == {"loss": 1.0, "Loss_train": 2.0}


def test_nan_and_infinities_are_kept():
    out = normalise_metrics({"loss": float("nan"), "val_loss": float("inf"), "grad": "nan"})
    assert np.isnan(out["loss"]) and out["val_loss"] == np.inf and np.isnan(out["grad"])


def test_framework_scalars_become_numbers_and_the_rest_is_left_out():
    torch = pytest.importorskip("torch")
    out = normalise_metrics({"loss": torch.tensor(0.25), "accuracy": np.float32(0.5), "one": np.array([2.0]),
                             "cell": "0.75", "count": np.int64(7), "nan": float("nan"), "none": None, "flag": True,
                             "text": "adam", "hist": np.ones(3), "blank": ""})
    assert out["loss"] == 0.25 and out["accuracy"] == 0.5 and out["one"] == 2.0 and out["cell"] == 0.75
    assert out["count"] == 7 and type(out["count"]) is int and np.isnan(out["nan"])
    assert set(out) == {"loss", "accuracy", "one", "cell", "count", "nan"}
    assert all(type(v) is float for k, v in out.items() if k != "count")
    assert normalise_metrics(None) == {}
    assert metric_value(torch.tensor([3])) == 3 and metric_value([0.5]) == 0.5 and metric_value([1, 2]) is None


def test_reserved_names_are_kept_as_user_names_with_one_warning(caplog):
    """A user metric named like one epochscope writes never replaces it (issue 12, kind 7)."""
    assert {"epoch", "step", "wall_time", "elapsed", "record_seconds", "probe_accuracy", "test_accuracy"} <= RESERVED
    warned: set[str] = set()
    with caplog.at_level(logging.WARNING, logger="epochscope"):
        for _ in range(3):
            out = normalise_metrics({"epoch": 7, "loss": 0.5, "step": 120, "test_acc": 0.8}, warned=warned)
    assert out == {"user_epoch": 7, "loss": 0.5, "user_step": 120, "user_test_accuracy": 0.8}
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3 and messages[0] == (
        "metric 'epoch' is a name epochscope writes itself; your value is stored as 'user_epoch' "
        "(rename the metric to silence this)")
    # a caller that writes none of them (an importer writes only "epoch") keeps the others as named
    assert normalise_metrics({"step": 120, "elapsed_time": 3.0}, reserved=("epoch",)) == {"step": 120, "elapsed": 3.0}


def test_normalising_twice_changes_nothing_more():
    raw = {name: 0.5 for case in RULES for name in case[1]}
    once = normalise_metrics(raw)
    assert normalise_metrics(once, reserved=()) == once
