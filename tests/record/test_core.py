"""The framework-free recording core: settings in, metric names normalised once, reserved names kept."""

import json
import logging

import numpy as np
import pytest

from epochscope import EpochscopeError, check_run, open_run
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


def test_an_epoch_whose_rows_were_not_all_written_is_never_committed(tmp_path):
    s = RecordingSession(RecordSettings(tmp_path / "run", ["seq"]), probe_labels=np.arange(100) % 3, framework="numpy")
    with pytest.raises(EpochscopeError, match=r"epoch 0 was not recorded: never written: layer 'seq' on the probe set: "
                                              r"rows 6\.\.99 of 100"):
        with s.start_epoch(0) as rec:
            # What a sequence-first layer gave before: 6 rows (its tokens) for a batch of 100 examples.
            rec.add_batch("probe", 0, {"seq": np.ones((6, 4))}, None, size=6)
    s.close()
    assert open_run(tmp_path / "run").epochs == []
    assert not list((tmp_path / "run" / "epochs").iterdir())


def test_every_array_is_checked_against_the_batch_size(tmp_path):
    s = session(tmp_path)
    with pytest.raises(ValueError, match=r"layer 'hidden' output shape \(5, 4, 2\) for a batch of 4 examples: its first "
                                         r"axis \(5\) is not the batch; its second axis is the batch, so it is "
                                         r"sequence-first"):
        with s.start_epoch(0) as rec:
            rec.add_batch("probe", 0, {"hidden": np.ones((5, 4, 2))}, np.eye(2)[[0, 1, 0, 0]], size=4)
    with pytest.raises(ValueError, match=r"the model output shape \(3, 2\) for a batch of 4 examples: its first axis "
                                         r"\(3\) is not the batch; none of its leading axes is the batch"):
        with s.start_epoch(0) as rec:
            rec.add_batch("probe", 0, {"hidden": np.ones((4, 2))}, np.ones((3, 2)), size=4)
    s.close()
    assert open_run(tmp_path / "run").epochs == []


@pytest.mark.parametrize("how,expected", [("mean", [[2.0], [1.0]]), ("first", [[1.0], [1.0]]), ("last", [[3.0], [1.0]]),
                                          ("none", [[1.0, 2.0, 3.0, 9.0], [1.0, 5.0, 5.0, 5.0]])])
def test_sequences_are_reduced_over_their_real_tokens_and_the_manifest_says_how(tmp_path, how, expected):
    s = RecordingSession(RecordSettings(tmp_path / "run", ["seq"], tokens=how), probe_labels=[0, 1], framework="numpy")
    seq = np.array([[1.0, 2.0, 3.0, 9.0], [1.0, 5.0, 5.0, 5.0]])[:, :, None]  # (2 examples, 4 tokens, 1 feature)
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], bool)  # the 9 and the 5s are padding
    with s.start_epoch(0) as rec:
        rec.add_batch("probe", 0, {"seq": seq}, None, size=2, sequences={"seq"}, token_mask=("attention_mask", mask))
    s.close()
    run = open_run(tmp_path / "run")
    np.testing.assert_array_equal(run.activations("seq", 0), expected)
    info = run.layer_info("seq")
    assert info.output_shape == (4, 1)
    if how == "none":
        assert info.reduction is None
    else:
        assert info.reduction == {"method": "tokens", "from": 4, "to": 1, "seed": 0, "tokens": how,
                                  "mask": "attention_mask"}


def test_labels_of_every_split_share_one_vocabulary(tmp_path):
    s = RecordingSession(RecordSettings(tmp_path / "run", ["hidden"]), probe_labels=["cat", "dog", "cat", "dog"],
                         test_labels=["dog", "eel"], framework="numpy")
    s.close()
    assert s.class_names == ("cat", "dog", "eel") and s.labels.tolist() == [0, 1, 0, 1] and s.test_labels.tolist() == [1, 2]


def test_a_metrics_row_too_large_to_read_back_is_refused_and_the_run_goes_on(tmp_path):
    s = session(tmp_path)
    record(s, 0, metrics={"loss": 1.0})
    # 200,000 per-example values as metrics: about 6 MB of JSON, more than a reader reads (4 MiB)
    many = {f"loss_of_example_{i}": 0.5 for i in range(200_000)}
    with pytest.raises(ValueError, match=r"epoch 1: its metrics row is [\d,]+ bytes as JSON, more than the 4,194,304 "
                                         r"a reader reads \(200,00\d values;.*The epoch was discarded"):
        record(s, 1, metrics=many)
    record(s, 1, metrics={"loss": 0.5})
    s.close()
    run = open_run(tmp_path / "run")
    assert run.epochs == [0, 1] and run.epoch_metrics(1)["loss"] == 0.5
    assert check_run(tmp_path / "run").ok


def test_class_names_too_many_for_the_manifest_are_refused_before_anything_is_written(tmp_path):
    # 100,000 classes named by a sentence each: about 72 MB of manifest, more than a reader reads (64 MiB)
    names = [f"product {i}: " + "a long description of the class " * 22 for i in range(100_000)]
    labels = [0, 1, 1, 0]
    with pytest.raises(ValueError, match=r"creating the run, .*manifest.json would be [\d,]+ bytes as JSON, more than "
                                         r"the 67,108,864 a reader reads \(the largest: 'class_names' \(100,000 items"
                                         r".*give fewer or shorter class names.*Nothing was written"):
        RecordingSession(RecordSettings(tmp_path / "run", ["hidden"], class_names=names), probe_labels=labels,
                         framework="numpy")
    s = RecordingSession(RecordSettings(tmp_path / "run", ["hidden"], class_names=names[:2]), probe_labels=labels,
                         framework="numpy")  # the folder is free for the next try
    record(s, 0)
    s.close()
    assert open_run(tmp_path / "run").epochs == [0] and check_run(tmp_path / "run").ok
