"""The checker's view of the caches: it asks the maps cache to validate itself, so entries that
a real ``epochscope.embed`` wrote and that no longer describe the run are found, and repair
removes exactly those; partial and corrupt entries go too; unknown files stay."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from synthetic import make_synthetic_run

import epochscope
from epochscope import check_run, open_run
from epochscope.maps.cache import maps_cache_dir
from epochscope.run import MANIFEST_FILE, layer_key

KEY = f"{layer_key('hidden')}.npy"


def probe_file(run: Path, epoch: int, split: str = "probe") -> Path:
    return run / "epochs" / f"{epoch:06d}" / split / KEY


def embed_entry(run: Path, layer: str = "hidden", epochs=None) -> Path:
    """The cache folder a real PCA embedding writes (found as the one new entry)."""
    before = set(_entries(run))
    epochscope.embed(run, layer, method="pca", epochs=epochs, progress=False)
    (entry,) = set(_entries(run)) - before
    return entry


def _entries(run: Path) -> list[Path]:
    root = maps_cache_dir(open_run(run))
    return [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def rel(run: Path, path: Path) -> str:
    return path.relative_to(run).as_posix()


def edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_a_fresh_cache_is_healthy(synthetic_run):
    embed_entry(synthetic_run)
    embed_entry(synthetic_run, epochs=[1, 3])
    report = check_run(synthetic_run)
    assert report.ok and report.findings == () and report.actions == (), str(report)


def test_entry_of_an_epoch_no_longer_in_the_run_is_stale_and_only_it_is_removed(synthetic_run):
    run = synthetic_run
    whole = embed_entry(run)                     # epochs 0..4
    early = embed_entry(run, epochs=[0, 1, 2])   # still fully in the run after epoch 4 goes
    shutil.rmtree(run / "epochs" / "000004")     # e.g. deleted by hand to re-record it
    keep = snapshot(early)

    report = check_run(run)
    assert report.ok, str(report)
    (finding,) = report.findings
    assert finding.level == "warning" and finding.path == rel(run, whole)
    assert finding.message == "stale cache entry: built from epoch 4 that the run no longer holds"
    assert [(a.path, a.done) for a in report.actions] == [(rel(run, whole), False)]
    assert whole.is_dir(), "check without --repair must change nothing"

    after = check_run(run, repair=True)
    assert [(a.path, a.done) for a in after.actions] == [(rel(run, whole), True)]
    assert not whole.exists() and snapshot(early) == keep
    assert open_run(run).epochs == [0, 1, 2, 3] and after.findings == ()
    # The entry that stayed is still what embed reads back: no recomputation.
    maps = epochscope.embed(run, "hidden", method="pca", epochs=[0, 1, 2], progress=False)
    assert snapshot(early) == keep and maps.epochs == [0, 1, 2]


def test_recreated_run_makes_its_caches_stale(synthetic_run):
    entry = embed_entry(synthetic_run)
    coords = np.load(entry / "coords.npy")
    # The run recreated in the same folder: same layer names and epochs, another run.
    edit_json(synthetic_run / MANIFEST_FILE, created="2001-01-01T00:00:00")
    (finding,) = check_run(synthetic_run).warnings
    assert finding.path == rel(synthetic_run, entry)
    assert finding.message.startswith("stale cache entry: its settings no longer key it on this run "
                                      "(the run was recreated in this folder")
    after = check_run(synthetic_run, repair=True)
    assert [a.path for a in after.actions] == [rel(synthetic_run, entry)] and not entry.exists()
    maps = epochscope.embed(synthetic_run, "hidden", method="pca", progress=False)  # computed again
    np.testing.assert_allclose(maps.coords, coords)
    assert check_run(synthetic_run).findings == ()


def test_entry_of_a_layer_no_longer_recorded_is_stale(tmp_path):
    run = make_synthetic_run(tmp_path / "run", layers=("hidden", "other"))
    hidden, other = embed_entry(run, "hidden"), embed_entry(run, "other")
    manifest = json.loads((run / MANIFEST_FILE).read_text())
    manifest["layers"] = [info for info in manifest["layers"] if info["name"] != "other"]
    (run / MANIFEST_FILE).write_text(json.dumps(manifest))
    keep = snapshot(hidden)
    report = check_run(run)
    stale = [f for f in report.findings if f.path.startswith("cache/")]  # (the layer's own files: unknown files)
    assert [(f.path, f.message) for f in stale] == [
        (rel(run, other), "stale cache entry: layer 'other' is not recorded in this run")], str(report)
    check_run(run, repair=True)
    assert not other.exists() and snapshot(hidden) == keep


def test_entry_of_another_cache_format_is_stale(synthetic_run):
    entry = embed_entry(synthetic_run)
    edit_json(entry / "meta.json", format=99)
    (finding,) = check_run(synthetic_run).warnings
    assert finding.message == "stale cache entry: written in cache format 99; this epochscope reads format 2"


def test_cache_built_from_a_dropped_epoch_goes_with_it(synthetic_run):
    entry = embed_entry(synthetic_run, epochs=[3, 4])
    early = embed_entry(synthetic_run, epochs=[0, 1])
    probe_file(synthetic_run, 4).unlink()
    report = check_run(synthetic_run)
    assert any(f.path == rel(synthetic_run, entry) and "built from damaged epoch 4, which repair drops" in f.message
               for f in report.warnings), str(report)
    assert not report.about(rel(synthetic_run, early))
    check_run(synthetic_run, repair=True)
    assert not entry.exists() and early.is_dir()


def test_repair_cleans_leftovers_and_caches_but_keeps_good_and_unknown_files(synthetic_run):
    run = synthetic_run
    (run / "epochs/.partial-000005-999999").mkdir()
    (run / ".manifest.json.tmp-999999").write_text("{")
    (run / "notes.txt").write_text("mine")
    good = embed_entry(run)
    corrupt = embed_entry(run, epochs=[0, 1, 2])
    stale = embed_entry(run, epochs=[0, 1])
    maps = maps_cache_dir(open_run(run))
    partial = maps / ".tmp-abc-999999"
    partial.mkdir()
    np.save(partial / "coords.npy", np.zeros((2, 120, 2), np.float32))
    (corrupt / "coords.npy").write_bytes((corrupt / "coords.npy").read_bytes()[:-8])
    edit_json(stale / "meta.json", layer="gone", epochs=[0, 9], requested=[0, 9], fingerprints={"0": "-", "9": "-"})
    (maps / "unknown.bin").write_bytes(b"\x00")

    report = check_run(run)
    by_path = {f.path: f for f in report.findings}
    corrupt_at, stale_at, good_at = rel(run, corrupt), rel(run, stale), rel(run, good)
    assert by_path[corrupt_at].level == "problem"
    assert f"corrupt cache entry: {corrupt_at}/coords.npy: truncated array" in by_path[corrupt_at].message
    assert by_path[stale_at].message == ("stale cache entry: layer 'gone' is not recorded in this run; "
                                         "built from epoch 9 that the run no longer holds")
    assert by_path["cache/maps/.tmp-abc-999999"].message == ("partial cache entry left by an interrupted writer "
                                                             "(ignored by readers)")
    assert by_path["epochs/.partial-000005-999999"].level == "warning"
    assert by_path[".manifest.json.tmp-999999"].level == "warning"
    assert by_path["notes.txt"].level == "warning" and good_at not in by_path
    assert "cache/maps/unknown.bin" not in by_path  # not an entry of the maps cache: left as it is

    keep = snapshot(good)
    after = check_run(run, repair=True)
    assert after.ok and after.findings == (by_path["notes.txt"],)
    assert sorted(a.path for a in after.actions) == sorted([
        "cache/maps/.tmp-abc-999999", corrupt_at, stale_at, "epochs/.partial-000005-999999",
        ".manifest.json.tmp-999999"])
    assert snapshot(good) == keep and (run / "notes.txt").exists() and (maps / "unknown.bin").exists()
    assert open_run(run).epochs == [0, 1, 2, 3, 4]


def test_partial_entry_of_a_live_writer_is_left_alone(synthetic_run):
    embed_entry(synthetic_run)
    live = maps_cache_dir(open_run(synthetic_run)) / f".tmp-abc-{os.getpid()}"
    live.mkdir()
    (finding,) = check_run(synthetic_run).findings
    assert finding.level == "note"
    assert finding.message == "partial cache entry being written right now (ignored by readers)"
    check_run(synthetic_run, repair=True)
    assert live.is_dir()


@pytest.mark.parametrize("kind", ["thumbnails", "other"])
def test_cache_kinds_no_module_owns_get_the_generic_check(synthetic_run, kind):
    folder = synthetic_run / "cache" / kind
    good, stale, broken = folder / "good", folder / "stale", folder / "broken"
    for entry in (good, stale, broken):
        entry.mkdir(parents=True)
        np.save(entry / "data.npy", np.zeros(3))
    (stale / "meta.json").write_text(json.dumps({"layer": "gone"}))
    (broken / "data.npy").write_bytes(b"\x93NUMPY garbage")
    report = check_run(synthetic_run)
    by_path = {f.path: f for f in report.findings}
    assert set(by_path) == {f"cache/{kind}/stale", f"cache/{kind}/broken"}
    assert by_path[f"cache/{kind}/stale"].message == "stale cache entry: layer 'gone' is not recorded in this run"
    assert by_path[f"cache/{kind}/broken"].level == "problem"
    check_run(synthetic_run, repair=True)
    assert good.is_dir() and not stale.exists() and not broken.exists()
