"""Accuracy and loss curves, training and validation side by side, one point per epoch.

Example::

    CurvesDisplay.from_run(run).plot().figure_.savefig("curves.png")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..colors import CURVE_COLORS, MUTED
from . import style
from .figure import FigureDisplay, as_run, new_figure, subfigure_at

__all__ = ["CurvesDisplay", "metric_series"]


def metric_series(rows: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    """The values of ``key`` across metric rows as floats, NaN where a row lacks it."""
    out = np.full(len(rows), np.nan)
    for i, row in enumerate(rows):
        try:
            out[i] = float(row[key])
        except (KeyError, TypeError, ValueError):
            pass
    return out


@dataclass
class CurvesDisplay(FigureDisplay):
    """Accuracy (left) and loss (right) per epoch, training and validation.

    Attributes after :meth:`plot`: ``figure_``, ``axes_`` (accuracy, loss) and ``lines_``
    (``{"accuracy": Line2D, "val_accuracy": ..., "loss": ..., "val_loss": ...}``, only the
    series the run recorded).
    """

    epochs: np.ndarray
    series: dict[str, np.ndarray] = field(default_factory=dict)
    #: The x axis: ``"epoch"``, or ``"step"`` for a run recorded inside epochs whose epochs are not all
    #: known (``epochs`` then holds steps); a step run's fractional epochs otherwise (run.timeline).
    axis_label: str = "epoch"

    @classmethod
    def from_metrics(cls, rows: Sequence[Mapping[str, Any]]) -> CurvesDisplay:
        """From metrics rows (each with ``epoch`` and any of ``accuracy``, ``val_accuracy``, ``loss``, ``val_loss``)."""
        epochs = np.array([int(r.get("epoch", i)) for i, r in enumerate(rows)])
        series = {k: metric_series(rows, k) for k in ("accuracy", "val_accuracy", "loss", "val_loss")}
        return cls(epochs=epochs, series={k: v for k, v in series.items() if np.isfinite(v).any()})

    @classmethod
    def from_run(cls, run) -> CurvesDisplay:
        """From the run's metrics rows, each at its place on the run's time axis (:attr:`Run.timeline`:
        the epoch; a record inside an epoch at its fractional epoch, or at its step)."""
        run = as_run(run)
        display = cls.from_metrics(run.metrics)
        timeline = run.timeline
        if timeline.by_step:
            display.epochs, display.axis_label = timeline.values(), timeline.axis
        return display

    def plot(self, ax: Any = None) -> CurvesDisplay:
        """Draw on two new axes side by side (a new off-screen figure), on the pair
        ``ax = (acc_ax, loss_ax)``, or side by side in the place of one Axes ``ax``; returns ``self``.

        Raises ``ValueError`` for a sequence of axes that is not a pair.
        """
        if ax is None:
            fig = new_figure((10, 4), dpi=style.DPI)
            axes = list(fig.subplots(1, 2))
        elif hasattr(ax, "get_subplotspec"):  # one Axes: both panels in its place
            sub = subfigure_at(ax)
            axes = list(sub.subplots(1, 2))
            fig = sub.get_figure(root=True)
        else:
            axes = list(ax)
            if len(axes) != 2:
                raise ValueError(f"ax must be a pair of axes (accuracy, loss), got {len(axes)}")
            fig = axes[0].get_figure(root=True)
        self.lines_ = {}
        for axis, what in zip(axes, ("accuracy", "loss")):
            for key, name, color in ((what, "training", CURVE_COLORS["train"]),
                                     (f"val_{what}", "validation", CURVE_COLORS["val"])):
                if key in self.series:
                    y = self.series[key]
                    ok = np.isfinite(y)
                    (self.lines_[key],) = axis.plot(self.epochs[ok], y[ok], marker="o", markersize=4, color=color,
                                                    label=name)
            axis.set_title(what.capitalize())
            axis.set_xlabel(self.axis_label)
            axis.grid(alpha=0.3)
            if what in self.series or f"val_{what}" in self.series:
                axis.legend(frameon=False)
            else:
                axis.text(0.5, 0.5, f"no {what} recorded", ha="center", va="center", transform=axis.transAxes,
                          color=MUTED)
            if len(self.epochs) and len(self.epochs) <= 12 and np.all(np.mod(self.epochs, 1) == 0):
                axis.set_xticks(self.epochs)
        if ax is None:
            fig.tight_layout()
        self.figure_, self.axes_ = fig, tuple(axes)
        return self
