"""Issue 14, kind 9 (imports): an import is all or nothing.

The run is written into a hidden folder beside ``--out`` and renamed into place when every
snapshot is in. Before, a failed import left a partial run at ``--out``, and running the same
command again was refused with "pass resume=True", an option the command line does not have.
"""

import errno

import pytest
from importers.test_chainer import build_result_dir

from epochscope import RunError, StorageError, open_run
from epochscope.cli import main
from epochscope.importers import chainer


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("failure", [RunError("snapshot 2 is damaged"), KeyboardInterrupt(),
                                     OSError(errno.ENOSPC, "No space left on device")],
                         ids=["damaged snapshot", "interrupted", "disk full"])
def test_a_failed_import_leaves_nothing_and_can_simply_be_run_again(tmp_path, monkeypatch, failure):
    result = build_result_dir(tmp_path / "result", epochs=(1, 2, 3))
    read = chainer.read_chainer_snapshot
    calls = []

    def flaky(path):
        calls.append(path)
        if len(calls) == 2:
            raise failure
        return read(path)

    monkeypatch.setattr(chainer, "read_chainer_snapshot", flaky)
    out = tmp_path / "run"
    with pytest.raises(type(failure)):
        chainer.import_chainer(result, out)
    assert not out.exists() and leftovers(tmp_path) == []  # before: a run holding epoch 1 at --out
    monkeypatch.undo()
    assert main(["-q", "import", "chainer", str(result), "--out", str(out)]) == 0  # before: "pass resume=True"
    assert open_run(out).epochs == [1, 2, 3]


def test_a_full_disk_during_an_import_is_exit_status_1(tmp_path, monkeypatch, capsys):
    result = build_result_dir(tmp_path / "result", epochs=(1, 2))
    from epochscope.run import writer

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer.np, "savez", full)  # the weights of the first snapshot
    assert main(["-q", "import", "chainer", str(result), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "No space left on device; the disk is full" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists() and leftovers(tmp_path) == []
    assert issubclass(StorageError, OSError)


def test_out_may_be_an_empty_folder_but_never_a_run_a_file_or_a_full_folder(tmp_path):
    result = build_result_dir(tmp_path / "result", epochs=(1,))
    (tmp_path / "empty").mkdir()
    assert open_run(chainer.import_chainer(result, tmp_path / "empty")).epochs == [1]
    with pytest.raises(RunError, match="already holds a run; give a new folder for the imported run"):
        chainer.import_chainer(result, tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError, match="exists and is not a folder"):
        chainer.import_chainer(result, tmp_path / "file")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("a user's file")
    with pytest.raises(RunError, match="is not empty"):
        chainer.import_chainer(result, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "a user's file"
