import numpy as np
import pytest

from epochscope import stratified_probe
from epochscope.record.probe import stratified_indices


def test_balanced_on_sorted_labels():
    y = np.repeat(np.arange(10), 500)
    idx = stratified_indices(y, 2000, seed=1)
    assert len(idx) == 2000 and len(set(idx)) == 2000 and (np.diff(idx) > 0).all()
    assert np.bincount(y[idx]).tolist() == [200] * 10


def test_keeps_shares_and_small_classes():
    y = np.array([0] * 90 + [1] * 9 + [2] * 1)
    idx = stratified_indices(y, 20)
    counts = np.bincount(y[idx], minlength=3)
    assert counts.sum() == 20 and counts[2] == 1 and counts[0] >= 17


def test_reproducible_and_seeded():
    y = np.arange(1000) % 7
    assert (stratified_indices(y, 100, seed=3) == stratified_indices(y, 100, seed=3)).all()
    assert (stratified_indices(y, 100, seed=3) != stratified_indices(y, 100, seed=4)).any()


def test_size_at_least_n_keeps_all_and_bad_size_errors():
    y = np.arange(10) % 2
    assert stratified_indices(y, 50).tolist() == list(range(10))
    with pytest.raises(ValueError, match="size must be at least 1"):
        stratified_indices(y, 0)


def test_stratified_probe_returns_matching_pairs():
    x = np.arange(40)[:, None] * 1.0
    y = np.arange(40) % 4
    xs, ys = stratified_probe(x, y, 8)
    assert (xs[:, 0] % 4 == ys).all() and np.bincount(ys).tolist() == [2, 2, 2, 2]
    with pytest.raises(ValueError, match="x has 40 examples but y has 3"):
        stratified_probe(x, y[:3], 2)


def test_select_examples_checks_pairs_and_draws_the_subset():
    from epochscope.record.probe import select_examples
    from epochscope.record.settings import RecordSettings

    x = np.arange(60)[:, None] * 1.0
    y = np.repeat([0, 1, 2], 20)
    (xs, ys), test = select_examples(RecordSettings("r", probe_size=9, seed=1), (x, list(y)), (x[:5], y[:5]))
    assert isinstance(ys, np.ndarray) and np.bincount(ys).tolist() == [3, 3, 3] and (xs[:, 0] // 20 == ys).all()
    assert test[0].shape == (5, 1) and test[1].tolist() == [0] * 5
    assert select_examples(RecordSettings("r"), (x, y))[1] is None
    with pytest.raises(TypeError, match=r"probe: expected a pair \(x, y\) of inputs and labels, got ndarray; "
                                        r"pass probe=\(x_probe, y_probe\)"):
        select_examples(RecordSettings("r"), x)
    with pytest.raises(ValueError, match="test x has 60 examples but y has 59; give exactly one label per example"):
        select_examples(RecordSettings("r"), (x, y), (x, y[:-1]))
    with pytest.raises(ValueError, match=r"test labels: class index 2 but only 2 class_names"):
        select_examples(RecordSettings("r", class_names=["a", "b"]), (x[:20], y[:20]), (x, y))
