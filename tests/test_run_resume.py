"""Issue 14, kind 6: a resume never mixes data silently.

Re-opening a run appends to it, so the recorder that resumes must record the same thing: the
same probe and test examples (labels, and a cheap fingerprint of the inputs kept in the
manifest), every layer the run holds, each reduced the same way with the same seed. Anything
else is refused with the reason when the recorder is created, before any training. A layer
*added* on resume is fine: the run answers which epochs hold it, and its maps cover those.
Each test was accepted silently before (or failed only after an epoch had been trained).
"""

import numpy as np
import pytest

import epochscope
from epochscope import RunError, check_run, open_run
from epochscope.record.core import RecordingSession, Reducer, reduction_description
from epochscope.record.settings import RecordSettings, Reduction
from epochscope.run.manifest import inputs_fingerprint

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 8)).astype(np.float32)
Y = np.arange(60) % 3
XT = RNG.normal(size=(30, 8)).astype(np.float32)
YT = np.arange(30) % 3


def open_session(run_dir, *, layers=("hidden",), x=X, y=Y, xt=XT, yt=YT, **options) -> RecordingSession:
    return RecordingSession(RecordSettings(str(run_dir), list(layers), **options), probe_labels=y, framework="numpy",
                            test_labels=yt, probe_inputs=x, test_inputs=xt)


def record(session: RecordingSession, outputs: dict) -> int:
    with session.start_epoch() as rec:
        for split, n in (("probe", 60), ("test", 30)):
            rec.add_batch(split, 0, {name: out[:n] for name, out in outputs.items()}, None)
        return rec.commit()


def recorded_run(tmp_path, **options):
    path = tmp_path / "run"
    s = open_session(path, **options)
    record(s, {"hidden": np.ones((60, 4))})
    s.close()
    return path


# ------------------------------------------------------------------ other examples


@pytest.mark.parametrize("change,reason", [
    ({"yt": np.roll(YT, 1)}, r"test labels differ \(same size, 30, but other examples or another order\)"),
    ({"xt": XT[::-1].copy()}, r"test inputs differ from those the run was recorded on"),
    ({"x": X + 0.5}, r"probe inputs differ from those the run was recorded on \(fingerprint sha256:\w+ is not the run's"),
    ({"x": X[np.r_[1:60, 0]], "y": Y[np.r_[1:60, 0]]}, r"probe labels differ"),
], ids=["test set of the same size, other examples", "test inputs changed under the same labels",
        "probe inputs changed under the same labels", "probe reordered"])
def test_a_resume_on_other_examples_is_refused_before_training(tmp_path, change, reason):
    path = recorded_run(tmp_path)
    with pytest.raises(RunError, match=rf"cannot resume .*{reason}"):
        open_session(path, **change)
    assert open_run(path).epochs == [0]
    s = open_session(path, x=X.astype(np.float64))  # the same examples in another dtype: accepted
    assert record(s, {"hidden": np.ones((60, 4))}) == 1
    s.close()


def test_the_fingerprint_is_cheap_and_sees_a_change_anywhere_in_a_small_set():
    big = np.zeros((60_000, 784), np.float16)
    import time

    t0 = time.perf_counter()
    inputs_fingerprint(big)
    assert time.perf_counter() - t0 < 5  # reads at most about 4 million values
    small = RNG.normal(size=(100, 20))
    changed = small.copy()
    changed[57, 3] += 1e-3
    assert inputs_fingerprint(small) != inputs_fingerprint(changed)
    halves = small.astype(np.float16)
    assert inputs_fingerprint(halves) == inputs_fingerprint(halves.astype(np.float32))  # same values, other dtype


# ------------------------------------------------------------------ the layers and their reduction


def conv_outputs(n=90, channels=8, side=12):
    return np.random.default_rng(1).normal(size=(n, channels, side, side)).astype(np.float32)


def test_a_conv_layer_recorded_projected_and_resumed_pooled_is_refused(tmp_path):
    path = tmp_path / "run"
    s = open_session(path, layers=["conv"], max_width=512, reduced_width=8)  # 8*12*12 = 1152 > 512: projected
    record(s, {"conv": conv_outputs()})
    s.close()
    stored = open_run(path).layer_info("conv").reduction
    assert {k: stored[k] for k in ("method", "from", "to", "seed")} == {"method": "project", "from": 1152, "to": 8, "seed": 0}
    with pytest.raises(RunError, match=r"layer 'conv' was stored by project from 1152 to 8 values \(seed 0\) but these "
                                       r"settings store it by pool from 1152 to 8 values"):
        open_session(path, layers=["conv"], max_width=512, reduced_width=8, reduce="pool")  # widths agree: 8 and 8


def test_a_resumed_layer_is_projected_with_the_runs_own_seed_whatever_seed_is_given(tmp_path):
    """Issue 14, kind 6 ("a lost projection matrix redrawn with another seed: accepted"): the
    projection is drawn from the seed the run recorded (nothing to lose: it is generated from
    it), so a resume with another seed stores the same values, never a different projection."""
    path = tmp_path / "run"
    s = open_session(path, layers=["conv"], max_width=512, reduced_width=8)
    record(s, {"conv": conv_outputs()})
    s.close()
    first = open_run(path).activations("conv", 0).copy()
    s = open_session(path, layers=["conv"], max_width=512, reduced_width=8, seed=5)
    record(s, {"conv": conv_outputs()})
    s.close()
    run = open_run(path)
    np.testing.assert_array_equal(run.activations("conv", 1), first)
    assert run.layer_info("conv").reduction["seed"] == 0
    # and a fresh run with seed 5 does project otherwise, so the equality above is not an accident
    s = open_session(tmp_path / "other", layers=["conv"], max_width=512, reduced_width=8, seed=5)
    record(s, {"conv": conv_outputs()})
    s.close()
    assert not np.array_equal(open_run(tmp_path / "other").activations("conv", 0), first)


def test_a_resume_with_one_layer_fewer_is_refused_up_front(tmp_path):
    path = tmp_path / "run"
    s = open_session(path, layers=["a", "b"])
    record(s, {"a": np.ones((60, 3)), "b": np.ones((60, 2))})
    s.close()
    with pytest.raises(RunError, match=r"it holds layers 'a', 'b' at every epoch but this recorder leaves out 'b'"):
        open_session(path, layers=["a"])  # before: accepted, then every epoch failed after training


def test_reduction_description_is_what_the_reducer_stores():
    from types import SimpleNamespace

    for settings in (Reduction(), Reduction("pool", 64, 16), Reduction("pool", 4, 2), Reduction("none", 8, 4),
                     Reduction("project", 8, 4, seed=3)):
        for shape in ((5,), (100,), (3, 4, 4), (16, 8, 8), (), (70,)):
            info = SimpleNamespace(output_shape=shape, reduction=None)
            assert reduction_description(info, settings) == Reducer.plan(shape, settings).description, (settings, shape)


# ------------------------------------------------------------------ a layer added on resume


def test_a_layer_added_on_resume_is_held_and_drawn_from_that_epoch_on(tmp_path):
    path = tmp_path / "run"
    s = open_session(path, layers=["a"])
    for _ in range(2):
        record(s, {"a": RNG.normal(size=(60, 3))})
    s.close()
    s = open_session(path, layers=["a", "b"])
    for _ in range(3):
        record(s, {"a": RNG.normal(size=(60, 3)), "b": RNG.normal(size=(60, 5))})
    s.close()
    run = open_run(path)
    assert run.epochs == [0, 1, 2, 3, 4]
    assert run.layer_epochs("a") == [0, 1, 2, 3, 4] and run.layer_epochs("b") == [2, 3, 4]
    report = check_run(path)
    assert report.ok and [f.level for f in report.findings] == ["warning"], str(report)
    maps = epochscope.embed(path, "b", method="pca", progress=False)  # before: failed on epochs 0 and 1
    assert maps.epochs == [2, 3, 4] and maps.coords.shape == (3, 60, 2)
    with pytest.raises(ValueError, match=r"epochs \[0\]: layer 'b' has no outputs there \(it is held at epochs 2\.\.4"):
        epochscope.embed(path, "b", method="pca", epochs=[0, 3], progress=False)
