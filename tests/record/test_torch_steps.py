"""The PyTorch recorder inside epochs (``rec.step()``, ``every_n_steps``) and every N epochs:
step numbers and fractional epochs checked against a count kept here, and each record's weights
against the model as it was after that many optimizer steps."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from epochscope import RunError, check_run, open_run  # noqa: E402
from epochscope.torch import Recorder  # noqa: E402

BATCHES = 5  # 40 examples in batches of 8


def setup():
    torch.manual_seed(0)
    x = torch.randn(40, 4)
    y = (x[:, 0] > 0).long()
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    return x, y, model, torch.optim.SGD(model.parameters(), lr=0.2)


def train(rec, x, y, model, opt, epochs, first_epoch=1, weights=None, steps=0):
    """Train ``epochs`` epochs calling rec.step() after each optimizer step; returns the steps done
    and fills ``weights`` {step: first layer's weight} counted here."""
    for epoch in range(first_epoch, first_epoch + epochs):
        for b in range(BATCHES):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[b * 8:(b + 1) * 8]), y[b * 8:(b + 1) * 8])
            loss.backward()
            opt.step()
            steps += 1
            if weights is not None:
                weights[steps] = model[0].weight.detach().clone().numpy()
            rec.step(metrics={"loss": loss.item()})
        rec.record(epoch, metrics={"accuracy": 0.5})
    return steps


def test_records_every_n_steps_with_fractional_epochs(tmp_path):
    x, y, model, opt = setup()
    weights = {0: model[0].weight.detach().clone().numpy()}
    rec = Recorder(model, ["1"], (x, y), tmp_path / "r", every_n_steps=2, steps_per_epoch=BATCHES)
    assert rec.record(0) == 0
    steps = train(rec, x, y, model, opt, 2, weights=weights)
    rec.close()
    run = open_run(tmp_path / "r")
    expected = sorted({0, *range(2, steps + 1, 2), BATCHES, 2 * BATCHES})
    assert run.epochs == expected == [0, 2, 4, 5, 6, 8, 10]
    np.testing.assert_allclose(run.timeline.epochs, [s / BATCHES for s in expected])
    for step in expected:
        np.testing.assert_allclose(run.weights(step)["0.weight"], weights[step])
    rows = {r["epoch"]: r for r in run.metrics}
    # step 10 ends the second epoch: recorded once, with the epoch end's metrics (it replaced the batch's record)
    assert rows[10]["accuracy"] == 0.5 and rows[10]["epochs_done"] == 2.0 and "loss" not in rows[10]
    assert "loss" in rows[4] and rows[4]["step"] == 4
    assert check_run(tmp_path / "r").ok


def test_without_steps_per_epoch_the_epoch_inside_is_unknown_and_the_axis_is_steps(tmp_path):
    x, y, model, opt = setup()
    rec = Recorder(model, ["1"], (x, y), tmp_path / "r", every_n_steps=3)
    rec.record(0)
    train(rec, x, y, model, opt, 1)
    rec.close()
    tl = open_run(tmp_path / "r").timeline
    assert tl.records == (0, 3, 5) and tl.epochs == (0.0, None, 1.0)
    assert tl.axis == "step" and tl.label(3) == "step 3" and tl.label(5) == "epoch 1 · step 5"
    np.testing.assert_array_equal(tl.values(), [0, 3, 5])


def test_every_n_epochs_records_the_first_and_every_nth_epoch(tmp_path):
    x, y, model, opt = setup()
    rec = Recorder(model, ["1"], (x, y), tmp_path / "r", every_n_epochs=2)
    got = [rec.record(e) for e in range(5)] + [rec.record()]
    assert got == [0, None, 2, None, 4, None] and open_run(tmp_path / "r").epochs == [0, 2, 4]
    rec.close()  # epoch 5, left out, was the last: the model is still its, so close records it
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 2, 4, 5] and run.manifest.record_unit == "epoch" and run.manifest.schema_version == 1
    assert run.timeline.label(4) == "epoch 4" and run.timeline.axis == "epoch"


def train_epochs(rec, x, y, model, opt, epochs, weights):
    """Train ``epochs`` whole epochs, calling rec.record(epoch) after each; ``weights`` gets
    {epoch: first layer's weight} and {("loss", epoch): the epoch's last loss}, kept here."""
    for epoch in range(1, epochs + 1):
        for b in range(BATCHES):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[b * 8:(b + 1) * 8]), y[b * 8:(b + 1) * 8])
            loss.backward()
            opt.step()
        weights[epoch] = model[0].weight.detach().clone().numpy()
        weights["loss", epoch] = loss.item()
        rec.record(epoch, metrics={"loss": loss.item()})


def test_every_n_epochs_records_the_last_epoch_trained_when_the_recorder_closes(tmp_path):
    x, y, model, opt = setup()
    weights = {0: model[0].weight.detach().clone().numpy()}
    with Recorder(model, ["1"], (x, y), tmp_path / "r", every_n_epochs=3) as rec:
        rec.record(0)
        train_epochs(rec, x, y, model, opt, 10, weights)
    run = open_run(tmp_path / "r")
    # 3, 6, 9 and the last epoch, 10, which is no multiple of 3: the trained model is in the run
    assert run.epochs == [0, 3, 6, 9, 10]
    for epoch in run.epochs:
        np.testing.assert_allclose(run.weights(epoch)["0.weight"], weights[epoch])
    np.testing.assert_allclose(run.weights(10)["0.weight"], model[0].weight.detach().numpy())
    assert run.epoch_metrics(10)["loss"] == pytest.approx(weights["loss", 10])  # that epoch's own metrics
    report = check_run(tmp_path / "r")
    assert report.ok and not report.warnings and report.writer is None


def test_the_last_epoch_is_not_recorded_under_its_number_once_the_model_changed(tmp_path, caplog):
    x, y, model, opt = setup()
    weights = {}
    rec = Recorder(model, ["1"], (x, y), tmp_path / "r", every_n_epochs=3)
    rec.record(0)
    train_epochs(rec, x, y, model, opt, 4, weights)
    with torch.no_grad():
        model[0].weight.add_(1.0)  # e.g. the best weights loaded after training: not epoch 4's model
    with caplog.at_level("WARNING", logger="epochscope"):
        rec.close()
    assert open_run(tmp_path / "r").epochs == [0, 3]
    assert "epoch 4, the last one trained, is not recorded" in caplog.text and "rec.record(epoch, last=True)" in caplog.text


def test_record_last_true_records_an_epoch_every_n_epochs_leaves_out(tmp_path):
    x, y, model, opt = setup()
    rec = Recorder(model, ["1"], (x, y), tmp_path / "r", every_n_epochs=3)
    assert [rec.record(0), rec.record(1), rec.record(2, last=True)] == [0, None, 2]
    rec.close()
    assert open_run(tmp_path / "r").epochs == [0, 2]


def test_a_with_block_left_on_an_error_keeps_the_epoch_it_left_out_while_the_model_is_that_epochs(tmp_path):
    """Nothing finished is lost when training fails: the failure came right after epoch 1 ended (in
    an end-of-epoch callback, say), the model is still epoch 1's, so epoch 1 is recorded. It was
    dropped, and the run ended at epoch 0."""
    x, y, model, opt = setup()
    with pytest.raises(KeyError), Recorder(model, ["1"], (x, y), tmp_path / "r", every_n_epochs=3) as rec:
        rec.record(0)
        train_epochs(rec, x, y, model, opt, 1, {})
        ended = model[0].weight.detach().clone().numpy()
        raise KeyError("training failed")
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 1] and check_run(tmp_path / "r").writer is None
    np.testing.assert_allclose(run.weights(1)["0.weight"], ended)


def test_a_with_block_left_on_an_error_mid_epoch_records_nothing_more_and_says_so(tmp_path, caplog):
    x, y, model, opt = setup()
    with caplog.at_level("WARNING", logger="epochscope"), pytest.raises(KeyError), \
            Recorder(model, ["1"], (x, y), tmp_path / "r", every_n_epochs=3) as rec:
        rec.record(0)
        train_epochs(rec, x, y, model, opt, 1, {})
        with torch.no_grad():
            model[0].weight.add_(0.5)  # a batch of epoch 2 ran, then the failure
        raise KeyError("training failed")
    run = open_run(tmp_path / "r")
    assert run.epochs == [0] and check_run(tmp_path / "r").writer is None
    assert "epoch 1, the last one trained, is not recorded" in caplog.text and "Training failed" in caplog.text


def test_every_n_epochs_with_steps_records_the_last_epoch_end_at_its_step(tmp_path):
    x, y, model, opt = setup()
    weights = {}
    rec = Recorder(model, ["1"], (x, y), tmp_path / "r", every_n_steps=4, every_n_epochs=2, steps_per_epoch=BATCHES)
    rec.record(0)
    steps = train(rec, x, y, model, opt, 3, weights=weights)
    rec.close()
    run = open_run(tmp_path / "r")
    # steps 4, 8, 12 inside epochs; the end of epoch 2 (step 10); the end of epoch 3 (step 15), the last
    assert steps == 15 and run.epochs == [0, 4, 8, 10, 12, 15]
    np.testing.assert_allclose(run.timeline.epochs, [0, 0.8, 1.6, 2, 2.4, 3])
    np.testing.assert_allclose(run.weights(15)["0.weight"], weights[15])
    assert run.epoch_metrics(15)["accuracy"] == 0.5


def test_a_new_recorder_continues_the_steps_and_an_earlier_step_is_refused(tmp_path):
    x, y, model, opt = setup()
    rec = Recorder(model, ["1"], (x, y), tmp_path / "r", every_n_steps=2, steps_per_epoch=BATCHES)
    rec.record(0)
    steps = train(rec, x, y, model, opt, 1)
    rec.close()
    assert open_run(tmp_path / "r").epochs == [0, 2, 4, 5]
    again = Recorder(model, ["1"], (x, y), tmp_path / "r", every_n_steps=2, steps_per_epoch=BATCHES)
    assert again.global_step == steps == 5
    train(again, x, y, model, opt, 1, first_epoch=2, steps=steps)
    again.close()
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 2, 4, 5, 6, 8, 10]
    np.testing.assert_allclose(run.timeline.epochs, [0, 0.4, 0.8, 1, 1.2, 1.6, 2])
    # training resumed from the checkpoint at step 5 (end of epoch 1): refused, or replaced when asked
    third = Recorder(model, ["1"], (x, y), tmp_path / "r", every_n_steps=2, steps_per_epoch=BATCHES)
    with pytest.raises(ValueError, match="holds records up to step 10, but training is at step 5"):
        third.record(1, step=5)
    third.close()
    fourth = Recorder(model, ["1"], (x, y), tmp_path / "r", every_n_steps=4, steps_per_epoch=BATCHES,
                      replace_epochs=True)
    fourth.record(1, step=5)
    train(fourth, x, y, model, opt, 1, first_epoch=2)
    fourth.close()
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 2, 4, 5, 8, 10] and run.timeline.epochs[-2:] == (1.6, 2.0)


def test_step_runs_and_epoch_runs_do_not_mix(tmp_path):
    x, y, model, _ = setup()
    rec = Recorder(model, ["1"], (x, y), tmp_path / "e")
    rec.record(0)
    with pytest.raises(ValueError, match="records once an epoch; pass every_n_steps"):
        rec.step()
    rec.close()
    with pytest.raises(RunError, match="recorded once an epoch .* one run cannot mix both numberings"):
        Recorder(model, ["1"], (x, y), tmp_path / "e", every_n_steps=2)
    steps = Recorder(model, ["1"], (x, y), tmp_path / "s", every_n_steps=2)
    steps.record(0)
    steps.close()
    with pytest.raises(RunError, match="numbered by optimizer step .* pass every_n_steps= again"):
        Recorder(model, ["1"], (x, y), tmp_path / "s")
    with pytest.raises(ValueError, match="every_n_steps: expected a number of optimizer steps >= 1"):
        Recorder(model, ["1"], (x, y), tmp_path / "x", every_n_steps=0)


def test_a_new_run_starts_at_step_0_epoch_0_without_record_0(tmp_path):
    x, y, model, opt = setup()
    rec = Recorder(model, ["1"], (x, y), tmp_path / "r", every_n_steps=2, steps_per_epoch=BATCHES)
    train(rec, x, y, model, opt, 1)  # no rec.record(0): the first record is step 2
    rec.close()
    tl = open_run(tmp_path / "r").timeline
    assert tl.records == (2, 4, 5) and tl.epochs == (0.4, 0.8, 1.0)


def test_epoch_ends_without_rec_step_are_refused_not_recorded_over_step_0(tmp_path):
    # rec.step() forgotten: every record(epoch) was at step 0 and replaced the one before it, so the
    # run ended with one record, "step 0", holding the trained model; the model before training was lost
    x, y, model, opt = setup()
    rec = Recorder(model, ["1"], (x, y), tmp_path / "r", every_n_steps=2, steps_per_epoch=BATCHES)
    rec.record(0)
    before = model[0].weight.detach().clone().numpy()
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    with pytest.raises(ValueError, match=r"record\(epoch=1\): no optimizer step was counted since the record of "
                                         r"epoch 0 \(both at step 0\); call rec.step\(\)"):
        rec.record(1)
    rec.close()
    run = open_run(tmp_path / "r")
    assert run.epochs == [0] and run.timeline.epochs == (0.0,)
    np.testing.assert_allclose(run.weights(0)["0.weight"], before)


def test_train_fit_records_its_last_epoch_every_n_epochs_leaves_out(tmp_path):
    from epochscope.train import fit

    x, y, model, _ = setup()
    rec = Recorder(model, ["1"], (x, y), tmp_path / "r", every_n_epochs=3)
    history = fit(model, (x, y), epochs=10, batch_size=8, recorder=rec, show_progress=False, device="cpu")
    trained = {name: p.detach().clone().numpy() for name, p in model.state_dict().items()}
    # Before: fit left epoch 10 (no multiple of 3) to rec.close(), so the run ended at epoch 9 until then,
    # and for good when the model changed first (the best weights loaded, another fit...).
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 3, 6, 9, 10] and history[-1]["epoch"] == 10
    for name, value in trained.items():
        np.testing.assert_allclose(run.weights(10)[name], value)
    assert run.epoch_metrics(10)["loss"] == pytest.approx(history[-1]["loss"])  # the last epoch's own metrics
    with torch.no_grad():
        model[0].weight.add_(1.0)  # e.g. the best weights loaded after training
    rec.close()
    np.testing.assert_allclose(open_run(tmp_path / "r").weights(10)["0.weight"], trained["0.weight"])
    report = check_run(tmp_path / "r")
    assert report.ok and not report.warnings and report.writer is None


def test_an_epoch_end_recorded_after_a_loop_that_broke_early_sits_where_training_is(tmp_path, caplog):
    # The loop breaks 2 steps into epoch 2 (5 steps an epoch) and then records the epoch, as its body does at the
    # end. Before: the record said epochs_done 2.0 (the end of epoch 2) for a model 1.4 epochs in.
    x, y, model, opt = setup()
    rec = Recorder(model, ["1"], (x, y), tmp_path / "r", every_n_steps=3, steps_per_epoch=BATCHES)
    rec.record(0)
    train(rec, x, y, model, opt, 1)
    for b in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[b * 8:(b + 1) * 8]), y[b * 8:(b + 1) * 8]).backward()
        opt.step()
        rec.step()
    with caplog.at_level("WARNING", logger="epochscope"):
        assert rec.record(2) == 7
    rec.close()
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 3, 5, 6, 7] and run.epoch_metrics(7)["epochs_done"] == pytest.approx(1.4)
    assert run.timeline.label(7) == "epoch 1.4 · step 7"
    assert ("record(2) at step 7 comes 2 optimizer steps after the end of epoch 1, fewer than steps_per_epoch=5: "
            "epoch 2 was cut short, and the record is at epoch 1.4") in caplog.text
    np.testing.assert_allclose(run.weights(7)["0.weight"], model[0].weight.detach().numpy())
