"""Every string that comes from a run is shown as text, never interpreted: not as markup in the
HTML report, not as mathtext in matplotlib pictures. (epochscope writes no SVG.)

Names come from users' models and datasets: a layer ``features.$\\alpha$``, a class
``<b>cat</b>``, a metric ``loss & acc``. The HTML side's class-name and layer-name XSS cases
live in tests/html; this module adds metric names, the run folder's name, the framework
and the network's layer names, and the matplotlib side.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.text import Text

from epochscope.draw.style import plain
from epochscope.run import RunWriter, open_run

MATH_NAMES = ["$\\alpha$", "$\\foo$", "$x^2$", "a $b$ c $d$", "\\$", "$", "price $5", "$$"]
MARKUP = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>", "</script><!--", "a & b", "&lt;"]


def write_run(path: Path, *, class_names, layers, metric_names=(), weight_names=("l1", "l2"), framework="numpy",
              n_epochs: int = 3, per_class: int = 8) -> Path:
    """A small run (8x8 image inputs, clusters forming) with the given names everywhere."""
    k = len(class_names)
    rng = np.random.default_rng(0)
    y = np.arange(k * per_class) % k
    y_test = y[: 2 * k]
    centres = rng.normal(size=(k, 6)) * 4
    with RunWriter.open(path, framework=framework, labels=y, class_names=class_names, test_labels=y_test,
                        probe_inputs=rng.random((len(y), 1, 8, 8)).astype(np.float32),
                        test_inputs=rng.random((len(y_test), 1, 8, 8)).astype(np.float32)) as w:
        for layer in layers:
            w.declare_layer(layer, (6,), 6, None)
        for epoch in range(n_epochs):
            t = epoch / max(n_epochs - 1, 1)
            with w.epoch(epoch) as ep:
                for layer in layers:
                    ep.set_activations(layer, t * centres[y] + rng.normal(size=(len(y), 6)))
                    ep.set_activations(layer, t * centres[y_test] + rng.normal(size=(len(y_test), 6)), split="test")
                ep.set_predictions(np.where(rng.random(len(y)) < 0.4 + 0.5 * t, y, (y + 1) % k))
                ep.set_predictions(y_test, split="test")
                a, b = weight_names
                ep.set_weights({f"{a}.weight": rng.normal(size=(5, 4)), f"{a}.bias": np.zeros(5),
                                f"{b}.weight": rng.normal(size=(k, 5)), f"{b}.bias": np.zeros(k)})
                ep.set_metrics({"loss": 1 / (epoch + 1), "accuracy": 0.4 + 0.5 * t, "val_accuracy": 0.35 + 0.5 * t,
                                **{name: 0.1 * (epoch + i) for i, name in enumerate(metric_names)}})
    return path


# ------------------------------------------------------------------------------------------ matplotlib


@pytest.mark.parametrize("name", MATH_NAMES + MARKUP)
def test_plain_text_is_drawn_literally(name: str) -> None:
    shown, is_math = Text(0, 0, plain(name))._preprocess_math(plain(name))
    assert (shown, is_math) == (name, False)


def _texts(fig) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_text()]


def _assert_literal(fig, names) -> None:
    """Every text in ``fig`` is drawn as plain text, and each of ``names`` appears verbatim."""
    shown = []
    for t in _texts(fig):
        text, is_math = t._preprocess_math(t.get_text())
        assert not is_math, f"{t.get_text()!r} would be typeset as mathtext"
        shown.append(text)
    for name in names:
        assert any(name in s for s in shown), f"{name!r} is not shown literally; texts: {shown}"


@pytest.fixture(scope="module")
def math_run(tmp_path_factory) -> Path:
    return write_run(tmp_path_factory.mktemp("math") / "run", class_names=["$\\alpha$", "$\\foo$", "$x^2$", "a&b"],
                     layers=["$\\beta$", "h$"], weight_names=("$\\foo$", "$x_1$"))


def test_render_with_mathtext_names_finishes(math_run: Path, tmp_path: Path) -> None:
    """``$\\foo$`` as a class or layer name made matplotlib's mathtext parser stop the whole render."""
    from epochscope.pipeline import render

    paths = render(math_run, tmp_path / "out", method="pca", progress=False)
    assert {p.name for p in paths} >= {"confusion.png", "layers_epochs.png", "forgetting.png", "quality.png",
                                       "samples.png", "timelapse.gif", "train_test_map.png"}


def test_every_picture_shows_mathtext_names_literally(math_run: Path) -> None:
    from epochscope.draw.confusion import ConfusionDisplay
    from epochscope.draw.forgetting import ForgettingDisplay
    from epochscope.draw.mapframe import MapFrameRenderer
    from epochscope.draw.multiples import LayerEpochGrid
    from epochscope.draw.quality import QualityDisplay
    from epochscope.draw.samples import SamplesDisplay
    from epochscope.draw.timelapse import map_subtitle
    from epochscope.maps.api import embed

    run = open_run(math_run)
    names = run.class_names
    maps = [embed(run, layer, "pca", progress=False) for layer in run.layers]
    _assert_literal(ConfusionDisplay.from_run(run).plot().figure_, names)
    _assert_literal(SamplesDisplay.from_run(run).plot().figure_, names[:3])
    _assert_literal(ForgettingDisplay.from_run(run, maps[0]).plot().figure_, [*names, "$\\beta$"])
    _assert_literal(QualityDisplay.from_run(run, maps[1]).plot().figure_, ["layer h$"])
    _assert_literal(LayerEpochGrid.from_maps(maps, run.labels, names).plot().figure_, [*names, "$\\beta$", "h$"])
    r = MapFrameRenderer(maps[0].bounds, run.labels, names, subtitle=map_subtitle(maps[0]))
    try:
        r.fig.canvas.draw()
        _assert_literal(r.fig, [*names, "layer $\\beta$ · pca"])
    finally:
        r.close()


def test_network_with_mathtext_layer_names(math_run: Path, tmp_path: Path) -> None:
    from epochscope.draw.network import network_animation

    out = network_animation(math_run, tmp_path / "net.gif", progress=False)
    assert out.stat().st_size > 1000


# ------------------------------------------------------------------------------------------ HTML


@pytest.fixture(scope="module")
def nasty_report(tmp_path_factory) -> tuple[str, dict, dict]:
    from epochscope import embed
    from epochscope.html.report import write_report

    root = tmp_path_factory.mktemp("html")
    metric_names = ["<img src=x onerror=alert(2)>_accuracy", "</script><script>alert(3)</script>_loss", "a & b loss"]
    names = {
        "folder": "run <b>x & y",
        "layer": "<svg onload=alert(4)>",
        "class": "<script>alert(1)</script>",
        "framework": "<iframe src=javascript:alert(5)>",
        "weights": "<b>fc</b>",
        "metrics": metric_names,
    }
    run = write_run(root / names["folder"], class_names=["cat", names["class"], "a & b"], layers=[names["layer"]],
                    metric_names=metric_names, weight_names=(names["weights"], "out"), framework=names["framework"])
    maps = embed(run, None, "pca", progress=False)
    page = write_report(run, maps, root / "report.html", layer=maps.layer, method="pca").read_text(encoding="utf-8")
    payload = json.loads(page.split('id="epochscope-data">', 1)[1].split("</script>", 1)[0])
    return page, payload, names


def test_report_markup_outside_the_data_holds_no_run_text(nasty_report) -> None:
    page, _, names = nasty_report
    data = page.split('id="epochscope-data">', 1)[1].split("</script>", 1)[0]
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    outside = page.replace(data, "").replace(title, "")  # the title holds the names, escaped (below)
    for bad in ("<img", "<svg", "<iframe", "<b>", "<script>alert", "onerror", "onload", "alert("):
        assert bad not in outside, bad
        if bad.startswith("<"):
            assert bad not in data, bad  # inside the JSON every < is \u003c
    assert page.count("</script") == 2  # the data element and the viewer script, nothing a name added
    assert "<" not in title and ">" not in title
    assert "run &lt;b&gt;x &amp; y" in title and "&lt;svg onload=alert(4)&gt;" in title


def test_report_data_keeps_every_name_exactly(nasty_report) -> None:
    _, payload, names = nasty_report
    assert payload["title"].endswith(": " + names["folder"]) and names["layer"] in payload["title"]
    assert payload["info"]["layer"] == names["layer"]
    assert payload["info"]["framework"] == names["framework"]
    assert names["class"] in payload["classNames"] and "a & b" in payload["classNames"]
    series = {s["key"]: s for s in payload["metrics"]["accuracy"] + payload["metrics"]["loss"]}
    for name in names["metrics"]:
        assert series[name]["values"] == pytest.approx([0.1 * (e + names["metrics"].index(name)) for e in range(3)])
    assert names["metrics"][0] in [s["key"] for s in payload["metrics"]["accuracy"]]
    assert names["metrics"][1] in [s["key"] for s in payload["metrics"]["loss"]]
    network = json.dumps(payload["network"])
    assert names["weights"] in network


def test_no_svg_is_written() -> None:
    """Pictures are PNG/GIF/MP4 only, so no SVG text needs escaping; if SVG output is ever added,
    this test is the reminder to escape run strings in it."""
    src = Path(__file__).resolve().parents[1] / "src" / "epochscope"
    hits = [str(p.relative_to(src)) for p in src.rglob("*.py")
            if re.search(r"""["']\.?svg["']|format\s*=\s*["']svg|-Tsvg""", p.read_text(encoding="utf-8"))]
    assert hits == []
