"""The maps cache inside a run: ``RUN/cache/maps/<key>/``, one folder per (layer, method, settings, epochs).

A folder is written under a hidden temporary name and renamed into place, and
``meta.json`` is its last file, so a reader sees either a whole cache entry or none;
temporary folders left by a killed process are ignored. Keys are hashes, so layer names
never appear in paths. Arrays are read with ``allow_pickle=False``.

The cache validates itself: :func:`scan_entries` says of every entry whether it is whole and
still belongs to the run (what ``epochscope check`` reports and ``--repair`` removes).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import RunError
from ..run import Run
from ..run.fileio import json_default, load_npy, load_npz, read_json, read_npy_header, write_json_atomic
from ..run.summary import epoch_spans

__all__ = ["CACHE_FORMAT", "CacheEntry", "cache_key", "load_maps", "save_maps", "maps_cache_dir", "scan_entries"]

log = logging.getLogger("epochscope")

CACHE_FORMAT = 1
_ARRAYS = ("coords", "test_coords")


def maps_cache_dir(run: Run) -> Path:
    """The folder holding every cached map of ``run``."""
    return run.cache_dir / "maps"


def cache_key(run: Run, layer: str, method: str, params: dict[str, Any], epochs: list[int]) -> str:
    """A 24-hex-digit key from what determines the maps: layer, method, settings, epochs, run identity.

    >>> cache_key(run, "hidden", "pca", {"scale": "rms"}, [0, 1, 2])  # doctest: +SKIP
    '5f0c9b2e0d4d41a7b1c3e8aa'
    """
    ident = {
        "format": CACHE_FORMAT,
        "layer": layer,
        "method": method,
        "params": params,
        "epochs": [int(e) for e in epochs],
        # A run recreated in the same folder must not reuse the old run's maps.
        "created": run.manifest.created,
        "probe_size": run.manifest.probe_size,
        "test_size": run.manifest.test_size,
    }
    # json_default writes numpy scalars as the numbers meta.json stores, so the key of an
    # entry can be recomputed from its own meta.json (see scan_entries).
    blob = json.dumps(ident, sort_keys=True, default=json_default).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:24]


def load_maps(run: Run, key: str, *, warn: bool = True) -> dict[str, Any] | None:
    """The cached entry ``key`` as ``{"meta": dict, "coords": array, "test_coords": array | None,
    "quality": {name: array}}``, or ``None`` when it is absent or unreadable (then it is recomputed)."""
    folder = maps_cache_dir(run) / key
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        return None
    try:
        with open(meta_file, encoding="utf-8") as fh:
            meta = json.load(fh)
        # load_npy / load_npz check headers and checksums and raise RunError naming the file,
        # so a truncated or corrupted array (e.g. zipfile.BadZipFile) is a cache miss, not a crash.
        coords = load_npy(folder / "coords.npy", mmap=False)
        test_coords = load_npy(folder / "test_coords.npy", mmap=False) if meta.get("has_test") else None
        quality = load_npz(folder / "quality.npz")
    except (RunError, OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        if warn:
            log.warning("ignoring unreadable maps cache %s (%s); recomputing", folder, err)
        return None
    if (not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT or coords.ndim != 3
            or coords.shape[0] != len(meta.get("epochs", []))):
        return None
    return {"meta": meta, "coords": coords, "test_coords": test_coords, "quality": quality}


def save_maps(run: Run, key: str, meta: dict[str, Any], coords: np.ndarray, test_coords: np.ndarray | None,
              quality: dict[str, np.ndarray]) -> Path | None:
    """Write one entry atomically; returns its folder, or ``None`` when the run is read-only."""
    root = maps_cache_dir(run)
    final = root / key
    tmp = root / f".tmp-{key}-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        np.save(tmp / "coords.npy", np.asarray(coords, dtype=np.float32), allow_pickle=False)
        if test_coords is not None:
            np.save(tmp / "test_coords.npy", np.asarray(test_coords, dtype=np.float32), allow_pickle=False)
        with open(tmp / "quality.npz", "wb") as fh:
            np.savez(fh, **{k: np.asarray(v, dtype=np.float64) for k, v in quality.items()})
        write_json_atomic(tmp / "meta.json", {**meta, "format": CACHE_FORMAT, "has_test": test_coords is not None})
        if final.exists():
            # Another process finished the same maps first; theirs are as good.
            if load_maps(run, key, warn=False) is not None:
                shutil.rmtree(tmp, ignore_errors=True)
                return final
            # A damaged entry (truncated array, missing file, ...) is replaced, so it is recomputed
            # once and not on every call. Moved aside first: a folder cannot be renamed onto a full one.
            damaged = root / f".tmp-damaged-{key}-{os.getpid()}"
            shutil.rmtree(damaged, ignore_errors=True)
            os.rename(final, damaged)
            shutil.rmtree(damaged, ignore_errors=True)
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
    if not root.is_dir():
        return []
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
        meta = read_json(meta_file)
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
    wrong = [name for name, kind in _META_FIELDS.items() if not isinstance(meta.get(name), kind)]
    wrong += [name for name in ("epochs", "requested") if name not in wrong and not all(
        isinstance(e, int) and not isinstance(e, bool) for e in meta[name])]
    if not isinstance(meta.get("has_test"), bool):
        wrong.append("has_test")
    if wrong:
        return CacheEntry(folder, "damaged", (f"{meta_file}: missing or malformed {', '.join(wrong)}",))
    requested = tuple(meta["requested"])
    damage = _file_damage(folder, len(meta["epochs"]), meta["has_test"])
    if damage:
        return CacheEntry(folder, "damaged", tuple(damage), requested)
    stale = []
    if meta["layer"] not in run.layers:
        stale.append(f"layer '{meta['layer']}' is not recorded in this run")
    gone = sorted((set(meta["epochs"]) | set(requested)) - set(run.epochs))
    if gone:
        stale.append(f"built from epoch{'s' * (len(gone) > 1)} {epoch_spans(gone)} that the run no longer holds")
    if not stale and cache_key(run, meta["layer"], meta["method"], meta["params"], list(requested)) != folder.name:
        stale.append("its settings no longer key it on this run (the run was recreated in this folder, or the "
                     "entry was renamed or edited)")
    return CacheEntry(folder, "stale" if stale else "ok", tuple(stale), requested)


def _file_damage(folder: Path, n_epochs: int, has_test: bool) -> list[str]:
    """Why the entry's arrays cannot be read back as save_maps wrote them (empty when they can)."""
    damage = []
    for name in ("coords.npy", "test_coords.npy") if has_test else ("coords.npy",):
        path = folder / name
        try:
            with open(path, "rb") as fh:
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
        load_npz(folder / "quality.npz")  # small; reading it verifies the checksums
    except RunError as err:
        damage.append(str(err))
    return damage
