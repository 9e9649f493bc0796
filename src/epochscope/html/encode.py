"""Compact, safe encodings for the report's data: packed arrays and JSON inside ``<script>``.

Arrays travel as base64 of deflated bytes. Multi-byte values are "shuffled" (all first
bytes, then all second bytes, ...) before deflate, and per-epoch coordinates are stored as
the difference from the previous epoch, so the slowly moving high bytes compress to almost
nothing. The viewer undoes each step with the browser's own ``DecompressionStream``.
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from typing import Any

import numpy as np

__all__ = ["pack_array", "quantise_coords", "raw_array", "script_json", "COORD_MISSING"]

# Quantised coordinates use 0..65534; this value marks a point with no position (NaN).
COORD_MISSING = 65535
_DTYPES = {"uint8", "uint16", "int32", "uint32", "float32"}


def pack_array(array: np.ndarray, *, delta_axis0: bool = False, level: int = 6) -> dict[str, Any]:
    """Pack an array for the viewer as ``{"dtype", "shape", "delta", "b64"}``.

    Parameters
    ----------
    array : numpy array of one of uint8, uint16, int32, uint32, float32.
    delta_axis0 : store ``array[i] - array[i-1]`` along the first axis (wrapping, for
        unsigned ints), which makes slowly changing frames compress well.
    level : zlib compression level.

    >>> spec = pack_array(np.arange(4, dtype=np.uint16))
    >>> spec["dtype"], spec["shape"]
    ('uint16', [4])
    """
    array = np.ascontiguousarray(array)
    if array.dtype.name not in _DTYPES:
        raise TypeError(f"pack_array: dtype must be one of {sorted(_DTYPES)}, got {array.dtype}")
    data = array
    if delta_axis0:
        if array.dtype.kind != "u":
            raise TypeError(f"pack_array: delta_axis0 needs an unsigned integer array, got {array.dtype}")
        data = array.copy()
        data[1:] = array[1:] - array[:-1]  # unsigned arithmetic wraps, the viewer's cumulative sum unwraps
    raw = np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("<")).view(np.uint8)
    size = array.dtype.itemsize
    if size > 1:
        raw = raw.reshape(-1, size).T  # byte planes: shuffle
    payload = zlib.compress(np.ascontiguousarray(raw).tobytes(), level)
    return {
        "dtype": array.dtype.name,
        "shape": [int(s) for s in array.shape],
        "delta": bool(delta_axis0),
        "b64": base64.b64encode(payload).decode("ascii"),
    }


def raw_array(array: np.ndarray) -> dict[str, Any]:
    """An array as ``{"dtype", "shape", "b64"}``: its little-endian bytes in base64, not deflated,
    so the viewer can read it synchronously (the first view, drawn before any decoding).

    >>> raw_array(np.arange(3, dtype=np.uint8))["b64"]
    'AAEC'
    """
    array = np.ascontiguousarray(array)
    if array.dtype.name not in _DTYPES:
        raise TypeError(f"raw_array: dtype must be one of {sorted(_DTYPES)}, got {array.dtype}")
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return {"dtype": array.dtype.name, "shape": [int(x) for x in array.shape],
            "b64": base64.b64encode(data.tobytes()).decode("ascii")}


def quantise_coords(coords: np.ndarray, bounds: tuple[float, float, float, float]) -> np.ndarray:
    """Map ``(..., 2)`` coordinates inside ``bounds = (xmin, xmax, ymin, ymax)`` to uint16.

    Values land in 0..65534 (a step of 1/65534 of the map's extent, far below a pixel);
    NaN becomes :data:`COORD_MISSING` so the viewer can hide the point.
    """
    xmin, xmax, ymin, ymax = (float(b) for b in bounds)
    if not all(math.isfinite(b) for b in (xmin, xmax, ymin, ymax)):
        raise ValueError(f"bounds must be finite (xmin, xmax, ymin, ymax), got {bounds}")
    coords = np.asarray(coords, dtype=np.float64)
    lo = np.array([xmin, ymin])
    span = np.array([xmax - xmin, ymax - ymin])
    span[span <= 0] = 1.0
    scaled = (coords - lo) / span * (COORD_MISSING - 1)
    missing = ~np.isfinite(scaled).all(axis=-1)
    q = np.clip(np.rint(np.nan_to_num(scaled)), 0, COORD_MISSING - 1).astype(np.uint16)
    q[missing] = COORD_MISSING
    return q


def _clean(obj: Any) -> Any:
    """NaN/inf -> None and numpy scalars/arrays -> Python, so the JSON is strict."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


def script_json(obj: Any) -> str:
    """JSON text that is safe to place inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` become ``\\u003c``/``\\u003e``/``\\u0026`` so no ``</script>`` or
    ``<!--`` can end or change the element, and U+2028/U+2029 are escaped (``ensure_ascii``)
    so the text is also valid JavaScript. ``JSON.parse`` restores every character.

    >>> script_json({"name": "</script><b>"})
    '{"name":"\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e"}'
    """
    text = json.dumps(_clean(obj), ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
