"""epochscope never runs code it reads from disk, and names from a run never leave the run folder.

1. A scan of src/ (by syntax tree, so comments and docstrings do not count) for pickle and its
   relatives, eval/exec, allow_pickle=True, torch.load without weights_only=True and yaml.load.
2. Arrays holding pickled objects, planted in every place a run keeps arrays, are refused with a
   RunError naming the file, and the code inside them never runs.
3. Layer names such as ``../../x`` stay inside the run through the recording core, the reader and
   the checker's repair.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np
import pytest

from epochscope import RunError, check_run, open_run
from epochscope.record.core import RecordingSession
from epochscope.record.settings import RecordSettings
from epochscope.run import RunWriter, layer_key

SRC = Path(__file__).resolve().parents[1] / "src" / "epochscope"
PICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal", "joblib", "jsonpickle"}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def unsafe_calls(source: str, filename: str = "<src>") -> list[str]:
    """Every construct in ``source`` that could run code read from disk, as ``"file:line: what"``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {a.name}" for a in node.names if a.name.split(".")[0] in PICKLERS]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLERS:
            found.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            keywords = {k.arg: k.value for k in node.keywords}
            if name in ("eval", "exec"):
                found.append(f"{where}: {name}()")
            if "allow_pickle" in keywords and not (isinstance(keywords["allow_pickle"], ast.Constant)
                                                   and keywords["allow_pickle"].value is False):
                found.append(f"{where}: allow_pickle that is not False")
            if name in ("torch.load", "torch.serialization.load"):
                weights_only = keywords.get("weights_only")
                if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                    found.append(f"{where}: torch.load without weights_only=True")
            if name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all"):
                found.append(f"{where}: {name} (use yaml.safe_load)")
            if name.split(".")[-1] in ("read_pickle", "Unpickler", "loads") and name.split(".")[0] in PICKLERS | {"pd", "pandas"}:
                found.append(f"{where}: {name}")
    return found


def test_the_scan_finds_each_unsafe_construct():
    bad = """
import pickle
from dill import loads
import numpy as np, torch, yaml
np.load("a.npy", allow_pickle=True)
np.load("a.npy", allow_pickle=flag)
torch.load("m.pt")
torch.load("m.pt", weights_only=False)
yaml.load(text)
eval("1")
exec("x = 1")
pd.read_pickle("x")
"""
    found = unsafe_calls(bad)
    assert len(found) == 10, found
    good = """
import numpy as np, torch, yaml, re
np.load("a.npy", allow_pickle=False)
torch.load("m.pt", map_location="cpu", weights_only=True)
yaml.safe_load(text)
re.compile("x")
model.eval()
'''Nothing is read with pickle; never eval( text'''
"""
    assert unsafe_calls(good) == []


def test_no_source_file_can_run_code_from_disk():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 10
    found = [hit for f in files for hit in unsafe_calls(f.read_text(encoding="utf-8"), str(f.relative_to(SRC)))]
    assert found == [], "unsafe loading in src/:\n" + "\n".join(found)


# ---------------------------------------------------------------- pickled objects planted in a run


class _Payload:
    """Unpickling this runs ``exec(code)``: the marker file appears if anything unpickles it."""

    def __init__(self, marker: Path) -> None:
        self.code = f"open({str(marker)!r}, 'w').write('ran')"

    def __reduce__(self):
        return (exec, (self.code,))


def _plant(path: Path, marker: Path, n: int) -> None:
    np.save(path, np.array([_Payload(marker)] * n, dtype=object), allow_pickle=True)


@pytest.mark.parametrize("target,read", [
    ("epochs/000001/probe/{key}", lambda run: np.asarray(run.activations("hidden", 1)).sum()),
    ("epochs/000001/test/{key}", lambda run: run.test_activations("hidden", 1)),
    ("epochs/000001/predictions.npy", lambda run: run.predictions(1)),
    ("probe/labels.npy", lambda run: run.labels),
    ("probe/inputs.npy", lambda run: run.probe_inputs),
    ("test/labels.npy", lambda run: run.test_labels),
])
def test_object_arrays_are_refused_and_never_run(synthetic_run, tmp_path, target, read):
    marker = tmp_path / "pwned"
    path = synthetic_run / target.format(key=f"{layer_key('hidden')}.npy")
    _plant(path, marker, 120)
    with pytest.raises(RunError, match=rf"{path.name}: holds Python objects \(dtype object\); epochscope never loads"):
        read(open_run(synthetic_run))
    report = check_run(synthetic_run)
    assert any(f.path == target.format(key=f"{layer_key('hidden')}.npy") and "holds Python objects" in f.message
               for f in report.problems), str(report)
    assert not marker.exists(), "code inside a run file was executed"


def test_pickled_weights_and_reduction_matrices_are_refused(synthetic_run, tmp_path):
    marker = tmp_path / "pwned"
    np.savez(synthetic_run / "epochs" / "000002" / "weights.npz",
             evil=np.array([_Payload(marker)], dtype=object), ok=np.zeros(2, np.float32))
    with pytest.raises(RunError, match=r"weights\.npz \(array 'evil'\): holds Python objects"):
        open_run(synthetic_run).weights(2)
    assert any(f.path == "epochs/000002/weights.npz" for f in check_run(synthetic_run).problems)

    path = tmp_path / "another-run"
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]) as w:
        (path / "reductions").mkdir()
        _plant(path / "reductions" / f"{layer_key('h')}.npy", marker, 2)
        with pytest.raises(RunError, match="holds Python objects"):
            w.reduction_matrix("h")  # what a resumed recording reads
    assert not marker.exists(), "code inside a run file was executed"


def test_cache_files_holding_objects_are_reported_not_loaded(synthetic_run, tmp_path):
    marker = tmp_path / "pwned"
    entry = synthetic_run / "cache" / "maps" / "abc"
    entry.mkdir(parents=True)
    _plant(entry / "coords.npy", marker, 3)
    report = check_run(synthetic_run, repair=True)
    assert [a.path for a in report.actions] == ["cache/maps/abc"] and not entry.exists()
    assert not marker.exists()


# ---------------------------------------------------------------- names cannot leave the run

ESCAPING = ["../../x", "/tmp/abs", "a/../../b", "..", "features.0/conv", "~/x", "C:\\x"]


def test_layer_names_stay_inside_the_run_through_the_recording_core(tmp_path):
    outside_before = sorted(p.name for p in tmp_path.iterdir())
    run_dir = tmp_path / "deep" / "run"
    session = RecordingSession(RecordSettings(run_dir, ESCAPING), probe_labels=[0, 1, 1], test_labels=[1, 0],
                               framework="test")
    for _ in range(2):
        with session.start_epoch() as rec:
            for split, n in (("probe", 3), ("test", 2)):
                rec.add_batch(split, 0, {name: np.ones((n, 2, 3)) for name in ESCAPING}, np.eye(2)[[0, 1, 1][:n]])
    session.close()
    root = run_dir.resolve()
    every = [p.resolve() for p in tmp_path.rglob("*")]
    assert all(p == tmp_path.resolve() / "deep" or root == p or root in p.parents for p in every), every
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*outside_before, "deep"])
    assert not Path("/tmp/abs.npy").exists() and not (tmp_path / "x.npy").exists()
    run = open_run(run_dir)
    assert run.layers == ESCAPING and run.epochs == [0, 1]
    for name in ESCAPING:
        assert run.activations(name, 1).shape == (3, 6)
    assert check_run(run_dir).ok


def test_repair_never_follows_a_link_out_of_the_run(synthetic_run, tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data.npy").write_bytes(b"garbage that a checker would call corrupt")
    (synthetic_run / "cache" / "maps").mkdir(parents=True)
    os.symlink(outside, synthetic_run / "cache" / "maps" / ".tmp-link-999999")
    report = check_run(synthetic_run, repair=True)
    assert [a.path for a in report.actions] == ["cache/maps/.tmp-link-999999"]
    assert (outside / "data.npy").exists() and not (synthetic_run / "cache" / "maps" / ".tmp-link-999999").exists()
