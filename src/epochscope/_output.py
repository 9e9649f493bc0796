"""Writing output files safely, in one place for the pictures, the animations and the report.

- Every file is written under a temporary name unique to the process and the call
  (``.timelapse.4711-1a2b3c.partial.gif``), then renamed into place: a reader never sees half
  a file, two renders into one folder never write into each other's temporary files, and a
  failed write removes its temporary file.
- A set of files that belong together (a render's pictures) is drawn into a hidden folder beside
  them and moved into place only when every one is drawn (:func:`staged_folder`): a failure
  half-way leaves the earlier set as it was, never new pictures beside stale ones.
- Output paths are checked before any slow work: ``--out`` that is a file where a folder is
  needed, or that lies below a file, is the caller's mistake (:class:`OutputPathError`);
  a read-only folder, missing permission or a full disk is the environment's
  (:class:`OutputError`). Both say which file and why in one line.

Example::

    out = check_output_dir("pictures")                 # created if needed
    with atomic_output(out / "curves.png") as tmp:
        fig.savefig(tmp)
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ._errors import OutputError, OutputPathError
from .run.lock import pid_alive

__all__ = ["atomic_output", "check_output_dir", "check_output_file", "output_error", "remove_stale_temporaries",
           "replace_earlier_output", "staged_folder", "temp_path"]

# The temporary names of temp_path: ".<stem>.<pid>-<6 hex>.partial<suffix>".
_TEMP = re.compile(r"^\..*\.(\d+)-[0-9a-f]{6}\.partial(\.[^.]*)?$")

_HINTS = {
    errno.ENOSPC: "the disk is full; free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up; free some space or write elsewhere",
    errno.EROFS: "the file system is read-only; choose another output folder",
    errno.EACCES: "permission denied; choose a folder you can write to",
    errno.EPERM: "permission denied; choose a folder you can write to",
}


def temp_path(path: str | os.PathLike[str]) -> Path:
    """A hidden temporary name beside ``path``, unique to this process and call, keeping the suffix
    (matplotlib and Pillow choose the format from it).

    >>> temp_path("out/a.png").name.startswith(".a.") and temp_path("out/a.png").name.endswith(".partial.png")
    True
    """
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(3)}.partial{path.suffix}")


def output_error(path: str | os.PathLike[str], err: OSError) -> OutputError:
    """``err`` as one line that names ``path`` and the cause (with what to do for the usual causes)."""
    cause = err.strerror or str(err) or type(err).__name__
    hint = _HINTS.get(err.errno or -1)
    return OutputError(f"cannot write {path}: {cause}" + (f" ({hint})" if hint else ""))


def check_output_dir(path: str | os.PathLike[str], *, param: str = "out") -> Path:
    """``path`` as a folder that exists (created with its parents if needed) and can be written.

    Raises :class:`OutputPathError` when ``path`` or one of its parents is a file, and
    :class:`OutputError` when the folder cannot be created or written (read-only, no permission).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{param}: {path} is a file, not a folder; give a folder for the pictures "
                              "(it is created if needed)")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputPathError(f"{param}: {path} lies below {parent}, which is a file, not a folder")
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise output_error(path, err) from err
    if not os.access(path, os.W_OK | os.X_OK):
        raise output_error(path, PermissionError(errno.EACCES, "the folder is read-only"))
    remove_stale_temporaries(path)
    return path


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files and folders (:func:`temp_path`, :func:`staged_folder`) that a
    process which no longer runs left in ``folder`` (killed while writing); returns what was
    removed. Those of a running process, a link, and any other entry are left alone."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.match(entry.name)
        if not m or entry.is_symlink() or pid_alive(int(m.group(1))):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            elif entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
            else:
                continue
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


@contextmanager
def staged_folder(folder: str | os.PathLike[str], name: str = "staged") -> Iterator[Path]:
    """Yield a new hidden folder inside ``folder`` (``.<name>.<pid>-<hex>.partial``) to write a set
    of files into. When the block ends, every file written there moves to the same place below
    ``folder`` (each by a rename, replacing a file of that name), and the hidden folder is removed;
    when the block raises, nothing moves and it is removed all the same, so ``folder`` keeps what it
    held. One left by a killed process is removed by the next :func:`check_output_dir` there.

    An :class:`OutputError` raised inside the block names the file's final path, not its hidden one.

    Example::

        with staged_folder(out, "render") as stage:
            draw_everything(stage)
    """
    folder = Path(folder)
    stage = temp_path(folder / name)
    try:
        stage.mkdir()
    except OSError as err:
        raise output_error(folder, err) from err
    try:
        try:
            yield stage
        except OutputError as err:  # say the file's own name: its hidden folder would mean nothing to the reader
            raise type(err)(str(err).replace(str(stage), str(folder))) from err
        _move_in(stage, folder)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _move_in(stage: Path, folder: Path) -> None:
    """Move every file below ``stage`` to the same place below ``folder`` (the folders made as needed),
    all or nothing as far as the file system allows: each file is first brought beside its place under
    a temporary name (renamed, or copied where its folder is on another disk), and only when all are
    there is each renamed onto its place, a rename within one folder.

    Raises :class:`OutputPathError` before anything moves when a file stands where a folder goes or a
    folder where a file goes (``OUT/frames`` a file, ``OUT/curves.png`` a folder); :class:`OutputError`
    when a file cannot be brought (a full disk); the temporaries brought so far are removed.
    """
    moves = [(src, folder / src.relative_to(stage))
             for src in sorted(p for p in stage.rglob("*") if p.is_file() and not p.is_symlink())]
    for _, dst in moves:  # all checked first: a move that fails half-way would mix two renders
        _check_place(dst, folder)
    brought: list[tuple[Path, Path]] = []
    try:
        for src, dst in moves:
            try:
                if dst.parent != folder:
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    remove_stale_temporaries(dst.parent)  # (the frames of a killed render, as check_output_dir does)
                tmp = temp_path(dst)
                _bring(src, tmp)
            except OSError as err:
                raise output_error(dst, err) from err
            brought.append((tmp, dst))
        while brought:
            tmp, dst = brought[0]
            try:
                os.replace(tmp, dst)
            except OSError as err:
                raise output_error(dst, err) from err
            brought.pop(0)
    finally:
        for tmp, _ in brought:  # (left by an error: none of them is in place)
            _remove(tmp)


def _check_place(dst: Path, folder: Path) -> None:
    """Raise :class:`OutputPathError` when ``dst`` (a file to write below ``folder``) is a folder, or
    one of its folders below ``folder`` is a file (or a link to nothing)."""
    for parent in reversed(dst.relative_to(folder).parents[:-1]):
        here = folder / parent
        if (here.exists() or here.is_symlink()) and not here.is_dir():
            raise OutputPathError(f"{here} is a file where the render puts a folder ({dst.relative_to(folder)} "
                                  "goes inside it); remove or rename it, then render again")
    if dst.is_dir() and not dst.is_symlink():
        raise OutputPathError(f"{dst} is a folder where the render puts a file; remove or rename it, "
                              "then render again")


def _bring(src: Path, tmp: Path) -> None:
    """Move ``src`` to ``tmp``: a rename, or a copy (then ``src`` removed) where ``tmp``'s folder is on
    another disk (``OUT/frames`` a link to one) and a rename cannot cross."""
    try:
        os.replace(src, tmp)
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
        try:
            shutil.copyfile(src, tmp)
        except BaseException:
            _remove(tmp)
            raise
        src.unlink()


def check_output_file(path: str | os.PathLike[str], *, param: str = "out") -> Path:
    """``path`` as a file that can be written: its folder is checked (and created) as
    :func:`check_output_dir` does; a folder of that name is an :class:`OutputPathError`."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{param}: {path} is a folder; give a file name, e.g. {path / 'out'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputPathError(f"{param}: {path} lies below {parent}, which is a file, not a folder")
            break
    check_output_dir(path.parent if str(path.parent) else Path("."), param=param)
    return path


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` to; rename it into place when the block ends,
    remove it when the block raises. An ``OSError`` (disk full, read-only) becomes an
    :class:`OutputError` naming ``path``.

    Example::

        with atomic_output("report.html") as tmp:
            tmp.write_text(page, encoding="utf-8")
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        _remove(tmp)
        raise output_error(path, err) from err
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: Path) -> None:
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass


def replace_earlier_output(folder: str | os.PathLike[str], written: list[Path], record: str) -> list[Path]:
    """After a command wrote ``written`` into ``folder``: remove what the same command wrote there
    the time before (the paths listed in ``folder/record``) and did not write again, then list
    ``written`` there. Returns the paths removed.

    So a folder shows one render, not a newer run's pictures beside an older run's extra frames.
    Only regular files inside ``folder`` that the record lists are removed (never through a link,
    never a file of the user's), then folders that became empty; called after a successful
    write, so a failure leaves the earlier pictures in place. An unreadable record removes nothing.
    """
    import json

    folder = Path(folder)
    root = folder.resolve()
    record_path = folder / record
    keep = {os.path.normpath(os.path.relpath(os.path.abspath(p), os.path.abspath(folder))) for p in written}
    earlier: list[str] = []
    try:
        if record_path.is_file() and not record_path.is_symlink():
            listed = json.loads(record_path.read_text(encoding="utf-8")).get("written", [])
            earlier = [str(n) for n in listed if isinstance(n, str)]
    except (OSError, ValueError, AttributeError, RecursionError):
        earlier = []  # a damaged record is ignored: nothing is removed on its word
    removed, parents = [], set()
    for name in earlier:
        name = os.path.normpath(name)
        if name in keep or name.startswith("..") or os.path.isabs(name):
            continue
        path = folder / name
        try:
            if path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(root):
                continue
            path.unlink()
        except OSError:
            continue  # left in place; the next render tries again
        removed.append(path)
        parents.add(path.parent)
    for parent in sorted(parents, key=lambda q: len(q.parts), reverse=True):
        try:
            if parent.resolve() != root and not parent.is_symlink() and not any(parent.iterdir()):
                parent.rmdir()
        except OSError:
            pass
    names = sorted(k for k in keep if not k.startswith(".."))
    try:
        with atomic_output(record_path) as tmp:
            tmp.write_text(json.dumps({"written": names}, indent=1), encoding="utf-8")
    except OutputError:
        pass  # the pictures are written; without the record the next render only replaces them
    return removed
