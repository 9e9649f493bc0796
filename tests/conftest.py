"""Shared fixtures. Environment set here, before any test imports torch or matplotlib."""

from __future__ import annotations

import os

# torch's OpenMP threads busy-wait by default and crawl when another process shares the cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("KERAS_BACKEND", "torch")

from pathlib import Path

import pytest
from synthetic import make_synthetic_run


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture
def synthetic_run(tmp_path: Path) -> Path:
    """Path of a fresh small synthetic run (3 classes, 5 epochs, layer 'hidden' of width 16)."""
    return make_synthetic_run(tmp_path / "run")


@pytest.fixture(scope="session")
def browser_context():
    """A headless Chromium context (Debian's chromium via Playwright), or a skip saying why not.

    One for the whole session: Playwright's sync API allows one running instance per thread, so the
    report's and the live view's browser tests share it (a page may set its own viewport size)."""
    from epochscope.html.headless import chromium_context, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(f"browser tests need headless Chromium: {reason}")
    with chromium_context() as ctx:
        yield ctx
