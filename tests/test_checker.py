"""epochscope.check_run and `epochscope check`: what is wrong, file by file, and safe repair."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from epochscope import NotARunError, RunLockedError, check_run, open_run
from epochscope.cli import main
from epochscope.run import MANIFEST_FILE, RunWriter, layer_key

KEY = f"{layer_key('hidden')}.npy"


def probe_file(run: Path, epoch: int, split: str = "probe") -> Path:
    return run / "epochs" / f"{epoch:06d}" / split / KEY


def only_problem(report):
    assert len(report.problems) == 1, str(report)
    return report.problems[0]


def test_healthy_run_has_no_findings(synthetic_run):
    report = check_run(open_run(synthetic_run))  # a Run or a path
    assert report.ok and report.findings == () and report.actions == ()
    assert report.epochs == (0, 1, 2, 3, 4)
    assert str(report) == f"run {synthetic_run}: epochs 0..4 (5); healthy, 0 warnings"


def _save(path, array):
    np.save(path, array, allow_pickle=False)


# (what is damaged, how, the file the finding must name, the message it must say)
DAMAGE = [
    ("truncated activations", lambda r: probe_file(r, 2).write_bytes(probe_file(r, 2).read_bytes()[:300]),
     "epochs/000002/probe/" + KEY, r"truncated array: header says \(120, 16\) float16 \(3840 bytes\) but only 172"),
    ("activations of the wrong width", lambda r: _save(probe_file(r, 2), np.zeros((120, 8), np.float16)),
     "epochs/000002/probe/" + KEY, r"shape \(120, 8\), expected \(120, 16\) \(layer 'hidden' on the probe set"),
    ("activations stored as float32", lambda r: _save(probe_file(r, 2), np.zeros((120, 16), np.float32)),
     "epochs/000002/probe/" + KEY, r"dtype float32, expected float16"),
    ("test activations missing", lambda r: probe_file(r, 2, "test").unlink(),
     "epochs/000002/test/" + KEY, r"missing \(layer 'hidden' on the test set: 30 examples × 16 values\)"),
    ("an object array", lambda r: np.save(probe_file(r, 2), np.array([{"a": 1}] * 120, dtype=object), allow_pickle=True),
     "epochs/000002/probe/" + KEY, r"holds Python objects \(dtype object\); epochscope never loads pickled data"),
    ("float predictions", lambda r: _save(r / "epochs/000002/predictions.npy", np.zeros(120)),
     "epochs/000002/predictions.npy", r"dtype float64, expected int64"),
    ("predictions out of range", lambda r: _save(r / "epochs/000002/predictions.npy", np.full(120, 7)),
     "epochs/000002/predictions.npy", r"predicted classes range 7\.\.7, expected -1\.\.2 \(3 class names\)"),
    ("labels of the wrong length", lambda r: _save(r / "probe/labels.npy", np.zeros(119, np.int64)),
     "probe/labels.npy", r"shape \(119,\), expected \(120,\)"),
    ("probe inputs of the wrong shape", lambda r: _save(r / "probe/inputs.npy", np.zeros((120, 64), np.float16)),
     "probe/inputs.npy", r"shape \(120, 64\), expected \(120, 1, 8, 8\)"),
    ("garbage weights", lambda r: (r / "epochs/000002/weights.npz").write_bytes(b"not a zip at all"),
     "epochs/000002/weights.npz", r"unreadable archive .*truncated or corrupted"),
    ("float64 weights", lambda r: np.savez(r / "epochs/000002/weights.npz", w=np.zeros(3)),
     "epochs/000002/weights.npz", r"arrays that are not float32: w \(float64\)"),
    ("weights missing in one epoch", lambda r: (r / "epochs/000002/weights.npz").unlink(),
     "epochs/000002/weights.npz", r"missing \(epochs from 0 on recorded weights\)"),
    ("metrics not JSON", lambda r: (r / "epochs/000002/metrics.json").write_text('{"epoch": 2, "loss": '),
     "epochs/000002/metrics.json", r"unreadable JSON \(JSONDecodeError"),
    ("metrics a list", lambda r: (r / "epochs/000002/metrics.json").write_text("[1, 2]"),
     "epochs/000002/metrics.json", r"expected a JSON object \(one metrics row\), got list"),
    ("metrics of another epoch", lambda r: (r / "epochs/000002/metrics.json").write_text('{"epoch": 3}'),
     "epochs/000002/metrics.json", r'"epoch" is 3, expected 2 \(the folder\'s epoch\)'),
    ("metrics missing", lambda r: (r / "epochs/000002/metrics.json").unlink(),
     "epochs/000002/metrics.json", r"missing \(the epoch's metrics row\)"),
    ("an epoch in the middle deleted", lambda r: shutil.rmtree(r / "epochs/000002"),
     "epochs", r"epochs are not contiguous: 2 missing between 0 and 4"),
    ("manifest garbage", lambda r: (r / MANIFEST_FILE).write_bytes(b"\x00\xff garbage"),
     MANIFEST_FILE, r"unreadable JSON"),
    ("manifest from a newer version",
     lambda r: (r / MANIFEST_FILE).write_text(json.dumps({**json.loads((r / MANIFEST_FILE).read_text()),
                                                          "schema_version": 99})),
     MANIFEST_FILE, r"schema version 99 is newer than this epochscope reads \(1\); upgrade epochscope"),
    ("manifest deleted", lambda r: (r / MANIFEST_FILE).unlink(),
     MANIFEST_FILE, r"missing; the manifest was deleted: the epochs cannot be read without it"),
]


@pytest.mark.parametrize("what,damage,path,message", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_each_damage_is_named_with_its_file(synthetic_run, what, damage, path, message):
    damage(synthetic_run)
    report = check_run(synthetic_run)
    problem = only_problem(report)
    assert problem.path == path
    assert re.search(message, problem.message), problem.message
    assert not report.ok and f"problem  {path}: " in str(report)


def test_not_a_run(tmp_path):
    with pytest.raises(NotARunError, match="manifest.json is missing"):
        check_run(tmp_path)
    with pytest.raises(NotARunError, match="no such folder"):
        check_run(tmp_path / "nope")


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


def test_repair_cleans_leftovers_and_caches_but_keeps_good_and_unknown_files(synthetic_run):
    run = synthetic_run
    (run / "epochs/.partial-000005-999999").mkdir()
    (run / ".manifest.json.tmp-999999").write_text("{")
    (run / "notes.txt").write_text("mine")
    maps = run / "cache" / "maps"
    good, corrupt, stale, partial = maps / "good", maps / "corrupt", maps / "stale", maps / ".tmp-abc-999999"
    for entry in (good, corrupt, stale, partial):
        entry.mkdir(parents=True)
        _save(entry / "coords.npy", np.zeros((2, 120, 2), np.float32))
    (good / "meta.json").write_text(json.dumps({"layer": "hidden", "epochs": [0, 1]}))
    (corrupt / "meta.json").write_text(json.dumps({"layer": "hidden", "epochs": [0, 1]}))
    (corrupt / "coords.npy").write_bytes((corrupt / "coords.npy").read_bytes()[:-8])
    (stale / "meta.json").write_text(json.dumps({"layer": "gone", "epochs": [0, 9]}))
    (maps / "unknown.bin").write_bytes(b"\x00")

    report = check_run(run)
    by_path = {f.path: f for f in report.findings}
    assert by_path["cache/maps/corrupt"].level == "problem"
    assert "corrupt cache entry: cache/maps/corrupt/coords.npy: truncated array" in by_path["cache/maps/corrupt"].message
    assert by_path["cache/maps/stale"].message == ("stale cache entry: layer 'gone' is not recorded in this run; "
                                                   "built from epoch 9 that the run no longer holds")
    assert by_path["epochs/.partial-000005-999999"].level == "warning"
    assert by_path[".manifest.json.tmp-999999"].level == "warning"
    assert by_path["notes.txt"].level == "warning" and "cache/maps/good" not in by_path
    assert "cache/maps/unknown.bin" not in by_path  # unknown kinds of cache file are accepted as they are

    after = check_run(run, repair=True)
    assert after.ok and after.findings == (by_path["notes.txt"],)
    assert sorted(a.path for a in after.actions) == sorted([
        "cache/maps/.tmp-abc-999999", "cache/maps/corrupt", "cache/maps/stale",
        "epochs/.partial-000005-999999", ".manifest.json.tmp-999999"])
    assert good.is_dir() and (run / "notes.txt").exists() and (maps / "unknown.bin").exists()
    assert open_run(run).epochs == [0, 1, 2, 3, 4]


def test_cache_built_from_a_dropped_epoch_goes_with_it(synthetic_run):
    entry = synthetic_run / "cache" / "maps" / "k"
    entry.mkdir(parents=True)
    (entry / "meta.json").write_text(json.dumps({"epochs": [3, 4], "created": open_run(synthetic_run).manifest.created}))
    probe_file(synthetic_run, 4).unlink()
    report = check_run(synthetic_run)
    assert any(f.path == "cache/maps/k" and "built from damaged epoch 4, which repair drops" in f.message
               for f in report.warnings)
    check_run(synthetic_run, repair=True)
    assert not entry.exists()


def test_recreated_run_makes_its_caches_stale(synthetic_run):
    entry = synthetic_run / "cache" / "maps" / "k"
    entry.mkdir(parents=True)
    (entry / "meta.json").write_text(json.dumps({"created": "2001-01-01T00:00:00", "probe_size": 120}))
    (finding,) = check_run(synthetic_run).warnings
    assert "created '2001-01-01T00:00:00' differs from the run's" in finding.message


def test_a_live_writer_is_noted_and_repair_is_refused(tmp_path):
    path = tmp_path / "run"
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]) as w:
        w.declare_layer("h", (2,), 2, None)
        with w.epoch(0) as ep:
            ep.set_activations("h", np.ones((2, 2)))
        building = w.epoch(1)  # an epoch being written right now
        report = check_run(path)
        assert report.ok and report.writer == f"pid {os.getpid()}"
        (note,) = [f for f in report.findings if f.path.startswith("epochs/.partial")]
        assert note.level == "note" and "being written right now" in note.message and not report.actions
        with pytest.raises(RunLockedError, match="being written by another process"):
            check_run(path, repair=True)
        assert building._dir.is_dir()
        building.discard()


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


def test_cli_exit_status_and_json(synthetic_run, capsys):
    assert main(["check", str(synthetic_run)]) == 0
    assert "healthy" in capsys.readouterr().out
    probe_file(synthetic_run, 4).write_bytes(b"\x93NUMPY")
    assert main(["check", str(synthetic_run)]) == 1
    out = capsys.readouterr().out
    assert f"problem  epochs/000004/probe/{KEY}: unreadable array header" in out
    assert "would remove epochs/000004: damaged trailing epoch 4" in out
    assert main(["check", str(synthetic_run), "--repair", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["epochs"] == [0, 1, 2, 3] and doc["actions"][0]["done"]
    assert main(["check", str(synthetic_run.parent / "nope")]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_console_script_runs_check(synthetic_run):
    proc = subprocess.run([sys.executable, "-m", "epochscope", "check", str(synthetic_run)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "healthy" in proc.stdout
