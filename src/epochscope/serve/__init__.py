"""``epochscope serve LOGDIR``: a local live view of every run under a folder.

As ``tensorboard --logdir`` does: a runs list, and for each run the report's viewer (map with
hover, curves, confusion matrix, network) that takes in each new epoch within a few seconds,
without a reload and without losing the user's place; two or more runs with the same probe side
by side (epoch cursors linked, maps aligned, curves overlaid).

- :mod:`~epochscope.serve.runs`: the runs under LOGDIR and the one way to name them (path safety);
- :mod:`~epochscope.serve.worker`: the background embedder (one thread, one run at a time);
- :mod:`~epochscope.serve.app`: the HTTP routes, on the standard library's ``ThreadingHTTPServer``;
- ``shell.html`` / ``shell.js``: the page (runs list, frames of the viewers).

Design, safety and why the standard library: docs/serve.md.
"""

from __future__ import annotations

from .app import LiveServer, is_loopback
from .runs import find_runs
from .worker import Embedder

__all__ = ["Embedder", "LiveServer", "find_runs", "is_loopback", "serve"]


def serve(logdir, *, host: str = "127.0.0.1", port: int = 8787, method: str = "umap", layer: str | None = None,
          max_points: int | None = None, test_hook: bool = False, ready=None, **options) -> None:
    """Serve the live view of the runs under ``logdir`` until interrupted (Ctrl-C); see :mod:`epochscope.serve`.

    ``ready(server)`` is called once the socket listens (the command line prints the address there).
    Raises ``ValueError`` when ``logdir`` is not a folder, ``OSError`` when the port cannot be bound (a port in
    use: one line naming it, with what to do).

    Example::

        from epochscope.serve import serve
        serve("runs", method="pca")      # then open http://127.0.0.1:8787/
    """
    import errno
    import os
    from pathlib import Path

    folder = Path(logdir)
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise ValueError(f"LOGDIR {str(folder)!r} {what}; give the folder that holds your runs (e.g. runs/)")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be a whole number from 0 to 65535, got {port!r}; e.g. port=8787")
    from ..maps.api import method_settings

    method_settings(method, options)  # an unknown method or option fails now, not in the background
    embedder = Embedder(os.fspath(folder), method=method, layer=layer, options=options)
    try:
        server = LiveServer(folder, host, port, embedder, max_points=max_points, test_hook=test_hook)
    except OSError as err:
        if err.errno != errno.EADDRINUSE:
            raise
        raise OSError(err.errno, f"port {port} on {host} is already in use (another epochscope serve?); pick a free "
                                 f"one with --port, e.g. --port {port + 1 if port < 65535 else 8787}, or --port 0 for any "
                                 "free port") from err
    try:
        server.start()
        if ready is not None:
            ready(server)
        server.serve_forever(poll_interval=0.2)
    finally:
        server.close()
