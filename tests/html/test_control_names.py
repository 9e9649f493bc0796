"""Names with control characters show escaped in the report, never as they are (each test failed before its fix).

A class, layer, metric, weight or run name is whatever was recorded: a bidirectional override
(``\\u202e`` shows ``bidi\\u202egpj.exe`` as ``bidiexe.jpg``), a zero-width space, a line separator, an
escape sequence. The report's data keep every name exactly (tests/test_escaping.py); the viewer set
them as text, so no markup ran, but as they were, so a name could reorder, hide or break the text
around it. Now everything the viewer shows (the page's text, titles and tooltips, and the texts drawn on
its canvases) shows control characters escaped, as the command line prints them
(``epochscope._text.printable``) and as ``epochscope serve``'s page does, with one ``visible()``.
"""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pytest

from epochscope._text import printable
from epochscope.run import RunWriter, open_run

CLASSES = ["bidi\u202egpj.exe", "c1\x85x", "sep\u2028x", "zw\u200bx", "esc\x1b]0;pwned\x07"]
LAYER = "hid\u2066den\u2069"
METRIC = "acc\u200f_accuracy"
WEIGHT = "fc\u202e1"
FOLDER = "run\u202eX"


def _controls(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs")]


@pytest.fixture(scope="module")
def odd_report(tmp_path_factory):
    from reportdata import make_maps

    from epochscope.html.report import write_report

    root = tmp_path_factory.mktemp("odd")
    k = len(CLASSES)
    rng = np.random.default_rng(0)
    y = np.arange(12 * k) % k
    y_test = np.arange(3 * k) % k
    with RunWriter.open(root / FOLDER, framework="numpy\u200b", labels=y, class_names=CLASSES, test_labels=y_test,
                        probe_texts=[f"text\u202e{i}\nline two" for i in range(len(y))]) as w:
        w.declare_layer(LAYER, (3,), 3, None)
        for epoch in range(3):
            with w.epoch(epoch) as ep:
                ep.set_activations(LAYER, rng.normal(size=(len(y), 3)))
                ep.set_activations(LAYER, rng.normal(size=(len(y_test), 3)), split="test")
                ep.set_predictions((y + (epoch < 2)) % k)
                ep.set_predictions(y_test, split="test")
                ep.set_weights({f"{WEIGHT}.weight": rng.normal(size=(5, 4)), f"{WEIGHT}.bias": np.zeros(5),
                                "out.weight": rng.normal(size=(k, 5)), "out.bias": np.zeros(k)})
                ep.set_metrics({"loss": 1 / (epoch + 1), METRIC: 0.3 * epoch, "val_accuracy": 0.2 * epoch})
    run = open_run(root / FOLDER)
    maps = make_maps(run)
    return write_report(run, maps, root / "report.html", layer=LAYER, method="pca", test_hook=True)


def test_the_data_keep_the_names_and_the_static_title_shows_them_escaped(odd_report):
    page = odd_report.read_text(encoding="utf-8")
    payload = json.loads(page.split('id="epochscope-data">', 1)[1].split("</script>", 1)[0])
    assert payload["classNames"] == CLASSES and payload["info"]["layer"] == LAYER  # data: exactly
    title = page.split("<title>", 1)[1].split("</title>", 1)[0]
    assert not _controls(title) and printable(LAYER) in title and printable(FOLDER) in title


@pytest.mark.browser
def test_every_text_the_viewer_shows_has_its_control_characters_escaped(odd_report, open_report):
    r = open_report(odd_report)
    r.js("window.epochscope.setEpoch(2)")
    # Hover a point of each class: the tooltip names its class and shows its text, escaped.
    tips = []
    for c in range(len(CLASSES)):
        p = r.js(f"window.epochscope.pointScreenPosition({c})")
        r.page.mouse.move(p["x"], p["y"])
        r.page.wait_for_function(f"() => (window.epochscope.hovered() || {{}}).index === {c}")
        tips.append(r.page.inner_text("#tooltip"))
        assert f"label: {printable(CLASSES[c])}" in tips[-1], tips[-1]
        # The example's text keeps its own line break; its other control characters show escaped.
        assert r.js("document.getElementById('tip-example').textContent") == f"text\\u202e{c}\nline two"
    shown = r.js("""() => [document.title, document.body.innerText,
        ...Array.from(document.querySelectorAll('[title], [aria-label]')).flatMap((e) =>
            [e.getAttribute('title') || '', e.getAttribute('aria-label') || '']),
        ...Array.from(document.querySelectorAll('#legend button')).map((b) => b.textContent)].join(' ')""")
    assert not _controls(shown.replace("\n", " ").replace("\t", " ")), _controls(shown)
    for text in [*CLASSES, LAYER, FOLDER]:
        assert printable(text) in shown, printable(text)
    assert "numpy\\u200b" in r.page.inner_text("#subtitle")
    # Every text drawn on a canvas: the curves' legends, the confusion matrix's class names, the network's
    # layer names.
    drawn = r.js("window.epochscope.textBoxes()")
    texts = " ".join(t["text"] for t in drawn)
    assert not _controls(texts), [t["text"] for t in drawn if _controls(t["text"])]
    by_canvas = {}
    for t in drawn:
        by_canvas.setdefault(t["canvas"], []).append(t["text"])
    assert any(printable(CLASSES[0]) in t for t in by_canvas["confusion"]), by_canvas["confusion"]
    assert any("\\u200f" in t for t in by_canvas["curve-accuracy"]), by_canvas["curve-accuracy"]
    assert any(printable(WEIGHT) in t for t in by_canvas["network"]), by_canvas["network"]
    assert r.errors == [] and r.dialogs == []


@pytest.mark.browser
def test_the_viewer_escapes_as_the_command_line_does(odd_report, open_report):
    """One rule for both: viewer/text.js's visible() and epochscope._text.printable agree, character for
    character, on every kind of control character and on text that has none."""
    r = open_report(odd_report)
    samples = ["plain", "é ü 日本 🙂", "\x00\x07\x1b[2J\x7f", "\x80\x85\x9f", "\u200b\u200d\u200e\u200f\u2060\ufeff",
               "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069", "\u2028\u2029", "a\nb\tc\rd", "\U000e0001"]
    got = r.js("(xs) => xs.map((x) => window.epochscope.visible(x))", samples)
    assert got == [printable(s) for s in samples]


def test_runs_side_by_side_show_their_names_escaped_in_the_page_around_the_viewers(odd_report, tmp_path):
    """The side-by-side page's own title, header, notes and frame titles (written in Python)."""
    import shutil

    from reportdata import make_maps

    from epochscope.html.compare import write_compare_report

    other = tmp_path / "zw\u200bother"
    shutil.copytree(odd_report.parent / FOLDER, other)
    runs = [open_run(odd_report.parent / FOLDER), open_run(other)]
    page = write_compare_report(runs, [make_maps(r) for r in runs], tmp_path / "compare.html", layer=LAYER,
                                method="pca").read_text(encoding="utf-8")
    around = page.split("<div id=\"runs\">", 1)[0] + "".join(
        part.split('" srcdoc=', 1)[0] for part in page.split('<iframe class="run"')[1:])
    assert not _controls(around.replace("\n", "")), _controls(around.replace("\n", ""))
    assert printable(FOLDER) in around and printable(other.name) in around
