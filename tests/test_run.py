"""The run directory: layout, atomic epochs, resume, safety of names, errors that explain."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from epochscope import NotARunError, RunError, RunLockedError, open_run
from epochscope.run import MANIFEST_FILE, RunWriter, layer_key


def test_synthetic_run_reads_back(synthetic_run):
    run = open_run(synthetic_run)
    assert run.epochs == [0, 1, 2, 3, 4]
    assert run.layers == ["hidden"]
    assert run.class_names == ["class 0", "class 1", "class 2"]
    acts = run.activations("hidden", 2)
    assert acts.shape == (120, 16) and acts.dtype == np.float16
    assert isinstance(acts, np.memmap), "activations must be memory-mapped, not loaded whole"
    assert run.test_activations("hidden", 2).shape == (30, 16)
    assert run.predictions(1).shape == (120,) and run.test_predictions(1).shape == (30,)
    assert set(run.weights(3)) == {"l1.weight", "l1.bias", "l2.weight", "l2.bias"}
    assert run.weights(3)["l1.weight"].dtype == np.float32
    assert [m["epoch"] for m in run.metrics] == [0, 1, 2, 3, 4]
    assert run.metrics[2]["accuracy"] == pytest.approx(0.65)
    assert run.probe_inputs.shape == (120, 1, 8, 8)
    assert run.labels.tolist()[:4] == [0, 1, 2, 0]
    assert "hidden" in run.describe() and "0..4" in run.describe()


def test_unknown_layer_and_epoch_list_what_exists(synthetic_run):
    run = open_run(synthetic_run)
    with pytest.raises(ValueError, match=r"layer 'hiden' not found; did you mean 'hidden'\? Layers: hidden"):
        run.activations("hiden", 0)
    with pytest.raises(ValueError, match=r"epoch 9 is not in the run .* \(epochs: 0\.\.4\)"):
        run.activations("hidden", 9)


def test_not_a_run_and_newer_schema(tmp_path, synthetic_run):
    with pytest.raises(NotARunError, match="manifest.json is missing"):
        open_run(tmp_path)
    with pytest.raises(NotARunError, match="no such folder"):
        open_run(tmp_path / "nope")
    (tmp_path / "file.npy").write_bytes(b"x")
    with pytest.raises(NotARunError, match="is a file, not a folder"):
        open_run(tmp_path / "file.npy")
    manifest = json.loads((synthetic_run / MANIFEST_FILE).read_text())
    manifest["schema_version"] = 99
    (synthetic_run / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(RunError, match="schema version 99 is newer"):
        open_run(synthetic_run)


def test_truncated_array_names_the_file(synthetic_run):
    run = open_run(synthetic_run)
    path = run.epoch_dir(1) / "probe" / f"{layer_key('hidden')}.npy"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(RunError, match=r"\.npy: unreadable array .* truncated or corrupted"):
        run.activations("hidden", 1)


@pytest.mark.parametrize("name", ["../../x", "features.0/conv", "/etc/passwd", "..", ".hidden", "a\\b", "\x00x", ""])
def test_layer_names_cannot_leave_the_run(tmp_path, name):
    key = layer_key(name)
    assert os.sep not in key and "/" not in key and not key.startswith(".") and "\x00" not in key
    with RunWriter.open(tmp_path / "run", framework="t", labels=[0, 1], class_names=["a", "b"]) as w:
        w.declare_layer(name, (3,), 3, None)
        with w.epoch(0) as ep:
            ep.set_activations(name, np.ones((2, 3)))
    run = open_run(tmp_path / "run")
    files = [p.resolve() for p in (tmp_path / "run").rglob("*.npy")]
    assert all(str(p).startswith(str((tmp_path / "run").resolve())) for p in files)
    assert run.activations(name, 0).shape == (2, 3)
    assert not (tmp_path / "x.npy").exists()


def test_similar_names_get_distinct_keys():
    assert layer_key("a.b") != layer_key("a_b") != layer_key("a/b")


def test_edited_manifest_key_is_refused(synthetic_run):
    manifest = json.loads((synthetic_run / MANIFEST_FILE).read_text())
    manifest["layers"][0]["key"] = "../../escape"
    (synthetic_run / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(RunError, match="not a safe file name"):
        open_run(synthetic_run)


def test_failed_epoch_leaves_nothing_and_resume_continues(tmp_path):
    path = tmp_path / "run"
    with RunWriter.open(path, framework="t", labels=[0, 1, 1], class_names=["a", "b"]) as w:
        w.declare_layer("h", (2,), 2, None)
        with w.epoch(0) as ep:
            ep.set_activations("h", np.zeros((3, 2)))
        with pytest.raises(RuntimeError):
            with w.epoch(1) as ep:
                ep.set_activations("h", np.zeros((3, 2)))
                raise RuntimeError("training crashed")
        assert w.epochs == [0]
        assert not any(p.name.startswith(".partial") for p in (path / "epochs").iterdir())
    with RunWriter.open(path, framework="t", labels=[0, 1, 1], class_names=["a", "b"]) as w:
        assert w.next_epoch == 1
        with pytest.raises(ValueError, match="epoch 0 is already recorded .* next epoch to record is 1"):
            w.epoch(0)


def test_leftover_partial_epoch_is_ignored_and_cleaned(synthetic_run):
    partial = synthetic_run / "epochs" / ".partial-000005-123"
    partial.mkdir()
    (partial / "metrics.json").write_text("{")
    assert open_run(synthetic_run).epochs == [0, 1, 2, 3, 4]
    labels = open_run(synthetic_run).labels
    with RunWriter.open(synthetic_run, framework="synthetic", labels=labels,
                        class_names=["class 0", "class 1", "class 2"], test_labels=np.arange(30) % 3):
        assert not partial.exists()


def test_resume_refuses_a_different_probe(synthetic_run):
    with pytest.raises(RunError, match="cannot resume .* probe labels differ"):
        RunWriter.open(synthetic_run, framework="synthetic", labels=np.zeros(120, int),
                       class_names=["class 0", "class 1", "class 2"], test_labels=np.arange(30) % 3)
    with pytest.raises(RunError, match="already holds a run"):
        RunWriter.open(synthetic_run, framework="synthetic", labels=open_run(synthetic_run).labels,
                       class_names=["class 0", "class 1", "class 2"], test_labels=np.arange(30) % 3, resume=False)


def test_second_writer_is_refused(tmp_path):
    path = tmp_path / "run"
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]):
        with pytest.raises(RunLockedError, match="being written by another process"):
            RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"])
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]):
        pass  # released on close


def test_non_empty_foreign_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="not empty and holds no manifest.json"):
        RunWriter.open(tmp_path, framework="t", labels=[0, 1], class_names=["a", "b"])


def test_labels_out_of_range_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.1"):
        RunWriter.open(tmp_path / "r", framework="t", labels=[0, 2], class_names=["a", "b"])


def test_run_reads_while_a_writer_appends(tmp_path):
    path = tmp_path / "run"
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]) as w:
        w.declare_layer("h", (2,), 2, None)
        reader = open_run(path)
        assert reader.epochs == []
        with w.epoch(0) as ep:
            ep.set_activations("h", np.ones((2, 2)))
        assert reader.epochs == [0]
