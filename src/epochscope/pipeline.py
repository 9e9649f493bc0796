"""The pipeline above the rooms: embed -> draw -> report.

The rooms below each do one job and know nothing of each other: :mod:`epochscope.maps`
makes 2-D maps of a run's layers (cached in the run), :mod:`epochscope.draw` draws pictures
from a run and maps it is given, :mod:`epochscope.html` writes the report from a run and
maps it is given. This module composes them; the command line (``epochscope render``,
``epochscope report``, ``epochscope demo``) and :func:`epochscope.render` /
:func:`epochscope.report` call it.

:func:`epochscope.network_animation` is not here: it draws from the run's weights alone and
needs no map, so there is nothing to compose (it lives in :mod:`epochscope.draw.network`).

Example::

    paths = epochscope.render("runs/mnist", "pictures", method="pca")
    epochscope.report("runs/mnist", "report.html")
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .run import Run, open_run

__all__ = ["render", "report", "RENDER_RECORD"]

#: What the last render wrote into its output folder (paths relative to it), so the next render
#: into that folder removes what it does not write again.
RENDER_RECORD = ".epochscope-render.json"

log = logging.getLogger("epochscope")


def _embed(run: Run, layer: str | None, method: str, progress: bool, options: dict[str, Any]):
    from .maps.api import embed

    return embed(run, layer, method, progress=progress, **options)


def render(run: Run | str | os.PathLike[str], out_dir: str | os.PathLike[str], *, layer: str | None = None,
           method: str = "umap", formats: Sequence[str] | str = ("gif",), epoch: int | None = None,
           progress: bool = True, smooth: bool = False, test_points: bool = False, duration_ms: float = 500,
           maps: Any = None, network: bool = True, **embed_options: Any) -> list[Path]:
    """Draw every picture of ``run`` into ``out_dir``; returns the paths written.

    Embeds ``layer`` (and, when the run recorded several layers, every other layer for the
    layer x epoch grid) with :func:`~epochscope.embed`, then draws with
    :func:`epochscope.draw.render_all.render_maps`: ``samples.png`` (image inputs only),
    ``frames/epoch_NNN.png``, ``timelapse.<format>`` (and ``timelapse_smooth.<format>`` with
    ``smooth=True``), ``curves.png``, ``train_test_map.png`` (with a test set),
    ``confusion.png`` (and ``confusion_epoch_N.png`` with ``epoch=``), ``layers_epochs.png``
    (several layers recorded), ``forgetting.png``, ``quality.png`` and ``network.gif`` (when
    the run holds weights). A run imported from checkpoints (weights and metrics, no probe
    activations) gets its curves and network, and one log line says what was skipped and why.
    Bad arguments (and an output folder that cannot be used) fail before anything is embedded or
    drawn; every file is written under a temporary name and renamed, and the time-lapse frames
    are streamed to their files, so memory does not grow with the number of epochs.

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
    test_points : lay the test set on every time-lapse frame, coloured by true class, the
        misclassified crossed (the train + test map always shows it).
    duration_ms : display time per epoch in the animations (default 500 ms), the network's too.
    maps : already computed maps of ``layer`` to draw instead of embedding it again (the other
        layers of the grid are still embedded, or read from the run's cache).
    network : also write ``network.gif`` when the run holds weights.
    **embed_options : passed to :func:`~epochscope.embed` (e.g. ``n_neighbors=15``).

    Raises
    ------
    ValueError : ``formats`` other than gif/mp4, an ``epoch`` the run does not hold, a
        ``duration_ms`` that is not a positive number; and what :func:`~epochscope.embed` raises.
    OutputPathError : ``out_dir`` cannot be a folder (it is a file, or lies below one), before
        anything is embedded.
    OutputError : a picture cannot be written (disk full, read-only folder); ``out_dir`` is left
        as it was.
    RunError : a run file cannot be read (the message names it and ``epochscope check RUN``);
        :class:`~epochscope.NotARunError` for a path that holds no run.
    MissingDependencyError : ``"mp4"`` without imageio-ffmpeg (``epochscope[video]``), or the map
        method's package.

    Example
    -------
    >>> paths = render("runs/mnist", "pictures", method="pca", formats="gif,mp4")  # doctest: +SKIP
    """
    from ._errors import stops_on_damage
    from ._output import check_output_dir, replace_earlier_output
    from .analysis import run_contents
    from .draw.render_all import check_render_options, render_maps, render_stops

    # A run file that cannot be read stops the render wherever it is read (the manifest, the
    # activations the embedding reads, a picture's predictions), saying so with `epochscope check`.
    with stops_on_damage(run, render_stops(out_dir)):
        run, fmts = check_render_options(run, formats=formats, epoch=epoch, duration_ms=duration_ms)
        check_output_dir(out_dir)  # a bad --out fails now, not after minutes of embedding
        layer_maps = None
        if not run_contents(run).maps:  # imported from checkpoints: curves and network only (render_maps says so)
            maps = None
        elif maps is None:
            maps = _embed(run, layer, method, progress, embed_options)
        elif layer is not None and maps.layer != layer:
            raise ValueError(f"maps are of layer {maps.layer!r} but layer={layer!r} was asked for")
        if maps is not None and len(run.layers) > 1:  # the layer x epoch grid: every recorded layer, by the same method
            layer_maps = [maps if name == maps.layer else _embed(run, name, maps.method, progress, embed_options)
                          for name in run.layers]
    written = render_maps(run, maps, out_dir, layer_maps=layer_maps, formats=fmts, epoch=epoch, progress=progress,
                          smooth=smooth, test_points=test_points, duration_ms=duration_ms, network=network)
    # What an earlier render wrote here and this one did not (another run's extra frames, a layer
    # grid, another format) goes: the folder shows this render only.
    replace_earlier_output(out_dir, [Path(p) for p in written], RENDER_RECORD)
    return written


def report(run: Run | str | os.PathLike[str] | Sequence[Run | str | os.PathLike[str]],
           out: str | os.PathLike[str] = "report.html", *,
           layer: str | None = None, method: str = "umap", max_points: int | None = None, progress: bool = True,
           title: str | None = None, **embed_options: Any) -> Path:
    """Write the interactive report of ``run`` to ``out`` and return its path.

    Embeds ``layer`` with :func:`~epochscope.embed` (or reads the maps from the run's cache),
    then writes the page with :func:`epochscope.html.report.write_report`. The page holds
    everything (script, style, data, thumbnails) and makes no network request: the layer's 2-D
    map over the epochs with play/pause, an epoch slider, smooth motion between epochs, class
    legend toggles, test points, zoom and pan, hover with the input thumbnail, the
    most-forgotten examples, accuracy/loss and map-quality curves with a linked time cursor,
    the confusion matrix and (when a dense chain's weights were recorded) the network of the
    current epoch.

    Parameters
    ----------
    run : a :class:`~epochscope.Run` or the path of a run directory; or a list of two or more runs
        with the same probe set, shown side by side (epoch cursors linked, maps aligned to the
        first run's, curves overlaid: :mod:`epochscope.html.compare`); runs with different probes
        are refused with a ``ValueError`` before anything is embedded.
    out : the HTML file to write (its folder is created).
    layer : the recorded layer to map; ``None`` takes the embedder's default (the first).
    method : the map method passed to :func:`epochscope.embed` (``"umap"``, ``"pca"``, ...).
    max_points : show at most this many probe (and test) points, a fixed random subset;
        ``None`` shows all.
    progress : show progress while maps are fitted and the page is written.
    title : the page's title (default: ``"Layer L, epochs A–B: RUN"``).
    **embed_options : passed on to :func:`epochscope.embed` (e.g. ``n_neighbors=30``).

    A run imported from checkpoints (weights and metrics, no probe activations) gets a page with
    its curves and network and a note saying what was skipped and why.

    Raises ``ValueError`` for ``max_points`` that is not a positive integer or an ``out`` that is
    not an ``.html``/``.htm`` file, :class:`~epochscope.OutputPathError` /
    :class:`~epochscope.OutputError` for an ``out`` that cannot be written, before anything is
    embedded.

    Example::

        import epochscope
        epochscope.report("runs/mnist", "mnist.html", layer="hidden", method="umap")
    """
    from ._errors import stops_on_damage

    # a run file that cannot be read anywhere (the maps' activations, a picture's predictions)
    # stops the report with `epochscope check`, never a page that shows it as missing
    with stops_on_damage(run, "the report is not written"):  # (side by side: each run's reader names its own)
        return _report(run, out, layer=layer, method=method, max_points=max_points, progress=progress, title=title,
                       embed_options=embed_options)


def _report(run: Run | str | os.PathLike[str] | Sequence[Run | str | os.PathLike[str]], out: str | os.PathLike[str], *,
            layer: str | None, method: str, max_points: int | None, progress: bool, title: str | None,
            embed_options: dict[str, Any]) -> Path:
    from ._output import check_output_file
    from .analysis import run_contents
    from .html.report import check_report_path, write_report

    if max_points is not None and (isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1):
        raise ValueError(f"max_points must be a positive integer or None, got {max_points!r}")
    out = check_output_file(check_report_path(out))
    if isinstance(run, (list, tuple)):
        return _compare_report(run, out, layer=layer, method=method, max_points=max_points, progress=progress,
                               embed_options=embed_options)
    if not isinstance(run, Run):
        run = open_run(run)
    if not run_contents(run).maps:  # imported from checkpoints: no map to make
        return write_report(run, None, out, layer=None, method=method, max_points=max_points, title=title,
                            progress=progress)
    t0 = time.perf_counter()
    maps = _embed(run, layer, method, progress, embed_options)
    log.info("maps of %r (%s) ready in %.1f s", maps.layer, method, time.perf_counter() - t0)
    return write_report(run, maps, out, layer=maps.layer, method=method, max_points=max_points, title=title,
                        progress=progress)


def _compare_report(runs: Sequence[Run | str | os.PathLike[str]], out: Path, *, layer: str | None, method: str,
                    max_points: int | None, progress: bool, embed_options: dict[str, Any]) -> Path:
    """The side-by-side report of ``runs`` (see :func:`report`)."""
    from .analysis import run_contents
    from .html.compare import check_same_probe, write_compare_report

    opened = [r if isinstance(r, Run) else open_run(r) for r in runs]
    if len(opened) == 1:
        return report(opened[0], out, layer=layer, method=method, max_points=max_points, progress=progress,
                      **embed_options)
    check_same_probe(opened)  # refused before minutes of embedding
    if layer is None:
        layer = opened[0].layers[0] if opened[0].layers else None
    for r in opened:
        if layer is not None and run_contents(r).maps and layer not in r.layers:
            raise ValueError(f"layer {layer!r} is not recorded in {r.path} (its layers: {', '.join(r.layers)}); "
                             "runs side by side show the same layer: pick one with --layer")
    maps = [_embed(r, layer, method, progress, embed_options) if run_contents(r).maps else None for r in opened]
    return write_compare_report(opened, maps, out, layer=layer, method=method, max_points=max_points, progress=progress)
