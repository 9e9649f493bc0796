"""The checked readers: headers checked against file sizes, no pickle, errors that name the file."""

import zipfile

import numpy as np
import pytest

from epochscope import RunError
from epochscope.run.fileio import load_npy, load_npz, read_json, save_npy_atomic, write_json_atomic


def test_header_promising_more_than_the_file_holds_is_refused_before_allocating(tmp_path):
    path = tmp_path / "a.npy"
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<i8", "fortran_order": False, "shape": (4 * 10**11,)})
        fh.write(np.zeros(4, np.int64).tobytes())
    with pytest.raises(RunError, match=r"a\.npy: truncated array: header says \(400000000000,\) int64"):
        load_npy(path, mmap=False)


def test_object_arrays_are_refused(tmp_path):
    path = tmp_path / "o.npy"
    np.save(path, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(RunError, match=r"o\.npy: holds Python objects \(dtype object\)"):
        load_npy(path)


def test_corrupt_weights_archive_is_a_run_error(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, a=np.arange(100, dtype=np.float32))
    raw = bytearray(path.read_bytes())
    raw[200] ^= 0xFF  # inside the stored array: the zip checksum no longer matches
    path.write_bytes(bytes(raw))
    with pytest.raises(RunError, match=r"w\.npz: unreadable archive \(Bad CRC-32 for file 'a\.npy'\)"):
        load_npz(path)
    path.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(RunError, match=r"w\.npz: unreadable archive"):
        load_npz(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("w.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
                         .ljust(127) + b"\n")
    with pytest.raises(RunError, match=r"w\.npz \(array 'w'\): holds Python objects"):
        load_npz(path)


def test_atomic_writes_leave_no_temporary_file_and_read_back(tmp_path):
    write_json_atomic(tmp_path / "m.json", {"x": np.float32(0.5), "y": np.arange(2)})
    save_npy_atomic(tmp_path / "a.npy", np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "m.json"]
    assert read_json(tmp_path / "m.json") == {"x": 0.5, "y": [0, 1]}
    assert load_npy(tmp_path / "a.npy", mmap=False).tolist() == [0, 1, 2]
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(RunError, match=r"bad\.json: unreadable JSON"):
        read_json(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError):
        read_json(tmp_path / "none.json")
