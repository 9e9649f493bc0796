"""Open a report in headless Chromium (Debian's ``chromium`` driven by Playwright).

For the browser tests and the report benchmark, not for users. Playwright's own browser
download does not work on every machine, so this drives the system's Chromium.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["CHROMIUM_ARGS", "chromium_path", "unavailable_reason", "chromium_context"]

# Quiet, offline, reproducible: no background services that would make requests.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str | None:
    """The system Chromium (``$EPOCHSCOPE_CHROMIUM``, else ``chromium`` / ``chromium-browser`` on PATH)."""
    given = os.environ.get("EPOCHSCOPE_CHROMIUM")
    if given:
        return given if os.path.exists(given) else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def unavailable_reason() -> str | None:
    """Why a headless browser cannot be driven here, or ``None`` when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install 'epochscope[test]')"
    if chromium_path() is None:
        return "no chromium on PATH (run scripts/install-browser.sh as root, or set EPOCHSCOPE_CHROMIUM)"
    return None


@contextmanager
def chromium_context(*, width: int = 1400, height: int = 900) -> Iterator[Any]:
    """A Playwright browser context on a fresh profile; closed (and the profile removed) on exit.

    Example::

        with chromium_context() as ctx:
            page = ctx.new_page()
            page.goto(Path("report.html").resolve().as_uri())
    """
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="epochscope-chromium-")
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                profile, executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS,
                viewport={"width": width, "height": height},
            )
            try:
                yield ctx
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
