"""Property tests: whatever happens to a run's files, reading it works or fails with a message naming the file.

Hypothesis truncates, flips bytes in, deletes, swaps or replaces with garbage any one file of a
small run. Opening and reading everything must then either work or raise ``RunError`` /
``NotARunError`` / ``ValueError`` whose message names the damaged file — never another
exception type and never a hang — and ``check_run`` must never crash and must name every
file whose damage is detectable (truncation, deletion, garbage).

The reader's guards one by one are tested in test_fileio.py, test_manifest.py and test_writer.py.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from limits import time_limit
from synthetic import make_synthetic_run

from epochscope import RunError, check_run, open_run


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    path = make_synthetic_run(tmp_path_factory.mktemp("template") / "run", n_probe=12, n_test=6, n_epochs=3, width=4)
    (path / ".lock").unlink()  # not part of the run's data
    return path


def run_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


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
    run.metrics  # noqa: B018 - reading every metrics row is the point


def damage(data: bytes, how: str, draw) -> bytes | None:
    """The damaged content (``None``: delete the file)."""
    if how == "delete":
        return None
    if how == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if how == "garbage":
        junk = draw(st.binary(min_size=0, max_size=300))
        return junk if junk != data else junk + b"\x00"
    flips = draw(st.lists(st.tuples(st.integers(0, max(len(data) - 1, 0)), st.integers(1, 255)),
                          min_size=1, max_size=8))
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
