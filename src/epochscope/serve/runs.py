"""The runs under LOGDIR, and the one rule for reaching them: by a name the server listed itself.

``epochscope serve`` never maps a request path to a file. A request names a run by its path
relative to LOGDIR (``?run=mnist/relu``); the name is accepted only when it is, character for
character, one of the runs :func:`find_runs` found, and the folder is checked again for links when
it is read (:func:`run_folder`). So ``..``, encoded dots, absolute paths and links cannot lead
anywhere: the name either is one the server listed or is refused. Inside a run, every file is read
through :mod:`epochscope.run.fileio`, which follows no link below the run's folder.

The walk follows no link either: a linked folder is not entered, and a link that points at a run
is listed with a one-line error saying why it is not shown.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .._text import relative_paths  # (here since serve first needed it; the report uses it too)
from ..run.layout import MANIFEST_FILE

__all__ = ["MAX_DEPTH", "FoundRun", "UnsafeNameError", "find_runs", "check_name", "relative_paths", "run_folder"]

#: How deep below LOGDIR runs are looked for (LOGDIR/project/sweep/run is depth 3).
MAX_DEPTH = 4
#: Folders never entered: a run's own folders and hidden ones (``.git``, ``.partial-*``).
_SKIP = {"epochs", "probe", "test", "cache", "reductions", "__pycache__", "node_modules"}


class UnsafeNameError(ValueError):
    """A run name that could leave LOGDIR (``..``, an absolute path, a backslash, a control character)."""


@dataclass(frozen=True)
class FoundRun:
    """A run (or what looks like one) under LOGDIR.

    ``path`` is relative to LOGDIR with ``/`` separators (``"."`` when LOGDIR is itself a run);
    ``error`` says in one line why it is not shown (a link out of LOGDIR), else ``None``.
    """

    path: str
    folder: Path
    error: str | None = None


def check_name(name: str) -> str:
    """``name`` when it is a plain relative path below LOGDIR (``"."`` for LOGDIR itself), else
    :class:`UnsafeNameError`: empty parts, ``.``/``..`` parts, a leading ``/`` or drive, backslashes,
    control characters. (Percent-escapes were decoded once already, by the query parser: a name that
    still holds ``%2e%2e`` is a plain name, which matches no run.)

    >>> check_name("sweep/relu")
    'sweep/relu'
    >>> check_name("../etc")
    Traceback (most recent call last):
    ...
    epochscope.serve.runs.UnsafeNameError: run name '../etc' leaves LOGDIR: '..' parts are refused
    """
    if not isinstance(name, str) or not name:
        raise UnsafeNameError("run name is empty")
    if name == ".":
        return name
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise UnsafeNameError(f"run name {name!r} holds control characters")
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeNameError(f"run name {name!r} is not a relative path with '/' separators")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        what = "'..' parts are refused" if ".." in parts else "empty or '.' parts are refused"
        raise UnsafeNameError(f"run name {name!r} leaves LOGDIR: {what}")
    return name


def _is_run(folder: str) -> bool:
    try:
        st = os.lstat(os.path.join(folder, MANIFEST_FILE))
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode)


def find_runs(logdir: str | os.PathLike[str], *, max_depth: int = MAX_DEPTH) -> list[FoundRun]:
    """Every run below ``logdir`` (a folder holding a regular ``manifest.json``), sorted by path.

    No link is followed: a linked folder is not entered, and a link to a run is listed with an error.
    A run whose name no address may hold (:func:`check_name`: a control character, a backslash) is
    listed with an error too. A run's own folders are not searched for runs inside it. Unreadable
    folders are skipped.
    """
    root = Path(logdir)
    if _is_run(str(root)):
        return [FoundRun(".", root)]
    found: list[FoundRun] = []

    def walk(folder: str, rel: tuple[str, ...]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(".") or entry.name in _SKIP:
                continue
            name = "/".join((*rel, entry.name))
            try:
                check_name(name)
            except UnsafeNameError as err:
                # No address may name it (a control character, a backslash): never reachable, but listed
                # (its name escaped) with what to do, not left out without a word.
                if not entry.is_symlink() and _is_run(entry.path):
                    found.append(FoundRun(name, Path(entry.path), f"not shown: {err}; rename the folder to see it here"))
                elif entry.is_dir(follow_symlinks=False) and len(rel) + 1 < max_depth:
                    walk(entry.path, (*rel, entry.name))
                continue
            if entry.is_symlink():
                if _is_run(entry.path):  # (stat through the link only to say why it is not shown)
                    found.append(FoundRun(name, Path(entry.path),
                                          "a symbolic link; serve shows only folders inside LOGDIR and follows no link "
                                          "(give the run's real folder, or move it under LOGDIR)"))
                continue
            if not entry.is_dir(follow_symlinks=False):
                continue
            if _is_run(entry.path):
                found.append(FoundRun(name, Path(entry.path)))
            elif len(rel) + 1 < max_depth:
                walk(entry.path, (*rel, entry.name))

    walk(str(root), ())
    return sorted(found, key=lambda r: r.path)


def run_folder(logdir: str | os.PathLike[str], name: str, listed: dict[str, FoundRun]) -> Path:
    """The folder of the run called ``name``, which must be one of ``listed`` (``{path: FoundRun}``, from
    :func:`find_runs`) and still hold no link between LOGDIR and itself.

    Raises :class:`UnsafeNameError` for a name that could leave LOGDIR, ``KeyError`` for a name not
    listed, ``PermissionError`` for a run that is (now) a link or lies below one.
    """
    check_name(name)
    found = listed.get(name)
    if found is None:
        raise KeyError(name)
    if found.error:
        raise PermissionError(found.error)
    root = Path(logdir)
    folder = root
    for part in ([] if name == "." else name.split("/")):
        folder = folder / part
        if folder.is_symlink():
            raise PermissionError(f"{name}: {folder.name} became a symbolic link; links are not followed")
    if folder.resolve() != (root.resolve() / ("" if name == "." else name)):
        raise PermissionError(f"{name}: resolves outside LOGDIR")
    return folder
