"""Fixtures for the serve tests: a folder of tiny runs and a server on a free port, in this process."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

# tests/serve is not a package; its helper module is put on the path here (as tests/html does).
sys.path.insert(0, str(Path(__file__).parent))
from serveruns import make_run, rotation  # noqa: E402


@pytest.fixture
def logdir(tmp_path) -> Path:
    root = tmp_path / "logs"
    make_run(root / "a", 4)
    make_run(root / "sweep" / "b", 5, transform=rotation())
    return root


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server, for the tests that only read, over runs "a" (4 epochs) and "sweep/b" (5), both mapped."""
    import json
    import time
    import urllib.request

    from epochscope.serve import Embedder, LiveServer

    root = tmp_path_factory.mktemp("shared") / "logs"
    make_run(root / "a", 4)
    make_run(root / "sweep" / "b", 5, transform=rotation())
    server = LiveServer(root, "127.0.0.1", 0, Embedder(root, method="pca", scan_seconds=0.2))
    server.start()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    t0 = time.monotonic()
    while not all(r["ready"] for r in json.load(urllib.request.urlopen(server.url + "runs.json"))["runs"]):
        assert time.monotonic() - t0 < 60
        time.sleep(0.1)
    yield server
    server.shutdown()
    server.close()
    thread.join(5)


@pytest.fixture
def live_server():
    """``start(logdir, **kw)`` -> a running :class:`LiveServer` (stopped at the end of the test)."""
    from epochscope.serve import Embedder, LiveServer

    started = []

    def start(root: Path, *, method: str = "pca", **kw) -> LiveServer:
        server = LiveServer(root, "127.0.0.1", 0, Embedder(root, method=method, scan_seconds=0.2), **kw)
        server.start()
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        started.append((server, thread))
        return server

    yield start
    for server, thread in started:
        server.shutdown()
        server.close()
        thread.join(5)
