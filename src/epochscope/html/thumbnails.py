"""Input thumbnails for the report: every image in one PNG sprite sheet, as a ``data:`` URI.

One PNG for all inputs compresses far better than one per input (shared deflate window,
one header) and the viewer cuts a tile out of it with ``drawImage``.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Sprite", "as_images", "sprite_sheet"]

MAX_TILE = 32  # larger inputs are shrunk: a hover thumbnail needs no more
MAX_SHEET_SIDE = 16384  # browsers refuse bigger images


@dataclass(frozen=True)
class Sprite:
    """A sprite sheet: ``uri`` (data:image/png;base64,...), ``cols`` tiles per row, tile size."""

    uri: str
    cols: int
    count: int
    tile_h: int
    tile_w: int

    def to_json(self) -> dict:
        return {"uri": self.uri, "cols": self.cols, "count": self.count, "tileH": self.tile_h, "tileW": self.tile_w}


def as_images(inputs: np.ndarray | None) -> np.ndarray | None:
    """``(n, H, W)`` or ``(n, H, W, 3)`` float images from recorded inputs, or ``None``.

    Accepts ``(n, 1|3, H, W)`` (channels first, as PyTorch), ``(n, H, W, 1|3)`` (channels
    last, as Keras) and ``(n, H, W)``. Flat feature vectors ``(n, features)`` are not
    images and give ``None``.
    """
    if inputs is None:
        return None
    x = np.asarray(inputs)
    if x.ndim == 3 and min(x.shape[1:]) >= 4:
        return x
    if x.ndim == 4:
        if x.shape[1] in (1, 3) and min(x.shape[2:]) >= 4:
            x = np.moveaxis(x, 1, -1)
        elif not (x.shape[-1] in (1, 3) and min(x.shape[1:3]) >= 4):
            return None
        return x[..., 0] if x.shape[-1] == 1 else x
    return None


def sprite_sheet(images: np.ndarray, *, max_tile: int = MAX_TILE) -> Sprite:
    """Lay ``images`` (``(n, H, W)`` or ``(n, H, W, 3)``) into one grey or RGB PNG sprite.

    Each image is scaled to 0..255 by its own range (so faint and bright inputs both
    read well) and shrunk when a side exceeds ``max_tile``.

    >>> s = sprite_sheet(np.random.rand(10, 8, 8))
    >>> (s.cols, s.count, s.tile_h), s.uri[:22]
    ((4, 10, 8), 'data:image/png;base64,')
    """
    from PIL import Image

    n = len(images)
    if n == 0:
        raise ValueError("sprite_sheet: no images given")
    h, w = images.shape[1:3]
    scale = min(1.0, max_tile / max(h, w))
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    cols = max(1, math.ceil(math.sqrt(n * th / tw)))
    cols = min(cols, MAX_SHEET_SIDE // tw)
    rows = math.ceil(n / cols)
    if rows * th > MAX_SHEET_SIDE:
        raise ValueError(f"sprite_sheet: {n} images of {th}x{tw} do not fit one {MAX_SHEET_SIDE}px sheet; pass max_points")
    rgb = images.ndim == 4
    sheet = np.zeros((rows * th, cols * tw, 3) if rgb else (rows * th, cols * tw), dtype=np.uint8)
    chunk = 4096  # bounded memory for memory-mapped inputs
    for start in range(0, n, chunk):
        block = np.asarray(images[start:start + chunk], dtype=np.float32)
        axes = tuple(range(1, block.ndim))
        lo = np.nanmin(block, axis=axes, keepdims=True)
        hi = np.nanmax(block, axis=axes, keepdims=True)
        tiles = np.nan_to_num((block - lo) / np.where(hi > lo, hi - lo, 1.0) * 255.0)
        tiles = np.clip(np.rint(tiles), 0, 255).astype(np.uint8)
        for k, tile in enumerate(tiles):
            i = start + k
            if (th, tw) != (h, w):
                tile = np.asarray(Image.fromarray(tile).resize((tw, th), Image.BILINEAR))
            r, c = divmod(i, cols)
            sheet[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = tile
    buf = io.BytesIO()
    # Level 6: within 3% of level 9 on MNIST sprites, 8x faster (1.4 s vs 11 s for 20,000 digits).
    Image.fromarray(sheet).save(buf, format="PNG", compress_level=6)
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return Sprite(uri=uri, cols=cols, count=n, tile_h=th, tile_w=tw)
