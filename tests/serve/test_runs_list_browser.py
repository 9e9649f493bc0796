"""The live view's runs list in headless Chromium: it is not rebuilt while nothing changed."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_the_runs_list_keeps_focus_and_ticks_while_nothing_changes(shared_server, browser_context):
    """The list was rebuilt every second: a ticked box's keyboard focus was lost and a click that
    spanned a redraw landed on a detached button. With nothing new, the rows stay the same nodes."""
    page = browser_context.new_page()
    page.set_viewport_size({"width": 1300, "height": 1000})
    try:
        page.goto(shared_server.url)
        page.wait_for_function("() => document.querySelectorAll('#runs tr').length === 2", timeout=30000)
        page.wait_for_timeout(1500)
        box = page.locator("#runs input[type=checkbox]").first
        box.focus()
        page.keyboard.press("Space")
        page.evaluate("() => { window.firstRow = document.querySelector('#runs tr'); }")
        page.wait_for_timeout(2500)  # two polls or more
        assert page.evaluate("() => document.activeElement && document.activeElement.type") == "checkbox"
        assert page.evaluate("() => window.firstRow === document.querySelector('#runs tr')")
        assert page.locator("#runs input[type=checkbox]").first.is_checked()
    finally:
        page.close()


def _shown(page) -> list[str]:
    """The runs whose viewers the page shows (each frame's title is its run's path)."""
    return page.evaluate("() => Array.from(document.querySelectorAll('#view iframe')).map((f) => f.title)")


def _wait_shown(page, paths: list[str]) -> None:
    page.wait_for_function("(want) => JSON.stringify(Array.from(document.querySelectorAll('#view iframe'))"
                           ".map((f) => f.title)) === JSON.stringify(want)", arg=paths, timeout=30000)
    current = page.evaluate("() => Array.from(document.querySelectorAll('#runs tr.current')).map((r) => r.dataset.path)")
    assert current == paths


def test_the_page_follows_its_address(shared_server, browser_context):
    """The page read its address (#run=...) once, at load: editing the hash, or going back and forward,
    changed the address but not the run shown. It follows the hash now, and each run chosen in the
    list is a step that Back returns from."""
    page = browser_context.new_page()
    page.set_viewport_size({"width": 1300, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(shared_server.url + "#run=a")
        _wait_shown(page, ["a"])
        page.evaluate("() => { window.location.hash = '#run=sweep%2Fb'; }")  # the user edits the address
        _wait_shown(page, ["sweep/b"])
        page.go_back()
        _wait_shown(page, ["a"])
        page.go_forward()
        _wait_shown(page, ["sweep/b"])
        page.evaluate("() => { window.location.hash = '#run=a&run=sweep%2Fb'; }")  # side by side
        _wait_shown(page, ["a", "sweep/b"])
        # A choice in the list changes the address, and Back goes to what was shown before it.
        page.get_by_role("button", name="a", exact=True).click()
        _wait_shown(page, ["a"])
        assert page.evaluate("() => window.location.hash") == "#run=a"
        page.go_back()
        _wait_shown(page, ["a", "sweep/b"])
        assert errors == []
    finally:
        page.close()


def test_the_runs_list_shows_the_warning_check_gives(logdir, live_server, browser_context, tmp_path):
    """A run shown with an epoch folder that is a link (left out of its pictures) says so in the list."""
    import shutil

    run = logdir / "a"
    shutil.move(run / "epochs" / "000002", tmp_path / "elsewhere")
    (run / "epochs" / "000002").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    server = live_server(logdir)
    page = browser_context.new_page()
    try:
        page.goto(server.url)
        page.wait_for_function("() => document.querySelector('#runs .warning')", timeout=30000)
        text = page.locator("#runs .warning").inner_text()
        assert "a/epochs/000002: a link" in text and "readers skip it" in text and "epochscope check LOGDIR/a" in text
        assert page.locator("#runs .warning").count() == 1  # run sweep/b is healthy
    finally:
        page.close()
