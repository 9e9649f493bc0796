"""The report in a real headless Chromium: offline, playable, hoverable, safe."""

from __future__ import annotations

import pytest
from reportdata import CLASS_NAMES, OUTPUT, XSS_CLASS, make_maps, make_report_run

from epochscope import open_run
from epochscope._text import printable
from epochscope.html.report import write_report

pytestmark = pytest.mark.browser

ALLOWED_SCHEMES = ("file:", "data:", "blob:")


def test_loads_offline_without_errors(report_file, open_report):
    r = open_report(report_file)
    r.page.wait_for_timeout(200)
    assert r.requests and all(u.startswith(ALLOWED_SCHEMES) for u in r.requests), r.requests
    assert r.errors == [] and r.dialogs == []
    assert [m for m in r.console if m[0] in ("error", "warning")] == []
    assert r.js("window.epochscope.epochs()") == list(range(6))
    assert r.js("window.epochscope.visiblePoints()") > 150  # a few may sit under the margin


def test_play_advances_the_epoch(report_file, open_report):
    r = open_report(report_file)
    assert r.js("window.epochscope.epoch()") == 5  # the first view: the trained model's map
    frames = r.js("window.epochscope.frames()")
    # 1 epoch/s while the start is checked: a loaded machine may take a few hundred ms to answer.
    r.js("window.epochscope.setSpeed(1); window.epochscope.setLoop(true)")  # looping: never stops by itself
    r.page.click("#play")
    assert r.js("window.epochscope.isPlaying()")
    assert r.js("window.epochscope.position()") < 1  # play from the last epoch starts over at the first
    r.js("window.epochscope.setSpeed(5)")
    r.page.wait_for_function("() => window.epochscope.position() >= 2")
    assert r.js("window.epochscope.frames()") > frames + 5
    assert r.js("window.epochscope.fps()") > 1  # the page's own animation-frame counter runs
    assert "epoch" in r.page.inner_text("#epoch-label")
    r.page.click("#play")
    assert not r.js("window.epochscope.isPlaying()")


def test_slider_moves_points_smoothly(report_file, open_report):
    r = open_report(report_file)
    at = lambda: r.js("window.epochscope.pointScreenPosition(7)")  # noqa: E731
    start = at()
    box = r.page.locator("#slider").bounding_box()
    r.page.mouse.click(box["x"] + box["width"] * 0.001, box["y"] + box["height"] / 2)
    r.page.wait_for_function("() => window.epochscope.position() < 0.5")
    end = at()
    assert abs(end["x"] - start["x"]) + abs(end["y"] - start["y"]) > 20
    # Halfway between two epochs a point sits halfway between its two positions (interpolated).
    r.js("window.epochscope.setPosition(2)")
    a = at()
    r.js("window.epochscope.setPosition(3)")
    b = at()
    r.js("window.epochscope.setPosition(2.5)")
    mid = at()
    assert mid["x"] == pytest.approx((a["x"] + b["x"]) / 2, abs=0.6)
    assert mid["y"] == pytest.approx((a["y"] + b["y"]) / 2, abs=0.6)


def test_hover_shows_label_prediction_and_thumbnail(report_file, open_report):
    r = open_report(report_file)
    r.js("window.epochscope.setEpoch(5)")
    i = 1  # class 1 is the XSS name
    p = r.js(f"window.epochscope.pointScreenPosition({i})")
    r.page.mouse.move(p["x"], p["y"])
    r.page.wait_for_function("() => window.epochscope.hovered() !== null")
    assert r.js("window.epochscope.hovered()") == {"split": "probe", "index": i}
    assert r.page.is_visible("#tooltip") and r.page.is_visible("#tip-thumb")
    text = r.page.inner_text("#tip-text")
    assert f"label: {XSS_CLASS}" in text and "predicted at epoch 5" in text
    # The thumbnail shows the glyph of class 1: a bright band in rows 2-3 of 8 (see reportdata.glyphs).
    rows = r.js("""(() => { const c = document.getElementById('tip-thumb'), g = c.getContext('2d');
        const d = g.getImageData(0, 0, c.width, c.height).data, out = [];
        for (let y = 0; y < c.height; y++) {
          let s = 0; for (let x = 0; x < c.width; x++) s += d[(y * c.width + x) * 4]; out.push(s / c.width);
        }
        return out; })()""")
    band = sum(rows[21:42]) / 21
    rest = sum(rows[:21] + rows[42:]) / 63
    assert band > 200 and rest < 80


def test_legend_toggles_a_class(report_file, open_report):
    r = open_report(report_file)
    before = r.js("window.epochscope.visiblePoints()")
    legend = r.page.locator("#legend button").nth(1)
    legend.click()
    r.page.wait_for_function(f"() => window.epochscope.visiblePoints() < {before}")
    assert r.js("window.epochscope.pointScreenPosition(1)") is None  # a point of class 1
    assert r.js("window.epochscope.pointScreenPosition(0)") is not None
    assert legend.get_attribute("aria-pressed") == "false"
    legend.click()
    r.page.wait_for_function(f"() => window.epochscope.visiblePoints() === {before}")


def test_test_points_toggle(report_file, open_report):
    r = open_report(report_file)
    # Test points are optional and off at first: the probe points' clusters are what a reader sees first.
    assert not r.page.is_checked("#show-test")
    assert r.js("window.epochscope.pointScreenPosition(0, 'test')") is None
    r.page.check("#show-test")
    r.page.wait_for_function("() => window.epochscope.pointScreenPosition(0, 'test') !== null")
    p = r.js("window.epochscope.pointScreenPosition(0, 'test')")
    r.page.mouse.move(p["x"], p["y"])
    r.page.wait_for_function("() => window.epochscope.hovered() !== null")
    assert r.js("window.epochscope.hovered()") == {"split": "test", "index": 0}
    assert "test example #0" in r.page.inner_text("#tip-text") and r.page.is_visible("#tip-thumb")
    r.page.mouse.move(1, 1)
    r.page.uncheck("#show-test")
    r.page.wait_for_function("() => window.epochscope.pointScreenPosition(0, 'test') === null")


def test_class_names_stay_text(report_file, open_report):
    r = open_report(report_file)
    names = r.js("[...document.querySelectorAll('#legend button')].map((b) => b.textContent)")
    assert names == [printable(n) for n in CLASS_NAMES]  # U+2028 in SCRIPT_CLASS shows escaped (test_control_names)
    assert "hidden<svg onload=alert(3)>" in r.js("document.getElementById('title').textContent")
    assert r.page.locator("img").count() == 0 and r.page.locator("svg").count() == 0
    assert r.page.locator("#legend b").count() == 0
    assert r.dialogs == [] and r.errors == []
    assert XSS_CLASS in r.page.inner_text("#legend")


def test_curves_are_drawn_in_the_colours_of_curves_png(tmp_path, open_report):
    from epochscope.colors import CURVE_COLORS, hex_to_rgb

    # Metrics as a recorder writes them: probe and test accuracy come first in every row.
    run = open_run(make_report_run(tmp_path / "run", recorded_accuracy=True))
    r = open_report(write_report(run, make_maps(run), tmp_path / "r.html", layer="h", method="fake", test_hook=True))

    def count(canvas: str, color: str) -> int:
        rgb = [int(v) for v in (hex_to_rgb([color])[0] * 255).round()]
        return r.js(f"""(() => {{ const c = document.getElementById('{canvas}'), g = c.getContext('2d');
            const d = g.getImageData(0, 0, c.width, c.height).data; let n = 0;
            for (let i = 0; i < d.length; i += 4)
              if (Math.abs(d[i] - {rgb[0]}) + Math.abs(d[i + 1] - {rgb[1]}) + Math.abs(d[i + 2] - {rgb[2]}) < 30) n++;
            return n; }})()""")

    for canvas in ("curve-accuracy", "curve-loss"):  # training blue and validation red, as in curves.png
        assert count(canvas, CURVE_COLORS["train"]) > 50, canvas
        assert count(canvas, CURVE_COLORS["val"]) > 50, canvas
    # The recorded test accuracy in the test set's colour, the probe accuracy in the probe's.
    assert count("curve-accuracy", CURVE_COLORS["test"]) > 50
    assert count("curve-accuracy", CURVE_COLORS["probe"]) > 50


def test_curve_click_jumps_to_epoch(report_file, open_report):
    r = open_report(report_file)
    area = r.js("window.epochscope.chartArea('curve-loss')")
    (x0, y0, x1, y1), e0, e1 = area["box"], area["x0"], area["x1"]
    x = x0 + (x1 - x0) * (3 - e0) / (e1 - e0)
    r.page.mouse.click(x, (y0 + y1) / 2)
    r.page.wait_for_function("() => window.epochscope.epoch() === 3")
    # The label follows on the next animation frame.
    r.page.wait_for_function("() => document.getElementById('epoch-label').textContent.startsWith('epoch 3 ')")


def test_zoom_and_pan_move_points(report_file, open_report):
    r = open_report(report_file)
    a = r.js("window.epochscope.pointScreenPosition(3)")
    box = r.page.locator("#map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    r.page.mouse.move(cx, cy)
    r.page.mouse.wheel(0, -400)
    r.page.wait_for_function("(x) => window.epochscope.pointScreenPosition(3).x !== x", arg=a["x"])
    b = r.js("window.epochscope.pointScreenPosition(3)")
    assert abs(b["x"] - cx) > abs(a["x"] - cx) * 1.3  # zoomed in about the cursor: further from it
    r.page.mouse.down()
    r.page.mouse.move(cx + 50, cy + 30, steps=4)
    r.page.mouse.up()
    r.page.wait_for_function("(x) => Math.abs(window.epochscope.pointScreenPosition(3).x - x - 50) < 1", arg=b["x"])
    c = r.js("window.epochscope.pointScreenPosition(3)")
    assert c["x"] - b["x"] == pytest.approx(50, abs=1) and c["y"] - b["y"] == pytest.approx(30, abs=1)


def test_screenshot(report_file, open_report):
    """Saved for a person to look at: test-output/report.png."""
    r = open_report(report_file)
    r.js("window.epochscope.setEpoch(4)")
    r.page.check("#highlight")
    p = r.js("window.epochscope.pointScreenPosition(2)")
    r.page.mouse.move(p["x"], p["y"])
    r.page.wait_for_function("() => window.epochscope.hovered() !== null")
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / "report.png"
    r.page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 20_000


def test_network_of_the_current_epoch(report_file, open_report):
    r = open_report(report_file)
    assert r.page.is_visible("#network")
    assert r.js("window.epochscope.networkEdges()") == 40

    def red_blue():
        return r.js("""(() => { const c = document.getElementById('network'), g = c.getContext('2d');
            const d = g.getImageData(0, 0, c.width, c.height).data; let red = 0, blue = 0;
            for (let i = 0; i < d.length; i += 4) {
              if (d[i] > 150 && d[i + 2] < 90) red++; if (d[i + 2] > 140 && d[i] < 90) blue++;
            }
            return [red, blue]; })()""")

    r.js("window.epochscope.setEpoch(0)")
    first = red_blue()
    r.js("window.epochscope.setEpoch(5)")
    last = red_blue()
    # Epoch 0 has no change to colour; by the last epoch l1 grew (red) and l2 shrank (blue).
    assert last[0] > first[0] + 200 and last[1] > first[1] + 200


@pytest.mark.parametrize("n_epochs", [1, 2])
def test_small_runs_without_images_or_test_set(tmp_path, open_report, n_epochs):
    run = open_run(make_report_run(tmp_path / "run", n_probe=30, n_test=6, n_epochs=n_epochs, images=False,
                                   class_names=["a", "b"]))
    path = write_report(run, make_maps(run, test=False), tmp_path / "r.html", layer="h", method="fake",
                        test_hook=True)
    r = open_report(path)
    assert r.errors == [] and [m for m in r.console if m[0] == "error"] == []
    assert r.js("window.epochscope.visiblePoints()") > 20
    assert not r.page.is_visible("#test-toggle")
    p = r.js("window.epochscope.pointScreenPosition(0)")
    r.page.mouse.move(p["x"], p["y"])
    r.page.wait_for_function("() => window.epochscope.hovered() !== null")
    assert not r.page.is_visible("#tip-thumb") and "label: a" in r.page.inner_text("#tip-text")
    r.page.click("#play")
    r.page.wait_for_timeout(300)
    assert r.errors == []
    assert "no image inputs" in r.page.inner_text("#notes")


def test_confusion_panel_shows_the_test_set_as_confusion_png(report_run, report_file, open_report):
    from sklearn.metrics import confusion_matrix

    from epochscope.draw.confusion import ConfusionDisplay

    run, _ = report_run
    r = open_report(report_file)
    assert r.page.inner_text("#confusion-caption") == "Confusion matrix (test set)"
    r.js("window.epochscope.setEpoch(2)")
    assert r.js("window.epochscope.confusion()") == confusion_matrix(run.test_labels, run.test_predictions(2),
                                                                      labels=range(4)).tolist()
    r.js("window.epochscope.setEpoch(5)")
    assert r.js("window.epochscope.confusion()") == ConfusionDisplay.from_run(run).counts.tolist()


def test_confusion_panel_of_a_run_without_test_set(tmp_path, open_report):
    import numpy as np
    from test_payload import probe_only_run

    pred = np.random.default_rng(0).integers(0, 3, size=(2, 30))
    run = probe_only_run(tmp_path / "run", pred)
    r = open_report(write_report(run, make_maps(run), tmp_path / "r.html", layer="h", method="f", test_hook=True))
    assert r.page.inner_text("#confusion-caption") == "Confusion matrix (probe set)"
    r.js("window.epochscope.setEpoch(1)")
    counts = np.zeros((3, 3), int)
    np.add.at(counts, (run.labels, pred[1]), 1)
    assert r.js("window.epochscope.confusion()") == counts.tolist()
    assert r.errors == []


def test_a_report_for_people_plays_without_the_test_hook(plain_report_file, open_report):
    r = open_report(plain_report_file, hook=False)
    r.page.wait_for_selector("#loading", state="hidden")
    assert r.js("typeof window.epochscope") == "undefined"
    assert r.page.inner_text("#epoch-label").startswith("epoch 5 ")
    # The map is drawn: some pixels carry the first class's colour (#1f77b4).
    blue = r.js("""(() => { const c = document.getElementById('map');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let k = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] === 0x1f && d[i + 1] === 0x77 && d[i + 2] === 0xb4) k++;
        return k; })()""")
    assert blue > 50
    r.page.select_option("#speed", "10")
    r.page.click("#play")
    r.page.wait_for_function("() => !document.getElementById('epoch-label').textContent.startsWith('epoch 5 ')")
    r.page.wait_for_function("() => document.getElementById('epoch-label').textContent.startsWith('epoch 5 ')")
    assert r.errors == [] and [m for m in r.console if m[0] in ("error", "warning")] == []


def test_curves_of_a_one_epoch_run_show_their_points(tmp_path, open_report):
    """One recorded epoch: the x axis ran from 0 to an epoch 1 the run lacks and the y axis ended
    exactly at the two values, so each point sat hidden in a corner of an empty chart. Each point
    must be drawn inside the plot (below the legend rows, where the curves are)."""
    from epochscope.colors import CURVE_COLORS, hex_to_rgb

    run = open_run(make_report_run(tmp_path / "run", n_epochs=1))
    r = open_report(write_report(run, make_maps(run), tmp_path / "r.html", layer="h", method="fake", test_hook=True))

    def count_in_plot(canvas: str, color: str) -> int:
        rgb = [int(v) for v in (hex_to_rgb([color])[0] * 255).round()]
        return r.js(f"""(() => {{ const c = document.getElementById('{canvas}'), g = c.getContext('2d');
            const top = Math.ceil(30 * window.devicePixelRatio);  // below the legend row
            const d = g.getImageData(0, top, c.width, c.height - top).data; let n = 0;
            for (let i = 0; i < d.length; i += 4)
              if (Math.abs(d[i] - {rgb[0]}) + Math.abs(d[i + 1] - {rgb[1]}) + Math.abs(d[i + 2] - {rgb[2]}) < 30) n++;
            return n; }})()""")

    for canvas in ("curve-accuracy", "curve-loss"):
        for series in ("train", "val"):
            assert count_in_plot(canvas, CURVE_COLORS[series]) >= 1, (canvas, series)  # the cursor covers part of it
