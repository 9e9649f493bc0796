"""``epochscope.render``: every picture of a training run, drawn from its run directory alone.

Example::

    paths = epochscope.render("demo-out/run", "demo-out", formats=("gif", "mp4"))
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..run import Run, open_run
from .animate import check_animation_path

__all__ = ["render", "FORMATS"]

log = logging.getLogger("epochscope")

FORMATS = ("gif", "mp4")


def _check_formats(formats: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = [f for f in formats.split(",") if f.strip()]
    chosen = tuple(str(f).strip().lower().lstrip(".") for f in formats)
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise ValueError(f"formats must name one or more of {', '.join(FORMATS)}; got {list(formats)!r}")
    for f in chosen:
        check_animation_path(f"timelapse.{f}")  # MP4 without imageio-ffmpeg fails here, before any drawing
    return tuple(dict.fromkeys(chosen))


def _embed(run: Run, layer: str | None, method: str, progress: bool, options: dict[str, Any]):
    from ..maps.api import embed

    return embed(run, layer, method, progress=progress, **options)


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        fig.savefig(tmp, dpi=fig.dpi, facecolor="white")
        tmp.replace(path)
    finally:
        plt.close(fig)
    return path


def render(run: Run | str | os.PathLike[str], out_dir: str | os.PathLike[str], *, layer: str | None = None,
           method: str = "umap", formats: Sequence[str] | str = ("gif",), epoch: int | None = None,
           progress: bool = True, smooth: bool = False, test_points: bool = False, duration_ms: float = 500,
           maps: Any = None, **embed_options: Any) -> list[Path]:
    """Draw every picture of ``run`` into ``out_dir``; returns the paths written.

    Writes ``samples.png`` (image inputs only), ``frames/epoch_NNN.png``,
    ``timelapse.<format>`` (and ``timelapse_smooth.<format>`` with ``smooth=True``),
    ``curves.png``, ``train_test_map.png`` (with a test set), ``confusion.png`` (and
    ``confusion_epoch_N.png`` with ``epoch=``), ``layers_epochs.png`` (several layers
    recorded), ``forgetting.png`` and ``quality.png``.

    Parameters
    ----------
    run : a :class:`~epochscope.Run` or the path of a run directory.
    out_dir : output folder (created if needed; existing files of the same names are replaced).
    layer : the layer whose map is animated (default: :func:`~epochscope.embed`'s default, the
        first recorded layer).
    method : how maps are made (``"umap"``, ``"pca"``, ... see :func:`~epochscope.embed`).
    formats : animation formats, ``("gif",)`` by default; ``"gif,mp4"`` also works.
    epoch : also draw the confusion matrix at this epoch.
    progress : show progress bars.
    smooth : also write an animation whose points glide between epochs.
    test_points : overlay the test set as gold stars on every time-lapse frame (the
        train + test map always shows them).
    duration_ms : display time per epoch in the animations (default 500 ms).
    maps : already computed maps of ``layer`` to draw instead of embedding again.
    **embed_options : passed to :func:`~epochscope.embed` (e.g. ``n_neighbors=15``).

    Example
    -------
    >>> paths = render("runs/mnist", "pictures", method="pca", formats="gif,mp4")  # doctest: +SKIP
    """
    run = run if isinstance(run, Run) else open_run(run)
    fmts = _check_formats(formats)
    if not duration_ms > 0:
        raise ValueError(f"duration_ms must be a positive number of milliseconds, got {duration_ms}")
    if epoch is not None and int(epoch) not in run.epochs:
        epochs = run.epochs
        raise ValueError(f"epoch {epoch} is not in the run (epochs {epochs[0]}..{epochs[-1]})" if epochs
                         else f"epoch {epoch}: the run has no finished epoch yet")
    if not run.epochs:
        raise ValueError(f"the run {run.path} has no finished epoch yet; nothing to draw")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def step(name: str, draw: Callable[[], list[Path] | Path | None]) -> None:
        result = draw()
        paths = [] if result is None else [result] if isinstance(result, Path) else list(result)
        written.extend(paths)
        if paths:
            log.debug("%-15s %s%s", name, paths[0], f" (+{len(paths) - 1} more)" if len(paths) > 1 else "")

    from .confusion import ConfusionDisplay
    from .curves import CurvesDisplay
    from .forgetting import ForgettingDisplay
    from .quality import QualityDisplay
    from .samples import SamplesDisplay, as_images
    from .testmap import train_test_map
    from .timelapse import Timelapse, save_png

    if maps is None:
        maps = _embed(run, layer, method, progress, embed_options)
    elif layer is not None and maps.layer != layer:
        raise ValueError(f"maps are of layer {maps.layer!r} but layer={layer!r} was asked for")
    skipped = dict(getattr(maps, "skipped", None) or {})
    if skipped:
        # Said here too: maps read back from the cache do not repeat the embedder's warning.
        log.warning("layer %r: no map frame for epoch%s %s (%s); the other epochs are drawn", maps.layer,
                    "s" if len(skipped) > 1 else "", ", ".join(str(e) for e in sorted(skipped)),
                    "; ".join(f"epoch {e}: {why}" for e, why in sorted(skipped.items())))

    # After the maps: a run that cannot be embedded fails before any picture is written.
    inputs = run.probe_inputs
    if inputs is not None:
        try:
            as_images(inputs[:1])
            is_image = True
        except ValueError:
            is_image = False
        if is_image:
            step("samples", lambda: _save(SamplesDisplay.from_run(run).plot().figure_, out / "samples.png"))

    lapse = Timelapse.from_run(run, maps, test_points=test_points, duration_ms=duration_ms, progress=progress)
    step("frames", lambda: lapse.save_frames(out / "frames"))
    for f in fmts:
        step("timelapse", lambda f=f: lapse.save(out / f"timelapse.{f}"))
    if smooth and len(lapse.frames) > 1:
        smooth_lapse = lapse.smooth(progress=progress)
        for f in fmts:
            step("smooth", lambda f=f: smooth_lapse.save(out / f"timelapse_smooth.{f}"))
        del smooth_lapse
    del lapse

    step("curves", lambda: _save(CurvesDisplay.from_run(run).plot().figure_, out / "curves.png"))
    if maps.test_coords is not None:
        step("train_test_map", lambda: save_png(train_test_map(run, maps), out / "train_test_map.png"))
    step("confusion", lambda: _save(ConfusionDisplay.from_run(run).plot().figure_, out / "confusion.png"))
    if epoch is not None:
        step("confusion", lambda: _save(ConfusionDisplay.from_run(run, epoch=epoch).plot().figure_,
                                        out / f"confusion_epoch_{int(epoch)}.png"))
    if len(run.layers) > 1:
        from .multiples import LayerEpochGrid

        all_maps = [maps if name == maps.layer else _embed(run, name, maps.method, progress, embed_options)
                    for name in run.layers]
        step("layers", lambda: _save(LayerEpochGrid.from_maps(all_maps, run.labels, run.class_names).plot().figure_,
                                     out / "layers_epochs.png"))
    step("forgetting", lambda: _save(ForgettingDisplay.from_run(run, maps).plot().figure_, out / "forgetting.png"))
    step("quality", lambda: _save(QualityDisplay.from_run(run, maps).plot().figure_, out / "quality.png"))
    log.info("rendered %d files into %s", len(written), out)
    return written
