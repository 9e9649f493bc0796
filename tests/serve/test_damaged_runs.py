"""A run damaged while served is listed as damaged, with what to do; its pictures are not shown as if
nothing happened (each test failed before its fix).

The server read a run's epoch list each second and mapped the epochs it had not mapped: a file
truncated or removed after the maps were made left the list saying "up to date" and the page showing
the old pictures (a truncated layer file, predictions, weights), or the page failing with a 500 while
the list said "up to date" (labels, a metrics row), or the map silently one epoch shorter than the
list (a layer file removed). Now the run's files are watched (size, time, inode; no read) and, when
one that was there changes or goes, the run is checked as ``epochscope check`` checks it.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest
from synthetic import truncate
from test_app import get, wait_ready

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

def _layer_file(run, epoch: int = 3):
    return next((run / "epochs" / f"{epoch:06d}" / "probe").iterdir())


DAMAGE = {
    "layer file truncated": lambda run: truncate(_layer_file(run)),
    "layer file removed": lambda run: _layer_file(run).unlink(),
    "labels truncated": lambda run: truncate(run / "probe" / "labels.npy"),
    "predictions truncated": lambda run: truncate(run / "epochs" / "000002" / "predictions.npy"),
    "metrics row corrupted": lambda run: (run / "epochs" / "000002" / "metrics.json").write_text("{not json"),
    "weights truncated": lambda run: truncate(run / "epochs" / "000002" / "weights.npz"),
}
NAMED = {"layer file truncated": "a/epochs/000003/probe/hidden-", "layer file removed": "a/epochs/000003/probe/hidden-",
         "labels truncated": "a/probe/labels.npy", "predictions truncated": "a/epochs/000002/predictions.npy",
         "metrics row corrupted": "a/epochs/000002/metrics.json", "weights truncated": "a/epochs/000002/weights.npz"}


def wait_for(server, name: str, test, timeout: float = 20):
    t0 = time.monotonic()
    while True:
        runs = {r["path"]: r for r in json.loads(get(server, "/runs.json")[2])["runs"]}
        if name in runs and test(runs[name]):
            return runs[name]
        assert time.monotonic() - t0 < timeout, runs.get(name)
        time.sleep(0.1)


def _assert_shown_as_damaged(server, entry, named: str) -> None:
    assert entry["status"] == "damaged" and not entry["ready"]
    error = entry["error"]
    assert named in error and "epochscope check" in error and "\n" not in error, error
    for route in ("/payload.json?run=a", "/view?run=a"):
        status, _, body = get(server, route)
        text = body.decode("utf-8")
        assert status == 503 and named in text, (route, status, text)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_run_damaged_after_it_was_mapped_is_listed_as_damaged(logdir, live_server, damage):
    server = live_server(logdir)
    wait_ready(server, ["a"])
    assert get(server, "/payload.json?run=a")[0] == 200  # its pictures were built (and cached)
    DAMAGE[damage](logdir / "a")
    entry = wait_for(server, "a", lambda r: r["status"] == "damaged")
    _assert_shown_as_damaged(server, entry, NAMED[damage])
    assert wait_for(server, "sweep/b", lambda r: r["ready"])  # the other runs go on


def test_a_run_damaged_before_the_server_started_is_listed_as_damaged(logdir, live_server):
    """Truncated predictions read as 'no predictions recorded' in the page, and the list said 'up to date'."""
    DAMAGE["predictions truncated"](logdir / "a")
    server = live_server(logdir)
    entry = wait_for(server, "a", lambda r: r["status"] == "damaged")
    _assert_shown_as_damaged(server, entry, NAMED["predictions truncated"])
    assert entry["mapped"] == []  # nothing was mapped from a damaged run


def test_a_repaired_run_is_shown_again(logdir, live_server, tmp_path):
    """Restored from a backup, then damaged and repaired (`epochscope check --repair` drops the damaged
    last epoch): each time the run is mapped again and shown, with a new version."""
    import epochscope

    server = live_server(logdir)
    first = wait_ready(server, ["a"])["a"]
    layer_file = _layer_file(logdir / "a")
    backup = tmp_path / "backup.npy"
    shutil.copy2(layer_file, backup)
    truncate(layer_file)
    wait_for(server, "a", lambda r: r["status"] == "damaged")
    shutil.copy2(backup, layer_file)  # restored
    restored = wait_for(server, "a", lambda r: r["ready"] and r["version"] > first["version"])
    assert restored["error"] is None and restored["mapped"] == [0, 1, 2, 3]
    assert get(server, "/payload.json?run=a")[0] == 200
    truncate(layer_file)
    wait_for(server, "a", lambda r: r["status"] == "damaged")
    assert epochscope.check_run(logdir / "a", repair=True).ok
    repaired = wait_for(server, "a", lambda r: r["ready"] and r["version"] > restored["version"])
    assert repaired["epochs"] == repaired["mapped"] == [0, 1, 2] and repaired["error"] is None
    assert json.loads(get(server, "/payload.json?run=a")[2])["epochs"] == [0, 1, 2]


def test_an_epoch_recorded_again_is_mapped_again(logdir, live_server):
    """An epoch replaced by the recorder (``epoch(3, replace=True)``) keeps the epoch list the same: the
    server kept the old epoch's map. A file that changed is data that changed: the run is mapped again."""
    import numpy as np
    from serveruns import open_writer

    server = live_server(logdir)
    first = wait_ready(server, ["a"])["a"]
    w = open_writer(logdir / "a")
    try:
        with w.epoch(3, replace=True) as ep:
            ep.set_activations("hidden", np.full((60, 8), 3.0, np.float32))
            ep.set_activations("hidden", np.full((15, 8), 3.0, np.float32), split="test")
            ep.set_predictions(np.zeros(60, np.int64))
            ep.set_predictions(np.zeros(15, np.int64), split="test")
            ep.set_metrics({"loss": 9.0, "accuracy": 0.1})
    finally:
        w.close()
    again = wait_for(server, "a", lambda r: r["ready"] and r["version"] > first["version"])
    assert again["mapped"] == [0, 1, 2, 3]
    payload = json.loads(get(server, "/payload.json?run=a")[2])
    assert payload["metrics"]["accuracy"][0]["values"][3] == pytest.approx(0.1)


@pytest.mark.browser
def test_the_page_replaces_the_pictures_of_a_run_damaged_while_shown(logdir, live_server, browser_context):
    server = live_server(logdir)
    wait_ready(server, ["a"])
    page = browser_context.new_page()
    page.set_viewport_size({"width": 1300, "height": 1000})
    try:
        page.goto(server.url + "#run=a")
        page.wait_for_function("() => document.querySelectorAll('#view iframe').length === 1", timeout=30000)
        truncate(_layer_file(logdir / "a"))
        page.wait_for_function("() => document.querySelector('#view .waiting') !== null", timeout=20000)
        assert page.locator("#view iframe").count() == 0
        text = page.inner_text("#view")
        assert "damaged" in text and "epochs/000003/probe/hidden-" in text and "epochscope check" in text
        assert "damaged" in page.inner_text("#runs tr[data-path='a']")
    finally:
        page.close()


def test_checking_a_run_never_takes_the_recorders_lock(logdir, monkeypatch):
    """`epochscope check` asks the lock who writes by taking it shared for an instant, and a recorder
    starting in that instant would find the run locked: serve's check does not ask."""
    import fcntl

    from epochscope.serve import Embedder

    taken = []
    monkeypatch.setattr(fcntl, "flock", lambda fd, op: taken.append(op))
    assert (logdir / "a" / ".lock").is_file()
    embedder = Embedder(logdir, method="pca")
    while embedder.step():
        pass
    truncate(_layer_file(logdir / "a"))
    deadline = time.monotonic() + 10
    while embedder.snapshot()[0]["status"] != "damaged":
        assert time.monotonic() < deadline
        embedder.step()
        time.sleep(0.05)
    assert taken == []


def test_noting_the_files_of_many_long_runs_takes_a_small_share_of_the_time(logdir, monkeypatch):
    """Each walk noted every file of every run (an lstat each: 30 ms for a run of 300 epochs here, so a
    second per walk for a folder of 30 such runs). When noting them is slow, it is done less often; a
    run new to the server is noted (and checked) at once all the same."""
    from serveruns import make_run

    import epochscope.serve.worker as worker
    from epochscope.serve import Embedder

    real, noted = worker.run_files, []

    def slow(folder):
        noted.append(folder.name)
        time.sleep(0.02)
        return real(folder)

    monkeypatch.setattr(worker, "run_files", slow)
    embedder = Embedder(logdir, method="pca")
    while embedder.step():
        pass
    noted.clear()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.5:
        embedder.step()
    # 2 runs x 20 ms a walk is 40 ms: at a 5 % share, at most one walk in the half second (it was every walk).
    assert len(noted) <= 2 * 2, noted
    make_run(logdir / "new", 2)
    embedder.step()
    assert "new" in noted


def test_an_epoch_folder_that_is_a_link_is_shown_with_the_warning_check_gives(logdir, live_server, tmp_path):
    """serve left out an epoch folder that is a symbolic link (no reader follows a link in a run) without a
    word, while ``epochscope check`` warns of it: the list said "up to date" over a map one epoch short.
    Now the run is shown, its other epochs mapped, with check's warning in its entry."""
    import epochscope

    run, elsewhere = logdir / "a", tmp_path / "elsewhere"
    shutil.move(run / "epochs" / "000002", elsewhere)
    (run / "epochs" / "000002").symlink_to(elsewhere, target_is_directory=True)
    (told,) = [f for f in epochscope.check_run(run).warnings if f.path == "epochs/000002"]
    assert "readers skip it" in told.message  # what check says, and what the list must say too
    server = live_server(logdir)
    entry = wait_for(server, "a", lambda r: r["ready"])
    assert entry["epochs"] == entry["mapped"] == [0, 1, 3] and entry["status"].startswith("up to date")
    warning = entry["warning"]
    assert "epochs/000002: a link (to …/elsewhere) among the epochs (readers skip it)" in warning, warning
    assert "`epochscope check LOGDIR/a`" in warning and str(tmp_path) not in warning and "\n" not in warning, warning
    assert wait_for(server, "sweep/b", lambda r: r["ready"])["warning"] is None  # a healthy run has none


def test_a_damaged_manifest_is_listed_as_damaged_with_the_check(logdir, live_server):
    """Before: status "cannot be read" and the reader's line alone ("a/manifest.json: unreadable JSON (...)"),
    nothing about `epochscope check`, as if the run could not be read for a while rather than damaged."""
    truncate(logdir / "a" / "manifest.json")
    server = live_server(logdir)
    entry = wait_for(server, "a", lambda r: r["error"] is not None)
    _assert_shown_as_damaged(server, entry, "a/manifest.json")
    assert "`epochscope check LOGDIR/a`" in entry["error"], entry["error"]
    assert wait_for(server, "sweep/b", lambda r: r["ready"])  # the other runs go on
