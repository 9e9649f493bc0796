"""The PyTorch-checkpoint importer: state_dict files ordered by the epoch in their names, plus metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from epochscope import RunError  # noqa: E402
from epochscope.importers._common import read_metrics_file, snapshot_number  # noqa: E402
from epochscope.importers.checkpoints import import_checkpoints  # noqa: E402
from epochscope.run import open_run  # noqa: E402


def model_at(epoch: int) -> torch.nn.Sequential:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    with torch.no_grad():
        model[2].bias.fill_(float(epoch))  # the epoch, readable back from the run
    return model


def write_folder(root: Path, names: dict[int, str], wrap=None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for epoch, name in names.items():
        state = model_at(epoch).state_dict()
        torch.save(wrap(state, epoch) if wrap else state, root / name)
    return root


def test_frames_follow_the_numbers_in_the_names_not_the_listing(tmp_path):
    names = {10: "model_10.pth", 2: "model_2.pth", 1: "model_1.pth", 3: "model_3.pth"}  # "10" < "2" as text
    folder = write_folder(tmp_path / "ckpt", names)
    (folder / "notes.txt").write_text("not a checkpoint")
    torch.save(model_at(99).state_dict(), folder / "best.pt")  # no number: skipped
    run = open_run(import_checkpoints(folder, tmp_path / "run"))
    assert run.epochs == [1, 2, 3, 10]
    for e in run.epochs:
        w = run.weights(e)
        assert set(w) == {"0.weight", "0.bias", "2.weight", "2.bias"}
        assert w["2.bias"][0] == e
    assert run.class_names == ["class 0", "class 1", "class 2"]
    assert run.manifest.info["snapshots"] == ["model_1.pth", "model_2.pth", "model_3.pth", "model_10.pth"]


def test_lightning_style_checkpoints_and_metrics_csv(tmp_path):
    def wrap(state, epoch):
        return {"epoch": epoch, "global_step": 7 * epoch, "state_dict": {f"model.{k}": v for k, v in state.items()},
                "optimizer_states": [], "lr": 0.01}

    folder = write_folder(tmp_path / "ckpt", {e: f"epoch={e}-step={7 * e}.ckpt" for e in (0, 1, 2)}, wrap)
    csv = tmp_path / "metrics.csv"
    # Lightning's CSVLogger: train and validation figures on separate rows of one epoch.
    csv.write_text("epoch,step,train_loss,train_acc,val_loss,val_acc\n"
                   "0,6,0.9,0.5,,\n0,6,,,1.0,0.45\n1,13,0.5,0.7,,\n1,13,,,0.6,0.66\n2,20,0.3,0.9,,\n2,20,,,0.4,0.8\n")
    run = open_run(import_checkpoints(folder, tmp_path / "run", metrics=csv))
    assert run.epochs == [0, 1, 2]
    assert "0.weight" in run.weights(1)  # the "model." prefix is gone
    row = run.epoch_metrics(1)
    assert row["accuracy"] == pytest.approx(0.7) and row["val_accuracy"] == pytest.approx(0.66)
    assert row["loss"] == pytest.approx(0.5) and row["val_loss"] == pytest.approx(0.6)
    assert row["lr"] == pytest.approx(0.01)  # a number stored in the checkpoint


def test_metrics_json_as_rows_or_columns(tmp_path):
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([{"epoch": 1, "acc": 0.5}, {"epoch": 2, "acc": 0.75}]))
    cols = tmp_path / "cols.json"
    cols.write_text(json.dumps({"epoch": [1, 2], "accuracy": [0.5, 0.75], "note": "x"}))
    for path in (rows, cols):
        assert read_metrics_file(path) == {1: {"accuracy": 0.5}, 2: {"accuracy": 0.75}}
    bad = tmp_path / "bad.csv"
    bad.write_text("step,loss\n1,0.3\n")
    with pytest.raises(RunError, match="epoch"):
        read_metrics_file(bad)


class Custom:  # an arbitrary object: weights_only=True must refuse to build it
    pass


def test_checkpoints_are_never_unpickled(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()

    torch.save({"state_dict": model_at(1).state_dict(), "extra": Custom()}, folder / "model_1.pt")
    with pytest.raises(RunError, match="weights-only"):
        import_checkpoints(folder, tmp_path / "run")


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError):
        import_checkpoints(tmp_path / "missing", tmp_path / "run")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RunError, match="no checkpoint files"):
        import_checkpoints(empty, tmp_path / "run")
    twice = write_folder(tmp_path / "twice", {1: "model_1.pt", 2: "epoch_1.pth"})
    with pytest.raises(RunError, match="both give epoch 1"):
        import_checkpoints(twice, tmp_path / "run")
    odd = tmp_path / "odd"
    odd.mkdir()
    torch.save({"something": {"nested": 1}}, odd / "model_1.pt")
    with pytest.raises(RunError, match="no state_dict found"):
        import_checkpoints(odd, tmp_path / "run")


def test_snapshot_numbers_from_file_names():
    assert snapshot_number("snapshot_iter_1200") == ("iteration", 1200)
    assert snapshot_number("snapshot_epoch_7") == ("epoch", 7)
    assert snapshot_number("epoch=3") == ("epoch", 3)
    assert snapshot_number("model_10") == ("number", 10)
    assert snapshot_number("epoch=3-step=120") == ("epoch", 3)
    assert snapshot_number("best") is None


def test_cli_import_checkpoints(tmp_path):
    from epochscope.cli import main

    folder = write_folder(tmp_path / "ckpt", {1: "model_1.pt", 2: "model_2.pt"})
    metrics = tmp_path / "m.json"
    metrics.write_text(json.dumps([{"epoch": 1, "accuracy": 0.4}, {"epoch": 2, "accuracy": 0.6}]))
    assert main(["-q", "import", "checkpoints", str(folder), "--out", str(tmp_path / "run"),
                 "--metrics", str(metrics)]) == 0
    run = open_run(tmp_path / "run")
    assert [r["accuracy"] for r in run.metrics] == [0.4, 0.6]
    assert np.isfinite(run.weights(2)["0.weight"]).all()


def test_nan_cells_never_erase_a_number_but_a_lone_nan_is_kept(tmp_path):
    cols = tmp_path / "cols.json"  # e.g. pandas' to_json of Lightning's metrics: NaN where a row measured nothing
    cols.write_text(json.dumps({"epoch": [1, 1, 2], "loss": [0.5, float("nan"), float("nan")],
                                "val_loss": [float("nan"), 0.6, 0.7]}))
    table = read_metrics_file(cols)
    assert table[1] == {"loss": 0.5, "val_loss": 0.6}
    assert np.isnan(table[2]["loss"]) and table[2]["val_loss"] == 0.7  # a diverged loss is worth seeing


def test_a_real_lightning_run_imports_with_curves(tmp_path):
    """Checkpoints and CSVLogger metrics written by Lightning itself, for self.log_dict({"train/loss": ...},
    on_step=True, on_epoch=True): its CSV has train/loss_step and train/loss_epoch columns, no train/loss."""
    import csv

    pl = pytest.importorskip("lightning.pytorch")
    from lightning.pytorch.loggers import CSVLogger

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            logits = self(batch[0])
            loss = torch.nn.functional.cross_entropy(logits, batch[1])
            self.log_dict({"train/loss": loss, "train/acc": (logits.argmax(1) == batch[1]).float().mean()},
                          on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, _):
            self.log("val/acc", (self(batch[0]).argmax(1) == batch[1]).float().mean())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.5)

    pl.seed_everything(0, verbose=False)
    x = torch.randn(48, 4)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    pl.Trainer(accelerator="cpu", devices=1, max_epochs=2, log_every_n_steps=1, enable_progress_bar=False,
               enable_model_summary=False, logger=CSVLogger(tmp_path / "logs", name="", version=0),
               callbacks=[pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1)]).fit(
        Module(), loader, loader)
    metrics = tmp_path / "logs" / "version_0" / "metrics.csv"
    rows = list(csv.DictReader(metrics.read_text().splitlines()))
    assert {"train/loss_step", "train/loss_epoch", "train/acc_epoch", "val/acc"} <= set(rows[0])  # Lightning's spelling
    run = open_run(import_checkpoints(tmp_path / "ckpt", tmp_path / "run", metrics=metrics))
    assert run.epochs == [0, 1]
    for epoch, row in zip(run.epochs, run.metrics):
        mine = [r for r in rows if r["epoch"] == str(epoch)]
        expect = {name: float(next(r[column] for r in mine if r[column]))
                  for name, column in (("loss", "train/loss_epoch"), ("accuracy", "train/acc_epoch"),
                                       ("val_accuracy", "val/acc"))}
        assert {k: row[k] for k in expect} == pytest.approx(expect)
        assert not any("/" in k or k.endswith(("_step", "_epoch")) for k in row)
