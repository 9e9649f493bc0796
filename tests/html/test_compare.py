"""Runs side by side (html/compare.py): same probe or a clear refusal, maps aligned, one view, curves overlaid."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from reportdata import FakeMaps, make_maps, make_report_run

from epochscope import open_run
from epochscope.html.compare import (
    ProbeMismatchError,
    align_to,
    check_same_probe,
    compare_payloads,
    render_compare_page,
    write_compare_report,
)
from epochscope.html.payload import build_payload


def _turned(maps: FakeMaps, angle: float, scale: float, mirror: bool, shift=(3.0, -2.0)) -> FakeMaps:
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, s], [-s, c]]) @ (np.diag([1.0, -1.0]) if mirror else np.eye(2))
    move = lambda a: None if a is None else (scale * a @ rot + np.array(shift)).astype(np.float32)  # noqa: E731
    return replace(maps, coords=move(maps.coords), test_coords=move(maps.test_coords))


@pytest.mark.parametrize("mirror", [False, True])
def test_align_to_undoes_a_rotation_mirror_scale_and_shift(report_run, mirror):
    run, maps = report_run
    other = _turned(maps, 1.1, 2.5, mirror)
    aligned = align_to(other, maps)
    # One transform for every frame: each frame (and the test points) lands back on the reference's.
    np.testing.assert_allclose(aligned.coords, maps.coords, atol=1e-4)
    np.testing.assert_allclose(aligned.test_coords, maps.test_coords, atol=1e-4)
    assert aligned.scale == pytest.approx(1 / 2.5) and aligned.matched_epoch == maps.epochs[-1]
    assert (np.linalg.det(aligned.rotation) < 0) == mirror


def test_align_keeps_a_runs_own_motion(report_run):
    """Frames are moved by one transform fitted at the last shared epoch, never frame by frame: the
    distances between a run's consecutive frames keep their ratios."""
    run, maps = report_run
    noisy = replace(maps, coords=maps.coords + np.random.default_rng(3).normal(size=maps.coords.shape).astype(np.float32))
    aligned = align_to(noisy, maps)
    step = lambda c: np.linalg.norm(np.diff(c, axis=0), axis=2).mean(axis=1)  # noqa: E731
    np.testing.assert_allclose(step(aligned.coords), aligned.scale * step(noisy.coords), rtol=1e-4)


def test_different_probes_are_refused(tmp_path):
    a = open_run(make_report_run(tmp_path / "a"))
    fewer = open_run(make_report_run(tmp_path / "fewer", n_probe=100))
    other_inputs = open_run(make_report_run(tmp_path / "inputs", seed=4))
    names = open_run(make_report_run(tmp_path / "names", class_names=["p", "q", "r", "s"]))
    check_same_probe([a, open_run(make_report_run(tmp_path / "same"))])
    for other, word in ((fewer, "probe examples"), (other_inputs, "probe inputs"), (names, "classes")):
        with pytest.raises(ProbeMismatchError, match=f"different probes cannot be shown side by side.*{word}"):
            check_same_probe([a, other])
    with pytest.raises(ValueError, match="at least 2"):
        check_same_probe([a])


def test_compare_payloads_share_one_view_and_overlay_curves(tmp_path):
    runs = [open_run(make_report_run(tmp_path / n)) for n in ("relu", "sigmoid")]
    maps = [make_maps(runs[0]), _turned(make_maps(runs[1], seed=2), 0.7, 3.0, False)]

    def build(run, m):
        return build_payload(run, m, layer="hidden", method="fake")

    a, b = compare_payloads(runs, maps, build)
    assert a["view"] == b["view"]
    assert b["compare"]["alignment"]["to"] == "relu" and a["compare"]["alignment"] is None
    # After alignment the class centres of the last epoch sit in the same places in both maps.
    dashed = [s for s in a["metrics"]["accuracy"] if s.get("dash")]
    assert dashed and all(s["name"].endswith("· sigmoid") and s["xs"] == b["metrics"]["epochs"] for s in dashed)
    assert all(s["name"].endswith("· relu") for s in a["metrics"]["accuracy"] if not s.get("dash"))
    page = render_compare_page([a, b])
    assert page.count("<iframe") == 2 and "<img src=x" not in page
    json.dumps(a, allow_nan=False)


def test_write_compare_report_refuses_before_writing(tmp_path):
    a = open_run(make_report_run(tmp_path / "a"))
    b = open_run(make_report_run(tmp_path / "b", n_probe=100))
    out = tmp_path / "compare.html"
    with pytest.raises(ProbeMismatchError):
        write_compare_report([a, b], [make_maps(a), make_maps(b)], out, layer="hidden", method="fake")
    assert not out.exists()
