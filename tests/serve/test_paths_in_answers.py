"""No answer names where the server's files lie: paths are relative to LOGDIR (each test failed before its fix).

A refusal used to carry the server's absolute paths (``runs with different probes cannot be shown side
by side: /home/alice/exp/logs/other and /home/alice/exp/logs/a hold ...``), and so did the runs list's
error lines and the other failed answers: a page on the network (``--host 0.0.0.0``) learnt the
machine's folders. Each message keeps what it says, with paths relative to LOGDIR.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from serveruns import make_run
from test_app import get, wait_ready

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _no_absolute_path(text: str, *folders) -> None:
    for folder in folders:
        for form in {str(folder), os.path.realpath(folder)}:
            assert form not in text, f"{form!r} in {text!r}"


def test_runs_with_different_probes_are_refused_with_their_names_not_their_paths(logdir, live_server, tmp_path):
    make_run(logdir / "other", 3, probe_seed=9)
    server = live_server(logdir)
    wait_ready(server, ["a", "other"])
    status, _, body = get(server, "/payload.json?run=a&run=other")
    error = json.loads(body)["error"]
    assert status == 409
    _no_absolute_path(error, tmp_path)
    assert "runs with different probes cannot be shown side by side: other and a hold" in error
    status, _, body = get(server, "/view?run=a&run=other")  # the frame's plain-text line says the same
    assert status == 409 and body.decode("utf-8").strip() == error


def test_the_runs_list_names_no_path_outside_logdir(logdir, live_server, tmp_path):
    """An unreadable manifest, a link to a file outside LOGDIR: each error line names the file relative
    to LOGDIR, and the link's target only by its name. The list names LOGDIR by its folder's name."""
    (logdir / "broken").mkdir()
    (logdir / "broken" / "manifest.json").write_text("{not json")
    secret = tmp_path / "private" / "secret.npy"
    secret.parent.mkdir()
    np.save(secret, np.zeros(60, np.int64))
    (logdir / "a" / "probe" / "labels.npy").unlink()
    os.symlink(secret, logdir / "a" / "probe" / "labels.npy")
    server = live_server(logdir)
    runs = wait_ready(server, ["a", "broken"])
    body = get(server, "/runs.json")[2].decode("utf-8")
    _no_absolute_path(body, tmp_path)
    assert "broken/manifest.json" in runs["broken"]["error"]
    assert "probe/labels.npy" in runs["a"]["error"] and "secret.npy" in runs["a"]["error"]
    assert json.loads(body)["logdir"] == "logs"
    for path in ("/payload.json?run=a", "/payload.json?run=broken", "/view?run=broken"):
        status, _, body = get(server, path)
        assert status == 503
        _no_absolute_path(body.decode("utf-8"), tmp_path)


def test_a_run_that_fails_while_its_page_is_built_names_files_relative_to_logdir(logdir, live_server, tmp_path):
    """A run whose data cannot be read while its page is built (here: every read refused): the answer's
    line names the file relative to LOGDIR."""
    from epochscope import RunError

    server = live_server(logdir)
    wait_ready(server, ["a"])

    def refuse(*args, **kw):
        raise RunError(f"{logdir / 'a' / 'probe' / 'labels.npy'}: unreadable; the file is truncated or corrupted")

    server._build = refuse
    status, _, body = get(server, "/payload.json?run=a")
    error = json.loads(body)["error"]
    assert status >= 400 and error.startswith("a/probe/labels.npy: unreadable")
    _no_absolute_path(error, tmp_path)


def test_the_viewer_data_names_no_path_outside_logdir(logdir, live_server, tmp_path):
    """The viewer's data said where the run lies (``info.run``), and its notes quoted the reader's errors
    with full paths (here: a run without weights, 'no network drawn: /home/.../logs/a: no epoch holds
    weights ...'); the page and the payload hold neither now."""
    for weights in (logdir / "a" / "epochs").glob("*/weights.npz"):
        weights.unlink()
    server = live_server(logdir)
    wait_ready(server, ["a", "sweep/b"])  # both: the side-by-side answer needs sweep/b mapped too (else 503)
    for route in ("/payload.json?run=a", "/view?run=a", "/payload.json?run=a&run=sweep%2Fb&i=1"):
        status, _, body = get(server, route)
        assert status == 200
        _no_absolute_path(body.decode("utf-8"), tmp_path)
    payload = json.loads(get(server, "/payload.json?run=a")[2])
    assert payload["info"]["run"] == "a"
    assert payload["network"]["note"].startswith("no network drawn: a: no epoch holds weights")
