import numpy as np
import pytest
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


def test_an_epoch_lacking_a_layer_says_so_on_the_page(tmp_path):
    """Epoch 0's weights lack l2: the report's network drew 4-5 at every epoch, l2 missing unsaid."""
    run_path = make_report_run(tmp_path / "run", n_probe=20, n_test=4, n_epochs=3)
    path = run_path / "epochs/000000/weights.npz"
    with np.load(path) as held:
        np.savez(path, **{k: v for k, v in held.items() if not k.startswith("l2.")})
    run = open_run(run_path)
    data = network_payload(run, run.epochs)
    assert data["available"] and len(data["nodes"]) == 4 + 5 + 4  # l2 drawn
    assert data["frameOf"] == [-1, 0, 1] and data["lacking"] == ["l2", None, None]
    assert data["note"].endswith("; not drawn: epoch 0 (lacks layer l2)"), data["note"]


@pytest.mark.browser
def test_the_page_says_an_epoch_lacks_a_layer(tmp_path, open_report):
    """The viewer called every epoch without a frame one that "holds no weights"."""
    from epochscope.html.report import write_report
    from epochscope.importers._common import write_imported_run

    rng = np.random.default_rng(0)
    full = {"l1.weight": rng.normal(size=(5, 4)).astype(np.float32), "l2.weight": rng.normal(size=(3, 5)).astype(np.float32)}
    frames = [(e, full if e != 2 else {"l1.weight": full["l1.weight"]}, {"loss": 1.0 / e}) for e in range(1, 4)]
    run = open_run(write_imported_run(tmp_path / "run", framework="chainer", frames=frames,
                                      info={"imported_from": "chainer", "source": "x"}))
    r = open_report(write_report(run, None, tmp_path / "r.html", layer=None, method="umap", test_hook=True))
    assert r.errors == []
    r.js("window.epochscope.setEpoch(2)")
    texts = [t["text"] for t in r.js("window.epochscope.textBoxes()") if t.get("canvas") == "network"]
    assert texts == ["epoch 2 lacks layer l2: not drawn"], texts
    r.js("window.epochscope.setEpoch(3)")
    assert r.js("window.epochscope.networkEdges()") == 4 * 5 + 5 * 3
