"""The maps cache validates itself: ``scan_entries`` says of each entry whether it is whole
(and ``load_maps`` reads it), damaged (and ``load_maps`` misses it), stale, or unfinished."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import epochscope
from epochscope import open_run
from epochscope.maps.cache import (
    ENTRY_STATUSES,
    cache_key,
    epoch_fingerprints,
    load_maps,
    maps_cache_dir,
    save_maps,
    scan_entries,
)
from epochscope.run import MANIFEST_FILE


@pytest.fixture
def cached(synthetic_run) -> tuple[Path, Path]:
    """A run and the one entry a real PCA embedding cached in it."""
    epochscope.embed(synthetic_run, "hidden", method="pca", progress=False)
    (entry,) = maps_cache_dir(open_run(synthetic_run)).iterdir()
    return synthetic_run, entry


def only(run: Path):
    (found,) = scan_entries(open_run(run))
    assert found.status in ENTRY_STATUSES
    return found


def edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_no_cache_no_entries(synthetic_run):
    assert scan_entries(open_run(synthetic_run)) == []


def test_an_entry_embed_wrote_is_ok(cached):
    run, entry = cached
    found = only(run)
    assert (found.path, found.status, found.reasons, found.epochs) == (entry, "ok", (), (0, 1, 2, 3, 4))
    assert load_maps(open_run(run), entry.name) is not None


def test_the_key_can_be_recomputed_from_meta_even_for_numpy_settings(synthetic_run):
    run = open_run(synthetic_run)
    # meta.json stores numpy numbers as plain numbers; the key must not depend on which was given.
    assert (cache_key(run, "hidden", "umap", {"n_neighbors": np.int64(15), "min_dist": np.float32(0.5)}, [0, 1])
            == cache_key(run, "hidden", "umap", {"n_neighbors": 15, "min_dist": 0.5}, [0, 1]))


DAMAGE = {
    "coords truncated": lambda e: (e / "coords.npy").write_bytes((e / "coords.npy").read_bytes()[:-20]),
    "coords missing": lambda e: (e / "coords.npy").unlink(),
    "test coords missing": lambda e: (e / "test_coords.npy").unlink(),
    "quality missing": lambda e: (e / "quality.npz").unlink(),
    "quality garbage": lambda e: (e / "quality.npz").write_bytes(b"PK\x03\x04 no"),
    "coords of fewer epochs": lambda e: np.save(e / "coords.npy", np.load(e / "coords.npy")[:3]),
    "coords holding objects": lambda e: np.save(e / "coords.npy", np.array([None], dtype=object), allow_pickle=True),
    "meta garbage": lambda e: (e / "meta.json").write_text("{not json"),
    "meta missing": lambda e: (e / "meta.json").unlink(),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damage_is_found_and_is_what_load_maps_misses(cached, damage):
    run, entry = cached
    DAMAGE[damage](entry)
    found = only(run)
    assert found.status == "damaged", found
    assert found.reasons and all(r.startswith(str(entry / "")) for r in found.reasons), found.reasons
    assert load_maps(open_run(run), entry.name, warn=False) is None


def test_malformed_meta_is_damage_that_names_the_fields(cached):
    run, entry = cached
    edit_json(entry / "meta.json", epochs="all", bounds=None)
    found = only(run)
    assert found.status == "damaged"
    assert found.reasons == (f"{entry / 'meta.json'}: missing or malformed epochs, bounds",)


@pytest.mark.parametrize("change,reason", [
    ("epoch gone", "built from epoch 4 that the run no longer holds"),
    ("layer gone", "layer 'gone' is not recorded in this run"),
    ("run recreated", "its settings no longer key it on this run (the run was recreated in this folder, or the "
                      "entry was renamed or edited)"),
    ("settings edited", "its settings no longer key it on this run (the run was recreated in this folder, or the "
                        "entry was renamed or edited)"),
    ("other format", "written in cache format 99; this epochscope reads format 2"),
])
def test_stale_entries_say_why(cached, change, reason):
    run, entry = cached
    if change == "epoch gone":
        shutil.rmtree(run / "epochs" / "000004")
    elif change == "layer gone":
        edit_json(entry / "meta.json", layer="gone")
    elif change == "run recreated":
        edit_json(run / MANIFEST_FILE, created="2001-01-01T00:00:00")
    elif change == "settings edited":
        edit_json(entry / "meta.json", params={"scale": "none"})
    else:
        edit_json(entry / "meta.json", format=99)
    found = only(run)
    assert (found.status, found.reasons) == ("stale", (reason,))
    # load_maps is asked by key, so a stale entry is simply never asked for again.


def test_unfinished_writes_and_links(cached, tmp_path):
    run, entry = cached
    root = maps_cache_dir(open_run(run))
    shutil.copytree(entry, root / f".tmp-{entry.name}-4711")
    (root / ".tmp-damaged-abc-12").mkdir()
    (root / ".tmp-nopid").write_bytes(b"")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "linked")
    (root / "notes.txt").write_text("not an entry")
    found = {p.path.name: p for p in scan_entries(open_run(run))}
    assert set(found) == {entry.name, f".tmp-{entry.name}-4711", ".tmp-damaged-abc-12", ".tmp-nopid", "linked"}
    assert [found[n].pid for n in (f".tmp-{entry.name}-4711", ".tmp-damaged-abc-12", ".tmp-nopid")] == [4711, 12, None]
    assert {found[n].status for n in found if n.startswith(".tmp")} == {"unfinished"}
    assert found["linked"].status == "damaged" and "a link" in found["linked"].reasons[0]
    assert found[entry.name].status == "ok"


# --------------------------------------------------------------------------- growing entries (incremental maps)


def _save_growing(run, epochs, *, n=120, fill=0.0):
    """A growing entry as embed(epochs=None) writes it for an incremental method, with its state."""
    key = cache_key(run, "hidden", "umap", {"n_neighbors": 15}, None)
    coords = np.full((len(epochs), n, 2), fill, dtype=np.float32)
    quality = {"trustworthiness": np.ones(len(epochs))}
    state = {"layout": np.zeros((n, 2), np.float32), "knn": np.zeros((n, 15), np.int32), "step": np.int64(len(epochs))}
    meta = {"layer": "hidden", "method": "umap", "params": {"n_neighbors": 15}, "epochs": list(epochs),
            "requested": list(epochs), "bounds": [-1.0, 1.0, -1.0, 1.0], "skipped": {},
            "fingerprints": epoch_fingerprints(run, "hidden", epochs)}
    return save_maps(run, key, meta, coords, None, quality, state=state)


def test_a_growing_entry_is_keyed_without_its_epochs_and_holds_its_state(synthetic_run):
    run = open_run(synthetic_run)
    folder = _save_growing(run, [0, 1, 2])
    assert folder.name == cache_key(run, "hidden", "umap", {"n_neighbors": 15}, None)
    assert folder.name != cache_key(run, "hidden", "umap", {"n_neighbors": 15}, [0, 1, 2])
    found = only(synthetic_run)
    assert (found.status, found.epochs) == ("ok", (0, 1, 2))
    hit = load_maps(run, folder.name)
    assert int(hit["state"]["step"]) == 3 and hit["state"]["knn"].shape == (120, 15)
    assert json.loads((folder / "meta.json").read_text())["growing"] is True


@pytest.mark.parametrize("damage, reason", [
    (lambda e: (e / "state.npz").unlink(), "state.npz: file missing"),
    (lambda e: (e / "state.npz").write_bytes(b"PK\x03\x04 no"), "state.npz"),
    (lambda e: np.savez(e / "state.npz", layout=np.zeros((120, 2))), "no integer 'step'"),
    (lambda e: edit_json(e / "meta.json", growing="yes"), "growing"),
])
def test_a_growing_entry_without_a_whole_state_is_damaged_and_missed(synthetic_run, damage, reason):
    run = open_run(synthetic_run)
    folder = _save_growing(run, [0, 1, 2])
    damage(folder)
    found = only(synthetic_run)
    assert found.status == "damaged" and reason in "; ".join(found.reasons), found.reasons
    assert load_maps(run, folder.name, warn=False) is None


def test_a_growing_entry_replaces_the_one_it_extends_or_one_for_epochs_the_run_lost(synthetic_run):
    run = open_run(synthetic_run)
    _save_growing(run, [0, 1, 2], fill=1.0)
    folder = _save_growing(run, [0, 1, 2, 3], fill=2.0)  # the run gained epoch 3
    assert load_maps(run, folder.name)["meta"]["requested"] == [0, 1, 2, 3]
    _save_growing(run, [0, 1, 2], fill=3.0)  # the run lost epoch 3 (repair dropped it)
    hit = load_maps(run, folder.name)
    assert hit["meta"]["requested"] == [0, 1, 2] and float(hit["coords"][0, 0, 0]) == 3.0
    _save_growing(run, [0, 1, 2], fill=4.0)  # the same epochs from another process: the first one stays
    assert float(load_maps(run, folder.name)["coords"][0, 0, 0]) == 3.0
    assert len(list(maps_cache_dir(run).iterdir())) == 1


def _state_edit(**changes):
    def damage(entry):
        state = dict(np.load(entry / "state.npz"))
        state.update({k: v(state) for k, v in changes.items()})
        with open(entry / "state.npz", "wb") as fh:
            np.savez(fh, **state)
    return damage


@pytest.mark.parametrize("damage, reason", [
    (_state_edit(step=lambda s: np.int64(7)), "step 7 but the entry holds 3 frames"),
    (_state_edit(layout=lambda s: s["layout"] * 0.5), "'layout' is not the entry's last frame"),
    (_state_edit(layout=lambda s: np.full_like(s["layout"], np.nan)), "no finite"),
    (_state_edit(layout=lambda s: s["layout"][:10]), "no finite"),
    (_state_edit(knn=lambda s: s["knn"] + 1000), "no 'knn' of 120 rows"),
    (lambda e: edit_json(e / "meta.json", requested=[0, 1]), "epochs/requested/skipped"),
    (lambda e: edit_json(e / "meta.json", epochs=[0, 1, 1]), "epochs/requested/skipped"),
    (lambda e: edit_json(e / "meta.json", fingerprints={"0": "x"}), "fingerprints"),
])
def test_a_growing_entry_whose_state_or_lists_disagree_with_its_frames_is_damaged_and_missed(synthetic_run, damage,
                                                                                            reason):
    # Continued, such an entry made maps no full embed makes: a repeated epoch 2 (requested
    # edited), frames started from a layout that is not the last frame, a kernel indexing
    # past its arrays (neighbour lists out of range). `check` said ok and embed continued it.
    run = open_run(synthetic_run)
    rng = np.random.default_rng(0)
    layout = rng.normal(size=(120, 2)).astype(np.float32)
    folder = _save_growing(run, [0, 1, 2])
    coords = np.stack([rng.normal(size=(120, 2)), rng.normal(size=(120, 2)), layout @ [[0, 1], [1, 0]] + 3])
    np.save(folder / "coords.npy", coords.astype(np.float32))
    _state_edit(layout=lambda s: layout, knn=lambda s: rng.integers(0, 120, size=(120, 15)).astype(np.int32))(folder)
    assert only(synthetic_run).status == "ok" and load_maps(run, folder.name) is not None  # a mirrored, shifted layout
    damage(folder)
    found = only(synthetic_run)
    assert found.status == "damaged" and reason in "; ".join(found.reasons), found.reasons
    assert load_maps(run, folder.name, warn=False) is None


def test_an_epoch_recorded_again_is_not_shown_with_its_old_frame(synthetic_run):
    # A repair drops a damaged trailing epoch; training resumes and records it again. The
    # cached maps were built from the old outputs: showing them (and their figures) for the
    # new epoch showed clusters a layer of noise does not have.
    from epochscope.run import RunWriter

    before = epochscope.embed(synthetic_run, "hidden", method="pca", progress=False)
    shutil.rmtree(synthetic_run / "epochs" / "000004")
    run = open_run(synthetic_run)
    noise = np.random.default_rng(5).normal(size=(120, 16)).astype(np.float32)
    with RunWriter.open(synthetic_run, framework="synthetic", labels=run.labels, test_labels=run.test_labels,
                        class_names=run.class_names) as w:
        with w.epoch(4) as ep:
            ep.set_activations("hidden", noise)
            ep.set_activations("hidden", noise[:30], split="test")
    found = only(synthetic_run)
    assert found.status == "stale" and "epoch 4 recorded again" in found.reasons[0], found.reasons
    after = epochscope.embed(synthetic_run, "hidden", method="pca", progress=False)
    fresh = epochscope.embed(synthetic_run, "hidden", method="pca", progress=False, cache=False)
    assert not np.allclose(after.frame(4), before.frame(4))
    np.testing.assert_array_equal(after.coords, fresh.coords)
    assert after.quality["separation_layer"][-1] < 0.1 < before.quality["separation_layer"][-1]
    assert only(synthetic_run).status == "ok"
