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
