"""Issue 14, kind 1: repair deletes only what it can prove damaged, and never more than it names.

Each test is a case that deleted good data before (``check --repair`` dropped every trailing
epoch that broke any rule): valid data is now valid, a wrong value in the shared manifest is
blamed on the manifest, and a plan that would remove most of a run needs ``force``.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from synthetic import make_synthetic_run

from epochscope import check_run, open_run
from epochscope.cli import main
from epochscope.run import MANIFEST_FILE, RunWriter, layer_key

KEY = f"{layer_key('hidden')}.npy"
NAMES = ["class 0", "class 1", "class 2"]
WEIGHTS = {"l1.weight": np.ones((5, 4)), "l1.bias": np.zeros(5), "l2.weight": np.ones((3, 5)), "l2.bias": np.zeros(3)}


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def append_epoch(run: Path, epoch: int, *, weights=None, metrics=None, predictions=None) -> None:
    """One more epoch of the synthetic run (120 probe, 30 test, layer 'hidden' of width 16)."""
    with RunWriter.open(run, framework="synthetic", labels=np.arange(120) % 3, class_names=NAMES,
                        test_labels=np.arange(30) % 3) as w, w.epoch(epoch) as ep:
        ep.set_activations("hidden", np.ones((120, 16)))
        ep.set_activations("hidden", np.ones((30, 16)), split="test")
        if predictions is not None:
            ep.set_predictions(predictions)
        if weights is not None:
            ep.set_weights(weights)
        ep.set_metrics(metrics or {"loss": 0.5})


def assert_repair_keeps_everything(run: Path) -> None:
    before = snapshot(run)
    report = check_run(run, repair=True)
    assert report.actions == (), str(report)
    assert snapshot(run) == before


# ------------------------------------------------------------------ optional parts are optional


def test_epochs_recorded_with_weights_none_after_epochs_with_weights_are_kept(tmp_path):
    run = make_synthetic_run(tmp_path / "run", n_epochs=3)
    append_epoch(run, 3)  # weights=None from here on
    append_epoch(run, 4)
    report = check_run(run)
    assert report.ok, str(report)  # before: "weights.npz missing" problems, and repair dropped epochs 3 and 4
    assert {f.path for f in report.warnings} == {"epochs/000003/weights.npz", "epochs/000004/weights.npz"}
    assert "weights are optional" in report.warnings[0].message and "epochs 0..2 hold them" in report.warnings[0].message
    assert_repair_keeps_everything(run)
    assert open_run(run).epochs == [0, 1, 2, 3, 4]


def test_predictions_of_classes_the_probe_does_not_have_are_kept(tmp_path):
    """A 10-output model recorded on a probe of 3 classes predicts classes 3..9 too."""
    run = make_synthetic_run(tmp_path / "run", n_epochs=2)
    append_epoch(run, 2, predictions=np.arange(120) % 10, weights=WEIGHTS)
    report = check_run(run)
    assert report.ok and not report.warnings, str(report)  # before: "out of range" problem, epoch 2 dropped
    (note,) = report.findings
    assert note.level == "note" and note.path == "epochs"
    assert "beyond the 3 class names (up to class 9) in epochs 2" in note.message
    assert_repair_keeps_everything(run)


def test_a_user_metric_called_epoch_never_replaces_the_epoch_number(tmp_path, caplog):
    run = make_synthetic_run(tmp_path / "run", n_epochs=2)
    append_epoch(run, 2, metrics={"epoch": 17, "loss": 0.1}, weights=WEIGHTS)
    row = json.loads((run / "epochs/000002/metrics.json").read_text())
    assert row["epoch"] == 2 and row["user_epoch"] == 17  # before: {"epoch": 17}, then "damaged" and dropped
    assert "stored as 'user_epoch'" in caplog.text
    assert check_run(run).findings == ()
    # A run written before the fix: the reader says the folder's epoch, the checker warns, repair keeps it.
    (run / "epochs/000002/metrics.json").write_text(json.dumps({"epoch": 17, "loss": 0.1}))
    assert open_run(run).epoch_metrics(2) == {"epoch": 2, "loss": 0.1, "user_epoch": 17}
    report = check_run(run)
    assert report.ok and [f.level for f in report.findings] == ["warning"], str(report)
    assert_repair_keeps_everything(run)


def test_every_fifth_epoch_is_a_valid_run(tmp_path):
    path = tmp_path / "run"
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]) as w:
        w.declare_layer("h", (2,), 2, None)
        for epoch in range(0, 30, 5):
            with w.epoch(epoch) as ep:
                ep.set_activations("h", np.ones((2, 2)))
    report = check_run(path)
    assert report.ok and not report.warnings and not report.unrepairable, str(report)  # before: "not contiguous"
    assert [str(f) for f in report.findings] == ["note     epochs: recorded every 5 epochs (0, 5, 10, …, 25)"]
    shutil.rmtree(path / "epochs/000010")  # an irregular gap: a warning, still readable
    report = check_run(path)
    assert report.ok and report.warnings[0].message.startswith(
        "epoch 10 missing between 0 and 25 (recorded without it, or deleted, recorded every 5 epochs otherwise)")


def test_every_nth_epoch_and_the_last_one_trained_is_a_valid_run(tmp_path):
    # every_n_epochs=5 over 27 epochs: 0, 5, ..., 25 and the last epoch trained, 27 (also after an early stop)
    path = tmp_path / "run"
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]) as w:
        w.declare_layer("h", (2,), 2, None)
        for epoch in [*range(0, 30, 5), 27]:
            with w.epoch(epoch) as ep:
                ep.set_activations("h", np.ones((2, 2)))
    report = check_run(path)
    assert report.ok and not report.warnings and not report.unrepairable, str(report)
    assert [str(f) for f in report.findings] == [
        "note     epochs: recorded every 5 epochs and at the last one trained (0, 5, 10, …, 27)"]
    shutil.rmtree(path / "epochs/000010")  # a gap inside: still a warning
    report = check_run(path)
    assert report.ok and report.warnings[0].message.startswith(
        "epoch 10 missing between 0 and 27 (recorded without it, or deleted, recorded every 5 epochs otherwise)")


def write_epochs(path, epochs):
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]) as w:
        w.declare_layer("h", (2,), 2, None)
        for epoch in epochs:
            with w.epoch(epoch) as ep:
                ep.set_activations("h", np.ones((2, 2)))


def test_every_nth_epoch_and_the_end_of_each_training_is_a_valid_run(tmp_path):
    # every_n_epochs=3, fit(epochs=4) then fit(initial_epoch=4, epochs=10) (or a PyTorch recorder closed at
    # epoch 4 and a new one continuing): each training records its last epoch, 4 and 10
    write_epochs(tmp_path / "run", [0, 3, 4, 6, 9, 10])
    report = check_run(tmp_path / "run")
    assert report.ok and not report.warnings and not report.unrepairable, str(report)
    assert [str(f) for f in report.findings] == [
        "note     epochs: recorded every 3 epochs and at the last epoch of each training (4, 10) (0, 3, 4, …, 10)"]
    # a first record off the stride (no record(0)) is still the one warning about the first epoch
    write_epochs(tmp_path / "late", [1, 3, 6, 7])
    report = check_run(tmp_path / "late")
    assert [f.message for f in report.warnings] == ["the first recorded epoch is 1, not 0 (the untrained model)"]
    assert [f.message for f in report.findings if f.level == "note"] == [
        "recorded every 3 epochs and at the last epoch of each training (7) (1, 3, 6, 7)"]
    # a stride with a hole stays a warning, and so does a run of every epoch with epochs deleted
    write_epochs(tmp_path / "hole", [0, 3, 4, 9, 10])
    assert check_run(tmp_path / "hole").warnings[0].message.startswith("epoch")
    write_epochs(tmp_path / "every", [0, 1, 2, 4, 5, 6, 8, 9, 10])
    assert check_run(tmp_path / "every").warnings[0].message.startswith("epochs 3, 7 missing between 0 and 10")


# ------------------------------------------------------------------ the shared file is blamed


def edit_manifest(run: Path, change) -> None:
    manifest = json.loads((run / MANIFEST_FILE).read_text())
    change(manifest)
    (run / MANIFEST_FILE).write_text(json.dumps(manifest))


MANIFEST_EDITS = [
    ("width", lambda m: m["layers"][0].update(width=8),
     r"the width of layer 'hidden' is 8, but every file it describes holds 16 \(every epoch \(0\.\.4\)\)"),
    ("probe size", lambda m: m.update(probe_size=100),
     r"probe_size is 100, but every file it describes holds 120 \(probe/inputs\.npy, probe/labels\.npy, every epoch"),
    ("test size", lambda m: m.update(test_size=29),
     r"test_size is 29, but every file it describes holds 30"),
    ("class count", lambda m: m.update(class_names=["class 0", "class 1"]),
     r"class_names lists 2 classes, but probe/labels\.npy and test/labels\.npy hold classes up to 2"),
]


@pytest.mark.parametrize("what,change,message", MANIFEST_EDITS, ids=[e[0] for e in MANIFEST_EDITS])
def test_one_wrong_value_in_the_manifest_is_blamed_on_the_manifest(synthetic_run, what, change, message):
    import re

    edit_manifest(synthetic_run, change)
    report = check_run(synthetic_run)
    (problem,) = report.problems  # one problem, not one per epoch
    assert problem.path == MANIFEST_FILE and re.search(message, problem.message), problem.message
    assert report.actions == ()  # before: repair planned to drop all five epochs
    assert any("repair never rewrites the manifest" in u for u in report.unrepairable)
    assert_repair_keeps_everything(synthetic_run)
    assert open_run(synthetic_run).epochs == [0, 1, 2, 3, 4]


def test_a_whole_file_that_disagrees_in_the_last_epoch_only_is_reported_not_deleted(synthetic_run):
    np.save(synthetic_run / "epochs/000004/probe" / KEY, np.zeros((120, 8), np.float16))
    report = check_run(synthetic_run)
    (problem,) = report.problems
    assert problem.path == f"epochs/000004/probe/{KEY}" and problem.message.startswith("shape (120, 8), expected (120, 16)")
    assert report.actions == () and "repair deletes nothing for that" in report.unrepairable[0]
    assert_repair_keeps_everything(synthetic_run)


# ------------------------------------------------------------------ the plan: exact, named, confirmed when large


def test_check_prints_the_exact_plan_and_repair_does_that_and_no_more(synthetic_run, capsys):
    (synthetic_run / "epochs/000004/metrics.json").write_text('{"epoch": 4, "loss": ')  # half-written
    (synthetic_run / "epochs/.partial-000005-999999").mkdir()
    assert main(["check", str(synthetic_run)]) == 1
    shown = capsys.readouterr().out
    plan = shown.split("`epochscope check RUN --repair` would:\n")[1].splitlines()
    assert plan == [
        "  would remove epochs/.partial-000005-999999: leftover unfinished epoch 5",
        "  would rewrite epochs/000004/metrics.json: damaged metrics row of epoch 4 (unreadable JSON "
        "(JSONDecodeError: Expecting value: line 1 column 22 (char 21))): written anew without metrics, keeping "
        "the epoch's whole activations, weights and predictions (the row's values are lost)",
    ]
    keep = {k: v for k, v in snapshot(synthetic_run).items()
            if k != "epochs/000004/metrics.json" and not k.startswith("epochs/.partial")}
    assert main(["check", str(synthetic_run), "--repair"]) == 0
    done = capsys.readouterr().out.split("repair:\n")[1].splitlines()
    assert [line.replace("  removed ", "  would remove ").replace("  rewrote ", "  would rewrite ")
            for line in done] == plan
    after = snapshot(synthetic_run)
    assert json.loads(after.pop("epochs/000004/metrics.json")) == {"epoch": 4} and after == keep


def test_a_plan_removing_most_of_the_run_is_refused_without_force(synthetic_run, capsys):
    for epoch in (2, 3, 4):  # three of five epochs truncated
        path = synthetic_run / f"epochs/{epoch:06d}/probe" / KEY
        path.write_bytes(path.read_bytes()[:100])
    before = snapshot(synthetic_run)
    report = check_run(synthetic_run, repair=True)
    assert report.refused and "removes 3 of the run's 5 epochs (2..4)" in report.refused
    assert not any(a.done for a in report.actions) and snapshot(synthetic_run) == before
    assert main(["check", str(synthetic_run), "--repair"]) == 1
    out = capsys.readouterr().out
    assert "repair refused: the plan removes 3 of the run's 5 epochs" in out and "--repair --force" in out
    assert snapshot(synthetic_run) == before
    assert main(["check", str(synthetic_run), "--repair", "--force"]) == 0
    assert open_run(synthetic_run).epochs == [0, 1]


def test_a_two_epoch_run_may_lose_its_damaged_last_epoch_without_force(tmp_path):
    run = make_synthetic_run(tmp_path / "run", n_epochs=2)
    (run / "epochs/000001/predictions.npy").write_bytes(b"\x93NUMPY")
    report = check_run(run, repair=True)
    assert report.refused is None and open_run(run).epochs == [0]


def test_the_plan_names_files_of_others_that_go_with_a_dropped_epoch(synthetic_run):
    (synthetic_run / "epochs/000004/predictions.npy").write_bytes(b"\x93NUMPY")
    (synthetic_run / "epochs/000004/notes.txt").write_text("a user's note")
    (action,) = check_run(synthetic_run).actions
    assert action.path == "epochs/000004" and action.what.endswith("; with it notes.txt, not epochscope's)")
