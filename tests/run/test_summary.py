"""The text `epochscope info` prints, from its own module; Run.describe() gives the same."""

from epochscope import open_run
from epochscope.run.summary import describe, epoch_spans


def test_describe_says_what_the_run_holds(synthetic_run):
    run = open_run(synthetic_run)
    text = describe(run)
    assert text == run.describe()
    lines = text.splitlines()
    assert lines[0] == f"run       {synthetic_run}"
    assert "epochs    0..4 (5 finished)" in lines
    assert "probe     120 examples, 3 classes, inputs (1, 8, 8)" in lines
    assert "test      30 examples" in lines and "classes   class 0, class 1, class 2" in lines
    assert any(line.startswith("  hidden") and "stored 16 values" in line for line in lines)
    assert lines[-1].startswith("last      epoch 4: loss=0.2, accuracy=1,")


def test_describe_names_the_epochs_cut_short(synthetic_run):
    """Only `check` said an epoch was cut short; `info` showed the run as if training ended whole."""
    import json

    manifest = synthetic_run / "manifest.json"
    data = json.loads(manifest.read_text())
    data["info"] = {**data.get("info", {}),
                    "cut_short": {"5": "max_steps=22 reached, after 2 of its 4 batches", "3": "held whole later"}}
    manifest.write_text(json.dumps(data))
    lines = describe(open_run(synthetic_run)).splitlines()
    assert "cut short epoch 5 (max_steps=22 reached, after 2 of its 4 batches): not recorded, no whole epoch's" in lines
    assert not any("held whole later" in line for line in lines)  # epoch 3 is in the run: recorded whole since


def test_epoch_spans():
    assert epoch_spans([1, 2, 3, 7]) == "1..3, 7"
    assert epoch_spans([4]) == "4" and epoch_spans([]) == ""
