"""Bad input on the recording side: each case is a clear message (or a run that reads back right),
never a bare traceback from deep inside a library.

The table below is the list a user can read: what they give, and what they see.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from epochscope import NotARunError, RunError, RunLockedError, check_run, open_run  # noqa: E402
from epochscope.run import MANIFEST_FILE, layer_key  # noqa: E402
from epochscope.torch import Recorder  # noqa: E402

N = 30


def mlp(n_classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict([("fc1", nn.Linear(6, 8)), ("hidden", nn.ReLU()), ("out", nn.Linear(8, n_classes))]))


def x_probe(n: int = N) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 6)).astype(np.float32)


def y_probe(n: int = N) -> np.ndarray:
    return np.arange(n) % 3


class Wrap(nn.Module):
    """A model whose layer ``odd`` returns ``make(h)``; the model itself returns logits."""

    def __init__(self, make):
        super().__init__()
        self.fc1, self.out, self.make = nn.Linear(6, 8), nn.Linear(8, 3), make
        self.odd = _Odd(make)

    def forward(self, x):
        h = self.fc1(x)
        self.odd(h)
        return self.out(h)


class _Odd(nn.Module):
    def __init__(self, make):
        super().__init__()
        self.make = make

    def forward(self, h):
        return self.make(h)


def record(tmp_path: Path, y=None, *, model=None, layers=("hidden",), x=None, epochs=1, **kw):
    """Record ``epochs`` epochs and return the opened run."""
    model = model or mlp()
    with Recorder(model, list(layers), probe=(x_probe() if x is None else x, y_probe() if y is None else y),
                  run_dir=tmp_path / "run", **kw) as rec:
        for _ in range(epochs):
            rec.record()
    return open_run(tmp_path / "run")


# ------------------------------------------------------------------ labels in every form

def test_labels_as_strings_become_sorted_class_names(tmp_path):
    run = record(tmp_path, np.array(["eel", "cat", "dog"])[y_probe()])
    assert run.class_names == ["cat", "dog", "eel"] and run.labels.tolist()[:3] == [2, 0, 1]


def test_labels_one_hot(tmp_path):
    run = record(tmp_path, np.eye(3)[y_probe()])
    assert run.labels.tolist() == y_probe().tolist() and run.class_names == ["0", "1", "2"]


def test_labels_as_whole_floats_and_as_a_tensor(tmp_path):
    assert record(tmp_path, y_probe().astype(np.float32)).labels.tolist() == y_probe().tolist()
    assert record(tmp_path / "t", torch.as_tensor(y_probe())).labels.tolist() == y_probe().tolist()


# (the case, what the user passes, the exception, the message they read)
LABEL_ERRORS = [
    ("non-integral float labels", np.linspace(0, 2, N), ValueError,
     r"probe labels: float labels must be whole numbers \(class indices\); got e\.g\. \[0\.0689"),
    ("NaN labels", np.full(N, np.nan), ValueError, r"probe labels: float labels must be whole numbers"),
    ("negative labels", y_probe() - 1, ValueError, r"probe labels: class indices must be >= 0, got -1"),
    ("a 3-D label array", np.zeros((N, 2, 2)), ValueError,
     r"probe labels: expected one label per example \(1-D\) or one-hot rows \(2-D\), got shape \(30, 2, 2\)"),
    ("2-D string labels", np.full((N, 2), "a"), ValueError, r"probe labels: a 2-D array must be one-hot or class scores"),
    ("labels of another length", y_probe(N - 1), ValueError, r"probe x has 30 examples but y has 29"),
    ("labels beyond the class names", y_probe(), ValueError, r"probe labels: class index 2 but only 2 class_names"),
]


@pytest.mark.parametrize("case,labels,error,message", LABEL_ERRORS, ids=[c[0] for c in LABEL_ERRORS])
def test_bad_labels_say_what_is_wrong(tmp_path, case, labels, error, message):
    names = ["a", "b"] if case == "labels beyond the class names" else None
    with pytest.raises(error, match=message):
        record(tmp_path, labels, class_names=names)
    assert not (tmp_path / "run" / MANIFEST_FILE).exists(), "a refused recording must not leave a run behind"


def test_a_probe_with_one_class_records_and_says_so(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="epochscope"):
        run = record(tmp_path, np.full(N, 2), class_names=["a", "b", "c"])
    assert run.labels.tolist() == [2] * N and run.class_names == ["a", "b", "c"]
    assert "probe labels hold a single class ('c'): maps will show one colour" in caplog.text
    assert "stratified_probe" in caplog.text and check_run(run).ok


def test_more_than_20_classes_are_recorded(tmp_path, caplog):
    y = np.arange(50) % 25
    with caplog.at_level(logging.WARNING, logger="epochscope"):
        run = record(tmp_path, y, model=mlp(25), x=x_probe(50))
    assert run.class_names == [str(i) for i in range(25)] and run.labels.tolist() == y.tolist()
    assert run.predictions(0).max() <= 24 and "25 classes" in run.describe() and "…" in run.describe()
    assert check_run(run).ok and not caplog.records


# ------------------------------------------------------------------ layer outputs of every shape

def test_a_layer_returning_a_tuple_records_its_first_tensor(tmp_path):
    model = Wrap(lambda h: (h * 2, "extra", h.sum()))
    run = record(tmp_path, model=model, layers=["odd"])
    assert run.layer_info("odd").output_shape == (8,)
    np.testing.assert_allclose(run.activations("odd", 0),
                               (model.fc1(torch.as_tensor(x_probe())) * 2).detach().numpy(), atol=5e-3)


@pytest.mark.parametrize("make,message", [
    (lambda h: {"a": "text"}, r"layer 'odd' returns dict, not a tensor \(nor a structure holding one\); record a module "
                              r"whose output is a tensor"),
    (lambda h: None, r"layer 'odd' returns NoneType, not a tensor \(nor a structure holding one\); record a module whose "
                     r"output is a tensor"),
    (lambda h: ("no", "tensors"), r"layer 'odd' returns tuple, not a tensor"),
    (lambda h: h.sum(), r"layer 'odd' returned a single number \(a 0-d array\), not one value per example: it reduced "
                        r"the whole batch \(a loss, a sum, a mean\); record a layer whose output keeps the batch on its "
                        r"first axis"),
], ids=["dict without a tensor", "None", "tuple without a tensor", "0-d tensor"])
def test_layer_outputs_that_are_not_tensors_are_clear_errors(tmp_path, make, message):
    with pytest.raises(TypeError, match=message):
        record(tmp_path, model=Wrap(make), layers=["odd"])
    run = open_run(tmp_path / "run")
    assert run.epochs == [] and check_run(run).ok  # nothing half-written


@pytest.mark.parametrize("reduce,width,method", [("none", 2 * 3 * 4 * 5, None), ("pool", 2, "pool"),
                                                 ("project", 16, "project")])
def test_a_5d_output_is_recorded_flattened_pooled_or_projected(tmp_path, reduce, width, method):
    model = Wrap(lambda h: h[:, :2, None, None, None].expand(-1, 2, 3, 4, 5).contiguous())
    run = record(tmp_path, model=model, layers=["odd"], reduce=reduce, max_width=64, reduced_width=16, epochs=2)
    info = run.layer_info("odd")
    assert info.output_shape == (2, 3, 4, 5) and info.width == width
    assert (info.reduction or {}).get("method") == method
    assert run.activations("odd", 1).shape == (N, width) and check_run(run).ok


def test_a_layer_the_forward_pass_never_calls(tmp_path):
    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.spare = nn.Linear(6, 3), nn.Linear(6, 3)

        def forward(self, x):
            return self.used(x)

    with pytest.raises(RuntimeError, match=r"layers \['spare'\] were not called in the forward pass"):
        record(tmp_path, model=Unused(), layers=["spare"])


def test_nan_and_huge_activations_record_and_warn_once(tmp_path, caplog):
    model = Wrap(lambda h: torch.where(h > 0, h * 1e6, torch.full_like(h, float("nan"))))
    with caplog.at_level(logging.WARNING, logger="epochscope"):
        run = record(tmp_path, model=model, layers=["odd"], epochs=2, batch_size=10)
    acts = np.asarray(run.activations("odd", 1), dtype=np.float32)
    assert np.isnan(acts).any() and not np.isinf(acts).any(), "finite values must not turn into inf in float16"
    assert np.nanmax(np.abs(acts)) == pytest.approx(65504)
    text = caplog.text
    assert text.count("layer 'odd' output NaN or infinite values at epoch 0") == 1
    assert "the model has probably diverged (try a lower learning rate)" in text
    assert text.count("beyond the float16 range in which activations are stored; they are clipped to ±65504") == 1
    assert check_run(run).ok


# ------------------------------------------------------------------ runs on disk

def test_an_empty_run_with_epoch_0_only_opens_fine(tmp_path):
    run = record(tmp_path, epochs=1)
    assert run.epochs == [0] and len(run.metrics) == 1 and "epochs    0..0 (1 finished)" in run.describe()
    assert check_run(run).ok and check_run(run).findings == ()
    with Recorder(mlp(), ["hidden"], probe=(x_probe(), y_probe()), run_dir=tmp_path / "none"):
        pass  # created, nothing recorded
    empty = open_run(tmp_path / "none")
    assert empty.epochs == [] and empty.metrics == [] and "none finished" in empty.describe()
    assert check_run(empty).ok


def test_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(NotARunError, match=r"photos is not an epochscope run: manifest.json is missing\. Point at the "
                                           r"folder given as run_dir when recording \(e\.g\. OUT/run for the demo\)"):
        open_run(tmp_path / "photos")
    with pytest.raises(NotARunError, match="not an epochscope run"):
        check_run(tmp_path / "photos")
    with pytest.raises(RunError, match=r"photos exists, is not empty and holds no manifest\.json; choose an empty or new"):
        Recorder(mlp(), ["hidden"], probe=(x_probe(), y_probe()), run_dir=tmp_path / "photos")
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == [".lock", "cat.jpg"]


def test_a_run_from_a_newer_schema(tmp_path):
    run = record(tmp_path)
    manifest = json.loads((run.path / MANIFEST_FILE).read_text())
    (run.path / MANIFEST_FILE).write_text(json.dumps({**manifest, "schema_version": 7}))
    message = r"schema version 7 is newer than this epochscope reads \(2\); upgrade epochscope \(pip install -U epochscope\)"
    with pytest.raises(RunError, match=message):
        open_run(run.path)
    with pytest.raises(RunError, match=message):  # and it is not appended to
        record(tmp_path)
    assert check_run(run.path).problems[0].path == MANIFEST_FILE


@pytest.mark.parametrize("damage,message", [
    (lambda data: data[: len(data) // 2], r"truncated array: header says \(30, 8\) float16 \(480 bytes\) but only"),
    (lambda data: b"\x00" * len(data), r"unreadable array header .*the file is truncated or corrupted"),
], ids=["truncated", "corrupted"])
def test_a_damaged_array_file_is_named(tmp_path, damage, message):
    run = record(tmp_path, epochs=2)
    path = run.path / "epochs" / "000001" / "probe" / f"{layer_key('hidden')}.npy"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(RunError, match=rf"{path}: {message}"):
        run.activations("hidden", 1)
    (problem,) = check_run(run).problems
    assert problem.path == f"epochs/000001/probe/{layer_key('hidden')}.npy" and re.search(message, problem.message)
    assert run.activations("hidden", 0).shape == (N, 8)  # the other epochs still read
    # Resuming refuses nothing; repair drops the damaged trailing epoch so recording can continue cleanly.
    check_run(run, repair=True)
    assert open_run(run.path).epochs == [0] and record(tmp_path).epochs == [0, 1]


HOLDER = """
import sys
from epochscope.run import RunWriter
w = RunWriter.open(sys.argv[1], framework="torch", labels=[i % 3 for i in range(30)], class_names=["0", "1", "2"])
print("holding", flush=True)
sys.stdin.read()
"""


def test_two_writers_at_once_are_refused(tmp_path):
    path = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(RunLockedError, match=rf"{path} is being written by another process \(pid {holder.pid}\); "
                                                 r"wait for it to finish or record into another folder"):
            Recorder(mlp(), ["hidden"], probe=(x_probe(), y_probe()), run_dir=path)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert record(tmp_path).epochs == [0]  # free again once the other process ends
    with Recorder(mlp(), ["hidden"], probe=(x_probe(), y_probe()), run_dir=path):  # and in one process
        with pytest.raises(RunLockedError, match="is being written by another recorder in this process"):
            Recorder(mlp(), ["hidden"], probe=(x_probe(), y_probe()), run_dir=path)
