"""The HTTP side of ``epochscope serve``: a few fixed routes on the standard library's server.

Routes (GET only; anything else is 404, or 405 for another method):

- ``/``: the page: the runs list and the chosen run(s)' viewers (``shell.html`` + ``shell.js``);
- ``/runs.json``: every run's name, path relative to LOGDIR, layers, epochs, the epochs mapped,
  its state (progress, or its one-line error) and ``version`` (what the pages poll);
- ``/view?run=P[&run=Q...]&i=K``: the report viewer of the K-th of those runs (several runs: side
  by side, aligned to the first), with ``viewer/live.js``, which swaps newer data in;
- ``/payload.json?run=P[&run=Q...]&i=K``: the data that viewer shows.

No route maps a request path to a file: a run is named by its path relative to LOGDIR and must be
one the server listed itself (:mod:`epochscope.serve.runs`). Every answer carries a
Content-Security-Policy, ``nosniff`` and ``no-store``; with a loopback address, requests whose
``Host`` is not a loopback name are refused (a web page cannot reach the server by DNS rebinding).
"""

from __future__ import annotations

import base64
import hashlib
import html
import ipaddress
import logging
import os
import threading
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from .._errors import RunError
from .._text import printable
from ..html.encode import script_json
from .runs import UnsafeNameError, relative_paths, run_folder
from .worker import Embedder, one_line

__all__ = ["LiveServer", "POLL_MS", "is_loopback"]

log = logging.getLogger("epochscope")

#: How often the pages ask for news (milliseconds).
POLL_MS = 1000
#: Payloads kept ready (each is a few KB to a few MB).
_CACHE_ENTRIES = 8
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
#: Seconds a connection may stay silent (a client that connects and never sends holds a thread until then).
REQUEST_TIMEOUT = 60.0


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) stays on this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host.lower() in _LOOPBACK_NAMES or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _asset(name: str) -> str:
    return resources.files("epochscope.serve").joinpath(name).read_text(encoding="utf-8")


def shell_script() -> str:
    """The page's script: ``shell.js`` with the report viewer's ``visible()`` (``html/viewer/text.js``) joined
    in where it says so, one copy for both pages."""
    from ..html.page import viewer_asset

    return _asset("shell.js").replace("/* __VIEWER_TEXT__ */", viewer_asset("text.js"), 1)


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


class _Failure(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class LiveServer(ThreadingHTTPServer):
    """The server: :class:`http.server.ThreadingHTTPServer` with the embedder beside it.

    Parameters
    ----------
    logdir : the folder of runs.
    host, port : where to listen (``port=0`` picks a free port; :attr:`url` says which).
    embedder : the background :class:`~epochscope.serve.worker.Embedder` (started by :meth:`start`).
    max_points : show at most this many probe (and test) points per run (``None``: all).
    test_hook : add ``window.epochscope`` to the viewer pages (for the browser tests).

    Example::

        server = LiveServer("runs", "127.0.0.1", 8787, Embedder("runs", method="pca"))
        server.start(); server.serve_forever()
    """

    daemon_threads = True
    allow_reuse_address = True
    #: Seconds a connection may stay silent before it is closed (the pages poll every second).
    request_timeout = REQUEST_TIMEOUT

    def __init__(self, logdir, host: str, port: int, embedder: Embedder, *, max_points: int | None = None,
                 test_hook: bool = False) -> None:
        self.logdir = Path(os.path.abspath(logdir))
        self.embedder = embedder
        self.max_points = max_points
        self.test_hook = test_hook
        self.loopback = is_loopback(host)
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._build_lock = threading.Lock()
        self.shell_script = shell_script()
        self.shell_page = _asset("shell.html").replace("__SCRIPT__", self.shell_script)
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        """``http://host:port/`` of the listening socket; for a server listening on every interface
        (``0.0.0.0``, ``::``, which a browser cannot open everywhere) its loopback address."""
        host, port = self.server_address[:2]
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(str(host), host)
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}/"

    @property
    def every_interface(self) -> bool:
        """Whether the server listens on every network interface (bound to ``0.0.0.0`` or ``::``)."""
        return str(self.server_address[0]) in ("0.0.0.0", "::")

    def handle_error(self, request, client_address) -> None:
        """A browser closing a kept-alive connection is not an error (socketserver would print a traceback)."""
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, TimeoutError)):
            return
        log.exception("serve: a request from %s failed", client_address[0])

    def start(self) -> None:
        """Start the embedder (the caller then runs :meth:`serve_forever`)."""
        self.embedder.start()

    def close(self) -> None:
        """Stop the embedder and close the socket (the embedding in progress, if any, is abandoned)."""
        self.embedder.stop()
        self.server_close()

    # ---------------------------------------------------------------- answers
    def runs_json(self) -> dict[str, Any]:
        # LOGDIR by its folder's name: where it lies on this machine is none of a page's business.
        return {"logdir": self.logdir.name or str(self.logdir), "method": self.embedder.method,
                "runs": self.embedder.snapshot()}

    def error_line(self, err: BaseException) -> str:
        """``err`` as the one line an answer carries: paths relative to LOGDIR, none outside it."""
        return printable(relative_paths(one_line(err), self.logdir))

    def group(self, query: dict[str, list[str]]) -> tuple[list[str], int]:
        names = query.get("run", [])
        if not names:
            raise _Failure(HTTPStatus.BAD_REQUEST, "name a run: ?run=PATH (its path relative to LOGDIR, from /runs.json)")
        if len(names) > 8:
            raise _Failure(HTTPStatus.BAD_REQUEST, "at most 8 runs side by side")
        listed = self.embedder.listed()
        for name in names:
            try:
                run_folder(self.logdir, name, listed)
            except UnsafeNameError as err:
                raise _Failure(HTTPStatus.BAD_REQUEST, str(err)) from None
            except KeyError:
                raise _Failure(HTTPStatus.NOT_FOUND, f"no run {name!r} under LOGDIR (see /runs.json)") from None
            except PermissionError as err:
                raise _Failure(HTTPStatus.FORBIDDEN, f"{name!r}: {printable(err)}") from None
        if len(set(names)) != len(names):
            raise _Failure(HTTPStatus.BAD_REQUEST, "a run is named twice")
        try:
            index = int(query.get("i", ["0"])[0])
        except ValueError:
            raise _Failure(HTTPStatus.BAD_REQUEST, "i must be a whole number") from None
        if not 0 <= index < len(names):
            raise _Failure(HTTPStatus.BAD_REQUEST, f"i must be between 0 and {len(names) - 1}")
        return names, index

    def payload(self, names: list[str], index: int) -> dict[str, Any]:
        """The viewer's data for run ``names[index]`` (side by side with the others when several)."""
        from ..html.compare import compare_payloads
        from ..run import open_run

        shown = []
        for name in names:
            try:
                maps, version, state = self.embedder.shown(name)
            except KeyError:
                raise _Failure(HTTPStatus.NOT_FOUND, f"no run {name!r} under LOGDIR") from None
            if version == 0 or state.damage is not None:  # not mapped yet, damaged, or unreadable now
                raise _Failure(HTTPStatus.SERVICE_UNAVAILABLE, f"{printable(name)}: {state.error or state.status}")
            shown.append((name, maps, version, state))
        key = (tuple(names), tuple(v for _, _, v, _ in shown))
        with self._build_lock:  # one build at a time; a second request for the same data finds it ready
            payloads = self._cache.get(key)
            if payloads is None:
                try:
                    runs = [open_run(run_folder(self.logdir, name, self.embedder.listed())) for name in names]
                    if len(names) == 1:
                        payloads = [self._build(runs[0], shown[0][1], shown[0][3])]
                    else:
                        payloads = compare_payloads(runs, [m for _, m, _, _ in shown],
                                                    lambda run, m: self._build(run, m, None),
                                                    names=[printable(n) for n in names])
                except RunError as err:  # damaged since the last walk (which will list it so): not shown
                    raise _Failure(HTTPStatus.SERVICE_UNAVAILABLE, self.error_line(err)) from None
                except (ValueError, OSError, KeyError, PermissionError) as err:
                    raise _Failure(HTTPStatus.CONFLICT if isinstance(err, ValueError) else HTTPStatus.NOT_FOUND,
                                   self.error_line(err)) from None
                except Exception as err:  # noqa: BLE001 (a run that cannot be read is one line, the server goes on)
                    raise _Failure(HTTPStatus.INTERNAL_SERVER_ERROR, self.error_line(err)) from None
                self._cache[key] = payloads
                while len(self._cache) > _CACHE_ENTRIES:
                    self._cache.popitem(last=False)
            self._cache.move_to_end(key)
        payload = dict(payloads[index])
        query = urlencode([("run", n) for n in names] + [("i", str(index))])
        payload["live"] = {"runs": names, "token": ",".join(str(v) for v in key[1]), "poll": POLL_MS,
                           "payload": f"/payload.json?{query}"}
        return payload

    def _build(self, run, maps, state) -> dict[str, Any]:
        from ..html.network import network_payload
        from ..html.payload import build_payload

        epochs = list(maps.epochs) if maps is not None else run.epochs
        layer = maps.layer if maps is not None else None
        payload = build_payload(run, maps, layer=layer, method=self.embedder.method, max_points=self.max_points,
                                network=network_payload(run, epochs), paths_from=self.logdir)
        # The run's name and title as the list shows them: control characters escaped.
        payload["runName"], payload["title"] = printable(payload["runName"]), printable(payload["title"])
        # Where the run lies, and the reader's errors quoted in the notes, relative to LOGDIR (they held
        # the full paths of this machine).
        here = lambda text: printable(relative_paths(str(text), self.logdir))  # noqa: E731
        payload["info"] = {**payload["info"], "run": here(run.path)}
        payload["skipped"] = {k: here(v) for k, v in payload["skipped"].items()}
        payload["skippedNote"] = here(payload["skippedNote"])
        if payload.get("network") and payload["network"].get("note"):
            payload["network"] = {**payload["network"], "note": here(payload["network"]["note"])}
        return payload

    def view_page(self, names: list[str], index: int) -> str:
        from ..html.page import render_page

        return render_page(self.payload(names, index), test_hook=self.test_hook, live=True, linked=len(names) > 1)


class _Handler(BaseHTTPRequestHandler):
    server: LiveServer
    server_version = "epochscope"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        # Without a timeout, a client that connects and never sends keeps its thread forever.
        self.timeout = self.server.request_timeout
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the standard library's name)
        log.debug("serve: %s %s", self.address_string(), printable(format % args))

    def _send(self, status: HTTPStatus, body: bytes, ctype: str, csp: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", csp)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, data: Any) -> None:
        # As inside the report's page: '<', '>' and '&' escaped too, so no answer holds markup at all.
        body = script_json(data).encode("ascii")
        self._send(status, body, "application/json", "default-src 'none'; frame-ancestors 'none'")

    def _fail(self, err: _Failure) -> None:
        err.message = printable(err.message)  # a name, a route or an error from a run: never a control character
        if urlsplit(self.path).path == "/view":
            # /view opens in the page's frame: its error is plain text the frame may show (JSON's
            # frame-ancestors 'none' made Chromium block it, and the user saw a broken frame).
            self._send(err.status, (err.message + "\n").encode("utf-8"), "text/plain; charset=utf-8",
                       "default-src 'none'; frame-ancestors 'self'")
            return
        self._json(err.status, {"error": err.message})

    def _host_ok(self) -> bool:
        if not self.server.loopback:
            return True
        host = self.headers.get("Host", "")
        name, colon, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if not colon:
            name = host
        elif not port.isascii() or not port.isdigit():  # "127.0.0.1:80@evil.example" is no port
            return False
        return is_loopback(name)

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        try:
            if not self._host_ok():
                raise _Failure(HTTPStatus.FORBIDDEN, "this server answers only requests to localhost / 127.0.0.1")
            parts = urlsplit(self.path)
            try:
                query = parse_qs(parts.query, keep_blank_values=True, max_num_fields=32)
            except ValueError:  # more fields than allowed: the caller's mistake, not the server's
                raise _Failure(HTTPStatus.BAD_REQUEST, "too many query fields (at most 32)") from None
            route = parts.path
            if route == "/":
                csp = (f"default-src 'none'; script-src '{_sha256(self.server.shell_script)}'; style-src 'unsafe-inline'; "
                       "connect-src 'self'; frame-src 'self'; img-src data:; frame-ancestors 'none'")
                self._send(HTTPStatus.OK, self.server.shell_page.encode("utf-8"), "text/html; charset=utf-8", csp)
            elif route == "/runs.json":
                self._json(HTTPStatus.OK, self.server.runs_json())
            elif route == "/payload.json":
                names, index = self.server.group(query)
                self._json(HTTPStatus.OK, self.server.payload(names, index))
            elif route == "/view":
                names, index = self.server.group(query)
                page = self.server.view_page(names, index)
                # The page's own policy (a <meta>, by script hash) applies too; this one adds who may frame it.
                self._send(HTTPStatus.OK, page.encode("utf-8"), "text/html; charset=utf-8",
                           "frame-ancestors 'self'; base-uri 'none'; form-action 'none'")
            else:
                raise _Failure(HTTPStatus.NOT_FOUND, f"no such page: {html.escape(route[:200])}; the runs are listed at /")
        except _Failure as err:
            self._fail(err)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as err:  # noqa: BLE001 (one failed request must not stop the server)
            log.exception("serve: %s failed", printable(self.path[:200]))
            self._fail(_Failure(HTTPStatus.INTERNAL_SERVER_ERROR, self.server.error_line(err)))

    do_HEAD = do_GET

    def _refuse(self) -> None:
        self._fail(_Failure(HTTPStatus.METHOD_NOT_ALLOWED, "only GET is served"))

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse
