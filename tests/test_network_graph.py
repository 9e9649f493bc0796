"""The weight graph: chain and layer sizes from weights, per-edge values, colours, top-k, collapsing."""

from __future__ import annotations

import numpy as np
import pytest

from epochscope.network_graph import (
    GREW_RGB,
    NEUTRAL_RGB,
    SHRANK_RGB,
    NetworkHistory,
    NetworkSettings,
    collapse,
    diverging_rgb,
    find_chain,
    layer_sizes,
    link_magnitude,
    node_groups,
    node_layout,
    rgb_to_hex,
    top_k_indices,
)


def mlp_weights(sizes=(4, 5, 5, 5, 3), seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    w = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        w[f"l{i}.weight"] = rng.normal(size=(n_out, n_in)) * scale
        w[f"l{i}.bias"] = rng.normal(size=n_out)
    return w


# --------------------------------------------------------------------------- chain and sizes


def test_sizes_come_from_the_weight_matrices():
    chain = find_chain(mlp_weights())
    assert layer_sizes(chain) == (4, 5, 5, 5, 3)
    assert [l.name for l in chain] == ["l1", "l2", "l3", "l4"]
    assert [l.bias_key for l in chain] == ["l1.bias", "l2.bias", "l3.bias", "l4.bias"]


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
    with pytest.raises(ValueError, match="expected 5 sizes"):
        find_chain(w, shape=(4, 5, 3))


def test_shape_picks_the_matching_part_of_a_longer_chain():
    chain = find_chain(mlp_weights(), shape=(5, 5, 3))
    assert [l.name for l in chain] == ["l3", "l4"]


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
    assert [l.name for l in find_chain(w)] == ["b", "c", "d"]


def test_no_weights_is_a_clear_error():
    with pytest.raises(ValueError, match="weights='auto'"):
        find_chain({"l1.bias": np.zeros(3)})


def test_conv_layers_become_channel_edges_weighted_by_kernel_norm():
    rng = np.random.default_rng(0)
    conv = rng.normal(size=(8, 3, 3, 3))
    dense = rng.normal(size=(10, 8 * 4 * 4))  # flattened (8 channels x 4 x 4) -> 10
    chain = find_chain({"conv.weight": conv, "fc.weight": dense})
    assert layer_sizes(chain) == (3, 8, 10)
    assert [l.kind for l in chain] == ["conv", "flatten"]
    m = link_magnitude(chain[0], conv)
    assert m.shape == (8, 3)
    np.testing.assert_allclose(m[5, 2], np.linalg.norm(conv[5, 2]), rtol=1e-5)
    f = link_magnitude(chain[1], dense)
    assert f.shape == (10, 8)
    np.testing.assert_allclose(f[4, 7], np.linalg.norm(dense[4, 7 * 16:8 * 16]), rtol=1e-5)


def test_a_keras_flatten_is_read_position_major():
    rng = np.random.default_rng(2)
    conv = rng.normal(size=(8, 3, 3, 3))  # stored in PyTorch layout by the Keras recorder
    dense = rng.normal(size=(10, 16 * 8))  # flattened channels-last: index = position * 8 + channel
    chain = find_chain({"conv.weight": conv, "fc.weight": dense}, channels_last=True)
    f = link_magnitude(chain[1], dense)
    np.testing.assert_allclose(f[4, 7], np.linalg.norm(dense[4, 7::8]), rtol=1e-5)
    raw = find_chain({"conv/kernel": np.zeros((3, 3, 3, 8)), "fc/kernel": dense.T})  # raw Keras kernels
    np.testing.assert_allclose(link_magnitude(raw[1], dense.T)[4, 7], np.linalg.norm(dense[4, 7::8]), rtol=1e-5)


def test_keras_conv_kernels_are_read_channels_last():
    k = np.zeros((3, 3, 2, 6))
    k[:, :, 1, 4] = 2.0  # in channel 1 -> out channel 4
    chain = find_chain({"conv/kernel": k})
    m = link_magnitude(chain[0], k)
    assert m.shape == (6, 2) and np.argmax(m) == np.ravel_multi_index((4, 1), (6, 2))
    np.testing.assert_allclose(m[4, 1], 6.0)


# --------------------------------------------------------------------------- layout, groups


def test_layout_has_one_centred_column_per_layer():
    xy = node_layout([4, 5, 5, 5, 3])
    assert xy.shape == (22, 2)
    columns = np.split(xy, np.cumsum([4, 5, 5, 5]))
    assert [len(c) for c in columns] == [4, 5, 5, 5, 3]
    assert [float(c[0, 0]) for c in columns] == [0.0, 0.25, 0.5, 0.75, 1.0]
    for c in columns:
        assert np.allclose(c[:, 1].mean(), 0.5)  # centred
        assert np.all(np.diff(c[:, 1]) < 0)  # first node on top


def test_wide_columns_collapse_into_groups_with_the_block_mean():
    starts = node_groups(784, 32)
    assert len(starts) == 32 and starts[0] == 0
    assert np.array_equal(node_groups(10, 32), np.arange(10))
    m = np.arange(6 * 4, dtype=np.float32).reshape(6, 4)
    c = collapse(m, np.array([0, 3]), np.array([0, 2]))
    assert c.shape == (2, 2)
    np.testing.assert_allclose(c[1, 1], m[3:, 2:].mean())


def test_a_784_512_10_network_reads_as_32_32_10_nodes_with_top_k():
    rng = np.random.default_rng(0)
    w = [{"fc1.weight": rng.normal(size=(512, 784)).astype(np.float32),
          "fc2.weight": rng.normal(size=(10, 512)).astype(np.float32)} for _ in range(2)]
    h = NetworkHistory.from_weights([0, 1], w)
    assert h.sizes == (784, 512, 10)
    assert h.counts == (32, 32, 10)
    frame = h.frame(1)
    assert len(frame) == 2 * 150  # default top-k for wide layers, per layer
    assert frame.src.max() < h.node_offsets[-1]
    assert "(32 groups)" in h.column_labels()[0]


# --------------------------------------------------------------------------- edges


def test_top_k_keeps_exactly_k_edges_per_layer():
    w = [mlp_weights((6, 8, 8, 4), seed=s) for s in range(3)]
    h = NetworkHistory.from_weights([0, 1, 2], w)
    for k in (1, 5, 17, 32):
        for by in ("weight", "change"):
            frame = h.frame(2, NetworkSettings(top_k=k, top_by=by))
            counts = np.bincount(frame.link, minlength=3)
            assert counts.tolist() == [min(k, 48), min(k, 64), min(k, 32)]
    # the kept edges are the largest ones
    frame = h.frame(2, NetworkSettings(top_k=5, top_by="weight"))
    kept = np.sort(frame.magnitude[frame.link == 0])
    assert np.allclose(kept, np.sort(h.magnitudes[0][2].ravel())[-5:])
    frame = h.frame(2, NetworkSettings(top_k=5, top_by="change"))
    kept = np.sort(np.abs(frame.delta[frame.link == 2]))
    assert np.allclose(kept, np.sort(np.abs(h.magnitudes[2][2] - h.magnitudes[2][1]).ravel())[-5:])


def test_top_k_indices_is_exact_even_with_ties():
    assert len(top_k_indices(np.ones(10), 3)) == 3
    assert top_k_indices(np.arange(4.0), 10).tolist() == [0, 1, 2, 3]


def three_epochs_one_edge_grows_one_shrinks():
    """4-5-3 weights: edge (l1: out 0, in 0) grows, edge (l1: out 1, in 2) shrinks, others fixed."""
    base = mlp_weights((4, 5, 3), seed=3)
    base["l1.weight"] = np.full((5, 4), 0.5)
    epochs = []
    for t in range(3):
        w = {k: v.copy() for k, v in base.items()}
        w["l1.weight"][0, 0] = 0.5 + 0.3 * t
        w["l1.weight"][1, 2] = -(0.5 - 0.2 * t)  # negative weight whose size shrinks
        epochs.append(w)
    return NetworkHistory.from_weights([0, 1, 2], epochs)


def _edge(frame, h, link, out, inp):
    src = h.node_offsets[link] + inp
    dst = h.node_offsets[link + 1] + out
    hit = np.flatnonzero((frame.src == src) & (frame.dst == dst))
    assert len(hit) == 1
    return hit[0]


@pytest.mark.parametrize("reference", ["previous", "initial"])
def test_grown_edge_is_red_and_shrunk_edge_is_blue(reference):
    h = three_epochs_one_edge_grows_one_shrinks()
    frame = h.frame(2, NetworkSettings(reference=reference))
    rgb = frame.colors()
    grew, shrank = _edge(frame, h, 0, 0, 0), _edge(frame, h, 0, 1, 2)
    assert frame.change[grew] > 0.9 and frame.change[shrank] < -0.9
    r, g, b = rgb[grew]
    assert r > 0.6 and r > 3 * b  # red
    r, g, b = rgb[shrank]
    assert b > 0.6 and b > 3 * r  # blue
    unchanged = _edge(frame, h, 0, 3, 3)
    np.testing.assert_allclose(rgb[unchanged], NEUTRAL_RGB)
    assert {len(frame) - 1, len(frame) - 2} == {grew, shrank}  # the most changed edges are drawn last (on top)


def test_first_frame_against_previous_shows_no_change():
    h = three_epochs_one_edge_grows_one_shrinks()
    assert np.all(h.frame(0, NetworkSettings(reference="previous")).change == 0)


def test_a_near_zero_starting_weight_does_not_wash_out_the_others():
    w0 = {"l1.weight": np.full((5, 4), 0.5)}
    w0["l1.weight"][0, 0] = 1e-12
    w1 = {"l1.weight": np.full((5, 4), 0.6)}  # every edge grows by 0.1 ...
    w1["l1.weight"][0, 0] = 5.0  # ... and one from (almost) zero to 5: a ratio would be 5e12
    h = NetworkHistory.from_weights([0, 1], [w0, w1])
    for reference in ("previous", "initial"):
        frame = h.frame(1, NetworkSettings(reference=reference))
        assert np.all(np.isfinite(frame.change)) and np.all(np.isfinite(frame.width))
        outlier = _edge(frame, h, 0, 0, 0)
        others = np.delete(frame.change, outlier)
        assert others.min() > 0.8  # still clearly red, not faded by the outlier
        assert frame.change[outlier] == 1.0  # saturates instead of rescaling the rest


def test_widths_are_scaled_on_the_whole_run_so_frames_compare():
    w = [{"l1.weight": np.full((2, 2), float(t + 1))} for t in range(4)]
    h = NetworkHistory.from_weights(range(4), w)
    widths = [float(h.frame(i).width.mean()) for i in range(4)]
    assert widths == sorted(widths) and widths[0] < 0.5 * widths[-1]


def test_epochs_must_increase():
    with pytest.raises(ValueError, match="strictly increasing"):
        NetworkHistory.from_weights([2, 1], [mlp_weights(), mlp_weights()])


def test_settings_are_validated():
    with pytest.raises(ValueError, match="reference"):
        NetworkSettings(reference="first")
    with pytest.raises(ValueError, match="top_k"):
        NetworkSettings(top_k=0)
    with pytest.raises(ValueError, match="top_by"):
        NetworkSettings(top_by="size")


def test_colour_map_ends_and_hex():
    rgb = diverging_rgb(np.array([-1.0, 0.0, 1.0, 7.0]))
    np.testing.assert_allclose(rgb[0], SHRANK_RGB)
    np.testing.assert_allclose(rgb[1], NEUTRAL_RGB)
    np.testing.assert_allclose(rgb[2], GREW_RGB)
    np.testing.assert_allclose(rgb[3], GREW_RGB)  # clipped
    assert rgb_to_hex(rgb[:1]) == ["#2166ac"]


def test_graph_module_does_not_import_matplotlib():
    import subprocess
    import sys

    code = "import sys, epochscope.network_graph; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
