"""The network drawing: one node per neuron, one edge per weight, animated over training.

Edge width grows with ``|w|``; edge colour shows how ``|w|`` changed against a reference
(red grew, blue shrank); the accuracy curve on the left (training blue, validation red, as in
``curves.png``) carries a black ring at the frame's epoch. One epoch shows 500 ms, as in the
time-lapse. The graph (layer sizes, layout, per-edge values) comes from :mod:`epochscope.network`,
which the HTML report shares; the colours from :mod:`epochscope.colors`.

- :func:`network_animation` writes the GIF/MP4 (``epochscope network``);
- :class:`NetworkDisplay` is one frame as a Display object (``from_run(run, epoch=3).plot()``);
- :class:`NetworkFigure` is the drawing both use.

Speed: the animation's figure is drawn once; each frame only restores that background and
redraws one ``LineCollection``, the nodes and the marker (Agg blitting), so a frame costs a
few milliseconds instead of a graph layout and a PNG round trip.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import stops_on_damage
from ..colors import CURVE_COLORS, MARKER, diverging_rgb
from ..network import MIN_LINEWIDTH, NetworkHistory, NetworkSettings, max_linewidth_for
from .animate import OctreePalette, check_animation_path, palette_sample, write_animation
from .figure import FigureDisplay, as_run, figure_to_array, new_figure, own_style, subfigure_at
from .style import DPI, FONT_SIZE, FRAME_MS, fit_lines, plain

__all__ = ["MAX_FIGSIZE", "MIN_FIGSIZE", "NetworkDisplay", "NetworkFigure", "fit_lines", "network_animation",
           "write_network_animation"]

#: The smallest and largest figure (inches at 100 dpi) the drawing accepts: below, labels and
#: legends cannot fit; above, a frame is larger than any screen.
MIN_FIGSIZE = (6.0, 3.0)
MAX_FIGSIZE = (40.0, 25.0)
# Pixels at the bottom for the legends and at the top for the epoch.
_BAND = 52.0
_TOP = 28.0

log = logging.getLogger("epochscope")

# Frames the GIF palette is fitted to (evenly spaced, first and last included).
PALETTE_FRAMES = 5


def network_animation(run: Any, out: str | os.PathLike[str] = "network.gif", *, reference: str = "previous",
                      top_k: int | None = None, top_by: str = "weight", shape: Sequence[int] | None = None,
                      figsize: tuple[float, float] = (12, 5), fps: float | None = None,
                      duration_ms: float | None = None, layers: Sequence[str] | None = None,
                      progress: bool = True) -> Path:
    """Animate a run's network: edges thicken, thin and change colour as the weights learn.

    Parameters
    ----------
    run : a :class:`~epochscope.Run` or the path of a run directory holding weights.
    out : the ``.gif`` or ``.mp4`` file to write (format from the suffix, checked first).
    reference : ``"previous"`` colours each edge by the change of ``|w|`` since the previous
        frame; ``"initial"`` since the first recorded epoch.
    top_k : draw exactly this many edges per layer (the largest by ``top_by``); ``None`` draws
        every edge unless a column is wider than 16 neurons (then two per node of the layer's
        larger column, e.g. 64 between two 32-node columns).
    top_by : ``"weight"`` (largest ``|w|``) or ``"change"`` (largest change of ``|w|``).
    shape : expected layer sizes, e.g. ``(4, 5, 5, 5, 3)``; a mismatch with the weights raises a
        ``ValueError`` naming the difference.
    figsize : figure size in inches (width, height), at 100 dpi; at least
        :data:`MIN_FIGSIZE` (smaller cannot hold the labels), at most :data:`MAX_FIGSIZE`.
    duration_ms : display time of one epoch (default: 500 ms, as the time-lapse).
    fps : frames per second instead of ``duration_ms`` (``fps=2`` is 500 ms).
    layers : weight layers to chain, in order (default: the longest chain of dense/conv layers).
    progress : show progress.

    A run file that cannot be read (a truncated or corrupted weights file, one that holds no array,
    a metrics row) raises :class:`~epochscope.RunError` naming it and ``epochscope check``. Weights
    that form no one chain, or epochs holding different layers, raise ``ValueError`` saying how to
    name the layers; epochs without weights or lacking a layer of the chain are left out, each
    said in a warning (see :meth:`~epochscope.network.NetworkHistory.from_run`).

    Returns the path written. It needs no 2-D maps, so it is drawn here directly rather than
    through :mod:`epochscope.pipeline`. Drawn off-screen: the user's matplotlib backend and
    figures are left as they were. Frames are streamed to the file one at a time.

    Example::

        epochscope.network_animation("demo-out/run", "network.gif", reference="initial")
    """
    # A weights file (or metrics row) that cannot be read stops it, naming the file and `epochscope
    # check`: never an animation without that epoch.
    with stops_on_damage(run, "the network animation is not written"):
        return write_network_animation(run, out, reference=reference, top_k=top_k, top_by=top_by, shape=shape,
                                       figsize=figsize, fps=fps, duration_ms=duration_ms, layers=layers,
                                       progress=progress)


def write_network_animation(run: Any, out: str | os.PathLike[str], *, reference: str = "previous",
                            top_k: int | None = None, top_by: str = "weight", shape: Sequence[int] | None = None,
                            figsize: tuple[float, float] = (12, 5), fps: float | None = None,
                            duration_ms: float | None = None, layers: Sequence[str] | None = None,
                            progress: bool = True, shown_as: Path | None = None) -> Path:
    """:func:`network_animation` for a caller that says itself what damage stops (``render``: the
    whole render): a run file that cannot be read raises the reader's
    :class:`~epochscope._errors.DamagedFileError` as it is. ``shown_as``: the path the log line
    names (``render`` writes into a staging folder and moves the file there afterwards)."""
    from .._output import check_output_file

    out = check_animation_path(out)
    settings = NetworkSettings(reference=reference, top_k=top_k, top_by=top_by)
    duration_ms = _frame_duration(fps, duration_ms)
    figsize = _check_figsize(figsize)
    check_output_file(out)
    run = as_run(run)
    history = NetworkHistory.from_run(run, layers=layers, shape=shape, progress=progress)
    metrics = {int(row["epoch"]): row for row in run.metrics}
    figure = NetworkFigure(history, metrics, settings, figsize=figsize, timeline=run.timeline)
    n = len(history)
    try:
        from .._progress import progress as bar

        frames = bar(range(n), desc="drawing network", enabled=progress, total=n)
        if out.suffix.lower() == ".gif":
            # The palette from a few frames first; then each frame goes to 8 bits as it is drawn.
            palette = OctreePalette([figure.render(i) for i in palette_sample(n, PALETTE_FRAMES)])
            path = write_animation((figure.render_image(i) for i in frames), out, duration_ms=duration_ms,
                                   palette=palette)
        else:
            path = write_animation((figure.render(i) for i in frames), out, duration_ms=duration_ms)
    finally:
        figure.close()
    log.info("network animation: %d frame%s (%s) -> %s", n, "" if n == 1 else "s",
             "-".join(map(str, history.sizes)), shown_as or path)
    return path


def _frame_duration(fps: float | None, duration_ms: float | None) -> float:
    if fps is not None and duration_ms is not None:
        raise ValueError(f"give fps or duration_ms, not both (got fps={fps!r}, duration_ms={duration_ms!r})")
    if fps is not None:
        if not (isinstance(fps, (int, float)) and not isinstance(fps, bool) and fps > 0 and math.isfinite(fps)):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        return 1000.0 / float(fps)
    if duration_ms is None:
        return FRAME_MS
    if not (isinstance(duration_ms, (int, float)) and not isinstance(duration_ms, bool) and duration_ms > 0
            and math.isfinite(duration_ms)):
        raise ValueError(f"duration_ms must be a positive number of milliseconds, got {duration_ms!r}")
    return float(duration_ms)


def _check_figsize(figsize: Any) -> tuple[float, float]:
    try:
        w, h = (float(v) for v in figsize)
    except (TypeError, ValueError) as err:
        raise ValueError(f"figsize must be (width, height) in inches, got {figsize!r}") from err
    (wmin, hmin), (wmax, hmax) = MIN_FIGSIZE, MAX_FIGSIZE
    if not (math.isfinite(w) and math.isfinite(h)) or w < wmin or h < hmin or w > wmax or h > hmax:
        why = ("smaller cannot hold the labels" if (w < wmin or h < hmin) else
               "a larger frame is bigger than any screen" if (w > wmax or h > hmax) else "give two finite numbers")
        raise ValueError(f"figsize must be between {wmin:g} x {hmin:g} and {wmax:g} x {hmax:g} inches (width, height; "
                         f"100 px an inch), got {w:g} x {h:g}; {why}")
    return w, h


def _curve(metrics: dict[int, dict[str, Any]], epochs: np.ndarray, key: str) -> np.ndarray:
    vals = [metrics.get(int(e), {}).get(key) for e in epochs]
    return np.array([v if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan for v in vals], float)


class NetworkFigure:
    """The drawing: accuracy curve on the left, the network on the right, the legends below.

    By default on a figure of its own (off-screen, ``figsize`` inches at 100 dpi) for an
    animation: the static parts are drawn once, and :meth:`render` updates one frame and
    returns its pixels ``(H, W, 3)`` uint8. Given ``figure`` (a Figure or SubFigure) with
    ``animated=False``, it draws into that figure like any picture (see :class:`NetworkDisplay`).
    The artists are attributes (``edges``, ``nodes``, ``marker``, ``vline``, ``epoch_text``,
    ``column_texts``, ``summary_texts``).

    The layout is in pixels, not fractions of the figure: title, labels and legends keep their
    room at any size from :data:`MIN_FIGSIZE` up, so nothing is cut off. Each column's label gets
    a slot as wide as the spacing between columns and is shrunk (then cut, with an ellipsis) to
    fit it, so labels never run into each other. Between each pair of columns, above the edges,
    the change of that layer's mean ``|w|`` (:meth:`NetworkHistory.layer_change`) reads where
    every edge of a layer changed alike.

    Example::

        fig = NetworkFigure(NetworkHistory.from_run(run), {r["epoch"]: r for r in run.metrics})
        pixels = fig.render(0)
        fig.close()
    """

    def __init__(self, history: NetworkHistory, metrics: dict[int, dict[str, Any]],
                 settings: NetworkSettings | None = None, *, figsize: tuple[float, float] = (12, 5),
                 figure: Any = None, animated: bool = True, timeline: Any = None) -> None:
        self.history, self.settings, self.animated = history, settings or NetworkSettings(), animated
        # A run recorded inside epochs (run.timeline.by_step): the curve's x axis is its fractional
        # epochs (or steps) and each frame is named "epoch 0.26 · step 120"; else the epoch numbers.
        self.timeline = timeline if timeline is not None and timeline.by_step else None
        self._own = figure is None
        # Its own figure in the library's style; a figure of the user's keeps the user's (see figure.own_style).
        with own_style() if self._own else nullcontext():
            self._build(metrics, figsize, figure)

    def _build(self, metrics: dict[int, dict[str, Any]], figsize: tuple[float, float], figure: Any) -> None:
        from matplotlib.collections import LineCollection

        history, animated = self.history, self.animated
        self.fig = new_figure(figsize, dpi=DPI) if figure is None else figure
        W, H = self.fig.bbox.width, self.fig.bbox.height
        self._renderer = _renderer(self.fig)
        frac = lambda x0, y0, x1, y1: (x0 / W, y0 / H, (x1 - x0) / W, (y1 - y0) / H)  # noqa: E731 - px box -> rect
        split = max(0.30 * W, 170.0)
        self.ax_curve = self.fig.add_axes(frac(58, _BAND + 40, split, H - 30))
        self.ax_net = self.fig.add_axes(frac(split + 20, _BAND + 2, W - 8, H - _TOP))
        self._draw_curve(metrics)
        ax = self.ax_net
        ax.set_axis_off()
        aw, ah = ax.bbox.width, ax.bbox.height
        n_cols = len(history.counts)
        slot = aw / n_cols  # every column is centred in a slot of this width
        # Column labels: fitted to their slot (smaller font first, then cut).
        labels = [plain(label).split("\n") for label in history.column_labels()]
        size = FONT_SIZE - 1
        for size in (FONT_SIZE - 1, FONT_SIZE - 2, FONT_SIZE - 3):
            if all(self._width(line, size) <= slot - 6 for lines in labels for line in lines):
                break
        labels = [fit_lines(lines, slot - 6, lambda t: self._width(t, size)) for lines in labels]
        line_h = size * DPI / 72.0 * 1.25
        label_h = max(len(lines) for lines in labels) * line_h + 4
        # Layer summaries above the edges, between columns.
        self._summary_size = FONT_SIZE - 2
        self._summary_forms = [f for f in ("mean |w| {:+.1f}%", "|w| {:+.1f}%", "{:+.1f}%")
                               if self._width(f.format(-99.9), self._summary_size) <= slot - 4] or ["{:+.0f}%"]
        summary_h = self._summary_size * DPI / 72.0 * 1.3 + 2 if n_cols > 1 else 0.0
        tallest = max(history.counts)
        free = max(ah - label_h - summary_h - 8, 10.0)
        self.node_radius = float(np.clip(0.32 * free / max(tallest - 1, 1), 2.0, 9.0))
        r = self.node_radius
        span = max(free - 2 * r, 1.0)  # pixels between the top and the bottom node centre
        ax.set_xlim(-0.5 / max(n_cols - 1, 1), 1 + 0.5 / max(n_cols - 1, 1)) if n_cols > 1 else ax.set_xlim(0, 1)
        ax.set_ylim(-(label_h + r + 4) / span, 1 + (summary_h + r + 4) / span)
        xy = history.node_xy
        per_layer = len(history.frame(0, self.settings)) / max(len(history.chain), 1)
        self.max_linewidth = max_linewidth_for(per_layer)
        self.edges = LineCollection([], animated=animated, capstyle="butt", zorder=1,
                                    alpha=1.0 if per_layer <= 40 else 0.8)
        ax.add_collection(self.edges)
        self.nodes = ax.scatter(xy[:, 0], xy[:, 1], s=(2 * r * 72.0 / DPI) ** 2, facecolor="white",
                                edgecolor="black", linewidths=1.0 if r > 3 else 0.6, zorder=3, animated=animated)
        xs = xy[history.node_offsets[:-1], 0]
        from matplotlib.transforms import blended_transform_factory

        below = blended_transform_factory(ax.transData, ax.transAxes)
        self.column_texts = [ax.text(x, (label_h - 2) / ah, "\n".join(lines), ha="center", va="top", fontsize=size,
                                     transform=below, linespacing=1.1)
                             for x, lines in zip(xs, labels)]
        self.summary_texts = [ax.text((a + b) / 2, 1 - 1 / ah, "", ha="center", va="top", fontsize=self._summary_size,
                                      transform=below, animated=animated)
                              for a, b in zip(xs[:-1], xs[1:])]
        self.epoch_text = self.fig.text((split + 20 + W - 8) / 2 / W, 1 - 6 / H, "", ha="center", va="top",
                                        fontsize=FONT_SIZE + 2, fontweight="bold", animated=animated)
        self._draw_legend()
        if animated:
            figure_to_array(self.fig)  # draws every static artist once; frames reuse this background
            self._background = self.fig.canvas.copy_from_bbox(self.fig.bbox)
            # The curves' legend as the background holds it, put back over the epoch line each frame.
            legend = self.ax_curve.get_legend()
            self._legend_region = (None if legend is None else
                                   self.fig.canvas.copy_from_bbox(legend.get_window_extent(self._renderer)))
            from .mapframe import TextStamper

            # Text that changes per frame is stamped with Pillow (~0.3 ms) rather than laid out by
            # matplotlib again (~5 ms a text, most of a frame's time).
            height = int(round(self.fig.bbox.height))
            self._stampers = [(t, TextStamper(t, height)) for t in [*self.summary_texts, self.epoch_text]]

    def _x(self, epochs: np.ndarray) -> np.ndarray:
        """Where records sit on the curve's x axis: their epochs, or a step run's fractional epochs / steps."""
        return self.timeline.values(epochs.tolist()) if self.timeline is not None else epochs

    def _width(self, text: str, size: float) -> float:
        """Width in pixels of ``text`` at font ``size``."""
        from matplotlib.text import Text

        t = Text(0, 0, text, fontsize=size, figure=self.fig.get_figure(root=True))
        return float(t.get_window_extent(self._renderer).width)

    # -- static parts
    def _draw_curve(self, metrics: dict[int, dict[str, Any]]) -> None:
        from matplotlib.ticker import MaxNLocator

        ax, epochs = self.ax_curve, np.array(sorted(metrics), dtype=np.int64)
        x = self._x(epochs)
        # The colours of curves.png: training blue, validation red (the marker is black).
        train, val = CURVE_COLORS["train"], CURVE_COLORS["val"]
        keys = [("accuracy", "training", train), ("val_accuracy", "validation", val)]
        if not any(np.isfinite(_curve(metrics, epochs, k)).any() for k, _, _ in keys):
            keys = [("loss", "training", train), ("val_loss", "validation", val)]
        self._curve_key = keys[0][0]
        plotted = []
        for key, label, color in keys:
            y = _curve(metrics, epochs, key)
            if np.isfinite(y).any():
                ok = np.isfinite(y)
                ax.plot(x[ok], y[ok], label=label, lw=1.6, color=color)
                plotted.append(key)
        if plotted and self._curve_key not in plotted:
            self._curve_key = plotted[0]
        self._curve_x, self._curve_y = epochs, _curve(metrics, epochs, self._curve_key)
        ax.set_xlabel(self.timeline.axis if self.timeline is not None else "epoch", fontsize=FONT_SIZE - 1)
        ax.tick_params(labelsize=FONT_SIZE - 2)
        ax.set_title(self._curve_key.replace("val_", "").capitalize() if plotted else "no metrics recorded",
                     fontsize=FONT_SIZE + 1)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=self.timeline is None, steps=[1, 2, 2.5, 5, 10]))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
        first, last = self._x(np.array([self.history.epochs[0], self.history.epochs[-1]]))
        if len(epochs):
            first, last = min(first, x[0]), max(last, x[-1])
        pad = max(0.5 if self.timeline is None else 0.0, 0.03 * (last - first))  # room for the marker at the first and last epoch
        ax.set_xlim(first - pad, last + pad)
        if plotted:
            self._place_legend(ax)
        # An opaque light grey, not a see-through dark line: a GIF palette keeps it exactly.
        self.vline = ax.axvline(first, color="#aaaaaa", lw=1.0, animated=self.animated)
        (self.marker,) = ax.plot([], [], "o", color=MARKER, ms=8, markerfacecolor="white", markeredgewidth=2.0,
                                 zorder=5, animated=self.animated)

    def _place_legend(self, ax: Any) -> None:
        """The curves' legend, placed once where the curves leave room, and above the epoch line.

        matplotlib's ``loc="best"`` seeks its place again at every draw and counts the epoch line as
        data: the still picture's legend jumped from epoch to epoch, and the animation kept the place
        of the first epoch while the line, blitted over the background, ran through the legend's
        text. So the place is sought once, from the curves alone (the line does not exist yet), and
        pinned; the legend has an opaque face and lies above the line (the marker above both), and
        each animation frame puts its pixels back over the line (:meth:`_draw_frame`).
        """
        options = dict(fontsize=FONT_SIZE - 2, frameon=True, facecolor="white", edgecolor="none", framealpha=1.0)
        best = ax.legend(loc="best", **options)
        box = best.get_window_extent(self._renderer).transformed(ax.transAxes.inverted())
        best.remove()
        legend = ax.legend(loc="lower left", bbox_to_anchor=(box.x0, box.y0), bbox_transform=ax.transAxes,
                           borderaxespad=0, **options)
        legend.set_zorder(4)  # above the epoch line (2), below the marker (5)

    def _draw_legend(self) -> None:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import ListedColormap, Normalize
        from matplotlib.lines import Line2D

        W, H = self.fig.bbox.width, self.fig.bbox.height
        cmap = ListedColormap(diverging_rgb(np.linspace(-1, 1, 256)))
        record = "record" if self.timeline is not None else "epoch"  # a step run's frames are records
        since = f"previous {record}" if self.settings.reference == "previous" else f"first {record}"
        bar_title = f"colour: change of |w| since {since}"
        bar_w = min(200.0, 0.3 * W)
        # The title and the end labels are centred on the bar and its ends: room for their halves.
        half_title = self._width(bar_title, FONT_SIZE - 2) / 2
        right = max(8 + self._width("grew", FONT_SIZE - 2) / 2, 8 + half_title - bar_w / 2)
        cax = self.fig.add_axes(((W - bar_w - right) / W, 16 / H, bar_w / W, 9 / H))
        bar = self.fig.colorbar(ScalarMappable(Normalize(-1, 1), cmap), cax=cax, orientation="horizontal",
                                ticks=[-1, 0, 1])
        bar.ax.set_xticklabels(["shrank", "same", "grew"], fontsize=FONT_SIZE - 2)
        bar.ax.tick_params(pad=1, length=2)
        bar.ax.set_title(bar_title, fontsize=FONT_SIZE - 2, pad=3)
        grey = diverging_rgb(np.zeros(1))[0]
        handles = [Line2D([], [], color=grey, lw=MIN_LINEWIDTH + (self.max_linewidth - MIN_LINEWIDTH) * f)
                   for f in (0.1, 0.5, 1.0)]
        k = self.history.effective_top_k(self.settings)
        title = "width: |w|" + (f" (strongest {k} per layer)" if k is not None else "")
        self.legend = self.fig.legend(handles, ["small", "medium", "large"], loc="lower left",
                                      bbox_to_anchor=(8 / W, 2 / H), ncol=3, fontsize=FONT_SIZE - 2, title=title,
                                      title_fontsize=FONT_SIZE - 2, frameon=False, handlelength=1.6,
                                      columnspacing=1.0, borderaxespad=0, borderpad=0.2)

    # -- per frame
    def update(self, index: int) -> None:
        """Set the animated artists to frame ``index`` (position in ``history.epochs``)."""
        frame = self.history.frame(index, self.settings)
        self.edges.set_segments(frame.segments(self.history.node_xy))
        self.edges.set_linewidths(frame.linewidths(self.max_linewidth))
        self.edges.set_color(frame.colors())
        epoch = frame.epoch
        hit = np.flatnonzero(self._curve_x == epoch)
        y = self._curve_y[hit[0]] if len(hit) else np.nan
        at = float(self._x(np.array([epoch]))[0])
        self.marker.set_data([at] if np.isfinite(y) else [], [y] if np.isfinite(y) else [])
        self.vline.set_xdata([at, at])
        self.epoch_text.set_text(self.timeline.label(epoch) if self.timeline is not None else f"epoch {epoch}")
        changes = self.history.layer_change(index, self.settings)
        scales = self.history.change_scales(self.settings.reference)
        for text, change, link in zip(self.summary_texts, changes, range(len(changes))):
            if not np.isfinite(change) or (self.settings.reference == "previous" and index == 0):
                text.set_text("")
                continue
            pct = round(100.0 * change, 1) + 0.0  # + 0.0: a change that rounds to zero reads "+0.0%", not "-0.0%"
            text.set_text(self._summary_forms[0].format(pct))
            mean_now = float(self.history.magnitudes[link][index].mean())
            text.set_color(diverging_rgb(np.array([np.clip(change * mean_now / scales[link], -1, 1)]))[0] * 0.85)

    def render(self, index: int) -> np.ndarray:
        """Draw frame ``index`` over the static background and return its pixels ``(H, W, 3)`` uint8
        (an animated figure only)."""
        self._draw_frame(index)
        return np.asarray(self.fig.canvas.buffer_rgba())[..., :3].copy()

    def _draw_frame(self, index: int) -> None:
        if not self.animated:
            raise ValueError("render() draws frames of an animated NetworkFigure; draw this one with its canvas")
        from matplotlib.colors import to_rgb

        self.update(index)
        canvas = self.fig.canvas
        canvas.restore_region(self._background)
        for ax, artist in ((self.ax_net, self.edges), (self.ax_net, self.nodes), (self.ax_curve, self.vline)):
            ax.draw_artist(artist)
        if self._legend_region is not None:  # the legend lies above the epoch line
            canvas.restore_region(self._legend_region)
        self.ax_curve.draw_artist(self.marker)
        rgb = np.asarray(canvas.buffer_rgba())[..., :3]
        for text, stamper in self._stampers:
            stamper.stamp(rgb, text.get_text(), max_lines=1, color=to_rgb(text.get_color()))

    def render_image(self, index: int):
        """Frame ``index`` as a Pillow RGB image (converted in C: faster than :meth:`render`'s strided copy)."""
        from PIL import Image

        self._draw_frame(index)
        rgba = np.asarray(self.fig.canvas.buffer_rgba())
        return Image.frombuffer("RGBA", (rgba.shape[1], rgba.shape[0]), rgba, "raw", "RGBA", 0, 1).convert("RGB")

    def close(self) -> None:
        """Drop the figure's contents when the figure is this drawing's own (frames already returned stay valid)."""
        if self._own:
            self.fig.clear()


def _renderer(fig: Any):
    root = fig.get_figure(root=True)
    canvas = root.canvas
    return canvas.get_renderer() if hasattr(canvas, "get_renderer") else root._get_renderer()


@dataclass
class NetworkDisplay(FigureDisplay):
    """One frame of the network drawing: the accuracy curve with the epoch marked, and the network
    whose edges show ``|w|`` (width) and its change (colour) at that epoch.

    Build it with :meth:`from_run`; :meth:`plot` draws it. Attributes after :meth:`plot`:
    ``figure_``, ``ax_curve_``, ``ax_net_``, ``edges_`` (the ``LineCollection``), ``nodes_``,
    ``marker_``, ``epoch_text_``.

    Example::

        NetworkDisplay.from_run(run, epoch=10, reference="initial").plot()   # in a notebook: shown inline
    """

    history: NetworkHistory
    metrics: dict[int, dict[str, Any]]
    settings: NetworkSettings = NetworkSettings()
    index: int = -1
    #: The run's :class:`~epochscope.run.timeline.Timeline` (a step run's curve axis and frame names), or ``None``.
    timeline: Any = None

    @property
    def epoch(self) -> int:
        """The epoch shown."""
        return int(self.history.epochs[self.index])

    @classmethod
    def from_run(cls, run: Any, *, epoch: int | None = None, reference: str = "previous", top_k: int | None = None,
                 top_by: str = "weight", layers: Sequence[str] | None = None,
                 shape: Sequence[int] | None = None) -> NetworkDisplay:
        """The network of ``run`` (a :class:`~epochscope.Run` or a run directory) at ``epoch``
        (default: the last epoch that holds weights); the settings as :func:`network_animation`'s.

        Raises ``ValueError`` for an epoch without weights (the message lists those with weights)
        or lacking a layer of the chain, for weights that form no one chain (as
        :meth:`~epochscope.network.NetworkHistory.from_run`), and :class:`~epochscope.RunError`
        for a run without weights or a damaged weights file (naming it and `epochscope check`).
        """
        settings = NetworkSettings(reference=reference, top_k=top_k, top_by=top_by)
        with stops_on_damage(run, "the network is not drawn"):
            run = as_run(run)
            history = NetworkHistory.from_run(run, layers=layers, shape=shape)
        epochs = history.epochs.tolist()
        if epoch is None:
            index = len(epochs) - 1
        elif int(epoch) in epochs:
            index = epochs.index(int(epoch))
        elif int(epoch) in history.left_out:
            lacks = history.left_out[int(epoch)]
            raise ValueError(f"epoch {epoch} lacks layer{'s' if len(lacks) > 1 else ''} {', '.join(lacks)} of the "
                             f"chain {' -> '.join(lk.name for lk in history.chain)}, so it is not drawn; epochs "
                             f"drawn: {epochs[0]}..{epochs[-1]} ({len(epochs)}); name layers it holds with layers= "
                             "to draw it")
        else:
            raise ValueError(f"epoch {epoch} holds no weights in the run {run.path}; epochs with weights: "
                             f"{epochs[0]}..{epochs[-1]} ({len(epochs)})")
        return cls(history=history, metrics={int(row["epoch"]): row for row in run.metrics}, settings=settings,
                   index=index, timeline=run.timeline)

    def plot(self, ax: Any = None, *, figsize: tuple[float, float] = (12, 5)) -> NetworkDisplay:
        """Draw on a new off-screen figure of ``figsize`` inches, or in the place of the Axes
        ``ax`` (its area holds both panels); returns ``self``."""
        target = new_figure(_check_figsize(figsize), dpi=DPI) if ax is None else subfigure_at(ax)
        drawing = NetworkFigure(self.history, self.metrics, self.settings, figure=target, animated=False,
                                timeline=self.timeline)
        drawing.update(self.index)
        self.figure_ = target if ax is None else target.get_figure(root=True)
        self.ax_curve_, self.ax_net_ = drawing.ax_curve, drawing.ax_net
        self.edges_, self.nodes_, self.marker_ = drawing.edges, drawing.nodes, drawing.marker
        self.epoch_text_ = drawing.epoch_text
        return self
