"""A run file that is damaged fails the report loudly, with what to do (each test failed before its fix).

The report read every epoch's predictions and took any error as "no predictions recorded at this
epoch": a truncated ``predictions.npy`` made the page show that epoch's points as "predicted: not
recorded", its confusion matrix as "N without a prediction" and the forgetting counts as zero, a
picture that looked whole. Every finished epoch holds its predictions (the writer stores ``-1`` where
none were given; ``epochscope check`` calls a missing file damage), so a missing or unreadable file is
damage. A damaged weights file likewise read as "no network drawn". Now each stops the report with a
message naming the file and ``epochscope check``; what a run really lacks (no weights recorded at
all) is still a note on the page.
"""

from __future__ import annotations

import dataclasses

import pytest
from reportdata import make_maps, make_report_run
from synthetic import truncate

from epochscope import RunError
from epochscope.html.report import write_report
from epochscope.run import open_run


@pytest.fixture
def run_path(tmp_path):
    return make_report_run(tmp_path / "run", n_probe=40, n_test=12, n_epochs=4)


def _report(run_path, tmp_path, maps=None):
    run = open_run(run_path)
    return write_report(run, maps or make_maps(run), tmp_path / "out" / "report.html", layer="hidden", method="fake")


DAMAGE = {
    "probe predictions truncated": ("epochs/000002/predictions.npy", truncate),
    "test predictions truncated": ("epochs/000002/test_predictions.npy", truncate),
    "probe predictions removed": ("epochs/000001/predictions.npy", lambda p: p.unlink()),
    "weights truncated": ("epochs/000002/weights.npz", truncate),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_file_stops_the_report_naming_the_file_and_the_check(case, run_path, tmp_path):
    rel, damage = DAMAGE[case]
    damage(run_path / rel)
    with pytest.raises(RunError) as info:
        _report(run_path, tmp_path)
    message = str(info.value)
    assert rel in message and f"epochscope check {run_path}" in message, message
    assert not (tmp_path / "out" / "report.html").exists()  # no page that looks whole


def test_damaged_predictions_outside_the_mapped_epochs_stop_the_report(run_path, tmp_path):
    """The forgetting counts read every epoch's predictions, also those the maps leave out: a damaged
    file there made every count zero ("some epochs have no predictions", in the log only)."""
    run = open_run(run_path)
    maps = make_maps(run)
    keep = [1, 2, 3]  # epoch 0 is not mapped
    maps = dataclasses.replace(maps, epochs=keep, coords=maps.coords[keep], test_coords=maps.test_coords[keep])
    truncate(run_path / "epochs/000000/predictions.npy")
    with pytest.raises(RunError, match=r"epochs/000000/predictions\.npy.*epochscope check"):
        _report(run_path, tmp_path, maps)


def test_a_run_without_weights_still_gets_its_report_with_a_note(run_path, tmp_path):
    """What a run really lacks is no damage: no weights recorded at all is a note on the page."""
    import json

    for weights in run_path.glob("epochs/*/weights.npz"):
        weights.unlink()
    page = _report(run_path, tmp_path).read_text(encoding="utf-8")
    payload = json.loads(page.split('id="epochscope-data">', 1)[1].split("</script>", 1)[0])
    assert not payload["network"]["available"] and "no epoch holds weights" in payload["network"]["note"]
