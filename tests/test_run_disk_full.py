"""Issue 14, kind 5: a full disk while recording never kills training.

Before, layer outputs were written through a memory map into sparse files, so a full disk
arrived as SIGBUS and the training process died. Now the layer file's blocks are allocated
first and rows are written with ``pwrite``: the recorder raises one clear
:class:`~epochscope.StorageError` (``on_disk_full="raise"``, the default) or leaves the epoch
out with a warning and goes on (``"skip"``); finished epochs are kept, nothing half-written is
left, and the next run resumes.

The real test records onto a 4 MB tmpfs in a private mount namespace (``unshare -rm``);
the others simulate ENOSPC and run everywhere.
"""

import errno
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_run_fs_errors import needs_unshare

from epochscope import StorageError, check_run, open_run
from epochscope.record.core import RecordingSession
from epochscope.record.settings import RecordSettings
from epochscope.run import writer as run_writer

N, WIDTH = 2000, 256  # one epoch: about 1 MB of float16 activations

DRIVER = textwrap.dedent('''
    import json, logging, os, sys
    import numpy as np
    from epochscope import StorageError, check_run, open_run
    from epochscope.record.core import RecordingSession
    from epochscope.record.settings import RecordSettings

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    disk, policy = sys.argv[1], sys.argv[2]
    run_dir = os.path.join(disk, "run")
    with open(os.path.join(disk, "filler"), "wb") as fh:  # what else is on the disk
        fh.write(bytes(1 << 20))
    labels = np.arange(2000) % 10
    result = {}

    def train(epochs):
        done = {"recorded": [], "skipped": []}
        session = RecordingSession(RecordSettings(run_dir, ["hidden"], on_disk_full=policy), probe_labels=labels,
                                   framework="numpy")
        try:
            for _ in range(epochs):
                with session.start_epoch() as rec:
                    for start in range(0, 2000, 500):
                        rows = np.full((500, 256), float(rec.epoch), np.float32)
                        rec.add_batch("probe", start, {"hidden": rows}, np.eye(10)[labels[start:start + 500]])
                    rec.commit(metrics={"loss": 1.0 / (rec.epoch + 1)})
                done["skipped" if rec.skipped else "recorded"].append(rec.epoch)
        except StorageError as err:
            done["error"] = str(err)
        finally:
            session.close()
        return done

    result.update(train(6))  # the disk fills after two or three epochs
    result["training_went_on"] = True
    report = check_run(run_dir)
    result["ok_after_full"] = report.ok
    result["leftovers"] = [f.path for f in report.findings if "partial" in f.path]
    result["epochs_after_full"] = open_run(run_dir).epochs
    os.remove(os.path.join(disk, "filler"))  # space again: the next run resumes
    result["resumed"] = train(1)
    run = open_run(run_dir)
    result["epochs"] = run.epochs
    result["values"] = [float(run.activations("hidden", e)[0, 0]) for e in run.epochs]
    result["ok"] = check_run(run_dir).ok
    print("RESULT " + json.dumps(result))
''')


def record_on_a_small_disk(tmp_path, policy: str) -> dict:
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    command = f"mount -t tmpfs -o size=4m tmpfs '{disk}' && exec {sys.executable} '{script}' '{disk}' {policy}"
    done = subprocess.run(["unshare", "-rm", "sh", "-c", command], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, f"rc {done.returncode} (-7: SIGBUS killed the process)\n{done.stderr[-3000:]}"
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return {**json.loads(line[len("RESULT "):]), "log": done.stderr}


@needs_unshare
def test_a_full_disk_raises_one_clear_error_and_the_next_run_resumes(tmp_path):
    result = record_on_a_small_disk(tmp_path, "raise")  # before: the process died of SIGBUS
    recorded = result["recorded"]
    assert 1 <= len(recorded) <= 3 and recorded == list(range(len(recorded)))
    assert result["error"].startswith(f"cannot write epoch {len(recorded)} into ")
    assert "No space left on device; the disk is full: free space" in result["error"]
    assert "every finished epoch is kept and recording into this folder again resumes after them" in result["error"]
    assert result["ok_after_full"] and result["leftovers"] == [] and result["epochs_after_full"] == recorded
    assert result["resumed"] == {"recorded": [len(recorded)], "skipped": []}
    assert result["epochs"] == [*recorded, len(recorded)] and result["ok"]
    assert result["values"] == [float(e) for e in result["epochs"]]  # every epoch holds its own data


@needs_unshare
def test_a_full_disk_can_skip_the_epoch_and_training_goes_on(tmp_path):
    result = record_on_a_small_disk(tmp_path, "skip")
    recorded, skipped = result["recorded"], result["skipped"]
    assert "error" not in result and sorted(recorded + skipped) == list(range(6)) and skipped
    assert recorded == list(range(len(recorded))) and skipped == list(range(len(recorded), 6))
    assert f"Epoch {skipped[0]} is left out and training goes on (on_disk_full='skip')" in result["log"]
    assert result["ok_after_full"] and result["leftovers"] == [] and result["epochs_after_full"] == recorded
    # The next run resumes after the last finished epoch (a new process knows nothing of what was skipped).
    assert result["resumed"] == {"recorded": [len(recorded)], "skipped": []}
    assert result["epochs"] == [*recorded, len(recorded)] and result["ok"]
    assert result["values"] == [float(e) for e in result["epochs"]]


# ------------------------------------------------------------------ simulated, everywhere


def session(tmp_path, policy="raise") -> RecordingSession:
    return RecordingSession(RecordSettings(str(tmp_path / "run"), ["hidden"], on_disk_full=policy),
                            probe_labels=np.arange(N) % 10, framework="numpy")


def record(s: RecordingSession) -> int:
    with s.start_epoch() as rec:
        rec.add_batch("probe", 0, {"hidden": np.ones((N, WIDTH), np.float32)}, None)
        return rec.commit(metrics={"loss": 0.5})


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["posix_fallocate", "pwrite"])
def test_no_space_raises_a_storage_error_and_leaves_no_partial_epoch(tmp_path, monkeypatch, where):
    s = session(tmp_path)
    record(s)
    if where == "posix_fallocate" and not hasattr(os, "posix_fallocate"):
        pytest.skip("no posix_fallocate here")
    monkeypatch.setattr(run_writer.os, where, enospc)
    with pytest.raises(StorageError, match=r"cannot write epoch 1 into .*: No space left on device; the disk is full"):
        record(s)
    monkeypatch.undo()
    assert not [p for p in (tmp_path / "run" / "epochs").iterdir() if p.name.startswith(".partial")]
    assert record(s) == 1 and open_run(tmp_path / "run").epochs == [0, 1]
    s.close()
    assert check_run(tmp_path / "run").ok


def test_skip_leaves_the_epoch_out_and_keeps_the_numbering(tmp_path, monkeypatch, caplog):
    s = session(tmp_path, "skip")
    record(s)
    monkeypatch.setattr(run_writer.os, "pwrite", enospc)
    assert record(s) == 1  # no exception: training goes on
    assert "Epoch 1 is left out and training goes on" in caplog.text
    monkeypatch.undo()
    assert s.next_epoch == 2 and record(s) == 2  # the epoch after the skipped one keeps its number
    s.close()
    assert open_run(tmp_path / "run").epochs == [0, 2]


def test_metrics_and_predictions_on_a_full_disk_are_storage_errors_too(tmp_path, monkeypatch):
    import numpy

    s = session(tmp_path)
    monkeypatch.setattr(numpy, "save", enospc)  # predictions are the first file after the layers
    with pytest.raises(StorageError, match=r"cannot write epoch 0 .*predictions\.npy\): No space left"):
        record(s)
    monkeypatch.undo()
    s.close()
    assert open_run(tmp_path / "run").epochs == [] and check_run(tmp_path / "run").ok


def test_on_disk_full_is_checked_when_the_settings_are_made():
    with pytest.raises(ValueError, match=r"on_disk_full: expected one of 'raise', 'skip', got 'ignore'"):
        RecordSettings("runs/x", ["hidden"], on_disk_full="ignore")


def test_layer_buffers_are_not_memory_maps(tmp_path):
    """A write into a memory map on a full disk is SIGBUS; the buffer must write with system calls."""
    s = session(tmp_path)
    with s.start_epoch() as rec:
        rec.add_batch("probe", 0, {"hidden": np.ones((N, WIDTH), np.float32)}, None)
        buf = rec.builder.layer_buffer("hidden")
        assert not isinstance(buf, np.ndarray) and buf.shape == (N, WIDTH)
        rec.commit()
    s.close()
