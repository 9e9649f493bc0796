"""The checker's view of the epochs: damaged trailing epochs dropped by repair, never one in the middle;
a layer added on resume is a warning, not a problem."""

from pathlib import Path

import numpy as np

from epochscope import check_run, open_run
from epochscope.run import RunWriter, layer_key

KEY = f"{layer_key('hidden')}.npy"


def probe_file(run: Path, epoch: int, split: str = "probe") -> Path:
    return run / "epochs" / f"{epoch:06d}" / split / KEY


def test_repair_drops_damaged_trailing_epochs_but_never_one_in_the_middle(synthetic_run):
    probe_file(synthetic_run, 4).write_bytes(b"")                      # trailing, damaged
    (synthetic_run / "epochs/000003/metrics.json").write_text("{")      # damaged, now also trailing
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


