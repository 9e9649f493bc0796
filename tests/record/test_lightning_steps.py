"""The Lightning recorder inside epochs: every N optimizer steps (trainer.global_step), each record
with its step and fractional epoch, counted here independently by a callback of our own."""

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")

from epochscope import check_run, open_run  # noqa: E402
from epochscope.lightning import Recorder  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from lightning_ddp_script import Tiny, data  # noqa: E402


class Counter(pl.Callback):
    """Counts optimizer steps itself (one per `accumulate` batches) and keeps the hidden weight after each."""

    def __init__(self, accumulate=1):
        self.batches, self.accumulate, self.weights, self.epoch_ends = 0, accumulate, {}, []

    def on_train_start(self, trainer, module):
        self.weights.setdefault(self.batches // self.accumulate, module.net.hidden.weight.detach().clone().numpy())

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.batches += 1
        if self.batches % self.accumulate == 0:
            self.weights[self.batches // self.accumulate] = module.net.hidden.weight.detach().clone().numpy()

    def on_train_epoch_end(self, trainer, module):
        self.epoch_ends.append(self.batches // self.accumulate)


def fit(recorder, epochs, folder, counter, ckpt_path=None, **kwargs):
    (x, y) = data()
    ds = torch.utils.data.TensorDataset
    train = torch.utils.data.DataLoader(ds(x, y), batch_size=16)  # 64 examples: 4 batches an epoch
    val = torch.utils.data.DataLoader(ds(*data(32, seed=1)), batch_size=16)
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=epochs, callbacks=[counter, recorder, *kwargs.pop(
        "callbacks", [])], logger=False, default_root_dir=folder, enable_progress_bar=False, enable_model_summary=False,
        **kwargs)
    module = Tiny()
    trainer.fit(module, train, val, ckpt_path=ckpt_path)
    return module


def probe():
    x, y = data()
    return x[:20], y[:20]


def test_records_every_n_steps_with_fractional_epochs(tmp_path):
    pl.seed_everything(0, verbose=False)
    counter = Counter()
    fit(Recorder(["net.hidden"], probe=probe(), run_dir=tmp_path / "r", every_n_steps=3), 2, tmp_path, counter,
        enable_checkpointing=False)
    run = open_run(tmp_path / "r")
    assert counter.epoch_ends == [4, 8]
    expected = sorted({0, *range(3, counter.batches + 1, 3), *counter.epoch_ends})
    assert run.epochs == expected == [0, 3, 4, 6, 8]
    np.testing.assert_allclose(run.timeline.epochs, [s / 4 for s in expected])
    for step in expected:
        np.testing.assert_allclose(run.weights(step)["net.hidden.weight"], counter.weights[step])
    rows = {r["epoch"]: r for r in run.metrics}
    assert rows[3]["step"] == 3 and "loss" in rows[3] and "val_loss" not in rows[3] and "val_loss" in rows[8]
    assert run.timeline.label(3) == "epoch 0.75 · step 3"


def test_gradient_accumulation_records_each_optimizer_step_once(tmp_path):
    pl.seed_everything(0, verbose=False)
    counter = Counter(accumulate=2)
    fit(Recorder(["net.hidden"], probe=probe(), run_dir=tmp_path / "r", every_n_steps=1), 1, tmp_path, counter,
        enable_checkpointing=False, accumulate_grad_batches=2)
    run = open_run(tmp_path / "r")
    assert counter.epoch_ends == [2] and run.epochs == [0, 1, 2]
    np.testing.assert_allclose(run.timeline.epochs, [0, 0.5, 1.0])  # step 1 after 2 of the 4 batches
    for step in run.epochs:
        np.testing.assert_allclose(run.weights(step)["net.hidden.weight"], counter.weights[step])


def test_resuming_from_a_checkpoint_keeps_the_steps(tmp_path):
    pl.seed_everything(0, verbose=False)
    checkpoints = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    first = Counter()
    fit(Recorder(["net.hidden"], probe=probe(), run_dir=tmp_path / "r", every_n_steps=3), 1, tmp_path, first,
        callbacks=[checkpoints])
    assert open_run(tmp_path / "r").epochs == [0, 3, 4]
    second = Counter()
    second.batches = 4  # the checkpoint's step count, for the weights this callback keys by step
    resumed = fit(Recorder(["net.hidden"], probe=probe(), run_dir=tmp_path / "r", every_n_steps=3), 3, tmp_path,
                  second, ckpt_path=tmp_path / "ckpt" / "epoch=0-step=4.ckpt")
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 3, 4, 6, 8, 9, 12]
    np.testing.assert_allclose(run.timeline.epochs, [0, 0.75, 1, 1.5, 2, 2.25, 3])
    for step in (6, 8, 9, 12):
        np.testing.assert_allclose(run.weights(step)["net.hidden.weight"], second.weights[step])
    np.testing.assert_allclose(run.weights(12)["net.hidden.weight"], resumed.net.hidden.weight.detach().numpy())
    # From the first checkpoint again: training at step 4 while the run holds up to 12 is refused before it trains
    with pytest.raises(ValueError, match="holds records up to step 12, but training is at step 4"):
        fit(Recorder(["net.hidden"], probe=probe(), run_dir=tmp_path / "r", every_n_steps=3), 3, tmp_path, Counter(),
            ckpt_path=tmp_path / "ckpt" / "epoch=0-step=4.ckpt")
    # ... or replaces those records with replace_epochs=True
    fit(Recorder(["net.hidden"], probe=probe(), run_dir=tmp_path / "r", every_n_steps=5, replace_epochs=True), 2,
        tmp_path, Counter(), ckpt_path=tmp_path / "ckpt" / "epoch=0-step=4.ckpt")
    assert open_run(tmp_path / "r").epochs == [0, 3, 4, 5, 8]


@pytest.mark.slow
def test_ddp_records_steps_from_rank_zero_and_every_rank_stops_alike(tmp_path):
    import json
    import os
    import subprocess

    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    env.pop("MASTER_PORT", None)
    script = Path(__file__).parent / "lightning_ddp_script.py"
    # 64 examples over 2 ranks in batches of 16: 2 optimizer steps an epoch, 2 epochs, a record every step
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "run"), str(tmp_path), "2", "1"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = {r: json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)}
    # a new Trainer starts at step 0 while the run holds up to step 4: both ranks stop, none waits
    assert all("holds records up to step 4, but training is at step 0" in (ranks[r]["refused"] or "") for r in (0, 1))
    run = open_run(tmp_path / "run")
    assert run.epochs == [0, 1, 2, 3, 4] and run.timeline.epochs == (0.0, 0.5, 1.0, 1.5, 2.0)
    assert sorted(p.name for p in (tmp_path / "run" / "epochs").iterdir()) == [f"{s:06d}" for s in range(5)]
    assert (tmp_path / "run" / ".lock").read_text().strip() == f"pid {ranks[0]['pid']}"


class Batches(torch.utils.data.IterableDataset):
    """An iterable of 4 batches a pass: Lightning does not know the epoch's length."""

    def __iter__(self):
        x, y = data()
        for b in range(4):
            yield x[b * 16:(b + 1) * 16], y[b * 16:(b + 1) * 16]


def test_an_epoch_of_unknown_length_keeps_only_the_step_inside_it(tmp_path):
    pl.seed_everything(0, verbose=False)
    counter = Counter()
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=2, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[
                             counter, Recorder(["net.hidden"], probe=probe(), run_dir=tmp_path / "r", every_n_steps=2)])
    trainer.fit(Tiny(), torch.utils.data.DataLoader(Batches(), batch_size=None))
    run = open_run(tmp_path / "r")
    assert counter.epoch_ends == [4, 8] and run.epochs == [0, 2, 4, 6, 8]
    # inside an epoch the fraction is not guessed; epoch ends (the batch records at steps 4 and 8 replaced) know it
    assert run.timeline.epochs == (0.0, None, 1.0, None, 2.0) and run.timeline.axis == "step"
    for step in run.epochs:
        np.testing.assert_allclose(run.weights(step)["net.hidden.weight"], counter.weights[step])


@pytest.mark.slow
def test_max_steps_ending_inside_an_epoch_records_where_it_stopped(tmp_path):
    # max_steps=6 with 4 batches an epoch: training stops after 2 of epoch 1's 4 batches, at epoch 1.5
    # (Lightning still calls on_train_epoch_end; that record must not claim epoch 2)
    pl.seed_everything(0, verbose=False)
    counter = Counter()
    module = fit(Recorder(["net.hidden"], probe=probe(), run_dir=tmp_path / "r", every_n_steps=3), 3, tmp_path, counter,
                 enable_checkpointing=False, max_steps=6)
    run = open_run(tmp_path / "r")
    assert counter.batches == 6 and run.epochs == [0, 3, 4, 6]
    assert run.timeline.epochs == (0.0, 0.75, 1.0, 1.5) and run.timeline.label(6) == "epoch 1.5 · step 6"
    np.testing.assert_allclose(run.weights(6)["net.hidden.weight"], module.net.hidden.weight.detach().numpy())


@pytest.mark.slow
def test_resuming_from_a_checkpoint_inside_an_epoch_keeps_steps_and_fractions(tmp_path):
    pl.seed_everything(0, verbose=False)
    checkpoints = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_train_steps=6)
    fit(Recorder(["net.hidden"], probe=probe(), run_dir=tmp_path / "r", every_n_steps=3), 2, tmp_path, Counter(),
        callbacks=[checkpoints], max_steps=6)
    assert open_run(tmp_path / "r").epochs == [0, 3, 4, 6]
    second = Counter()
    second.batches = 6
    fit(Recorder(["net.hidden"], probe=probe(), run_dir=tmp_path / "r", every_n_steps=3), 3, tmp_path, second,
        ckpt_path=tmp_path / "ckpt" / "epoch=1-step=6.ckpt")
    run = open_run(tmp_path / "r")
    assert second.batches == 12 and run.epochs == [0, 3, 4, 6, 8, 9, 12]
    assert run.timeline.epochs == (0.0, 0.75, 1.0, 1.5, 2.0, 2.25, 3.0)
    for step in (8, 9, 12):
        np.testing.assert_allclose(run.weights(step)["net.hidden.weight"], second.weights[step])


class ChangeAtTrainEnd(pl.Callback):
    """Changes the weights at on_train_end, as StochasticWeightAveraging does when it swaps in its average."""

    def on_train_end(self, trainer, module):
        with torch.no_grad():
            module.net.hidden.weight.add_(1.0)


def assert_whole_and_released(folder, recorder):
    report = check_run(folder)
    assert report.ok and not report.warnings and report.writer is None and recorder.recorder is None  # whole, released


def test_every_n_epochs_records_the_last_epoch_of_fit(tmp_path):
    pl.seed_everything(0, verbose=False)
    counter = Counter()
    rec = Recorder(["net.hidden"], probe=probe(), run_dir=tmp_path / "r", every_n_epochs=3)
    module = fit(rec, 5, tmp_path, counter, enable_checkpointing=False)
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 3, 5]  # 5 is no multiple of 3, but max_epochs: the trained model is in the run
    for epoch in (3, 5):
        np.testing.assert_allclose(run.weights(epoch)["net.hidden.weight"], counter.weights[counter.epoch_ends[epoch - 1]])
    np.testing.assert_allclose(run.weights(5)["net.hidden.weight"], module.net.hidden.weight.detach().numpy())
    assert run.epoch_metrics(5)["step"] == 20 and "val_loss" in run.epoch_metrics(5)
    assert_whole_and_released(tmp_path / "r", rec)


@pytest.mark.parametrize("on_train_epoch_end", [True, False])
def test_early_stopping_records_the_last_epoch_trained(tmp_path, on_train_epoch_end):
    # min_delta=10 and patience=3: no epoch after the first improves, so training stops after epoch 4.
    # Deciding in on_train_epoch_end, EarlyStopping runs after every other callback: the recorder learns it at
    # on_train_end; deciding in on_validation_end, it has set trainer.should_stop when the recorder sees the epoch end.
    pl.seed_everything(0, verbose=False)
    counter = Counter()
    rec = Recorder(["net.hidden"], probe=probe(), run_dir=tmp_path / "r", every_n_epochs=3)
    stopper = pl.callbacks.EarlyStopping("val_loss", min_delta=10, patience=3,
                                         check_on_train_epoch_end=on_train_epoch_end)
    module = fit(rec, 20, tmp_path, counter, enable_checkpointing=False, callbacks=[stopper])
    assert counter.epoch_ends == [4, 8, 12, 16] and stopper.stopped_epoch == 3
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 3, 4]
    np.testing.assert_allclose(run.weights(4)["net.hidden.weight"], counter.weights[16])
    np.testing.assert_allclose(run.weights(4)["net.hidden.weight"], module.net.hidden.weight.detach().numpy())
    assert run.epoch_metrics(4)["step"] == 16 and "val_loss" in run.epoch_metrics(4)
    assert_whole_and_released(tmp_path / "r", rec)


def test_the_last_epoch_is_not_recorded_once_the_weights_changed_before_train_end(tmp_path, caplog):
    pl.seed_everything(0, verbose=False)
    rec = Recorder(["net.hidden"], probe=probe(), run_dir=tmp_path / "r", every_n_epochs=3)
    stopper = pl.callbacks.EarlyStopping("val_loss", min_delta=10, patience=3)
    with caplog.at_level("WARNING", logger="epochscope"):
        fit(rec, 20, tmp_path, ChangeAtTrainEnd(), enable_checkpointing=False, callbacks=[stopper])
    assert open_run(tmp_path / "r").epochs == [0, 3]
    assert "epoch 4, the last one trained, is not recorded" in caplog.text and "list the Recorder before it" in caplog.text
    assert_whole_and_released(tmp_path / "r", rec)


def test_every_n_epochs_with_steps_records_the_last_epoch_end_at_its_step(tmp_path):
    pl.seed_everything(0, verbose=False)
    counter = Counter()
    rec = Recorder(["net.hidden"], probe=probe(), run_dir=tmp_path / "r", every_n_steps=3, every_n_epochs=2)
    fit(rec, 3, tmp_path, counter, enable_checkpointing=False)
    run = open_run(tmp_path / "r")
    # steps 3, 6, 9, 12 (the end of epoch 3, the last), the end of epoch 2 (step 8); not the end of epoch 1 (step 4)
    assert counter.epoch_ends == [4, 8, 12] and run.epochs == [0, 3, 6, 8, 9, 12]
    np.testing.assert_allclose(run.timeline.epochs, [0, 0.75, 1.5, 2, 2.25, 3])
    np.testing.assert_allclose(run.weights(12)["net.hidden.weight"], counter.weights[12])
    assert "val_loss" in run.epoch_metrics(12)
