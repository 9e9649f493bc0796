"""How a :class:`~epochscope.Maps` shows itself in a notebook: a summary and its last frame.

The maps room draws no pictures (that is :mod:`epochscope.draw`'s job, and the maps hold no
class labels to colour by), so the inline view is text plus a plain SVG scatter of the last
frame's points in one colour: where the points lie, not which class they belong to. The
coloured time-lapse is one call away, ``epochscope.Timelapse.from_run(run, maps)``, and the
summary says so.

Every string that comes from a run (the layer name, a skip reason) is HTML-escaped.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

__all__ = ["maps_html", "PREVIEW_POINTS", "PREVIEW_SIZE"]

#: At most this many points in the SVG preview (an evenly spaced subset above it).
PREVIEW_POINTS = 2000
#: Side of the square SVG preview, in CSS pixels.
PREVIEW_SIZE = 240
#: At most this many epoch rows in the quality table (the first and last ones above it).
TABLE_ROWS = 12

# Readable column titles for the quality figures the maps are known to carry; any other
# figure is shown under its own name, so new figures appear without a change here.
_TITLES = {"trustworthiness": "trust", "motion": "motion", "knn_accuracy_map": "kNN map",
           "knn_accuracy_layer": "kNN layer", "cka_previous": "CKA prev"}


def _number(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if not math.isfinite(v) else f"{v:.3f}"


def _preview_svg(frame: np.ndarray, bounds: tuple, size: int = PREVIEW_SIZE, limit: int = PREVIEW_POINTS) -> str:
    """An SVG scatter of ``frame`` (``(n, 2)``) in the maps' fixed ``bounds``, y pointing up."""
    xy = np.asarray(frame, dtype=np.float64)
    if len(xy) > limit:
        xy = xy[np.linspace(0, len(xy) - 1, limit).round().astype(int)]
    xmin, xmax, ymin, ymax = (float(b) for b in bounds)
    pad = 6.0
    sx = (size - 2 * pad) / (xmax - xmin) if xmax > xmin else 0.0
    sy = (size - 2 * pad) / (ymax - ymin) if ymax > ymin else 0.0
    finite = np.isfinite(xy).all(axis=1)
    px = pad + (xy[finite, 0] - xmin) * sx
    py = size - pad - (xy[finite, 1] - ymin) * sy
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.6"/>' for x, y in zip(px, py))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}" '
            f'role="img" aria-label="last frame, {int(finite.sum())} points">'
            f'<rect width="{size}" height="{size}" fill="white" stroke="#ccc"/>'
            f'<g fill="#4a6fa5" fill-opacity="0.55">{dots}</g></svg>')


def _quality_table(maps: Any) -> str:
    quality = {k: np.asarray(v) for k, v in (getattr(maps, "quality", None) or {}).items()}
    names = [k for k in quality if quality[k].shape == (len(maps.epochs),)]
    n = len(maps.epochs)
    rows = list(range(n)) if n <= TABLE_ROWS else [*range(TABLE_ROWS // 2), -1, *range(n - TABLE_ROWS // 2, n)]
    cell = 'style="padding:1px 6px;text-align:right"'
    head = "".join(f"<th {cell}>{html.escape(_TITLES.get(k, k))}</th>" for k in names)
    body = []
    for i in rows:
        if i < 0:
            body.append(f'<tr><td colspan="{len(names) + 1}">… {n - TABLE_ROWS} more epochs …</td></tr>')
            continue
        cells = "".join(f"<td {cell}>{_number(quality[k][i])}</td>" for k in names)
        body.append(f"<tr><td {cell}>{int(maps.epochs[i])}</td>{cells}</tr>")
    return (f'<table style="border-collapse:collapse;font-size:12px"><thead><tr><th {cell}>epoch</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def maps_html(maps: Any) -> str:
    """The inline HTML of ``maps``: what was mapped, the quality per epoch, the last frame.

    ``maps`` is a :class:`~epochscope.Maps` (or any object with its fields). Returns an HTML
    fragment (a ``<div>``) with no script and no external resource.

    >>> from types import SimpleNamespace
    >>> m = SimpleNamespace(layer="hidden", method="pca", epochs=[0, 1], coords=np.zeros((2, 3, 2)),
    ...                     test_coords=None, quality={}, bounds=(-1, 1, -1, 1), skipped={})
    >>> maps_html(m).count("<circle")
    3
    """
    epochs = [int(e) for e in maps.epochs]
    coords = np.asarray(maps.coords)
    n_test = 0 if getattr(maps, "test_coords", None) is None else int(np.shape(maps.test_coords)[1])
    span = f"epochs {epochs[0]}..{epochs[-1]} ({len(epochs)})" if epochs else "no epoch"
    title = (f"<b>Maps</b> of layer <code>{html.escape(str(maps.layer))}</code> · {html.escape(str(maps.method))} · "
             f"{span} · {coords.shape[1]} probe points" + (f" · {n_test} test points" if n_test else ""))
    skipped = "".join(f"<li>epoch {int(e)}: {html.escape(str(why))}</li>"
                      for e, why in sorted((getattr(maps, "skipped", None) or {}).items()))
    skipped = f"<div>Not embedded:<ul>{skipped}</ul></div>" if skipped else ""
    figure = ""
    if epochs:
        figure = (f'<figure style="margin:0">{_preview_svg(coords[-1], maps.bounds)}'
                  f'<figcaption style="font-size:11px;color:#555">epoch {epochs[-1]}, all points in one colour '
                  "(the maps hold no labels)</figcaption></figure>")
    hint = ("<div style=\"font-size:11px;color:#555\">Coloured by class and animated: "
            "<code>epochscope.Timelapse.from_run(run, maps)</code>; the report: "
            "<code>epochscope.show_report(run, maps=maps)</code></div>")
    return (f'<div class="epochscope-maps"><div>{title}</div>{skipped}'
            f'<div style="display:flex;gap:16px;align-items:flex-start">{figure}{_quality_table(maps)}</div>'
            f"{hint}</div>")
