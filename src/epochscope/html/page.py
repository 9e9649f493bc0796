"""Turn a report payload into one self-contained HTML page (the viewer's files inlined).

The viewer is a few small scripts in ``viewer/``, each with one job; they are joined here, in
the fixed order of :data:`VIEWER_MODULES`, inside one function scope, into the page's one
inline script. The page carries a Content-Security-Policy that allows no network address at
all and only that script, by its SHA-256 hash, so even a text that slipped past escaping
could neither run a script nor make a request.
"""

from __future__ import annotations

import base64
import hashlib
import html
from importlib import resources
from typing import Any

from .._text import printable
from .encode import script_json

__all__ = ["render_page", "viewer_asset", "viewer_script", "VIEWER_MODULES", "TEST_HOOK_MODULE", "LIVE_MODULE", "LINK_MODULE"]

#: The viewer's scripts in the order they are joined: each may use what the ones before it define
#: (``main.js`` starts the viewer, so it comes after every module it calls).
VIEWER_MODULES = ("text.js", "state.js", "unpack.js", "map.js", "hover.js", "curves.js", "panels.js", "controls.js", "main.js")
#: ``window.epochscope``, the scripting API of the browser tests and the benchmark; only in test reports.
TEST_HOOK_MODULE = "testhook.js"
#: Swaps in newer data of the same run without a reload (pages served by ``epochscope serve``).
LIVE_MODULE = "live.js"
#: Links the epoch cursor with the other runs shown side by side (through the parent page's messages).
LINK_MODULE = "link.js"
_OPTIONAL_MODULES = (LIVE_MODULE, LINK_MODULE)

_PROLOGUE = ("// epochscope report viewer: a small canvas viewer with no dependencies, joined from\n"
             "// epochscope/html/viewer/*.js. Every text from the run is set with textContent (never\n"
             "// innerHTML), so names cannot inject markup.\n"
             '(() => {\n"use strict";\n')
_EPILOGUE = "})();\n"


def _asset(name: str) -> str:
    return resources.files("epochscope.html").joinpath(name).read_text(encoding="utf-8")


def viewer_asset(name: str) -> str:
    """The text of one of the viewer's scripts (``viewer/NAME``), e.g. ``text.js`` for ``epochscope serve``'s page."""
    return _asset(f"viewer/{name}")


def viewer_script(*, test_hook: bool = False, live: bool = False, linked: bool = False) -> str:
    """The viewer's inline script: the modules of :data:`VIEWER_MODULES` joined in order in one
    function scope, then :data:`LIVE_MODULE` when ``live``, :data:`LINK_MODULE` when ``linked``
    and :data:`TEST_HOOK_MODULE` when ``test_hook`` is true."""
    extra = tuple(name for name, on in ((LIVE_MODULE, live), (LINK_MODULE, linked)) if on)
    names = VIEWER_MODULES + extra + ((TEST_HOOK_MODULE,) if test_hook else ())
    parts = [f"\n// ---- viewer/{name}\n{_asset(f'viewer/{name}')}" for name in names]
    return _PROLOGUE + "".join(parts) + _EPILOGUE


def render_page(payload: dict[str, Any], *, test_hook: bool = False, live: bool = False, linked: bool = False) -> str:
    """The report page for ``payload`` (from :func:`epochscope.html.payload.build_payload`).

    ``test_hook`` adds ``window.epochscope`` (see ``viewer/testhook.js``), the API the browser
    tests and ``benchmarks/bench_report.py`` drive; a report for people leaves it out.
    ``live`` adds ``viewer/live.js`` (the page polls the server it came from for newer data, so
    its policy allows requests to that origin only: ``connect-src 'self'``); ``linked`` adds
    ``viewer/link.js`` (the epoch cursor follows and leads the other runs shown side by side).

    >>> page = render_page(payload)  # doctest: +SKIP
    >>> page.startswith("<!DOCTYPE html>")  # doctest: +SKIP
    True
    """
    from .. import __version__

    script = viewer_script(test_hook=test_hook, live=live, linked=linked)
    style = _asset("viewer.css")
    if "</script" in script.lower() or "</style" in style.lower():
        raise RuntimeError("viewer assets must not contain '</script' or '</style'")  # would end the element early
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    # The title as the viewer shows it (its control characters escaped), before the script sets it.
    title = f"{printable(payload.get('title', ''))} · epochscope report"
    # One pass over the template, so a placeholder-like text inside the data is never replaced again.
    parts = {
        "__SCRIPT_HASH__": f"sha256-{digest}",
        "__CONNECT__": " connect-src 'self';" if live else "",
        "__VERSION__": html.escape(__version__),
        "__TITLE__": html.escape(title),
        "__STYLE__": style,
        "__DATA__": script_json(payload),
        "__SCRIPT__": script,
    }
    template = _asset("viewer.html")
    out = []
    rest = template
    while True:
        hits = [(rest.find(k), k) for k in parts if rest.find(k) >= 0]
        if not hits:
            out.append(rest)
            break
        at, key = min(hits)
        out.append(rest[:at])
        out.append(parts[key])
        rest = rest[at + len(key):]
    return "".join(out)
