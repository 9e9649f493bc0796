"""The run's weight-layout rule: which arrays are weights, how they are stored, how layers chain."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import mlp_weights

from epochscope import RunError
from epochscope.weight_layout import FLATTEN_ORDER_KEY, find_chain, flatten_order, layer_sizes


def test_sizes_come_from_the_weight_matrices():
    chain = find_chain(mlp_weights())
    assert layer_sizes(chain) == (4, 5, 5, 5, 3)
    assert [lk.name for lk in chain] == ["l1", "l2", "l3", "l4"]
    assert [lk.bias_key for lk in chain] == ["l1.bias", "l2.bias", "l3.bias", "l4.bias"]


def test_chainer_and_keras_names_are_understood():
    chainer = {"l1/W": np.zeros((5, 4)), "l1/b": np.zeros(5), "l2/W": np.zeros((3, 5))}
    keras = {"dense/kernel": np.zeros((4, 5)), "dense/bias": np.zeros(5), "dense_1/kernel": np.zeros((5, 3))}
    assert layer_sizes(find_chain(chainer)) == (4, 5, 3)
    assert layer_sizes(find_chain(keras)) == (4, 5, 3)
    assert find_chain(chainer)[0].bias_key == "l1/b"


def test_shape_override_is_checked_and_the_error_names_the_layer():
    w = mlp_weights()
    assert layer_sizes(find_chain(w, shape=(4, 5, 5, 5, 3))) == (4, 5, 5, 5, 3)
    with pytest.raises(ValueError, match=r"layer 'l2'.*has 5 outputs"):
        find_chain(w, shape=(4, 5, 6, 5, 3))
    with pytest.raises(ValueError, match=r"layer 'l1'.*has 4 inputs"):
        find_chain(w, shape=(7, 5, 5, 5, 3))
    with pytest.raises(ValueError, match=r"expected 5 sizes.*pass layers= \(--layers\)"):
        find_chain(w, shape=(4, 5, 3))


def test_a_shape_of_part_of_the_chain_is_an_error_naming_what_it_leaves_out():
    # It used to draw the matching sub-chain silently (issue 15: --shape 64 32 10 dropped fc1).
    with pytest.raises(ValueError, match=r"5-5-3 matches only layers l3, l4 of the network 4-5-5-5-3.*leaves out l1, l2"):
        find_chain(mlp_weights(), shape=(5, 5, 3))
    chain = find_chain(mlp_weights(), layers=["l3", "l4"], shape=(5, 5, 3))  # a part, chosen on purpose
    assert [lk.name for lk in chain] == ["l3", "l4"]


def test_explicit_layers_that_do_not_connect_give_an_error_naming_the_layer():
    w = mlp_weights()
    assert layer_sizes(find_chain(w, layers=["l1", "l4"])) == (4, 5, 3)  # 5 outputs feed 5 inputs
    w["l4.weight"] = np.zeros((3, 7))
    with pytest.raises(ValueError, match="layer 'l4' takes 7 inputs but 'l3' gives 5"):
        find_chain(w, layers=["l1", "l2", "l3", "l4"])
    with pytest.raises(ValueError, match="did you mean 'l2'"):
        find_chain(mlp_weights(), layers=["l22"])


def test_the_longest_connected_run_is_drawn_by_default():
    w = {"a.weight": np.zeros((5, 4)), "b.weight": np.zeros((9, 8)), "c.weight": np.zeros((2, 9)),
         "d.weight": np.zeros((3, 2))}
    assert [lk.name for lk in find_chain(w)] == ["b", "c", "d"]


def test_no_weights_is_a_clear_error():
    with pytest.raises(ValueError, match="weights='auto'"):
        find_chain({"l1.bias": np.zeros(3)})


def test_a_flattened_conv_output_links_to_the_dense_layer_after_it():
    conv, dense = np.zeros((8, 3, 3, 3)), np.zeros((10, 8 * 4 * 4))
    chain = find_chain({"conv.weight": conv, "fc.weight": dense})
    assert [(lk.kind, lk.n_in, lk.n_out, lk.spatial) for lk in chain] == [("conv", 3, 8, 1), ("flatten", 8, 10, 16)]
    assert not chain[1].channels_last
    assert find_chain({"conv.weight": conv, "fc.weight": dense}, channels_last=True)[1].channels_last
    # Raw (in x out) Keras kernels come from channels-last models: read position-major.
    raw = find_chain({"conv/kernel": np.zeros((3, 3, 3, 8)), "fc/kernel": dense.T})
    assert raw[1].kind == "flatten" and raw[1].channels_last


def test_the_flatten_order_is_what_the_run_declares():
    assert flatten_order({FLATTEN_ORDER_KEY: "channels_last"}) == "channels_last"
    assert flatten_order({FLATTEN_ORDER_KEY: "channels_first"}) == "channels_first"
    assert flatten_order({}) == flatten_order(None) == "channels_first"  # runs that declare nothing
    with pytest.raises(RunError, match="flatten_order must be one of channels_first, channels_last, got 'nhwc'"):
        flatten_order({FLATTEN_ORDER_KEY: "nhwc"})


def test_the_rule_names_no_framework_and_imports_numpy_only():
    import subprocess
    import sys
    from pathlib import Path

    import epochscope.weight_layout as module

    code = Path(module.__file__).read_text(encoding="utf-8")
    # Parameter names (".weight", "/W", "/kernel") are data; the run's framework is not asked.
    assert ".framework" not in code
    out = subprocess.run([sys.executable, "-c", "import sys, epochscope.weight_layout; "
                          "print(sorted(m for m in ('matplotlib', 'torch', 'keras') if m in sys.modules))"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
