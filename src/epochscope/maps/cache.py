"""The maps cache inside a run: ``RUN/cache/maps/<key>/``, one folder per (layer, method, settings, epochs).

A folder is written under a hidden temporary name and renamed into place, and
``meta.json`` is its last file, so a reader sees either a whole cache entry or none;
temporary folders left by a killed process are ignored. Keys are hashes, so layer names
never appear in paths. Arrays are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import RunError
from ..run.fileio import load_npy, load_npz, write_json_atomic
from ..run import Run

__all__ = ["CACHE_FORMAT", "cache_key", "load_maps", "save_maps", "maps_cache_dir"]

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
    blob = json.dumps(ident, sort_keys=True, default=str).encode("utf-8")
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
            if load_maps(run, key, warn=False) is not None:  # another process finished the same maps first; theirs are as good
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
