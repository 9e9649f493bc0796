"""Turn a report payload into one self-contained HTML page (the viewer's files inlined).

The page carries a Content-Security-Policy that allows no network address at all and only
the one inline script whose hash it names, so even a text that slipped past escaping could
neither run a script nor make a request.
"""

from __future__ import annotations

import base64
import hashlib
import html
from importlib import resources
from typing import Any

from .encode import script_json

__all__ = ["render_page"]


def _asset(name: str) -> str:
    return resources.files("epochscope.html").joinpath(name).read_text(encoding="utf-8")


def render_page(payload: dict[str, Any]) -> str:
    """The report page for ``payload`` (from :func:`epochscope.html.payload.build_payload`).

    >>> page = render_page(payload)  # doctest: +SKIP
    >>> page.startswith("<!DOCTYPE html>")  # doctest: +SKIP
    True
    """
    from .. import __version__

    script = _asset("viewer.js")
    style = _asset("viewer.css")
    if "</script" in script.lower() or "</style" in style.lower():
        raise RuntimeError("viewer assets must not contain '</script' or '</style'")  # would end the element early
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    info = payload.get("info", {})
    title = f"epochscope: {payload.get('title', '')} — {info.get('layer', '')}"
    # One pass over the template, so a placeholder-like text inside the data is never replaced again.
    parts = {
        "__SCRIPT_HASH__": f"sha256-{digest}",
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
