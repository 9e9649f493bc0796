"""A run as a TensorBoard log directory: the embedding projector's files and the metrics as scalars.

``epochscope export tensorboard RUN --out DIR`` (and :func:`export_tensorboard`) writes::

    DIR/
      events.out.tfevents.*            every metric of every epoch as a scalar, plus ``epoch``
      projector_config.pbtxt           one embedding per (layer, epoch) exported
      projector/sprite.png             the probe (then test) inputs, when they are images
      projector/epoch_NNNNNN/metadata.tsv    split, index, label, prediction, correct: one row per point
      projector/epoch_NNNNNN/<key>.tsv       the layer's recorded outputs, one row per point

so ``tensorboard --logdir DIR`` shows the curves under *Scalars* and the layer's points under
*Projector*, where TensorBoard's own PCA, t-SNE and UMAP, colouring by label or prediction and
the input thumbnails work as for any TensorBoard embedding.

Written with TensorBoard's own writers, so nothing here knows the file formats: the scalars
through ``tensorboard.summary.Writer`` (TensorBoard's framework-free writer, numpy only; it
writes the same scalar events TensorFlow and ``torch.utils.tensorboard`` write) and the
projector config as the projector's own ``ProjectorConfig`` message in protobuf text, which is
what ``tensorboard.plugins.projector.visualize_embeddings`` writes. One extra,
``tensorboard``, serves the export and the importer's event-file reader; torch's
``SummaryWriter`` would pull in torch and tensorboardX a second package for the same files.

**The x axis.** A scalar's step is the epoch, or with ``step="global"`` the training step the
recorder stored in the metrics row (``step``: the Lightning recorder stores the trainer's
global step, so the curves line up with Lightning's own TensorBoard logs); ``"auto"`` takes
the global step when every row has one. :func:`record_step` is the one place that decides, so
a record's own step (records inside an epoch) can be used there when runs hold them.

**What the numbers are.** The tensors are the recorded values (float16 in the run) written as
text with 6 significant digits, which gives back every float16 value exactly; a layer stored
through a reduction (e.g. a random projection) is exported as stored and its name in the
projector says so. Epochs whose activations hold NaN or infinities are left out of the
projector with a warning (TensorBoard's PCA cannot use them).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import stops_on_damage, unknown_name_message
from .._optional import require
from .._progress import progress as progress_bar
from ..metric_names import metric_value
from ..run import Run, open_run

__all__ = ["export_tensorboard", "TensorBoardExport", "ProjectorEmbedding", "record_step", "sprite_grid",
           "STEP_MODES", "MAX_SPRITE_SIDE"]

log = logging.getLogger("epochscope")

#: How a scalar's step is chosen (see :func:`record_step`).
STEP_MODES = ("auto", "epoch", "global")
#: The projector loads the sprite as one WebGL texture: 8192 px a side at most.
MAX_SPRITE_SIDE = 8192
#: Metrics-row entries that place a row in time rather than measure the model: not scalars.
_AXES = ("epoch", "step", "epochs_done", "wall_time")
_TENSOR_FORMAT = "%.6g"  # 6 significant digits: every float16 value reads back exactly
_CHUNK = 4096  # rows at a time from memory-mapped activations and inputs


@dataclass(frozen=True)
class ProjectorEmbedding:
    """One embedding in the projector: ``layer`` at ``epoch``, ``shape`` = (points, values per point)."""

    name: str
    layer: str
    epoch: int
    tensor_path: Path
    metadata_path: Path
    shape: tuple[int, int]


@dataclass(frozen=True)
class TensorBoardExport:
    """What :func:`export_tensorboard` wrote (paths inside ``out``)."""

    out: Path
    event_file: Path
    scalars: dict[str, int]
    step: str
    embeddings: list[ProjectorEmbedding] = field(default_factory=list)
    config: Path | None = None
    sprite: Path | None = None
    skipped: dict[int, str] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for the command line: what was written and how to open it."""
        lines = [f"{self.out}: {len(self.scalars)} scalar tags ({sum(self.scalars.values())} points, "
                 f"step = {self.step})"]
        if self.embeddings:
            points, _ = self.embeddings[0].shape
            lines.append(f"projector: {len(self.embeddings)} embeddings of {points} points "
                         f"({', '.join(e.name for e in self.embeddings[:6])}{', ...' if len(self.embeddings) > 6 else ''})"
                         + (", with input thumbnails" if self.sprite else ""))
        for epoch, why in sorted(self.skipped.items()):
            lines.append(f"epoch {epoch} not in the projector: {why}")
        lines.append(f"open it with: tensorboard --logdir {self.out}")
        return "\n".join(lines)


def record_step(row: Mapping[str, Any], mode: str) -> int:
    """The TensorBoard step of one metrics ``row``: its ``epoch``, or its global ``step`` (``mode="global"``).

    Raises ``ValueError`` in ``"global"`` mode when the row holds no non-negative integer ``step``.

    >>> record_step({"epoch": 3, "step": 120}, "global"), record_step({"epoch": 3, "step": 120}, "epoch")
    (120, 3)
    """
    if mode == "epoch":
        return int(row["epoch"])
    step = metric_value(row.get("step"))
    if isinstance(step, float) and step.is_integer():
        step = int(step)
    if not isinstance(step, int) or step < 0:
        raise ValueError(f"step='global': epoch {row.get('epoch')} has no global step in its metrics "
                         f"(got {row.get('step')!r}); use step='epoch'")
    return int(step)


def _choose_step(rows: Sequence[Mapping[str, Any]], mode: str) -> str:
    if mode not in STEP_MODES:
        raise ValueError(f"step must be one of {', '.join(STEP_MODES)}, got {mode!r}")
    if mode != "auto":
        if mode == "global":
            steps = [record_step(r, "global") for r in rows]
            if any(b <= a for a, b in zip(steps, steps[1:])):
                raise ValueError(f"step='global': the runs' global steps do not increase with the epoch ({steps[:12]}); "
                                 "use step='epoch'")
        return mode
    try:
        steps = [record_step(r, "global") for r in rows]
    except ValueError:
        return "epoch"
    return "global" if rows and all(b > a for a, b in zip(steps, steps[1:])) else "epoch"


def _choose_layers(run: Run, layers: str | Sequence[str] | None) -> list[str]:
    if layers is None:
        return run.layers[:1]
    names = [layers] if isinstance(layers, str) else list(layers)
    for name in names:
        if name not in run.layers:
            raise ValueError(unknown_name_message("layer", name, run.layers))
    return list(dict.fromkeys(names))


def _choose_epochs(run: Run, epochs: str | Iterable[int] | None) -> list[int]:
    available = run.epochs
    if not available:
        return []
    if epochs is None:
        return sorted({available[0], available[-1]})
    if isinstance(epochs, str):
        if epochs != "all":
            raise ValueError(f"epochs must be 'all', a list of epochs or None (first and last), got {epochs!r}")
        return available
    chosen = sorted({int(e) for e in epochs})
    missing = [e for e in chosen if e not in set(available)]
    if missing or not chosen:
        raise ValueError(f"epochs {missing or '[]'} are not in the run {run.path} (epochs {available[0]}..{available[-1]}); "
                         "give epochs the run holds, or 'all'")
    return chosen


def _check_out(out: str | os.PathLike[str]) -> Path:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"out: {out} is not an empty folder; give a new folder (TensorBoard would mix this export "
                         "with what is there)")
    return out


def _clean(text: str) -> str:
    """One TSV cell: tabs and line breaks would split the row."""
    return " ".join(str(text).split()) or "-"


def _reduction_note(info: Any) -> str:
    red = info.reduction
    if not red:
        return ""
    what = {"project": "random projection", "pool": "average pool"}.get(str(red.get("method")), str(red.get("method")))
    size = f" {red['from']}→{red['to']}" if "from" in red and "to" in red else ""
    return f" [{what}{size}]"


def _metadata_rows(class_names: list[str], labels: np.ndarray, predictions: np.ndarray, split: str) -> Iterable[str]:
    for i, (label, pred) in enumerate(zip(labels.tolist(), predictions.tolist())):
        name = _clean(class_names[label]) if 0 <= label < len(class_names) else f"class {label}"
        if pred < 0:
            shown, correct = "unknown", "unknown"
        else:
            shown = _clean(class_names[pred]) if pred < len(class_names) else f"class {pred}"
            correct = "yes" if pred == label else "no"
        yield f"{split}\t{i}\t{name}\t{shown}\t{correct}\n"


def _write_tensor(path: Path, parts: Sequence[np.ndarray]) -> None:
    with open(path, "w", encoding="ascii") as f:
        for part in parts:
            for start in range(0, len(part), _CHUNK):
                np.savetxt(f, np.asarray(part[start:start + _CHUNK], dtype=np.float32), fmt=_TENSOR_FORMAT,
                           delimiter="\t")


def _finite(parts: Sequence[np.ndarray]) -> bool:
    return all(bool(np.isfinite(np.asarray(p[s:s + _CHUNK], dtype=np.float32)).all())
               for p in parts for s in range(0, len(p), _CHUNK))


def sprite_grid(images: Sequence[np.ndarray], *, max_side: int = MAX_SPRITE_SIDE) -> tuple[np.ndarray, tuple[int, int]]:
    """The projector's sprite: ``images`` in a square grid, row by row, ``ceil(sqrt(n))`` a row.

    ``images`` are blocks of ``(n, H, W)`` grey or ``(n, H, W, 3)`` colour images (the probe, then
    the test set), each scaled to 0..255 by its own range (as the report's thumbnails are) and
    shrunk when the grid would exceed ``max_side`` pixels a side. Returns the ``uint8`` sheet and
    the tile size ``(width, height)``, which the projector config names ``single_image_dim``.

    >>> sheet, (w, h) = sprite_grid([np.random.rand(5, 8, 8)])
    >>> sheet.shape, (w, h)
    ((24, 24), (8, 8))
    """
    from PIL import Image

    n = sum(len(block) for block in images)
    if n == 0:
        raise ValueError("sprite_grid: no images given")
    h, w = images[0].shape[1:3]
    per_row = math.ceil(math.sqrt(n))
    scale = min(1.0, max_side / (per_row * max(h, w)))
    th, tw = max(1, int(h * scale)), max(1, int(w * scale))
    rgb = images[0].ndim == 4
    sheet = np.zeros((per_row * th, per_row * tw, 3) if rgb else (per_row * th, per_row * tw), dtype=np.uint8)
    i = 0
    for block in images:
        for start in range(0, len(block), _CHUNK):
            tiles = np.asarray(block[start:start + _CHUNK], dtype=np.float32)
            axes = tuple(range(1, tiles.ndim))
            lo = np.nanmin(tiles, axis=axes, keepdims=True)
            hi = np.nanmax(tiles, axis=axes, keepdims=True)
            tiles = np.nan_to_num((tiles - lo) / np.where(hi > lo, hi - lo, 1.0) * 255.0)
            tiles = np.clip(np.rint(tiles), 0, 255).astype(np.uint8)
            for tile in tiles:
                if (th, tw) != (h, w):
                    tile = np.asarray(Image.fromarray(tile).resize((tw, th), Image.BILINEAR))
                r, c = divmod(i, per_row)
                sheet[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = tile
                i += 1
    return sheet, (tw, th)


def _sprite_blocks(run: Run, with_test: bool) -> list[np.ndarray] | None:
    """The probe (and test) inputs as image blocks, or ``None`` when they were not kept or are not images."""
    from ..html.thumbnails import as_images

    blocks = [as_images(run.probe_inputs)]
    if with_test:
        blocks.append(as_images(run.test_inputs))
    if any(b is None for b in blocks):
        return None
    if len({b.shape[1:] for b in blocks}) != 1:
        return None
    return blocks


def _write_scalars(run: Run, out: Path, rows: list[dict[str, Any]], step_mode: str) -> tuple[Path, dict[str, int]]:
    require("tensorboard", extra="tensorboard", purpose="writing TensorBoard event files")
    from tensorboard.summary import Writer

    counts: dict[str, int] = {}
    writer = Writer(str(out))
    try:
        for row in rows:
            step = record_step(row, step_mode)
            wall = metric_value(row.get("wall_time"))
            wall = float(wall) if isinstance(wall, (int, float)) and math.isfinite(wall) else None
            # Lightning writes the epoch as a scalar beside every metric; so do we, so that the x
            # axis can be read as epochs and the export reads back through the event-file importer.
            # A run recorded inside epochs: its records' fractional epoch (its folder number is the step).
            epoch = row.get("epochs_done") if run.manifest.record_unit == "step" else int(row["epoch"])
            if epoch is not None:
                writer.add_scalar("epoch", epoch, step, wall_time=wall)
                counts["epoch"] = counts.get("epoch", 0) + 1
            for name, value in row.items():
                number = metric_value(value)
                if name in _AXES or number is None:
                    continue
                writer.add_scalar(name, number, step, wall_time=wall)
                counts[name] = counts.get(name, 0) + 1
    finally:
        writer.close()
    files = sorted(out.glob("events.out.tfevents.*"))
    return files[-1], counts


def export_tensorboard(run: Run | str | os.PathLike[str], out: str | os.PathLike[str], *,
                       layers: str | Sequence[str] | None = None, epochs: str | Iterable[int] | None = None,
                       test: bool = True, step: str = "auto", sprite: bool = True,
                       progress: bool = True) -> TensorBoardExport:
    """Write ``run`` as a TensorBoard log directory at ``out``: projector files and scalars.

    Parameters
    ----------
    run : a :class:`~epochscope.Run` or the path of a run directory.
    out : a new or empty folder (then ``tensorboard --logdir out``). Written under a temporary
        name beside it and renamed when complete.
    layers : recorded layer(s) for the projector (default: the run's first layer). A run with no
        recorded layer (an imported one) exports its scalars only.
    epochs : epochs for the projector: default the first and the last, ``"all"``, or a list.
    test : add the test set's points after the probe's (``split`` column ``test``) when the run
        has one.
    step : the scalars' x axis: ``"epoch"``, ``"global"`` (the training step stored in each
        metrics row) or ``"auto"`` (global when every row has one); see :func:`record_step`.
    sprite : write the inputs as the projector's sprite when they are images.
    progress : show a progress bar over the epochs.

    Returns a :class:`TensorBoardExport`. Raises ``ValueError`` for an unknown layer, an epoch the
    run does not hold, a ``step`` mode the run cannot give, or an ``out`` that is not empty;
    :class:`~epochscope.MissingDependencyError` without ``pip install 'epochscope[tensorboard]'``;
    :class:`~epochscope.RunError` naming the file and ``epochscope check`` when a run file it reads is
    damaged (nothing is written then).

    Example::

        export_tensorboard("runs/mnist", "tb/mnist", epochs=[0, 5, 10])
        # then: tensorboard --logdir tb
    """
    # a run file that cannot be read stops the export with `epochscope check`, as it stops the pictures
    with stops_on_damage(run, "the export is not written"):
        return _export_tensorboard(run, out, layers=layers, epochs=epochs, test=test, step=step, sprite=sprite,
                                   progress=progress)


def _export_tensorboard(run: Run | str | os.PathLike[str], out: str | os.PathLike[str], *,
                        layers: str | Sequence[str] | None, epochs: str | Iterable[int] | None, test: bool, step: str,
                        sprite: bool, progress: bool) -> TensorBoardExport:
    if not isinstance(run, Run):
        run = open_run(run)
    out = _check_out(out)
    chosen_layers = _choose_layers(run, layers)
    chosen_epochs = _choose_epochs(run, epochs) if chosen_layers else []
    rows = run.metrics
    if run.manifest.record_unit == "step" and step == "epoch":
        raise ValueError("step='epoch': this run was recorded inside epochs (its records are numbered by optimizer "
                         "step, several per epoch); use step='global' or 'auto'")
    step_mode = _choose_step(rows, step)
    require("tensorboard", extra="tensorboard", purpose="writing TensorBoard files")
    from google.protobuf import text_format
    from tensorboard.plugins.projector import metadata as projector_metadata
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        event_file, counts = _write_scalars(run, tmp, rows, step_mode)
        with_test = bool(test and run.has_test)
        embeddings, skipped, sprite_path = [], {}, None
        config = ProjectorConfig()
        blocks = _sprite_blocks(run, with_test) if sprite and chosen_epochs else None
        if blocks is not None:
            sheet, tile = sprite_grid(blocks)
            from PIL import Image

            sprite_path = Path("projector") / "sprite.png"
            (tmp / "projector").mkdir(exist_ok=True)
            Image.fromarray(sheet).save(tmp / sprite_path)
        elif sprite and chosen_epochs:
            log.info("tensorboard: no sprite (the run kept no image inputs for every exported point)")
        n_points = len(run.labels) + (len(run.test_labels) if with_test else 0)
        for epoch in progress_bar(chosen_epochs, desc="projector", enabled=progress):
            parts = {name: [run.activations(name, epoch)] + ([run.test_activations(name, epoch)] if with_test else [])
                     for name in chosen_layers}
            bad = [name for name, p in parts.items() if not _finite(p)]
            if bad:
                skipped[epoch] = f"activations of {', '.join(bad)} hold NaN or infinite values"
                log.warning("tensorboard: epoch %d left out of the projector: %s", epoch, skipped[epoch])
                continue
            folder = Path("projector") / f"epoch_{epoch:06d}"
            (tmp / folder).mkdir(parents=True, exist_ok=True)
            metadata = folder / "metadata.tsv"
            with open(tmp / metadata, "w", encoding="utf-8") as f:
                f.write("split\tindex\tlabel\tprediction\tcorrect\n")
                f.writelines(_metadata_rows(run.class_names, run.labels, run.predictions(epoch), "probe"))
                if with_test:
                    f.writelines(_metadata_rows(run.class_names, run.test_labels, run.test_predictions(epoch), "test"))
            for name in chosen_layers:
                info = run.layer_info(name)
                tensor = folder / f"{info.key}.tsv"
                _write_tensor(tmp / tensor, parts[name])
                label = f"{name}{_reduction_note(info)} @ epoch {epoch}"
                emb = config.embeddings.add()
                emb.tensor_name = label
                emb.tensor_path = tensor.as_posix()
                emb.metadata_path = metadata.as_posix()
                emb.tensor_shape.extend([n_points, info.width])
                if sprite_path is not None:
                    emb.sprite.image_path = sprite_path.as_posix()
                    emb.sprite.single_image_dim.extend(tile)
                embeddings.append(ProjectorEmbedding(label, name, epoch, out / tensor, out / metadata,
                                                     (n_points, info.width)))
        config_path = None
        if embeddings:
            # What projector.visualize_embeddings writes, without its file layer (which would
            # import TensorFlow where it is installed): the config as protobuf text.
            config_path = out / projector_metadata.PROJECTOR_FILENAME
            (tmp / config_path.name).write_text(text_format.MessageToString(config), encoding="utf-8")
        elif sprite_path is not None:
            (tmp / sprite_path).unlink()
        if out.exists():
            out.rmdir()  # checked empty above
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result = TensorBoardExport(out=out, event_file=out / event_file.name, scalars=counts, step=step_mode,
                               embeddings=embeddings, config=config_path,
                               sprite=None if sprite_path is None or not embeddings else out / sprite_path,
                               skipped=skipped)
    log.info("%s", result.summary())
    return result
