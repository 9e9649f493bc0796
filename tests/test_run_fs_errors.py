"""Issue 14, kind 4 (run, checker and importers): file-system errors and malformed files end in
one line naming the file and the cause, never a traceback; nothing half-written is left; the exit
status is 2 for the user's input and 1 for the environment.

Before, ``check --repair`` on a read-only run printed an OSError traceback, and deeply nested
JSON in a cached ``meta.json``, a Chainer ``log`` or a ``--metrics`` file gave RecursionError
tracebacks (a ``meta.json`` without ``bounds`` made ``embed`` crash with KeyError).
"""

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import epochscope
from epochscope import StorageError, check_run, open_run
from epochscope.cli import main
from epochscope.run import RunWriter

DEEP = "[" * 100_000 + "]" * 100_000


def unshare_works() -> bool:
    if not shutil.which("unshare") or sys.platform != "linux":
        return False
    try:
        done = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs none /mnt 2>/dev/null || "
                               "mount --bind / / && true"], capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


needs_unshare = pytest.mark.skipif(not unshare_works(), reason="needs unprivileged mount namespaces (unshare -rm) for "
                                                               "a real read-only or full file system")


def cli_in_namespace(setup: str, *argv: str) -> subprocess.CompletedProcess:
    """``epochscope ARGV`` in a private mount namespace prepared by the shell commands ``setup``."""
    command = f"{setup} && exec {sys.executable} -m epochscope " + " ".join(f"'{a}'" for a in argv)
    return subprocess.run(["unshare", "-rm", "sh", "-c", command], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def one_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"epochscope {command}: error: "), err
    assert "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------ a read-only run


@needs_unshare
def test_repair_of_a_read_only_run_is_one_line_and_exit_status_1(synthetic_run):
    (synthetic_run / "epochs/000004/metrics.json").write_text("{")
    (synthetic_run / "epochs/.partial-000005-999999").mkdir()
    before = sorted(p.relative_to(synthetic_run).as_posix() for p in synthetic_run.rglob("*"))
    done = cli_in_namespace(f"mount --bind -o ro '{synthetic_run}' '{synthetic_run}'", "check", synthetic_run, "--repair")
    assert done.returncode == 1, done.stderr  # the environment (before: an OSError traceback)
    line = one_line(done.stderr, "check")
    assert f"cannot lock the run at {synthetic_run}/.lock: Read-only file system (the file system is read-only" in line
    assert sorted(p.relative_to(synthetic_run).as_posix() for p in synthetic_run.rglob("*")) == before


@needs_unshare
def test_a_healthy_read_only_run_checks_and_repairs_to_nothing(synthetic_run):
    (synthetic_run / ".lock").unlink()
    done = cli_in_namespace(f"mount --bind -o ro '{synthetic_run}' '{synthetic_run}'", "check", synthetic_run, "--repair")
    assert done.returncode == 0 and "healthy" in done.stdout, done.stderr


def test_a_refused_removal_is_a_storage_error_naming_the_file(synthetic_run, monkeypatch, capsys):
    (synthetic_run / "epochs/.partial-000005-999999").mkdir()

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(shutil, "rmtree", read_only)
    with pytest.raises(StorageError, match=r"cannot remove .*\.partial-000005-999999: Read-only file system"):
        check_run(synthetic_run, repair=True)
    assert main(["check", str(synthetic_run), "--repair"]) == 1
    assert "Read-only file system" in one_line(capsys.readouterr().err, "check")


# ------------------------------------------------------------------ deeply nested or malformed JSON


@pytest.fixture
def cached(synthetic_run) -> tuple[Path, Path]:
    epochscope.embed(synthetic_run, "hidden", method="pca", progress=False)
    (entry,) = (synthetic_run / "cache" / "maps").iterdir()
    return synthetic_run, entry


@pytest.mark.parametrize("damage", ["deep", "no bounds", "no skipped", "bounds of text", "skipped by name"])
def test_a_damaged_cache_entry_is_simply_a_miss(cached, damage, caplog):
    run, entry = cached
    meta = json.loads((entry / "meta.json").read_text())
    if damage == "deep":
        (entry / "meta.json").write_text(DEEP)  # before: RecursionError
    elif damage.startswith("no "):
        meta.pop(damage[3:])  # before: KeyError 'bounds'
        (entry / "meta.json").write_text(json.dumps(meta))
    elif damage == "bounds of text":
        (entry / "meta.json").write_text(json.dumps({**meta, "bounds": ["a", "b", "c", "d"]}))
    else:
        (entry / "meta.json").write_text(json.dumps({**meta, "skipped": {"first": "x"}}))
    maps = epochscope.embed(run, "hidden", method="pca", progress=False)
    assert maps.coords.shape == (5, 120, 2) and "ignoring unreadable maps cache" in caplog.text
    assert json.loads((entry / "meta.json").read_text())["bounds"]  # recomputed and replaced
    assert check_run(run).ok


def test_a_deeply_nested_chainer_log_is_one_line(tmp_path, capsys):
    from importers.test_chainer import build_result_dir

    result = build_result_dir(tmp_path / "result", epochs=(1, 2))
    (result / "log").write_text(DEEP)
    assert main(["-q", "import", "chainer", str(result), "--out", str(tmp_path / "run")]) == 2
    line = one_line(capsys.readouterr().err, "import")
    assert f"{result / 'log'}: unreadable Chainer log (RecursionError" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("text,why", [(DEEP, r"not valid JSON \(RecursionError"),
                                      ('{"epoch": [1, 2', r"not valid JSON \(JSONDecodeError")])
def test_a_malformed_metrics_file_is_one_line(tmp_path, capsys, text, why):
    import re

    (tmp_path / "ckpts").mkdir()
    (tmp_path / "metrics.json").write_text(text)
    rc = main(["-q", "import", "checkpoints", str(tmp_path / "ckpts"), "--out", str(tmp_path / "run"),
               "--metrics", str(tmp_path / "metrics.json")])
    assert rc == 2
    assert re.search(rf"metrics\.json: {why}", one_line(capsys.readouterr().err, "import"))


def test_a_metrics_file_that_is_a_fifo_is_refused_without_hanging(tmp_path, capsys):
    (tmp_path / "ckpts").mkdir()
    os.mkfifo(tmp_path / "metrics.csv")
    rc = main(["-q", "import", "checkpoints", str(tmp_path / "ckpts"), "--out", str(tmp_path / "run"),
               "--metrics", str(tmp_path / "metrics.csv")])
    assert rc == 2 and "a FIFO, not a regular file" in one_line(capsys.readouterr().err, "import")


# ------------------------------------------------------------------ exit status and leftovers


@pytest.mark.parametrize("argv,rc,message", [
    (("info", "{tmp}/nope"), 2, "no such folder"),
    (("info", "{tmp}"), 2, "manifest.json is missing"),
    (("check", "{run}", "--force"), 2, "--force: only means something with --repair"),
    (("embed", "{run}", "--layer", "hiden", "--method", "pca"), 2, "did you mean 'hidden'"),
])
def test_exit_status_2_for_the_users_input(synthetic_run, tmp_path, capsys, argv, rc, message):
    args = [a.format(tmp=tmp_path, run=synthetic_run) for a in argv]
    assert main(args) == rc
    assert message in one_line(capsys.readouterr().err, args[0])


def test_exit_status_1_for_another_writer(synthetic_run, capsys):
    (synthetic_run / "epochs/.partial-000005-999999").mkdir()
    with RunWriter.open(synthetic_run, framework="synthetic", labels=open_run(synthetic_run).labels,
                        class_names=["class 0", "class 1", "class 2"], test_labels=np.arange(30) % 3):
        assert main(["check", str(synthetic_run), "--repair"]) == 1
    assert "being written by another recorder in this process" in one_line(capsys.readouterr().err, "check")


def test_a_failed_atomic_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    from epochscope.run import fileio

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", full)
    with pytest.raises(StorageError, match=r"cannot write .*m\.json: No space left on device \(the disk is full"):
        fileio.write_json_atomic(tmp_path / "m.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_a_planted_link_at_a_temporary_name_is_replaced_not_written_through(tmp_path):
    from epochscope.run import fileio
    from epochscope.run.layout import temporary_path

    victim = tmp_path / "victim.txt"
    victim.write_text("important")
    target = tmp_path / "run" / "m.json"
    target.parent.mkdir()
    os.symlink(victim, temporary_path(target))
    fileio.write_json_atomic(target, {"a": 1})
    assert victim.read_text() == "important" and json.loads(target.read_text()) == {"a": 1}


def test_import_failing_midway_leaves_nothing_and_the_same_command_works_again(tmp_path, capsys):
    from importers.test_chainer import build_result_dir

    result = build_result_dir(tmp_path / "result", epochs=(1, 2, 3))
    (result / "snapshot_iter_30").write_bytes(b"PK\x03\x04 broken")  # the second of three snapshots
    out = tmp_path / "run"
    assert main(["-q", "import", "chainer", str(result), "--out", str(out)]) == 2
    one_line(capsys.readouterr().err, "import")
    assert not out.exists() and not list(tmp_path.glob(".run.tmp-*"))  # before: a run holding epoch 1
    shutil.rmtree(result)
    build_result_dir(result, epochs=(1, 2, 3))
    assert main(["-q", "import", "chainer", str(result), "--out", str(out)]) == 0  # before: "pass resume=True"
    assert open_run(out).epochs == [1, 2, 3]
