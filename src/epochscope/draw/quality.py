"""When does the representation settle? The map's quality figures under the accuracy curve.

Top: accuracy per epoch (training and validation). Bottom: the map's trustworthiness, the
layer's linear CKA to the previous epoch (1 = the representation stopped changing) and the
map's frame-to-frame motion (right axis): when CKA nears 1 and motion nears 0, the layer
has settled, whatever the accuracy still does.

Example::

    QualityDisplay.from_run(run, maps).plot().figure_.savefig("quality.png")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..colors import CURVE_COLORS, QUALITY_COLORS
from . import style
from .curves import metric_series
from .figure import FigureDisplay, as_run, check_maps, new_figure, subfigure_at

__all__ = ["QualityDisplay"]

# (key in maps.quality, legend label, axis): motion has its own scale on the right.
SERIES = (
    ("trustworthiness", "map trustworthiness", "left"),
    ("cka_previous", "CKA to previous epoch", "left"),
    ("knn_accuracy_map", "kNN accuracy in the map", "left"),
    ("motion", "map motion (right axis)", "right"),
)


@dataclass
class QualityDisplay(FigureDisplay):
    """Accuracy curve above the per-epoch quality figures of a map.

    Attributes after :meth:`plot`: ``figure_``, ``axes_`` (accuracy, quality), ``motion_ax_``
    and ``lines_`` (keyed by metric / quality name).
    """

    epochs: np.ndarray
    accuracy: dict[str, np.ndarray] = field(default_factory=dict)
    quality: dict[str, np.ndarray] = field(default_factory=dict)
    title: str = ""
    #: The x axis (``"epoch"``; ``"step"`` for a step run whose epochs are not all known): see ``from_run``.
    axis_label: str = "epoch"

    @classmethod
    def from_maps(cls, maps: Any, metrics: Sequence[Mapping[str, Any]]) -> QualityDisplay:
        """From ``maps`` (its ``epochs`` and ``quality``) and one metrics row per map epoch."""
        epochs = np.array([int(e) for e in maps.epochs])
        if len(metrics) != len(epochs):
            raise ValueError(f"metrics must hold one row per map epoch ({len(epochs)}), got {len(metrics)}")
        acc = {k: metric_series(metrics, k) for k in ("accuracy", "val_accuracy")}
        quality = {k: np.asarray(v, dtype=float) for k, v in (maps.quality or {}).items()
                   if len(np.asarray(v)) == len(epochs)}
        return cls(epochs=epochs, accuracy={k: v for k, v in acc.items() if np.isfinite(v).any()},
                   quality=quality, title=f"When does layer {maps.layer} settle? ({maps.method} map)")

    @classmethod
    def from_run(cls, run: Any, maps: Any) -> QualityDisplay:
        """:meth:`from_maps` with the metrics rows of ``run``; ``maps`` are the layer's
        :class:`~epochscope.Maps` (from :func:`epochscope.embed`: a Display never computes them)."""
        run = as_run(run)
        check_maps(run, maps)
        rows = {int(m.get("epoch", -1)): m for m in run.metrics}
        display = cls.from_maps(maps, [rows.get(int(e), {}) for e in maps.epochs])
        timeline = run.timeline
        if timeline.by_step:  # a run recorded inside epochs: fractional epochs (or steps) on the x axis
            display.epochs, display.axis_label = timeline.values(maps.epochs), timeline.axis
        return display

    def plot(self, ax: Any = None) -> QualityDisplay:
        """Draw on a new off-screen figure, or in the place of the Axes ``ax`` (its area holds
        both panels); returns ``self``."""
        target = new_figure((8, 7), dpi=style.DPI) if ax is None else subfigure_at(ax)
        top, bottom = target.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.25]})
        fig = target.get_figure(root=True)
        self.lines_ = {}
        for key, label, color in (("accuracy", "training accuracy", CURVE_COLORS["train"]),
                                  ("val_accuracy", "validation accuracy", CURVE_COLORS["val"])):
            if key in self.accuracy:
                y = self.accuracy[key]
                ok = np.isfinite(y)
                (self.lines_[key],) = top.plot(self.epochs[ok], y[ok], marker="o", markersize=4, color=color,
                                               label=label)
        top.set_ylabel("accuracy")
        top.grid(alpha=0.3)
        if self.lines_:
            top.legend(frameon=False, loc="lower right")
        right = bottom.twinx()
        handles = []
        for key, label, side in SERIES:
            color = QUALITY_COLORS[key]
            if key not in self.quality:
                continue
            y = self.quality[key]
            ok = np.isfinite(y)
            if not ok.any():
                continue
            axis = right if side == "right" else bottom
            (line,) = axis.plot(self.epochs[ok], y[ok], marker="o", markersize=4, color=color, label=label,
                                linestyle="--" if side == "right" else "-")
            self.lines_[key] = line
            handles.append(line)
        bottom.set_ylabel("trustworthiness, CKA, kNN accuracy")
        per = "epoch" if self.axis_label == "epoch" and np.all(np.mod(self.epochs, 1) == 0) else "record"
        right.set_ylabel(f"motion (map radii per {per})", color=QUALITY_COLORS["motion"])
        bottom.set_xlabel(self.axis_label)
        bottom.grid(alpha=0.3)
        if handles:
            # Under the axes: inside, it would hide the late epochs where the curves settle.
            bottom.legend(handles=handles, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.17),
                          ncol=2, fontsize=style.FONT_SIZE - 1)
        if len(self.epochs) and len(self.epochs) <= 12 and np.all(np.mod(self.epochs, 1) == 0):
            bottom.set_xticks(self.epochs)
        top.set_title(style.plain(self.title), fontsize=style.FONT_SIZE + 2)
        if ax is None:
            fig.tight_layout()
        self.figure_, self.axes_, self.motion_ax_ = fig, (top, bottom), right
        return self
