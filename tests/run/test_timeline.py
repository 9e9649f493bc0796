"""Records inside epochs in the run format: the manifest's record_unit and schema version, each
record's step and fractional epoch (Run.timeline), what the writer and reader refuse, and runs
recorded before (schema 1) opening unchanged."""

import json
import shutil

import numpy as np
import pytest
from synthetic import STEP_RECORDS, make_step_run, make_synthetic_run

from epochscope import RunError, open_run
from epochscope.run import MANIFEST_FILE, SCHEMA_VERSION, Manifest, RunWriter
from epochscope.run.timeline import Timeline, format_epochs


def test_a_step_run_keeps_each_records_step_and_fractional_epoch(tmp_path):
    run = open_run(make_step_run(tmp_path / "r"))
    steps = [s for s, _ in STEP_RECORDS]
    assert run.epochs == steps and run.manifest.record_unit == "step" and run.manifest.schema_version == 2 == SCHEMA_VERSION
    raw = json.loads((run.path / MANIFEST_FILE).read_text())
    assert raw["record_unit"] == "step" and raw["schema_version"] == 2
    tl = run.timeline
    assert tl.by_step and tl.axis == "epoch" and list(tl.steps) == steps
    assert list(tl.epochs) == [d for _, d in STEP_RECORDS]
    assert [tl.label(s) for s in (0, 3, 5)] == ["epoch 0 · step 0", "epoch 0.6 · step 3", "epoch 1 · step 5"]
    assert tl.title(9) == "Epoch 1.8 · step 9"
    np.testing.assert_allclose(tl.values([3, 10]), [0.6, 2.0])
    row = run.epoch_metrics(6)
    assert row["epoch"] == 6 and row["step"] == 6 and row["epochs_done"] == 1.2 and row["loss"] == pytest.approx(0.25)


def test_epoch_runs_keep_schema_1_and_their_manifest_as_before(tmp_path):
    run = open_run(make_synthetic_run(tmp_path / "r", n_epochs=3))
    raw = json.loads((run.path / MANIFEST_FILE).read_text())
    assert raw["schema_version"] == 1 and "record_unit" not in raw
    assert run.manifest.record_unit == "epoch"
    tl = run.timeline
    assert not tl.by_step and tl.axis == "epoch" and tl.steps == (None, None, None) and tl.epochs == (0.0, 1.0, 2.0)
    assert tl.label(2) == "epoch 2" and tl.title(0) == "Epoch 0"


def test_a_run_written_before_record_units_existed_opens_unchanged(tmp_path):
    """A schema-1 manifest exactly as epochscope wrote it before (no record_unit key), and a
    Lightning run whose rows hold the trainer's step as a metric: still epochs, not steps."""
    path = make_synthetic_run(tmp_path / "r", n_epochs=3)
    raw = json.loads((path / MANIFEST_FILE).read_text())
    old_keys = {"framework", "probe_size", "class_names", "test_size", "layers", "input_shape", "has_probe_inputs",
                "has_test_inputs", "created", "info", "fingerprints", "schema_version"}  # what schema 1 wrote
    assert "record_unit" not in raw and raw["schema_version"] == 1
    (path / MANIFEST_FILE).write_text(json.dumps({k: v for k, v in raw.items() if k in old_keys}))
    for e in range(3):  # the Lightning adapter stored trainer.global_step as "step" in epoch runs
        row_file = path / "epochs" / f"{e:06d}" / "metrics.json"
        row_file.write_text(json.dumps({**json.loads(row_file.read_text()), "step": 8 * e}))
    run = open_run(path)
    assert run.epochs == [0, 1, 2] and run.timeline.label(1) == "epoch 1" and run.metrics[2]["step"] == 16


@pytest.mark.parametrize("edit, message", [
    ({"record_unit": "step", "schema_version": 1}, "record_unit 'step' needs schema version 2"),
    ({"record_unit": "minute"}, "malformed manifest"),
    ({"schema_version": 3}, "schema version 3 is newer than this epochscope reads"),
])
def test_a_manifest_whose_record_unit_and_version_disagree_is_refused(tmp_path, edit, message):
    path = make_step_run(tmp_path / "r")
    raw = json.loads((path / MANIFEST_FILE).read_text())
    (path / MANIFEST_FILE).write_text(json.dumps({**raw, **edit}))
    with pytest.raises(RunError, match=message):
        open_run(path)


@pytest.mark.parametrize("record, edit, message", [
    (6, {"step": 7}, r"\"step\" is 7 but the record's folder is step 6"),
    (9, {"epochs_done": 1.1}, r"epochs_done 1.1 at step 9 is less than 1.2 at step 6"),
    (3, {"epochs_done": -0.5}, r"epochs_done: expected a finite number of epochs >= 0"),
])
def test_the_reader_refuses_a_timeline_that_contradicts_itself(tmp_path, record, edit, message):
    path = make_step_run(tmp_path / "r")
    row_file = path / "epochs" / f"{record:06d}" / "metrics.json"
    row_file.write_text(json.dumps({**json.loads(row_file.read_text()), **edit}))
    with pytest.raises(RunError, match=message):
        open_run(path).timeline  # noqa: B018 - reading it is the check


def test_the_writer_refuses_inconsistent_records(tmp_path):
    path = make_step_run(tmp_path / "r")
    labels = np.arange(120) % 3
    names = [f"class {i}" for i in range(3)]
    with RunWriter.open(path, framework="synthetic", labels=labels, class_names=names,
                        test_labels=np.arange(30) % 3) as w:
        acts = np.zeros((120, 16)), np.zeros((30, 16))
        with pytest.raises(ValueError, match="step 12 is not this record's number \\(11\\)"), w.epoch(11) as ep:
            ep.set_time(12, 2.2)
        ep = w.epoch(11)
        ep.set_time(11, 1.9)  # less than the 2.0 of step 10
        ep.set_activations("hidden", acts[0])
        ep.set_activations("hidden", acts[1], split="test")
        with pytest.raises(ValueError, match="epochs_done 1.9 is less than 2.0 at step 10"):
            ep.commit()
        ep = w.epoch(11)
        ep.set_activations("hidden", acts[0])
        ep.set_activations("hidden", acts[1], split="test")
        with pytest.raises(ValueError, match="needs each record's time; call set_time"):
            ep.commit()
        with pytest.raises(ValueError, match="epochs_done: expected a finite number"), w.epoch(11) as ep:
            ep.set_time(11, float("nan"))
    assert open_run(path).epochs == [s for s, _ in STEP_RECORDS]  # nothing half-written was kept
    assert not list((path / "epochs").glob(".partial-*"))
    epochs = make_synthetic_run(tmp_path / "e", n_epochs=2)
    with RunWriter.open(epochs, framework="synthetic", labels=np.arange(120) % 3,
                        class_names=[f"class {i}" for i in range(3)], test_labels=np.arange(30) % 3) as w:
        with pytest.raises(ValueError, match="numbers its records by epoch"), w.epoch(2) as ep:
            ep.set_time(2, 2.0)
        with pytest.raises(RunError, match="one run cannot mix both numberings"):
            w.set_record_unit("step")


def test_a_step_record_a_user_metric_cannot_move(tmp_path):
    path = tmp_path / "r"
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]) as w:
        w.set_record_unit("step")
        with w.epoch(4) as ep:
            ep.set_time(4, 0.5)
            ep.set_metrics({"step": 99, "epochs_done": 7})
    row = open_run(path).epoch_metrics(4)
    assert (row["step"], row["epochs_done"], row["user_step"], row["user_epochs_done"]) == (4, 0.5, 99, 7)


def test_unknown_epochs_put_the_records_on_a_step_axis():
    tl = Timeline.from_rows("step", [0, 40, 100], [{"step": 0, "epochs_done": 0.0}, {"step": 40, "epochs_done": None},
                                                     {"step": 100, "epochs_done": 1.0}])
    assert tl.axis == "step" and tl.label(40) == "step 40" and tl.label(100) == "epoch 1 · step 100"
    np.testing.assert_array_equal(tl.values(), [0, 40, 100])
    assert [format_epochs(v) for v in (0.0, 0.25, 2.0, 1 / 3)] == ["0", "0.25", "2", "0.33"]
    with pytest.raises(ValueError, match="record 7 is not in the run"):
        tl.value(7)


def test_manifest_round_trip_keeps_the_record_unit():
    m = Manifest(framework="t", probe_size=2, class_names=("a", "b"), record_unit="step")
    back = Manifest.from_json(json.loads(json.dumps(m.to_json())))
    assert back == m and back.schema_version == 2
    assert Manifest(framework="t", probe_size=2, class_names=("a",)).with_record_unit("step").schema_version == 2
    with pytest.raises(ValueError, match="record_unit: expected one of"):
        Manifest(framework="t", probe_size=2, class_names=("a",), record_unit="batch")


def test_a_copied_step_run_opens_the_same(tmp_path):
    path = make_step_run(tmp_path / "r")
    shutil.copytree(path, tmp_path / "copy")
    assert open_run(tmp_path / "copy").timeline == open_run(path).timeline
