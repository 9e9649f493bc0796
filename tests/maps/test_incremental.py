"""Incremental maps: a run that gained epochs computes only the new frames, in one growing cache entry.

Slow: the default method's numba kernels compile on the first call on a machine.
"""

import numpy as np
import pytest
from synthetic import blob_activations

import epochscope
from epochscope.maps import api, umap_chain
from epochscope.maps.cache import CACHE_FORMAT, scan_entries
from epochscope.run import RunWriter

pytestmark = pytest.mark.slow

N_EPOCHS = 7  # the run's final length; the classes separate over these epochs


def _grow(path, epochs, *, n_probe=200, n_test=40, n_classes=4):
    """Append ``epochs`` to the run at ``path`` (created on the first call), as training would."""
    labels = np.arange(n_probe) % n_classes
    test_labels = np.arange(n_test) % n_classes
    with RunWriter.open(path, framework="synthetic", labels=labels, test_labels=test_labels,
                        class_names=[f"class {c}" for c in range(n_classes)]) as w:
        if epochs[0] == 0:
            w.declare_layer("hidden", (16,), 16, None)
        for epoch in epochs:
            with w.epoch(epoch) as ep:
                ep.set_activations("hidden", blob_activations(labels, epoch, N_EPOCHS, seed=epoch))
                ep.set_activations("hidden", blob_activations(test_labels, epoch, N_EPOCHS, seed=99 + epoch),
                                   split="test")
    return path


def _entries(path):
    return [e for e in scan_entries(epochscope.open_run(path))]


def _count_frames(monkeypatch):
    """Count the frames the chain optimises (warm or fresh) from here on."""
    calls = []
    original = umap_chain.umap_layout

    def counting(*args, **kwargs):
        calls.append(kwargs.get("n_epochs"))
        return original(*args, **kwargs)

    monkeypatch.setattr(umap_chain, "umap_layout", counting)
    return calls


def test_new_epochs_continue_the_cached_frames_exactly_as_a_full_embed(tmp_path, monkeypatch):
    path = _grow(tmp_path / "run", [0, 1, 2, 3])
    first = epochscope.embed(path, "hidden", progress=False)
    assert first.epochs == [0, 1, 2, 3]
    _grow(path, [4, 5, 6])
    calls = _count_frames(monkeypatch)
    grown = epochscope.embed(path, "hidden", progress=False)
    # only the three new frames were optimised (each one warm frame)
    assert len(calls) == 3 and all(n == umap_chain.WARM_PASSES for n in calls)
    assert grown.epochs == list(range(7))
    # the frames computed before are kept bit for bit ...
    np.testing.assert_array_equal(grown.coords[:4], first.coords)
    np.testing.assert_array_equal(grown.test_coords[:4], first.test_coords)
    # ... and the new ones are exactly what one embed of all seven epochs computes (serial optimiser)
    full = epochscope.embed(path, "hidden", cache=False, progress=False)
    np.testing.assert_array_equal(grown.coords, full.coords)
    np.testing.assert_array_equal(grown.test_coords, full.test_coords)
    for name in api.QUALITY_NAMES:
        np.testing.assert_array_equal(grown.quality[name], full.quality[name])
    assert grown.bounds == full.bounds


def test_one_growing_entry_that_check_accepts_and_a_hit_that_computes_nothing(tmp_path, monkeypatch):
    path = _grow(tmp_path / "run", [0, 1, 2])
    epochscope.embed(path, "hidden", progress=False)
    sizes = []
    for more in ([3], [4], [5], [6]):
        _grow(path, more)
        epochscope.embed(path, "hidden", progress=False)
        entries = _entries(path)
        assert [e.status for e in entries] == ["ok"], [(e.status, e.reasons) for e in entries]
        assert entries[0].epochs == tuple(range(more[0] + 1))
        sizes.append(sum(f.stat().st_size for f in entries[0].path.iterdir()))
    # the entry grows by the same amount per epoch (one frame of probe and test points, its figures)
    steps = np.diff(sizes)
    assert np.all(steps > 0) and steps.max() - steps.min() <= 64, sizes
    calls = _count_frames(monkeypatch)
    again = epochscope.embed(path, "hidden", progress=False)
    assert calls == [] and again.epochs == list(range(7))
    # `check` reads the growing entry's format: its state file is verified, and a damaged one reported
    entry = _entries(path)[0].path
    meta = (entry / "meta.json").read_text()
    assert '"growing": true' in meta and f'"format": {CACHE_FORMAT}' in meta
    (entry / "state.npz").write_bytes(b"not a zip archive")
    damaged = _entries(path)
    assert damaged[0].status == "damaged" and "state.npz" in damaged[0].reasons[0]
    # ... and embed treats it as a miss: recomputed once, whole again
    embedded = epochscope.embed(path, "hidden", progress=False)
    assert embedded.epochs == list(range(7)) and [e.status for e in _entries(path)] == ["ok"]


def test_chosen_epochs_and_other_methods_keep_their_own_entries(tmp_path):
    path = _grow(tmp_path / "run", [0, 1, 2, 3])
    epochscope.embed(path, "hidden", progress=False)
    epochscope.embed(path, "hidden", epochs=[1, 2], progress=False)
    epochscope.embed(path, "hidden", method="pca", progress=False)
    entries = _entries(path)
    assert len(entries) == 3 and all(e.status == "ok" for e in entries)
    growing = [e for e in entries if '"growing": true' in (e.path / "meta.json").read_text()]
    assert len(growing) == 1 and growing[0].epochs == (0, 1, 2, 3)
