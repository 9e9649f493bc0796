"""Issue 14, kind 3 (readers): sizes a file declares are never trusted.

Every reader goes through the checked readers of ``epochscope.run.fileio``: an array's header is
checked against the bytes its file (or archive member) can hold and against the shape the
manifest declares, and an archive member may not inflate past a sane ratio. Before, a 200-byte
Chainer snapshot claiming 4 TB and a small ``weights.npz`` inflating to gigabytes ended in
MemoryError tracebacks.
"""

import struct
import zipfile
from pathlib import Path

import pytest

from epochscope import RunError, check_run, open_run
from epochscope.cli import main


def npy_header(shape, descr="<f4") -> bytes:
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
    text += " " * (63 - (len(text) + 10) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def write_bomb(path: Path, name: str, n_bytes: int) -> None:
    """A deflated archive whose one float32 member inflates to ``n_bytes`` of zeros."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open(f"{name}.npy", "w", force_zip64=True) as fh:
            fh.write(npy_header((n_bytes // 4,)))
            chunk = bytes(1 << 24)
            for _ in range(n_bytes // len(chunk)):
                fh.write(chunk)


def test_a_200_byte_chainer_snapshot_claiming_4_tb_is_refused_unread(tmp_path, capsys):
    result = tmp_path / "result"
    result.mkdir()
    with zipfile.ZipFile(result / "snapshot_iter_100", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("updater/model:main/predictor/l1/W.npy", npy_header((10**6, 10**6)) + bytes(16))
    assert (result / "snapshot_iter_100").stat().st_size < 300
    from epochscope.importers.chainer import import_chainer

    with pytest.raises(RunError, match=r"snapshot_iter_100 \(array 'updater/model:main/predictor/l1/W'\): truncated "
                                       r"array: header says \(1000000, 1000000\) float32 \(4000000000000 bytes\)"):
        import_chainer(result, tmp_path / "run")  # before: numpy tried to allocate 3.64 TiB: MemoryError
    assert main(["-q", "import", "chainer", str(result), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    # One error line, the last (a warning logged before it may precede it).
    lines = err.splitlines()
    assert [line for line in lines if "error:" in line] == lines[-1:] and "truncated array" in lines[-1]
    assert "Traceback" not in err and not (tmp_path / "run").exists()


def test_an_archive_member_claiming_more_than_it_could_inflate_to_is_refused(tmp_path):
    path = tmp_path / "w.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("w.npy", npy_header((4,)) + bytes(16))
    raw = bytearray(path.read_bytes())
    # Rewrite the declared uncompressed size (local header and central directory) to 1 TB.
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.find(sig)
        raw[at + offset:at + offset + 4] = struct.pack("<I", 0xFFFFFFF0)
    path.write_bytes(bytes(raw))
    from epochscope.run.fileio import load_npz

    with pytest.raises(RunError, match=r"would inflate from \d+ to 4294967280 bytes \(more than 100 times\); refused"):
        load_npz(path)


def test_weights_that_inflate_hundreds_of_times_are_refused_before_inflating(synthetic_run):
    path = synthetic_run / "epochs/000004/weights.npz"
    write_bomb(path, "l1.weight", 400 * 2**20)
    assert path.stat().st_size < 2 * 2**20  # a small file ...
    with pytest.raises(RunError, match=r"weights\.npz: archive member 'l1\.weight\.npy' would inflate from \d+ to "
                                       r"4194305\d\d bytes \(more than 100 times\); refused unread"):
        open_run(synthetic_run).weights(4)  # ... before: inflated whole into memory (1.5 GB for the file)
    report = check_run(synthetic_run)
    (problem,) = report.problems
    assert problem.path == "epochs/000004/weights.npz" and "would inflate" in problem.message
    assert main(["info", str(synthetic_run)]) == 0  # info lists names only; it never inflates the weights


def test_npz_members_reads_no_array(tmp_path):
    from epochscope.run.fileio import npz_members

    write_bomb(tmp_path / "w.npz", "big", 100 * 2**20)
    assert npz_members(tmp_path / "w.npz") == ["big"]


def test_json_files_beyond_a_ceiling_are_refused_unread(synthetic_run):
    path = synthetic_run / "epochs/000003/metrics.json"
    with open(path, "w") as fh:
        fh.write('{"epoch": 3, "loss": 0.5, "pad": "')
        fh.seek(5 * 2**20)
        fh.write('"}')
    with pytest.raises(RunError, match=r"metrics\.json: \d+ bytes, more than the 4194304 a JSON file can need"):
        open_run(synthetic_run).epoch_metrics(3)
