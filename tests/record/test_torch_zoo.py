"""The model zoo through the PyTorch recorder: every stored value equals an independent
computation of the layer's output (to float16 precision), every prediction the model's arg-max.

The cases (tests/record/zoo.py): a ResNet block (BatchNorm, one in-place ReLU used twice,
residual ``+=``), an MLP with ``ReLU(inplace=True)``, a token classifier (``nn.Embedding`` +
``nn.TransformerEncoder``, both ``batch_first`` settings, each token reduction), an LSTM, a
model returning a dict and a tiny Hugging Face BERT built from a config (skipped without
``transformers``). The same zoo runs through the Lightning recorder in test_lightning.py.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from epochscope import check_run, open_run  # noqa: E402
from epochscope.torch import Recorder  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import zoo  # noqa: E402

CASES = zoo.cases()


def needs(case):
    if case.name.startswith("hugging-face"):
        pytest.importorskip("transformers", reason="the Hugging Face case needs transformers (the 'transformers' extra)")


def assert_stored(run, epoch, case, model, x):
    expected = case.expected(model, x)
    assert run.layers == case.layers
    for layer in case.layers:
        stored = np.asarray(run.activations(layer, epoch), dtype=np.float32)
        want = expected[layer].astype(np.float32)
        assert stored.shape == want.shape, layer
        # float16 keeps 11 significant bits: a relative 2**-11 plus a little absolute slack near 0
        np.testing.assert_allclose(stored, want, rtol=2e-3, atol=2e-3, err_msg=f"{case.name}: layer {layer}")
        want_tokens = case.tokens.get(layer)
        reduction = run.layer_info(layer).reduction or {}
        if want_tokens:
            assert {k: reduction.get(k) for k in want_tokens} == want_tokens, layer
        else:
            assert "tokens" not in reduction
    np.testing.assert_array_equal(run.predictions(epoch), zoo.model_argmax(model, x), err_msg=case.name)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_zoo_stores_what_each_layer_computed(tmp_path, case):
    needs(case)
    model = case.build()
    x, y = case.probe()
    with Recorder(model, case.layers, probe=(x, y), run_dir=tmp_path / "run", batch_size=10, **case.options) as rec:
        rec.record(0)
    run = open_run(tmp_path / "run")
    assert_stored(run, 0, case, model, x)
    assert check_run(run).ok
