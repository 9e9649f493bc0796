"""The Keras 3 recorder inside epochs: every N optimizer steps, each record with its step and
fractional epoch, counted here independently from Keras' own batch calls."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_callbacks import StopAfter  # noqa: E402

from epochscope import check_run, open_run  # noqa: E402
from epochscope.keras import Recorder  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def data():
    rng = np.random.default_rng(0)
    y = np.arange(48) % 3
    x = rng.normal(0, 0.3, size=(48, 6)).astype("float32")
    x[np.arange(48), y] += 1.5
    return x, y


def mlp():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="relu", name="hidden"),
                              keras.layers.Dense(3, activation="softmax", name="end")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class Counter(keras.callbacks.Callback):
    """Counts the batches itself and keeps the hidden kernel after each one (the truth to compare to)."""

    def __init__(self):
        super().__init__()
        self.batches = 0
        self.kernels = {}
        self.epoch_ends = []

    def on_train_begin(self, logs=None):
        self.kernels.setdefault(self.batches, self.model.get_layer("hidden").kernel.numpy().copy())

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        self.kernels[self.batches] = self.model.get_layer("hidden").kernel.numpy().copy()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_ends.append(self.batches)


def test_records_every_n_steps_with_fractional_epochs(tmp_path):
    x, y = data()
    model, counter = mlp(), Counter()
    rec = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "r", every_n_steps=2)
    # 36 training examples in batches of 16: 3 batches an epoch (16, 16, 4)
    model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, callbacks=[counter, rec], verbose=0)
    run = open_run(tmp_path / "r")
    per_epoch = counter.epoch_ends[0]
    assert per_epoch == 3 and counter.epoch_ends == [3, 6, 9]
    expected = sorted({0, *range(2, counter.batches + 1, 2), *counter.epoch_ends})
    assert run.epochs == expected == [0, 2, 3, 4, 6, 8, 9]
    assert run.manifest.record_unit == "step" and run.manifest.schema_version == 2
    tl = run.timeline
    assert list(tl.steps) == expected
    np.testing.assert_allclose(tl.epochs, [s / per_epoch for s in expected])
    assert tl.axis == "epoch" and tl.label(2) == "epoch 0.67 · step 2" and tl.label(6) == "epoch 2 · step 6"
    for step in expected:  # each record holds the model as it was after that many batches
        np.testing.assert_allclose(run.weights(step)["hidden.weight"], counter.kernels[step].T, rtol=1e-6)
    rows = {r["epoch"]: r for r in run.metrics}
    assert "val_loss" in rows[3] and "val_loss" in rows[6] and "val_loss" not in rows[2]  # epoch ends carry validation
    assert "loss" in rows[2] and rows[4]["epochs_done"] == pytest.approx(4 / 3)


def test_every_n_epochs_and_a_resumed_fit_continue_the_steps(tmp_path):
    x, y = data()
    model, counter = mlp(), Counter()
    rec = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "r", every_n_steps=4, every_n_epochs=2)
    model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, callbacks=[counter, rec], verbose=0)
    # a second fit continues the epochs (initial_epoch) and Keras' optimizer keeps counting steps
    model.fit(x, y, epochs=4, initial_epoch=2, batch_size=16, validation_split=0.25, callbacks=[counter, rec], verbose=0)
    run = open_run(tmp_path / "r")
    assert counter.batches == 12
    # steps 4 and 8 inside epochs 2 and 3, the ends of epochs 2 and 4 (steps 6 and 12): not the ends of 1 and 3
    assert run.epochs == [0, 4, 6, 8, 12]
    np.testing.assert_allclose(run.timeline.epochs, [0, 4 / 3, 2, 8 / 3, 4])
    for step in run.epochs:
        np.testing.assert_allclose(run.weights(step)["hidden.weight"], counter.kernels[step].T, rtol=1e-6)


def test_a_fit_that_starts_before_the_runs_last_step_is_refused(tmp_path):
    x, y = data()
    rec = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "r", every_n_steps=2)
    mlp().fit(x, y, epochs=1, batch_size=16, validation_split=0.25, callbacks=[rec], verbose=0)
    again = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "r", every_n_steps=2)
    with pytest.raises(ValueError, match="holds records up to step 3, but training is at step 0"):
        mlp().fit(x, y, epochs=1, batch_size=16, validation_split=0.25, callbacks=[again], verbose=0)
    assert open_run(tmp_path / "r").epochs == [0, 2, 3]


def test_an_epoch_stopped_inside_is_recorded_where_it_stopped(tmp_path):
    x, y = data()
    model, counter = mlp(), Counter()
    rec = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "r", every_n_steps=2)
    # 3 batches an epoch; stopped after 4 batches: 1 of epoch 1's 3 batches, epoch 1.33, not 2
    model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, callbacks=[counter, StopAfter(4), rec], verbose=0)
    run = open_run(tmp_path / "r")
    assert counter.batches == 4 and run.epochs == [0, 2, 3, 4]
    np.testing.assert_allclose(run.timeline.epochs, [0, 2 / 3, 1, 4 / 3])
    np.testing.assert_allclose(run.weights(4)["hidden.weight"], counter.kernels[4].T, rtol=1e-6)


def test_a_steps_per_execution_chunk_past_the_epochs_end_keeps_its_fraction(tmp_path):
    # Keras' torch backend refuses steps_per_execution > 1, so the hooks are called here as Keras 3's
    # EpochIterator calls them for k=3 and 10 steps an epoch: batch = each chunk's nominal last index
    # (2, 5, 8, 11: the last chunk holds one step, index 11 is past the epoch's end), iterations 3, 6, 9, 10.
    x, y = data()
    model = mlp()
    model.optimizer.build(model.trainable_variables)
    rec = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "r", every_n_steps=5, every_n_epochs=2)
    rec.set_model(model)
    rec.set_params({"steps": 10, "epochs": 2, "verbose": 0})
    rec.on_train_begin()
    rec.on_epoch_begin(0)
    for batch, iterations in [(2, 3), (5, 6), (8, 9), (11, 10)]:
        model.optimizer.iterations.assign(iterations)
        rec.on_train_batch_end(batch, {"loss": 1.0})
    rec.on_epoch_end(0, {"loss": 1.0})  # epoch 1 of 2 is not recorded (every_n_epochs=2) until fit ends
    rec.on_train_end()
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 6, 10] and run.timeline.epochs == (0.0, 0.6, 1.0)


class EpochWeights(keras.callbacks.Callback):
    """Keeps the hidden kernel at each epoch end (listed first: the truth to compare to)."""

    def __init__(self):
        super().__init__()
        self.kernels = {}

    def on_epoch_end(self, epoch, logs=None):
        self.kernels[epoch + 1] = self.model.get_layer("hidden").kernel.numpy().copy()


class StopAtEpoch(keras.callbacks.Callback):
    """Sets stop_training at the end of Keras' epoch ``epoch`` (as EarlyStopping does)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.stop_training = True


class ChangeAtTrainEnd(keras.callbacks.Callback):
    """Changes the weights at on_train_end, as EarlyStopping(restore_best_weights=True) does."""

    def on_train_end(self, logs=None):
        kernel = self.model.get_layer("hidden").kernel
        kernel.assign(kernel.numpy() + 1.0)


def assert_whole_and_released(folder):
    report = check_run(folder)
    assert report.ok and not report.warnings and report.writer is None  # nothing half-written, the lock released


def test_every_n_epochs_records_the_last_epoch_of_fit(tmp_path):
    x, y = data()
    model, truth = mlp(), EpochWeights()
    rec = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "r", every_n_epochs=3)
    model.fit(x, y, epochs=5, batch_size=16, validation_split=0.25, callbacks=[truth, rec], verbose=0)
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 3, 5]  # 5 is no multiple of 3, but the last epoch: the trained model is in the run
    for epoch in (3, 5):
        np.testing.assert_allclose(run.weights(epoch)["hidden.weight"], truth.kernels[epoch].T, rtol=1e-6)
    np.testing.assert_allclose(run.weights(5)["hidden.weight"], model.get_layer("hidden").kernel.numpy().T, rtol=1e-6)
    assert "val_loss" in run.epoch_metrics(5)
    assert_whole_and_released(tmp_path / "r")


@pytest.mark.parametrize("stopper_first", [True, False])
def test_early_stopping_records_the_last_epoch_trained_not_the_restored_weights(tmp_path, stopper_first):
    x, y = data()
    model, truth = mlp(), EpochWeights()
    rec = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "r", every_n_epochs=3)
    # min_delta=10 and patience=3: no epoch after the first improves, so Keras stops after its epoch index 3
    stopper = keras.callbacks.EarlyStopping("loss", min_delta=10, patience=3, restore_best_weights=True)
    callbacks = [truth, stopper, rec] if stopper_first else [truth, rec, stopper]
    history = model.fit(x, y, epochs=20, batch_size=16, callbacks=callbacks, verbose=0)
    assert len(history.history["loss"]) == 4 and stopper.stopped_epoch == 3  # epochs 1..4 trained
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 3, 4]
    np.testing.assert_allclose(run.weights(4)["hidden.weight"], truth.kernels[4].T, rtol=1e-6)
    # the model now holds epoch 1's weights (restored): not what the run shows as epoch 4
    np.testing.assert_allclose(model.get_layer("hidden").kernel.numpy(), truth.kernels[1], rtol=1e-6)
    assert not np.allclose(truth.kernels[1], truth.kernels[4])
    assert run.epoch_metrics(4)["loss"] == pytest.approx(history.history["loss"][3])
    assert_whole_and_released(tmp_path / "r")


def test_stop_training_set_after_the_recorder_records_the_epoch_at_train_end(tmp_path):
    x, y = data()
    model, truth = mlp(), EpochWeights()
    rec = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "r", every_n_epochs=3)
    model.fit(x, y, epochs=10, batch_size=16, callbacks=[truth, rec, StopAtEpoch(4)], verbose=0)
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 3, 5]
    np.testing.assert_allclose(run.weights(5)["hidden.weight"], truth.kernels[5].T, rtol=1e-6)
    assert "loss" in run.epoch_metrics(5)
    assert_whole_and_released(tmp_path / "r")


def test_the_last_epoch_is_not_recorded_once_the_weights_changed_before_train_end(tmp_path, caplog):
    x, y = data()
    model = mlp()
    rec = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "r", every_n_epochs=3)
    with caplog.at_level("WARNING", logger="epochscope"):
        model.fit(x, y, epochs=10, batch_size=16, callbacks=[ChangeAtTrainEnd(), rec, StopAtEpoch(4)], verbose=0)
    assert open_run(tmp_path / "r").epochs == [0, 3]
    assert "epoch 5, the last one trained, is not recorded" in caplog.text and "List the Recorder" in caplog.text
    assert_whole_and_released(tmp_path / "r")


def test_every_n_epochs_with_steps_records_the_end_of_a_fit_at_its_step(tmp_path):
    x, y = data()
    model, counter = mlp(), Counter()
    rec = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "r", every_n_steps=4, every_n_epochs=2)
    model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, callbacks=[counter, rec], verbose=0)
    run = open_run(tmp_path / "r")
    # steps 4 and 8 inside epochs, the end of epoch 2 (step 6) and of epoch 3 (step 9), the last
    assert counter.batches == 9 and run.epochs == [0, 4, 6, 8, 9]
    np.testing.assert_allclose(run.timeline.epochs, [0, 4 / 3, 2, 8 / 3, 3])
    np.testing.assert_allclose(run.weights(9)["hidden.weight"], counter.kernels[9].T, rtol=1e-6)
    assert "val_loss" in run.epoch_metrics(9)
