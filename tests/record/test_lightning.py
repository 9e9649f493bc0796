"""The Lightning recorder: one callback in Trainer.fit, single process and DDP on 2 CPU processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")

from epochscope import open_run  # noqa: E402
from epochscope.lightning import Recorder  # noqa: E402

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from lightning_ddp_script import Tiny, data  # noqa: E402


def loaders():
    x, y = data()
    xv, yv = data(32, seed=1)
    ds = torch.utils.data.TensorDataset
    return (x, y), torch.utils.data.DataLoader(ds(x, y), batch_size=16), torch.utils.data.DataLoader(ds(xv, yv), batch_size=16)


def trainer(recorder, epochs, **kwargs):
    return pl.Trainer(accelerator="cpu", devices=1, max_epochs=epochs, callbacks=[recorder], logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, **kwargs)


def test_records_epoch_zero_then_every_epoch_with_validation_metrics(tmp_path):
    pl.seed_everything(0, verbose=False)
    (x, y), train, val = loaders()
    module = Tiny()
    initial = module.net.hidden.weight.detach().clone()
    rec = Recorder(["net.hidden"], probe=(x[:20], y[:20]), run_dir=tmp_path / "r", class_names=["a", "b", "c"])
    trainer(rec, 2).fit(module, train, val)
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 1, 2] and run.framework == "lightning" and run.layers == ["net.hidden"]
    np.testing.assert_allclose(run.weights(0)["net.hidden.weight"], initial.numpy())
    np.testing.assert_allclose(run.weights(2)["net.hidden.weight"], module.net.hidden.weight.detach().numpy())
    with torch.no_grad():
        expected = module.net.hidden(module.net.act(module.net.fc1(x[:20]))).numpy()
        predicted = module(x[:20]).argmax(1).numpy()
    np.testing.assert_allclose(run.activations("net.hidden", 2), expected, atol=2e-3)
    np.testing.assert_array_equal(run.predictions(2), predicted)
    m0, m1, m2 = run.metrics
    assert "loss" not in m0 and m0["step"] == 0
    # train_loss (on_step + on_epoch) -> loss, train_acc -> accuracy, val_acc -> val_accuracy; no *_step values
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(m1) and m2["step"] == 8
    assert not any(k.endswith(("_step", "_epoch")) or k in ("train_loss", "val_acc") for k in m2)
    assert m1["val_loss"] != m2["val_loss"]  # each epoch's own validation, not a stale one
    assert rec.recorder is None  # released when fit ends


def test_epochs_without_validation_leave_out_stale_validation_metrics(tmp_path):
    pl.seed_everything(0, verbose=False)
    (x, y), train, val = loaders()
    rec = Recorder(["net.hidden"], probe=(x, y), run_dir=tmp_path / "r")
    trainer(rec, 4, check_val_every_n_epoch=2).fit(Tiny(), train, val)
    metrics = open_run(tmp_path / "r").metrics
    assert ["val_loss" in m for m in metrics] == [False, False, True, False, True]
    assert all("loss" in m for m in metrics[1:])


def test_a_second_fit_appends_and_records_epoch_zero_once(tmp_path):
    pl.seed_everything(0, verbose=False)
    (x, y), train, val = loaders()
    module = Tiny()
    for _ in range(2):
        trainer(Recorder(["net.hidden"], probe=(x, y), run_dir=tmp_path / "r"), 1).fit(module, train, val)
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 1, 2] and [m["epoch"] for m in run.metrics] == [0, 1, 2]


def test_unknown_layer_lists_module_names(tmp_path):
    (x, y), train, val = loaders()
    with pytest.raises(ValueError, match=r"layer 'net.hiden' not found; did you mean 'net.hidden'\?"):
        trainer(Recorder(["net.hiden"], probe=(x, y), run_dir=tmp_path / "r"), 1).fit(Tiny(), train, val)
    assert not (tmp_path / "r").exists()  # nothing written before the names were checked


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_writes_one_run_from_rank_zero(tmp_path):
    epochs = 3
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    env.pop("MASTER_PORT", None)  # Lightning picks a free port
    done = subprocess.run([sys.executable, str(HERE / "lightning_ddp_script.py"), str(tmp_path / "run"), str(tmp_path),
                           str(epochs)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = {r: json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)}  # both ranks finished
    assert ranks[0]["world_size"] == 2 and ranks[1]["epochs_trained"] == epochs and ranks[0]["pid"] != ranks[1]["pid"]
    run = open_run(tmp_path / "run")
    assert run.epochs == list(range(epochs + 1))
    entries = sorted(p.name for p in (tmp_path / "run" / "epochs").iterdir())
    assert entries == [f"{e:06d}" for e in range(epochs + 1)]  # no partial or duplicate epoch folders
    assert (tmp_path / "run" / ".lock").read_text().strip() == f"pid {ranks[0]['pid']}"  # rank 0 was the writer
    for epoch, m in zip(run.epochs, run.metrics):
        assert m["epoch"] == epoch
        assert run.activations("net.hidden", epoch).shape == (24, 5) and run.test_predictions(epoch).shape == (10,)
        assert np.isfinite(np.asarray(run.activations("net.hidden", epoch), dtype=np.float32)).all()
        if epoch:
            assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(m)


class SlashNames(Tiny):
    """Logs as many Lightning users do: ``train/loss`` on step and epoch, ``val/acc``."""

    def training_step(self, batch, _):
        x, y = batch
        logits = self(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        self.log("train/loss", loss, on_step=True, on_epoch=True)
        self.log("train/acc", (logits.argmax(1) == y).float().mean(), on_epoch=True)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        logits = self(x)
        self.log("val/loss", torch.nn.functional.cross_entropy(logits, y))
        self.log("val/acc", (logits.argmax(1) == y).float().mean())


class Spy(pl.Callback):
    """What the trainer holds when an epoch is recorded."""

    def __init__(self):
        self.seen = []

    def on_train_epoch_end(self, trainer, pl_module):
        self.seen.append({k: float(v) for k, v in trainer.callback_metrics.items()})


def test_slash_names_from_self_log_are_stored_under_one_spelling(tmp_path):
    pl.seed_everything(0, verbose=False)
    (x, y), train, val = loaders()
    rec, spy = Recorder(["net.hidden"], probe=(x, y), run_dir=tmp_path / "r"), Spy()
    pl.Trainer(accelerator="cpu", devices=1, max_epochs=2, callbacks=[spy, rec], logger=False, check_val_every_n_epoch=2,
               enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False).fit(SlashNames(), train, val)
    m1, m2 = open_run(tmp_path / "r").metrics[1:]
    # the names Lightning really puts in callback_metrics for these self.log calls
    assert {"train/loss", "train/loss_step", "train/loss_epoch", "train/acc_epoch", "val/acc", "val/loss"} <= set(spy.seen[1])
    assert m2["loss"] == pytest.approx(spy.seen[1]["train/loss_epoch"]) and m2["step"] == 8
    assert m2["accuracy"] == pytest.approx(spy.seen[1]["train/acc_epoch"])
    assert m2["val_accuracy"] == pytest.approx(spy.seen[1]["val/acc"])
    assert m2["val_loss"] == pytest.approx(spy.seen[1]["val/loss"])
    assert not any("/" in k or k.endswith(("_step", "_epoch")) for k in m2)
    assert "loss" in m1 and "val_accuracy" not in m1  # epoch 1 ran no validation: no stale val/acc


def test_takes_the_shared_options():
    import inspect

    from epochscope.record.settings import OPTION_NAMES

    params = inspect.signature(Recorder).parameters
    assert [p for p in params if p in OPTION_NAMES] == list(OPTION_NAMES)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'batchsize'.*did you mean 'batch_size'"):
        Recorder(["net.hidden"], probe=data(), run_dir="never", batchsize=4)
