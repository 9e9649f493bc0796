"""Reading a run: what it holds, lazily, and errors that say what exists."""

import json

import numpy as np
import pytest

from epochscope import NotARunError, RunError, open_run
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
    with pytest.raises(ValueError, match=r"epoch -1 is not in the run .* \(epochs: 0\.\.4\)"):
        run.epoch_dir(-1)


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


def test_missing_metrics_is_a_run_error_naming_the_file(synthetic_run):
    (synthetic_run / "epochs" / "000001" / "metrics.json").unlink()
    with pytest.raises(RunError, match=r"000001/metrics\.json: file missing from the run"):
        open_run(synthetic_run).metrics  # noqa: B018 - reading is what raises


def test_weights_are_optional_per_epoch(synthetic_run):
    run = open_run(synthetic_run)
    (synthetic_run / "epochs" / "000001" / "weights.npz").unlink()
    assert run.has_weights(0) and not run.has_weights(1)
    assert run.weights(1) == {} and set(run.weights(0)) == {"l1.weight", "l1.bias", "l2.weight", "l2.bias"}


def test_run_reads_while_a_writer_appends(tmp_path):
    path = tmp_path / "run"
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]) as w:
        w.declare_layer("h", (2,), 2, None)
        reader = open_run(path)
        assert reader.epochs == []
        with w.epoch(0) as ep:
            ep.set_activations("h", np.ones((2, 2)))
        assert reader.epochs == [0]
