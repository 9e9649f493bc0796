"""Fixtures for the report tests: a hand-made run and maps, and a headless Chromium."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/html cannot be imported as a package ("html" is the standard library's), so its
# helper module is put on the path here.
sys.path.insert(0, str(Path(__file__).parent))
from reportdata import XSS_LAYER, make_maps, make_report_run  # noqa: E402

from epochscope.run import open_run  # noqa: E402


@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
    """(run, maps) of a small run with image inputs and markup-like class names."""
    run = open_run(make_report_run(tmp_path_factory.mktemp("report") / "run"))
    return run, make_maps(run)


@pytest.fixture(scope="module")
def report_file(report_run, tmp_path_factory) -> Path:
    from epochscope.html.report import write_report

    run, maps = report_run
    return write_report(run, maps, tmp_path_factory.mktemp("html") / "report.html", layer=XSS_LAYER, method="fake",
                        test_hook=True)


@pytest.fixture(scope="module")
def plain_report_file(report_run, tmp_path_factory) -> Path:
    """The same report as a person gets it: without the test hook."""
    from epochscope.html.report import write_report

    run, maps = report_run
    return write_report(run, maps, tmp_path_factory.mktemp("html") / "plain.html", layer=XSS_LAYER, method="fake")


class OpenedReport:
    """A report page with every request, console message and page error recorded."""

    def __init__(self, ctx, path: Path, *, hook: bool = True) -> None:
        self.page = ctx.new_page()
        self.requests: list[str] = []
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

        def dismiss(dialog):
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", dismiss)
        self.page.goto(path.resolve().as_uri())
        if hook:
            self.page.evaluate("window.epochscope.ready")

    def js(self, expr: str, arg=None):
        return self.page.evaluate(expr, arg)

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def open_report(browser_context):
    opened = []

    def _open(path: Path, *, hook: bool = True) -> OpenedReport:
        page = OpenedReport(browser_context, path, hook=hook)
        opened.append(page)
        return page

    yield _open
    for page in opened:
        page.close()
