"""Found by review 16 (trying `epochscope serve` as a new user and attacking it): each test failed before its fix."""

from __future__ import annotations

import errno
import socket
import time

import pytest
from test_app import get

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def test_a_view_that_fails_shows_its_line_inside_the_frame(shared_server):
    """/view is opened in the page's frame: its error must be framable (it was JSON with
    frame-ancestors 'none', so Chromium blocked it and the user saw a broken frame, not the line)."""
    status, headers, body = get(shared_server, "/view?run=no-such-run")
    assert status == 404
    assert headers["Content-Type"].startswith("text/plain")  # never markup, whatever the name holds
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in csp and "default-src 'none'" in csp
    assert body.decode("utf-8").startswith("no run 'no-such-run' under LOGDIR")
    # the JSON routes keep refusing to be framed
    assert "frame-ancestors 'none'" in get(shared_server, "/payload.json?run=no-such-run")[1]["Content-Security-Policy"]


@pytest.mark.parametrize("host", ["127.0.0.1:80@evil.example", "localhost:evil.example", "localhost:", "[::1]x"])
def test_host_with_a_port_that_is_not_a_number_is_refused(shared_server, host):
    assert get(shared_server, "/runs.json", host=host)[0] == 403


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:8787", "[::1]:8787", "[::1]"])
def test_loopback_hosts_still_answered(shared_server, host):
    assert get(shared_server, "/runs.json", host=host)[0] == 200


def test_a_client_that_never_sends_is_dropped(shared_server, monkeypatch):
    """A connection that sends nothing held its thread forever (no timeout): now it is closed."""
    monkeypatch.setattr(shared_server, "request_timeout", 0.5)
    h, p = shared_server.server_address[:2]
    with socket.create_connection((h, p), timeout=10) as s:
        s.sendall(b"GET /runs.json HTTP/1.1\r\nHo")
        t0 = time.monotonic()
        assert s.recv(100) == b""  # the server closed it
        assert time.monotonic() - t0 < 5


def test_port_in_use_says_which_and_what_to_do(tmp_path):
    from epochscope.serve import serve

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError) as info:
            serve(tmp_path, port=port, method="pca")
    message = str(info.value)
    assert info.value.errno == errno.EADDRINUSE
    assert f"port {port}" in message and "--port" in message and "\n" not in message


def test_a_run_replaced_by_another_with_the_same_epochs_is_mapped_again(logdir, live_server, tmp_path):
    """`rm -r a; mv new a` (a run recorded again, or copied in) with the same epoch list kept the old
    run's maps in the page forever: the server compared only the epoch lists."""
    import json
    import os
    import shutil

    import numpy as np
    from serveruns import make_run
    from test_app import wait_ready

    import epochscope

    server = live_server(logdir)
    wait_ready(server, ["a"])
    before = json.loads(get(server, "/runs.json")[2])["runs"][0]["version"]
    new = make_run(tmp_path / "new", 4, seed=9)
    shutil.rmtree(logdir / "a")
    os.rename(new, logdir / "a")
    expected = epochscope.embed(epochscope.open_run(logdir / "a"), "hidden", "pca", progress=False)
    # (the walk may catch the old run half deleted by rmtree and map that first: wait for the new maps)
    t0 = time.monotonic()
    while True:
        try:
            maps, version, _ = server.embedder.shown("a")
        except KeyError:  # the walk saw the gap between rmtree and rename
            maps, version = None, 0
        same = maps is not None and maps.coords.shape == expected.coords.shape
        if version > before and same and np.allclose(maps.coords, expected.coords, atol=1e-5):
            break
        assert time.monotonic() - t0 < 20, "the replaced run was never mapped again"
        time.sleep(0.1)
    assert json.loads(get(server, "/runs.json")[2])["runs"][0]["version"] == version


def test_too_many_query_fields_is_a_bad_request_not_a_crash(shared_server):
    """parse_qs's field limit raised ValueError: a 500 and a traceback in the terminal."""
    status, _, body = get(shared_server, "/payload.json?" + "&".join(["run=a"] * 40))
    assert status == 400 and b"fields" in body


def test_a_run_deleted_and_made_again_never_repeats_a_version(logdir, tmp_path):
    """When the walk saw the run gone, its state was dropped and the new run's versions restarted at 1:
    the page's token ("1") and the server's payload cache (keyed by versions) then gave the old data."""
    import shutil

    import numpy as np
    from serveruns import make_run

    import epochscope
    from epochscope.serve import Embedder

    embedder = Embedder(logdir, method="pca")
    while embedder.step():
        pass
    old = embedder.shown("a")[1]
    assert old >= 1
    shutil.rmtree(logdir / "a")
    embedder.step()
    assert "a" not in embedder.listed()
    make_run(logdir / "a", 4, seed=9)
    while embedder.step():
        pass
    maps, version, _ = embedder.shown("a")
    assert version > old
    expected = epochscope.embed(epochscope.open_run(logdir / "a"), "hidden", "pca", progress=False)
    np.testing.assert_allclose(maps.coords, expected.coords, atol=1e-5)
