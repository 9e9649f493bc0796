"""How learning moves: the examples the network learned and then forgot again.

A forgetting event is an example classified right at one epoch and wrong at the next
(Toneva et al., 2019; counted by :mod:`epochscope.analysis` from the recorded
predictions). The picture shows the most-forgotten probe examples as a numbered
thumbnail strip (when the run kept image inputs), the same examples ringed and numbered
on the final map, and how many examples were forgotten how often.

Example::

    ForgettingDisplay.from_run(run, maps).plot().figure_.savefig("forgetting.png")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import analysis
from ..colors import BAR_GREY, MUTED
from . import style
from .figure import FigureDisplay, as_run, check_maps, new_figure, subfigure_at
from .mapplot import plot_map
from .samples import as_images

__all__ = ["ForgettingDisplay"]


@dataclass
class ForgettingDisplay(FigureDisplay):
    """Forgetting events per probe example, the most-forgotten ones shown and ringed on a map.

    Attributes after :meth:`plot`: ``figure_``, ``map_ax_``, ``hist_ax_``, ``thumb_axes_``
    (empty without image inputs) and ``rings_`` (the ring scatter on the map).
    """

    events: np.ndarray
    top: np.ndarray
    coords: np.ndarray
    labels: np.ndarray
    class_names: Sequence[str]
    bounds: Sequence[float]
    epoch: int
    images: np.ndarray | None = None
    subtitle: str = ""
    n_epochs: int | None = None  # recorded epochs the events were counted over (None: not known)

    @classmethod
    def from_run(cls, run: Any, maps: Any, *, k: int = 10) -> ForgettingDisplay:
        """Events from ``run``'s probe predictions (:mod:`epochscope.analysis`); the map is ``maps``
        (the layer's :class:`~epochscope.Maps`) at its last epoch."""
        run = as_run(run)
        check_maps(run, maps)
        events = analysis.forgetting_events(run)
        top = analysis.most_forgotten(run, k)
        images = None
        inputs = run.probe_inputs
        if inputs is not None and len(top):
            try:
                images = as_images(np.asarray(inputs[np.sort(top)]))[np.argsort(np.argsort(top))]
            except ValueError:  # tabular inputs: no thumbnails
                images = None
        epoch = int(maps.epochs[-1])
        return cls(events=events, top=top, coords=np.asarray(maps.coords[-1]), labels=run.labels,
                   class_names=run.class_names, bounds=maps.bounds, epoch=epoch, images=images,
                   subtitle=f"layer {maps.layer} · {maps.method}", n_epochs=len(run.epochs))

    def plot(self, ax: Any = None) -> ForgettingDisplay:
        """Draw on a new off-screen figure, or in the place of the Axes ``ax`` (its area holds
        every panel); returns ``self``."""
        k = len(self.top)
        strip = self.images is not None and k > 0
        fig = new_figure((11, 8.2 if strip else 6.6), dpi=style.DPI) if ax is None else subfigure_at(ax)
        grid = fig.add_gridspec(2 if strip else 1, 2, height_ratios=[1, 5.2] if strip else [1],
                                width_ratios=[2.2, 1], left=0.03, right=0.97, top=0.9, bottom=0.08, hspace=0.25,
                                wspace=0.18)
        self.thumb_axes_ = []
        if strip:
            sub = grid[0, :].subgridspec(1, k, wspace=0.15)
            for i in range(k):
                ax = fig.add_subplot(sub[0, i])
                img = self.images[i]
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                j = int(self.top[i])
                name = style.plain(self.class_names[self.labels[j]])
                ax.set_title(f"#{i + 1}: {name}\n{int(self.events[j])}× forgotten", fontsize=8)
                self.thumb_axes_.append(ax)
        row = 1 if strip else 0
        self.map_ax_ = fig.add_subplot(grid[row, 0])
        self.hist_ax_ = fig.add_subplot(grid[row, 1])
        fig.canvas.draw()  # fix the axes sizes before the map is rasterised to fit them (canvas of the root figure)
        plot_map(self.map_ax_, self.coords, self.labels, self.class_names, bounds=self.bounds)
        ax = self.map_ax_
        xy = self.coords[self.top] if k else np.empty((0, 2))
        self.rings_ = ax.scatter(xy[:, 0], xy[:, 1], s=170, zorder=4, **{k_: v for k_, v in style.RING_MARKER.items()
                                                                           if k_ != "marker"}, marker="o")
        for i, (x, y) in enumerate(xy):
            ax.annotate(f"#{i + 1}", (x, y), xytext=(7, 7), textcoords="offset points", fontsize=9, weight="bold",
                        color="black", bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
        ax.set_title(f"Most-forgotten examples ringed on the map at epoch {self.epoch} ({style.plain(self.subtitle)})",
                     fontsize=style.FONT_SIZE)
        if len(self.class_names) <= 20:
            ax.legend(handles=style.class_legend_handles(self.class_names, markersize=6), loc="upper center",
                      bbox_to_anchor=(0.5, 0.0), ncol=min(len(self.class_names), 10), frameon=False,
                      fontsize=style.FONT_SIZE - 1, handletextpad=0.2, columnspacing=1.0)
        else:
            ax.text(0.5, -0.02, style.too_many_classes_note(len(self.class_names)).replace("\n", " "),
                    transform=ax.transAxes, ha="center", va="top", fontsize=style.FONT_SIZE - 1, color=MUTED)
        counts = np.bincount(self.events) if len(self.events) else np.zeros(1, int)
        bars = self.hist_ax_.bar(np.arange(len(counts)), counts, color=BAR_GREY)
        self.hist_ax_.bar_label(bars, fontsize=8)
        self.hist_ax_.set_xlabel("forgetting events")
        self.hist_ax_.set_ylabel("probe examples")
        self.hist_ax_.set_xticks(np.arange(len(counts)))
        self.hist_ax_.set_title("How often examples were forgotten", fontsize=style.FONT_SIZE)
        forgotten = int((self.events > 0).sum())
        if self.n_epochs is not None and self.n_epochs < 2:  # right at one epoch, wrong at the next: needs two
            headline = "How learning moves: one recorded epoch, so no forgetting can be seen yet (it takes two)"
        elif forgotten:
            headline = (f"How learning moves: {forgotten} of {len(self.events)} probe examples were learned and "
                        "forgotten again at least once")
        else:
            headline = f"How learning moves: none of the {len(self.events)} probe examples was ever forgotten"
        fig.suptitle(headline, fontsize=style.FONT_SIZE + 2, x=0.03, ha="left")
        self.figure_ = fig.get_figure(root=True)
        return self
