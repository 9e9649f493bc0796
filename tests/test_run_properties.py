"""Property tests: whatever happens to a run's files, reading it works or fails with a message naming the file.

Hypothesis truncates, flips bytes in, deletes, swaps or replaces with garbage any one file of a
small run. Opening and reading everything must then either work or raise ``RunError`` /
``NotARunError`` / ``ValueError`` whose message names the damaged file — never another
exception type and never a hang — and ``check_run`` must never crash and must name every
file whose damage is detectable (truncation, deletion, garbage).
"""

import shutil
import signal
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synthetic import make_synthetic_run

from epochscope import NotARunError, RunError, check_run, open_run
from epochscope.run import RunWriter, load_npy, load_npz


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    path = make_synthetic_run(tmp_path_factory.mktemp("template") / "run", n_probe=12, n_test=6, n_epochs=3, width=4)
    (path / ".lock").unlink()  # not part of the run's data
    return path


def run_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@contextmanager
def time_limit(seconds: int):
    def fail(*_):
        raise TimeoutError(f"reading a damaged run took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def read_everything(path: Path) -> None:
    """Touch every byte a renderer could read."""
    run = open_run(path)
    repr(run), run.describe(), run.layers, run.class_names
    np.asarray(run.labels).sum()
    for arr in (run.test_labels, run.probe_inputs, run.test_inputs):
        if arr is not None:
            np.asarray(arr, dtype=np.float64).sum()
    for epoch in run.epochs:
        for layer in run.layers:
            np.asarray(run.activations(layer, epoch), dtype=np.float64).sum()
            np.asarray(run.test_activations(layer, epoch), dtype=np.float64).sum()
        np.asarray(run.predictions(epoch)).sum()
        np.asarray(run.test_predictions(epoch)).sum()
        for w in run.weights(epoch).values():
            np.asarray(w, dtype=np.float64).sum()
    run.metrics


def damage(data: bytes, how: str, draw) -> bytes | None:
    """The damaged content (``None``: delete the file)."""
    if how == "delete":
        return None
    if how == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if how == "garbage":
        junk = draw(st.binary(min_size=0, max_size=300))
        return junk if junk != data else junk + b"\x00"
    flips = draw(st.lists(st.tuples(st.integers(0, max(len(data) - 1, 0)), st.integers(1, 255)), min_size=1, max_size=8))
    out = bytearray(data)
    for pos, mask in flips:
        if out:
            out[pos] ^= mask
    return bytes(out)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_run_reads_or_names_the_file(template, tmp_path_factory, data):
    files = run_files(template)
    target = data.draw(st.sampled_from(files), label="file")
    how = data.draw(st.sampled_from(["truncate", "flip", "delete", "garbage", "swap"]), label="how")
    path = tmp_path_factory.mktemp("case") / "run"
    shutil.copytree(template, path)
    if how == "swap":  # another valid file of the run in its place: right format, wrong content
        other = data.draw(st.sampled_from([f for f in files if f != target]), label="other")
        (path / target).write_bytes((template / other).read_bytes())
    else:
        new = damage((template / target).read_bytes(), how, data.draw)
        if new is None:
            (path / target).unlink()
        else:
            (path / target).write_bytes(new)

    name = Path(target).name
    with time_limit(20):
        try:
            read_everything(path)
        except (RunError, ValueError) as err:  # NotARunError is a RunError
            message = str(err)
            names_it = name in message or (name == "manifest.json" and "manifest" in message)
            # A damaged manifest may point readers at files it no longer names correctly.
            names_a_run_file = str(path) in message
            assert names_it or (name == "manifest.json" and names_a_run_file), (type(err), message)
        report = check_run(path)  # never raises here: the folder still looks like a run

    if how in ("truncate", "delete", "garbage"):
        # A file missing from the first epochs only may also mean "recorded from a later epoch on": a warning.
        named = [f.path for f in (report.findings if how == "delete" else report.problems) if f.level != "note"]
        assert any(p == target or target.startswith(p + "/") for p in named) or (
            target.endswith("manifest.json") and "manifest.json" in named), (target, how, str(report))
    shutil.rmtree(path.parent)


# ---------------------------------------------------------------- the reader's guards, one by one


def test_header_promising_more_than_the_file_holds_is_refused_before_allocating(tmp_path):
    path = tmp_path / "a.npy"
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<i8", "fortran_order": False, "shape": (4 * 10**11,)})
        fh.write(np.zeros(4, np.int64).tobytes())
    with pytest.raises(RunError, match=r"a\.npy: truncated array: header says \(400000000000,\) int64"):
        load_npy(path, mmap=False)


def test_object_arrays_are_refused(tmp_path):
    path = tmp_path / "o.npy"
    np.save(path, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(RunError, match=r"o\.npy: holds Python objects \(dtype object\)"):
        load_npy(path)


def test_corrupt_weights_archive_is_a_run_error(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, a=np.arange(100, dtype=np.float32))
    raw = bytearray(path.read_bytes())
    raw[200] ^= 0xFF  # inside the stored array: the zip checksum no longer matches
    path.write_bytes(bytes(raw))
    with pytest.raises(RunError, match=r"w\.npz: unreadable archive \(Bad CRC-32 for file 'a\.npy'\)"):
        load_npz(path)
    path.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(RunError, match=r"w\.npz: unreadable archive"):
        load_npz(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("w.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
                         .ljust(127) + b"\n")
    with pytest.raises(RunError, match=r"w\.npz \(array 'w'\): holds Python objects"):
        load_npz(path)


def test_missing_metrics_is_a_run_error_naming_the_file(synthetic_run):
    (synthetic_run / "epochs" / "000001" / "metrics.json").unlink()
    with pytest.raises(RunError, match=r"000001/metrics\.json: file missing from the run"):
        open_run(synthetic_run).metrics


def test_deeply_nested_or_infinite_manifest_values_are_run_errors(synthetic_run):
    manifest = synthetic_run / "manifest.json"
    text = manifest.read_text()
    manifest.write_text(text.replace('"probe_size": 120', '"probe_size": Infinity'))
    with pytest.raises(RunError, match="manifest.json: malformed manifest"):
        open_run(synthetic_run)
    manifest.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RunError, match="manifest.json: unreadable JSON"):
        open_run(synthetic_run)


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
