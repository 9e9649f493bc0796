"""Progress on stderr (issue 15): lines in a log, even while the first item is still running; nothing
for short steps; nothing at all when disabled."""

from __future__ import annotations

import time

import epochscope._progress as progress_module
from epochscope._progress import progress, task


def slow_items(n: int, first: float):
    for i in range(n):
        time.sleep(first if i == 0 else 0.0)
        yield i


def test_a_long_first_item_still_shows_progress(capsys, monkeypatch):
    monkeypatch.setattr(progress_module, "DELAY", 0.1)
    monkeypatch.setattr(progress_module, "_interactive", lambda: False)
    seen_while_working = []
    for i in progress(slow_items(3, first=0.8), desc="umap hidden", total=3):
        if i == 0:
            seen_while_working.append(capsys.readouterr().err)
    err = capsys.readouterr().err
    assert "umap hidden: 0/3" in seen_while_working[0]  # printed by the timer while item 0 ran
    assert err.strip().splitlines()[-1].startswith("umap hidden: 3/3 (done in")


def test_short_steps_and_disabled_progress_print_nothing(capsys, monkeypatch):
    monkeypatch.setattr(progress_module, "_interactive", lambda: False)
    assert list(progress(range(5), desc="quick")) == list(range(5))  # well under DELAY
    assert list(progress(slow_items(2, first=0.3), desc="off", enabled=False)) == [0, 1]
    assert capsys.readouterr().err == ""


def test_a_task_without_counts(capsys, monkeypatch):
    monkeypatch.setattr(progress_module, "DELAY", 0.05)
    with task("writing report.html"):
        time.sleep(0.4)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("writing report.html: ") and lines[-1].startswith("writing report.html: done in")
