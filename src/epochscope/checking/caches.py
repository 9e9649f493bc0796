"""Checks of the derived caches under ``RUN/cache/``.

The maps cache validates itself (:func:`epochscope.maps.cache.scan_entries` says whether
each entry is whole, stale, damaged or an unfinished write); the checker turns its answer
into findings and adds one thing only it knows: which entries were built from an epoch that
this repair drops. A cache kind no module of this epochscope owns gets a generic check:
its files must be readable, and a JSON file naming a ``layer`` or ``epochs`` the run no
longer holds makes its entry stale.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._errors import RunError
from ..maps.cache import maps_cache_dir, scan_entries
from ..run.fileio import load_npz, open_checked, read_json, read_npy_header
from ..run.layout import is_temporary, temporary_pid
from ..run.lock import pid_alive
from ..run.reader import Run
from ..run.summary import epoch_spans
from .context import CheckContext, strip_where

__all__ = ["check_caches"]


def check_caches(ctx: CheckContext, dropped: set[int]) -> None:
    """Report every cache entry that is partial, damaged or stale, and plan its removal.

    ``dropped``: the epochs this repair drops; an entry built from one of them goes too.
    """
    folder = ctx.layout.cache_dir
    if folder.is_symlink() or not folder.is_dir():
        return  # a link in the cache's place is reported with the run's root, never followed
    run = Run(ctx.root)
    maps_dir = maps_cache_dir(run)
    for entry in ctx.entries(folder):
        kind = folder / entry.name
        if entry.is_symlink():
            ctx.link(kind, "in the cache", belongs=False)
        elif kind == maps_dir and entry.is_dir(follow_symlinks=False):
            _check_maps(ctx, run, dropped)
        elif entry.is_dir(follow_symlinks=False) and not is_temporary(entry.name):
            for inner in ctx.entries(kind):
                _check_unknown_kind_entry(ctx, kind / inner.name, dropped)
        else:
            _check_unknown_kind_entry(ctx, kind, dropped)


def _check_maps(ctx: CheckContext, run: Run, dropped: set[int]) -> None:
    for entry in scan_entries(run):
        reasons = [ctx.rel_text(r) for r in entry.reasons]
        if entry.status == "unfinished":
            ctx.leftover(entry.path, "partial cache entry", live=entry.pid is not None and pid_alive(entry.pid))
            continue
        if entry.status == "damaged":
            ctx.add("problem", entry.path, "corrupt cache entry: " + "; ".join(reasons[:3]))
            ctx.plan(entry.path, "corrupt cache entry (recomputed when needed)")
            continue
        doomed = sorted(set(entry.epochs) & dropped)
        if doomed:
            reasons.append(f"built from damaged epoch{'s' * (len(doomed) > 1)} {epoch_spans(doomed)}, "
                           "which repair drops")
        if entry.status == "stale" or doomed:
            ctx.add("warning", entry.path, "stale cache entry: " + "; ".join(reasons))
            ctx.plan(entry.path, "stale cache entry (recomputed when needed)")


# --------------------------------------------------------------------------- kinds no module owns


def _check_unknown_kind_entry(ctx: CheckContext, entry: Path, dropped: set[int]) -> None:
    if is_temporary(entry.name):
        pid = temporary_pid(entry.name)
        ctx.leftover(entry, "partial cache entry", live=pid is not None and pid_alive(pid))
        return
    if entry.is_symlink():
        ctx.link(entry, "in the cache", belongs=False)
        return
    broken, stale = [], []
    if entry.is_dir():
        files = []
        for top, folders, names in os.walk(entry):  # links to folders are listed, never descended into
            for name in sorted(folders + names):
                path = Path(top) / name
                if path.is_symlink():
                    broken.append(f"{ctx.rel(path)}: a link (not followed; repair removes the link, not its target)")
                elif name in names:
                    files.append(path)
        files.sort()
    else:
        files = [entry]
    if not files and not broken:
        ctx.add("warning", entry, "empty cache entry (recomputed when needed)")
        ctx.plan(entry, "empty cache entry")
        return
    for path in files:
        error, doc = _read_cache_file(ctx, path)
        if error:
            broken.append(f"{ctx.rel(path)}: {error}")
        if isinstance(doc, dict):
            stale += _stale_reasons(ctx, doc, dropped)
    if broken:
        ctx.add("problem", entry, "corrupt cache entry: " + "; ".join(broken[:3]))
        ctx.plan(entry, "corrupt cache entry (recomputed when needed)")
    elif stale:
        ctx.add("warning", entry, "stale cache entry: " + "; ".join(dict.fromkeys(stale)))
        ctx.plan(entry, "stale cache entry (recomputed when needed)")


def _stale_reasons(ctx: CheckContext, doc: dict[str, Any], dropped: set[int]) -> Iterator[str]:
    layer = doc.get("layer")
    if isinstance(layer, str) and layer not in [info.name for info in ctx.manifest.layers]:
        yield f"layer '{layer}' is not recorded in this run"
    listed = doc.get("epochs")
    if isinstance(listed, list) and all(isinstance(e, int) and not isinstance(e, bool) for e in listed):
        gone = sorted(set(listed) - set(ctx.epochs))
        if gone:
            yield f"built from epoch{'s' * (len(gone) > 1)} {epoch_spans(gone)} that the run no longer holds"
        doomed = sorted(set(listed) & dropped)
        if doomed:
            yield f"built from damaged epoch{'s' * (len(doomed) > 1)} {epoch_spans(doomed)}, which repair drops"


def _read_cache_file(ctx: CheckContext, path: Path) -> tuple[str | None, Any]:
    """``(error, parsed JSON)`` for one cache file; files of unknown kinds are accepted as they are."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            with open_checked(path, root=ctx.root) as fh:
                read_npy_header(fh, os.fstat(fh.fileno()).st_size, path.name)
        elif suffix == ".npz":
            load_npz(path, root=ctx.root)
        elif suffix == ".json":
            return None, read_json(path, root=ctx.root)
        else:
            open_checked(path, root=ctx.root).close()  # a regular file, not a FIFO or device
    except RunError as err:
        return strip_where(strip_where(str(err), path), path.name), None
    except (OSError, ValueError, RecursionError) as err:
        return f"unreadable ({type(err).__name__}: {err})", None
    return None, None
