"""Writing a run: atomic epochs, resume, refusing what would mix data, interrupted creation."""

import os

import numpy as np
import pytest

from epochscope import NotARunError, RunError, check_run, open_run
from epochscope.run import RunWriter
from epochscope.run.fileio import MAX_JSON_BYTES
from epochscope.run.reader import MAX_METRICS_BYTES


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


def test_an_epoch_is_written_hidden_and_renamed_into_place(tmp_path):
    path = tmp_path / "run"
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]) as w:
        w.declare_layer("h", (2,), 2, None)
        building = w.epoch(0)
        building.set_activations("h", np.ones((2, 2)))
        hidden = [p.name for p in (path / "epochs").iterdir()]
        assert hidden == [f".partial-000000-{os.getpid()}"]
        assert open_run(path).epochs == []  # readers ignore it until the rename
        building.commit()
        assert [p.name for p in (path / "epochs").iterdir()] == ["000000"] and open_run(path).epochs == [0]


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


def test_non_empty_foreign_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="not empty and holds no manifest.json"):
        RunWriter.open(tmp_path, framework="t", labels=[0, 1], class_names=["a", "b"])


def test_labels_out_of_range_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.1"):
        RunWriter.open(tmp_path / "r", framework="t", labels=[0, 2], class_names=["a", "b"])


def test_epoch_committed_without_predictions_stores_unknown(tmp_path):
    with RunWriter.open(tmp_path / "r", framework="t", labels=[0, 1], class_names=["a", "b"], test_labels=[1]) as w:
        w.declare_layer("h", (2,), 2, None)
        with w.epoch(0) as ep:
            ep.set_activations("h", np.ones((2, 2)))
            ep.set_activations("h", np.ones((1, 2)), split="test")
    run = open_run(tmp_path / "r")
    assert run.predictions(0).tolist() == [-1, -1] and run.test_predictions(0).tolist() == [-1]
    assert check_run(run).ok


def test_interrupted_creation_can_be_recorded_into_again(tmp_path):
    path = tmp_path / "r"
    (path / "probe").mkdir(parents=True)
    (path / "epochs").mkdir()
    (path / "probe" / ".labels.npy.tmp-123").write_bytes(b"\x93NUM")  # killed mid-write, before the manifest
    with pytest.raises(NotARunError):
        open_run(path)
    assert not check_run(path).ok
    assert "record into this folder again" in check_run(path).problems[0].message
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]) as w:
        assert w.next_epoch == 0
    assert open_run(path).epochs == []
    (path / "mine.txt").write_text("a user's file")
    other = tmp_path / "other"
    (other / "probe").mkdir(parents=True)
    (other / "probe" / "data.csv").write_text("a user's file")
    with pytest.raises(RunError, match="not empty and holds no manifest.json"):
        RunWriter.open(other, framework="t", labels=[0, 1], class_names=["a", "b"])


def test_the_next_writer_removes_temporary_files_of_killed_writers_and_nothing_else(tmp_path):
    """A writer killed while writing probe/inputs.npy left probe/.inputs.npy.tmp-PID: the next writer
    (holding the lock) removes what dead writers left; a live writer's file and links stay."""
    import subprocess
    import sys

    from synthetic import make_synthetic_run

    path = make_synthetic_run(tmp_path / "run", n_epochs=2)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    left = [path / "probe" / f".inputs.npy.tmp-{dead}", path / "test" / f".labels.npy.tmp-{dead}",
            path / f".manifest.json.tmp-{dead}"]
    for p in left:
        p.write_bytes(b"half")
    alive = path / "probe" / f".labels.npy.tmp-{os.getpid()}"
    alive.write_bytes(b"being written")
    outside = tmp_path / "mine.txt"
    outside.write_bytes(b"keep")
    link = path / "probe" / f".x.npy.tmp-{dead}"
    link.symlink_to(outside)
    assert len(check_run(path).findings) >= 3  # the checker sees them as leftovers
    labels = np.arange(120) % 3
    with RunWriter.open(path, framework="synthetic", labels=labels, class_names=[f"class {i}" for i in range(3)],
                        test_labels=np.arange(30) % 3, resume=True):
        pass
    assert not any(p.exists() for p in left)
    assert alive.read_bytes() == b"being written" and link.is_symlink() and outside.read_bytes() == b"keep"


def test_overwrite_killed_while_removing_leaves_no_half_deleted_epoch_and_no_old_maps(tmp_path, monkeypatch):
    # overwrite=True deleted finished epoch folders in place and the maps cache last: a kill in
    # the middle left 'epochs/000003' listed as finished with files missing, and old maps that
    # would be read back for new epochs recorded under the same numbers.
    from epochscope.run import writer as writer_module

    path = tmp_path / "run"
    with RunWriter.open(path, framework="t", labels=[0, 1, 1], class_names=["a", "b"]) as w:
        w.declare_layer("h", (2,), 2, None)
        for epoch in range(4):
            with w.epoch(epoch) as ep:
                ep.set_activations("h", np.full((3, 2), float(epoch)))
    (path / "cache" / "maps").mkdir(parents=True)
    (path / "cache" / "maps" / "entry.json").write_text("{}")
    real_rmtree = writer_module.shutil.rmtree

    def killed_midway(folder, *args, **kwargs):
        if "epochs" in str(folder):  # the first epoch folder: one file gone, then the process dies
            next(p for p in sorted(folder.rglob("*")) if p.is_file()).unlink()
            raise KeyboardInterrupt("killed")
        real_rmtree(folder, *args, **kwargs)

    monkeypatch.setattr(writer_module.shutil, "rmtree", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        RunWriter.open(path, framework="t", labels=[0, 1, 1], class_names=["a", "b"], overwrite=True)
    monkeypatch.undo()
    run = open_run(path)
    assert run.epochs == [0, 1, 2]  # epoch 3 gone at once, the others intact
    for epoch in run.epochs:
        np.testing.assert_array_equal(run.activations("h", epoch), np.full((3, 2), float(epoch)))
    assert not (path / "cache").exists()
    assert check_run(path).ok


def test_a_manifest_the_reader_would_refuse_is_refused_when_written(tmp_path):
    with RunWriter.open(tmp_path / "small", framework="t", labels=[0, 1], class_names=["a", "b"]):
        pass
    small = os.path.getsize(tmp_path / "small" / "manifest.json")
    # one character more in a class name, one byte more in the file: a manifest of exactly the reader's limit
    fits = "b" + "x" * (MAX_JSON_BYTES - small)
    with RunWriter.open(tmp_path / "run", framework="t", labels=[0, 1], class_names=["a", fits]) as w:
        assert os.path.getsize(tmp_path / "run" / "manifest.json") == MAX_JSON_BYTES
        # Before: the manifest was written whatever its size, and the run it made could not be opened.
        with pytest.raises(ValueError, match=r"adding layer 'h', .*manifest.json would be 67,1\d\d,\d\d\d bytes as "
                                             r"JSON, more than the 67,108,864 a reader reads \(the largest: "
                                             r"'class_names' \(2 items, .*fewer or shorter class names.*Layer 'h' "
                                             r"was not added; the run is unchanged"):
            w.declare_layer("h", (2,), 2, None)
        assert w.manifest.layers == ()
    run = open_run(tmp_path / "run")  # whatever was written reads back
    assert run.class_names == ["a", fits] and run.layers == []
    assert check_run(tmp_path / "run").ok
    too_big = fits + "x"
    with pytest.raises(ValueError, match=r"manifest.json would be 67,108,865 bytes as JSON, more than the 67,108,864 "
                                         r"a reader reads \(the largest: 'class_names' \(2 items, 67,108,[\d,]+ "
                                         r"bytes\).* fewer or shorter class names.*Nothing was written"):
        RunWriter.open(tmp_path / "big", framework="t", labels=[0, 1], class_names=["a", too_big])
    assert not (tmp_path / "big" / "manifest.json").exists()
    with RunWriter.open(tmp_path / "big", framework="t", labels=[0, 1], class_names=["a", "b"]) as w:
        assert w.epochs == []  # the folder is free for the next try


def test_a_metrics_row_the_reader_would_refuse_is_refused_when_written(tmp_path):
    path = tmp_path / "run"
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]) as w:
        w.declare_layer("h", (2,), 2, None)

        def epoch(number, note):
            with w.epoch(number) as ep:
                ep.set_activations("h", np.zeros((2, 2)))
                ep.set_metrics({"note": note})

        def size(number):
            return os.path.getsize(path / "epochs" / f"{number:06d}" / "metrics.json")

        epoch(0, "a")
        # one character more in the note, one byte more in the file: a row of exactly the reader's limit
        fits = "a" * (1 + MAX_METRICS_BYTES - size(0))
        epoch(1, fits)
        assert size(1) == MAX_METRICS_BYTES
        with pytest.raises(ValueError, match=r"epoch 2: its metrics row is 4,194,305 bytes .* more than the 4,194,304 "
                                             r"a reader reads.* 'note' \(4,194,2\d\d bytes\).* epoch was discarded"):
            epoch(2, fits + "a")
        assert w.epochs == [0, 1]
        assert not any(p.name.startswith(".partial") for p in (path / "epochs").iterdir())
        epoch(2, "a")  # the run goes on
    run = open_run(path)
    assert run.epochs == [0, 1, 2] and run.epoch_metrics(1)["note"] == fits  # whatever was written reads back
    report = check_run(path)
    assert report.ok and not report.findings
