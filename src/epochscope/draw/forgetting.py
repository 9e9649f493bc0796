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

__all__ = ["ForgettingDisplay", "place_labels"]

RING_AREA = 170.0  # points² of the ring around each most-forgotten example
_LABEL_STYLE = {"fontsize": 9, "weight": "bold", "color": "black", "ha": "center", "va": "center", "zorder": 6}


def place_labels(ax, xy: np.ndarray, texts: Sequence[str], *, occupied: np.ndarray | None = None,
                 ring_px: float | None = None) -> list:
    """Put each text near its point ``xy`` (data coordinates) where it overlaps no other label or
    ring, stays inside the axes and covers as few map points as it can (none where there is room),
    with a thin leader line when it had to move away. Greedy, in the order given (#1 first).

    ``occupied`` is a bool image of the axes' pixels holding points (top row first), e.g. the
    alpha channel of :func:`~epochscope.draw.mapplot.plot_map`'s image. Returns the
    ``Annotation`` artists.
    """
    from matplotlib import patheffects

    fig = ax.get_figure(root=True)
    renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else fig._get_renderer()
    box = ax.get_window_extent(renderer)
    ring_r = ring_px if ring_px is not None else np.sqrt(RING_AREA) / 2 * fig.dpi / 72.0 + 1.0
    centres = ax.transData.transform(np.asarray(xy, dtype=np.float64).reshape(-1, 2)) if len(xy) else np.empty((0, 2))
    if occupied is not None:
        occupied = np.asarray(occupied, dtype=bool)
        # Summed-area table: the points under any box in O(1).
        table = np.pad(np.cumsum(np.cumsum(occupied[::-1], axis=0), axis=1), ((1, 0), (1, 0)))
        scale_x = occupied.shape[1] / max(box.width, 1.0)
        scale_y = occupied.shape[0] / max(box.height, 1.0)

    def covered(x0: float, y0: float, x1: float, y1: float) -> int:
        if occupied is None:
            return 0
        # Display y grows upwards; the flipped table's row 0 is the axes' bottom edge.
        c0 = int(np.clip(np.floor((x0 - box.x0) * scale_x), 0, occupied.shape[1]))
        c1 = int(np.clip(np.ceil((x1 - box.x0) * scale_x), 0, occupied.shape[1]))
        r0 = int(np.clip(np.floor((y0 - box.y0) * scale_y), 0, occupied.shape[0]))
        r1 = int(np.clip(np.ceil((y1 - box.y0) * scale_y), 0, occupied.shape[0]))
        return int(table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0])

    rings = [(cx - ring_r, cy - ring_r, cx + ring_r, cy + ring_r) for cx, cy in centres]
    placed: list[tuple[float, float, float, float]] = []
    artists = []
    angles = np.deg2rad(np.arange(0, 360, 22.5) + 45)
    for i, (text, (cx, cy)) in enumerate(zip(texts, centres)):
        probe = ax.text(0, 0, text, **_LABEL_STYLE)
        ext = probe.get_window_extent(renderer)
        probe.remove()
        w, h = ext.width + 4, ext.height + 2
        best = None
        for dist in (ring_r + 2, ring_r + 10, ring_r + 22, ring_r + 40, ring_r + 65, ring_r + 100, ring_r + 150):
            for a in angles:
                # The box's nearest edge ``dist`` away from the centre along the angle.
                bx = cx + np.cos(a) * (dist + w / 2 * abs(np.cos(a)))
                by = cy + np.sin(a) * (dist + h / 2 * abs(np.sin(a)))
                cand = (bx - w / 2, by - h / 2, bx + w / 2, by + h / 2)
                if cand[0] < box.x0 or cand[2] > box.x1 or cand[1] < box.y0 or cand[3] > box.y1:
                    continue
                if any(_overlap(cand, other) for other in placed) or \
                        any(_overlap(cand, r) for j, r in enumerate(rings) if j != i):
                    continue
                cost = covered(*cand) * 1000.0 + dist
                if best is None or cost < best[0]:
                    best = (cost, cand, bx, by, dist)
            if best is not None and best[0] < 1000.0:
                break  # a place that covers no point, as near as possible
        if best is None:  # nowhere free inside the axes: next to the ring, as before
            bx, by, dist = cx + ring_r + w / 2, cy + ring_r + h / 2, ring_r
            best = (0.0, (bx - w / 2, by - h / 2, bx + w / 2, by + h / 2), bx, by, dist)
        _, cand, bx, by, dist = best
        placed.append(cand)
        arrow = {"arrowstyle": "-", "color": "black", "lw": 0.7, "shrinkA": 0, "shrinkB": ring_r * 72.0 / fig.dpi}
        artists.append(ax.annotate(text, (xy[i][0], xy[i][1]), xytext=(bx - cx, by - cy), textcoords="offset pixels",
                                   arrowprops=arrow if dist > ring_r + 6 else None,
                                   path_effects=[patheffects.withStroke(linewidth=2.5, foreground="white")],
                                   **_LABEL_STYLE))
    return artists


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@dataclass
class ForgettingDisplay(FigureDisplay):
    """Forgetting events per probe example, the most-forgotten ones shown and ringed on a map.

    Attributes after :meth:`plot`: ``figure_``, ``map_ax_``, ``hist_ax_``, ``thumb_axes_``
    (empty without image inputs), ``rings_`` (the ring scatter on the map) and ``labels_`` (the
    ``#1``, ``#2``... annotations, placed by :func:`place_labels` so that none overlaps another or
    covers a point where there is room).
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
    epoch_label: str | None = None  # "epoch 0.26 · step 120" in a run recorded inside epochs; None: "epoch N"

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
                   subtitle=f"layer {maps.layer} · {maps.method}", n_epochs=len(run.epochs),
                   epoch_label=run.timeline.label(epoch) if run.manifest.record_unit == "step" else None)

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
                name = style.plain(style.short(self.class_names[self.labels[j]], 14))
                ax.set_title(f"#{i + 1}: {name}\n{int(self.events[j])}× forgotten", fontsize=8)
                self.thumb_axes_.append(ax)
        row = 1 if strip else 0
        self.map_ax_ = fig.add_subplot(grid[row, 0])
        self.hist_ax_ = fig.add_subplot(grid[row, 1])
        fig.canvas.draw()  # fix the axes sizes before the map is rasterised to fit them (canvas of the root figure)
        image = plot_map(self.map_ax_, self.coords, self.labels, self.class_names, bounds=self.bounds)
        ax = self.map_ax_
        xy = self.coords[self.top] if k else np.empty((0, 2))
        self.rings_ = ax.scatter(xy[:, 0], xy[:, 1], s=RING_AREA, zorder=4,
                                 **{k_: v for k_, v in style.RING_MARKER.items() if k_ != "marker"}, marker="o")
        self.labels_ = place_labels(ax, xy, [f"#{i + 1}" for i in range(k)], occupied=np.asarray(image.get_array())[..., 3] > 0)
        when = self.epoch_label or f"epoch {self.epoch}"
        ax.set_title(f"Most-forgotten examples ringed on the map at {when} ({style.plain(self.subtitle)})",
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
