"""The shared look of every picture: class colours, figure sizes, fonts, in one place."""

from __future__ import annotations

import numpy as np

__all__ = ["class_colors", "DPI", "FONT_SIZE", "TEST_MARKER", "use_agg"]

DPI = 100
FONT_SIZE = 10
# Test points on maps: gold stars with a black edge.
TEST_MARKER = {"marker": "*", "color": "#FFD700", "edgecolor": "black", "linewidths": 0.6, "s": 90}


def use_agg() -> None:
    """Select matplotlib's non-interactive Agg backend (files only, no display needed)."""
    import matplotlib

    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg", force=True)


def class_colors(n_classes: int) -> np.ndarray:
    """RGB colours in [0, 1], shape ``(n_classes, 3)``: tab10 up to 10 classes, tab20 up to 20,
    then evenly spaced hues so any number of classes stays distinguishable."""
    from matplotlib import colormaps
    from matplotlib.colors import hsv_to_rgb

    if n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}")
    if n_classes <= 10:
        return np.array(colormaps["tab10"].colors[:n_classes])
    if n_classes <= 20:
        return np.array(colormaps["tab20"].colors[:n_classes])
    hues = np.arange(n_classes) / n_classes
    sat = np.where(np.arange(n_classes) % 2 == 0, 0.85, 0.55)
    return hsv_to_rgb(np.stack([hues, sat, np.full(n_classes, 0.9)], axis=1))
