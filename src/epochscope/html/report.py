"""``epochscope.report``: one self-contained HTML file to scrub through training.

The work is split in two so each half can be tested alone: :func:`build_payload` collects
the data (run + 2-D maps -> JSON with packed arrays) and :func:`render_page` inlines it
with the viewer's script and style into one page that needs no network.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from ..run import Run, open_run
from .page import render_page
from .payload import MapsLike, build_payload

__all__ = ["report", "write_report"]

log = logging.getLogger("epochscope")


def report(
    run: Run | str | os.PathLike[str],
    out: str | os.PathLike[str] = "report.html",
    *,
    layer: str | None = None,
    method: str = "umap",
    max_points: int | None = None,
    progress: bool = True,
    **embed_options: Any,
) -> Path:
    """Write the interactive report of ``run`` to ``out`` and return its path.

    The page holds everything (script, style, data, thumbnails) and makes no network
    request: the layer's 2-D map over the epochs with play/pause, an epoch slider, smooth
    motion between epochs, class legend toggles, test points, zoom and pan, hover with the
    input thumbnail, the most-forgotten examples, accuracy/loss and map-quality curves
    with a linked time cursor, the confusion matrix and (when a dense chain's weights were
    recorded) the network of the current epoch.

    Parameters
    ----------
    run : a :class:`~epochscope.Run` or the path of a run directory.
    out : the HTML file to write (its folder is created).
    layer : the recorded layer to map; ``None`` takes the embedder's default (the first).
    method : the map method passed to :func:`epochscope.embed` (``"umap"``, ``"pca"``, ...).
    max_points : show at most this many probe (and test) points, a fixed random subset;
        ``None`` shows all.
    progress : show progress bars while maps are fitted.
    **embed_options : passed on to :func:`epochscope.embed` (e.g. ``n_neighbors=30``).

    Example::

        import epochscope
        epochscope.report("runs/mnist", "mnist.html", layer="hidden", method="umap")
    """
    if max_points is not None and (not isinstance(max_points, int) or max_points < 1):
        raise ValueError(f"max_points must be a positive integer or None, got {max_points!r}")
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"out must name an .html file, got {str(out)!r}; e.g. out='report.html'")
    if not isinstance(run, Run):
        run = open_run(run)
    from ..maps.api import embed

    t0 = time.perf_counter()
    maps = embed(run, layer, method, progress=progress, **embed_options)
    log.info("maps of %r (%s) ready in %.1f s", maps.layer, method, time.perf_counter() - t0)
    return write_report(run, maps, out, layer=maps.layer, method=method, max_points=max_points)


def write_report(
    run: Run | str | os.PathLike[str],
    maps: MapsLike,
    out: str | os.PathLike[str] = "report.html",
    *,
    layer: str,
    method: str,
    max_points: int | None = None,
) -> Path:
    """Write the report for maps that are already computed (any object shaped like
    :class:`~epochscope.Maps`); :func:`report` calls this after embedding.

    Example::

        maps = epochscope.embed(run, "hidden", "pca")
        write_report(run, maps, "report.html", layer="hidden", method="pca")
    """
    if not isinstance(run, Run):
        run = open_run(run)
    out = Path(out)
    payload = build_payload(run, maps, layer=layer, method=method, max_points=max_points,
                            network=_network_payload(run, list(maps.epochs)))
    page = render_page(payload)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)  # a reader never sees half a report
    log.debug("report written to %s (%.1f MB)", out, out.stat().st_size / 1e6)
    return out


def _network_payload(run: Run, epochs: list[int]) -> dict[str, Any]:
    from .network import network_payload

    return network_payload(run, epochs)
