"""The server's routes, in this process: /runs.json, payloads, path escapes, escaping, errors."""

from __future__ import annotations

import http.client
import json
import os
import time

import numpy as np
import pytest
from serveruns import CLASS_NAMES, make_run

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def get(server, path: str, host: str | None = None):
    """(status, headers, body) of GET ``path`` sent as it is (no client-side normalisation)."""
    h, p = server.server_address[:2]
    conn = http.client.HTTPConnection(h, p, timeout=30)
    conn.putrequest("GET", path, skip_host=True)
    conn.putheader("Host", host or f"127.0.0.1:{p}")
    conn.endheaders()
    res = conn.getresponse()
    body = res.read()
    conn.close()
    return res.status, dict(res.getheaders()), body


def wait_ready(server, names, timeout=60):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        runs = {r["path"]: r for r in json.loads(get(server, "/runs.json")[2])["runs"]}
        if all(n in runs and (runs[n]["ready"] or runs[n]["error"]) for n in names):
            return runs
        time.sleep(0.1)
    raise AssertionError(f"runs {names} not ready: {runs}")


def test_runs_json_lists_each_run(shared_server):
    server = shared_server
    runs = wait_ready(server, ["a", "sweep/b"])
    a, b = runs["a"], runs["sweep/b"]
    assert (a["name"], a["path"], a["layers"], a["epochs"]) == ("a", "a", ["hidden"], [0, 1, 2, 3])
    assert (b["name"], b["path"], b["epochs"], b["mapped"]) == ("sweep/b", "sweep/b", [0, 1, 2, 3, 4], [0, 1, 2, 3, 4])
    assert a["version"] == 1 and a["error"] is None and a["status"].startswith("up to date")
    status, headers, _ = get(server, "/runs.json")
    assert status == 200 and headers["Content-Type"] == "application/json" and headers["Cache-Control"] == "no-store"


def test_payload_is_the_run_and_the_live_link(shared_server):
    server = shared_server
    wait_ready(server, ["a"])
    status, _, body = get(server, "/payload.json?run=a")
    payload = json.loads(body)
    assert status == 200 and payload["epochs"] == [0, 1, 2, 3] and payload["classNames"] == CLASS_NAMES
    assert payload["live"] == {"runs": ["a"], "token": "1", "poll": 1000, "payload": "/payload.json?run=a&i=0"}


def test_new_epochs_grow_the_version_and_the_payload(logdir, live_server):
    from serveruns import open_writer, write_epoch

    server = live_server(logdir)
    wait_ready(server, ["a"])
    w = open_writer(logdir / "a")
    try:
        write_epoch(w, 4)
    finally:
        w.close()
    t0 = time.monotonic()
    while json.loads(get(server, "/runs.json")[2])["runs"][0]["version"] < 2:
        assert time.monotonic() - t0 < 20
        time.sleep(0.1)
    assert json.loads(get(server, "/payload.json?run=a")[2])["epochs"] == [0, 1, 2, 3, 4]


def test_a_half_written_epoch_is_never_shown(logdir, live_server):
    """A writer's unfinished epoch (epochs/.partial-*) is not an epoch: not listed, not mapped."""
    partial = logdir / "a" / "epochs" / ".partial-000004-99999"
    (partial / "probe").mkdir(parents=True)
    (partial / "probe" / "x.npy").write_bytes(b"\x93NUMPY half")
    server = live_server(logdir)
    runs = wait_ready(server, ["a"])
    assert runs["a"]["epochs"] == [0, 1, 2, 3] and runs["a"]["error"] is None


@pytest.mark.parametrize("path", ["/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd",
                                  "//etc/passwd", "/a/manifest.json", "/a/probe/labels.npy", "/view/../runs.json/x"])
def test_no_file_is_served_by_path(shared_server, path):
    server = shared_server
    status, _, body = get(server, path)
    assert status == 404 and b"root:" not in body and b"NUMPY" not in body


@pytest.mark.parametrize("query,status", [("run=../a", 400), ("run=%2e%2e/a", 400), ("run=%2e%2e%2fa", 400),
                                          ("run=/etc", 400), ("run=" + "%2F" + "etc%2Fpasswd", 400),
                                          ("run=a/..", 400), ("run=%252e%252e/a", 404), ("run=sweep", 404),
                                          ("run=nothere", 404), ("", 400), ("run=a&i=5", 400), ("run=a&run=a", 400)])
def test_run_names_that_escape_or_are_unknown_are_refused(shared_server, query, status):
    server = shared_server
    wait_ready(server, ["a"])
    for route in ("/payload.json", "/view"):
        got, headers, body = get(server, f"{route}?{query}")
        assert got == status, (route, query, body)
        if route == "/view":  # shown inside the page's frame: one plain-text line (review 16)
            assert headers["Content-Type"].startswith("text/plain") and body.count(b"\n") == 1
        else:
            assert headers["Content-Type"] == "application/json" and "error" in json.loads(body)


def _link_outside(run, rel, tmp_path):
    secret = tmp_path / "secret.npy"
    np.save(secret, np.full((60, 8), 7.0, np.float16))
    target = run / rel if rel else next((run / "epochs" / "000003" / "probe").iterdir())
    target.unlink()
    os.symlink(secret, target)


def test_a_link_inside_a_run_to_outside_is_refused(logdir, live_server, tmp_path):
    """A run whose probe labels link outside LOGDIR: its error is listed, the link is not followed, the
    server goes on with the other runs."""
    _link_outside(logdir / "a", "probe/labels.npy", tmp_path)
    server = live_server(logdir)
    runs = wait_ready(server, ["a", "sweep/b"])
    assert runs["a"]["error"] and "link" in runs["a"]["error"] and not runs["a"]["ready"]
    assert runs["sweep/b"]["ready"]
    status, _, body = get(server, "/payload.json?run=a")
    assert status == 503 and "link" in json.loads(body)["error"]


def test_a_linked_layer_file_is_never_read_and_the_run_is_listed_as_damaged(logdir, live_server, tmp_path):
    """A layer's file at epoch 3 links outside LOGDIR: that epoch's outputs are not read. (The run was
    mapped without epoch 3, the list saying epochs 0-3; it is now listed as damaged, the link named.)"""
    _link_outside(logdir / "a", None, tmp_path)
    server = live_server(logdir)
    runs = wait_ready(server, ["a"])
    assert runs["a"]["mapped"] == [] and not runs["a"]["ready"] and runs["a"]["status"] == "damaged"
    assert "a/epochs/000003/probe/" in runs["a"]["error"] and "link" in runs["a"]["error"]
    status, _, body = get(server, "/payload.json?run=a")
    assert status == 503 and "link" in json.loads(body)["error"]


def test_a_linked_run_folder_is_listed_with_its_error_and_refused(logdir, live_server, tmp_path):
    outside = make_run(tmp_path / "elsewhere", 2)
    os.symlink(outside, logdir / "linked")
    server = live_server(logdir)
    runs = wait_ready(server, ["a", "linked"])
    assert "symbolic link" in runs["linked"]["error"] and not runs["linked"]["ready"]
    assert get(server, "/payload.json?run=linked")[0] == 403


def test_a_run_that_cannot_be_read_shows_one_line(logdir, live_server):
    (logdir / "broken").mkdir()
    (logdir / "broken" / "manifest.json").write_text("{not json")
    server = live_server(logdir)
    runs = wait_ready(server, ["a", "broken"])
    err = runs["broken"]["error"]
    assert err and "\n" not in err and "manifest.json" in err and runs["a"]["ready"]


def test_run_names_and_labels_are_escaped(tmp_path, live_server):
    """JSON answers escape markup (no raw '<' at all); the page sets run text as text only (see shell.js)."""
    from importlib import resources

    root = tmp_path / "logs"
    make_run(root / "<script>alert(1)<", 2)
    server = live_server(root)
    wait_ready(server, ["<script>alert(1)<"])
    for path in ("/runs.json", "/payload.json?run=%3Cscript%3Ealert(1)%3C"):
        status, headers, body = get(server, path)
        assert status == 200 and b"<" not in body and b"\\u003cscript\\u003e" in body
        assert headers["X-Content-Type-Options"] == "nosniff"
    status, headers, body = get(server, "/view?run=%3Cscript%3Ealert(1)%3C")
    assert status == 200 and b"<script>alert(1)<" not in body and b"<img src=x" not in body
    shell = resources.files("epochscope.serve").joinpath("shell.js").read_text()
    assert "innerHTML" not in shell and "insertAdjacentHTML" not in shell and "textContent" in shell


def test_page_and_headers(shared_server):
    server = shared_server
    status, headers, body = get(server, "/")
    assert status == 200 and body.startswith(b"<!DOCTYPE html>")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";")[0]


def test_only_loopback_host_names_are_answered(shared_server):
    """A page on another site cannot reach the server through DNS rebinding: its Host is refused."""
    server = shared_server
    assert get(server, "/runs.json", host="evil.example:8787")[0] == 403
    assert get(server, "/runs.json", host="localhost:8787")[0] == 200


def test_other_methods_are_refused(shared_server):
    server = shared_server
    h, p = server.server_address[:2]
    conn = http.client.HTTPConnection(h, p, timeout=10)
    conn.request("POST", "/runs.json", body=b"x")
    assert conn.getresponse().status == 405
    conn.close()


def test_side_by_side_payloads(shared_server):
    server = shared_server
    wait_ready(server, ["a", "sweep/b"])
    status, _, body = get(server, "/payload.json?run=a&run=sweep%2Fb&i=1")
    payload = json.loads(body)
    assert status == 200 and payload["compare"]["runs"] == ["a", "sweep/b"] and payload["compare"]["index"] == 1
    assert payload["live"]["token"] == "1,1"
    names = [s["name"] for s in payload["metrics"]["accuracy"]]
    assert "training accuracy · a" in names and "training accuracy · sweep/b" in names


def test_runs_with_different_probes_are_refused_side_by_side(logdir, live_server):
    make_run(logdir / "other", 3, probe_seed=9)
    server = live_server(logdir)
    wait_ready(server, ["a", "other"])
    status, _, body = get(server, "/payload.json?run=a&run=other")
    assert status == 409 and "different probe" in json.loads(body)["error"]
