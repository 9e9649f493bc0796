"""Path safety: runs are found without following links, and named only by a path the server listed."""

from __future__ import annotations

import os

import pytest
from serveruns import make_run

from epochscope.serve.runs import UnsafeNameError, check_name, find_runs, run_folder


@pytest.mark.parametrize("name", ["../x", "a/../../x", "..", "/etc/passwd", "a//b", "./a", "a/./b", "a\\..\\b",
                                  "C:/x", "a\x00b", "a\nb", ""])
def test_names_that_could_leave_logdir_are_refused(name):
    with pytest.raises(UnsafeNameError):
        check_name(name)


@pytest.mark.parametrize("name", ["a", "sweep/relu", "%2e%2e", "run.1", "..a", "a.."])
def test_plain_names_pass(name):
    assert check_name(name) == name


def test_find_runs_lists_nested_runs_not_their_insides(logdir):
    found = find_runs(logdir)
    assert [r.path for r in found] == ["a", "sweep/b"] and all(r.error is None for r in found)


def test_logdir_that_is_a_run_is_listed_as_dot(logdir):
    assert [r.path for r in find_runs(logdir / "a")] == ["."]


def test_a_linked_run_folder_is_listed_with_an_error_and_never_reachable(logdir, tmp_path):
    outside = make_run(tmp_path / "elsewhere" / "secret", 2)
    os.symlink(outside, logdir / "linked")
    os.symlink(tmp_path / "elsewhere", logdir / "linkeddir")  # a linked folder of runs: not entered
    found = {r.path: r for r in find_runs(logdir)}
    assert "linkeddir/secret" not in found
    assert found["linked"].error and "symbolic link" in found["linked"].error
    with pytest.raises(PermissionError):
        run_folder(logdir, "linked", found)


def test_run_folder_accepts_only_listed_names(logdir):
    found = {r.path: r for r in find_runs(logdir)}
    assert run_folder(logdir, "sweep/b", found) == logdir / "sweep" / "b"
    for name in ("sweep", "a/epochs", "%2e%2e/a", "nothere"):
        with pytest.raises(KeyError):
            run_folder(logdir, name, found)
    with pytest.raises(UnsafeNameError):
        run_folder(logdir, "../logs/a", found)


def test_a_run_replaced_by_a_link_after_the_walk_is_refused(logdir, tmp_path):
    found = {r.path: r for r in find_runs(logdir)}
    outside = make_run(tmp_path / "other", 1)
    (logdir / "a").rename(tmp_path / "moved")
    os.symlink(outside, logdir / "a")
    with pytest.raises(PermissionError):
        run_folder(logdir, "a", found)
