"""One writer at a time, and a probe of who is writing that changes nothing."""

import os
import subprocess
import sys

import pytest

from epochscope import RunLockedError
from epochscope.run import RunWriter
from epochscope.run.lock import RunLock, lock_holder, pid_alive

pytest.importorskip("fcntl")  # advisory locks: POSIX only (Windows writers take none)


def test_second_writer_is_refused(tmp_path):
    path = tmp_path / "run"
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]):
        with pytest.raises(RunLockedError, match=r"being written by another recorder in this process \(pid \d+\); "
                                                 r"close that recorder first \(rec.close\(\)\)"):
            RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"])
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]):
        pass  # released on close


def test_lock_holder_names_the_writer_and_touches_nothing(tmp_path):
    path = tmp_path / "run"
    assert lock_holder(path) is None  # no run, no lock file
    with RunWriter.open(path, framework="t", labels=[0, 1], class_names=["a", "b"]):
        before = (path / ".lock").read_bytes()
        assert lock_holder(path) == f"pid {os.getpid()}"
        assert (path / ".lock").read_bytes() == before
        with pytest.raises(RunLockedError, match=rf"being written by another recorder in this process \(pid {os.getpid()}\)"):
            RunLock(path).acquire()
    assert lock_holder(path) is None and (path / ".lock").exists()


def test_lock_held_by_another_process_is_seen(tmp_path):
    code = ("import sys, time; from epochscope.run.lock import RunLock; lock = RunLock(sys.argv[1]); "
            "lock.acquire(); print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert lock_holder(tmp_path) == f"pid {proc.pid}"
        with pytest.raises(RunLockedError, match=rf"another process \(pid {proc.pid}\); wait for it to finish .* "
                                                 r"Keras fit or Trainer.train failed holds its run until"):
            RunLock(tmp_path).acquire()
    finally:
        proc.kill()
        proc.wait()
    with RunLock(tmp_path) as lock:  # the kernel released it with the process
        assert lock.held
    assert not lock.held


def test_a_holder_whose_training_ended_hands_the_run_over_in_this_process(tmp_path):
    ended, given_up = [False], []
    holder = RunLock(tmp_path)
    holder.acquire()
    holder.hand_over(lambda: ended[0], lambda: given_up.append(True))
    with pytest.raises(RunLockedError, match="another recorder in this process"):
        RunLock(tmp_path).acquire()  # its training runs: refused
    assert lock_holder(tmp_path) == f"pid {os.getpid()}" and not given_up
    ended[0] = True  # its training ended without releasing the run (a failed Keras fit)
    assert lock_holder(tmp_path) is None  # nobody writes the run now
    with RunLock(tmp_path) as lock:
        assert lock.held and given_up == [True] and not holder.held
        assert lock_holder(tmp_path) == f"pid {os.getpid()}"
    assert lock_holder(tmp_path) is None


def test_a_released_holder_forgets_its_hand_over(tmp_path):
    holder = RunLock(tmp_path)
    holder.acquire()
    holder.hand_over(lambda: True, lambda: pytest.fail("a released holder is never asked to give the run up"))
    holder.release()
    other = RunLock(tmp_path)
    other.acquire()
    with pytest.raises(RunLockedError, match="another recorder in this process"):
        holder.acquire()  # the new holder has no hand-over: refused
    other.release()


def test_pid_alive():
    assert pid_alive(os.getpid())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)
