"""The network drawing: one node per neuron, one edge per weight, animated over training.

Edge width grows with ``|w|``; edge colour shows how ``|w|`` changed against a reference
(red grew, blue shrank); the accuracy curve on the left carries a red marker at the frame's
epoch. The graph (layer sizes, layout, per-edge values, colours) comes from
:mod:`epochscope.network_graph`, which the HTML report shares.

Speed: the figure is drawn once; each frame only restores that background and redraws
one ``LineCollection``, the nodes and the marker (Agg blitting), so a frame costs a few
milliseconds instead of a graph layout and a PNG round trip.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..network_graph import NetworkHistory, NetworkSettings, diverging_rgb
from .animate import check_animation_path, figure_to_array, write_animation
from .style import DPI, FONT_SIZE, plain, use_agg

__all__ = ["network_animation", "NetworkFigure", "shared_palette", "write_gif_shared_palette"]

log = logging.getLogger("epochscope")

MIN_LINEWIDTH = 0.3
MAX_LINEWIDTH = 5.0
MARKER_COLOR = "red"


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

    Returns the path written.

    Example::

        epochscope.network_animation("demo-out/run", "network.gif", reference="initial")
    """
    from ..run import Run, open_run

    out = check_animation_path(out)
    settings = NetworkSettings(reference=reference, top_k=top_k, top_by=top_by)
    if not (isinstance(fps, (int, float)) and not isinstance(fps, bool) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    figsize = _check_figsize(figsize)
    run = run if isinstance(run, Run) else open_run(run)
    history = NetworkHistory.from_run(run, layers=layers, shape=shape, progress=progress)
    metrics = {int(row["epoch"]): row for row in run.metrics}
    figure = NetworkFigure(history, metrics, settings, figsize=figsize)
    n = len(history)
    try:
        from .._progress import progress as bar

        frames = bar(range(n), desc="drawing network", enabled=progress, total=n)
        if out.suffix.lower() == ".gif":
            # Palette from a few frames first, then each frame goes straight to 8 bits, so memory
            # holds one byte per pixel per frame, not three.
            palette = shared_palette([figure.render(i) for i in _palette_picks(n)])
            images = [_quantize(figure.render_image(i), palette) for i in frames]
            path = _save_gif(images, out, duration_ms=1000.0 / fps)
        else:
            path = write_animation([figure.render(i) for i in frames], out, duration_ms=1000.0 / fps)
    finally:
        figure.close()
    log.info("network animation: %d frames (%s) -> %s", n, "-".join(map(str, history.sizes)), path)
    return path


def _palette_picks(n: int) -> list[int]:
    return sorted({0, n // 4, n // 2, (3 * n) // 4, n - 1})


def shared_palette(samples: Sequence[np.ndarray]):
    """One 255-colour palette (a Pillow ``P`` image) fit by an octree to sample ``(H, W, 3)`` frames."""
    from PIL import Image

    return Image.fromarray(np.concatenate(list(samples), axis=0)).quantize(255, method=Image.Quantize.FASTOCTREE)


def _quantize(image, palette):
    from PIL import Image

    return image.quantize(palette=palette, dither=Image.Dither.NONE)


def _save_gif(images: list, path: Path, *, duration_ms: float, loop: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    images[0].save(tmp, save_all=True, append_images=images[1:], duration=int(round(duration_ms)), loop=loop,
                   optimize=False, disposal=1)
    tmp.replace(path)  # a killed render never leaves a half-written file under the final name
    return path


def write_gif_shared_palette(frames: Sequence[np.ndarray], path: str | os.PathLike[str], *,
                             duration_ms: float = 100, loop: int = 0) -> Path:
    """Write ``(H, W, 3)`` uint8 frames as a looping GIF that uses one palette for every frame.

    The network's frames share their whole background, so one palette (an octree fit to a few
    sampled frames) serves all of them: a colour never shifts from frame to frame, and mapping
    a frame onto a fixed palette costs ~3 ms instead of the ~60-90 ms of a per-frame adaptive
    (median cut) palette at 1200 x 500 pixels.
    """
    from PIL import Image

    path = check_animation_path(path)
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to write")
    if any(f.shape != frames[0].shape for f in frames):
        raise ValueError("all frames must have the same size")
    palette = shared_palette([frames[i] for i in _palette_picks(len(frames))])
    return _save_gif([_quantize(Image.fromarray(f), palette) for f in frames], path, duration_ms=duration_ms,
                     loop=loop)


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
    """The animated figure: accuracy curve on the left, the network on the right.

    Draws the static parts once; :meth:`render` updates one frame and returns its pixels
    ``(H, W, 3)`` uint8. The artists are attributes (``edges``, ``nodes``, ``marker``,
    ``epoch_text``) as in a scikit-learn display.

    Example::

        fig = NetworkFigure(NetworkHistory.from_run(run), {r["epoch"]: r for r in run.metrics})
        pixels = fig.render(0)
        fig.close()
    """

    def __init__(self, history: NetworkHistory, metrics: dict[int, dict[str, Any]],
                 settings: NetworkSettings = NetworkSettings(), *, figsize: tuple[float, float] = (12, 5)) -> None:
        use_agg()
        import matplotlib.pyplot as plt
        from matplotlib.collections import LineCollection

        self.history, self.settings = history, settings
        self.fig = plt.figure(figsize=figsize, dpi=DPI)
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
        per_layer = len(history.frame(0, settings)) / max(len(history.chain), 1)
        self.max_linewidth = float(np.clip(MAX_LINEWIDTH * np.sqrt(40.0 / max(per_layer, 1.0)), 1.2, MAX_LINEWIDTH))
        self.edges = LineCollection([], animated=True, capstyle="butt", zorder=1,
                                    alpha=1.0 if per_layer <= 40 else 0.75)
        ax.add_collection(self.edges)
        node_size = float(np.clip(2400.0 / max(history.counts), 12, 260))
        self.nodes = ax.scatter(xy[:, 0], xy[:, 1], s=node_size, facecolor="white", edgecolor="black",
                                linewidths=1.0, zorder=3, animated=True)
        xs = xy[history.node_offsets[:-1], 0]
        for x, label in zip(xs, history.column_labels()):
            ax.text(x, -0.06, plain(label), ha="center", va="top", fontsize=FONT_SIZE - 1)
        self.epoch_text = ax.text(0.5, 1.05, "", ha="center", va="bottom", fontsize=FONT_SIZE + 2,
                                  fontweight="bold", animated=True, transform=ax.transAxes)
        self._draw_legend()
        figure_to_array(self.fig)  # draws every static artist once; frames reuse this background
        self._background = self.fig.canvas.copy_from_bbox(self.fig.bbox)

    # -- static parts
    def _draw_curve(self, metrics: dict[int, dict[str, Any]]) -> None:
        ax, epochs = self.ax_curve, np.array(sorted(metrics), dtype=np.int64)
        keys = [("accuracy", "train"), ("val_accuracy", "validation")]
        if not any(np.isfinite(_curve(metrics, epochs, k)).any() for k, _ in keys):
            keys = [("loss", "train"), ("val_loss", "validation")]
        self._curve_key = keys[0][0]
        plotted = []
        for key, label in keys:
            y = _curve(metrics, epochs, key)
            if np.isfinite(y).any():
                ok = np.isfinite(y)
                ax.plot(epochs[ok], y[ok], label=label, lw=1.6)
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
        self.vline = ax.axvline(first, color=MARKER_COLOR, lw=1.0, alpha=0.5, animated=True)
        (self.marker,) = ax.plot([], [], "o", color=MARKER_COLOR, ms=9, markeredgecolor="darkred", zorder=5,
                                 animated=True)

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
        self.edges.set_linewidths(MIN_LINEWIDTH + (self.max_linewidth - MIN_LINEWIDTH) * frame.width)
        self.edges.set_color(frame.colors())
        epoch = frame.epoch
        hit = np.flatnonzero(self._curve_x == epoch)
        y = self._curve_y[hit[0]] if len(hit) else np.nan
        self.marker.set_data([epoch] if np.isfinite(y) else [], [y] if np.isfinite(y) else [])
        self.vline.set_xdata([epoch, epoch])
        self.epoch_text.set_text(f"epoch {epoch}")

    def render(self, index: int) -> np.ndarray:
        """Draw frame ``index`` over the static background and return its pixels ``(H, W, 3)`` uint8."""
        self._draw_frame(index)
        return np.asarray(self.fig.canvas.buffer_rgba())[..., :3].copy()

    def _draw_frame(self, index: int) -> None:
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
        """Release the matplotlib figure."""
        import matplotlib.pyplot as plt

        plt.close(self.fig)
