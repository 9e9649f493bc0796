"""``epochscope serve`` on the command line: options, errors, the warning for a non-local address."""

from __future__ import annotations

import threading

import pytest

from epochscope.cli import build_parser, main


def test_defaults():
    args = build_parser().parse_args(["serve", "runs"])
    assert (args.logdir, args.port, args.host, args.method, args.layer) == ("runs", 8787, "127.0.0.1", "umap", None)


def test_missing_logdir_is_one_line_and_status_2(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nothere"), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err and "LOGDIR" in err


def test_bad_options_fail_before_listening(tmp_path, capsys):
    assert main(["serve", str(tmp_path), "--port", "70000"]) == 2
    assert "port" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--max-points", "0"]) == 2


def test_a_non_local_address_is_warned_about(tmp_path, capsys, monkeypatch):
    import epochscope.serve as serve_mod

    seen = {}
    monkeypatch.setattr(serve_mod, "serve", lambda logdir, **kw: seen.update(kw))
    assert main(["serve", str(tmp_path), "--host", "0.0.0.0"]) == 0
    assert "WARNING" in capsys.readouterr().err and seen["host"] == "0.0.0.0"
    assert main(["serve", str(tmp_path)]) == 0
    assert "WARNING" not in capsys.readouterr().err


@pytest.mark.parametrize("host,local", [("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
                                        ("0.0.0.0", False), ("192.168.1.5", False), ("example.com", False)])
def test_is_loopback(host, local):
    from epochscope.serve import is_loopback

    assert is_loopback(host) is local


def test_progress_observer_sees_every_step():
    from epochscope._progress import observe, progress

    seen = []
    with observe(lambda desc, done, total: seen.append((desc, done, total))):
        assert list(progress(range(3), desc="x", enabled=False)) == [0, 1, 2]
    assert seen == [("x", 0, 3), ("x", 1, 3), ("x", 2, 3), ("x", 3, 3)]
    assert list(progress(range(2), desc="y", enabled=False)) == [0, 1] and len(seen) == 4  # none outside the block


def test_ctrl_c_stops_it_even_when_the_launcher_ignored_sigint(logdir):
    """A process started with SIGINT ignored (a library of the launching process had set that;
    children inherit it) got no KeyboardInterrupt: "Ctrl-C stops it" was false and serve ran on."""
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "epochscope", "serve", str(logdir), "--port", "0", "--method", "pca"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert "Ctrl-C stops it" in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "stopped" in out


def test_a_server_on_every_interface_prints_an_address_a_browser_opens(tmp_path):
    # "http://0.0.0.0:8787/" was printed: not an address a browser can open on every system.
    import urllib.request

    from epochscope.serve import Embedder, LiveServer

    server = LiveServer(tmp_path, "0.0.0.0", 0, Embedder(tmp_path, method="pca", scan_seconds=0.2))
    try:
        assert server.every_interface and server.url.startswith("http://127.0.0.1:")
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with urllib.request.urlopen(server.url + "runs.json", timeout=30) as reply:
            assert reply.status == 200
    finally:
        server.shutdown()
        server.server_close()
    local = LiveServer(tmp_path, "127.0.0.1", 0, Embedder(tmp_path, method="pca", scan_seconds=0.2))
    try:
        assert not local.every_interface and local.url == f"http://127.0.0.1:{local.server_address[1]}/"
    finally:
        local.server_close()
