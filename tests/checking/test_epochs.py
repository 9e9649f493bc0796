"""The checker's view of the epochs: damaged trailing epochs dropped by repair, never one in the middle;
a layer added on resume is a warning, not a problem."""

import json
from pathlib import Path

import numpy as np
import pytest

from epochscope import check_run, open_run
from epochscope.run import RunWriter, layer_key

KEY = f"{layer_key('hidden')}.npy"


def probe_file(run: Path, epoch: int, split: str = "probe") -> Path:
    return run / "epochs" / f"{epoch:06d}" / split / KEY


def test_repair_drops_damaged_trailing_epochs_but_never_one_in_the_middle(synthetic_run):
    probe_file(synthetic_run, 4).write_bytes(b"")                      # trailing, damaged
    probe_file(synthetic_run, 3).write_bytes(b"")                      # damaged, now also trailing
    (synthetic_run / "epochs/000001/predictions.npy").unlink()          # damaged in the middle
    before = check_run(synthetic_run)
    assert [a.path for a in before.actions] == ["epochs/000004", "epochs/000003"]
    assert not any(a.done for a in before.actions) and open_run(synthetic_run).epochs == [0, 1, 2, 3, 4]
    assert "epoch 1 damaged but followed by good epochs; repair never drops a good epoch" in before.unrepairable[0]

    after = check_run(synthetic_run, repair=True)
    assert after.repaired and all(a.done for a in after.actions)
    assert open_run(synthetic_run).epochs == [0, 1, 2] == list(after.epochs)
    assert [p.path for p in after.problems] == ["epochs/000001/predictions.npy"]
    assert not any(p.name.startswith(".partial") for p in (synthetic_run / "epochs").iterdir())
    assert "removed epochs/000004: damaged trailing epoch 4" in str(after)


@pytest.mark.parametrize("damage", ["{", "[1, 2]", None])
def test_a_damaged_metrics_row_alone_never_costs_the_epoch(synthetic_run, damage):
    # Repair dropped a trailing epoch whose only damage was its metrics row, deleting whole
    # activations, weights and predictions: a repair that deletes good data. Now the row is
    # written anew without metrics (their values are lost, and the plan says so), in the middle too.
    row = synthetic_run / "epochs/000004/metrics.json"
    middle = synthetic_run / "epochs/000002/metrics.json"
    kept = {p: p.read_bytes() for p in (synthetic_run / "epochs/000004").rglob("*") if p.is_file() and p != row}
    for path in (row, middle):
        path.unlink() if damage is None else path.write_text(damage)
    before = check_run(synthetic_run)
    assert sorted(a.path for a in before.actions) == ["epochs/000002/metrics.json", "epochs/000004/metrics.json"]
    assert "would rewrite epochs/000004/metrics.json" in str(before) and "values are lost" in str(before)
    after = check_run(synthetic_run, repair=True)
    assert after.ok and not after.problems and all(a.done for a in after.actions), str(after)
    run = open_run(synthetic_run)
    assert run.epochs == [0, 1, 2, 3, 4]
    assert json.loads(row.read_text()) == {"epoch": 4} and json.loads(middle.read_text()) == {"epoch": 2}
    assert all(p.read_bytes() == data for p, data in kept.items())  # the epoch's data untouched
    assert run.epoch_metrics(4)["epoch"] == 4 and "loss" not in run.epoch_metrics(4)


def test_a_whole_row_too_large_to_read_is_never_overwritten(synthetic_run):
    # Found by review: a whole row over the reader's size limit was "damaged", and repair replaced
    # it (and its real values) by an empty row. Such a row is reported, never rewritten.
    from epochscope.run.reader import MAX_METRICS_BYTES

    row = synthetic_run / "epochs/000004/metrics.json"
    big = json.dumps({"epoch": 4, "loss": 0.5, "per_example": [0.5] * (MAX_METRICS_BYTES // 4)})
    row.write_text(big)
    report = check_run(synthetic_run, repair=True)
    assert not any(a.rewrite for a in report.actions) and row.read_text() == big  # nor the epoch dropped
    assert open_run(synthetic_run).epochs == [0, 1, 2, 3, 4]
    assert any("epoch 4: a metrics row this process cannot read" in u for u in report.unrepairable), str(report)


def test_rewriting_most_rows_needs_force_and_a_row_beside_a_disagreeing_file_is_told(synthetic_run):
    for epoch in range(5):  # every row broken: a shared cause is likelier than five accidents
        (synthetic_run / f"epochs/{epoch:06d}/metrics.json").write_text("{")
    report = check_run(synthetic_run, repair=True)
    assert report.refused and "writes anew the metrics rows of 5 of the run's 5 epochs" in report.refused
    assert (synthetic_run / "epochs/000000/metrics.json").read_text() == "{"
    assert check_run(synthetic_run, repair=True, force=True).ok


def test_a_rewritten_row_does_not_hide_a_disagreeing_file_of_its_epoch(synthetic_run):
    (synthetic_run / "epochs/000003/metrics.json").write_text("{")
    np.save(probe_file(synthetic_run, 3), np.zeros((120, 5), np.float16))  # whole, but the wrong width
    report = check_run(synthetic_run)
    assert any("epoch 3: whole files that disagree" in u for u in report.unrepairable), str(report)


def test_layer_added_on_resume_is_a_warning_not_a_problem(tmp_path):
    path = tmp_path / "run"
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]) as w:
        w.declare_layer("h", (2,), 2, None)
        with w.epoch(0) as ep:
            ep.set_activations("h", np.ones((2, 2)))
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]) as w:
        w.declare_layer("g", (3,), 3, None)
        with w.epoch(1) as ep:
            ep.set_activations("h", np.ones((2, 2)))
            ep.set_activations("g", np.ones((2, 3)))
    report = check_run(path)
    assert report.ok, str(report)
    (finding,) = report.findings
    assert finding.level == "warning" and finding.path == f"epochs/000001/probe/{layer_key('g')}.npy"
    assert finding.message.startswith("layer 'g' has outputs from epoch 1 on only (added when the run was resumed")




def test_an_epoch_whose_weights_lack_a_layer_others_hold_is_a_warning(synthetic_run):
    """The network picture leaves such an epoch out (network/history.py says so); check, where its
    warning sends the user, said nothing."""
    path = synthetic_run / "epochs/000000/weights.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    assert len(arrays) >= 2
    dropped = sorted(arrays)[-1]
    del arrays[dropped]
    np.savez(path, **arrays)
    report = check_run(synthetic_run)
    (warning,) = [w for w in report.warnings if w.path == "epochs/000000/weights.npz"]
    assert f"lacks {dropped}, which epochs 1" in warning.message and "network picture leaves this epoch out" in warning.message
    assert report.ok  # optional data: a warning, never a problem that repair would act on
    assert not [w for w in report.warnings if w.path.startswith("epochs/00000") and w.path != "epochs/000000/weights.npz"]


def cut_short_run(path: Path, epochs, cut_short) -> None:
    """A run of ``epochs`` whose recorder noted ``cut_short`` ({epoch: why}) in the manifest's info."""
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]) as w:
        w.declare_layer("h", (2,), 2, None)
        for epoch in epochs:
            with w.epoch(epoch) as ep:
                ep.set_activations("h", np.ones((2, 2)))
        if cut_short is not None:
            w.update_info({"cut_short": cut_short})


def test_an_epoch_cut_short_is_a_note_not_a_missing_epoch(tmp_path):
    # Training stopped part-way through epoch 2 (max_steps): the recorders leave it out and say so in the run
    cut_short_run(tmp_path / "last", [0, 1], {"2": "max_steps=6 reached, after 2 of its 4 batches"})
    report = check_run(tmp_path / "last")
    assert report.ok and not report.warnings, str(report)
    assert [str(f) for f in report.findings] == [
        "note     epochs: epoch 2 was cut short (max_steps=6 reached, after 2 of its 4 batches): its model is not "
        "recorded, as it is no whole epoch's"]
    # A Trainer's control.should_epoch_stop left epoch 2 and trained epoch 3: 2 is no lost epoch. Before: a
    # warning, "epoch 2 missing between 0 and 3 (recorded without it, or deleted)".
    cut_short_run(tmp_path / "inside", [0, 1, 3], {"2": "control.should_epoch_stop set, after 50 % of its batches"})
    report = check_run(tmp_path / "inside")
    assert report.ok and not report.warnings, str(report)
    assert [f.message for f in report.findings] == [
        "epoch 2 was cut short (control.should_epoch_stop set, after 50 % of its batches): its model is not recorded, "
        "as it is no whole epoch's"]
    # ... and a cut-short epoch recorded whole later (training resumed from a checkpoint inside it) is no note
    cut_short_run(tmp_path / "resumed", [0, 1, 2], {"2": "max_steps=6 reached, after 2 of its 4 batches"})
    assert not check_run(tmp_path / "resumed").findings
    # a gap only partly of cut epochs: the warning names the others alone (it said "epochs 2..4 missing")
    cut_short_run(tmp_path / "part", [0, 1, 5, 6], {"2": "control.should_epoch_stop set, after 50 % of its batches"})
    (warning,) = check_run(tmp_path / "part").warnings
    assert warning.message.startswith("epochs 3..4 missing between 0 and 6"), warning.message
    # old runs, and a cut_short that is no map of epochs (written by another tool), read as before
    cut_short_run(tmp_path / "odd", [0, 1, 3], ["2"])
    assert [f.message for f in check_run(tmp_path / "odd").warnings][0].startswith("epoch 2 missing between 0 and 3")
