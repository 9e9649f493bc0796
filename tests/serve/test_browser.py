"""``epochscope serve`` in a real headless Chromium while another process records.

One server process (the command line, on a free port) over a folder of two tiny runs; a recording
process appends epochs to one of them; the page must show each new epoch within 10 s without a
reload and without losing the user's place. Then the runs list, and two runs side by side with
linked epoch cursors (served, and as a self-contained report file).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from serveruns import make_run, rotation

pytestmark = pytest.mark.browser

HERE = Path(__file__).parent
NEW_EPOCHS = 3


def _start_server(root: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(HERE)) if p)}
    proc = subprocess.Popen([sys.executable, "-m", "epochscope", "serve", str(root), "--port", "0", "--method", "pca",
                             "--test-hook", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
    if not found:
        proc.kill()
        raise AssertionError(f"serve did not start: {line!r} {proc.stderr.read()!r}")
    return proc, found.group(1)


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, out


def _viewer_frames(page, n: int):
    page.wait_for_function(f"() => document.querySelectorAll('#view iframe').length === {n}", timeout=30000)
    deadline = time.monotonic() + 30
    while True:
        frames = [f for f in page.frames if "/view?" in f.url]
        if len(frames) == n:
            break
        assert time.monotonic() < deadline
        page.wait_for_timeout(50)
    order = {f.url: f for f in frames}
    frames = [order[u] for u in sorted(order, key=lambda u: int(re.search(r"[?&]i=(\d+)", u).group(1)))]
    for f in frames:
        f.wait_for_function("() => window.epochscope !== undefined", timeout=30000)
        f.evaluate("window.epochscope.ready")
    return frames


def _page_point(page, frame, i: int, k: int = 0):
    """Page coordinates of probe point ``i`` in the ``k``-th viewer frame."""
    p = frame.evaluate(f"window.epochscope.pointScreenPosition({i})")
    box = page.locator("#view iframe").nth(k).bounding_box()
    return box["x"] + p["x"], box["y"] + p["y"]


def test_live_view_follows_a_recording_process(tmp_path, browser_context):
    root = tmp_path / "logs"
    make_run(root / "a", 4)
    make_run(root / "sweep" / "b", 5, transform=rotation())
    control = tmp_path / "control"
    control.mkdir()
    recorder = subprocess.Popen([sys.executable, str(HERE / "serveruns.py"), str(root / "a"), str(control), str(NEW_EPOCHS)],
                                stdout=subprocess.PIPE, text=True)
    server, url = _start_server(root)
    page = browser_context.new_page()
    page.set_viewport_size({"width": 1300, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (errors.append(f"dialog {d.message}"), d.dismiss()))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(url + "#run=a")
        (frame,) = _viewer_frames(page, 1)
        # The runs list: both runs, by their paths, the markup-like class names only as text.
        page.wait_for_function("() => document.querySelectorAll('#runs tr').length === 2")
        rows = page.inner_text("#runs")
        assert "a" in rows and "sweep/b" in rows and "hidden" in rows
        assert frame.evaluate("window.epochscope.epochs()") == [0, 1, 2, 3]

        # The user's place: epoch 1 (the slider), zoomed in, hovering a point.
        box = frame.locator("#slider").bounding_box()
        frame.locator("#slider").click(position={"x": box["width"] / 3, "y": box["height"] / 2})
        frame.evaluate("window.epochscope.setEpoch(1)")
        assert frame.evaluate("window.epochscope.epoch()") == 1
        frame.locator("#map").hover()
        page.mouse.wheel(0, -200)
        page.wait_for_timeout(100)
        view = frame.evaluate("window.epochscope.view()")
        assert view["k"] > 1
        visible = [i for i in range(60) if frame.evaluate(f"window.epochscope.pointScreenPosition({i})")]
        i = visible[len(visible) // 2]
        page.mouse.move(*_page_point(page, frame, i))
        frame.wait_for_function("() => window.epochscope.hovered() !== null")
        hovered = frame.evaluate("window.epochscope.hovered()")
        assert frame.is_visible("#tooltip") and "label:" in frame.inner_text("#tip-text")

        seconds = []
        for k in range(NEW_EPOCHS):
            (control / "go").touch()
            assert recorder.stdout.readline().strip() == f"wrote {4 + k}"
            t0 = time.monotonic()
            frame.wait_for_function(f"() => window.epochscope.epochs().includes({4 + k})", timeout=10000)
            seconds.append(time.monotonic() - t0)
            # Same page (no reload), same place: epoch, zoom, hovered point.
            assert frame.evaluate("window.epochscope.liveUpdates()") == k + 1
            assert frame.evaluate("window.epochscope.epoch()") == 1
            assert frame.evaluate("window.epochscope.view()") == view
            assert frame.evaluate("window.epochscope.hovered()") == hovered
        print(f"new epoch shown after {', '.join(f'{s:.1f}' for s in seconds)} s")
        assert "live" in frame.inner_text("#live-status")
        # The slider reaches the new epochs; the runs list shows them.
        frame.evaluate("window.epochscope.setEpoch(6)")
        assert frame.evaluate("window.epochscope.epoch()") == 6
        page.wait_for_function("() => document.querySelector('#runs tr').innerText.includes('0–6')")
        # Clicking the other run in the list shows its viewer.
        page.get_by_role("button", name="sweep/b").click()
        (frame_b,) = _viewer_frames(page, 1)
        assert frame_b.evaluate("window.epochscope.epochs()") == [0, 1, 2, 3, 4]
        assert errors == []
        # Nothing outside LOGDIR can be fetched from the page either (the refusals log console errors).
        statuses = page.evaluate("""async () => Promise.all(['/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd',
            '/payload.json?run=..%2F..%2Fetc', '/payload.json?run=%2e%2e%2fa', '/view?run=%2Fetc%2Fpasswd',
            '/a/manifest.json'].map((u) => fetch(u).then((r) => r.status)))""")
        assert statuses == [404, 404, 400, 400, 400, 404], statuses
        assert all(u.startswith((url, "data:", "blob:", "about:")) for u in requests), requests
    finally:
        page.close()
        recorder.kill()
        recorder.wait(10)
        status, out = _stop(server)
    assert status == 0 and "stopped" in out  # Ctrl-C stops cleanly


def test_runs_side_by_side_with_linked_cursors(tmp_path, browser_context):
    root = tmp_path / "logs"
    make_run(root / "relu", 5)
    make_run(root / "sigmoid", 4, transform=rotation())
    server, url = _start_server(root)
    page = browser_context.new_page()
    page.set_viewport_size({"width": 1300, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(url + "#run=relu&run=sigmoid")
        a, b = _viewer_frames(page, 2)
        assert a.evaluate("window.epochscope.epochs()") == [0, 1, 2, 3, 4]
        assert b.evaluate("window.epochscope.epochs()") == [0, 1, 2, 3]
        # Moving one cursor moves the other, both ways; an epoch one run lacks puts it at its nearest.
        a.evaluate("window.epochscope.setEpoch(2)")
        b.wait_for_function("() => window.epochscope.epoch() === 2")
        b.evaluate("window.epochscope.setEpoch(1)")
        a.wait_for_function("() => window.epochscope.epoch() === 1")
        a.evaluate("window.epochscope.setEpoch(4)")
        b.wait_for_function("() => window.epochscope.epoch() === 3")
        page.wait_for_timeout(300)
        assert a.evaluate("window.epochscope.epoch()") == 4  # not pulled back by the run that ends earlier
        # Aligned: the same class sits in the same place in both maps (class centres at the last shared epoch).
        a.evaluate("window.epochscope.setEpoch(3)")
        b.wait_for_function("() => window.epochscope.epoch() === 3")
        centre = """(() => { const out = {}; for (let i = 0; i < 60; i++) { const p = window.epochscope.pointScreenPosition(i);
            if (!p) continue; const c = i % 3; out[c] = out[c] || [0, 0, 0]; out[c][0] += p.x; out[c][1] += p.y; out[c][2]++; }
            return Object.values(out).map(([x, y, n]) => [x / n, y / n]); })()"""
        ca, cb = a.evaluate(centre), b.evaluate(centre)
        assert all(abs(p[0] - q[0]) < 25 and abs(p[1] - q[1]) < 25 for p, q in zip(ca, cb)), (ca, cb)
        # Curves overlaid: each run's accuracy panel names the other run's series too.
        texts = [t["text"] for t in a.evaluate("window.epochscope.textBoxes()") if t["canvas"] == "curve-accuracy"]
        assert any(t.endswith("· sigmoid") for t in texts) and any(t.endswith("· relu") for t in texts)
        assert errors == []
    finally:
        page.close()
        _stop(server)


def test_side_by_side_report_file(tmp_path, browser_context):
    """``epochscope report A B`` writes one offline file whose frames' cursors are linked."""
    from epochscope.cli import main

    make_run(tmp_path / "relu", 4)
    make_run(tmp_path / "sigmoid", 4, transform=rotation())
    make_run(tmp_path / "other", 3, probe_seed=9)
    out = tmp_path / "compare.html"
    assert main(["report", str(tmp_path / "relu"), str(tmp_path / "sigmoid"), "--out", str(out), "--method", "pca",
                 "-q"]) == 0
    assert main(["report", str(tmp_path / "relu"), str(tmp_path / "other"), "--out", str(tmp_path / "x.html"),
                 "--method", "pca", "-q"]) == 2  # different probes: refused
    assert out.read_text(encoding="utf-8").count("<iframe") == 2
    # The same page with the test hook, to drive it.
    from epochscope import embed, open_run
    from epochscope.html.compare import write_compare_report

    runs = [open_run(tmp_path / "relu"), open_run(tmp_path / "sigmoid")]
    hooked = write_compare_report(runs, [embed(r, "hidden", "pca", progress=False) for r in runs], tmp_path / "hooked.html",
                                  layer="hidden", method="pca", test_hook=True)
    page = browser_context.new_page()
    page.set_viewport_size({"width": 1300, "height": 1000})
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(hooked.resolve().as_uri())
        page.wait_for_function("() => document.querySelectorAll('iframe.run').length === 2")
        frames = []
        deadline = time.monotonic() + 20
        while len(frames) < 2:
            frames = [f for f in page.frames if f != page.main_frame]
            assert time.monotonic() < deadline
            page.wait_for_timeout(50)
        a, b = frames
        for f in frames:
            f.wait_for_function("() => window.epochscope !== undefined")
            f.evaluate("window.epochscope.ready")
        a.evaluate("window.epochscope.setEpoch(1)")
        b.wait_for_function("() => window.epochscope.epoch() === 1")
        assert errors == []
        assert all(u.startswith(("file:", "data:", "blob:", "about:")) for u in requests), requests
    finally:
        page.close()
