"""The maps cache inside a run: ``RUN/cache/maps/<key>/``, one folder per (layer, method, settings, epochs).

A folder is written under a hidden temporary name and renamed into place, and
``meta.json`` is its last file, so a reader sees either a whole cache entry or none;
temporary folders left by a killed process are ignored. Keys are hashes, so layer names
never appear in paths. Arrays are read with ``allow_pickle=False``.

The cache validates itself: :func:`scan_entries` says of every entry whether it is whole and
still belongs to the run (what ``epochscope check`` reports and ``--repair`` removes). An entry
that cannot be read back whole and well-formed (a missing or truncated file, a ``meta.json``
that is garbage, nested too deeply or lacks a field) is simply a miss: :func:`load_maps`
returns ``None`` and the maps are computed again. Nothing is read or written through a link:
a ``cache`` folder that links elsewhere is neither read nor written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import RunError
from ..run import Run
from ..run.fileio import (
    inside_run,
    json_default,
    load_npy,
    load_npz,
    open_checked,
    read_json,
    read_npy_header,
    write_json_atomic,
)
from ..run.layout import layer_file
from ..run.summary import epoch_spans

__all__ = ["CACHE_FORMAT", "CacheEntry", "cache_key", "epoch_fingerprints", "load_maps", "save_maps", "maps_cache_dir",
           "scan_entries"]

log = logging.getLogger("epochscope")

# 2: meta.json holds the fingerprints of the epochs an entry was built from (format 1 entries
# could outlive an epoch that was dropped and recorded again, and show its old frame).
CACHE_FORMAT = 2
#: Bytes read from each end of a layer's activation file for its fingerprint.
FINGERPRINT_BYTES = 1 << 16
#: The file of a growing entry holding its method's state (see :func:`save_maps`).
STATE_FILE = "state.npz"
_ARRAYS = ("coords", "test_coords")


def maps_cache_dir(run: Run) -> Path:
    """The folder holding every cached map of ``run``."""
    return run.cache_dir / "maps"


def cache_key(run: Run, layer: str, method: str, params: dict[str, Any], epochs: list[int] | None) -> str:
    """A 24-hex-digit key from what determines the maps: layer, method, settings, epochs, run identity.

    ``epochs=None``: the key of the *growing* entry, one per layer, method and settings, that
    holds every epoch embedded so far and is extended as the run gains epochs (methods that
    can continue a sequence, with ``embed(epochs=None)``).

    >>> cache_key(run, "hidden", "pca", {"scale": "rms"}, [0, 1, 2])  # doctest: +SKIP
    '5f0c9b2e0d4d41a7b1c3e8aa'
    """
    ident = {
        "format": CACHE_FORMAT,
        "layer": layer,
        "method": method,
        "params": params,
        "epochs": "growing" if epochs is None else [int(e) for e in epochs],
        # A run recreated in the same folder must not reuse the old run's maps.
        "created": run.manifest.created,
        "probe_size": run.manifest.probe_size,
        "test_size": run.manifest.test_size,
    }
    # json_default writes numpy scalars as the numbers meta.json stores, so the key of an
    # entry can be recomputed from its own meta.json (see scan_entries).
    blob = json.dumps(ident, sort_keys=True, default=json_default).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:24]


def epoch_fingerprints(run: Run, layer: str, epochs: Iterable[int]) -> dict[str, str]:
    """``{str(epoch): hex}``: what identifies the layer's recorded outputs at each epoch.

    A SHA-1 of each activation file's (probe, then test) size and its first and last
    :data:`FINGERPRINT_BYTES` bytes: cheap (two small reads per file, whatever the layer's
    size), unchanged when a run is copied, and different when an epoch is dropped (a repair)
    and recorded again, so maps built from the old outputs are not shown for the new ones.
    A file that cannot be read gives ``"unreadable"`` (never equal to a stored fingerprint).
    """
    key = run.layer_info(layer).key
    splits = ("probe", "test") if run.has_test else ("probe",)
    found = {}
    for epoch in epochs:
        digest = hashlib.sha1()
        try:
            for split in splits:
                with open_checked(layer_file(run.epoch_dir(epoch), split, key), root=run.path) as fh:
                    size = os.fstat(fh.fileno()).st_size
                    digest.update(f"{split}:{size}:".encode())
                    digest.update(fh.read(FINGERPRINT_BYTES))
                    fh.seek(max(size - FINGERPRINT_BYTES, 0))
                    digest.update(fh.read(FINGERPRINT_BYTES))
            found[str(int(epoch))] = digest.hexdigest()
        except (OSError, RunError, ValueError):
            found[str(int(epoch))] = "unreadable"
    return found


def _usable_dir(run: Run, folder: Path) -> bool:
    """Whether ``folder`` (in the cache) is a real folder inside the run, reached through no link."""
    return folder.is_dir() and inside_run(run.path, folder)


def load_maps(run: Run, key: str, *, warn: bool = True, quality: Iterable[str] = ()) -> dict[str, Any] | None:
    """The cached entry ``key`` as ``{"meta": dict, "coords": array, "test_coords": array | None,
    "quality": {name: array}}``, or ``None`` when it is absent, unreadable or malformed in any way
    (then it is recomputed). ``quality``: the per-epoch figures the entry must hold."""
    folder = maps_cache_dir(run) / key
    if not _usable_dir(run, folder):
        return None
    try:
        meta = read_json(folder / "meta.json", root=run.path, max_bytes=MAX_META_BYTES)
        wrong = _meta_problems(meta)
        if wrong:
            raise RunError(f"{folder / 'meta.json'}: missing or malformed {', '.join(wrong)}")
        n = len(meta["epochs"])
        # load_npy / load_npz check headers and checksums and raise RunError naming the file,
        # so a truncated or corrupted array (e.g. zipfile.BadZipFile) is a cache miss, not a crash.
        coords = load_npy(folder / "coords.npy", mmap=False, root=run.path)
        test_coords = load_npy(folder / "test_coords.npy", mmap=False, root=run.path) if meta["has_test"] else None
        figures = load_npz(folder / "quality.npz", root=run.path)
        for name, array in (("coords", coords), ("test_coords", test_coords)):
            if array is not None and (array.ndim != 3 or array.shape[0] != n or array.shape[2] != 2):
                raise RunError(f"{folder / name}.npy: shape {array.shape}, expected ({n}, examples, 2)")
        lacking = [q for q in quality if q not in figures or figures[q].shape != (n,)]
        if lacking:
            raise RunError(f"{folder / 'quality.npz'}: no figures of {n} epochs for {', '.join(lacking)}")
        state = _load_state(run, folder, coords, None if test_coords is None else test_coords.shape[1]) \
            if meta.get("growing") else None
    except FileNotFoundError:
        return None
    except (RunError, OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError, MemoryError) as err:
        if warn:
            log.warning("ignoring unreadable maps cache %s (%s); recomputing", folder, err)
        return None
    if meta.get("format") != CACHE_FORMAT:
        return None
    return {"meta": meta, "coords": coords, "test_coords": test_coords, "quality": figures, "state": state}


def _load_state(run: Run, folder: Path, coords: np.ndarray, n_test: int | None) -> dict[str, np.ndarray]:
    """A growing entry's ``state.npz``: what its method needs to continue the sequence.

    It must belong to the entry's frames (``coords``, ``(n_frames, n_probe, 2)``): ``step``
    equal to the number of frames, a finite ``layout`` of ``(n_probe, 2)`` that the last
    aligned frame is a rigid motion of (alignment only rotates, mirrors and shifts), and
    neighbour lists with one row per probe (``knn``, ``reference_knn``) or test (``test_knn``) example naming
    probe examples. Otherwise a continued sequence would not be the one a full embed makes
    (or a kernel would index out of its arrays): ``RunError``, and the entry is recomputed.
    """
    where = folder / STATE_FILE
    state = load_npz(where, root=run.path)
    if "step" not in state or state["step"].shape != () or state["step"].dtype.kind not in "iu":
        raise RunError(f"{where}: no integer 'step' (the frames the state follows)")
    n_frames, n_probe = coords.shape[0], coords.shape[1]
    if int(state["step"]) != n_frames:
        raise RunError(f"{where}: step {int(state['step'])} but the entry holds {n_frames} frames")
    layout = state.get("layout")
    if layout is None or layout.shape != (n_probe, 2) or layout.dtype.kind != "f" or not np.isfinite(layout).all():
        raise RunError(f"{where}: no finite (n_probe, 2) = ({n_probe}, 2) 'layout' (got "
                       f"{None if layout is None else (layout.shape, str(layout.dtype))})")
    if n_frames:
        last = np.asarray(coords[-1], dtype=np.float64)
        radius_state = np.linalg.norm(layout - layout.mean(axis=0), axis=1)
        radius_frame = np.linalg.norm(last - last.mean(axis=0), axis=1)
        if not np.allclose(radius_state, radius_frame, rtol=0, atol=1e-3 * max(float(radius_frame.max()), 1e-3)):
            raise RunError(f"{where}: its 'layout' is not the entry's last frame")
    for name, rows in (("knn", n_probe), ("reference_knn", n_probe), ("test_knn", n_test)):
        lists = state.get(name)
        if lists is None and (name != "knn" or rows is None):
            continue
        if (lists is None or lists.ndim != 2 or lists.shape[0] != rows or lists.dtype.kind not in "iu"
                or (lists.size and (lists.min() < 0 or lists.max() >= n_probe))):
            raise RunError(f"{where}: no '{name}' of {rows} rows naming probe examples 0..{n_probe - 1}")
    return state


def save_maps(run: Run, key: str, meta: dict[str, Any], coords: np.ndarray, test_coords: np.ndarray | None,
              quality: dict[str, np.ndarray], *, state: dict[str, np.ndarray] | None = None) -> Path | None:
    """Write one entry atomically; returns its folder, or ``None`` when the run is read-only.

    ``state`` makes it a growing entry (``meta["growing"]``, key ``cache_key(..., None)``):
    the arrays are stored in ``state.npz`` and the entry replaces the shorter one it extends.
    """
    root = maps_cache_dir(run)
    final = root / key
    tmp = root / f".tmp-{key}-{os.getpid()}"
    linked = [p for p in (run.cache_dir, root) if p.is_symlink()]
    if linked:
        log.warning("not caching maps: %s is a link, and epochscope never writes through a link in a run; they "
                    "will be computed again next time", linked[0])
        return None
    try:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        np.save(tmp / "coords.npy", np.asarray(coords, dtype=np.float32), allow_pickle=False)
        if test_coords is not None:
            np.save(tmp / "test_coords.npy", np.asarray(test_coords, dtype=np.float32), allow_pickle=False)
        with open(tmp / "quality.npz", "wb") as fh:
            np.savez(fh, **{k: np.asarray(v, dtype=np.float64) for k, v in quality.items()})
        if state is not None:
            with open(tmp / STATE_FILE, "wb") as fh:
                np.savez(fh, **{k: np.asarray(v) for k, v in state.items()})
        write_json_atomic(tmp / "meta.json", {**meta, "format": CACHE_FORMAT, "has_test": test_coords is not None,
                                              **({"growing": True} if state is not None else {})})
        if final.exists() or final.is_symlink():
            # Another process finished the same maps first; theirs are as good. A growing entry
            # replaces one built for other epochs: the shorter one it extends, or one holding
            # epochs the run no longer has (if a concurrent call had gone further, the next
            # call extends this one again). Any entry built from outputs the run no longer
            # holds (an epoch recorded again: other fingerprints) is replaced.
            theirs = load_maps(run, key, warn=False)
            if (theirs is not None and theirs["meta"]["fingerprints"] == meta.get("fingerprints")
                    and (state is None or list(theirs["meta"]["requested"]) == list(meta["requested"]))):
                shutil.rmtree(tmp, ignore_errors=True)
                return final
            # A damaged entry (truncated array, missing file, ...) is replaced, so it is recomputed
            # once and not on every call. Moved aside first: a folder cannot be renamed onto a full one.
            damaged = root / f".tmp-damaged-{key}-{os.getpid()}"
            shutil.rmtree(damaged, ignore_errors=True)
            os.rename(final, damaged)
            if damaged.is_symlink():
                damaged.unlink()  # a link in the entry's place: removed as a link, its target untouched
            else:
                shutil.rmtree(damaged, ignore_errors=True)
            if theirs is None:
                log.info("replacing the damaged maps cache entry %s", final)
        os.rename(tmp, final)
        return final
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        log.warning("could not cache maps in %s (%s); they will be recomputed next time", root, err)
        return None


# --------------------------------------------------------------------------- self-validation

#: The states :func:`scan_entries` reports, see :class:`CacheEntry`.
ENTRY_STATUSES = ("ok", "stale", "damaged", "unfinished")
_TMP_PREFIX = ".tmp-"
_TMP_PID = re.compile(r"-(\d+)$")
# What save_maps writes into meta.json (besides "format" and "has_test"), with the JSON type each must have.
_META_FIELDS = {"layer": str, "method": str, "params": dict, "epochs": list, "requested": list, "bounds": list,
                "skipped": dict}
#: The largest meta.json read (a few hundred bytes are written).
MAX_META_BYTES = 4 * 2**20


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _meta_problems(meta: Any) -> list[str]:
    """The fields of a ``meta.json`` that are missing or malformed (``[]`` when it is whole)."""
    if not isinstance(meta, dict):
        return [f"everything (expected a JSON object, got {type(meta).__name__})"]
    if meta.get("format") != CACHE_FORMAT:
        return []  # another format: stale, not damaged; its fields are its own
    wrong = [name for name, kind in _META_FIELDS.items() if not isinstance(meta.get(name), kind)]
    wrong += [name for name in ("epochs", "requested") if name not in wrong and not all(map(_is_int, meta[name]))]
    if "bounds" not in wrong and (len(meta["bounds"]) != 4 or not all(
            isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in meta["bounds"])):
        wrong.append("bounds")
    if "skipped" not in wrong and not all(
            isinstance(k, str) and k.isdigit() and isinstance(v, str) for k, v in meta["skipped"].items()):
        wrong.append("skipped")
    if not isinstance(meta.get("has_test"), bool):
        wrong.append("has_test")
    fingerprints = meta.get("fingerprints")
    if not (isinstance(fingerprints, dict) and all(isinstance(v, str) for v in fingerprints.values())):
        wrong.append("fingerprints")
    if not {"epochs", "requested", "skipped"} & set(wrong):
        # every requested epoch is embedded or skipped, never both, each once and in order: an
        # entry whose lists disagree would be continued into duplicated or missing frames
        epochs, requested, skipped = meta["epochs"], meta["requested"], {int(k) for k in meta["skipped"]}
        if (any(b <= a for a, b in zip(requested, requested[1:])) or any(b <= a for a, b in zip(epochs, epochs[1:]))
                or set(epochs) & skipped or set(epochs) | skipped != set(requested)):
            wrong.append("epochs/requested/skipped (they disagree)")
        elif "fingerprints" not in wrong and set(fingerprints) != {str(e) for e in requested}:
            wrong.append("fingerprints (not one per requested epoch)")
    if "growing" in meta and meta["growing"] is not True:
        wrong.append("growing")
    return wrong


@dataclass(frozen=True)
class CacheEntry:
    """What :func:`scan_entries` found about one entry of a run's maps cache.

    Attributes
    ----------
    path : the entry's folder (or the temporary folder or file).
    status : ``"ok"`` (whole, and what :func:`epochscope.embed` would read back with the
        same settings), ``"stale"`` (whole, but no longer describes the run: its layer or
        one of its epochs is gone, the run was recreated in the same folder, or another
        cache format wrote it), ``"damaged"`` (a file is missing, unreadable, truncated or
        disagrees with ``meta.json``; :func:`load_maps` treats it as a miss) or
        ``"unfinished"`` (a hidden ``.tmp-*`` write, in progress or left by a killed process).
    reasons : why, one phrase each; a damaged file's reason starts with its path.
    epochs : the epochs the entry was built for (``meta.json``'s ``requested``), when readable.
    pid : the process that was writing an unfinished entry, when its name says.
    """

    path: Path
    status: str
    reasons: tuple[str, ...] = ()
    epochs: tuple[int, ...] = ()
    pid: int | None = None


def scan_entries(run: Run) -> list[CacheEntry]:
    """Every entry of ``run``'s maps cache with its status, in name order; reads headers only.

    Files in the cache folder that are neither entries (folders) nor temporary writes are not
    this cache's and are left out. A link is reported as damaged and never followed.

    Example::

        for entry in scan_entries(epochscope.open_run("runs/mnist")):
            print(entry.path.name, entry.status, "; ".join(entry.reasons))
    """
    root = maps_cache_dir(run)
    if not _usable_dir(run, root):
        return []  # none, or reached through a link (never followed; the checker reports the link)
    found = []
    for path in sorted(root.iterdir()):
        if path.name.startswith(_TMP_PREFIX):
            m = _TMP_PID.search(path.name)
            found.append(CacheEntry(path, "unfinished", ("written under a temporary name",),
                                    pid=int(m.group(1)) if m else None))
        elif path.is_symlink():
            reason = f"{path}: a link, not a folder epochscope wrote (not followed)"
            found.append(CacheEntry(path, "damaged", (reason,)))
        elif path.is_dir():
            found.append(_scan_entry(run, path))
    return found


def _scan_entry(run: Run, folder: Path) -> CacheEntry:
    meta_file = folder / "meta.json"
    try:
        meta = read_json(meta_file, root=run.path, max_bytes=MAX_META_BYTES)
    except FileNotFoundError:
        return CacheEntry(folder, "damaged", (f"{meta_file}: missing",))
    except RunError as err:
        return CacheEntry(folder, "damaged", (str(err),))
    if not isinstance(meta, dict):
        return CacheEntry(folder, "damaged", (f"{meta_file}: expected a JSON object, got {type(meta).__name__}",))
    if meta.get("format") != CACHE_FORMAT:
        # Another version's layout: its other files cannot be judged by this code.
        return CacheEntry(folder, "stale", (f"written in cache format {meta.get('format')!r}; this epochscope "
                                            f"reads format {CACHE_FORMAT}",))
    wrong = _meta_problems(meta)
    if wrong:
        return CacheEntry(folder, "damaged", (f"{meta_file}: missing or malformed {', '.join(wrong)}",))
    requested = tuple(meta["requested"])
    growing = meta.get("growing", False)
    damage = _file_damage(run, folder, len(meta["epochs"]), meta["has_test"], growing)
    if damage:
        return CacheEntry(folder, "damaged", tuple(damage), requested)
    stale = []
    if meta["layer"] not in run.layers:
        stale.append(f"layer '{meta['layer']}' is not recorded in this run")
    gone = sorted((set(meta["epochs"]) | set(requested)) - set(run.epochs))
    if gone:
        stale.append(f"built from epoch{'s' * (len(gone) > 1)} {epoch_spans(gone)} that the run no longer holds")
    if not stale:
        now = epoch_fingerprints(run, meta["layer"], requested)
        again = sorted(int(e) for e, fp in meta["fingerprints"].items() if now.get(e) != fp)
        if again:
            stale.append(f"epoch{'s' * (len(again) > 1)} {epoch_spans(again)} recorded again (or changed) since "
                         "these maps were made")
    if not stale and cache_key(run, meta["layer"], meta["method"], meta["params"],
                               None if growing else list(requested)) != folder.name:
        stale.append("its settings no longer key it on this run (the run was recreated in this folder, or the "
                     "entry was renamed or edited)")
    return CacheEntry(folder, "stale" if stale else "ok", tuple(stale), requested)


def _file_damage(run: Run, folder: Path, n_epochs: int, has_test: bool, growing: bool = False) -> list[str]:
    """Why the entry's arrays cannot be read back as save_maps wrote them (empty when they can)."""
    damage = []
    for name in ("coords.npy", "test_coords.npy") if has_test else ("coords.npy",):
        path = folder / name
        try:
            with open_checked(path, root=run.path) as fh:
                shape, _, _ = read_npy_header(fh, os.fstat(fh.fileno()).st_size, str(path))
        except FileNotFoundError:
            damage.append(f"{path}: missing")
            continue
        except RunError as err:
            damage.append(str(err))
            continue
        except OSError as err:
            damage.append(f"{path}: cannot be read ({err})")
            continue
        if len(shape) != 3 or shape[0] != n_epochs or shape[2] != 2:
            damage.append(f"{path}: shape {shape}, expected ({n_epochs}, examples, 2) for the {n_epochs} epochs "
                          "in meta.json")
    try:
        load_npz(folder / "quality.npz", root=run.path)  # small; reading it verifies the checksums
    except RunError as err:
        damage.append(str(err))
    if growing and not damage:
        try:
            coords = load_npy(folder / "coords.npy", root=run.path)
            n_test = load_npy(folder / "test_coords.npy", root=run.path).shape[1] if has_test else None
            _load_state(run, folder, coords, n_test)
        except FileNotFoundError:
            damage.append(f"{folder / STATE_FILE}: missing")
        except RunError as err:
            damage.append(str(err))
    return damage
