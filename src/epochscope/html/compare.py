"""Runs side by side: payloads of several runs with the same probe, their maps aligned to the first's.

Runs often exist to compare settings (dropout or not, ReLU or sigmoid). Shown side by side, each run
keeps its own viewer; this module makes their data comparable:

- **Same probe or nothing.** The runs must hold the same probe set (same size, labels, class names,
  and the same inputs when both kept them); otherwise :func:`check_same_probe` refuses with a
  message naming what differs. Aligning the maps of different examples would be meaningless.
- **Maps aligned so that the same class sits in the same place.** Each other run's maps get one
  similarity transform (rotation or mirror, uniform scale, shift), the orthogonal Procrustes
  solution (``scipy.linalg.orthogonal_procrustes``, scale from its singular values) that best lays
  that run's probe points onto the first run's at the last epoch both hold (the trained models'
  maps, where classes are clearest). The same transform is applied to every frame and to the test
  points, so each run's motion over the epochs stays its own; only its orientation and size change.
- **One view.** Every run's payload gets the same first view (robust bounds of all aligned maps),
  so a place on one map is the same place on the other.
- **Curves overlaid.** Each run's accuracy and loss panels also draw the other runs' series,
  dashed, with the run's name in the legend.

The viewer pages are linked by ``viewer/link.js`` (epoch cursors) inside a page that holds one
frame per run: :func:`render_compare_page` for a self-contained file, ``epochscope serve`` live.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .._text import printable
from ..run import Run
from .page import render_page, viewer_script
from .payload import MapsLike, short_name

__all__ = ["AlignedMaps", "ProbeMismatchError", "align_to", "check_same_probe", "compare_payloads",
           "overlay_curves", "render_compare_page", "DASHES"]

#: Line dashes of the other runs' curves (CSS pixels), by their place among the runs.
DASHES = ([6, 4], [2, 3], [8, 3, 2, 3], [1, 2])


class ProbeMismatchError(ValueError):
    """Runs asked to be shown side by side do not hold the same probe set."""


def check_same_probe(runs: Sequence[Run]) -> None:
    """Raise :class:`ProbeMismatchError` (a ``ValueError``) unless every run holds the first's probe set:
    the same number of examples, labels, class names and (when both runs kept them) inputs.

    >>> check_same_probe([open_run("runs/relu"), open_run("runs/sigmoid")])  # doctest: +SKIP
    """
    if len(runs) < 2:
        raise ValueError(f"runs side by side need at least 2 runs, got {len(runs)}")
    first = runs[0]
    for other in runs[1:]:
        where = f"{other.path} and {first.path}"
        todo = "compare runs recorded on the same probe (the same examples, e.g. the same probe_size and seed)"
        if other.manifest.probe_size != first.manifest.probe_size:
            raise ProbeMismatchError(f"runs with different probes cannot be shown side by side: {where} hold "
                                     f"{other.manifest.probe_size} and {first.manifest.probe_size} probe examples; {todo}")
        if list(other.class_names) != list(first.class_names):
            raise ProbeMismatchError(f"runs with different probes cannot be shown side by side: {where} name "
                                     f"different classes; {todo}")
        if not np.array_equal(np.asarray(other.labels), np.asarray(first.labels)):
            raise ProbeMismatchError(f"runs with different probes cannot be shown side by side: {where} hold "
                                     f"different probe labels; {todo}")
        a, b = other.probe_inputs, first.probe_inputs
        if a is not None and b is not None and (a.shape != b.shape or not np.array_equal(a, b)):
            raise ProbeMismatchError(f"runs with different probes cannot be shown side by side: {where} hold "
                                     f"different probe inputs; {todo}")


@dataclass(frozen=True)
class AlignedMaps:
    """A run's maps after :func:`align_to` (the fields the report reads, as :class:`epochscope.Maps`)."""

    layer: str
    method: str
    epochs: list
    coords: np.ndarray
    test_coords: np.ndarray | None
    quality: dict
    bounds: tuple
    skipped: dict
    #: The similarity transform applied: ``aligned = scale * (xy - centre) @ rotation + target``.
    rotation: np.ndarray
    scale: float
    centre: np.ndarray
    target: np.ndarray
    #: The epoch whose frames were matched.
    matched_epoch: int


def _as_aligned(maps: MapsLike) -> AlignedMaps:
    eye = np.eye(2)
    zero = np.zeros(2)
    epochs = [int(e) for e in maps.epochs]
    return AlignedMaps(layer=getattr(maps, "layer", ""), method=getattr(maps, "method", ""), epochs=epochs,
                       coords=np.asarray(maps.coords, np.float32),
                       test_coords=None if maps.test_coords is None else np.asarray(maps.test_coords, np.float32),
                       quality=dict(maps.quality), bounds=tuple(maps.bounds), skipped=dict(maps.skipped), rotation=eye,
                       scale=1.0, centre=zero, target=zero, matched_epoch=epochs[-1] if epochs else -1)


def align_to(maps: MapsLike, reference: MapsLike) -> AlignedMaps:
    """``maps`` laid onto ``reference`` (maps of another run on the same probe) by one similarity transform.

    The transform (rotation or mirror, uniform scale, shift) is the orthogonal Procrustes solution
    matching the probe points of the last epoch both maps hold (the last epoch of each when they share
    none); it is applied to every frame and the test points. Points without a position (NaN) are
    left out of the fit and stay NaN.

    >>> aligned = align_to(maps_b, maps_a)  # doctest: +SKIP
    >>> aligned.scale, aligned.matched_epoch  # doctest: +SKIP
    """
    from scipy.linalg import orthogonal_procrustes

    ref_epochs = [int(e) for e in reference.epochs]
    own_epochs = [int(e) for e in maps.epochs]
    if not ref_epochs or not own_epochs:
        raise ValueError("maps to align must hold at least one epoch each")
    shared = sorted(set(ref_epochs) & set(own_epochs))
    matched = shared[-1] if shared else own_epochs[-1]
    x = np.asarray(maps.coords, np.float64)[own_epochs.index(matched)]
    y = np.asarray(reference.coords, np.float64)[ref_epochs.index(matched) if shared else -1]
    if x.shape != y.shape:
        raise ValueError(f"maps to align must hold the same probe points, got {x.shape} and {y.shape}")
    ok = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
    if ok.sum() < 3:
        raise ValueError(f"too few probe points with a position at epoch {matched} to align the maps ({int(ok.sum())})")
    centre, target = x[ok].mean(axis=0), y[ok].mean(axis=0)
    xc, yc = x[ok] - centre, y[ok] - target
    rotation, singular_sum = orthogonal_procrustes(xc, yc)
    norm = float((xc ** 2).sum())
    scale = float(singular_sum / norm) if norm > 0 else 1.0

    def move(arr: np.ndarray | None) -> np.ndarray | None:
        if arr is None:
            return None
        return (scale * (np.asarray(arr, np.float64) - centre) @ rotation + target).astype(np.float32)

    coords = move(maps.coords)
    test = move(maps.test_coords)
    base = _as_aligned(maps)
    return replace(base, coords=coords, test_coords=test, bounds=_robust_view([coords, test]), rotation=rotation,
                   scale=scale, centre=centre, target=target, matched_epoch=matched)


def _robust_view(arrays: Sequence[np.ndarray | None], quantile: float = 0.005, margin: float = 0.05
                 ) -> tuple[float, float, float, float]:
    """``(xmin, xmax, ymin, ymax)`` from the 0.5 % and 99.5 % quantiles of every finite point, widened by 5 %
    (the rule of the maps' own fixed axes, ``epochscope.maps.align.robust_bounds``)."""
    parts = [np.asarray(a, np.float64).reshape(-1, 2) for a in arrays if a is not None and np.size(a)]
    points = np.concatenate(parts) if parts else np.zeros((0, 2))
    points = points[np.isfinite(points).all(axis=1)]
    if not len(points):
        return (-1.0, 1.0, -1.0, 1.0)
    lo, hi = np.quantile(points, quantile, axis=0), np.quantile(points, 1 - quantile, axis=0)
    span = np.maximum(hi - lo, 1e-9)
    lo, hi = lo - margin * span, hi + margin * span
    return (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))


def overlay_curves(payloads: Sequence[dict[str, Any]], names: Sequence[str]) -> None:
    """Add to each payload's accuracy and loss panels the other runs' series (dashed, ``"… · run"``),
    in place; each run's own series get its name too, so the legends say which run is which."""
    own = [{panel: [dict(s) for s in p["metrics"][panel]] for panel in ("accuracy", "loss")} for p in payloads]
    xs = [list(p["metrics"]["epochs"]) for p in payloads]
    for i, payload in enumerate(payloads):
        for panel in ("accuracy", "loss"):
            series = [{**s, "name": f"{s['name']} · {names[i]}"} for s in own[i][panel]]
            others = [j for j in range(len(payloads)) if j != i]
            for place, j in enumerate(others):
                series += [{**s, "name": f"{s['name']} · {names[j]}", "xs": xs[j], "dash": DASHES[place % len(DASHES)],
                            "run": names[j]} for s in own[j][panel]]
            payload["metrics"][panel] = series


def compare_payloads(runs: Sequence[Run], maps: Sequence[MapsLike | None], build: Any,
                     names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One payload per run, made comparable (see the module doc): maps aligned to the first run's, one
    shared first view, curves overlaid, ``compare`` naming every run shown.

    ``build(run, maps)`` makes one run's payload (e.g. :func:`epochscope.html.payload.build_payload`
    with the caller's options); ``names`` are the runs' names in the legends and titles (default: each
    payload's ``runName``, numbered where two are the same). Raises :class:`ProbeMismatchError` for runs with different probes.
    """
    check_same_probe(runs)
    aligned: list[AlignedMaps | None] = []
    reference = next((m for m in maps if m is not None), None)
    for m in maps:
        if m is None or reference is None:
            aligned.append(None)
        elif m is reference:
            aligned.append(_as_aligned(m))
        else:
            aligned.append(align_to(m, reference))
    present = [a for a in aligned if a is not None]
    view = _robust_view([arr for a in present for arr in (a.coords, a.test_coords)]) if present else None
    payloads = []
    for run, a in zip(runs, aligned):
        if a is not None:
            a = replace(a, bounds=view)
        payloads.append(build(run, a))
    names = _distinct_names(list(names) if names is not None else [p["runName"] for p in payloads])
    overlay_curves(payloads, names)
    for i, (payload, a) in enumerate(zip(payloads, aligned)):
        payload["compare"] = {
            "runs": names, "index": i,
            "alignment": None if a is None or i == 0 else
            {"to": names[0], "epoch": a.matched_epoch, "scale": a.scale,
             "mirrored": bool(np.linalg.det(a.rotation) < 0)},
        }
        payload["title"] = f"{names[i]} (side by side with {', '.join(n for j, n in enumerate(names) if j != i)})"
    return payloads


def _distinct_names(names: Sequence[str]) -> list[str]:
    """The runs' names, numbered where two are the same."""
    out = []
    for i, name in enumerate(names):
        name = short_name(name, 60)
        out.append(name if names.count(names[i]) == 1 else f"{name} ({i + 1})")
    return out


_COMPARE_STYLE = """
body { margin: 0; font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; background: #fafafa; }
header { padding: 8px 16px; border-bottom: 1px solid #ddd; background: #fff; }
h1 { font-size: 17px; margin: 0; overflow-wrap: anywhere; }
p { margin: 2px 0 0; color: #666; overflow-wrap: anywhere; }
#runs { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 8px; padding: 8px; }
iframe { width: 100%; height: 1500px; border: 1px solid #ddd; border-radius: 4px; background: #fff; }
"""

#: The compare page's own script: passes each frame's epoch cursor to the other frames.
RELAY_SCRIPT = """(() => {
"use strict";
// Runs side by side: each frame holds one run's viewer (viewer/link.js posts its epoch cursor here);
// the cursor is passed on to every other frame, so the cursors move together.
const frames = Array.from(document.querySelectorAll("iframe.run"));
window.addEventListener("message", (ev) => {
  const from = frames.find((f) => f.contentWindow === ev.source);
  if (!from || !ev.data || ev.data.type !== "epochscope-cursor") return;
  for (const f of frames) if (f !== from && f.contentWindow) f.contentWindow.postMessage(ev.data, "*");
});
})();
"""


def _hash(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def render_compare_page(payloads: Sequence[dict[str, Any]], *, test_hook: bool = False) -> str:
    """One self-contained page showing the runs of ``payloads`` (from :func:`compare_payloads`) side by
    side: a frame per run (``<iframe srcdoc>``, the report page of that run with ``viewer/link.js``) and
    a few lines of script that pass the epoch cursor between them. No network request, as the report."""
    from .. import __version__

    # The runs' names as the viewers show them: control characters escaped (the payloads keep them exactly).
    names = [printable(n) for n in (payloads[0]["compare"]["runs"] if payloads and "compare" in payloads[0] else [])]
    frames = []
    for i, payload in enumerate(payloads):
        page = render_page(payload, test_hook=test_hook, linked=True)
        frames.append(f'<iframe class="run" id="run-{i}" title="{html.escape(names[i] if i < len(names) else "")}" '
                      f'srcdoc="{html.escape(page, quote=True)}"></iframe>')
    notes = []
    for p in payloads[1:]:
        al = p["compare"].get("alignment")
        if al:
            notes.append(f"{names[p['compare']['index']]}: rotated{' and mirrored' if al['mirrored'] else ''}, "
                         f"scaled x{al['scale']:.3g} onto {printable(al['to'])} at epoch {al['epoch']}")
    # A frame's document inherits this page's policy: the viewer's script hash is allowed here too.
    viewer = _hash(viewer_script(test_hook=test_hook, linked=True))
    title = "Runs side by side: " + ", ".join(names)
    sub = ("epoch cursors linked; maps aligned to the first run's by one rotation, mirror, scale and shift "
           "each (orthogonal Procrustes on the probe points); curves of the other runs dashed")
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src '{_hash(RELAY_SCRIPT)}' "
        f"'{viewer}'; style-src 'unsafe-inline'; img-src data: blob:\">\n",
        f"<meta name=\"generator\" content=\"epochscope {html.escape(__version__)}\">\n",
        "<link rel=\"icon\" href=\"data:,\">\n",
        f"<title>{html.escape(title)} · epochscope</title>\n<style>{_COMPARE_STYLE}</style>\n</head>\n<body>\n",
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(sub)}</p>",
        "".join(f"<p>{html.escape(n)}</p>" for n in notes),
        "</header>\n<div id=\"runs\">\n", "\n".join(frames), "\n</div>\n",
        f"<script>{RELAY_SCRIPT}</script>\n</body>\n</html>\n",
    ])


def write_compare_report(runs: Sequence[Run], maps: Sequence[MapsLike | None], out: Any, *, layer: str | None,
                         method: str, max_points: int | None = None, test_hook: bool = False,
                         progress: bool = False) -> Any:
    """Write the side-by-side page of ``runs`` (their ``maps`` of ``layer``, computed already) to ``out``.

    Raises :class:`ProbeMismatchError` before writing anything when the runs hold different probes.

    Example::

        write_compare_report([run_a, run_b], [maps_a, maps_b], "compare.html", layer="hidden", method="pca")
    """
    from .._output import atomic_output, check_output_file
    from .._progress import task
    from .network import network_payload
    from .payload import build_payload
    from .report import check_report_path

    out = check_output_file(check_report_path(out))

    def build(run: Run, m: MapsLike | None) -> dict[str, Any]:
        epochs = list(m.epochs) if m is not None else run.epochs
        return build_payload(run, m, layer=layer if m is not None else None, method=method, max_points=max_points,
                             network=network_payload(run, epochs), progress=progress)

    with task(f"writing {out.name}", enabled=progress):
        page = render_compare_page(compare_payloads(runs, maps, build), test_hook=test_hook)
        with atomic_output(out) as tmp:
            tmp.write_text(page, encoding="utf-8")
    return out
