"""The network drawing: one node per neuron, one edge per weight, animated over training.

Edge width grows with ``|w|``; edge colour shows how ``|w|`` changed against a reference
(red grew, blue shrank); the accuracy curve on the left carries a red marker at the frame's
epoch. The graph (layer sizes, layout, per-edge values) comes from :mod:`epochscope.network`,
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
import os
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..colors import MARKED_CURVE_COLORS, MARKER, MARKER_EDGE, diverging_rgb
from ..network import MAX_LINEWIDTH, MIN_LINEWIDTH, NetworkHistory, NetworkSettings
from .animate import OctreePalette, check_animation_path, palette_sample, write_animation
from .figure import FigureDisplay, as_run, figure_to_array, new_figure, own_style, subfigure_at
from .style import DPI, FONT_SIZE, plain

__all__ = ["NetworkDisplay", "NetworkFigure", "network_animation"]

log = logging.getLogger("epochscope")

# Frames the GIF palette is fitted to (evenly spaced, first and last included).
PALETTE_FRAMES = 5


def network_animation(run: Any, out: str | os.PathLike[str] = "network.gif", *, reference: str = "previous",
                      top_k: int | None = None, top_by: str = "weight", shape: Sequence[int] | None = None,
                      figsize: tuple[float, float] = (12, 5), fps: float = 10, layers: Sequence[str] | None = None,
                      progress: bool = True) -> Path:
    """Animate a run's network: edges thicken, thin and change colour as the weights learn.

    Parameters
    ----------
    run : a :class:`~epochscope.Run` or the path of a run directory holding weights.
    out : the ``.gif`` or ``.mp4`` file to write (format from the suffix, checked first).
    reference : ``"previous"`` colours each edge by the change of ``|w|`` since the previous
        frame; ``"initial"`` since the first recorded epoch.
    top_k : draw exactly this many edges per layer (the largest by ``top_by``); ``None`` draws
        every edge unless a column is wider than 16 neurons (then 150 per layer).
    top_by : ``"weight"`` (largest ``|w|``) or ``"change"`` (largest change of ``|w|``).
    shape : expected layer sizes, e.g. ``(4, 5, 5, 5, 3)``; a mismatch with the weights raises a
        ``ValueError`` naming the layer.
    figsize : figure size in inches (width, height), at 100 dpi.
    fps : frames per second.
    layers : weight layers to chain, in order (default: the longest chain of dense/conv layers).
    progress : show a progress bar.

    Returns the path written. It needs no 2-D maps, so it is drawn here directly rather than
    through :mod:`epochscope.pipeline`. Drawn off-screen: the user's matplotlib backend and
    figures are left as they were.

    Example::

        epochscope.network_animation("demo-out/run", "network.gif", reference="initial")
    """
    out = check_animation_path(out)
    settings = NetworkSettings(reference=reference, top_k=top_k, top_by=top_by)
    if not (isinstance(fps, (int, float)) and not isinstance(fps, bool) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    figsize = _check_figsize(figsize)
    run = as_run(run)
    history = NetworkHistory.from_run(run, layers=layers, shape=shape, progress=progress)
    metrics = {int(row["epoch"]): row for row in run.metrics}
    figure = NetworkFigure(history, metrics, settings, figsize=figsize)
    n = len(history)
    try:
        from .._progress import progress as bar

        frames = bar(range(n), desc="drawing network", enabled=progress, total=n)
        if out.suffix.lower() == ".gif":
            # The palette from a few frames first; then each frame goes to 8 bits as it is drawn.
            palette = OctreePalette([figure.render(i) for i in palette_sample(n, PALETTE_FRAMES)])
            path = write_animation((figure.render_image(i) for i in frames), out, duration_ms=1000.0 / fps,
                                   palette=palette)
        else:
            path = write_animation((figure.render(i) for i in frames), out, duration_ms=1000.0 / fps)
    finally:
        figure.close()
    log.info("network animation: %d frames (%s) -> %s", n, "-".join(map(str, history.sizes)), path)
    return path


def _check_figsize(figsize: Any) -> tuple[float, float]:
    try:
        w, h = (float(v) for v in figsize)
    except (TypeError, ValueError) as err:
        raise ValueError(f"figsize must be (width, height) in inches, got {figsize!r}") from err
    if w <= 0 or h <= 0:
        raise ValueError(f"figsize must be positive (width, height) in inches, got {figsize!r}")
    return w, h


def _curve(metrics: dict[int, dict[str, Any]], epochs: np.ndarray, key: str) -> np.ndarray:
    vals = [metrics.get(int(e), {}).get(key) for e in epochs]
    return np.array([v if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan for v in vals], float)


class NetworkFigure:
    """The drawing: accuracy curve on the left, the network on the right.

    By default on a figure of its own (off-screen, ``figsize`` inches at 100 dpi) for an
    animation: the static parts are drawn once, and :meth:`render` updates one frame and
    returns its pixels ``(H, W, 3)`` uint8. Given ``figure`` (a Figure or SubFigure) with
    ``animated=False``, it draws into that figure like any picture (see :class:`NetworkDisplay`).
    The artists are attributes (``edges``, ``nodes``, ``marker``, ``vline``, ``epoch_text``).

    Example::

        fig = NetworkFigure(NetworkHistory.from_run(run), {r["epoch"]: r for r in run.metrics})
        pixels = fig.render(0)
        fig.close()
    """

    def __init__(self, history: NetworkHistory, metrics: dict[int, dict[str, Any]],
                 settings: NetworkSettings | None = None, *, figsize: tuple[float, float] = (12, 5),
                 figure: Any = None, animated: bool = True) -> None:
        self.history, self.settings, self.animated = history, settings or NetworkSettings(), animated
        self._own = figure is None
        # Its own figure in the library's style; a figure of the user's keeps the user's (see figure.own_style).
        with own_style() if self._own else nullcontext():
            self._build(metrics, figsize, figure)

    def _build(self, metrics: dict[int, dict[str, Any]], figsize: tuple[float, float], figure: Any) -> None:
        from matplotlib.collections import LineCollection

        history, animated = self.history, self.animated
        self.fig = new_figure(figsize, dpi=DPI) if figure is None else figure
        self.ax_curve = self.fig.add_axes((0.06, 0.17, 0.25, 0.70))
        self.ax_net = self.fig.add_axes((0.36, 0.12, 0.62, 0.80))
        self._draw_curve(metrics)
        ax = self.ax_net
        ax.set_axis_off()
        ax.set_xlim(-0.06, 1.06)
        ax.set_ylim(-0.17, 1.06)
        xy = history.node_xy
        # Many edges per layer (top-k on a wide network) would merge into a wall of colour at
        # full width: thin them with the square root of the edge count beyond 40 per layer.
        per_layer = len(history.frame(0, self.settings)) / max(len(history.chain), 1)
        self.max_linewidth = float(np.clip(MAX_LINEWIDTH * np.sqrt(40.0 / max(per_layer, 1.0)), 1.2, MAX_LINEWIDTH))
        self.edges = LineCollection([], animated=animated, capstyle="butt", zorder=1,
                                    alpha=1.0 if per_layer <= 40 else 0.75)
        ax.add_collection(self.edges)
        node_size = float(np.clip(2400.0 / max(history.counts), 12, 260))
        self.nodes = ax.scatter(xy[:, 0], xy[:, 1], s=node_size, facecolor="white", edgecolor="black",
                                linewidths=1.0, zorder=3, animated=animated)
        xs = xy[history.node_offsets[:-1], 0]
        for x, label in zip(xs, history.column_labels()):
            ax.text(x, -0.06, plain(label), ha="center", va="top", fontsize=FONT_SIZE - 1)
        self.epoch_text = ax.text(0.5, 1.05, "", ha="center", va="bottom", fontsize=FONT_SIZE + 2,
                                  fontweight="bold", animated=animated, transform=ax.transAxes)
        self._draw_legend()
        if animated:
            figure_to_array(self.fig)  # draws every static artist once; frames reuse this background
            self._background = self.fig.canvas.copy_from_bbox(self.fig.bbox)

    # -- static parts
    def _draw_curve(self, metrics: dict[int, dict[str, Any]]) -> None:
        ax, epochs = self.ax_curve, np.array(sorted(metrics), dtype=np.int64)
        train, val = MARKED_CURVE_COLORS["train"], MARKED_CURVE_COLORS["val"]
        keys = [("accuracy", "train", train), ("val_accuracy", "validation", val)]
        if not any(np.isfinite(_curve(metrics, epochs, k)).any() for k, _, _ in keys):
            keys = [("loss", "train", train), ("val_loss", "validation", val)]
        self._curve_key = keys[0][0]
        plotted = []
        for key, label, color in keys:
            y = _curve(metrics, epochs, key)
            if np.isfinite(y).any():
                ok = np.isfinite(y)
                ax.plot(epochs[ok], y[ok], label=label, lw=1.6, color=color)
                plotted.append(key)
        if plotted and self._curve_key not in plotted:
            self._curve_key = plotted[0]
        self._curve_x, self._curve_y = epochs, _curve(metrics, epochs, self._curve_key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(self._curve_key.replace("val_", "") if plotted else "")
        ax.set_title(self._curve_key.replace("val_", "").capitalize() if plotted else "no metrics recorded",
                     fontsize=FONT_SIZE + 1)
        if plotted:
            ax.legend(loc="lower right" if "acc" in self._curve_key else "upper right", fontsize=FONT_SIZE - 1)
        else:
            ax.text(0.5, 0.5, "no metrics", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.grid(alpha=0.3)
        first, last = (self.history.epochs[0], self.history.epochs[-1])
        if len(epochs):
            first, last = min(first, epochs[0]), max(last, epochs[-1])
        pad = max(0.5, 0.03 * (last - first))  # room for the marker at the first and last epoch
        ax.set_xlim(first - pad, last + pad)
        self.vline = ax.axvline(first, color=MARKER, lw=1.0, alpha=0.5, animated=self.animated)
        (self.marker,) = ax.plot([], [], "o", color=MARKER, ms=9, markeredgecolor=MARKER_EDGE, zorder=5,
                                 animated=self.animated)

    def _draw_legend(self) -> None:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import ListedColormap, Normalize
        from matplotlib.lines import Line2D

        cmap = ListedColormap(diverging_rgb(np.linspace(-1, 1, 256)))
        cax = self.fig.add_axes((0.74, 0.055, 0.2, 0.022))
        bar = self.fig.colorbar(ScalarMappable(Normalize(-1, 1), cmap), cax=cax, orientation="horizontal",
                                ticks=[-1, 0, 1])
        bar.ax.set_xticklabels(["shrank", "same", "grew"], fontsize=FONT_SIZE - 2)
        since = "previous epoch" if self.settings.reference == "previous" else "first epoch"
        bar.ax.set_title(f"colour: change of |w| since {since}", fontsize=FONT_SIZE - 2)
        grey = diverging_rgb(np.zeros(1))[0]
        handles = [Line2D([], [], color=grey, lw=MIN_LINEWIDTH + (self.max_linewidth - MIN_LINEWIDTH) * f)
                   for f in (0.1, 0.5, 1.0)]
        k = self.history.effective_top_k(self.settings)
        title = "width: |w|" + (f" (top {k} by {'|w|' if self.settings.top_by == 'weight' else 'change'} per layer)"
                                if k is not None else "")
        self.fig.legend(handles, ["small", "medium", "large"], loc="lower left", bbox_to_anchor=(0.37, 0.0),
                        ncol=3, fontsize=FONT_SIZE - 2, title=title, title_fontsize=FONT_SIZE - 2, frameon=False)

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
        self.marker.set_data([epoch] if np.isfinite(y) else [], [y] if np.isfinite(y) else [])
        self.vline.set_xdata([epoch, epoch])
        self.epoch_text.set_text(f"epoch {epoch}")

    def render(self, index: int) -> np.ndarray:
        """Draw frame ``index`` over the static background and return its pixels ``(H, W, 3)`` uint8
        (an animated figure only)."""
        self._draw_frame(index)
        return np.asarray(self.fig.canvas.buffer_rgba())[..., :3].copy()

    def _draw_frame(self, index: int) -> None:
        if not self.animated:
            raise ValueError("render() draws frames of an animated NetworkFigure; draw this one with its canvas")
        self.update(index)
        canvas = self.fig.canvas
        canvas.restore_region(self._background)
        for ax, artist in ((self.ax_net, self.edges), (self.ax_net, self.nodes), (self.ax_net, self.epoch_text),
                           (self.ax_curve, self.vline), (self.ax_curve, self.marker)):
            ax.draw_artist(artist)

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
        and :class:`~epochscope.RunError` for a run without weights.
        """
        settings = NetworkSettings(reference=reference, top_k=top_k, top_by=top_by)
        run = as_run(run)
        history = NetworkHistory.from_run(run, layers=layers, shape=shape)
        epochs = history.epochs.tolist()
        if epoch is None:
            index = len(epochs) - 1
        elif int(epoch) in epochs:
            index = epochs.index(int(epoch))
        else:
            raise ValueError(f"epoch {epoch} holds no weights in the run {run.path}; epochs with weights: "
                             f"{epochs[0]}..{epochs[-1]} ({len(epochs)})")
        return cls(history=history, metrics={int(row["epoch"]): row for row in run.metrics}, settings=settings,
                   index=index)

    def plot(self, ax: Any = None, *, figsize: tuple[float, float] = (12, 5)) -> NetworkDisplay:
        """Draw on a new off-screen figure of ``figsize`` inches, or in the place of the Axes
        ``ax`` (its area holds both panels); returns ``self``."""
        target = new_figure(_check_figsize(figsize), dpi=DPI) if ax is None else subfigure_at(ax)
        drawing = NetworkFigure(self.history, self.metrics, self.settings, figure=target, animated=False)
        drawing.update(self.index)
        self.figure_ = target if ax is None else target.get_figure(root=True)
        self.ax_curve_, self.ax_net_ = drawing.ax_curve, drawing.ax_net
        self.edges_, self.nodes_, self.marker_ = drawing.edges, drawing.nodes, drawing.marker
        self.epoch_text_ = drawing.epoch_text
        return self
