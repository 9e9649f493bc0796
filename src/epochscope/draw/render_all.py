"""Every picture of a training run, drawn from the run and maps already made.

:func:`render_maps` receives the 2-D maps (it never computes them); :func:`epochscope.render`
(:mod:`epochscope.pipeline`) embeds the layers and calls it.

Example::

    maps = epochscope.embed(run, "hidden")
    paths = render_maps(run, maps, "pictures", formats=("gif", "mp4"))
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._errors import stops_on_damage
from .._output import check_output_dir, staged_folder
from ..analysis import run_contents
from ..run import Run, open_run
from . import style
from .animate import check_animation_path

__all__ = ["FORMATS", "check_render_options", "render_maps", "render_stops"]

log = logging.getLogger("epochscope")

FORMATS = ("gif", "mp4")


def render_stops(out_dir: str | os.PathLike[str]) -> str:
    """What a damaged run file stops (:func:`epochscope._errors.damaged_file_error`): the render, and
    nothing in ``out_dir`` changes (the pictures move in only when all are drawn)."""
    return f"the render stops ({out_dir} is left as it was)"


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


def check_render_options(run: Run | str | os.PathLike[str], *, formats: Sequence[str] | str = ("gif",),
                         epoch: int | None = None, duration_ms: float = style.FRAME_MS) -> tuple[Run, tuple[str, ...]]:
    """Check the drawing options before anything is computed or drawn; returns the opened run and
    the animation formats (``"gif,mp4"`` -> ``("gif", "mp4")``).

    Raises ``ValueError`` for an unknown format, a duration that is not positive, an epoch the run
    does not hold or a run without a finished epoch; :class:`~epochscope.MissingDependencyError`
    for MP4 without imageio-ffmpeg.
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
    return run, fmts


def render_maps(run: Run | str | os.PathLike[str], maps: Any, out_dir: str | os.PathLike[str], *,
                layer_maps: Sequence[Any] | None = None, formats: Sequence[str] | str = ("gif",),
                epoch: int | None = None, progress: bool = True, smooth: bool = False, test_points: bool = False,
                duration_ms: float = style.FRAME_MS, network: bool = True) -> list[Path]:
    """Draw every picture of ``run`` with ``maps`` into ``out_dir``; returns the paths written.

    Writes ``samples.png`` (image inputs only), ``frames/epoch_NNN.png``,
    ``timelapse.<format>`` (and ``timelapse_smooth.<format>`` with ``smooth=True``),
    ``curves.png``, ``train_test_map.png`` (maps with test coordinates), ``confusion.png`` (and
    ``confusion_epoch_N.png`` with ``epoch=``), ``layers_epochs.png`` (with ``layer_maps`` of
    two or more layers), ``forgetting.png``, ``quality.png`` and ``network.gif`` (when the run
    holds weights and ``network`` is true). Every file is written under a temporary name and
    renamed; the time-lapse frames are streamed to their files one at a time, so memory does not
    grow with the number of epochs.

    ``maps`` may be ``None`` for a run without maps (imported from checkpoints: weights and
    metrics only): then the pictures of what the run holds are drawn (curves, network) and one
    log line says what was skipped and why.

    Parameters
    ----------
    run : a :class:`~epochscope.Run` or the path of a run directory.
    maps : the animated layer's :class:`~epochscope.Maps` (or an object with the same fields), or ``None``.
    out_dir : output folder (created if needed; existing files of the same names are replaced).
    layer_maps : one Maps per recorded layer, in the run's layer order, for the layer x epoch grid.
    formats : animation formats, ``("gif",)`` by default; ``"gif,mp4"`` also works.
    epoch : also draw the confusion matrix at this epoch.
    progress : show progress.
    smooth : also write an animation whose points glide between epochs.
    test_points : lay the test set on every time-lapse frame (the train + test map always shows it).
    duration_ms : display time per epoch in the animations (default 500 ms), the network's too.
    network : also draw ``network.gif`` when the run holds the weights of a layer chain.

    Raises the errors of :func:`check_render_options` before anything is drawn;
    :class:`~epochscope.OutputPathError` for an ``out_dir`` that is (or lies below) a file and
    :class:`~epochscope.OutputError` for one that cannot be written, also before drawing;
    :class:`~epochscope.RunError` naming the file and ``epochscope check`` when a run file it reads
    is damaged (:func:`~epochscope._errors.stops_on_damage`: every reader, never drawn as absent).
    """
    with stops_on_damage(run, render_stops(out_dir)):
        run, fmts = check_render_options(run, formats=formats, epoch=epoch, duration_ms=duration_ms)
        contents = run_contents(run)
        if maps is None and contents.maps:
            raise ValueError("maps: the run records layers, so render_maps needs their maps (epochscope.embed)")
        from .figure import check_maps

        # Before the first file, so a refused render writes nothing (the grid draws no test point).
        if maps is not None:
            check_maps(run, maps, test=True)
        for one in layer_maps or []:
            check_maps(run, one)
        out = check_output_dir(out_dir)
        # Drawn into a hidden folder and moved in when every picture is drawn: a render that stops
        # half-way (a damaged file, a full disk) leaves the earlier render's pictures as they were,
        # never this render's first pictures beside the earlier one's last.
        with staged_folder(out, "render") as stage:
            drawn = _draw_all(run, contents, maps, stage, layer_maps=layer_maps, fmts=fmts, epoch=epoch,
                              progress=progress, smooth=smooth, test_points=test_points, duration_ms=duration_ms,
                              network=network, final=out)
        written = [out / p.relative_to(stage) for p in drawn]
    log.info("rendered %d files into %s", len(written), out)
    return written


def _draw_all(run: Run, contents: Any, maps: Any, out: Path, *, layer_maps: Sequence[Any] | None,
              fmts: tuple[str, ...], epoch: int | None, progress: bool, smooth: bool, test_points: bool,
              duration_ms: float, network: bool, final: Path) -> list[Path]:
    """Draw every picture of :func:`render_maps` into ``out``, its options checked; returns the paths written.

    ``out`` is the staging folder whose pictures are moved into ``final`` at the end: log lines
    name the files in ``final``, where the user finds them."""
    written: list[Path] = []

    def step(what: str, draw: Callable[..., list[Path] | Path | None], *args: Any, **kwargs: Any) -> None:
        result = draw(*args, **kwargs)
        paths = [] if result is None else [result] if isinstance(result, Path) else list(result)
        written.extend(paths)
        if paths:
            log.debug("%-15s %s%s", what, final / paths[0].relative_to(out),
                      f" (+{len(paths) - 1} more)" if len(paths) > 1 else "")

    from .confusion import ConfusionDisplay
    from .curves import CurvesDisplay
    from .figure import save_figure, save_png
    from .forgetting import ForgettingDisplay
    from .quality import QualityDisplay
    from .samples import SamplesDisplay, as_images
    from .testmap import train_test_map
    from .timelapse import FrameMaker, _metrics_rows, _test_wrong, frame_titles, write_timelapse

    note = contents.skipped_note()
    if note:
        log.warning("render: %s", note)
    skipped = dict(getattr(maps, "skipped", None) or {})
    if skipped:
        # Said here too: maps read back from the cache do not repeat the embedder's warning.
        log.warning("layer %r: no map frame for epoch%s %s (%s); the other epochs are drawn", maps.layer,
                    "s" if len(skipped) > 1 else "", ", ".join(str(e) for e in sorted(skipped)),
                    "; ".join(f"epoch {e}: {why}" for e, why in sorted(skipped.items())))

    inputs = run.probe_inputs if contents.maps else None
    if inputs is not None:
        try:
            as_images(inputs[:1])
            is_image = True
        except ValueError:
            is_image = False
        if is_image:
            step("samples", lambda: save_figure(SamplesDisplay.from_run(run).plot().figure_, out / "samples.png"))

    if maps is not None:
        tests = test_points and getattr(maps, "test_coords", None) is not None
        maker = FrameMaker(maps, run.labels, run.class_names, metrics=_metrics_rows(run, maps.epochs),
                           titles=frame_titles(run, maps.epochs), by_step=run.manifest.record_unit == "step",
                           test_points=tests,
                           test_labels=run.test_labels if tests else None,
                           test_wrong=_test_wrong(run, maps.epochs) if tests else None)
        try:
            step("timelapse", write_timelapse, maker, out, formats=fmts, duration_ms=duration_ms, progress=progress)
            if smooth and len(maker) > 1:
                step("smooth", write_timelapse, maker, out, formats=fmts, frames_folder=None, name="timelapse_smooth",
                     smooth_steps=6, duration_ms=duration_ms, progress=progress)
        finally:
            maker.close()

    if contents.metrics:
        step("curves", lambda: save_figure(CurvesDisplay.from_run(run).plot().figure_, out / "curves.png"))
    if maps is not None and maps.test_coords is not None:
        step("train_test_map", lambda: save_png(train_test_map(run, maps), out / "train_test_map.png"))
    if contents.predictions:
        step("confusion", lambda: save_figure(ConfusionDisplay.from_run(run).plot().figure_, out / "confusion.png"))
        if epoch is not None:
            unit = run.manifest.record_unit  # a run recorded inside epochs numbers its records by step
            step("confusion", lambda: save_figure(ConfusionDisplay.from_run(run, epoch=epoch).plot().figure_,
                                                  out / f"confusion_{unit}_{int(epoch)}.png"))
    if layer_maps is not None and len(layer_maps) > 1:
        from .multiples import LayerEpochGrid

        step("layers", lambda: save_figure(LayerEpochGrid.from_run(run, layer_maps).plot().figure_,
                                           out / "layers_epochs.png"))
    if maps is not None:
        if contents.predictions:
            step("forgetting", lambda: save_figure(ForgettingDisplay.from_run(run, maps).plot().figure_,
                                                   out / "forgetting.png"))
        step("quality", lambda: save_figure(QualityDisplay.from_run(run, maps).plot().figure_, out / "quality.png"))
    if network and contents.weights:
        from .network import write_network_animation

        try:  # (a weights file that cannot be read stops the render: render_maps says so)
            step("network", write_network_animation, run, out / "network.gif", duration_ms=duration_ms,
                 progress=progress, shown_as=final / "network.gif")
        except ValueError as err:  # weights that form no one chain: said, with the command that draws it
            log.warning("render: no network.gif (%s); draw it with `epochscope network %s --layers NAME ...`",
                        str(err).rstrip("."), run.path)
    return written
