"""The Keras 3 recorder: one callback in an existing fit (runs on whatever KERAS_BACKEND says; torch here).

Keras is slow to import, so every Keras test lives in this module and uses tiny models.
"""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_callbacks import StopAfter  # noqa: E402

from epochscope import RunLockedError, check_run, open_run  # noqa: E402
from epochscope.keras import Recorder  # noqa: E402

N_CLASSES = 3

# Keras' torch backend converts tensors with np.array(tensor), which numpy 2 flags; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


@pytest.fixture(scope="module")
def images():
    """48 tiny 6x6 one-channel 'images' (channel-last, as Keras takes them) whose class is learnable."""
    rng = np.random.default_rng(0)
    y = np.arange(48) % N_CLASSES
    x = rng.normal(0, 0.3, size=(48, 6, 6, 1)).astype("float32")
    for c in range(N_CLASSES):
        x[y == c, 2 * c:2 * c + 2, :, 0] += 1.5  # a bright band whose row says the class
    return x, y


def functional_cnn():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 1), name="image")
    h = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    h = keras.layers.Activation("relu", name="acti1")(h)
    h = keras.layers.Flatten(name="flat")(h)
    h = keras.layers.Dense(5, activation="relu", name="hidden")(h)
    outputs = keras.layers.Dense(N_CLASSES, activation="softmax", name="end")(h)
    return keras.Model(inputs, outputs, name="tiny_cnn")


def sequential_mlp():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.layers.Flatten(name="flat"), keras.layers.Dense(7, activation="relu", name="hidden"),
                             keras.layers.Dense(N_CLASSES, activation="softmax", name="end")], name="tiny_mlp")


def submodel(model, names):
    return keras.Model(model.inputs[0], [model.get_layer(n).output for n in names])


def test_functional_model_records_layers_weights_predictions_and_metrics(tmp_path, images):
    x, y = images
    model = functional_cnn()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    rec = Recorder(["conv", "hidden"], probe=(x[:20], y[:20]), test=(x[20:30], y[20:30]), run_dir=tmp_path / "r",
                   batch_size=8, class_names=["a", "b", "c"])
    model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, callbacks=[rec], verbose=0)
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 1, 2] and run.framework == "keras" and run.class_names == ["a", "b", "c"]
    # Channel-last conv output (6, 6, 4) is stored channel-first, like a PyTorch run.
    assert run.layer_info("conv").output_shape == (4, 6, 6) and run.layer_info("hidden").output_shape == (5,)
    conv, hidden = (np.asarray(a) for a in submodel(model, ["conv", "hidden"]).predict(x[:20], verbose=0))
    np.testing.assert_allclose(run.activations("conv", 2), np.moveaxis(conv, -1, 1).reshape(20, -1), atol=2e-2, rtol=1e-2)
    np.testing.assert_allclose(run.activations("hidden", 2), hidden, atol=2e-2, rtol=1e-2)
    assert run.test_activations("hidden", 2).shape == (10, 5)
    np.testing.assert_array_equal(run.predictions(2), model.predict(x[:20], verbose=0).argmax(1))
    # Weights in PyTorch's layout: Dense (out, in), Conv (out, in, kh, kw).
    w = run.weights(2)
    assert set(w) == {"conv.weight", "conv.bias", "hidden.weight", "hidden.bias", "end.weight", "end.bias"}
    np.testing.assert_allclose(w["hidden.weight"], keras.ops.convert_to_numpy(model.get_layer("hidden").kernel).T)
    np.testing.assert_allclose(w["conv.weight"],
                               np.transpose(keras.ops.convert_to_numpy(model.get_layer("conv").kernel), (3, 2, 0, 1)))
    assert not np.allclose(run.weights(0)["end.weight"], w["end.weight"])  # epoch 0 is the untrained model
    # Metrics: none from Keras at epoch 0, Keras' logs afterwards, plus the probe/test accuracies.
    m0, m2 = run.metrics[0], run.metrics[2]
    assert "loss" not in m0 and 0 <= m0["probe_accuracy"] <= 1
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "test_accuracy"} <= set(m2)
    assert m2["loss"] < run.metrics[1]["loss"] * 1.5 and m2["epoch"] == 2
    assert run.probe_inputs.shape == (20, 1, 6, 6)  # thumbnails channel-first too
    assert rec.session is None  # the run is released when fit ends


def test_sequential_with_acc_spelling_and_one_hot_labels(tmp_path, images):
    x, y = images
    onehot = keras.utils.to_categorical(y, N_CLASSES)
    model = sequential_mlp()  # no Input layer: built by fit before the callback looks at it
    model.compile("adam", "categorical_crossentropy", metrics=["acc"])
    model.fit(x, onehot, epochs=2, batch_size=16, validation_data=(x[:12], onehot[:12]), verbose=0,
              callbacks=[Recorder("hidden", probe=(x[:15], onehot[:15]), run_dir=tmp_path / "r")])
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 1, 2] and run.layer_info("hidden").output_shape == (7,)
    np.testing.assert_array_equal(run.labels, y[:15])  # one-hot rows stored as class indices
    m = run.metrics[1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(m)
    assert "acc" not in m and "val_acc" not in m


def test_fit_one_epoch_at_a_time_with_initial_epoch_appends_each_epoch_once(tmp_path, images):
    x, y = images
    model = sequential_mlp()
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    shared = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "shared")
    for epoch in range(3):
        model.fit(x, y, initial_epoch=epoch, epochs=epoch + 1, batch_size=24, verbose=0, callbacks=[shared])
        # A new recorder per call, as in a loop that draws between epochs, appends the same way.
        model.fit(x, y, initial_epoch=epoch, epochs=epoch + 1, batch_size=24, verbose=0,
                  callbacks=[Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "fresh")])
    for name in ("shared", "fresh"):
        run = open_run(tmp_path / name)
        assert run.epochs == [0, 1, 2, 3]
        assert [m["epoch"] for m in run.metrics] == [0, 1, 2, 3]
        assert "loss" not in run.metrics[0] and all("loss" in m for m in run.metrics[1:])
    # The last epoch recorded is the model as it is now.
    np.testing.assert_allclose(open_run(tmp_path / "fresh").weights(3)["end.weight"],
                               keras.ops.convert_to_numpy(model.get_layer("end").kernel).T)


def test_kind7_epochs_follow_keras_counter_after_reloading_a_checkpoint(tmp_path, images):
    x, y = images
    model = sequential_mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    probe = (x[:12], y[:12])
    model.fit(x, y, epochs=2, batch_size=24, verbose=0, callbacks=[Recorder(["hidden"], probe=probe, run_dir=tmp_path / "r")])
    after_two = [w.copy() for w in model.get_weights()]  # the checkpoint saved after epoch 2
    model.fit(x, y, initial_epoch=2, epochs=4, batch_size=24, verbose=0,
              callbacks=[Recorder(["hidden"], probe=probe, run_dir=tmp_path / "r")])
    assert open_run(tmp_path / "r").epochs == [0, 1, 2, 3, 4]
    model.set_weights(after_two)  # reload it and train epochs 3 and 4 again
    # Before: appended as epochs 5 and 6 (the model after 4 epochs stored as epoch 6).
    with pytest.raises(ValueError, match=r"epoch 3 is already recorded in .* \(epochs 0\.\.4\); Keras counts epochs "
                                         r"from fit's initial_epoch .* initial_epoch=4, epochs=4 \+ N\) to train N more "
                                         r"epochs\. To replace epochs 3\.\.4 .*replace_epochs=True.*overwrite=True"):
        model.fit(x, y, initial_epoch=2, epochs=4, batch_size=24, verbose=0,
                  callbacks=[Recorder(["hidden"], probe=probe, run_dir=tmp_path / "r")])
    assert open_run(tmp_path / "r").epochs == [0, 1, 2, 3, 4]  # refused before training, and the run is released
    model.set_weights(after_two)
    model.fit(x, y, initial_epoch=2, epochs=4, batch_size=24, verbose=0,
              callbacks=[Recorder(["hidden"], probe=probe, run_dir=tmp_path / "r", replace_epochs=True)])
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 1, 2, 3, 4] and [m["epoch"] for m in run.metrics] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(run.weights(2)["end.weight"], after_two[-2].T)
    np.testing.assert_allclose(run.weights(4)["end.weight"], keras.ops.convert_to_numpy(model.get_layer("end").kernel).T)
    # Into a new folder, the reloaded model is recorded as the epoch it is: 2, then 3 and 4.
    model.set_weights(after_two)
    model.fit(x, y, initial_epoch=2, epochs=4, batch_size=24, verbose=0,
              callbacks=[Recorder(["hidden"], probe=probe, run_dir=tmp_path / "new")])
    new = open_run(tmp_path / "new")
    assert new.epochs == [2, 3, 4]
    np.testing.assert_allclose(new.weights(2)["end.weight"], after_two[-2].T)


class MetricNamedEpoch(keras.callbacks.Callback):
    """A callback before the recorder that logs a metric named like a reserved run field."""

    def on_epoch_end(self, epoch, logs=None):
        logs["epoch"] = 99.0


def test_kind7_a_user_metric_named_epoch_never_replaces_the_epoch_number(tmp_path, images):
    x, y = images
    model = sequential_mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=24, verbose=0,
              callbacks=[MetricNamedEpoch(), Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "r")])
    metrics = open_run(tmp_path / "r").metrics
    assert [m["epoch"] for m in metrics] == [0, 1, 2] and metrics[2]["user_epoch"] == 99.0


def test_kind9_overwrite_starts_a_fresh_run(tmp_path, images):
    x, y = images
    for _ in range(2):
        model = sequential_mlp()
        model.compile("sgd", "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=24, verbose=0,
                  callbacks=[Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "r", overwrite=True)])
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 1, 2]
    np.testing.assert_allclose(run.weights(2)["end.weight"], keras.ops.convert_to_numpy(model.get_layer("end").kernel).T)
    # One recorder starts one fresh run: its later fits continue that run, they do not start it again.
    rec = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "r", overwrite=True)
    model.fit(x, y, epochs=1, batch_size=24, verbose=0, callbacks=[rec])
    model.fit(x, y, initial_epoch=1, epochs=2, batch_size=24, verbose=0, callbacks=[rec])
    assert open_run(tmp_path / "r").epochs == [0, 1, 2]


def lstm_with_states():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5, 4))
    _, h, c = keras.layers.LSTM(6, return_state=True, name="lstm")(inputs)
    outputs = keras.layers.Dense(N_CLASSES, activation="softmax", name="end")(h)
    return keras.Model(inputs, outputs)


def test_kind5_a_layer_with_several_outputs_is_mapped_by_structure(tmp_path):
    x = np.random.default_rng(0).normal(size=(30, 5, 4)).astype("float32")
    y = np.arange(30) % N_CLASSES
    model = lstm_with_states()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0, batch_size=10,
              callbacks=[Recorder(["lstm"], probe=(x, y), run_dir=tmp_path / "r", batch_size=8)])
    run = open_run(tmp_path / "r")
    # Before: the LSTM's three outputs shifted the flat list, so its state was read as the model output:
    # predictions 0..5 for a 3-class model.
    np.testing.assert_array_equal(run.predictions(1), model.predict(x, verbose=0).argmax(1))
    out, h, c = (np.asarray(a) for a in keras.Model(model.inputs[0], model.get_layer("lstm").output).predict(x, verbose=0))
    np.testing.assert_allclose(run.activations("lstm", 1), out, atol=2e-3)  # its first output
    model.fit(x, y, initial_epoch=1, epochs=2, verbose=0, batch_size=10,
              callbacks=[Recorder(["lstm[2]"], probe=(x, y), run_dir=tmp_path / "c", batch_size=8)])
    c = np.asarray(keras.Model(model.inputs[0], model.get_layer("lstm").output[2]).predict(x, verbose=0))
    np.testing.assert_allclose(open_run(tmp_path / "c").activations("lstm[2]", 2), c, atol=2e-3)  # the one named


def two_input_model(as_dict):
    keras.utils.set_random_seed(0)
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    h = keras.layers.Dense(5, activation="relu", name="hidden")(keras.layers.Concatenate(name="joined")([a, b]))
    outputs = keras.layers.Dense(N_CLASSES, name="end")(h)
    return keras.Model({"a": a, "b": b} if as_dict else [a, b], outputs)


@pytest.mark.parametrize("as_dict", [False, True], ids=["list", "dict"])
def test_a_two_input_model(tmp_path, as_dict):
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(30, 4)).astype("float32"), rng.normal(size=(30, 3)).astype("float32")
    x = {"a": xa, "b": xb} if as_dict else [xa, xb]
    y = np.arange(30) % N_CLASSES
    model = two_input_model(as_dict)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, verbose=0, batch_size=10,
              callbacks=[Recorder(["hidden", "joined"], probe=(x, y), run_dir=tmp_path / "r", batch_size=8)])
    run = open_run(tmp_path / "r")
    hidden, joined = (np.asarray(v) for v in keras.Model(model.input, [model.get_layer("hidden").output,
                                                                    model.get_layer("joined").output]).predict(x, verbose=0))
    np.testing.assert_allclose(run.activations("hidden", 1), hidden, atol=2e-3)
    np.testing.assert_allclose(run.activations("joined", 1), np.concatenate([xa, xb], axis=1), atol=2e-3)
    np.testing.assert_array_equal(run.predictions(1), np.asarray(model.predict(x, verbose=0)).argmax(1))


def test_sequences_are_reduced_over_their_real_tokens(tmp_path):
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 7, size=30)
    mask = np.arange(6)[None, :] < lengths[:, None]
    ids = rng.integers(1, 20, size=(30, 6)) * mask
    x = {"token_ids": ids, "padding_mask": mask}
    y = np.arange(30) % N_CLASSES
    keras.utils.set_random_seed(0)
    token_ids = keras.Input((6,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((6,), dtype="bool", name="padding_mask")
    seq = keras.layers.LSTM(5, return_sequences=True, name="lstm")(keras.layers.Embedding(20, 4, name="emb")(token_ids))
    pooled = keras.layers.GlobalAveragePooling1D(name="pool")(seq, mask=padding_mask)
    model = keras.Model({"token_ids": token_ids, "padding_mask": padding_mask},
                        keras.layers.Dense(N_CLASSES, name="end")(pooled))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, verbose=0, callbacks=[Recorder(["emb", "lstm"], probe=(x, y), run_dir=tmp_path / "r",
                                                             tokens="last", batch_size=8)])
    run = open_run(tmp_path / "r")
    emb, lstm = (np.asarray(v) for v in keras.Model(model.input, [model.get_layer("emb").output,
                                                                 model.get_layer("lstm").output]).predict(x, verbose=0))
    last = lengths - 1  # the last real token of each sequence
    np.testing.assert_allclose(run.activations("emb", 1), emb[np.arange(30), last], atol=2e-3)
    np.testing.assert_allclose(run.activations("lstm", 1), lstm[np.arange(30), last], atol=2e-3)
    info = run.layer_info("lstm")
    assert info.output_shape == (6, 5) and info.reduction["tokens"] == "last" and info.reduction["mask"] == "padding_mask"
    assert run.probe_inputs is None  # a dict of inputs keeps no thumbnails


def test_kind1_a_shared_layer_is_refused_naming_the_count_or_recorded_at_the_call_chosen(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    shared = keras.layers.Dense(4, activation="tanh", name="shared")
    outputs = keras.layers.Dense(N_CLASSES, name="end")(shared(shared(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.random.default_rng(0).normal(size=(20, 4)).astype("float32"), np.arange(20) % N_CLASSES
    # Before: Keras' layer.output silently gave the first call.
    with pytest.raises(ValueError, match=r"layer 'shared' of Keras model .* is called 2 times in the model .* "
                                         r"'shared@1' to 'shared@2'"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[Recorder(["shared"], probe=(x, y), run_dir=tmp_path / "a")])
    model.fit(x, y, epochs=1, verbose=0,
              callbacks=[Recorder(["shared@1", "shared@2"], probe=(x, y), run_dir=tmp_path / "b")])
    run = open_run(tmp_path / "b")
    w, b = (keras.ops.convert_to_numpy(v) for v in model.get_layer("shared").weights)
    first = np.tanh(x @ w + b)
    np.testing.assert_allclose(run.activations("shared@1", 1), first, atol=2e-3)
    np.testing.assert_allclose(run.activations("shared@2", 1), np.tanh(first @ w + b), atol=2e-3)


def test_unknown_layer_lists_the_layers_even_through_fit(tmp_path, images):
    x, y = images
    model = functional_cnn()
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError) as info:
        model.fit(x, y, epochs=1, verbose=0, callbacks=[Recorder(["hiden"], probe=(x, y), run_dir=tmp_path / "r")])
    message = str(info.value)  # Keras drops the cause: the message alone must tell the story
    assert "layer 'hiden' not found; did you mean 'hidden'?" in message
    assert "conv" in message and "end" in message and "tiny_cnn" in message


def test_pool_reduction_averages_over_space_not_channels(tmp_path, images):
    x, y = images
    model = functional_cnn()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[
        Recorder(["acti1"], probe=(x[:9], y[:9]), run_dir=tmp_path / "r", reduce="pool", max_width=16, reduced_width=8)])
    run = open_run(tmp_path / "r")
    info = run.layer_info("acti1")
    assert info.width == 4 and info.reduction["method"] == "pool"  # one value per channel
    acts = np.asarray(submodel(model, ["acti1"]).predict(x[:9], verbose=0))
    np.testing.assert_allclose(run.activations("acti1", 1), acts.mean(axis=(1, 2)), atol=1e-2, rtol=1e-2)


def test_subclassed_model_records_predictions_and_weights_but_not_layers(tmp_path, images):
    x, y = images

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__(name="subclassed")
            self.flat = keras.layers.Flatten()
            self.hidden = keras.layers.Dense(5, activation="relu", name="hidden")
            self.end = keras.layers.Dense(N_CLASSES, name="end")

        def call(self, inputs):
            return self.end(self.hidden(self.flat(inputs)))

    keras.utils.set_random_seed(0)
    model = Subclassed()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    with pytest.raises(TypeError, match="Subclassed models .* layers=\\[\\]"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[Recorder(["hidden"], probe=(x, y), run_dir=tmp_path / "a")])
    model.fit(x, y, epochs=1, verbose=0, callbacks=[Recorder([], probe=(x[:10], y[:10]), run_dir=tmp_path / "b")])
    run = open_run(tmp_path / "b")
    assert run.epochs == [0, 1] and run.layers == []
    np.testing.assert_array_equal(run.predictions(1), model.predict(x[:10], verbose=0).argmax(1))
    assert run.weights(1)["hidden.weight"].shape == (5, 36) and "accuracy" in run.metrics[1]


def test_bad_arguments_fail_before_fit(tmp_path, images):
    x, y = images
    with pytest.raises(ValueError, match="probe x has 48 examples but y has 47"):
        Recorder(["hidden"], probe=(x, y[:-1]), run_dir=tmp_path / "r")
    with pytest.raises(ValueError, match="weights: expected 'auto', None or a list of layer names, got 'all'"):
        Recorder(["hidden"], probe=(x, y), run_dir=tmp_path / "r", weights="all")
    with pytest.raises(ValueError, match="class_names"):
        Recorder(["hidden"], probe=(x, y), run_dir=tmp_path / "r", class_names=["only", "two"])


def test_nested_model_is_recorded_by_its_own_name_not_its_inner_layers(tmp_path, images):
    x, y = images
    keras.utils.set_random_seed(0)
    block = keras.Sequential([keras.Input((36,)), keras.layers.Dense(5, activation="relu", name="inner")], name="block")
    inputs = keras.Input((6, 6, 1))
    outputs = keras.layers.Dense(N_CLASSES, activation="softmax", name="end")(block(keras.layers.Flatten()(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"\['inner'\] sit inside a nested model.*record the nested model's output"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[Recorder(["inner"], probe=(x, y), run_dir=tmp_path / "a")])
    assert not (tmp_path / "a" / "manifest.json").exists()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[Recorder(["block"], probe=(x, y), run_dir=tmp_path / "b")])
    run = open_run(tmp_path / "b")
    assert run.layer_info("block").output_shape == (5,) and "inner.weight" in run.weights(1)  # nested weights too


def test_missing_backend_says_to_install_or_choose_one_not_to_install_keras():
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("tensorflow is installed, so its backend imports")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run([sys.executable, "-c", "import epochscope.keras"], env=env, capture_output=True, text=True)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "keras is installed but failed to import with backend tensorflow" in last and "KERAS_BACKEND=torch" in last


def test_takes_the_shared_options(tmp_path, images):
    import inspect

    from epochscope.record.settings import OPTION_NAMES, RecordSettings

    params = inspect.signature(Recorder).parameters
    assert [p for p in params if p in OPTION_NAMES] == list(OPTION_NAMES)
    x, y = images
    rec = Recorder.from_settings((x, y), RecordSettings(tmp_path / "r", ["hidden"], probe_size=12))
    assert len(rec.y_probe) == 12 and rec.settings.layers == ("hidden",)


def test_probe_inputs_are_fixed_when_the_recorder_is_made(tmp_path, images):
    # The callback kept the user's array itself: scaling it in place between fit calls changed
    # what later epochs recorded while the run still held the first inputs.
    x, y = images
    given = x.copy()
    model = sequential_mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    rec = Recorder(["hidden"], probe=(given, y), run_dir=tmp_path / "r")
    model.fit(x, y, epochs=1, batch_size=24, verbose=0, callbacks=[rec])
    given *= 10
    model.fit(x, y, initial_epoch=1, epochs=2, batch_size=24, verbose=0, callbacks=[rec])
    expected = keras.ops.convert_to_numpy(submodel(model, ["hidden"])(x, training=False))
    np.testing.assert_allclose(open_run(tmp_path / "r").activations("hidden", 2), expected, atol=2e-2, rtol=2e-3)


class FailInEpoch(keras.callbacks.Callback):
    """Raises after the first batch of Keras' epoch ``epoch``: a user callback's bug, a bad batch."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.now = epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.now = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.now == self.epoch:
            raise RuntimeError("bad batch")


def test_a_failed_fit_keeps_its_epochs_and_releases_the_run_to_the_next_recorder(tmp_path, images):
    x, y = images
    model = sequential_mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    probe = (x[:12], y[:12])
    rec = Recorder(["hidden"], probe=probe, run_dir=tmp_path / "r")
    with pytest.raises(RuntimeError, match="bad batch"):
        model.fit(x, y, epochs=4, batch_size=24, verbose=0, callbacks=[rec, FailInEpoch(2)])
    assert open_run(tmp_path / "r").epochs == [0, 1, 2]  # the epochs finished before the failure
    report = check_run(tmp_path / "r")
    # Before: Keras calls no hook when fit fails, so the run stayed locked by this process (check named it
    # the writer) and a new recorder here was refused as "being written by another process (pid <this one>)".
    assert report.ok and not report.warnings and report.writer is None
    model.fit(x, y, initial_epoch=2, epochs=3, batch_size=24, verbose=0,
              callbacks=[Recorder(["hidden"], probe=probe, run_dir=tmp_path / "r")])
    assert open_run(tmp_path / "r").epochs == [0, 1, 2, 3]
    model.fit(x, y, initial_epoch=3, epochs=4, batch_size=24, verbose=0, callbacks=[rec])  # the first one goes on
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(run.weights(4)["hidden.weight"], model.get_layer("hidden").kernel.numpy().T, rtol=1e-6)
    report = check_run(tmp_path / "r")
    assert report.ok and not report.warnings and report.writer is None


def test_a_recorder_still_training_keeps_its_run(tmp_path, images):
    x, y = images
    model = sequential_mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    probe = (x[:12], y[:12])
    twice = [Recorder(["hidden"], probe=probe, run_dir=tmp_path / "r"), Recorder(["hidden"], probe=probe,
                                                                                 run_dir=tmp_path / "r")]
    # The first one's fit runs: the second one, in the same fit, is refused (before: "another process")
    with pytest.raises(RunLockedError, match=r"being written by another recorder in this process \(pid \d+\); "
                                             r"close that recorder first"):
        model.fit(x, y, epochs=1, batch_size=24, verbose=0, callbacks=twice)
    assert check_run(tmp_path / "r").writer is None  # that fit failed: its run is free again
    model.fit(x, y, epochs=1, batch_size=24, verbose=0, callbacks=twice[1:])
    assert open_run(tmp_path / "r").epochs == [0, 1]


def test_an_epoch_cut_short_is_not_recorded_as_a_whole_epoch(tmp_path, images, caplog):
    x, y = images
    model = sequential_mlp()
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    rec = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "r")
    model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0, callbacks=[rec])
    # The second batch of the next epoch diverges (NaN inputs): TerminateOnNaN sets stop_training after 2 of the
    # epoch's 3 batches. Before: Keras' on_epoch_end recorded that model as epoch 2, with half an epoch's metrics.
    bad = x.copy()
    bad[16:32] = np.nan
    with caplog.at_level("WARNING", logger="epochscope"):
        history = model.fit(bad, y, initial_epoch=1, epochs=3, batch_size=16, shuffle=False, verbose=0,
                            callbacks=[rec, keras.callbacks.TerminateOnNaN()])
    assert len(history.history["loss"]) == 1 and np.isnan(history.history["loss"][0])  # Keras did end epoch 2
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 1] and np.isfinite(run.weights(1)["hidden.weight"]).all()
    assert ("epoch 2 was cut short (stop_training set, after 2 of its 3 batches): its model is not recorded as "
            "epoch 2") in caplog.text and "every_n_steps" in caplog.text
    report = check_run(tmp_path / "r")
    assert report.ok and not report.warnings and report.writer is None
    assert [f.message for f in report.findings] == ["epoch 2 was cut short (stop_training set, after 2 of its 3 "
                                                    "batches): its model is not recorded, as it is no whole epoch's"]


def test_steps_per_epoch_is_the_epoch_and_an_epoch_of_unknown_length_stopped_is_not_recorded(tmp_path, images, caplog):
    x, y = images  # 3 batches of 16
    model = sequential_mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    rec = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "r")
    with caplog.at_level("WARNING", logger="epochscope"):
        model.fit(x, y, epochs=2, batch_size=16, steps_per_epoch=1, verbose=0, callbacks=[rec])
    assert open_run(tmp_path / "r").epochs == [0, 1, 2] and "cut short" not in caplog.text  # 1 batch: whole epochs
    # steps_per_epoch=2: Keras goes on through the data, which runs out 1 batch into the second epoch
    short = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "short")
    with caplog.at_level("WARNING", logger="epochscope"):
        model.fit(x, y, epochs=2, batch_size=16, steps_per_epoch=2, verbose=0, callbacks=[short])
    assert open_run(tmp_path / "short").epochs == [0, 1]
    assert "epoch 2 was cut short (the data ran out, after 1 of its 2 batches)" in caplog.text

    def batches():  # a generator: Keras does not know the epoch's length
        for start in range(0, 48, 16):
            yield x[start:start + 16], y[start:start + 16]

    whole = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "whole")
    model.fit(batches(), epochs=1, verbose=0, callbacks=[whole])
    assert open_run(tmp_path / "whole").epochs == [0, 1]
    stopped = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "stopped")
    with caplog.at_level("WARNING", logger="epochscope"):
        model.fit(batches(), epochs=1, verbose=0, callbacks=[stopped, StopAfter(2)])
    assert open_run(tmp_path / "stopped").epochs == [0]
    assert ("epoch 1 was cut short (stop_training set, after 2 batches of unknown length)"
            in caplog.text) and "steps_per_epoch" in caplog.text


def test_the_last_whole_epoch_every_n_epochs_left_out_before_an_epoch_cut_short_is_not_lost_silently(tmp_path, images,
                                                                                                        caplog):
    """every_n_epochs=3 and training stopped inside epoch 6: epoch 5, the last whole epoch, was left out at its end
    (not a multiple of 3, not known to be the last) and its weights are gone once epoch 6 trains. Before, only epoch
    6 was named, and the run read as if training had ended at epoch 3."""
    x, y = images  # 3 batches of 16 an epoch
    model = sequential_mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    rec = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "r", every_n_epochs=3)
    with caplog.at_level("WARNING", logger="epochscope"):
        model.fit(x, y, epochs=10, batch_size=16, shuffle=False, verbose=0, callbacks=[rec, StopAfter(3 * 5 + 2)])
    assert open_run(tmp_path / "r").epochs == [0, 3]
    assert ("Epoch 5, the last whole epoch trained, is not recorded either: every_n_epochs=3 left it out at its end, "
            "and epoch 6 changed its weights") in caplog.text
    assert [f.message for f in check_run(tmp_path / "r").findings] == [
        "epoch 6 was cut short (stop_training set, after 2 of its 3 batches; epoch 5, the last whole epoch trained, "
        "not recorded: every_n_epochs=3 left it out): its model is not recorded, as it is no whole epoch's",
        "recorded every 3 epochs (0, 3)"]


class StopAtEpochEnd(keras.callbacks.Callback):
    """Sets ``stop_training`` at the end of epoch ``index`` (as EarlyStopping does), after all its batches."""

    def __init__(self, index):
        super().__init__()
        self.index = index

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.index:
            self.model.stop_training = True


def test_an_epoch_of_unknown_length_stopped_at_its_end_is_recorded_when_it_ran_as_long_as_the_one_before(tmp_path, images):
    """Data of unknown length (a torch IterableDataset) and an early stop listed before the recorder: the
    stop is set at the epoch's end, after all its batches, but the recorder sees stop_training set and
    left the whole epoch out. An epoch that ran as many batches as the fit's previous whole epoch is whole."""
    import torch

    x, y = images

    class Batches(torch.utils.data.IterableDataset):  # no __len__: Keras does not know the epoch's length
        def __iter__(self):
            for start in range(0, 48, 16):
                yield x[start:start + 16], y[start:start + 16]

    model = sequential_mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    data = torch.utils.data.DataLoader(Batches(), batch_size=None)
    rec = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "r")
    model.fit(data, epochs=4, verbose=0, callbacks=[StopAtEpochEnd(1), rec])
    assert open_run(tmp_path / "r").epochs == [0, 1, 2]
    cut = Recorder(["hidden"], probe=(x[:12], y[:12]), run_dir=tmp_path / "cut")
    model.fit(data, epochs=4, verbose=0, callbacks=[StopAfter(5), cut])  # 2 of the second epoch's 3 batches
    assert open_run(tmp_path / "cut").epochs == [0, 1]
