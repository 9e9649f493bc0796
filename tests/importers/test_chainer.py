"""The Chainer importer, on result directories built here in Chainer's format (no Chainer needed)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from epochscope import RunError
from epochscope.importers.chainer import import_chainer, read_chainer_snapshot
from epochscope.run import open_run

SIZES = (4, 5, 5, 3)
ITERS_PER_EPOCH = 15


def weights_at(epoch: int) -> dict[str, np.ndarray]:
    """Weights whose values encode the epoch, so the frame order can be checked."""
    rng = np.random.default_rng(100)
    out = {}
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:]), start=1):
        out[f"l{i}"] = (rng.normal(size=(n_out, n_in)) * (1 + 0.1 * epoch)).astype(np.float32), \
            np.full(n_out, float(epoch), np.float32)
    return out


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:  # a file object: numpy would append .npz to a bare name
        np.savez_compressed(fh, **arrays)


def chainer_log(epochs) -> list[dict]:
    return [{"epoch": e, "iteration": e * ITERS_PER_EPOCH, "main/loss": 1.0 / e, "main/accuracy": 0.5 + 0.05 * e,
             "validation/main/loss": 1.2 / e, "validation/main/accuracy": 0.45 + 0.05 * e, "elapsed_time": 0.7 * e}
            for e in epochs]


def build_result_dir(root: Path, epochs=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), *, trainer_keys: bool = True,
                     name: str = "snapshot_iter_{it}", model_only: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    order = list(epochs)
    random.Random(3).shuffle(order)  # written in shuffled order; names sort differently as text
    for e in order:
        it = e * ITERS_PER_EPOCH
        arrays: dict[str, np.ndarray] = {}
        prefix = "predictor/" if model_only else "updater/model:main/predictor/"
        for link, (w, b) in weights_at(e).items():
            arrays[f"{prefix}{link}/W"] = w
            arrays[f"{prefix}{link}/b"] = b
            if not model_only:  # Adam state: must not be mistaken for weights
                arrays[f"updater/optimizer:main/predictor/{link}/W/m"] = np.zeros_like(w)
        if not model_only:
            arrays["updater/optimizer:main/t"] = np.array(it)
            if trainer_keys:
                arrays["updater/iteration"] = np.array(it)
                arrays["updater/iterator:main/epoch"] = np.array(e)
                arrays["updater/iterator:main/current_position"] = np.array(0)
            arrays["stop_trigger/previous_epoch_detail"] = np.array(float(e))
        save_npz(root / name.format(it=it, epoch=e), arrays)
    (root / "log").write_text(json.dumps(chainer_log(epochs), indent=4))
    (root / "args").write_text(json.dumps({"epoch": max(epochs)}))  # other files Chainer leaves around
    (root / "cg.dot").write_text("digraph {}")
    return root


@pytest.mark.parametrize("trainer_keys", [True, False], ids=["epoch-in-snapshot", "epoch-from-log"])
def test_trainer_snapshots_become_epochs_in_order(tmp_path, trainer_keys):
    result = build_result_dir(tmp_path / "result", trainer_keys=trainer_keys)
    out = import_chainer(result, tmp_path / "run")
    run = open_run(out)
    assert run.epochs == list(range(1, 13))
    assert run.framework == "chainer" and run.layers == []
    for e in (1, 7, 12):
        w = run.weights(e)
        assert list(w) == ["l1.weight", "l1.bias", "l2.weight", "l2.bias", "l3.weight", "l3.bias"]
        np.testing.assert_array_equal(w["l1.weight"], weights_at(e)["l1"][0])
        assert w["l3.bias"][0] == e
    row = run.epoch_metrics(7)
    assert row["accuracy"] == pytest.approx(0.85) and row["val_accuracy"] == pytest.approx(0.8)
    assert row["loss"] == pytest.approx(1 / 7) and row["val_loss"] == pytest.approx(1.2 / 7)
    assert row["iteration"] == 7 * ITERS_PER_EPOCH


def test_manifest_has_a_placeholder_probe_and_output_classes(tmp_path):
    run = open_run(import_chainer(build_result_dir(tmp_path / "result", epochs=(1, 2)), tmp_path / "run"))
    assert run.class_names == ["class 0", "class 1", "class 2"]  # the last layer has 3 outputs
    assert run.manifest.probe_size == 1 and run.manifest.info["probe"] == "placeholder"
    assert run.predictions(1).tolist() == [-1]
    assert run.manifest.info["imported_from"] == "chainer"
    assert run.manifest.info["snapshots"] == ["snapshot_iter_15", "snapshot_iter_30"]


def test_epoch_named_model_snapshots(tmp_path):
    result = build_result_dir(tmp_path / "result", epochs=(2, 10, 3, 1), name="model_epoch_{epoch}",
                              model_only=True)
    run = open_run(import_chainer(result, tmp_path / "run"))
    assert run.epochs == [1, 2, 3, 10]
    assert run.weights(10)["l2.bias"][0] == 10
    assert run.epoch_metrics(10)["accuracy"] == pytest.approx(1.0)


def test_links_stored_out_of_order_are_chained_in_name_order(tmp_path):
    root = tmp_path / "result"
    root.mkdir()
    w = weights_at(1)
    arrays = {}
    for link in ("l3", "l1", "l2"):  # as an older Chainer (children in a set) might store them
        arrays[f"updater/model:main/predictor/{link}/W"] = w[link][0]
    save_npz(root / "snapshot_epoch_1", arrays)
    names = list(read_chainer_snapshot(root / "snapshot_epoch_1"))
    assert names == ["l1.weight", "l2.weight", "l3.weight"]


def test_imported_run_draws_the_network(tmp_path):
    from PIL import Image

    from epochscope.draw.network import network_animation

    run = import_chainer(build_result_dir(tmp_path / "result", epochs=(1, 2, 3)), tmp_path / "run")
    gif = network_animation(run, tmp_path / "net.gif", figsize=(6, 3), progress=False)
    assert Image.open(gif).n_frames == 3


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        import_chainer(tmp_path / "missing", tmp_path / "run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="no snapshot files"):
        import_chainer(tmp_path / "empty", tmp_path / "run")
    bad = build_result_dir(tmp_path / "bad", epochs=(1,))
    (bad / "log").write_text("{not json")
    with pytest.raises(RunError, match="log"):
        import_chainer(bad, tmp_path / "run2")
    done = import_chainer(build_result_dir(tmp_path / "ok", epochs=(1,)), tmp_path / "run3")
    with pytest.raises(RunError, match="already holds a run"):
        import_chainer(tmp_path / "ok", done)


def test_snapshots_with_pickled_objects_are_refused(tmp_path):
    root = tmp_path / "result"
    root.mkdir()
    with open(root / "snapshot_epoch_1", "wb") as fh:
        np.savez(fh, **{"updater/model:main/predictor/l1/W": np.zeros((3, 4)),
                        "updater/model:main/predictor/l1/extra": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(RunError, match=r"snapshot_epoch_1 \(array 'updater/model:main/predictor/l1/extra'\): holds "
                                        r"Python objects \(dtype object\); epochscope never loads pickled data"):
        import_chainer(root, tmp_path / "run")


def test_cli_import_chainer(tmp_path):
    from epochscope.cli import main

    result = build_result_dir(tmp_path / "result", epochs=(1, 2))
    assert main(["-q", "import", "chainer", str(result), "--out", str(tmp_path / "run")]) == 0
    assert open_run(tmp_path / "run").epochs == [1, 2]
    # A folder that does not exist is the user's input: exit status 2 (1 is for the environment).
    assert main(["-q", "import", "chainer", str(tmp_path / "nope"), "--out", str(tmp_path / "run2")]) == 2


def test_iteration_numbered_snapshots_past_a_million_are_all_imported(tmp_path, caplog):
    """Issue 14, kind 7: before, "imported 3 snapshots" and the run held 1 (names past 999,999 were never listed)."""
    import logging

    root = tmp_path / "result"
    root.mkdir()
    for it in (999_000, 1_000_000, 2_500_000):
        save_npz(root / f"snapshot_iter_{it}", {f"predictor/{link}/{p}": a for link, (w, b) in weights_at(it % 7).items()
                                                for p, a in (("W", w), ("b", b))})
    caplog.set_level(logging.INFO, logger="epochscope")
    run = open_run(import_chainer(root, tmp_path / "run"))
    assert run.epochs == [999_000, 1_000_000, 2_500_000] and "imported 3 snapshots" in caplog.text
    assert run.weights(2_500_000)["l3.bias"][0] == 2_500_000 % 7


def resumed_result_dir(root: Path, *, snapshot_logs: bool) -> tuple[Path, list[dict], list[dict]]:
    """Epochs 1..4 trained and logged; then a trainer resumed from the epoch-2 snapshot trained
    epochs 3 and 4 again and appended its own rows, without saving snapshots over the first ones."""
    build_result_dir(root, epochs=(1, 2, 3, 4))
    first = chainer_log((1, 2, 3, 4))
    again = [{**r, "main/loss": r["main/loss"] * 3, "main/accuracy": 0.1, "elapsed_time": 100 + r["elapsed_time"]}
             for r in chainer_log((3, 4))]
    (root / "log").write_text(json.dumps(first + again, indent=4))
    if snapshot_logs:  # a trainer snapshot keeps LogReport's rows as of its moment
        for e in (1, 2, 3, 4):
            path = root / f"snapshot_iter_{e * ITERS_PER_EPOCH}"
            with np.load(path) as npz:
                arrays = dict(npz)
            arrays["extensions/LogReport/_log"] = np.array(json.dumps(first[:e]))
            save_npz(path, arrays)
    return root, first, again


def test_conflicting_log_rows_keep_the_row_of_the_snapshot_and_warn_naming_the_epoch(tmp_path, caplog):
    result, first, again = resumed_result_dir(tmp_path / "result", snapshot_logs=True)
    with caplog.at_level("WARNING", logger="epochscope"):
        run = open_run(import_chainer(result, tmp_path / "run"))
    # Before: the resumed trainer's later rows silently won (loss 1.0, accuracy 0.1 at epoch 3).
    for e in (3, 4):
        assert run.epoch_metrics(e)["loss"] == pytest.approx(first[e - 1]["main/loss"])
        assert run.epoch_metrics(e)["accuracy"] == pytest.approx(first[e - 1]["main/accuracy"])
    assert run.epoch_metrics(2)["loss"] == pytest.approx(0.5)
    warnings = [r.getMessage() for r in caplog.records]
    assert any("epoch 3 has 2 different rows at iteration 45" in w and "snapshot_iter_45" in w for w in warnings)
    assert any("epoch 4 has 2 different rows" in w for w in warnings) and len(warnings) == 2


def test_conflicting_log_rows_without_a_snapshot_log_are_left_out_not_guessed(tmp_path, caplog):
    result, _, _ = resumed_result_dir(tmp_path / "result", snapshot_logs=False)
    with caplog.at_level("WARNING", logger="epochscope"):
        run = open_run(import_chainer(result, tmp_path / "run"))
    assert "loss" not in run.epoch_metrics(3) and "loss" not in run.epoch_metrics(4)
    assert run.epoch_metrics(2)["loss"] == pytest.approx(0.5)
    assert "epoch 3 has 2 different rows at iteration 45" in caplog.text and "holds no log" in caplog.text


def test_repeated_identical_rows_or_several_rows_an_epoch_are_no_conflict(tmp_path, caplog):
    result = build_result_dir(tmp_path / "result", epochs=(1, 2))
    rows = chainer_log((1, 2))
    mid = {**rows[1], "iteration": rows[1]["iteration"] - 5, "main/loss": 9.0}  # a row logged mid-epoch
    (result / "log").write_text(json.dumps([rows[0], rows[0], mid, rows[1]]))
    with caplog.at_level("WARNING", logger="epochscope"):
        run = open_run(import_chainer(result, tmp_path / "run"))
    assert not caplog.records and run.epoch_metrics(2)["loss"] == pytest.approx(0.5)
