"""``epochscope export tensorboard``: read back by TensorBoard's own projector plugin and event reader."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from readers import read_scalars

from epochscope import open_run
from epochscope.run import RunWriter

tensorboard = pytest.importorskip("tensorboard", reason="the TensorBoard export needs the tensorboard extra")

from epochscope.integrations.tensorboard import export_tensorboard, record_step, sprite_grid  # noqa: E402


def _expected_tile(image: np.ndarray) -> np.ndarray:
    """One input scaled to 0..255 by its own range, computed here independently."""
    x = np.asarray(image, dtype=np.float64)
    return np.rint((x - x.min()) / (x.max() - x.min()) * 255).astype(np.uint8)


def _metadata(text: str) -> list[dict[str, str]]:
    lines = text.decode("utf-8").splitlines() if isinstance(text, bytes) else text.splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def test_projector_reads_back_tensors_metadata_and_sprite(synthetic_run, tmp_path, projector_reader):
    run = open_run(synthetic_run)
    result = export_tensorboard(run, tmp_path / "tb", progress=False)
    reader = projector_reader(tmp_path / "tb")

    assert json.loads(reader.get("/runs")) == ["."]
    config = json.loads(reader.get("/info", run="."))
    names = [e["tensorName"] for e in config["embeddings"]]
    assert names == ["hidden @ epoch 0", "hidden @ epoch 4"]  # default: the first and the last epoch
    n_probe, n_test = len(run.labels), len(run.test_labels)
    n = n_probe + n_test
    for emb, epoch in zip(config["embeddings"], (0, 4)):
        assert [int(s) for s in emb["tensorShape"]] == [n, 16]
        tensor = np.frombuffer(reader.get("/tensor", run=".", name=emb["tensorName"]), np.float32).reshape(n, 16)
        stored = np.concatenate([run.activations("hidden", epoch), run.test_activations("hidden", epoch)])
        # the text gives back every recorded float16 value exactly
        np.testing.assert_array_equal(tensor.astype(np.float16), stored)

        rows = _metadata(reader.get("/metadata", run=".", name=emb["tensorName"]))
        assert len(rows) == n
        labels = np.concatenate([run.labels, run.test_labels])
        preds = np.concatenate([run.predictions(epoch), run.test_predictions(epoch)])
        assert [r["split"] for r in rows] == ["probe"] * n_probe + ["test"] * n_test
        assert [r["index"] for r in rows] == [str(i) for i in range(n_probe)] + [str(i) for i in range(n_test)]
        assert [r["label"] for r in rows] == [run.class_names[k] for k in labels]
        assert [r["prediction"] for r in rows] == [run.class_names[k] for k in preds]
        assert [r["correct"] for r in rows] == ["yes" if p == y else "no" for p, y in zip(preds, labels)]

        # the sprite: ceil(sqrt(n)) tiles a row, tile i is point i (probe first, then test)
        assert [int(d) for d in emb["sprite"]["singleImageDim"]] == [8, 8]
        from PIL import Image

        sheet = np.asarray(Image.open(io.BytesIO(reader.get("/sprite_image", run=".", name=emb["tensorName"]))))
        per_row = math.ceil(math.sqrt(n))
        assert sheet.shape == (per_row * 8, per_row * 8)
        for i, image in ((0, run.probe_inputs[0, 0]), (n_probe - 1, run.probe_inputs[-1, 0]),
                         (n_probe + 2, run.test_inputs[2, 0])):
            r, c = divmod(i, per_row)
            np.testing.assert_array_equal(sheet[r * 8:(r + 1) * 8, c * 8:(c + 1) * 8], _expected_tile(image))
        assert not sheet[-8:, (n % per_row) * 8:].any()  # the cells after the last point stay empty

    assert [e.epoch for e in result.embeddings] == [0, 4] and result.sprite.is_file()
    assert "tensorboard --logdir" in result.summary()


def test_scalars_read_back_with_tensorboards_reader(synthetic_run, tmp_path):
    run = open_run(synthetic_run)
    result = export_tensorboard(run, tmp_path / "tb", progress=False)
    scalars = read_scalars(tmp_path / "tb")
    assert set(scalars) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}
    assert result.step == "epoch" and result.scalars == {tag: 5 for tag in scalars}
    for tag in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert [s for s, _ in scalars[tag]] == run.epochs
        assert [v for _, v in scalars[tag]] == [float(np.float32(row[tag])) for row in run.metrics]
    assert scalars["epoch"] == [(e, float(e)) for e in run.epochs]


def _run_with_steps(path, steps, *, nan_epoch=None, reduction=None, layers=("hidden",)):
    labels = np.arange(12) % 3
    rng = np.random.default_rng(0)
    with RunWriter.open(path, framework="synthetic", labels=labels, class_names=["a\tb", "c\nd", "e"]) as w:
        for layer in layers:
            w.declare_layer(layer, (4,), 4, reduction)
        for epoch, step in enumerate(steps):
            with w.epoch(epoch) as ep:
                for layer in layers:
                    x = rng.normal(size=(12, 4)).astype(np.float32)
                    if epoch == nan_epoch:
                        x[3, 1] = np.nan
                    ep.set_activations(layer, x)
                ep.set_predictions(np.where(np.arange(12) < 6, labels, -1))
                row = {"loss": 1.0 / (epoch + 1), "wall_time": 1.7e9 + 60 * epoch}
                if step is not None:
                    row["step"] = step
                ep.set_metrics(row)
    return open_run(path)


def test_global_steps_become_the_x_axis_and_the_epoch_a_scalar(tmp_path):
    run = _run_with_steps(tmp_path / "run", [0, 40, 80])
    result = export_tensorboard(run, tmp_path / "tb", sprite=False, progress=False)
    assert result.step == "global"
    scalars = read_scalars(tmp_path / "tb")
    assert [s for s, _ in scalars["loss"]] == [0, 40, 80]
    assert scalars["epoch"] == [(0, 0.0), (40, 1.0), (80, 2.0)]
    assert "step" not in scalars and "wall_time" not in scalars
    by_epoch = export_tensorboard(run, tmp_path / "tb2", step="epoch", progress=False)
    assert [s for s, _ in read_scalars(by_epoch.out)["loss"]] == [0, 1, 2]


def test_event_wall_times_are_the_recorded_ones(tmp_path):
    from tensorboard.backend.event_processing import plugin_event_accumulator as pea

    run = _run_with_steps(tmp_path / "run", [0, 40, 80])
    export_tensorboard(run, tmp_path / "tb", progress=False)
    acc = pea.EventAccumulator(str(tmp_path / "tb"), size_guidance={pea.TENSORS: 0})
    acc.Reload()
    assert [e.wall_time for e in acc.Tensors("loss")] == [1.7e9, 1.7e9 + 60, 1.7e9 + 120]


def test_step_global_without_steps_fails_before_writing(tmp_path):
    run = _run_with_steps(tmp_path / "run", [0, None, 80])
    with pytest.raises(ValueError, match="epoch 1 has no global step"):
        export_tensorboard(run, tmp_path / "tb", step="global", progress=False)
    assert not (tmp_path / "tb").exists()
    assert export_tensorboard(run, tmp_path / "tb", progress=False).step == "epoch"  # auto falls back
    with pytest.raises(ValueError, match="step must be one of"):
        export_tensorboard(run, tmp_path / "tb3", step="time", progress=False)
    assert record_step({"epoch": 2, "step": 7.0}, "global") == 7


def test_metadata_cells_stay_cells_and_unknown_predictions_say_so(tmp_path, projector_reader):
    run = _run_with_steps(tmp_path / "run", [None, None])
    export_tensorboard(run, tmp_path / "tb", epochs=[1], progress=False)
    rows = _metadata(projector_reader(tmp_path / "tb").get("/metadata", run=".", name="hidden @ epoch 1"))
    assert len(rows) == 12 and all(len(r) == 5 for r in rows)
    assert rows[0]["label"] == "a b" and rows[1]["label"] == "c d"  # tab and newline in class names
    assert rows[6]["prediction"] == "unknown" and rows[6]["correct"] == "unknown"
    assert rows[0]["correct"] == "yes"


def test_epochs_with_nan_activations_are_left_out_with_a_warning(tmp_path, caplog):
    run = _run_with_steps(tmp_path / "run", [None, None, None], nan_epoch=2)
    result = export_tensorboard(run, tmp_path / "tb", epochs="all", progress=False)
    assert [e.epoch for e in result.embeddings] == [0, 1]
    assert 2 in result.skipped and "NaN" in result.skipped[2]
    assert "epoch 2 left out of the projector" in caplog.text
    assert not (tmp_path / "tb" / "projector" / "epoch_000002").exists()


def test_a_reduced_layer_says_so_in_its_name_and_several_layers_share_the_metadata(tmp_path, projector_reader):
    run = _run_with_steps(tmp_path / "run", [None, None], layers=("conv", "fc"),
                          reduction={"method": "project", "from": 100, "to": 4, "seed": 0})
    result = export_tensorboard(run, tmp_path / "tb", layers=["conv", "fc"], epochs=[1], progress=False)
    names = [e["tensorName"] for e in json.loads(projector_reader(tmp_path / "tb").get("/info", run="."))["embeddings"]]
    assert names == ["conv [random projection 100→4] @ epoch 1", "fc [random projection 100→4] @ epoch 1"]
    assert len({e.metadata_path for e in result.embeddings}) == 1
    assert result.sprite is None  # no inputs kept


def test_a_run_without_layers_exports_its_scalars_only(tmp_path):
    with RunWriter.open(tmp_path / "run", framework="torch", labels=np.zeros(1, np.int64), class_names=["class 0"]) as w:
        for epoch in range(3):
            with w.epoch(epoch) as ep:
                ep.set_predictions(np.full(1, -1))
                ep.set_metrics({"loss": 2.0 - epoch})
    result = export_tensorboard(tmp_path / "run", tmp_path / "tb", progress=False)
    assert result.embeddings == [] and result.config is None
    assert not (tmp_path / "tb" / "projector_config.pbtxt").exists()
    assert read_scalars(tmp_path / "tb")["loss"] == [(0, 2.0), (1, 1.0), (2, 0.0)]


def test_bad_arguments_fail_with_what_to_do_and_leave_nothing(synthetic_run, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="not an empty folder"):
        export_tensorboard(synthetic_run, tmp_path / "full", progress=False)
    with pytest.raises(ValueError, match="did you mean 'hidden'"):
        export_tensorboard(synthetic_run, tmp_path / "tb", layers="hiden", progress=False)
    with pytest.raises(ValueError, match=r"epochs \[9\] are not in the run"):
        export_tensorboard(synthetic_run, tmp_path / "tb", epochs=[0, 9], progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "run"]  # no partial folder left
    (tmp_path / "empty").mkdir()
    assert export_tensorboard(synthetic_run, tmp_path / "empty", progress=False).config.is_file()


def test_sprite_is_shrunk_to_the_projectors_texture_limit():
    images = np.random.default_rng(0).random((300, 64, 64, 3))
    sheet, (w, h) = sprite_grid([images[:200], images[200:]], max_side=256)
    assert sheet.shape[:2] == (18 * h, 18 * w) and max(sheet.shape[:2]) <= 256 and sheet.shape[2] == 3
    assert (w, h) == (14, 14)


def test_the_command_line_exports(synthetic_run, tmp_path, capsys):
    from epochscope.cli import main

    assert main(["-q", "export", "tensorboard", str(synthetic_run), "--out", str(tmp_path / "tb"),
                 "--epochs", "all", "--layer", "hidden", "--no-test"]) == 0
    out = capsys.readouterr().out
    assert "5 embeddings of 120 points" in out and "tensorboard --logdir" in out
    # a non-empty --out is the user's input: exit 2
    assert main(["-q", "export", "tensorboard", str(synthetic_run), "--out", str(tmp_path / "tb")]) == 2
    assert "not an empty folder" in capsys.readouterr().err



def test_a_run_recorded_inside_epochs_exports_its_steps_and_fractional_epochs(tmp_path):
    from synthetic import STEP_RECORDS, make_step_run

    run = open_run(make_step_run(tmp_path / "run"))
    result = export_tensorboard(run, tmp_path / "tb", sprite=False, progress=False)
    scalars = read_scalars(tmp_path / "tb")
    assert result.step == "global" and [s for s, _ in scalars["loss"]] == [s for s, _ in STEP_RECORDS]
    assert scalars["epoch"] == [(s, pytest.approx(d)) for s, d in STEP_RECORDS] and "epochs_done" not in scalars
    with pytest.raises(ValueError, match="recorded inside epochs .* use step='global'"):
        export_tensorboard(run, tmp_path / "tb2", step="epoch", progress=False)
