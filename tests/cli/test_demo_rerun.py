"""Re-running the demo into the same folder (issue 15): what the demo wrote before is removed, and
nothing else."""

from __future__ import annotations

import json

import pytest

from epochscope.demo import RECORD, _remove_earlier_demo, _write_record


def test_what_the_demo_wrote_is_removed_and_nothing_else(tmp_path):
    out = tmp_path / "demo-out"
    (out / "frames").mkdir(parents=True)
    (out / "run" / "epochs").mkdir(parents=True)
    ours = [out / "frames" / f"epoch_{e:03d}.png" for e in range(11)] + [out / "timelapse.gif", out / "report.html"]
    for p in ours:
        p.write_bytes(b"x")
    mine = [out / "notes.txt", out / "frames" / "my_own.png", tmp_path / "outside.png"]
    for p in mine:
        p.write_bytes(b"keep")
    (out / "link.png").symlink_to(tmp_path / "outside.png")
    _write_record(out, [out / "run", *ours, out / "link.png"])
    record = json.loads((out / RECORD).read_text())
    record["written"] += ["../outside.png", "/etc/passwd"]  # a tampered record never reaches outside
    (out / RECORD).write_text(json.dumps(record))
    _remove_earlier_demo(out)
    # The run folder is left to the recorder (overwrite=True replaces only an epochscope run).
    assert (out / "run" / "epochs").is_dir() and not (out / RECORD).exists()
    assert not any(p.exists() for p in ours)
    assert all(p.read_bytes() == b"keep" for p in mine)  # the user's files, and what a link points to
    assert (out / "frames").is_dir()  # still holds a file of the user's


def test_without_a_record_nothing_is_removed(tmp_path):
    out = tmp_path / "demo-out"
    (out / "run").mkdir(parents=True)
    (out / "run" / "mine.txt").write_bytes(b"keep")
    (out / "curves.png").write_bytes(b"from an older version")
    _remove_earlier_demo(out)
    assert (out / "run" / "mine.txt").read_bytes() == b"keep" and (out / "curves.png").exists()


@pytest.mark.slow
def test_a_second_demo_with_fewer_epochs_leaves_no_frame_of_the_first(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("umap")
    from epochscope.demo import run_demo

    out = tmp_path / "demo"
    run_demo(out, dataset="iris", epochs=4, show_progress=False)
    (out / "mine.txt").write_text("keep")
    assert len(list((out / "frames").iterdir())) == 5
    run_demo(out, dataset="iris", epochs=2, show_progress=False)
    assert sorted(p.name for p in (out / "frames").iterdir()) == ["epoch_000.png", "epoch_001.png", "epoch_002.png"]
    assert (out / "mine.txt").read_text() == "keep"
