"""Layer x epoch small multiples: one row per recorded layer, one column per chosen epoch.

Each row uses its own layer's fixed axes (``maps.bounds``), so a row reads as a short
time-lapse and the rows compare how early and late layers organise the classes.

Example::

    maps = [epochscope.embed(run, layer, method="pca") for layer in run.layers]
    LayerEpochGrid.from_run(run, maps).plot().figure_.savefig("layers_epochs.png")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..colors import MUTED
from . import style
from .figure import FigureDisplay, as_run, check_maps, new_figure, subfigure_at
from .mapplot import plot_map

__all__ = ["LayerEpochGrid", "spread_epochs"]


def spread_epochs(epochs: Sequence[int], n: int = 6) -> list[int]:
    """``n`` epochs evenly spaced over ``epochs``, always with the first and the last.

    >>> spread_epochs(range(11), 6)
    [0, 2, 4, 6, 8, 10]
    """
    epochs = sorted(int(e) for e in epochs)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if len(epochs) <= n:
        return epochs
    picks = np.unique(np.round(np.linspace(0, len(epochs) - 1, n)).astype(int))
    return [epochs[i] for i in picks]


@dataclass
class LayerEpochGrid(FigureDisplay):
    """Maps of several layers at several epochs in one grid.

    Attributes after :meth:`plot`: ``figure_``, ``axes_`` (rows = layers, columns = epochs).
    """

    maps: Sequence[Any]
    labels: np.ndarray
    class_names: Sequence[str]
    epochs: list[int]
    #: Column titles (``from_run`` names a step run's records ``"epoch 0.26 · step 120"``); ``None``: ``"epoch N"``.
    column_titles: list[str] | None = None

    @classmethod
    def from_maps(cls, maps: Sequence[Any], labels: np.ndarray, class_names: Sequence[str], *,
                  epochs: Sequence[int] | None = None, n_columns: int = 6) -> LayerEpochGrid:
        """One row per item of ``maps`` (one per layer); columns are ``epochs`` or ``n_columns``
        epochs spread over those every layer's maps hold."""
        if not maps:
            raise ValueError("maps must hold at least one layer's maps")
        common = sorted(set.intersection(*(set(int(e) for e in m.epochs) for m in maps)))
        if epochs is None:
            if not common:
                raise ValueError("the layers' maps share no epoch; pass epochs=")
            chosen = spread_epochs(common, n_columns)
        else:
            chosen = [int(e) for e in epochs]
            missing = [e for e in chosen if e not in common]
            if missing:
                raise ValueError(f"epochs {missing} are not embedded for every layer (common epochs: {common})")
        return cls(maps=list(maps), labels=np.asarray(labels), class_names=list(class_names), epochs=chosen)

    @classmethod
    def from_run(cls, run: Any, maps: Sequence[Any], *, epochs: Sequence[int] | None = None,
                 n_columns: int = 6) -> LayerEpochGrid:
        """:meth:`from_maps` with the probe labels and class names of ``run``; ``maps`` holds one
        :class:`~epochscope.Maps` per layer, in row order (from :func:`epochscope.embed`: a Display
        never computes maps)."""
        run = as_run(run)
        for layer_maps in maps:
            check_maps(run, layer_maps)
        grid = cls.from_maps(maps, run.labels, run.class_names, epochs=epochs, n_columns=n_columns)
        if run.manifest.record_unit == "step":  # a run recorded inside epochs: columns named by epoch and step
            grid.column_titles = [run.timeline.label(e) for e in grid.epochs]
        return grid

    def plot(self, ax: Any = None) -> LayerEpochGrid:
        """Draw the grid on a new off-screen figure, or in the place of the Axes ``ax`` (its area
        holds the grid); returns ``self``."""
        rows, cols = len(self.maps), len(self.epochs)
        cell = 1.9
        if ax is None:
            fig = new_figure((cols * cell + 1.9, rows * cell + 0.9), dpi=style.DPI)
            width, height = fig.get_size_inches()
        else:
            fig = subfigure_at(ax)
            width, height = fig.bbox.width / fig.dpi, fig.bbox.height / fig.dpi
        # Margins in inches (names on the left, title on top, legend on the right) as fractions.
        left, top, bottom, right = 0.55 / width, 1 - 0.6 / height, 0.15 / height, 1 - 1.35 / width
        axes = fig.subplots(rows, cols, squeeze=False)
        fig.subplots_adjust(left=left, right=right, top=top, bottom=bottom, wspace=0.04, hspace=0.04)
        for r, m in enumerate(self.maps):
            for c, epoch in enumerate(self.epochs):
                ax = axes[r, c]
                plot_map(ax, m.frame(epoch), self.labels, self.class_names, bounds=m.bounds, point_scale=1.3)
                if r == 0:
                    title = self.column_titles[c] if self.column_titles else f"epoch {epoch}"
                    ax.set_title(title, fontsize=style.FONT_SIZE)
                if c == 0:
                    ax.set_ylabel(style.plain(m.layer), fontsize=style.FONT_SIZE)
        method = self.maps[0].method
        fig.suptitle(f"Layers × epochs ({method})", fontsize=style.FONT_SIZE + 2, x=left, ha="left")
        if len(self.class_names) <= 30:
            fig.legend(handles=style.class_legend_handles(self.class_names), loc="center left",
                       bbox_to_anchor=(right + 0.01, 0.5), frameon=False, fontsize=style.FONT_SIZE - 1)
        else:
            fig.text(right + 0.01, 0.5, style.too_many_classes_note(len(self.class_names)), ha="left", va="center",
                     fontsize=style.FONT_SIZE - 1, color=MUTED)
        self.figure_, self.axes_ = fig.get_figure(root=True), axes
        return self
