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


def checkpointing_trainer(recorder, epochs, folder, **kwargs):
    return pl.Trainer(accelerator="cpu", devices=1, max_epochs=epochs, callbacks=[recorder, *kwargs.pop("callbacks", [])],
                      logger=False, default_root_dir=folder, enable_progress_bar=False, enable_model_summary=False,
                      **kwargs)


def test_kind7_epochs_follow_current_epoch_when_resuming_from_a_checkpoint(tmp_path):
    pl.seed_everything(0, verbose=False)
    (x, y), train, val = loaders()
    checkpoints = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    module = Tiny()
    checkpointing_trainer(Recorder(["net.hidden"], probe=(x, y), run_dir=tmp_path / "r"), 4, tmp_path,
                          callbacks=[checkpoints]).fit(module, train, val)
    assert open_run(tmp_path / "r").epochs == [0, 1, 2, 3, 4]
    after_two = tmp_path / "ckpt" / "epoch=1-step=8.ckpt"  # saved at the end of the second epoch
    # Resuming from it trains epochs 3 and 4 again. Before: they were appended as epochs 5 and 6.
    with pytest.raises(ValueError, match=r"epoch 3 is already recorded in .* \(epochs 0\.\.4\); Lightning counts epochs "
                                         r"with trainer\.current_epoch.*ckpt_path=.*To replace epochs 3\.\.4 .*"
                                         r"replace_epochs=True"):
        trainer(Recorder(["net.hidden"], probe=(x, y), run_dir=tmp_path / "r"), 4).fit(Tiny(), train, val,
                                                                                       ckpt_path=after_two)
    assert open_run(tmp_path / "r").epochs == [0, 1, 2, 3, 4]
    resumed = Tiny()
    trainer(Recorder(["net.hidden"], probe=(x, y), run_dir=tmp_path / "r", replace_epochs=True), 4).fit(
        resumed, train, val, ckpt_path=after_two)
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 1, 2, 3, 4] and [m["epoch"] for m in run.metrics] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(run.weights(4)["net.hidden.weight"], resumed.net.hidden.weight.detach().numpy())
    assert run.metrics[4]["step"] == 16
    # A fresh run from the same checkpoint starts at the epoch it holds: 2, then 3 and 4.
    trainer(Recorder(["net.hidden"], probe=(x, y), run_dir=tmp_path / "fresh"), 4).fit(Tiny(), train, val,
                                                                                       ckpt_path=after_two)
    fresh = open_run(tmp_path / "fresh")
    saved = torch.load(after_two, weights_only=False)["state_dict"]["net.hidden.weight"]
    assert fresh.epochs == [2, 3, 4] and np.allclose(fresh.weights(2)["net.hidden.weight"], saved.numpy())


class StopInEpoch(pl.Callback):
    """Sets ``trainer.should_stop`` after ``batch`` batches of epoch index ``epoch``, as a callback stopping
    training in the middle of an epoch does (Lightning then leaves the epoch and still calls on_train_epoch_end)."""

    def __init__(self, epoch, batch):
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx + 1 == self.batch:
            trainer.should_stop = True


class InterruptInEpoch(Tiny):
    """Ctrl-C in the middle of the second epoch (batch 3 of its 4)."""

    def training_step(self, batch, i):
        if self.current_epoch == 1 and i == 2:
            raise KeyboardInterrupt
        return super().training_step(batch, i)


def assert_whole_and_released(folder, recorder):
    from epochscope import check_run

    report = check_run(folder)
    assert report.ok and not report.warnings and report.writer is None and recorder.recorder is None


@pytest.mark.parametrize("stop", ["max_steps", "should_stop"])
def test_an_epoch_cut_short_is_not_recorded_as_a_whole_epoch(tmp_path, caplog, stop):
    # 4 batches an epoch; training stops after 2 of epoch 2's batches (step 6). Lightning still calls
    # on_train_epoch_end with current_epoch 1: before, that model was recorded as epoch 2, a whole epoch it never
    # finished (its metrics those of half an epoch).
    pl.seed_everything(0, verbose=False)
    (x, y), train, val = loaders()
    rec = Recorder(["net.hidden"], probe=(x, y), run_dir=tmp_path / "r")
    options = {"max_steps": 6} if stop == "max_steps" else {"callbacks": [rec, StopInEpoch(1, 2)]}
    module = Tiny()
    fit = trainer(rec, 5, **options) if stop == "max_steps" else pl.Trainer(
        accelerator="cpu", devices=1, max_epochs=5, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, **options)
    with caplog.at_level("WARNING", logger="epochscope"):
        fit.fit(module, train, val)
    assert fit.global_step == 6
    assert open_run(tmp_path / "r").epochs == [0, 1]
    why = "max_steps=6 reached" if stop == "max_steps" else "trainer.should_stop set"
    assert (f"epoch 2 was cut short ({why}, after 2 of its 4 batches): its model is not recorded as epoch 2"
            in caplog.text) and "every_n_steps" in caplog.text
    assert_whole_and_released(tmp_path / "r", rec)
    from epochscope import check_run  # the run says so too: check names it (a note), no missing epoch

    assert [f.message for f in check_run(tmp_path / "r").findings] == [
        f"epoch 2 was cut short ({why}, after 2 of its 4 batches): its model is not recorded, as it is no whole epoch's"]


def test_max_steps_inside_an_epoch_records_the_last_whole_epoch_every_n_epochs_would_leave_out(tmp_path, caplog):
    """every_n_epochs=3, 4 batches an epoch, max_steps=22 (2 batches into epoch 6): at epoch 5's end Lightning
    already knows the next epoch cannot finish, so epoch 5 is the last whole one. Before, it was left out and
    lost once epoch 6 trained: the run held 0, 3."""
    pl.seed_everything(0, verbose=False)
    (x, y), train, val = loaders()
    rec = Recorder(["net.hidden"], probe=(x, y), run_dir=tmp_path / "r", every_n_epochs=3)
    module = Tiny()
    with caplog.at_level("WARNING", logger="epochscope"):
        trainer(rec, 10, max_steps=22).fit(module, train, val)
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 3, 5] and run.epoch_metrics(5)["step"] == 20
    assert "epoch 6 was cut short (max_steps=22 reached, after 2 of its 4 batches)" in caplog.text
    assert "last whole epoch" not in caplog.text


def test_limit_train_batches_is_the_epoch_and_an_epoch_ending_with_max_steps_is_whole(tmp_path, caplog):
    pl.seed_everything(0, verbose=False)
    (x, y), train, val = loaders()
    limited = Recorder(["net.hidden"], probe=(x, y), run_dir=tmp_path / "limited")
    trainer(limited, 2, limit_train_batches=2).fit(Tiny(), train, val)
    run = open_run(tmp_path / "limited")
    assert run.epochs == [0, 1, 2] and run.epoch_metrics(2)["step"] == 4  # 2 batches: the whole (limited) epoch
    module = Tiny()
    with caplog.at_level("WARNING", logger="epochscope"):
        trainer(Recorder(["net.hidden"], probe=(x, y), run_dir=tmp_path / "exact"), 5, max_steps=8).fit(
            module, train, val)
    run = open_run(tmp_path / "exact")
    assert run.epochs == [0, 1, 2] and "cut short" not in caplog.text  # max_steps at an epoch's end: a whole epoch
    np.testing.assert_allclose(run.weights(2)["net.hidden.weight"], module.net.hidden.weight.detach().numpy())


def test_ctrl_c_in_an_epoch_keeps_the_finished_epochs_and_releases_the_run(tmp_path):
    import signal

    pl.seed_everything(0, verbose=False)
    (x, y), train, val = loaders()
    rec = Recorder(["net.hidden"], probe=(x, y), run_dir=tmp_path / "r")
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):  # Lightning's graceful shutdown: on_exception, then sys.exit(1)
            trainer(rec, 3).fit(InterruptInEpoch(), train, val)
    finally:
        signal.signal(signal.SIGINT, handler)  # the shutdown ignores SIGINT from then on
    assert open_run(tmp_path / "r").epochs == [0, 1]
    assert_whole_and_released(tmp_path / "r", rec)


def test_a_new_trainer_without_a_checkpoint_is_refused_before_it_trains(tmp_path):
    pl.seed_everything(0, verbose=False)
    (x, y), train, val = loaders()
    module = Tiny()
    trainer(Recorder(["net.hidden"], probe=(x, y), run_dir=tmp_path / "r"), 1).fit(module, train, val)
    before = module.net.hidden.weight.detach().clone()
    with pytest.raises(ValueError, match=r"epoch 1 is already recorded .*a new Trainer starts at 0"):
        trainer(Recorder(["net.hidden"], probe=(x, y), run_dir=tmp_path / "r"), 1).fit(module, train, val)
    assert torch.equal(module.net.hidden.weight, before)  # refused before the epoch was trained
    same = trainer(Recorder(["net.hidden"], probe=(x, y), run_dir=tmp_path / "s"), 1)
    same.fit(module, train, val)
    same.fit_loop.max_epochs = 2
    same.fit(module, train, val)  # the same Trainer keeps counting
    run = open_run(tmp_path / "s")
    assert run.epochs == [0, 1, 2] and [m["epoch"] for m in run.metrics] == [0, 1, 2]


def test_kind9_overwrite_starts_one_fresh_run_which_later_fits_continue(tmp_path):
    pl.seed_everything(0, verbose=False)
    (x, y), train, val = loaders()
    trainer(Recorder(["net.hidden"], probe=(x, y), run_dir=tmp_path / "r"), 2).fit(Tiny(), train, val)
    module = Tiny()
    rec = Recorder(["net.hidden"], probe=(x, y), run_dir=tmp_path / "r", overwrite=True)
    again = trainer(rec, 1)
    again.fit(module, train, val)
    assert open_run(tmp_path / "r").epochs == [0, 1]
    again.fit_loop.max_epochs = 2
    again.fit(module, train, val)
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 1, 2]
    np.testing.assert_allclose(run.weights(2)["net.hidden.weight"], module.net.hidden.weight.detach().numpy())


class LogsEpoch(Tiny):
    def training_step(self, batch, i):
        self.log("epoch", 7.0, on_epoch=True, on_step=False)
        self.log("step", 5.0, on_epoch=True, on_step=False)
        return super().training_step(batch, i)


def test_kind7_user_metrics_named_epoch_or_step_never_replace_the_run_fields(tmp_path):
    pl.seed_everything(0, verbose=False)
    (x, y), train, val = loaders()
    trainer(Recorder(["net.hidden"], probe=(x, y), run_dir=tmp_path / "r"), 2).fit(LogsEpoch(), train, val)
    m = open_run(tmp_path / "r").metrics
    assert [r["epoch"] for r in m] == [0, 1, 2] and [r["step"] for r in m] == [0, 4, 8]
    assert m[2]["user_epoch"] == 7.0 and m[2]["user_step"] == 5.0


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
    # A new Trainer counts from 0 again: every rank stops with the message, none waits for the others.
    assert all("epoch 1 is already recorded" in (ranks[r]["refused"] or "") for r in (0, 1))
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


# --------------------------------------------------------------------------- the model zoo through Lightning

import zoo  # noqa: E402

ZOO = zoo.cases()


class Examples(torch.utils.data.Dataset):
    """(inputs, label) pairs; dict inputs collate into dicts of batches."""

    def __init__(self, x, y):
        self.x, self.y = x, torch.as_tensor(y)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        x = {k: torch.as_tensor(v[i]) for k, v in self.x.items()} if isinstance(self.x, dict) else torch.as_tensor(self.x[i])
        return x, self.y[i]


class ZooModule(pl.LightningModule):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, *args, **kwargs):
        return self.net(*args, **kwargs)

    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.cross_entropy(zoo.prediction(zoo.call(self.net, x)).float(), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


@pytest.mark.parametrize("case", ZOO, ids=[c.name for c in ZOO])
def test_zoo_through_lightning_stores_what_each_layer_computed(tmp_path, case):
    if case.name.startswith("hugging-face"):
        pytest.importorskip("transformers", reason="the Hugging Face case needs transformers (the 'transformers' extra)")
    pl.seed_everything(0, verbose=False)
    module = ZooModule(case.build())
    x, y = case.probe()
    rec = Recorder([f"net.{name}" for name in case.layers], probe=(x, y), run_dir=tmp_path / "r", batch_size=10,
                   **case.options)
    loader = torch.utils.data.DataLoader(Examples(x, y), batch_size=8)
    trainer(rec, 1, limit_train_batches=2).fit(module, loader)
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 1] and run.framework == "lightning"
    expected = case.expected(module.net, x)
    for name in case.layers:
        np.testing.assert_allclose(np.asarray(run.activations(f"net.{name}", 1), np.float32), expected[name],
                                   rtol=2e-3, atol=2e-3, err_msg=f"{case.name}: layer {name}")
    np.testing.assert_array_equal(run.predictions(1), zoo.model_argmax(module.net, x))
