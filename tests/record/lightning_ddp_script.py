"""Train a tiny LightningModule with 2 DDP processes on the CPU (gloo), recording with epochscope.

Run by tests/record/test_lightning.py as a separate process, because the "ddp" strategy
starts the other rank by running this same script again (it would re-run pytest otherwise).
Usage: python lightning_ddp_script.py RUN_DIR OUT_DIR EPOCHS [EVERY_N_STEPS]
Each rank writes OUT_DIR/rank-<global rank>.json saying what it did. Then a second, new
Trainer fits into the same run: its first epoch is one the run holds, so every rank must stop
with the recorder's message (written as "refused"), none left waiting for the others.
"""

import json
import os
import sys
from collections import OrderedDict

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from epochscope.lightning import Recorder


def data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()  # three classes
    return x, y


class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(OrderedDict([("fc1", nn.Linear(6, 8)), ("act", nn.ReLU()), ("hidden", nn.Linear(8, 5)),
                                              ("act2", nn.ReLU()), ("out", nn.Linear(5, 3))]))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        # sync_dist makes reading the epoch value an all-reduce that every rank must join.
        self.log("train_loss", loss, on_step=True, on_epoch=True, sync_dist=True)
        self.log("train_acc", (logits.argmax(1) == y).float().mean(), on_epoch=True)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y), sync_dist=True)
        self.log("val_acc", (logits.argmax(1) == y).float().mean(), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def main(run_dir, out_dir, epochs, every_n_steps=None):
    torch.set_num_threads(1)  # two processes share two cores
    pl.seed_everything(0, verbose=False)
    x, y = data()
    xv, yv = data(32, seed=1)
    steps = {"every_n_steps": every_n_steps} if every_n_steps else {}
    recorder = Recorder(layers=["net.hidden"], probe=(x[:24], y[:24]), test=(xv[:10], yv[:10]), run_dir=run_dir,
                        batch_size=10, **steps)
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=epochs, callbacks=[recorder],
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=1)
    trainer.fit(Tiny(), DataLoader(TensorDataset(x, y), batch_size=16), DataLoader(TensorDataset(xv, yv), batch_size=16))
    report = {"pid": os.getpid(), "global_rank": trainer.global_rank, "world_size": trainer.world_size,
              "epochs_trained": trainer.current_epoch, "recorder_opened": recorder.recorder is not None}
    again = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=epochs, logger=False,
                       callbacks=[Recorder(layers=["net.hidden"], probe=(x[:24], y[:24]), test=(xv[:10], yv[:10]),
                                           run_dir=run_dir, batch_size=10, **steps)],
                       enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    try:
        again.fit(Tiny(), DataLoader(TensorDataset(x, y), batch_size=16))
        report["refused"] = None
    except ValueError as err:
        report["refused"] = str(err)
    with open(os.path.join(out_dir, f"rank-{trainer.global_rank}.json"), "w") as fh:
        json.dump(report, fh)
    # Lightning leaves the gloo process group alive after fit; left to the interpreter's exit, its
    # threads were sometimes destroyed while still joinable and the process aborted ("terminate
    # called without an active exception", exit -6: seen once in three runs of the suite here).
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else None)
