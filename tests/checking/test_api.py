"""epochscope.check_run: what is wrong, file by file; a live writer is seen and not disturbed."""

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from epochscope import NotARunError, RunLockedError, check_run, open_run
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
    ("an object array",
     lambda r: np.save(probe_file(r, 2), np.array([{"a": 1}] * 120, dtype=object), allow_pickle=True),
     "epochs/000002/probe/" + KEY, r"holds Python objects \(dtype object\); epochscope never loads pickled data"),
    ("float predictions", lambda r: _save(r / "epochs/000002/predictions.npy", np.zeros(120)),
     "epochs/000002/predictions.npy", r"dtype float64, expected int64"),
    ("predictions below -1", lambda r: _save(r / "epochs/000002/predictions.npy", np.full(120, -5)),
     "epochs/000002/predictions.npy", r"predicted classes range -5\.\.-5, expected -1 \(unknown\) or a class index"),
    ("labels of the wrong length", lambda r: _save(r / "probe/labels.npy", np.zeros(119, np.int64)),
     "probe/labels.npy", r"shape \(119,\), expected \(120,\)"),
    ("probe inputs of the wrong shape", lambda r: _save(r / "probe/inputs.npy", np.zeros((120, 64), np.float16)),
     "probe/inputs.npy", r"shape \(120, 64\), expected \(120, 1, 8, 8\)"),
    ("garbage weights", lambda r: (r / "epochs/000002/weights.npz").write_bytes(b"not a zip at all"),
     "epochs/000002/weights.npz", r"unreadable archive .*truncated or corrupted"),
    ("float64 weights", lambda r: np.savez(r / "epochs/000002/weights.npz", w=np.zeros(3)),
     "epochs/000002/weights.npz", r"arrays that are not float32: w \(float64\)"),
    ("metrics not JSON", lambda r: (r / "epochs/000002/metrics.json").write_text('{"epoch": 2, "loss": '),
     "epochs/000002/metrics.json", r"unreadable JSON \(JSONDecodeError"),
    ("metrics a list", lambda r: (r / "epochs/000002/metrics.json").write_text("[1, 2]"),
     "epochs/000002/metrics.json", r"expected a JSON object \(one metrics row\), got list"),
    ("metrics missing", lambda r: (r / "epochs/000002/metrics.json").unlink(),
     "epochs/000002/metrics.json", r"missing \(the epoch's metrics row\)"),
    ("manifest garbage", lambda r: (r / MANIFEST_FILE).write_bytes(b"\x00\xff garbage"),
     MANIFEST_FILE, r"unreadable JSON"),
    ("manifest from a newer version",
     lambda r: (r / MANIFEST_FILE).write_text(json.dumps({**json.loads((r / MANIFEST_FILE).read_text()),
                                                          "schema_version": 99})),
     MANIFEST_FILE, r"schema version 99 is newer than this epochscope reads \(2\); upgrade epochscope"),
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
        # the holder may be a notebook idle after a failed Keras fit: the text says what to do there
        assert f"held by a writer, pid {os.getpid()}" in report.format() and "rec.close()" in report.format()
        with pytest.raises(RunLockedError, match="being written by another recorder in this process"):
            check_run(path, repair=True)
        assert building._dir.is_dir()
        building.discard()


