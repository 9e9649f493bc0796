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
