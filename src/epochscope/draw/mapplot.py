"""A 2-D map drawn into any matplotlib axes, with the points rasterised by numpy.

The static pictures (layer x epoch grid, forgetting map) hold many maps of thousands of
points each; drawing them with ``ax.scatter`` costs hundreds of milliseconds per map.
:func:`plot_map` stamps the points into an image the size of the axes
(:mod:`epochscope.draw.raster`) and shows it with ``imshow``, so a map costs a few
milliseconds and looks like the time-lapse frames.

Example::

    fig, ax = plt.subplots()
    plot_map(ax, maps.frame(9), run.labels, run.class_names, bounds=maps.bounds)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..colors import INK, class_colors
from . import style
from .mapframe import padded_bounds
from .raster import disc_radius_for, splat_discs

__all__ = ["plot_map", "map_image", "mark_beyond"]


def map_image(coords: np.ndarray, colors: np.ndarray, *, xlim: Sequence[float], ylim: Sequence[float],
              size: tuple[int, int], radius: float) -> np.ndarray:
    """RGBA uint8 image ``(height, width, 4)`` of discs at ``coords`` (data units) over a
    transparent background; ``xlim``/``ylim`` are the data range of the image's edges."""
    h, w = int(size[0]), int(size[1])
    coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    px = (coords[:, 0] - xlim[0]) / (xlim[1] - xlim[0]) * w
    py = (ylim[1] - coords[:, 1]) / (ylim[1] - ylim[0]) * h
    rgb, cover = splat_discs(np.column_stack([px, py]), colors, shape=(h, w), radius=radius)
    out = np.zeros((h, w, 4), dtype=np.uint8)
    safe = np.maximum(cover, 1e-6)[..., None]
    out[..., :3] = np.clip(rgb / safe * 255 + 0.5, 0, 255).astype(np.uint8)  # un-premultiply
    out[..., 3] = np.clip(cover * 255 + 0.5, 0, 255).astype(np.uint8)
    return out


def plot_map(ax, coords: np.ndarray, labels: np.ndarray, class_names: Sequence[str], *,
             bounds: Sequence[float] | None = None, radius: float | None = None, order_seed: int = 0,
             point_scale: float = 1.0):
    """Draw the map ``coords`` coloured by ``labels`` into ``ax``; returns the ``AxesImage``.

    Parameters
    ----------
    ax : matplotlib Axes (its size on the figure should be final: the image is made to fit it).
    coords : (n, 2) map coordinates; labels : (n,) class indices into ``class_names``.
    bounds : (xmin, xmax, ymin, ymax) to show (default: the points' range); padded and
        widened to the axes' shape so one map unit is as long across as up.
    radius : point radius in pixels (default: from the number of points and the axes size).
    order_seed : the fixed random drawing order (the time-lapse uses the same default).
    point_scale : multiply the default radius (small panels read better with larger dots).
    """
    coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) != len(coords):
        raise ValueError(f"labels has {len(labels)} entries but coords has {len(coords)} points")
    if bounds is None:
        finite = coords[np.isfinite(coords).all(axis=1)]
        bounds = (finite[:, 0].min(), finite[:, 0].max(), finite[:, 1].min(), finite[:, 1].max()) if len(finite) \
            else (0.0, 1.0, 0.0, 1.0)
    # The image gets the axes' own pixel size, so it is shown 1:1 (crisp dots, no resampling).
    bbox = ax.get_window_extent()
    w, h = max(int(round(bbox.width)), 1), max(int(round(bbox.height)), 1)
    xmin, xmax, ymin, ymax = padded_bounds(bounds, w / h)
    if radius is None:
        radius = disc_radius_for(len(coords), w * h) * point_scale
    colors = class_colors(len(class_names))
    order = np.random.default_rng(order_seed).permutation(len(coords))
    img = map_image(coords[order], colors[labels[order]], xlim=(xmin, xmax), ylim=(ymin, ymax),
                    size=(h, w), radius=radius)
    artist = ax.imshow(img, extent=(xmin, xmax, ymin, ymax), origin="upper", interpolation="none", aspect="auto")
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    style.style_map_axes(ax)
    mark_beyond(ax, coords, colors[labels], (xmin, xmax, ymin, ymax), (w, h))
    return artist


def mark_beyond(ax, coords: np.ndarray, colors: np.ndarray, limits: Sequence[float], size_px: tuple[int, int]) -> int:
    """Draw every point of ``coords`` that lies beyond ``limits`` (xmin, xmax, ymin, ymax) at the
    axes' edge as a small triangle pointing its way, in its colour; returns how many.

    Maps are drawn within robust bounds, so a few outliers may lie beyond them: they are shown,
    not dropped.
    """
    xmin, xmax, ymin, ymax = limits
    coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    finite = np.isfinite(coords).all(axis=1)
    over = np.column_stack([xmin - coords[:, 0], coords[:, 0] - xmax, coords[:, 1] - ymax, ymin - coords[:, 1]])
    over /= np.array([xmax - xmin, xmax - xmin, ymax - ymin, ymax - ymin])
    out = finite & (over.max(axis=1) > 0)
    if not out.any():
        return 0
    side = over.argmax(axis=1)
    inset_x, inset_y = 5.0 / size_px[0] * (xmax - xmin), 5.0 / size_px[1] * (ymax - ymin)
    x = np.clip(coords[:, 0], xmin + inset_x, xmax - inset_x)
    y = np.clip(coords[:, 1], ymin + inset_y, ymax - inset_y)
    for k, marker in enumerate("<>^v"):
        pick = out & (side == k)
        if pick.any():
            ax.scatter(x[pick], y[pick], marker=marker, s=style.marker_area(4.5), c=colors[pick], edgecolors=INK,
                       linewidths=0.6, zorder=3, clip_on=False)
    return int(out.sum())
