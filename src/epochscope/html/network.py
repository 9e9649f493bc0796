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
from ..network import MAX_LINEWIDTH, MIN_LINEWIDTH, NetworkHistory, NetworkSettings, max_linewidth_for
from ..run import Run
from .encode import pack_array
from .payload import damaged

__all__ = ["network_payload", "MIN_LINEWIDTH", "MAX_LINEWIDTH"]

log = logging.getLogger("epochscope")

_LEVELS = 255  # widths and changes are quantised to one byte each


def network_payload(run: Run, epochs: Sequence[int], settings: Any = None) -> dict[str, Any]:
    """``{"available": True, nodes, labels, palette, frames...}`` for the epochs that hold
    weights, or ``{"available": False, "note": why}``.

    Each frame's edges are packed as ``src``/``dst`` (uint16 node indices), ``width`` and
    ``change`` (uint8: 0..255 for 0..1 and -1..1), concatenated over the frames with
    ``offsets`` marking where each frame starts; ``frameOf`` maps every map epoch to its
    frame (-1 when that epoch holds no weights, or lacks layers of the chain: ``lacking`` names
    them per map epoch, ``None`` elsewhere, and the note says it). ``summaries`` holds per frame and layer the
    relative change of the layer's mean ``|w|`` and its colour (the GIF's layer summaries), and
    ``first`` the last frame's edges unpacked, for the page's first view.

    A weights file that cannot be read raises :class:`~epochscope.RunError` naming it and
    ``epochscope check`` (:func:`epochscope.html.payload.damaged`): damage is never drawn as "no network".

    Example::

        data = network_payload(run, run.epochs)
        data["available"], len(data.get("nodes", []))
    """
    try:
        history = NetworkHistory.from_run(run)
    except RunError as err:
        if any(run.has_weights(e) for e in run.epochs):  # weights recorded but unreadable: damage, said loudly
            raise damaged(run, err) from err
        log.info("report: no network drawing (%s)", err)  # no epoch holds weights
        return {"available": False, "note": f"no network drawn: {err}"}
    except ValueError as err:  # the weights form no one chain: said on the page and where the report is made
        log.warning("report: no network drawing (%s)", err)
        return {"available": False, "note": f"no network drawn: {err}"}
    settings = settings or NetworkSettings()
    frame_of_epoch = {int(e): i for i, e in enumerate(history.epochs)}
    wanted = sorted({frame_of_epoch[int(e)] for e in epochs if int(e) in frame_of_epoch})
    if not wanted:
        return {"available": False, "note": "no network drawn: the mapped epochs hold no weights"}
    position = {f: k for k, f in enumerate(wanted)}
    src, dst, width, change, offsets, summaries = [], [], [], [], [0], []
    scales = history.change_scales(settings.reference)
    for f in wanted:
        fr = history.frame(f, settings)
        src.append(fr.src)
        dst.append(fr.dst)
        width.append(np.rint(np.clip(fr.width, 0, 1) * _LEVELS))
        change.append(np.rint((np.clip(fr.change, -1, 1) + 1) / 2 * _LEVELS))
        offsets.append(offsets[-1] + len(fr))
        # Per layer: relative change of its mean |w| (the GIF's layer summary), and the colour of
        # that change on the edges' scale; none at the first frame against "previous".
        rel = history.layer_change(f, settings)
        shown = not (settings.reference == "previous" and f == 0)
        summaries.append([None if not shown or not np.isfinite(c) else
                          [round(float(c), 5), rgb_to_hex(diverging_rgb(np.array([np.clip(
                              c * float(history.magnitudes[i][f].mean()) / scales[i], -1, 1)])) * 0.85)[0]]
                          for i, c in enumerate(rel)])
    palette = rgb_to_hex(diverging_rgb(np.linspace(-1.0, 1.0, _LEVELS + 1)))
    k = history.effective_top_k(settings)
    last = len(wanted) - 1
    first = {"frame": last, "src": src[last].astype(int).tolist(), "dst": dst[last].astype(int).tolist(),
             "width": width[last].astype(int).tolist(), "change": change[last].astype(int).tolist()}
    return {
        "available": True,
        "nodes": np.round(history.node_xy, 4).tolist(),
        "labels": history.column_labels(),
        "columns": sorted(set(np.round(history.node_xy[:, 0], 4).tolist())),
        "palette": palette,
        "minWidth": MIN_LINEWIDTH,
        "maxWidth": MAX_LINEWIDTH,
        "lineWidth": max_linewidth_for(len(history.frame(wanted[0], settings)) / max(len(history.chain), 1)),
        "counts": list(history.counts),
        "frameOf": [position.get(frame_of_epoch.get(int(e), -1), -1) for e in epochs],
        "lacking": [", ".join(history.left_out[int(e)]) if int(e) in history.left_out else None for e in epochs],
        "offsets": offsets,
        "src": pack_array(np.concatenate(src).astype(np.uint16)),
        "dst": pack_array(np.concatenate(dst).astype(np.uint16)),
        "width": pack_array(np.concatenate(width).astype(np.uint8)),
        "change": pack_array(np.concatenate(change).astype(np.uint8)),
        "summaries": summaries,
        "first": first,
        "note": ("width: |w|" + (f" (the strongest {k} edges per layer)" if k else "")
                 + "; colour: change of |w| since the previous epoch (red grew, blue shrank); "
                 "between the columns: change of the layer's mean |w|" + _left_out_note(history, epochs)),
    }


def _left_out_note(history: NetworkHistory, epochs: Sequence[int]) -> str:
    """``"; not drawn: epochs 0, 2 (lack layer l2)"`` for the map epochs that hold weights but
    lack layers of the chain (what :meth:`NetworkHistory.from_run` warns of), else ``""``."""
    from ..run.summary import epoch_spans

    gaps: dict[tuple[str, ...], list[int]] = {}
    for e in epochs:
        if int(e) in history.left_out:
            gaps.setdefault(history.left_out[int(e)], []).append(int(e))
    return "".join(f"; not drawn: epoch{'s' if len(es) > 1 else ''} {epoch_spans(sorted(es))} (lack"
                   f"{'s' if len(es) == 1 else ''} layer{'s' if len(names) > 1 else ''} {', '.join(names)})"
                   for names, es in gaps.items())
