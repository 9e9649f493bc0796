"""The network drawing's data for the report: the recorded dense chain at every map epoch.

The graph (chain, node layout, per-edge width and colour) comes from
:mod:`epochscope.network`, the same numbers the GIF renderer draws, and the colour
scale from :mod:`epochscope.colors`; this module only packs them compactly for the viewer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._errors import RunError
from ..colors import diverging_rgb, rgb_to_hex
from ..network import MAX_LINEWIDTH, MIN_LINEWIDTH, NetworkHistory, NetworkSettings
from ..run import Run
from .encode import pack_array

__all__ = ["network_payload", "MIN_LINEWIDTH", "MAX_LINEWIDTH"]

log = logging.getLogger("epochscope")

_LEVELS = 255  # widths and changes are quantised to one byte each


def network_payload(run: Run, epochs: Sequence[int], settings: Any = None) -> dict[str, Any]:
    """``{"available": True, nodes, labels, palette, frames...}`` for the epochs that hold
    weights, or ``{"available": False, "note": why}``.

    Each frame's edges are packed as ``src``/``dst`` (uint16 node indices), ``width`` and
    ``change`` (uint8: 0..255 for 0..1 and -1..1), concatenated over the frames with
    ``offsets`` marking where each frame starts; ``frameOf`` maps every map epoch to its
    frame (-1 when that epoch holds no weights).

    Example::

        data = network_payload(run, run.epochs)
        data["available"], len(data.get("nodes", []))
    """
    try:
        history = NetworkHistory.from_run(run)
    except (RunError, ValueError) as err:
        log.info("report: no network drawing (%s)", err)
        return {"available": False, "note": f"no network drawn: {err}"}
    settings = settings or NetworkSettings()
    frame_of_epoch = {int(e): i for i, e in enumerate(history.epochs)}
    wanted = sorted({frame_of_epoch[int(e)] for e in epochs if int(e) in frame_of_epoch})
    if not wanted:
        return {"available": False, "note": "no network drawn: the mapped epochs hold no weights"}
    position = {f: k for k, f in enumerate(wanted)}
    src, dst, width, change, offsets = [], [], [], [], [0]
    for f in wanted:
        fr = history.frame(f, settings)
        src.append(fr.src)
        dst.append(fr.dst)
        width.append(np.rint(np.clip(fr.width, 0, 1) * _LEVELS))
        change.append(np.rint((np.clip(fr.change, -1, 1) + 1) / 2 * _LEVELS))
        offsets.append(offsets[-1] + len(fr))
    palette = rgb_to_hex(diverging_rgb(np.linspace(-1.0, 1.0, _LEVELS + 1)))
    k = history.effective_top_k(settings)
    return {
        "available": True,
        "nodes": np.round(history.node_xy, 4).tolist(),
        "labels": history.column_labels(),
        "columns": sorted(set(np.round(history.node_xy[:, 0], 4).tolist())),
        "palette": palette,
        "minWidth": MIN_LINEWIDTH,
        "maxWidth": MAX_LINEWIDTH,
        "frameOf": [position.get(frame_of_epoch.get(int(e), -1), -1) for e in epochs],
        "offsets": offsets,
        "src": pack_array(np.concatenate(src).astype(np.uint16)),
        "dst": pack_array(np.concatenate(dst).astype(np.uint16)),
        "width": pack_array(np.concatenate(width).astype(np.uint8)),
        "change": pack_array(np.concatenate(change).astype(np.uint8)),
        "note": ("width: |w|, colour: change of |w| since the previous epoch (red grew, blue shrank)"
                 + (f"; strongest {k} edges per layer" if k else "")),
    }
