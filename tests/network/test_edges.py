"""Edge values of one layer (|w|, kernel norms), top-k, an edge frame's colours and line widths."""

from __future__ import annotations

import numpy as np

from epochscope.colors import diverging_rgb
from epochscope.network.edges import MAX_LINEWIDTH, MIN_LINEWIDTH, EdgeFrame, link_magnitude, top_k_indices
from epochscope.weight_layout import find_chain, layer_sizes


def test_conv_layers_become_channel_edges_weighted_by_kernel_norm():
    rng = np.random.default_rng(0)
    conv = rng.normal(size=(8, 3, 3, 3))
    dense = rng.normal(size=(10, 8 * 4 * 4))  # flattened (8 channels x 4 x 4) -> 10
    chain = find_chain({"conv.weight": conv, "fc.weight": dense})
    assert layer_sizes(chain) == (3, 8, 10)
    assert [lk.kind for lk in chain] == ["conv", "flatten"]
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


def test_top_k_indices_is_exact_even_with_ties():
    assert len(top_k_indices(np.ones(10), 3)) == 3
    assert top_k_indices(np.arange(4.0), 10).tolist() == [0, 1, 2, 3]
    assert top_k_indices(np.array([0.1, 0.9, 0.5, 0.7]), 2).tolist() == [1, 3]


def test_an_edge_frame_gives_colours_segments_and_line_widths():
    frame = EdgeFrame(epoch=3, src=np.array([0, 1]), dst=np.array([2, 2]), link=np.zeros(2, int),
                      width=np.array([0.0, 1.0], np.float32), change=np.array([-1.0, 0.5], np.float32),
                      magnitude=np.ones(2), delta=np.zeros(2))
    np.testing.assert_allclose(frame.colors(), diverging_rgb(np.array([-1.0, 0.5])))
    np.testing.assert_allclose(frame.linewidths(), [MIN_LINEWIDTH, MAX_LINEWIDTH])
    np.testing.assert_allclose(frame.linewidths(2.0), [MIN_LINEWIDTH, 2.0])
    xy = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.5]])
    np.testing.assert_allclose(frame.segments(xy), [[[0, 0], [1, 0.5]], [[0, 1], [1, 0.5]]])
