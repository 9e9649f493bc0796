"""Draw many round markers straight into a numpy image: the fast path of the map frames.

Matplotlib spends almost all of a scatter frame drawing markers one by one (MEASURED.md:
~440 ms for 20,000 points even when the figure is reused). Here every disc is stamped
with a few vectorised numpy operations on all stamp pixels of all points at once:

- each point's coverage of each nearby pixel is computed analytically
  (``radius + 0.5 - distance``, clipped to [0, 1]), which anti-aliases the edges;
- draw order is kept by a z-buffer: a point's index is its depth (later points on top,
  as with ``plt.scatter``), packed above an 8-bit coverage into one integer key, and every
  pixel keeps the largest key (``np.maximum.at``, one call for all stamp pixels of all points);
- three such buffers (discs touching the pixel, covering at least half of it, covering
  all of it) give the top three layers at each pixel, which are composited with the
  "over" rule. That is exact wherever at most one partially covering disc edge lies above
  a fully covering disc, which is almost everywhere on a map.

The result (premultiplied colour + coverage) goes over any background drawn by
matplotlib (axes, spines, grid) with :func:`composite_over`.

Example::

    rgb, cover = splat_discs(xy_px, colors, shape=(400, 500), radius=2.5)
    composite_over(background, rgb, cover)
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["splat_discs", "splat_discs_sparse", "composite_over", "composite_sparse", "disc_radius_for"]

_COVER_BITS = 8
_COVER_MAX = (1 << _COVER_BITS) - 1


def disc_radius_for(n_points: int, area_px: float, *, fill: float = 0.25, lo: float = 1.2, hi: float = 5.0) -> float:
    """A marker radius (pixels) so that ``n_points`` discs would cover about ``fill`` of ``area_px``.

    Many points get small discs, few points large ones; clipped to ``[lo, hi]`` pixels.

    >>> round(disc_radius_for(5000, 500 * 500), 1)
    2.0
    """
    if n_points < 1:
        return hi
    return float(np.clip(np.sqrt(fill * area_px / (np.pi * n_points)), lo, hi))


def splat_discs(xy: np.ndarray, colors: np.ndarray, *, shape: tuple[int, int],
                radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Rasterise anti-aliased opaque discs; later points are drawn on top of earlier ones.

    Parameters
    ----------
    xy : (n, 2) float
        Disc centres in pixel coordinates of the output image: x to the right, y downwards
        (row index); (0.5, 0.5) is the centre of the top-left pixel. Discs outside the
        image are clipped; points with NaN coordinates are skipped.
    colors : (n, 3) float in [0, 1], or (3,)
        One RGB colour per point, or one for all.
    shape : (height, width)
        Size of the output image in pixels.
    radius : float
        Disc radius in pixels (> 0).

    Returns
    -------
    rgb : (height, width, 3) float32
        Colour of the discs in each pixel, premultiplied by the coverage.
    cover : (height, width) float32 in [0, 1]
        Share of each pixel covered by discs.

    Example
    -------
    >>> rgb, cover = splat_discs(np.array([[5.0, 5.0]]), np.array([1.0, 0, 0]), shape=(10, 10), radius=2)
    >>> float(cover[4, 4]), float(cover[0, 0])
    (1.0, 0.0)
    """
    h, w = int(shape[0]), int(shape[1])
    rows, cols, rgb_k, cover_k = splat_discs_sparse(xy, colors, shape=shape, radius=radius)
    rgb = np.zeros((h, w, 3), dtype=np.float32)
    cover = np.zeros((h, w), dtype=np.float32)
    rgb[rows, cols] = rgb_k
    cover[rows, cols] = cover_k
    return rgb, cover


@lru_cache(maxsize=64)
def _stamp(reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel offsets (dy, dx) that a disc of ``reach`` = radius + 0.5 can touch from any
    sub-pixel position of its centre."""
    span = int(np.ceil(reach + 0.5))
    dy, dx = np.mgrid[-span:span + 1, -span:span + 1]
    # The nearest a centre inside pixel (0, 0) can come to pixel (dx, dy) is the gap between the cells.
    gap2 = np.maximum(np.abs(dx) - 1, 0) ** 2 + np.maximum(np.abs(dy) - 1, 0) ** 2
    keep = gap2 < reach ** 2
    return dy[keep].astype(np.float32), dx[keep].astype(np.float32)


def splat_discs_sparse(xy: np.ndarray, colors: np.ndarray, *, shape: tuple[int, int], radius: float,
                       chunk: int = 16384) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`splat_discs` for the touched pixels only: ``(rows, cols, rgb (k, 3), cover (k,))``.

    Cheaper to lay over a background than the dense images when the discs cover a small
    part of it, which is the usual case for a map.
    """
    h, w = int(shape[0]), int(shape[1])
    if h < 1 or w < 1:
        raise ValueError(f"shape must be two positive sizes (height, width), got {shape}")
    if not radius > 0:
        raise ValueError(f"radius must be a positive number of pixels, got {radius}")
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    colors = np.asarray(colors, dtype=np.float32)
    if colors.ndim == 1:
        colors = np.broadcast_to(colors, (len(xy), 3))
    if colors.shape != (len(xy), 3):
        raise ValueError(f"colors must be (n, 3) with n = {len(xy)} points, got shape {colors.shape}")
    if len(xy) >= (1 << (62 - _COVER_BITS)):
        raise ValueError(f"too many points: {len(xy)}")

    reach = float(radius) + 0.5
    dys, dxs = _stamp(reach)
    # Buffers with a margin on every side, wide enough for the stamp of a disc whose centre
    # lies up to ``reach`` outside the image (kept below, as its edge may show) plus the
    # stamp's own span: stamps never need bounds checks. (One span was too little: a point
    # just off the map, e.g. an outlier beyond the robust bounds, indexed past the buffer.)
    margin = 2 * int(np.ceil(reach + 0.5)) + 2
    hp, wp = h + 2 * margin, w + 2 * margin
    inside = np.isfinite(xy).all(axis=1)
    inside[inside] = ((xy[inside, 0] > -reach) & (xy[inside, 0] < w + reach)
                      & (xy[inside, 1] > -reach) & (xy[inside, 1] < h + reach))
    keep = np.flatnonzero(inside)
    # 32-bit keys while the depth fits in 23 bits (8 million points): half the memory traffic.
    kt = np.int32 if len(xy) < (1 << (31 - _COVER_BITS)) else np.int64
    touch, solid, full = (np.full(hp * wp, -1, dtype=kt) for _ in range(3))
    offsets = (dys.astype(np.int64) * wp + dxs.astype(np.int64))[:, None]
    # All stamp pixels of a block of points at once; np.maximum.at keeps, for every pixel,
    # the largest key, i.e. the topmost disc. Blocks bound the memory for large maps.
    for start in range(0, len(keep), chunk):
        idx = keep[start:start + chunk]
        x, y = xy[idx, 0] + margin, xy[idx, 1] + margin
        ix, iy = np.floor(x), np.floor(y)
        # Disc centre relative to its pixel's centre, in [-0.5, 0.5).
        fx, fy = (x - ix - 0.5).astype(np.float32), (y - iy - 0.5).astype(np.float32)
        a = reach - np.sqrt((dxs[:, None] - fx) ** 2 + (dys[:, None] - fy) ** 2)   # (stamp, points)
        hit = a > 0
        a = np.minimum(a[hit], 1.0)
        flat = (iy.astype(np.int64) * wp + ix.astype(np.int64) + offsets)[hit]
        key = (np.broadcast_to(idx.astype(kt) << _COVER_BITS, hit.shape)[hit]
               | np.maximum(np.rint(a * _COVER_MAX), 1).astype(kt))
        np.maximum.at(touch, flat, key)
        half = a >= 0.5
        np.maximum.at(solid, flat[half], key[half])
        whole = a >= 1.0
        np.maximum.at(full, flat[whole], key[whole])

    on = np.flatnonzero(touch >= 0)
    r, c = np.divmod(on, wp)
    r -= margin
    c -= margin
    visible = (r >= 0) & (r < h) & (c >= 0) & (c < w)
    on, r, c = on[visible], r[visible], c[visible]
    t, s, f = touch[on], solid[on], full[on]
    # Bottom layer: the topmost disc covering the whole pixel (opaque). Then the topmost
    # half-covering disc and the topmost touching disc, each "over" what lies below, unless it
    # is the same disc as the layer below it (same depth). Whole-vector arithmetic with
    # np.where: masked assignments cost several times more here.
    has = f >= 0
    rgb = colors[np.maximum(f >> _COVER_BITS, 0)] * has[:, None]
    cover = has.astype(np.float32)
    for upper, lower in ((s, f), (t, s)):
        depth = upper >> _COVER_BITS
        sel = (upper >= 0) & (depth != (lower >> _COVER_BITS))
        alpha = np.where(sel, (upper & _COVER_MAX).astype(np.float32) / _COVER_MAX, np.float32(0))
        rgb = colors[np.maximum(depth, 0)] * alpha[:, None] + rgb * (1.0 - alpha[:, None])
        cover = alpha + cover * (1.0 - alpha)
    return r, c, rgb, cover


def composite_over(background: np.ndarray, rgb: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """Lay premultiplied ``rgb`` with ``cover`` over a uint8 ``(h, w, 3|4)`` image, in place.

    Only pixels with some coverage are touched; returns ``background`` for chaining.
    """
    if background.shape[:2] != cover.shape:
        raise ValueError(f"background is {background.shape[:2]} but the discs were drawn for {cover.shape}")
    bg = background[..., :3]
    out = bg.astype(np.float32)
    out *= 1.0 - cover[..., None]
    out += rgb * 255.0
    out += 0.5
    np.clip(out, 0, 255, out=out)
    bg[...] = out  # casts to uint8 (truncation after the +0.5 rounds)
    return background


def composite_sparse(background: np.ndarray, rows: np.ndarray, cols: np.ndarray, rgb: np.ndarray,
                     cover: np.ndarray) -> np.ndarray:
    """:func:`composite_over` for the output of :func:`splat_discs_sparse`, in place."""
    bg = background[rows, cols, :3].astype(np.float32)
    bg *= 1.0 - cover[:, None]
    bg += rgb * 255.0
    bg += 0.5
    np.clip(bg, 0, 255, out=bg)
    background[rows, cols, :3] = bg.astype(np.uint8)
    return background
