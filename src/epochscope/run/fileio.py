"""Safe, atomic file input and output for run directories: temporary file + rename on write,
``allow_pickle=False`` and header checks on read, and errors that name the file.

Used by the run's reader and writer, by the maps cache, the checker and the importers.
Temporary names come from :func:`epochscope.run.layout.temporary_path`, so the checker
recognises leftovers.

A run may come from someone else, so nothing read here is trusted:

- **Only regular files, never through a link.** :func:`open_checked` opens a file without
  following a symbolic link (``O_NOFOLLOW``) and, given the run's root, walks every folder from
  the root down without following one either; a FIFO, a device or a folder in a file's place
  is refused without blocking (``O_NONBLOCK``), so a run cannot point a reader at
  ``/dev/zero`` or hang it on a pipe. :func:`inside_run` answers the same question for a path
  that is about to be listed or deleted.
- **Every read is bounded.** An array's header is checked against the bytes the file holds
  and, where the manifest declares one, against the expected shape before anything is
  allocated; an archive member may not inflate beyond :data:`MAX_INFLATE_RATIO` times its
  compressed size (past a floor); a JSON file beyond a ceiling is refused unread.
- **Writes that fail leave nothing behind** and say what the file system said
  (:class:`~epochscope.StorageError`: disk full, read-only, no permission).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

from .._errors import DamagedFileError, RunError, StorageError
from .layout import temporary_path

__all__ = [
    "INFLATE_FLOOR",
    "MAX_INFLATE_RATIO",
    "MAX_JSON_BYTES",
    "MAX_TEXT_BYTES",
    "fsync_dir",
    "inside_run",
    "json_bytes",
    "json_default",
    "load_npy",
    "load_npz",
    "npz_members",
    "open_checked",
    "read_json",
    "read_npy_header",
    "read_text",
    "save_npy_atomic",
    "storage_error",
    "storage_failure",
    "storage_hint",
    "write_bytes_atomic",
    "write_json_atomic",
]

#: The largest JSON file read (a manifest with a million class names is about 20 MB).
MAX_JSON_BYTES = 64 * 2**20
#: The largest text file read by an importer (a metrics CSV, a Chainer log).
MAX_TEXT_BYTES = 256 * 2**20
#: An archive member may declare at most this many times its compressed size uncompressed ...
MAX_INFLATE_RATIO = 100
#: ... once it is larger than this (tiny arrays of zeros compress far better and are harmless).
INFLATE_FLOOR = 64 * 2**20

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_WALK_WITH_FDS = bool(_NOFOLLOW and _DIRECTORY) and os.open in os.supports_dir_fd
# errno values that mean "the file system refused", not "the data is bad".
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG,
                   getattr(errno, "EDQUOT", errno.ENOSPC)}


# --------------------------------------------------------------------------- errors of the file system


def storage_error(err: OSError, path: Path | str, doing: str = "write") -> StorageError:
    """A :class:`~epochscope.StorageError` naming ``path``, the file system's reason and what to do.

    >>> str(storage_error(OSError(28, "No space left on device"), "runs/x/manifest.json"))
    'cannot write runs/x/manifest.json: No space left on device (the disk is full: free space ...)'
    """
    return storage_failure(err, f"cannot {doing} {path}: {err.strerror or err} ({storage_hint(err)})")


def storage_failure(err: OSError, message: str) -> StorageError:
    """A :class:`~epochscope.StorageError` saying ``message`` (its ``str``), with ``err``'s errno and file name."""
    failure = StorageError(message)
    failure.errno, failure.filename = err.errno, err.filename
    return failure


def storage_hint(err: OSError) -> str:
    """What to do about a file system's refusal ``err``, in a few words."""
    code = err.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG):
        return "the disk is full: free space or use a folder on another disk, then run again"
    if code == errno.EROFS:
        return "the file system is read-only: copy the run to a writable folder first"
    if code in (errno.EACCES, errno.EPERM):
        return "no permission: use a folder you may write to, or ask its owner"
    return "the file system reported an error; check the disk"


def is_storage_error(err: BaseException) -> bool:
    """Whether ``err`` is the file system refusing (disk full, read-only, no permission, I/O error)."""
    return isinstance(err, OSError) and not isinstance(err, StorageError) and err.errno in _STORAGE_ERRNOS


# --------------------------------------------------------------------------- opening files inside a run


def _components(path: Path, root: Path | None) -> tuple[str, ...] | None:
    """The names from ``root`` down to ``path`` (``None`` without a root)."""
    if root is None:
        return None
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        raise RunError(f"{path}: not inside the run {root}") from None
    if not parts or any(p in ("..", ".") for p in parts):
        raise RunError(f"{path}: not a file inside the run {root}")
    return parts


def _link_error(path: Path, link: Path) -> RunError:
    try:
        target = f" (to {os.readlink(link)})"
    except OSError:
        target = ""
    what = "a link" if link == path else f"inside {link.name}, which is a link"
    return DamagedFileError(f"{path}: {what}{target}; epochscope never follows a link inside a run. Replace the link by the "
                    "file or folder itself")


def _open_walk(root: Path, parts: tuple[str, ...], flags: int) -> int:
    """Open ``root/parts...`` without following a link at any level below ``root``; returns a descriptor."""
    path = root.joinpath(*parts)
    if not _WALK_WITH_FDS:  # no dir_fd on this platform: check each level, then open
        for i in range(1, len(parts) + 1):
            here = root.joinpath(*parts[:i])
            if os.path.islink(here):
                raise _link_error(path, here)
        return os.open(path, flags)
    fd = os.open(root, os.O_RDONLY | _DIRECTORY)
    try:
        for i, name in enumerate(parts[:-1]):
            here = root.joinpath(*parts[: i + 1])
            try:
                nfd = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=fd)
            except OSError as err:
                if os.path.islink(here):
                    raise _link_error(path, here) from err
                if err.errno == errno.ENOTDIR:
                    raise FileNotFoundError(errno.ENOENT, f"{here} is not a folder", str(path)) from err
                raise
            os.close(fd)
            fd = nfd
        try:
            return os.open(parts[-1], flags, dir_fd=fd)
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(path):
                raise _link_error(path, path) from err
            raise
    finally:
        os.close(fd)


def open_checked(path: Path | str, *, root: Path | str | None = None, follow_links: bool = False) -> IO[bytes]:
    """Open a regular file for reading, never through a link and never blocking.

    With ``root`` (the run's folder, which may itself be a link), every folder between
    ``root`` and ``path`` must be a real folder, not a link. Raises ``FileNotFoundError`` when
    the file is absent and :class:`DamagedFileError` naming the file when it is a link, a FIFO, a
    device or a folder. ``follow_links``: a link to a regular file is read (the files an
    importer is pointed at are the user's own; a run's files never are).

    >>> with open_checked("runs/mnist/epochs/000003/metrics.json", root="runs/mnist") as fh:  # doctest: +SKIP
    ...     fh.read()
    """
    path = Path(path)
    flags = os.O_RDONLY | (0 if follow_links else _NOFOLLOW) | _NONBLOCK | _BINARY
    parts = _components(path, None if root is None else Path(root))
    try:
        fd = _open_walk(Path(root), parts, flags) if parts else os.open(path, flags)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(path):
            raise _link_error(path, path) from err
        if err.errno == errno.EISDIR:
            raise DamagedFileError(f"{path}: a folder where a file should be") from err
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode) or
                stat.S_ISBLK(st.st_mode) else "a folder" if stat.S_ISDIR(st.st_mode) else "a socket")
        raise DamagedFileError(f"{path}: {kind}, not a regular file; epochscope reads only regular files in a run")
    return os.fdopen(fd, "rb")


def inside_run(root: Path | str, path: Path | str) -> bool:
    """Whether ``path`` exists inside ``root`` with no link at any level below ``root`` (``path`` included).

    What the checker asks before it lists or deletes anything: a link is never followed out of
    the run, and nothing is deleted through one.
    """
    root, path = Path(root), Path(path)
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return False
    if any(p in ("..", ".") for p in parts):
        return False
    for i in range(1, len(parts) + 1):
        try:
            if stat.S_ISLNK(os.lstat(root.joinpath(*parts[:i])).st_mode):
                return False
        except OSError:
            return False
    return True


def is_regular(path: Path | str) -> bool:
    """Whether ``path`` is a regular file itself (not a link to one, not a FIFO or device)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def is_real_dir(path: Path | str) -> bool:
    """Whether ``path`` is a folder itself (not a link to one)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


# --------------------------------------------------------------------------- writing


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename inside it) to disk; a no-op where the platform cannot."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not supported on this platform (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_exclusive(path: Path) -> IO[bytes]:
    """A new file at ``path`` for writing; whatever was there (a leftover, a planted link) is removed, never written through."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, 0o644)
    return os.fdopen(fd, "wb")


def _write_atomic(path: Path, write) -> None:
    """Write ``path`` through ``write(fh)`` into a temporary file and a rename; a failure leaves neither."""
    path = Path(path)
    tmp = temporary_path(path)
    try:
        with _create_exclusive(tmp) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if is_storage_error(err):
            raise storage_error(err, path) from err
        raise
    fsync_dir(path.parent)


def json_bytes(obj: Any) -> bytes:
    """``obj`` as the JSON bytes :func:`write_json_atomic` writes (indented; numpy values as plain
    numbers): what a writer measures before it writes a file whose readers bound its size."""
    return json.dumps(obj, indent=2, allow_nan=True, default=json_default).encode()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + rename).

    Raises :class:`~epochscope.StorageError` when the file system refuses (nothing is left behind).
    """
    _write_atomic(Path(path), lambda fh: fh.write(data))


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temporary file + rename).

    Raises :class:`~epochscope.StorageError` when the file system refuses (nothing is left behind).
    """
    write_bytes_atomic(path, json_bytes(obj))


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """Save one array as ``.npy`` atomically (temporary file + rename); see :func:`write_json_atomic`."""
    array = np.asarray(array)
    _write_atomic(Path(path), lambda fh: np.save(fh, array, allow_pickle=False))


def json_default(obj: Any) -> Any:
    """``json.dump``'s ``default``: numpy scalars and arrays as plain numbers and lists."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


# --------------------------------------------------------------------------- reading


def read_npy_header(fh: Any, available: int, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Read an ``.npy`` header from ``fh`` and check it against the ``available`` bytes.

    Returns ``(shape, fortran_order, dtype)``. Raises :class:`DamagedFileError` naming ``where`` when
    the header is malformed, the dtype holds Python objects (pickle), or the data is shorter
    than the header promises. Checking the size first means a corrupted shape can never make
    numpy allocate more memory than the file holds.
    """
    try:
        start = fh.tell()
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
        header_bytes = fh.tell() - start
    except Exception as err:  # noqa: BLE001 - numpy's header parser raises many types (e.g. TokenError) on garbage
        if isinstance(err, (MemoryError, zipfile.BadZipFile)):
            raise  # a damaged archive around the array: reported by load_npz
        raise DamagedFileError(f"{where}: unreadable array header ({err}); the file is truncated or corrupted") from err
    if dtype.hasobject:
        raise DamagedFileError(f"{where}: holds Python objects (dtype {dtype}); epochscope never loads pickled data")
    needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if available - header_bytes < needed:
        raise DamagedFileError(
            f"{where}: truncated array: header says {tuple(shape)} {dtype} ({needed} bytes) but only "
            f"{max(available - header_bytes, 0)} bytes follow; the file is truncated or corrupted"
        )
    return tuple(shape), fortran, dtype


def _check_shape(where: str, got: tuple[int, ...], shape: tuple[int, ...] | None) -> None:
    if shape is not None and tuple(got) != tuple(shape):
        raise DamagedFileError(f"{where}: shape {tuple(got)}, expected {tuple(shape)} (what the run's manifest declares); "
                       "the file or the manifest was changed (epochscope check RUN says which)")


def _read_into(fh: IO[bytes], shape: tuple[int, ...], dtype: np.dtype, fortran: bool, where: str) -> np.ndarray:
    data = np.empty(int(np.prod(shape, dtype=np.int64)), dtype=dtype)
    raw = data.view(np.uint8)
    got = fh.readinto(memoryview(raw)) if raw.size else 0
    if got != raw.size:
        raise DamagedFileError(f"{where}: truncated array: {got} of {raw.size} bytes could be read")
    return data.reshape(shape, order="F" if fortran else "C")


def load_npy(path: Path, *, mmap: bool = True, root: Path | None = None,
             shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Load an ``.npy`` file without pickle, memory-mapped by default; errors name the file.

    ``root``: the run's folder (no link is followed below it; see :func:`open_checked`).
    ``shape``: what the manifest declares; any other shape is refused before anything is read.
    """
    try:
        with open_checked(path, root=root) as fh:
            got, fortran, dtype = read_npy_header(fh, os.fstat(fh.fileno()).st_size, str(path))
            _check_shape(str(path), got, shape)
            if mmap and int(np.prod(got, dtype=np.int64)) > 0:
                return np.memmap(fh, dtype=dtype, mode="r", offset=fh.tell(), shape=got,
                                 order="F" if fortran else "C")
            return _read_into(fh, got, dtype, fortran, str(path))
    except FileNotFoundError as err:
        raise DamagedFileError(f"{path}: file missing from the run") from err
    except (ValueError, OSError, EOFError) as err:
        raise DamagedFileError(f"{path}: unreadable array ({err}); the file is truncated or corrupted") from err


def _check_inflation(path: Path, member: zipfile.ZipInfo) -> None:
    if member.compress_type == zipfile.ZIP_STORED:
        if member.file_size != member.compress_size:
            raise DamagedFileError(f"{path}: archive member {member.filename!r} claims {member.file_size} bytes but stores "
                           f"{member.compress_size}; the file is corrupted")
        return
    if member.file_size > max(INFLATE_FLOOR, MAX_INFLATE_RATIO * member.compress_size):
        raise DamagedFileError(f"{path}: archive member {member.filename!r} would inflate from {member.compress_size} to "
                       f"{member.file_size} bytes (more than {MAX_INFLATE_RATIO} times); refused unread: weights "
                       "never compress so far, the file is corrupted or was made to exhaust memory")


def npz_members(path: Path, *, root: Path | None = None, follow_links: bool = False) -> list[str]:
    """The array names in an ``.npz`` file (``"a"`` for member ``a.npy``), reading no array."""
    try:
        with open_checked(path, root=root, follow_links=follow_links) as fh, zipfile.ZipFile(fh) as archive:
            return [m.filename[:-4] if m.filename.endswith(".npy") else m.filename for m in archive.infolist()]
    except FileNotFoundError as err:
        raise DamagedFileError(f"{path}: file missing") from err
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError) as err:
        raise DamagedFileError(f"{path}: unreadable archive ({err}); the file is truncated or corrupted") from err


def load_npz(path: Path, *, root: Path | None = None, members: Iterable[str] | None = None,
             max_bytes: int | None = None, follow_links: bool = False) -> dict[str, np.ndarray]:
    """Load the arrays of an ``.npz`` file without pickle; errors name the file.

    Each member's declared size is checked against what it could inflate to (at most
    :data:`MAX_INFLATE_RATIO` times its compressed size past :data:`INFLATE_FLOOR`) and its
    header against that size before it is read; the archive's checksums are verified while
    reading. ``members``: read only these arrays (names without ``.npy``; others are skipped
    unread). ``max_bytes``: a ceiling on all arrays together. ``root``, ``follow_links``: see
    :func:`open_checked`.
    """
    wanted = None if members is None else set(members)
    try:
        with open_checked(path, root=root, follow_links=follow_links) as fh, zipfile.ZipFile(fh) as archive:
            arrays, total = {}, 0
            for member in archive.infolist():
                name = member.filename[:-4] if member.filename.endswith(".npy") else member.filename
                if wanted is not None and name not in wanted:
                    continue
                _check_inflation(path, member)
                where = f"{path} (array {name!r})"
                with archive.open(member) as mfh:
                    shape, fortran, dtype = read_npy_header(mfh, member.file_size, where)
                    total += int(np.prod(shape, dtype=object)) * dtype.itemsize
                    if max_bytes is not None and total > max_bytes:
                        raise DamagedFileError(f"{path}: its arrays hold more than {max_bytes} bytes, more than this file can "
                                       "hold; refused unread")
                    arrays[name] = _read_into(mfh, shape, dtype, fortran, where)
                    mfh.read()  # to the end, so zipfile verifies the member's checksum
            return arrays
    except FileNotFoundError as err:
        raise DamagedFileError(f"{path}: file missing from the run") from err
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as err:
        raise DamagedFileError(f"{path}: unreadable archive ({err}); the file is truncated or corrupted") from err


def _read_bounded(path: Path, root: Path | None, max_bytes: int, what: str, follow_links: bool = False) -> bytes:
    with open_checked(path, root=root, follow_links=follow_links) as fh:
        size = os.fstat(fh.fileno()).st_size
        data = fh.read(max_bytes + 1) if size <= max_bytes else b""
    if size > max_bytes or len(data) > max_bytes:
        raise DamagedFileError(f"{path}: {max(size, len(data))} bytes, more than the {max_bytes} a {what} can need; "
                       "refused unread")
    return data


def read_json(path: Path, *, root: Path | None = None, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse a JSON file of at most ``max_bytes``; ``FileNotFoundError`` passes through, any other
    failure (a link, a FIFO, too large, malformed, nested too deeply) is a :class:`DamagedFileError` naming the file."""
    try:
        data = _read_bounded(Path(path), root, max_bytes, "JSON file")
        return json.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError, RecursionError) as err:
        raise DamagedFileError(f"{path}: unreadable JSON ({type(err).__name__}: {err})") from err


def read_text(path: Path, *, max_bytes: int = MAX_TEXT_BYTES, what: str = "text file") -> str:
    """A regular file's UTF-8 text, at most ``max_bytes``; ``FileNotFoundError`` passes through,
    any other failure is a :class:`DamagedFileError` naming the file (what an importer reads: a log, a CSV).
    A link to a regular file is followed (the user's own files); a FIFO or device is refused."""
    try:
        return _read_bounded(Path(path), None, max_bytes, what, follow_links=True).decode("utf-8")
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as err:
        raise DamagedFileError(f"{path}: unreadable {what} ({type(err).__name__}: {err})") from err
