"""Hovering a text example shows its text, as text; a tabular example shows its values."""

from __future__ import annotations

import base64
import zlib

import numpy as np
import pytest
from reportdata import make_maps

from epochscope import open_run
from epochscope.html.payload import HOVER_TEXT_CHARS, build_payload
from epochscope.html.report import write_report
from epochscope.run import RunWriter

MARKUP = "<img src=x onerror=alert(1)> & <b>bold</b> </script><script>alert(2)</script>"


def unpack(spec) -> np.ndarray:
    """The viewer's decoding of a packed uint32 array (byte planes, zlib, base64; see html/encode.py)."""
    assert spec["dtype"] == "uint32" and not spec["delta"]
    raw = np.frombuffer(zlib.decompress(base64.b64decode(spec["b64"])), np.uint8)
    return raw.reshape(4, -1).T.copy().view("<u4").reshape(spec["shape"])


def text_run(path, *, texts=True, inputs=None, n=30, n_test=6):
    labels, test_labels = np.arange(n) % 2, np.arange(n_test) % 2
    probe_texts = [MARKUP if i == 3 else ("x" * 400 if i == 4 else f"review number {i}: {'good' if i % 2 else 'bad'}")
                   for i in range(n)]
    rng = np.random.default_rng(0)
    with RunWriter.open(path, framework="synthetic", labels=labels, class_names=["neg", "pos"], test_labels=test_labels,
                        probe_inputs=inputs, probe_texts=probe_texts if texts else None,
                        test_texts=[f"test text {i}" for i in range(n_test)] if texts else None) as w:
        w.declare_layer("h", (3,), 3, None)
        for epoch in range(3):
            with w.epoch(epoch) as ep:
                ep.set_activations("h", rng.normal(size=(n, 3)))
                ep.set_activations("h", rng.normal(size=(n_test, 3)), split="test")
                ep.set_predictions(labels)
                ep.set_predictions(test_labels, split="test")
    return open_run(path)


def test_payload_carries_each_shown_example_text_cut_for_the_hover(tmp_path):
    run = text_run(tmp_path / "run")
    payload = build_payload(run, make_maps(run), layer="h", method="fake", max_points=20)
    texts = payload["probe"]["texts"]
    assert len(texts) == payload["probe"]["count"] == 20
    shown = [t for t in texts if t.startswith("review number")]
    # Each text belongs to its point: the text of the run's example at the point's index.
    idx = unpack(payload["probe"]["index"])
    assert len(idx) == 20 and len(set(idx)) == 20
    for i, t in zip(idx, texts):
        assert t == run.probe_texts[i] or (i == 4 and t == "x" * (HOVER_TEXT_CHARS - 1) + "…")
    assert shown and payload["test"]["texts"] == [f"test text {i}" for i in range(6)]


def test_tabular_examples_show_their_values(tmp_path):
    x = np.arange(30 * 4, dtype=np.float32).reshape(30, 4) / 8
    run = text_run(tmp_path / "run", texts=False, inputs=x)
    payload = build_payload(run, make_maps(run), layer="h", method="fake")
    assert payload["probe"]["texts"][5] == "inputs: 2.5, 2.625, 2.75, 2.875"
    assert payload["test"]["texts"] is None  # no test inputs kept
    assert payload["thumbnails"] is None


@pytest.mark.browser
def test_hovering_a_text_example_shows_its_text_escaped(tmp_path, open_report):
    run = text_run(tmp_path / "run")
    path = write_report(run, make_maps(run), tmp_path / "r.html", layer="h", method="fake", test_hook=True)
    r = open_report(path)
    i = 3  # the text full of markup
    r.js("window.epochscope.setEpoch(2)")
    p = r.js(f"window.epochscope.pointScreenPosition({i})")
    r.page.mouse.move(p["x"], p["y"])
    r.page.wait_for_function("() => window.epochscope.hovered() !== null")
    assert r.js("window.epochscope.hovered()") == {"split": "probe", "index": i}
    assert r.page.is_visible("#tip-example") and not r.page.is_visible("#tip-thumb")
    assert r.page.inner_text("#tip-example") == MARKUP  # shown as written ...
    assert r.js("document.querySelectorAll('#tooltip img, #tooltip b, #tooltip script').length") == 0  # ... not as markup
    assert r.errors == [] and r.dialogs == []
    assert "no image inputs" not in r.page.inner_text("#notes")
    r.page.mouse.move(p["x"] + 1, p["y"])  # another point's text replaces it
    other = r.js(f"window.epochscope.pointScreenPosition({0})")
    r.page.mouse.move(other["x"], other["y"])
    r.page.wait_for_function("() => (window.epochscope.hovered() || {}).index === 0")
    assert r.page.inner_text("#tip-example") == "review number 0: bad"
