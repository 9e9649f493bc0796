"""The framework-free recording core: settings in, metric names normalised once, reserved names kept."""

import json
import logging

import numpy as np
import pytest

from epochscope import open_run
from epochscope.record.core import RecordingSession
from epochscope.record.settings import RecordSettings


def session(tmp_path, **options):
    return RecordingSession(RecordSettings(tmp_path / "run", ["hidden"], **options), probe_labels=[0, 1, 1, 0],
                            framework="numpy")


def record(s, epoch, metrics=None, counters=None):
    with s.start_epoch(epoch) as rec:
        rec.add_batch("probe", 0, {"hidden": np.arange(8.0).reshape(4, 2)}, np.eye(2)[[0, 1, 0, 0]])
        rec.commit(metrics=metrics, counters=counters)


def test_the_core_takes_the_settings(tmp_path):
    s = session(tmp_path, class_names=["no", "yes"], reduce="none", resume=False)
    assert s.layers == ["hidden"] and s.class_names == ("no", "yes") and s.reduction.method == "none"
    record(s, 0)
    s.close()
    run = open_run(tmp_path / "run")
    assert run.class_names == ["no", "yes"] and run.framework == "numpy" and run.metrics[0]["probe_accuracy"] == 0.75
    with pytest.raises(TypeError, match="settings: expected a RecordSettings, got str"):
        RecordingSession(str(tmp_path / "other"), probe_labels=[0, 1], framework="numpy")


def test_metrics_are_normalised_and_never_replace_what_the_run_writes(tmp_path, caplog):
    s = session(tmp_path)
    with caplog.at_level(logging.WARNING, logger="epochscope"):
        for epoch in (0, 1):
            record(s, epoch, metrics={"train/loss_step": 9.0, "train/loss_epoch": 0.5, "val/acc": 0.25, "epoch": 41,
                                      "wall_time": 1.0, "Loss/val": float("nan")}, counters={"step": 10 * epoch})
    s.close()
    row = json.loads((tmp_path / "run" / "epochs" / "000001" / "metrics.json").read_text())
    assert row["epoch"] == 1 and row["user_epoch"] == 41 and row["step"] == 10
    assert row["loss"] == 0.5 and row["val_accuracy"] == 0.25 and np.isnan(row["val_loss"])
    assert row["user_wall_time"] == 1.0 and row["wall_time"] > 1e9 and row["probe_accuracy"] == 0.75
    assert not any("/" in k or k.endswith("_step") for k in row)
    assert sorted(r.getMessage().split("'")[1] for r in caplog.records) == ["epoch", "wall_time"]  # once per run


def test_counters_take_only_reserved_names(tmp_path):
    s = session(tmp_path)
    with pytest.raises(ValueError, match=r"counters: expected reserved names \(.*step.*\), got \['loss'\]; pass other "
                                         "values as metrics"):
        record(s, 0, counters={"loss": 1.0})
    s.close()
    assert open_run(tmp_path / "run").epochs == []
