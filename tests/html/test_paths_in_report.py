"""A report names no folder of the machine it was written on (each test failed before its fix).

The report is a file to share, but its data said where the run lay (``info.run``: the absolute
path) and its notes quoted the reader's messages with full paths (``no network drawn:
/home/alice/exp/runs/a: no epoch holds weights``, an epoch's reason for having no map). Now the run
reads as its folder's name, and a path in a note as relative to the run's parent folder (so it
starts with the run's name), as ``epochscope serve`` names them relative to LOGDIR.
"""

from __future__ import annotations

import dataclasses
import json
import os

from reportdata import make_maps, make_report_run

from epochscope.html.compare import write_compare_report
from epochscope.html.report import write_report
from epochscope.run import open_run


def _no_folder_of(text: str, folder) -> None:
    for form in {str(folder), os.path.realpath(folder)}:
        assert form not in text, f"{form!r} in the report"


def _payload(page: str) -> dict:
    return json.loads(page.split('id="epochscope-data">', 1)[1].split("</script>", 1)[0])


def test_the_report_names_the_run_by_its_folder_and_quotes_no_absolute_path(tmp_path):
    path = make_report_run(tmp_path / "exp" / "mnist-relu", n_probe=40, n_test=12, n_epochs=3)
    for weights in path.glob("epochs/*/weights.npz"):  # the network note then quotes the run's path
        weights.unlink()
    run = open_run(path)
    maps = make_maps(run)
    maps = dataclasses.replace(maps, skipped={7: f"{path / 'epochs' / '000007' / 'probe'}: file missing from the run"})
    page = write_report(run, maps, tmp_path / "shared" / "report.html", layer="hidden", method="fake"
                        ).read_text(encoding="utf-8")
    _no_folder_of(page, tmp_path)
    payload = _payload(page)
    assert payload["info"]["run"] == "mnist-relu"
    assert payload["network"]["note"].startswith("no network drawn: mnist-relu: no epoch holds weights")
    assert payload["skipped"]["7"] == "mnist-relu/epochs/000007/probe: file missing from the run"


def test_a_run_given_by_a_relative_path_is_named_by_its_folder(tmp_path, monkeypatch):
    make_report_run(tmp_path / "mnist", n_probe=40, n_test=12, n_epochs=3)
    monkeypatch.chdir(tmp_path / "mnist")
    run = open_run(".")
    page = write_report(run, make_maps(run), tmp_path / "report.html", layer="hidden", method="fake"
                        ).read_text(encoding="utf-8")
    assert _payload(page)["info"]["run"] == "mnist"


def test_runs_side_by_side_name_no_absolute_path(tmp_path):
    runs = [open_run(make_report_run(tmp_path / "exp" / name, n_probe=40, n_test=12, n_epochs=3)) for name in "ab"]
    for weights in runs[1].path.glob("epochs/*/weights.npz"):
        weights.unlink()
    out = write_compare_report(runs, [make_maps(r) for r in runs], tmp_path / "compare.html", layer="hidden",
                               method="fake")
    _no_folder_of(out.read_text(encoding="utf-8"), tmp_path)
