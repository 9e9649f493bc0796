"""Write the self-contained HTML report for maps that are already computed.

The work is split in two so each half can be tested alone: :func:`build_payload` collects
the data (run + 2-D maps -> JSON with packed arrays) and :func:`render_page` inlines it
with the viewer's script and style into one page that needs no network. This module
computes no map: ``epochscope.report`` (the pipeline) embeds the layer and then calls
:func:`write_report`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .._output import atomic_output, check_output_file
from .._progress import task
from ..run import Run, open_run
from .network import network_payload
from .page import render_page
from .payload import MapsLike, build_payload

__all__ = ["write_report", "check_report_path"]

log = logging.getLogger("epochscope")


def check_report_path(out: str | os.PathLike[str]) -> Path:
    """``out`` as a :class:`~pathlib.Path` when it names an ``.html``/``.htm`` file, else ``ValueError``
    (so a caller can check it before any slow work)."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"out must name an .html file, got {str(out)!r}; e.g. out='report.html'")
    return out


def write_report(
    run: Run | str | os.PathLike[str],
    maps: MapsLike | None,
    out: str | os.PathLike[str] = "report.html",
    *,
    layer: str | None,
    method: str,
    max_points: int | None = None,
    test_hook: bool = False,
    title: str | None = None,
    progress: bool = False,
) -> Path:
    """Write the interactive report of ``run`` with its layer's 2-D ``maps`` to ``out`` and
    return its path.

    The page holds everything (script, style, data, thumbnails) and makes no network
    request: the layer's 2-D map over the epochs with play/pause, an epoch slider, smooth
    motion between epochs, class legend toggles, test points, zoom and pan, hover with the
    input thumbnail, the most-forgotten examples, accuracy/loss and map-quality curves
    with a linked time cursor, the confusion matrix (test set when the run has one, as
    ``confusion.png``) and (when a dense chain's weights were recorded) the network of the
    current epoch.

    Parameters
    ----------
    run : a :class:`~epochscope.Run` or the path of a run directory.
    maps : the 2-D maps of ``layer`` (an :class:`epochscope.Maps` or any object with its fields), or
        ``None`` for a run without maps (imported from checkpoints: curves and network only).
    out : the HTML file to write (its folder is created); ``ValueError`` unless it ends in ``.html``/``.htm``.
    layer, method : the mapped layer and the map method, shown in the title.
    max_points : show at most this many probe (and test) points, a fixed random subset;
        ``None`` shows all.
    test_hook : add the ``window.epochscope`` scripting API that the browser tests and the
        report benchmark drive; reports for people leave it out.
    title : the page's title (default: ``"Layer L, epochs A–B: RUN"``).
    progress : show progress while the data are collected and the page written.

    Example::

        maps = epochscope.embed(run, "hidden", "pca")
        write_report(run, maps, "report.html", layer="hidden", method="pca")
    """
    if max_points is not None and (isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1):
        raise ValueError(f"max_points must be a positive integer or None, got {max_points!r}; e.g. max_points=20000")
    out = check_output_file(check_report_path(out))
    if not isinstance(run, Run):
        run = open_run(run)
    with task(f"writing {out.name}", enabled=progress):
        epochs = list(maps.epochs) if maps is not None else run.epochs
        payload = build_payload(run, maps, layer=layer, method=method, max_points=max_points,
                                network=network_payload(run, epochs), title=title, progress=progress)
        if payload.get("skippedNote"):
            log.warning("report: %s", payload["skippedNote"])
        page = render_page(payload, test_hook=test_hook)
        with atomic_output(out) as tmp:  # a reader never sees half a report
            tmp.write_text(page, encoding="utf-8")
    log.debug("report written to %s (%.1f MB)", out, out.stat().st_size / 1e6)
    return out
