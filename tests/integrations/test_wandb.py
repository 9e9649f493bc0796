"""Logging a run's pictures to W&B, in W&B's offline mode: the run's files hold the logged media.

No network, ever: every W&B setting that could reach a server is set before ``wandb.init``
(offline mode in the environment and in the settings, a base URL on a closed local port, no
code or git capture, no system stats), and every W&B folder is inside the test's tmp folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from readers import wandb_history

import epochscope
from epochscope import MissingDependencyError, open_run

OFFLINE = {
    "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_CONSOLE": "off", "WANDB_DISABLE_CODE": "true",
    "WANDB_DISABLE_GIT": "true", "WANDB_SAVE_CODE": "false",
    "WANDB_BASE_URL": "http://127.0.0.1:9",  # the discard port on this machine: nothing could leave it
    "WANDB_API_KEY": "", "WANDB_DISABLE_SERVICE_UPDATE_CHECK": "true",
}


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch):
    """``wandb`` in offline mode with every folder under tmp_path; its service is stopped after."""
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    for key in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        folder = tmp_path / "wandb-home" / key.lower()
        folder.mkdir(parents=True)
        monkeypatch.setenv(key, str(folder))
    wandb = pytest.importorskip("wandb", reason="the W&B integration needs the wandb extra")
    yield wandb
    if wandb.run is not None:
        wandb.run.finish()
    wandb.teardown()  # stops W&B's background service process


def _init(wandb, tmp_path):
    settings = wandb.Settings(mode="offline", x_disable_stats=True, x_disable_meta=True, x_disable_machine_info=True,
                              save_code=False, disable_git=True, console="off", silent=True)
    run = wandb.init(project="epochscope-test", dir=str(tmp_path / "wandb-home" / "wandb_dir"), settings=settings)
    assert run.settings.mode == "offline" and run.offline
    return run


@pytest.fixture(scope="module")
def run_and_maps(tmp_path_factory):
    from synthetic import make_synthetic_run

    run = open_run(make_synthetic_run(tmp_path_factory.mktemp("wb") / "run"))
    return run, epochscope.embed(run, "hidden", method="pca", progress=False)


def _finish(wandb, wb):
    """Finish the W&B run and read its run file back, once W&B's service has written all of it
    (``finish`` returns before the service has flushed the file: wait for its exit record)."""
    import time

    from readers import wandb_records

    run_dir = Path(wb.dir).parent  # .../offline-run-*/files -> .../offline-run-*
    wb.finish()
    wandb.teardown()
    (run_file,) = run_dir.glob("run-*.wandb")
    deadline = time.monotonic() + 60
    while not any(r.WhichOneof("record_type") == "exit" for r in wandb_records(run_file)):
        assert time.monotonic() < deadline, "the W&B run file never received its exit record"
        time.sleep(0.2)
    return run_dir, wandb_history(run_file)


def test_timelapse_network_and_report_land_in_the_offline_run(wandb_offline, tmp_path, run_and_maps):
    from epochscope.integrations.wandb import log_run

    run, maps = run_and_maps
    page = epochscope.report(run, tmp_path / "report.html", method="pca", progress=False).read_text(encoding="utf-8")
    wb = _init(wandb_offline, tmp_path)
    logged = log_run(run, wb, maps=maps)
    assert sorted(logged) == ["epochscope/last_map", "epochscope/network", "epochscope/report", "epochscope/timelapse"]
    run_dir, history = _finish(wandb_offline, wb)

    (row,) = history
    assert row["_step"] == 0
    files = run_dir / "files"
    lapse = row["epochscope/timelapse"]
    assert lapse["_type"] == "video-file" and lapse["path"].endswith(".gif")
    gif = Image.open(files / lapse["path"])
    assert gif.n_frames == len(run.epochs)

    last = row["epochscope/last_map"]
    assert last["_type"] == "image-file"
    image = np.asarray(Image.open(files / last["path"]).convert("RGB"))
    expected = epochscope.MapDisplay.from_run(run, maps).image  # the last epoch's frame, drawn again here
    assert (last["width"], last["height"]) == (expected.shape[1], expected.shape[0])
    np.testing.assert_array_equal(image, expected)

    network = row["epochscope/network"]
    assert network["_type"] == "video-file"
    assert Image.open(files / network["path"]).n_frames == len(run.epochs)  # weights at every epoch

    report = row["epochscope/report"]
    assert report["_type"] == "html-file"
    assert (files / report["path"]).read_text(encoding="utf-8") == page  # the page as epochscope writes it
    assert (files / lapse["path"]).stat().st_size == lapse["size"]


def test_what_cannot_be_drawn_is_left_out_or_refused(wandb_offline, tmp_path):
    from synthetic import make_synthetic_run

    from epochscope.integrations.wandb import log_run

    run = open_run(make_synthetic_run(tmp_path / "run", weights=False))
    wb = _init(wandb_offline, tmp_path)
    with pytest.raises(ValueError, match="network=True but the network of .* cannot be drawn: the run holds no weights"):
        log_run(run, wb, network=True, method="pca")
    logged = log_run(run, wb, method="pca", report=False, step=7)
    assert sorted(logged) == ["epochscope/last_map", "epochscope/timelapse"]
    assert log_run(run, wb, timelapse=False, report=False, network=False, prefix="x") == {}
    _, history = _finish(wandb_offline, wb)
    assert [r["_step"] for r in history] == [7]  # the refused call logged nothing, the empty one neither


def test_bad_arguments_and_no_active_run(wandb_offline, run_and_maps):
    from epochscope.integrations.wandb import log_run

    run, maps = run_and_maps
    assert wandb_offline.run is None
    with pytest.raises(RuntimeError, match=r"no active W&B run: call wandb.init\(...\) first"):
        log_run(run, maps=maps)
    with pytest.raises(ValueError, match="network must be True, False or 'auto'"):
        log_run(run, maps=maps, network="yes")
    with pytest.raises(ValueError, match="step must be a non-negative integer"):
        log_run(run, maps=maps, step=-1)


def test_a_missing_extra_names_the_install(run_and_maps, monkeypatch):
    from epochscope.integrations.wandb import log_run

    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'epochscope\[wandb\]'"):
        log_run(run_and_maps[0], maps=run_and_maps[1])

