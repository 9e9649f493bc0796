"""Metrics from TensorBoard event files (Lightning's default logger), read by TensorBoard's own reader."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from epochscope import MissingDependencyError, RunError
from epochscope.run import open_run

pytest.importorskip("tensorboard", reason="reading event files needs the tensorboard extra")

from tensorboard.summary import Writer  # noqa: E402

from epochscope.importers.tensorboard_log import (  # noqa: E402
    event_log_dir,
    find_event_log,
    is_event_log,
    read_event_metrics,
)


def f32(x: float) -> float:
    """What TensorBoard stores of a number (float32), as the importer writes it."""
    return float(str(np.float32(x)))


def write_log(folder, points):
    """Event files written by TensorBoard's own writer: ``points`` = [(tag, value, step), ...]."""
    writer = Writer(str(folder))
    for tag, value, step in points:
        writer.add_scalar(tag, value, step)
    writer.close()
    return folder


def test_points_belong_to_the_epoch_logged_at_or_before_their_step(tmp_path, caplog):
    # As Lightning logs: `epoch` beside everything, per-batch `_step` values, epoch figures at the epoch's last step.
    log = write_log(tmp_path / "logs", [
        ("lr", 0.5, 0),                                   # before any epoch scalar: skipped
        ("epoch", 0, 1), ("train_loss_step", 2.0, 1), ("lr", 0.1, 1),
        ("epoch", 0, 3), ("train_loss_epoch", 1.5, 3), ("val/acc", 0.25, 3), ("val_loss", 1.75, 3),
        ("epoch", 1, 5), ("lr", 0.05, 5),
        ("epoch", 1, 7), ("train_loss_epoch", 1.0, 7), ("val/acc", 0.6, 7), ("val_loss", float("nan"), 7),
        ("epoch", 1, 8), ("val_loss", 1.25, 8),
    ])
    table = read_event_metrics(log)
    assert table == {0: {"lr": f32(0.1), "loss": 1.5, "val_accuracy": 0.25, "val_loss": 1.75},
                     1: {"lr": f32(0.05), "loss": 1.0, "val_accuracy": f32(0.6), "val_loss": 1.25}}
    assert "1 points logged before the first 'epoch' scalar have no epoch and were not imported" in caplog.text


def test_a_plain_writer_log_counts_its_steps_in_epochs(tmp_path, caplog):
    torch_tb = pytest.importorskip("torch.utils.tensorboard", reason="torch's SummaryWriter needs torch")
    writer = torch_tb.SummaryWriter(str(tmp_path / "runs"))  # the legacy encoding (simple_value), as Lightning's
    for epoch in range(3):
        writer.add_scalar("Loss/train", 1.0 / (epoch + 1), epoch)
        writer.add_scalar("Accuracy/val", 0.5 + 0.1 * epoch, epoch)
    writer.close()
    table = read_event_metrics(tmp_path / "runs")
    assert table == {e: {"loss": f32(1.0 / (e + 1)), "val_accuracy": f32(0.5 + 0.1 * e)} for e in range(3)}
    assert "no 'epoch' scalar" in caplog.text


def test_which_folder_is_read(tmp_path):
    root = tmp_path / "lightning_logs"
    write_log(root / "version_0", [("loss", 1.0, 0)])
    assert event_log_dir(root) == root / "version_0"  # one run below: found
    event_file = next((root / "version_0").glob("events.out.tfevents.*"))
    assert event_log_dir(event_file) == root / "version_0"
    write_log(root / "version_1", [("loss", 1.0, 0)])
    with pytest.raises(ValueError, match=r"holds 2 TensorBoard runs \(version_0, version_1\); pass the one"):
        read_event_metrics(root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no TensorBoard event file"):
        read_event_metrics(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        read_event_metrics(tmp_path / "nowhere")
    assert is_event_log(root) and is_event_log(event_file) and not is_event_log(tmp_path / "metrics.csv")
    (root / "version_0" / "checkpoints").mkdir()
    assert find_event_log(root / "version_0" / "checkpoints") == root / "version_0"
    assert find_event_log(tmp_path / "empty") is None


def test_a_log_without_scalars_or_with_bad_epochs_is_refused(tmp_path):
    Writer(str(tmp_path / "nothing")).close()  # an event file holding only its version record
    with pytest.raises(RunError, match="holds no scalar"):
        read_event_metrics(tmp_path / "nothing")
    write_log(tmp_path / "bad", [("epoch", 1.5, 0), ("loss", 1.0, 0)])
    with pytest.raises(RunError, match="not epoch numbers"):
        read_event_metrics(tmp_path / "bad")


def test_a_missing_extra_names_the_install(tmp_path, monkeypatch):
    write_log(tmp_path / "logs", [("loss", 1.0, 0)])
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'epochscope\[tensorboard\]'"):
        read_event_metrics(tmp_path / "logs")


# -- through the checkpoint importer -------------------------------------------------------------


def _checkpoints(folder, epochs):
    torch = pytest.importorskip("torch")
    folder.mkdir(parents=True)
    for epoch in epochs:
        torch.manual_seed(epoch)
        net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
        torch.save({"state_dict": net.state_dict()}, folder / f"epoch={epoch}-step={8 * epoch + 7}.ckpt")
    return folder


def test_the_command_line_imports_metrics_from_a_log_folder(tmp_path, capsys):
    from epochscope.cli import main

    folder = _checkpoints(tmp_path / "ckpts", [0, 1])
    write_log(tmp_path / "tb", [("epoch", 0, 7), ("train_acc", 0.5, 7), ("epoch", 1, 15), ("train_acc", 0.75, 15)])
    assert main(["-q", "import", "checkpoints", str(folder), "--out", str(tmp_path / "run"),
                 "--metrics", str(tmp_path / "tb")]) == 0
    run = open_run(tmp_path / "run")
    assert [(m["epoch"], m["accuracy"]) for m in run.metrics] == [(0, 0.5), (1, 0.75)]
    assert run.manifest.info["metrics_file"] == str((tmp_path / "tb").resolve())


def test_without_the_extra_found_event_files_are_skipped_with_a_warning(tmp_path, monkeypatch, caplog):
    from epochscope.importers.checkpoints import import_checkpoints

    folder = _checkpoints(tmp_path / "version_0" / "checkpoints", [0])
    write_log(tmp_path / "version_0", [("epoch", 0, 7), ("loss", 0.5, 7)])
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    run = open_run(import_checkpoints(folder, tmp_path / "run"))
    assert "loss" not in run.metrics[0]
    assert "are not read" in caplog.text and "epochscope[tensorboard]" in caplog.text


def test_lightnings_default_logger_beside_its_checkpoints(tmp_path):
    """A real Lightning fit with its default TensorBoardLogger and a checkpoint per epoch; the importer
    finds the event files beside checkpoints/ and files every epoch's figures under the checkpoint's
    epoch, equal to what the trainer computed (recorded here by a callback)."""
    torch = pytest.importorskip("torch")
    L = pytest.importorskip("lightning")
    from lightning.pytorch.callbacks import Callback, ModelCheckpoint

    from epochscope.importers.checkpoints import import_checkpoints

    class Net(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))

        def training_step(self, batch, _):
            x, y = batch
            loss = torch.nn.functional.cross_entropy(self.net(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, _):
            x, y = batch
            out = self.net(x)
            self.log("val_loss", torch.nn.functional.cross_entropy(out, y))
            self.log("val_acc", (out.argmax(1) == y).float().mean())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    class Seen(Callback):
        def __init__(self):
            self.rows = {}

        def on_train_epoch_end(self, trainer, module):
            m = trainer.callback_metrics
            self.rows[trainer.current_epoch] = {"loss": float(m["train_loss_epoch"]), "val_loss": float(m["val_loss"]),
                                                "val_accuracy": float(m["val_acc"])}

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    seen = Seen()
    trainer = L.Trainer(max_epochs=3, default_root_dir=tmp_path, callbacks=[ModelCheckpoint(save_top_k=-1), seen],
                        log_every_n_steps=2, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu", devices=1)
    trainer.fit(Net(), data, data)
    version = tmp_path / "lightning_logs" / "version_0"
    assert type(trainer.logger).__name__ == "TensorBoardLogger" and any(version.glob("events.out.tfevents.*"))

    run = open_run(import_checkpoints(version / "checkpoints", tmp_path / "run"))
    assert run.epochs == [0, 1, 2]
    assert run.manifest.info["metrics_file"] == str(version.resolve())
    for row in run.metrics:
        expected = seen.rows[row["epoch"]]
        assert {k: row[k] for k in expected} == {k: f32(v) for k, v in expected.items()}
        assert not any(k.endswith("_step") for k in row) and all(math.isfinite(row[k]) for k in expected)
