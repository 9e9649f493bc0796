"""Safe, atomic file input and output for run directories: temporary file + rename on write,
``allow_pickle=False`` and header checks on read, and errors that name the file.

Used by the run's reader and writer, by the maps cache and by the checker. Temporary names
come from :func:`epochscope.run.layout.temporary_path`, so the checker recognises leftovers.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import RunError
from .layout import temporary_path

__all__ = [
    "fsync_dir",
    "json_default",
    "load_npy",
    "load_npz",
    "read_json",
    "read_npy_header",
    "save_npy_atomic",
    "write_json_atomic",
]


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


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename."""
    tmp = temporary_path(path)
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temporary file + rename)."""
    _write_bytes_atomic(Path(path), json.dumps(obj, indent=2, allow_nan=True, default=json_default).encode())


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """Save one array as ``.npy`` atomically (temporary file + rename)."""
    path = Path(path)
    tmp = temporary_path(path)
    with open(tmp, "wb") as fh:
        np.save(fh, np.asarray(array), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def json_default(obj: Any) -> Any:
    """``json.dump``'s ``default``: numpy scalars and arrays as plain numbers and lists."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def read_npy_header(fh: Any, available: int, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Read an ``.npy`` header from ``fh`` and check it against the ``available`` bytes.

    Returns ``(shape, fortran_order, dtype)``. Raises :class:`RunError` naming ``where`` when
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
        raise RunError(f"{where}: unreadable array header ({err}); the file is truncated or corrupted") from err
    if dtype.hasobject:
        raise RunError(f"{where}: holds Python objects (dtype {dtype}); epochscope never loads pickled data")
    needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if available - header_bytes < needed:
        raise RunError(
            f"{where}: truncated array: header says {tuple(shape)} {dtype} ({needed} bytes) but only "
            f"{max(available - header_bytes, 0)} bytes follow; the file is truncated or corrupted"
        )
    return tuple(shape), fortran, dtype


def load_npy(path: Path, *, mmap: bool = True) -> np.ndarray:
    """Load an ``.npy`` file without pickle, memory-mapped by default; errors name the file."""
    try:
        with open(path, "rb") as fh:
            read_npy_header(fh, os.fstat(fh.fileno()).st_size, str(path))
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError as err:
        raise RunError(f"{path}: file missing from the run") from err
    except (ValueError, OSError, EOFError) as err:
        raise RunError(f"{path}: unreadable array ({err}); the file is truncated or corrupted") from err


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` file without pickle; errors name the file.

    Each member's header is checked against its size in the archive before it is read, and
    the archive's checksums are verified while reading.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            arrays = {}
            for member in archive.infolist():
                name = member.filename[:-4] if member.filename.endswith(".npy") else member.filename
                with archive.open(member) as fh:
                    shape, fortran, dtype = read_npy_header(fh, member.file_size, f"{path} (array {name!r})")
                    data = bytearray(fh.read(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize))
                    fh.read()  # to the end, so zipfile verifies the member's checksum
                arrays[name] = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
            return arrays
    except FileNotFoundError as err:
        raise RunError(f"{path}: file missing from the run") from err
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as err:
        raise RunError(f"{path}: unreadable archive ({err}); the file is truncated or corrupted") from err


def read_json(path: Path) -> Any:
    """Parse a JSON file; ``FileNotFoundError`` passes through, any other failure is a
    :class:`RunError` naming the file."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, RecursionError) as err:
        raise RunError(f"{path}: unreadable JSON ({type(err).__name__}: {err})") from err


