"""The report of a run recorded inside epochs: its data carry each record's place on the time axis
and its name; the page's slider label, curves and click-to-jump use them. A run recorded once an
epoch gets no time data (its report is unchanged)."""

from __future__ import annotations

import numpy as np
import pytest
from reportdata import make_maps
from synthetic import STEP_RECORDS, make_step_run, make_synthetic_run

from epochscope import open_run
from epochscope.html.payload import build_payload
from epochscope.html.report import write_report

STEPS = [s for s, _ in STEP_RECORDS]


def test_the_payload_holds_each_records_place_and_name(tmp_path):
    run = open_run(make_step_run(tmp_path / "r"))
    p = build_payload(run, make_maps(run), layer="hidden", method="fake")
    time = p["time"]
    assert time["axis"] == "epoch" and time["records"] == STEPS == p["epochs"]
    np.testing.assert_allclose(time["values"], [d for _, d in STEP_RECORDS])
    assert time["labels"][1] == "epoch 0.6 · step 3" and "epoch 0 · step 0 – epoch 2 · step 10" in p["title"]
    plain = open_run(make_synthetic_run(tmp_path / "e", n_epochs=3))
    q = build_payload(plain, make_maps(plain), layer="hidden", method="fake")
    assert "time" not in q and "epochs 0–2" in q["title"]


@pytest.mark.browser
def test_the_page_names_records_by_epoch_and_step_and_jumps_on_the_epoch_axis(tmp_path, open_report):
    run = open_run(make_step_run(tmp_path / "r"))
    path = write_report(run, make_maps(run), tmp_path / "report.html", layer="hidden", method="fake",
                        test_hook=True)
    r = open_report(path)
    r.page.wait_for_function("() => document.getElementById('epoch-label').textContent.startsWith('epoch 2 · step 10 ')")
    area = r.js("window.epochscope.chartArea('curve-loss')")
    (x0, y0, x1, y1), e0, e1 = area["box"], area["x0"], area["x1"]
    assert (e0, e1) == (0, 2)  # the x axis spans the fractional epochs, not the steps 0..10
    x = x0 + (x1 - x0) * (1.2 - e0) / (e1 - e0)
    r.page.mouse.click(x, (y0 + y1) / 2)
    r.page.wait_for_function("() => window.epochscope.epoch() === 6")
    r.page.wait_for_function("() => document.getElementById('epoch-label').textContent.startsWith('epoch 1.2 · step 6 ')")
    assert r.page.inner_text("#subtitle").count("epoch 0 · step 0 – epoch 2 · step 10") == 1
    assert not r.errors
