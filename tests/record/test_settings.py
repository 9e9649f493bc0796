"""RecordSettings: the recorders' shared arguments, checked once, with one message shape."""

import dataclasses
import inspect
import os
import time
from pathlib import Path

import numpy as np
import pytest

from epochscope.record.settings import (
    OPTION_NAMES,
    RecordSettings,
    Reduction,
    settings_from_options,
    with_options_signature,
)


def test_defaults_and_normalised_fields():
    s = RecordSettings(Path("runs") / "x", "hidden")
    assert s.run_dir == os.path.join("runs", "x") and s.layers == ("hidden",)
    assert (s.class_names, s.weights, s.probe_size, s.batch_size) == (None, "auto", None, 256)
    assert s.reduction == Reduction("project", 2048, 512, 0) and s.keep_inputs and s.resume
    s = RecordSettings("r", ["b", "a", "b"], class_names=range(3), weights=["fc"], probe_size=np.int64(50), seed=3,
                       reduce="pool", max_width=64, reduced_width=16, keep_inputs=np.bool_(False))
    assert s.layers == ("b", "a") and s.class_names == ("0", "1", "2") and s.weights == ("fc",)
    assert s.probe_size == 50 and type(s.probe_size) is int and s.keep_inputs is False
    assert s.reduction == Reduction("pool", 64, 16, 3)
    assert RecordSettings("r", []).layers == () and RecordSettings("r", weights=None).weights is None


def test_many_class_names_are_checked_in_linear_time():
    # Extreme classification: 50,000 classes. Before: names.count(n) for each name, 2.5 billion
    # comparisons, a minute and more before training could start (100,000 names: minutes).
    names = [f"class number {i}" for i in range(50_000)]
    start = time.perf_counter()
    assert RecordSettings("r", class_names=names).class_names == tuple(names)
    assert time.perf_counter() - start < 5
    with pytest.raises(ValueError, match=r"got \['class number 7', 'class number 9'\] more than once"):
        RecordSettings("r", class_names=[*names, "class number 9", "class number 7", "class number 9"])

def test_settings_are_frozen_and_compare_by_value():
    s = RecordSettings("r", ["hidden"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.batch_size = 3  # type: ignore[misc]
    assert s == RecordSettings("r", "hidden") and dataclasses.replace(s, batch_size=8).batch_size == 8


BAD = [
    (dict(run_dir=None), TypeError, r"run_dir: expected a folder path \(str or pathlib.Path\), got None; pass e.g. "),
    (dict(layers=None), TypeError, r"layers: expected a list of layer names, got NoneType None; pass e.g. layers=\['hidden'\]"),
    (dict(layers=["ok", 3]), TypeError, r"layers: expected a list of layer names \(non-empty strings\), got 3 among them"),
    (dict(class_names="cat"), TypeError, r"class_names: expected a list of class names, got str 'cat'"),
    (dict(class_names=["a", "b", "a"]), ValueError, r"class_names: expected distinct names, got \['a'\] more than once"),
    (dict(class_names=[]), ValueError, r"class_names: expected one name per class, got an empty list"),
    (dict(weights="all"), ValueError, r"weights: expected 'auto', None or a list of layer names, got 'all'; pass "),
    (dict(weights=[None]), TypeError, r"weights: expected a list of layer names \(non-empty strings\), got None"),
    (dict(probe_size=0), ValueError, r"probe_size: expected a number of examples >= 1 or None, got 0; pass a number >= 1"),
    (dict(probe_size=2.5), TypeError, r"probe_size: expected a number of examples >= 1 or None, got float 2.5"),
    (dict(batch_size=0), ValueError, r"batch_size: expected a positive number of examples, got 0; pass a number >= 1"),
    (dict(batch_size=True), TypeError, r"batch_size: expected a positive number of examples, got bool True"),
    (dict(reduce="mean"), ValueError, r"reduce: expected one of 'project', 'pool', 'none', got 'mean'"),
    (dict(max_width=0), ValueError, r"max_width: expected a positive number of values, got 0"),
    (dict(reduced_width=4096), ValueError, r"reduced_width \(Reduction.width\): expected at most max_width \(2048\), got 4096"),
    (dict(seed=-1), ValueError, r"seed: expected a seed >= 0, got -1"),
    (dict(resume="yes"), TypeError, r"resume: expected True or False, got str 'yes'"),
    (dict(keep_inputs=1), TypeError, r"keep_inputs: expected True or False, got int 1"),
]


@pytest.mark.parametrize("change,error,message", BAD, ids=[next(iter(c)) + "=" + repr(next(iter(c.values())))
                                                          for c, _, _ in BAD])
def test_bad_settings_say_parameter_expected_received_and_what_to_do(change, error, message):
    arguments = {"run_dir": "r", "layers": ["hidden"], **change}
    with pytest.raises(error, match=message):
        RecordSettings(**arguments)


def test_options_are_checked_by_name_with_a_suggestion():
    s = settings_from_options("r", ["h"], {"batch_size": 8, "seed": 1}, who="Recorder")
    assert (s.batch_size, s.seed) == (8, 1)
    with pytest.raises(TypeError, match=r"Recorder\(\) got an unexpected keyword argument 'batchsize': argument "
                                        r"'batchsize' not found; did you mean 'batch_size'\?"):
        settings_from_options("r", ["h"], {"batchsize": 8}, who="Recorder")
    assert set(OPTION_NAMES) == {f.name for f in dataclasses.fields(RecordSettings)} - {"run_dir", "layers"}


def test_signature_lists_every_option_with_its_default():
    @with_options_signature
    def init(self, layers, probe, run_dir, test=None, **options):
        """An adapter's constructor."""

    params = inspect.signature(init).parameters
    assert list(params)[:5] == ["self", "layers", "probe", "run_dir", "test"] and "options" not in params
    assert {name: params[name].default for name in OPTION_NAMES} == {
        f.name: f.default for f in dataclasses.fields(RecordSettings) if f.name in OPTION_NAMES}
    assert all(params[name].kind is inspect.Parameter.KEYWORD_ONLY for name in OPTION_NAMES)
