"""The report's layout, measured in real headless Chromium (issue 15): at 1000 and 1400 px, on a run
shaped like the MNIST demo and one like the Iris demo, no two text boxes overlap (tick labels, legends,
layer labels, titles, DOM text), every text box lies inside its panel, no large blank area is left,
and a plain `chromium --headless --screenshot` shows the map (the first view needs no timer).

The runs are built here (the demo itself takes minutes); their maps are made by hand.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from reportdata import demo_quality, make_iris_like_run, make_maps, make_mnist_like_run

from epochscope import open_run
from epochscope.html.report import write_report

pytestmark = pytest.mark.browser

WIDTHS = (1000, 1400)

# Every text node of the page's own markup, with the panel it must stay inside.
DOM_TEXTS = """() => {
  const panels = ['header', '#map-panel', '#side figure', '#bottom figure'];
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    const el = node.parentElement;
    if (!el || !el.offsetParent || el.closest('[hidden]') || el.closest('#tooltip') || el.closest('script')) continue;
    const panel = panels.map((p) => el.closest(p)).find((p) => p);
    const pr = panel ? panel.getBoundingClientRect() : document.body.getBoundingClientRect();
    const range = document.createRange(); range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      if (r.width < 0.5 || r.height < 0.5) continue;
      out.push({ text: node.textContent.trim().slice(0, 40), box: [r.left, r.top, r.right, r.bottom],
                 panel: [pr.left, pr.top, pr.right, pr.bottom], node: out.length });
    }
  }
  return out;
}"""


def _overlap(a, b, tol=0.75) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > tol and min(a[3], b[3]) - max(a[1], b[1]) > tol


def check_layout(r, label: str) -> dict:
    """Every text box inside its panel, no two overlapping; returns counts for the caller's checks."""
    canvas = r.js("window.epochscope.textBoxes()")
    dom = r.js(DOM_TEXTS)
    assert canvas and dom
    problems = []
    for t in canvas + dom:
        b, p = t["box"], t["panel"]
        if b[0] < p[0] - 1 or b[1] < p[1] - 1 or b[2] > p[2] + 1 or b[3] > p[3] + 1:
            problems.append(f"{t['text']!r} ({t.get('canvas', 'page')}) outside its panel: {b} not in {p}")
    boxes = [(t["text"], t.get("canvas", "page"), t["box"]) for t in canvas + dom]
    for i, (ta, ca, a) in enumerate(boxes):
        for tb, cb, b in boxes[i + 1:]:
            if _overlap(a, b):
                problems.append(f"{ta!r} ({ca}) overlaps {tb!r} ({cb})")
    assert not problems, f"{label}: " + "; ".join(problems[:12])
    by_canvas: dict[str, list[str]] = {}
    for t in canvas:
        by_canvas.setdefault(t["canvas"], []).append(t["text"])
    return by_canvas


@pytest.fixture(scope="module")
def demo_reports(tmp_path_factory):
    root = tmp_path_factory.mktemp("layout")
    out = {}
    for name, make, layer in (("mnist", make_mnist_like_run, "hidden"), ("iris", make_iris_like_run, "l2")):
        run = open_run(make(root / name / "run"))
        maps = make_maps(run)
        maps.quality = demo_quality(len(run.epochs))
        maps.layer = layer
        out[name] = write_report(run, maps, root / name / "report.html", layer=layer, method="umap", test_hook=True)
    return out


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["mnist", "iris"])
def test_no_text_overlaps_or_leaves_its_panel(demo_reports, open_report, name, width):
    r = open_report(demo_reports[name])
    r.page.set_viewport_size({"width": width, "height": 900})
    r.page.wait_for_timeout(100)
    epochs = r.js("window.epochscope.epochs()")
    for epoch in (epochs[-1], epochs[len(epochs) // 2], epochs[0]):
        r.js(f"window.epochscope.setEpoch({epoch})")
        texts = check_layout(r, f"{name} at {width} px, epoch {epoch}")
        # Words, not code names, in the legends; rounded ticks; the last x tick shown whole.
        curves = texts["curve-accuracy"] + texts["curve-loss"] + texts["curve-quality"]
        assert "validation accuracy" in curves and "map trustworthiness" in curves and "training loss" in curves
        assert not [t for t in curves if "_" in t]
        assert str(epochs[-1]) in texts["curve-loss"]
        ticks = [float(t) for t in texts["curve-loss"] if t.replace(".", "").isdigit()]
        assert min(ticks) >= 0  # the loss axis never goes below 0
        assert all(len(t.split(".")[1]) <= 2 for t in texts["curve-accuracy"] if "." in t and t.replace(".", "").isdigit())
        # Class names whole on the confusion axes; the network's layer labels all there.
        names = ["setosa", "versicolor", "virginica"] if name == "iris" else [str(d) for d in range(10)]
        assert set(names) <= set(texts["confusion"])
        labels = texts["network"]
        expected = ["input", "l1", "l2", "l3", "l4"] if name == "iris" else \
            ["input", "conv2D_1", "conv2D_2", "conv2D_3", "conv2D_4", "hidden", "end"]
        missing = [e for e in expected if not any(t == e or t.startswith(e[:5]) for t in labels)]
        assert not missing, f"layer labels {missing} missing from {labels}"
    assert r.errors == []


@pytest.mark.parametrize("width", WIDTHS)
def test_no_large_blank_area(demo_reports, open_report, width):
    r = open_report(demo_reports["mnist"])
    r.page.set_viewport_size({"width": width, "height": 900})
    r.page.wait_for_timeout(100)
    gaps = r.js("""() => ['#map-panel', '#side', '#confusion-figure', '#network-figure'].map((sel) => {
        const el = document.querySelector(sel), box = el.getBoundingClientRect();
        const kids = [...el.children].filter((k) => k.offsetParent && !k.hidden);
        return [sel, box.bottom - Math.max(...kids.map((k) => k.getBoundingClientRect().bottom))];
    })""")
    for sel, gap in gaps:
        assert gap < 60, f"{sel}: {gap:.0f} px blank at the bottom"


@pytest.mark.parametrize("name", ["mnist", "iris"])
def test_points_are_discs_sized_as_the_gif_and_test_points_optional_and_lighter(demo_reports, open_report, name):
    r = open_report(demo_reports[name])
    radius = r.js("window.epochscope.discRadius()")
    n = r.js("window.epochscope.pointCount()")
    box = r.page.locator("#map").bounding_box()
    expected = min(5, max(1.2, (0.25 * box["width"] * box["height"] * 0.6 / (np.pi * n)) ** 0.5))
    assert radius == pytest.approx(np.ceil(expected + 1), abs=1)  # the kernel reaches one pixel beyond the disc
    # Anti-aliased: between a disc's colour and the white background there are in-between shades.
    shades = r.js("""(() => { const c = document.getElementById('map'), g = c.getContext('2d');
        const d = g.getImageData(0, 0, c.width, c.height).data, seen = new Set();
        for (let i = 0; i < d.length; i += 4) {
          if (d[i] !== 255 || d[i + 1] !== 255 || d[i + 2] !== 255) seen.add(d[i] * 65536 + d[i + 1] * 256 + d[i + 2]);
        }
        return seen.size; })()""")
    assert shades > 30
    assert not r.page.is_checked("#show-test")
    assert r.js("window.epochscope.pointScreenPosition(0, 'test')") is None


@pytest.mark.parametrize("width", WIDTHS)
def test_a_plain_headless_screenshot_shows_the_map(demo_reports, tmp_path, width):
    """`chromium --headless --screenshot` captured only "loading…" (issue 15): the first view is drawn
    while the page's script runs, without waiting on a timer or a promise."""
    from epochscope.html.headless import CHROMIUM_ARGS, chromium_path

    chromium = chromium_path() or shutil.which("chromium")
    if chromium is None:
        pytest.skip("no chromium on PATH")
    shot = tmp_path / "shot.png"
    page = demo_reports["mnist"]
    subprocess.run([chromium, *CHROMIUM_ARGS, "--hide-scrollbars", f"--window-size={width},900",
                    f"--screenshot={shot}", page.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    from epochscope.colors import class_colors

    area = img[60:650, : int(width * 0.6)]  # the map's part of the page
    found = [(np.abs(area - c * 255).max(axis=2) < 10).sum() for c in class_colors(10)]
    assert min(found) > 20, f"class colours on the map: {found}"  # every class is drawn
    grey = (np.abs(img - [0x66, 0x66, 0x66]).max(axis=2) < 10).sum()
    assert grey < 20000  # not a page of grey "loading…" text and nothing else


def test_a_report_of_an_imported_run_shows_curves_and_network(tmp_path, open_report):
    """A run imported from checkpoints holds weights and metrics, no probe activations: the page
    shows what it holds and says why there is no map."""
    from epochscope.importers._common import write_imported_run

    rng = np.random.default_rng(0)
    frames = [(e, {"l1.weight": rng.normal(size=(5, 4)).astype(np.float32),
                   "l2.weight": rng.normal(size=(3, 5)).astype(np.float32)},
               {"loss": 1.0 / e, "accuracy": 0.5 + 0.05 * e, "val_accuracy": 0.45 + 0.05 * e}) for e in range(1, 6)]
    run = open_run(write_imported_run(tmp_path / "run", framework="chainer", frames=frames,
                                      info={"imported_from": "chainer", "source": "x"}))
    page = write_report(run, None, tmp_path / "r.html", layer=None, method="umap", test_hook=True)
    r = open_report(page)
    assert r.errors == [] and [m for m in r.console if m[0] == "error"] == []
    assert not r.page.is_visible("#map") and "imported from chainer checkpoints" in r.page.inner_text("#no-map")
    assert r.js("window.epochscope.networkEdges()") == 4 * 5 + 5 * 3
    r.js("window.epochscope.setEpoch(3)")
    texts = check_layout(r, "imported run")
    assert "training accuracy" in texts["curve-accuracy"] and "no predictions recorded" in texts["confusion"]


def test_hover_says_when_a_test_points_place_is_uncertain(tmp_path, open_report):
    """Test points between clusters were taken for confused ones (issue 15): the hover says when a
    point was placed far from every probe point, and what its nearest probe points are."""
    from reportdata import make_report_run

    run = open_run(make_report_run(tmp_path / "run", class_names=["a", "b", "c"], n_test=30))
    maps = make_maps(run)
    far = maps.test_coords.copy()
    far[:, 0] = [0.0, 0.0]  # the middle of the map, between the three clusters
    maps.test_coords = far
    r = open_report(write_report(run, maps, tmp_path / "r.html", layer="h", method="umap", test_hook=True))
    r.js("window.epochscope.showTest(true)")
    p = r.js("window.epochscope.pointScreenPosition(0, 'test')")
    r.page.mouse.move(p["x"], p["y"])
    r.page.wait_for_function("() => window.epochscope.hovered() !== null")
    assert r.js("window.epochscope.hovered()") == {"split": "test", "index": 0}
    text = r.page.inner_text("#tip-text")
    assert "placed far from every probe point" in text and "nearest probe points on the map:" in text
    q = r.js("window.epochscope.pointScreenPosition(1, 'test')")  # an ordinary test point, inside its cluster
    r.page.mouse.move(q["x"], q["y"])
    r.page.wait_for_function("() => (window.epochscope.hovered() || {}).index === 1")
    assert "placed" not in r.page.inner_text("#tip-text")
