"""epochscope check on a run recorded inside epochs: each record's step and epochs_done are checked
(a step that is not its folder's, epochs that go back, a missing or bad epochs_done are problems);
the uneven gaps of records every N steps plus epoch ends are not; repair never drops them."""

import json

import pytest
from synthetic import STEP_RECORDS, make_step_run

from epochscope import check_run, open_run


def edit_row(run, record, **changes):
    path = run / "epochs" / f"{record:06d}" / "metrics.json"
    row = json.loads(path.read_text())
    row.update(changes)
    for key in [k for k, v in changes.items() if v is ...]:
        del row[key]
    path.write_text(json.dumps(row))


def test_a_healthy_step_run_is_healthy_and_its_gaps_are_not_warned_about(tmp_path):
    report = check_run(make_step_run(tmp_path / "r"))
    assert report.ok and not report.warnings, str(report)
    steps = [s for s, _ in STEP_RECORDS]  # its records are named by step, not "epochs 0..N"
    assert str(report).splitlines()[0].endswith(f": steps {steps[0]}..{steps[-1]} ({len(steps)}); healthy, 0 warnings")


def test_info_names_a_step_runs_last_record_by_its_step(tmp_path):
    from epochscope.run.summary import describe

    text = describe(open_run(make_step_run(tmp_path / "r")))
    assert f"last      step {STEP_RECORDS[-1][0]}: " in text and "last      epoch" not in text


@pytest.mark.parametrize("record, changes, message", [
    (6, {"step": 8}, '"step" is 8, expected 6'),
    (6, {"step": ...}, '"step" is None, expected 6'),
    (9, {"epochs_done": 1.0}, "epochs_done 1 is less than 1.2 at step 6"),
    (3, {"epochs_done": ...}, 'no "epochs_done"'),
    (3, {"epochs_done": "half"}, "epochs_done: expected a number of epochs or None"),
])
def test_a_record_out_of_time_is_a_problem_that_repair_leaves_alone(tmp_path, record, changes, message):
    path = make_step_run(tmp_path / "r")
    edit_row(path, record, **changes)
    report = check_run(path, repair=True)
    found = [p for p in report.problems if p.path == f"epochs/{record:06d}/metrics.json"]
    assert len(found) == 1 and message in found[0].message, str(report)
    assert open_run(path).epochs == [s for s, _ in STEP_RECORDS]  # nothing removed


def test_an_unknown_epoch_inside_an_epoch_is_allowed(tmp_path):
    path = make_step_run(tmp_path / "r")
    edit_row(path, 3, epochs_done=None)
    assert check_run(path).ok
    assert open_run(path).timeline.axis == "step"


def test_a_damaged_row_of_a_step_record_is_not_written_anew(tmp_path):
    # A step record's row also places it in time; a row without it would move the whole run's
    # pictures to a step axis (and a resumed recorder's next record too): the trailing record goes.
    path = make_step_run(tmp_path / "r")
    record = STEP_RECORDS[-1][0]
    (path / "epochs" / f"{record:06d}" / "metrics.json").write_text('{"epoch": ')
    report = check_run(path, repair=True)
    assert report.ok and not any(a.rewrite for a in report.actions), str(report)
    assert open_run(path).epochs == [s for s, _ in STEP_RECORDS][:-1]
