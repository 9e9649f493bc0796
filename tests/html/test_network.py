import numpy as np
from reportdata import make_report_run
from test_encode import unpack

from epochscope import open_run
from epochscope.html.network import network_payload
from epochscope.run import RunWriter


def test_dense_chain_becomes_packed_frames(report_run):
    run, _ = report_run
    data = network_payload(run, run.epochs)
    assert data["available"]
    assert len(data["nodes"]) == 4 + 5 + 4  # the chain 4-5-4 of reportdata's weights
    assert data["frameOf"] == list(range(len(run.epochs)))
    assert data["offsets"][-1] == len(run.epochs) * (4 * 5 + 5 * 4)
    src, dst = unpack(data["src"]), unpack(data["dst"])
    assert src.max() < 13 and dst.max() < 13 and np.all(src != dst)
    change = unpack(data["change"]).astype(int)
    last = slice(data["offsets"][-2], data["offsets"][-1])
    # reportdata grows l1 and shrinks l2 every epoch: red (> mid) and blue (< mid) edges.
    assert change[last].max() > 200 and change[last].min() < 55
    assert len(data["palette"]) == 256


def test_epochs_without_weights_map_to_no_frame(tmp_path):
    run = open_run(make_report_run(tmp_path / "run", n_probe=20, n_test=4, n_epochs=3))
    data = network_payload(run, [0, 2])
    assert data["frameOf"] == [0, 1]


def test_run_without_weights_has_a_note(tmp_path):
    labels = np.arange(10) % 2
    with RunWriter.open(tmp_path / "r", framework="x", labels=labels, class_names=["a", "b"]) as w:
        w.declare_layer("h", (2,), 2, None)
        with w.epoch(0) as ep:
            ep.set_activations("h", np.zeros((10, 2)))
    data = network_payload(open_run(tmp_path / "r"), [0])
    assert data["available"] is False and "no network" in data["note"]
