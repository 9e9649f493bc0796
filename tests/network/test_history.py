"""A run's network over time: magnitudes per epoch, scaling, colours of change, top-k, from a run."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import mlp_weights

from epochscope import RunError
from epochscope.colors import NEUTRAL_RGB
from epochscope.network import NetworkHistory, NetworkSettings
from epochscope.run import RunWriter, open_run
from epochscope.weight_layout import FLATTEN_ORDER_KEY


def test_a_784_512_10_network_reads_as_32_32_10_nodes_with_top_k():
    rng = np.random.default_rng(0)
    w = [{"fc1.weight": rng.normal(size=(512, 784)).astype(np.float32),
          "fc2.weight": rng.normal(size=(10, 512)).astype(np.float32)} for _ in range(2)]
    h = NetworkHistory.from_weights([0, 1], w)
    assert h.sizes == (784, 512, 10)
    assert h.counts == (32, 32, 10)
    frame = h.frame(1)
    # Default for wide layers: two edges per node of the layer's larger column (fewer than a hairball).
    assert np.bincount(frame.link).tolist() == [64, 64]
    assert frame.src.max() < h.node_offsets[-1]
    assert h.column_labels()[0] == "input\n784\n(32 groups)"


def test_top_k_widths_span_the_whole_range():
    """With top-k, the drawn edges are graded from thin to wide, not all near the widest (issue 15)."""
    rng = np.random.default_rng(1)
    w = [{"fc1.weight": rng.normal(size=(512, 784)).astype(np.float32) * (1 + 0.1 * t),
          "fc2.weight": rng.normal(size=(10, 512)).astype(np.float32)} for t in range(3)]
    h = NetworkHistory.from_weights([0, 1, 2], w)
    frame = h.frame(2)
    widths = frame.width[frame.link == 0]
    mags = frame.magnitude[frame.link == 0]
    assert widths.min() == 0 and widths.max() == 1
    np.testing.assert_allclose(widths, (mags - mags.min()) / (mags.max() - mags.min()), rtol=1e-5)
    # Every edge drawn: |w| over the run-wide scale, as before (widths compare across frames).
    small = NetworkHistory.from_weights([0, 1], [mlp_weights((4, 5, 3), seed=s) for s in range(2)])
    f = small.frame(1)
    np.testing.assert_allclose(f.width[f.link == 0], np.clip(f.magnitude[f.link == 0] / small.width_scales[0], 0, 1))


def test_layer_change_is_the_relative_change_of_the_mean_weight():
    w = [{"a.weight": np.full((3, 2), 1.0 + t), "b.weight": np.full((4, 3), 2.0)} for t in range(3)]
    h = NetworkHistory.from_weights([0, 1, 2], w)
    np.testing.assert_allclose(h.layer_change(2), [0.5, 0.0])  # 3 / 2 - 1
    np.testing.assert_allclose(h.layer_change(2, NetworkSettings(reference="initial")), [2.0, 0.0])
    np.testing.assert_allclose(h.layer_change(0), [0.0, 0.0])


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


# --------------------------------------------------------------------------- from a run


def _conv_run(path, *, info=None, weights_at=(0, 1, 2)):
    """conv (6 ch, 3x3) -> dense over a flattened 6 x 2 x 2 output -> 3; weights at some epochs only."""
    rng = np.random.default_rng(7)
    conv, dense = rng.normal(size=(6, 1, 3, 3)), rng.normal(size=(3, 6 * 4))
    with RunWriter.open(path, framework="synthetic", labels=[0, 1, 2], class_names=["a", "b", "c"],
                        info=info) as w:
        for epoch in range(3):
            with w.epoch(epoch) as ep:
                if epoch in weights_at:
                    ep.set_weights({"c.weight": conv * (1 + epoch), "d.weight": dense * (1 + epoch)})
                ep.set_predictions(np.array([0, 1, 2]))
                ep.set_metrics({"loss": 1.0})
    return open_run(path), dense


def test_from_run_reads_the_flatten_order_the_run_declares(tmp_path):
    # Position-major flatten (hw * C + c): unit 1's weights from channel 4 are dense[1, 4::6].
    run, dense = _conv_run(tmp_path / "last", info={FLATTEN_ORDER_KEY: "channels_last"})
    history = NetworkHistory.from_run(run)
    assert history.sizes == (1, 6, 3) and history.chain[1].channels_last
    np.testing.assert_allclose(history.magnitudes[1][0][1, 4], np.linalg.norm(dense[1, 4::6]), rtol=1e-5)
    # Declared nothing: channel-major (c * HW + hw), channel 4 is dense[1, 16:20].
    run, dense = _conv_run(tmp_path / "first")
    history = NetworkHistory.from_run(run)
    assert not history.chain[1].channels_last
    np.testing.assert_allclose(history.magnitudes[1][0][1, 4], np.linalg.norm(dense[1, 16:20]), rtol=1e-5)


def test_from_run_leaves_out_epochs_without_weights(tmp_path):
    run, dense = _conv_run(tmp_path / "r", weights_at=(1, 2))
    history = NetworkHistory.from_run(run)
    assert history.epochs.tolist() == [1, 2]
    np.testing.assert_allclose(history.magnitudes[1][1][0, 0], 3 * np.linalg.norm(dense[0, 0:4]), rtol=1e-5)


def test_a_run_without_weights_says_how_to_record_them(tmp_path):
    run, _ = _conv_run(tmp_path / "r", weights_at=())
    with pytest.raises(RunError, match="no epoch holds weights.*weights='auto'"):
        NetworkHistory.from_run(run)


def test_the_network_model_is_numpy_only_and_asks_no_framework_name():
    import subprocess
    import sys
    from pathlib import Path

    import epochscope.network as package

    for path in Path(package.__file__).parent.glob("*.py"):
        assert ".framework" not in path.read_text(encoding="utf-8"), path.name
    code = ("import sys, epochscope.network; "
            "print(sorted(m for m in ('matplotlib', 'torch', 'keras', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- which layers, which epochs


def _run_with_weights(path, weights_at: dict[int, dict[str, np.ndarray] | None]):
    """A run of ``len(weights_at)`` epochs holding ``weights_at[epoch]`` (``None``: no weights file)."""
    with RunWriter.open(path, framework="synthetic", labels=[0, 1, 2], class_names=["a", "b", "c"]) as w:
        for epoch, weights in sorted(weights_at.items()):
            with w.epoch(epoch) as ep:
                if weights is not None:
                    ep.set_weights(weights)
                ep.set_predictions(np.array([0, 1, 2]))
                ep.set_metrics({"loss": 1.0})
    return open_run(path)


def _without(weights: dict[str, np.ndarray], *layers: str) -> dict[str, np.ndarray]:
    return {k: v for k, v in weights.items() if k.split(".")[0] not in layers}


def test_a_layer_missing_at_the_first_epoch_is_not_left_out_of_every_frame(tmp_path, caplog):
    """The chain came from the first epoch: without l2 there, l2 was missing from every frame
    (the command exited 0 with one info line, "layers outside it: l2")."""
    full = mlp_weights((4, 5, 3))
    run = _run_with_weights(tmp_path / "r", {0: _without(full, "l2"), 1: full, 2: full, 3: full})
    with caplog.at_level("WARNING", logger="epochscope"):
        history = NetworkHistory.from_run(run)
    assert [lk.name for lk in history.chain] == ["l1", "l2"] and history.sizes == (4, 5, 3)
    assert history.epochs.tolist() == [1, 2, 3]  # epoch 0 cannot show l2: left out, and said
    assert history.left_out == {0: ("l2",)}
    told = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(told) == 1 and "epoch 0 lacks layer l2" in told[0] and "layers=" in told[0], told
    # The way out the message names: the layers every epoch holds draw every epoch.
    chosen = NetworkHistory.from_run(run, layers=["l1"])
    assert chosen.epochs.tolist() == [0, 1, 2, 3] and chosen.left_out == {}


def test_an_epoch_missing_a_layer_later_is_left_out_and_said(tmp_path, caplog):
    # It raised "layer 'l2' (l2.weight) is missing" and render took that for "no network".
    full = mlp_weights((4, 5, 3))
    run = _run_with_weights(tmp_path / "r", {0: full, 1: full, 2: _without(full, "l2"), 3: _without(full, "l2")})
    with caplog.at_level("WARNING", logger="epochscope"):
        history = NetworkHistory.from_run(run)
    assert history.epochs.tolist() == [0, 1] and history.left_out == {2: ("l2",), 3: ("l2",)}
    assert "epochs 2..3 lack layer l2" in caplog.text


def test_epochs_holding_different_layers_are_refused_naming_them():
    a = {"l1.weight": np.ones((5, 4)), "a.weight": np.ones((3, 5))}
    b = {"l1.weight": np.ones((5, 4)), "b.weight": np.ones((3, 5))}
    with pytest.raises(ValueError, match=r"no epoch holds every weight layer.*epoch 0: .*a.*epoch 1: .*b.*layers="):
        NetworkHistory.from_weights([0, 1], [a, b])
    assert NetworkHistory.from_weights([0, 1], [a, b], layers=["l1"]).epochs.tolist() == [0, 1]
    only_b = {"b.weight": np.ones((3, 5))}
    with pytest.raises(ValueError, match=r"no epoch holds all of l1, b \(l1 at epoch 0; b at epochs 1..2\)"):
        NetworkHistory.from_weights([0, 1, 2], [a, only_b, only_b], layers=["l1", "b"])


def test_weight_layers_outside_the_chain_are_refused_not_dropped():
    """Two heads on one hidden layer: the chain a -> b1 was drawn as the whole network, b2 left out."""
    heads = {"a.weight": np.ones((5, 4)), "b1.weight": np.ones((3, 5)), "b2.weight": np.ones((3, 5))}
    with pytest.raises(ValueError, match=r"a \(5, 4\) -> b1 \(3, 5\) \| b2 \(3, 5\).*leave out b2 \(3, 5\)"
                       r".*layers= \(--layers NAME \.\.\.\), e\.g\. --layers a b1"):
        NetworkHistory.from_weights([0], [heads])
    assert NetworkHistory.from_weights([0], [heads], layers=["a", "b2"]).sizes == (4, 5, 3)


def test_layers_recorded_out_of_forward_order_are_refused_not_half_drawn():
    """``out`` registered before ``hidden``: two one-layer chains, the first (5-3) was drawn alone."""
    w = {"out.weight": np.ones((3, 5)), "hidden.weight": np.ones((5, 4))}
    with pytest.raises(ValueError, match=r"out \(3, 5\) \| hidden \(5, 4\).*forward order.*"
                                         r"--layers hidden out if that is the model's order"):
        NetworkHistory.from_weights([0], [w])
    assert NetworkHistory.from_weights([0], [w], layers=["hidden", "out"]).sizes == (4, 5, 3)


def test_no_order_that_feeds_a_dense_layer_into_a_conv_is_suggested():
    """A ResNet-like block (c1, c2, a 1x1 downsample conv `down`, a classifier `fc`): by their shapes
    the layers chain as down -> fc -> c1 -> c2, and the refusal suggested `--layers down fc c1 c2`,
    which drew a nonsense network (4-8-3-4-8) without complaint."""
    w = {"c1.weight": np.ones((4, 3, 3, 3)), "c2.weight": np.ones((8, 4, 3, 3)),
         "down.weight": np.ones((8, 4, 1, 1)), "fc.weight": np.ones((3, 8))}
    with pytest.raises(ValueError) as info:
        NetworkHistory.from_weights([0], [w])
    message = str(info.value)
    assert "down fc c1 c2" not in message and "--layers c1 c2 for the longest chain" in message, message


def test_what_the_shapes_cannot_tell_is_said(caplog):
    """Square layers (as many inputs as outputs) may be parallel branches (attention's query, key,
    value) or in another order: the drawing says it chained them in recording order."""
    with caplog.at_level("INFO", logger="epochscope"):
        NetworkHistory.from_weights([0], [mlp_weights((4, 5, 5, 5, 3))])
    told = [r.getMessage() for r in caplog.records if "recording order" in r.getMessage()]
    assert len(told) == 1 and "l2, l3" in told[0] and "--layers" in told[0], caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="epochscope"):
        NetworkHistory.from_weights([0], [mlp_weights((4, 5, 5, 5, 3))], layers=["l1", "l2", "l3", "l4"])
        NetworkHistory.from_weights([0], [mlp_weights((4, 8, 3))])
    assert "recording order" not in caplog.text  # chosen by name, or one way only to chain
