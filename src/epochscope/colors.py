"""Every colour epochscope draws with, as plain numbers: one owner for the static pictures,
the GIFs and the HTML report, and no matplotlib import (the report and the network model
use it too).

- Class colours: matplotlib's ``tab10`` up to 10 classes, ``tab20`` up to 20 (the values are
  copied here, and a test checks them against matplotlib's own colormaps), then evenly spaced
  hues so any number of classes stays distinguishable.
- The weight-change scale of the network drawing: blue (shrank), grey (unchanged), red (grew).
- The colours of the training curves (train, validation, probe/test), shared by curves.png,
  the network animation's accuracy panel and the report; those of the map-quality curves.
- The few other colours of the pictures: test points (gold), muted text, frames, markers.

>>> rgb_to_hex(class_colors(2))
['#1f77b4', '#ff7f0e']
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "class_colors",
    "class_colors_hex",
    "diverging_rgb",
    "rgb_to_hex",
    "hex_to_rgb",
    "GREW_RGB",
    "SHRANK_RGB",
    "NEUTRAL_RGB",
    "CURVE_COLORS",
    "curve_colors",
    "QUALITY_COLORS",
    "TEST_POINT",
    "INK",
    "MUTED",
    "FRAME_EDGE",
    "BAR_GREY",
    "MARKER",
]

# matplotlib's tab10 and tab20 colormaps (Tableau's categorical palettes).
_TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf")
_TAB20 = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd",
          "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d",
          "#17becf", "#9edae5")

#: Weight change in the network drawing: a weight whose magnitude shrank, stayed, grew (ColorBrewer
#: RdBu ends); the centre is a mid grey rather than white so an unchanged edge stays visible on white.
SHRANK_RGB = (0.129, 0.400, 0.675)
NEUTRAL_RGB = (0.72, 0.72, 0.72)
GREW_RGB = (0.698, 0.094, 0.169)

#: Curve colours by role, the same in every picture: training (blue), validation (red),
#: the recorded probe and test sets (green, purple).
CURVE_COLORS = {"train": "#1f77b4", "val": "#d62728", "probe": "#2ca02c", "test": "#9467bd"}

#: The map-quality curves (quality.png), keyed by the name in ``Maps.quality``.
QUALITY_COLORS = {"trustworthiness": "#2ca02c", "cka_previous": "#9467bd", "knn_accuracy_map": "#8c564b",
                  "motion": "#ff7f0e", "knn_accuracy_layer": "#e377c2", "separation": "#17becf",
                  "separation_layer": "#7f7f7f"}
#: The role of each metric name epochscope writes or normalises to (see epochscope.metric_names).
_METRIC_ROLES = {"accuracy": "train", "loss": "train", "val_accuracy": "val", "val_loss": "val",
                 "probe_accuracy": "probe", "test_accuracy": "test", "test_loss": "test"}
#: Curves with no colour of their own (other metrics, other quality figures), in this order.
_OTHER_CURVES = ("#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#1f77b4", "#d62728")

#: Test points laid on a map: gold stars (with a black edge).
TEST_POINT = "#FFD700"
#: Text on white (counts, captions), muted text (subtitles, notes), the light frame around maps,
#: neutral bars (counts of examples).
INK = "#222222"
MUTED = "#555555"
FRAME_EDGE = "#bbbbbb"
BAR_GREY = "#7f7f7f"
#: The marker that walks along a curve to the frame's epoch (network animation, report cursor): a
#: black ring, apart from every curve colour (validation is red in every picture).
MARKER = "#222222"


def curve_colors(names: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``#rrggbb`` for each curve of one chart, by name: a metric's role colour
    (:data:`CURVE_COLORS`: ``accuracy``/``loss`` train, ``val_*`` validation, ``probe_accuracy``,
    ``test_*``), a quality figure's (:data:`QUALITY_COLORS`); other names take the colours no
    curve of the chart has yet, in order (cycling when there are more curves than colours).

    >>> curve_colors(["test_accuracy", "accuracy", "val_accuracy", "f1"])
    {'test_accuracy': '#9467bd', 'accuracy': '#1f77b4', 'val_accuracy': '#d62728', 'f1': '#ff7f0e'}
    """
    own = {n: CURVE_COLORS[_METRIC_ROLES[n]] if n in _METRIC_ROLES else QUALITY_COLORS[n]
           for n in names if n in _METRIC_ROLES or n in QUALITY_COLORS}
    free = [c for c in _OTHER_CURVES if c not in own.values()] or list(_OTHER_CURVES)
    others = [n for n in names if n not in own]
    return {n: own[n] if n in own else free[others.index(n) % len(free)] for n in names}


def hex_to_rgb(colors: list[str] | tuple[str, ...]) -> np.ndarray:
    """``(n, 3)`` floats in [0, 1] for ``#rrggbb`` strings.

    >>> hex_to_rgb(["#ff0000"]).tolist()
    [[1.0, 0.0, 0.0]]
    """
    return np.array([[int(c[i:i + 2], 16) / 255.0 for i in (1, 3, 5)] for c in colors], dtype=np.float64).reshape(-1, 3)


def rgb_to_hex(rgb: np.ndarray) -> list[str]:
    """``#rrggbb`` strings for an ``(n, 3)`` array in [0, 1] (for SVG, HTML and the browser)."""
    ints = np.clip(np.round(np.asarray(rgb, dtype=np.float64).reshape(-1, 3) * 255), 0, 255).astype(int)
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in ints]


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB (all in [0, 1]), the standard formula (as ``colorsys.hsv_to_rgb``)."""
    h, s, v = (hsv[:, i] for i in range(3))
    i = np.floor(h * 6.0).astype(int) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.empty_like(hsv)
    for channel in range(3):
        out[:, channel] = np.choose(i, [c[channel] for c in choices])
    return out


def class_colors(n_classes: int) -> np.ndarray:
    """RGB colours in [0, 1], float64 ``(n_classes, 3)``, one per class in class order.

    tab10 up to 10 classes, tab20 up to 20, then evenly spaced hues (alternating saturation so
    neighbours on the colour wheel still differ). Raises ``ValueError`` for fewer than one class.
    """
    n_classes = int(n_classes)
    if n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}")
    if n_classes <= 10:
        return hex_to_rgb(_TAB10[:n_classes])
    if n_classes <= 20:
        return hex_to_rgb(_TAB20[:n_classes])
    hues = np.arange(n_classes) / n_classes
    sat = np.where(np.arange(n_classes) % 2 == 0, 0.85, 0.55)
    return _hsv_to_rgb(np.stack([hues, sat, np.full(n_classes, 0.9)], axis=1))


def class_colors_hex(n_classes: int) -> list[str]:
    """:func:`class_colors` as ``#rrggbb`` strings (for the HTML report)."""
    return rgb_to_hex(class_colors(n_classes))


def diverging_rgb(values: np.ndarray) -> np.ndarray:
    """RGB ``(n, 3)`` in [0, 1] for values in [-1, 1]: blue (shrank) - grey (unchanged) - red (grew).

    Values outside [-1, 1] are clipped; NaN counts as unchanged.

    >>> diverging_rgb(np.array([1.0]))[0].round(3).tolist()
    [0.698, 0.094, 0.169]
    """
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64).ravel()), -1.0, 1.0)[:, None]
    mid, hi, lo = np.array(NEUTRAL_RGB), np.array(GREW_RGB), np.array(SHRANK_RGB)
    return np.where(v >= 0, mid + v * (hi - mid), mid - v * (lo - mid))
