"""The layout owns every name inside a run: the epoch-folder rule both ways, partial and
temporary names, layer keys that cannot leave the run, and the paths the writer and reader use."""

import os
import re

import numpy as np
import pytest

from epochscope import RunError, open_run
from epochscope.run import RunWriter, layer_key
from epochscope.run.layout import (
    EPOCH_FILES,
    ROOT_NAMES,
    RunLayout,
    check_key,
    epoch_name,
    is_temporary,
    layer_file,
    metrics_file,
    parse_epoch_name,
    parse_partial_epoch_name,
    partial_epoch_name,
    predictions_file,
    temporary_path,
    temporary_pid,
    weights_file,
)


@pytest.mark.parametrize("epoch", [0, 1, 9, 10, 42, 99_999, 999_999, 1_000_000, 1_200_000, 10**12])
def test_epoch_name_rule_round_trips(epoch):
    name = epoch_name(epoch)
    assert re.fullmatch(r"\d{6,}", name) and int(name) == epoch
    assert parse_epoch_name(name) == epoch
    assert parse_partial_epoch_name(partial_epoch_name(epoch, 4711)) == (epoch, 4711)


@pytest.mark.parametrize("name", ["7", "00007", "0000007", "01000000", "00000a", ".partial-000007-42", "000007.tmp",
                                  " 000007", "", "-00007", "\u0661\u0662\u0663\u0664\u0665\u0666"])
def test_other_names_are_not_epochs(name):
    assert parse_epoch_name(name) is None


def test_negative_epochs_have_no_name():
    with pytest.raises(ValueError, match="epoch must be >= 0, got -1"):
        epoch_name(-1)


def test_partial_epoch_names_round_trip_and_are_temporary():
    assert partial_epoch_name(7, 4711) == ".partial-000007-4711"
    assert parse_partial_epoch_name(partial_epoch_name(7, 4711)) == (7, 4711)
    assert parse_partial_epoch_name(partial_epoch_name(7, 4711, "repair")) == (7, 4711)
    assert parse_partial_epoch_name("000007") is None and parse_partial_epoch_name(".partial-7-1") is None
    assert is_temporary(partial_epoch_name(3, 1)) and parse_epoch_name(partial_epoch_name(3, 1)) is None


def test_temporary_names_carry_the_writers_pid(tmp_path):
    tmp = temporary_path(tmp_path / "manifest.json")
    assert tmp.parent == tmp_path and tmp.name == f".manifest.json.tmp-{os.getpid()}"
    assert is_temporary(tmp.name) and temporary_pid(tmp.name) == os.getpid()
    assert is_temporary(".tmp-abc-12") and temporary_pid(".tmp-abc-12") == 12
    assert not is_temporary("manifest.json") and not is_temporary(".lock") and temporary_pid("000003") is None


def test_the_writer_and_the_reader_use_the_layouts_paths(synthetic_run):
    """Every file of a written run sits where the layout says, and nothing else is there."""
    run = open_run(synthetic_run)
    layout = RunLayout(synthetic_run)
    assert run.layout == layout and layout.finished_epochs() == run.epochs == [0, 1, 2, 3, 4]
    key = run.layer_info("hidden").key
    expected = {layout.manifest, layout.lock, layout.labels("probe"), layout.inputs("probe"),
                layout.labels("test"), layout.inputs("test")}
    for epoch in run.epochs:
        folder = layout.epoch_dir(epoch)
        assert run.epoch_dir(epoch) == folder
        expected |= {layer_file(folder, "probe", key), layer_file(folder, "test", key),
                     predictions_file(folder, "probe"), predictions_file(folder, "test"),
                     weights_file(folder), metrics_file(folder)}
    assert {p for p in synthetic_run.rglob("*") if p.is_file()} == expected
    assert {p.name for p in synthetic_run.iterdir()} <= ROOT_NAMES
    assert {p.name for p in layout.epoch_dir(0).iterdir()} == EPOCH_FILES
    np.testing.assert_array_equal(np.load(layer_file(layout.epoch_dir(2), "probe", key)), run.activations("hidden", 2))


def test_a_number_that_is_not_whole_names_no_epoch(synthetic_run):
    """run.predictions(4.5) read epoch 4's file: a value shown under an epoch it is not."""
    run = open_run(synthetic_run)
    for bad in (4.5, np.float32(1.25), True):
        with pytest.raises(ValueError, match="whole number"):
            run.predictions(bad)
    assert run.epoch_dir(np.int64(2)) == run.epoch_dir(2.0) == RunLayout(synthetic_run).epoch_dir(2)


def test_a_reduced_layers_matrix_sits_where_the_layout_says(tmp_path):
    with RunWriter.open(tmp_path / "r", framework="t", labels=[0, 1], class_names=["a", "b"]) as w:
        w.save_reduction_matrix("conv", np.eye(3, dtype=np.float32))
        assert RunLayout(tmp_path / "r").reduction(layer_key("conv")).is_file()
        np.testing.assert_array_equal(w.reduction_matrix("conv"), np.eye(3))


def test_splits_outside_the_layout_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"split must be one of \('probe', 'test'\), got 'train'"):
        RunLayout(tmp_path).labels("train")
    with pytest.raises(ValueError, match="split must be one of"):
        predictions_file(tmp_path, "val")


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


@pytest.mark.parametrize("key", ["../../escape", ".hidden", "a/b", "", 3, "x" * 90])
def test_unsafe_keys_are_refused_before_a_path_is_built(tmp_path, key):
    with pytest.raises(RunError, match="not a safe file name"):
        check_key(key, "here")
    if isinstance(key, str):
        with pytest.raises(RunError, match="not a safe file name"):
            layer_file(tmp_path, "probe", key)


def test_any_non_negative_epoch_is_listed_and_read_back(tmp_path):
    """Issue 14, kind 7: epochs from 1,000,000 on were written and never listed (iteration-numbered snapshots)."""
    path = tmp_path / "run"
    epochs = [5, 999_999, 1_000_000, 2_000_000, 10**9]
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]) as w:
        w.declare_layer("h", (2,), 2, None)
        for epoch in epochs:
            with w.epoch(epoch) as ep:
                ep.set_activations("h", np.full((2, 2), epoch % 1000))
                ep.set_metrics({"loss": 1.0})
        assert w.next_epoch == 10**9 + 1
    run = open_run(path)
    assert run.epochs == epochs  # in number order, though "1000000" sorts before "999999" as text
    assert [m["epoch"] for m in run.metrics] == epochs
    assert run.activations("h", 2_000_000)[0, 0] == 2_000_000 % 1000
    from epochscope import check_run

    report = check_run(path)
    assert report.ok and report.epochs == tuple(epochs), str(report)
    (path / "epochs" / ".partial-1000001-999999").mkdir()
    assert any(f.path == "epochs/.partial-1000001-999999" and "unfinished epoch 1000001" in f.message
               for f in check_run(path).warnings)
