"""One map frame, drawn fast: the picture every time-lapse frame and the train + test map share.

Matplotlib draws what stays the same (axes frame, legend, subtitle) once; each frame then
copies that background, stamps the points into its pixels with numpy
(:mod:`epochscope.draw.raster`), lets matplotlib blit the few markers (misclassified test
points, rings, points beyond the frame) with ``draw_artist`` when there are any, and stamps
the title and caption with Pillow in the same font.

Test points are discs in the colour of their true class with a dark outline, over the probe
points drawn pale; a black cross marks the misclassified ones. Points that lie beyond the
frame (the axes hold robust bounds, so a few outliers may) are not lost: each is drawn at the
frame's edge as a triangle pointing its way, and the caption says how many.

A frame of 5,000 points costs about 20 ms of CPU instead of the ~250 ms a fresh
``plt.scatter`` figure costs, and every frame has exactly the same size, axes and legend.

Example::

    frames = MapFrameRenderer(maps.bounds, run.labels, run.class_names, subtitle="layer hidden · umap")
    img = frames.draw(maps.frame(3), title="Epoch 3", caption="accuracy 0.91")
    frames.close()
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..colors import INK, MUTED, TEST_POINT, class_colors, hex_to_rgb
from . import style
from .figure import new_figure, own_style
from .raster import composite_sparse, disc_radius_for, splat_discs_sparse

__all__ = ["MapFrameRenderer", "TextStamper", "beyond_note", "padded_bounds"]

#: How far toward white the probe points are drawn when test points lie over them.
PROBE_FADE = 0.6
# Triangle markers for points beyond each side of the frame (matplotlib marker names).
_SIDES = {"left": "<", "right": ">", "top": "^", "bottom": "v"}
_EDGE_INSET = 5.0  # pixels between the frame's edge and the tip of such a triangle


def beyond_note(n: int) -> str:
    """The caption's note for ``n`` points beyond the frame (empty for none).

    >>> beyond_note(1), beyond_note(22)
    ('1 point beyond the frame, drawn at its edge as ▸', '22 points beyond the frame, drawn at its edge as ▸')
    """
    if n <= 0:
        return ""
    return f"{n:,} point{'' if n == 1 else 's'} beyond the frame, drawn at its edge as ▸"


class TextStamper:
    """Draws one line of text where a matplotlib ``Text`` sits, with its font, size, colour and
    alignment, through Pillow's FreeType: ~0.3 ms a line against ~5-8 ms for matplotlib's
    ``draw_artist`` (which lays out and renders every glyph again on each frame). For text that
    changes every frame of an animation (titles, captions, the network's layer summaries)."""

    # matplotlib's alignment -> Pillow's text anchor (horizontal, vertical).
    _H = {"left": "l", "center": "m", "right": "r"}
    _V = {"bottom": "d", "top": "a", "center": "m", "baseline": "s", "center_baseline": "m"}

    def __init__(self, text, height: int) -> None:
        from matplotlib import font_manager
        from matplotlib.colors import to_rgb
        from PIL import ImageFont

        fig = text.get_figure(root=True)
        px = text.get_fontsize() * fig.dpi / 72.0
        path = font_manager.findfont(text.get_fontproperties())
        self.font = ImageFont.truetype(path, size=max(1, int(round(px))))
        x, y = text.get_transform().transform(text.get_position())
        self.x, self.y = int(round(x)), height - int(round(y))  # image column and row of the anchor
        self.anchor = self._H.get(text.get_horizontalalignment(), "l") + self._V.get(text.get_verticalalignment(), "d")
        self.color = np.array(to_rgb(text.get_color()), dtype=np.float32) * 255

    def wrap(self, text: str, width: float, max_lines: int) -> list[str]:
        """``text`` broken at spaces into lines of at most ``width`` pixels (its own line breaks
        kept), at most ``max_lines`` of them: the last one kept ends with an ellipsis."""
        lines: list[str] = []
        for paragraph in text.split("\n"):
            line = ""
            for word in paragraph.split(" "):
                trial = f"{line} {word}" if line else word
                if line and self.font.getlength(trial) > width:
                    lines.append(line)
                    line = word
                else:
                    line = trial
            lines.append(line)
        if len(lines) > max_lines:
            lines = lines[:max_lines]
            lines[-1] += " …"
        for k, line in enumerate(lines):  # a single word wider than the line: cut it
            while self.font.getlength(line) > width and len(line) > 1:
                line = line[:-2] + "…"
            lines[k] = line
        return lines

    def stamp(self, frame: np.ndarray, text: str, *, max_lines: int = 2, color=None) -> None:
        """Draw ``text`` into ``frame`` (``(H, W, 3)`` uint8, a view is fine), wrapped to the frame's
        width in at most ``max_lines`` lines that grow upwards from the anchor (the last line sits
        where a one-line text would); ``color`` (RGB in [0, 1]) overrides the text's own."""
        if not text:
            return
        width = frame.shape[1] - self.x - 8 if self.anchor[0] == "l" else frame.shape[1]
        fits = "\n" not in text and self.font.getlength(text) <= width
        lines = [text] if fits else self.wrap(text, width, max_lines)
        step = int(round(self.font.size * 1.3))
        rgb = self.color if color is None else np.asarray(color, dtype=np.float32)[:3] * 255
        for k, line in enumerate(lines):
            self._stamp_line(frame, line, self.y - (len(lines) - 1 - k) * step, rgb)

    def _stamp_line(self, frame: np.ndarray, text: str, y: int, rgb: np.ndarray) -> None:
        from PIL import Image, ImageDraw

        if not text:
            return
        # The anchor follows matplotlib's alignment: "ld" is ha="left", va="bottom".
        left, top, right, bottom = self.font.getbbox(text, anchor=self.anchor)
        w, h = right - left, bottom - top
        if w <= 0 or h <= 0:
            return
        mask = Image.new("L", (w, h), 0)
        ImageDraw.Draw(mask).text((-left, -top), text, font=self.font, fill=255, anchor=self.anchor)
        alpha = np.asarray(mask, dtype=np.float32) / 255.0
        y0, x0 = y + top, self.x + left
        fy0, fx0 = max(y0, 0), max(x0, 0)
        fy1, fx1 = min(y0 + h, frame.shape[0]), min(x0 + w, frame.shape[1])
        if fy1 <= fy0 or fx1 <= fx0:
            return
        a = alpha[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0, None]
        region = frame[fy0:fy1, fx0:fx1].astype(np.float32)
        frame[fy0:fy1, fx0:fx1] = (region * (1 - a) + rgb * a + 0.5).astype(np.uint8)


def padded_bounds(bounds: Sequence[float], aspect: float, *, pad: float = 0.04) -> tuple[float, float, float, float]:
    """``(xmin, xmax, ymin, ymax)`` grown by ``pad`` on each side and widened along one axis so
    that ``width / height == aspect`` (one map unit is as long across as up: circles stay round).

    >>> padded_bounds((0, 1, 0, 1), 2.0, pad=0)
    (-0.5, 1.5, 0.0, 1.0)
    """
    xmin, xmax, ymin, ymax = (float(b) for b in bounds)
    if not all(np.isfinite([xmin, xmax, ymin, ymax])) or xmax < xmin or ymax < ymin:
        raise ValueError(f"bounds must be finite (xmin, xmax, ymin, ymax) with min <= max, got {tuple(bounds)}")
    w = max(xmax - xmin, 1e-9) * (1 + 2 * pad)
    h = max(ymax - ymin, 1e-9) * (1 + 2 * pad)
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    return (cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2)


class MapFrameRenderer:
    """Draws frames of one 2-D map with fixed axes, class colours and legend.

    Parameters
    ----------
    bounds : (xmin, xmax, ymin, ymax)
        The data range every frame shows (e.g. ``maps.bounds``, fixed across epochs).
    labels : (n,) int
        Class of every point (index into ``class_names``); sets the point colours.
    class_names : sequence of str
        Names shown in the legend (long names shortened, see :func:`epochscope.draw.style.short`).
    subtitle : str
        Small grey line under the title (e.g. the layer and method).
    figsize, dpi :
        Frame size; the default is 800 x 600 pixels.
    radius : float, optional
        Point radius in pixels; by default chosen from the number of points.
    order_seed : int
        Points are drawn in one fixed random order, the same in every frame, so that no
        class always lies on top of the others and nothing flickers between frames.
    test_legend : bool
        Add legend entries for pale probe points, test points and misclassified test points
        (for frames that show the test set).

    Attributes
    ----------
    fig, ax : the matplotlib figure and map axes (for tests and extensions).
    xlim, ylim : the axis limits every frame shares.
    shape : ``(height, width, 3)`` of every frame.
    radius, test_radius : disc radii in pixels of probe and test points.
    beyond : how many points the last frame drew at its edge (beyond the frame).

    Example
    -------
    >>> r = MapFrameRenderer((0, 1, 0, 1), np.array([0, 1]), ["a", "b"])  # doctest: +SKIP
    >>> img = r.draw(np.array([[0.2, 0.3], [0.8, 0.7]]), title="Epoch 0")  # doctest: +SKIP
    """

    def __init__(self, bounds: Sequence[float], labels: np.ndarray, class_names: Sequence[str], *,
                 subtitle: str = "", figsize: tuple[float, float] = style.MAP_FIGSIZE, dpi: int = style.DPI,
                 radius: float | None = None, order_seed: int = 0, test_legend: bool = False) -> None:
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        self.class_names = [str(c) for c in class_names]
        n_classes = len(self.class_names)
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= n_classes):
            raise ValueError(f"labels must lie in 0..{n_classes - 1} (one per class name), "
                             f"got {self.labels.min()}..{self.labels.max()}")
        self.colors = class_colors(n_classes)
        self._order = np.random.default_rng(order_seed).permutation(len(self.labels))
        self._point_colors = self.colors[self.labels[self._order]].astype(np.float32)

        # Its own white figure, drawn with matplotlib's defaults, not the user's style (see figure.own_style).
        with own_style():
            # A bare Figure on its own Agg canvas: no pyplot state, whatever backend the user runs.
            self.fig = new_figure(figsize, dpi=dpi)
            # At most 20 names a column: a 600-pixel frame holds 20 rows of legend, not 30.
            shown_classes = n_classes if n_classes <= style.MAX_LEGEND_CLASSES else 0
            legend_cols = min(max(1, -(-shown_classes // 20)), 3)
            right = (0.80, 0.70, 0.58)[legend_cols - 1]
            self.ax = self.fig.add_axes((0.03, 0.10, right - 0.05, 0.78))
            style.style_map_axes(self.ax)
            axes_w, axes_h = self.ax.bbox.width, self.ax.bbox.height
            xmin, xmax, ymin, ymax = padded_bounds(bounds, axes_w / axes_h)
            self.xlim, self.ylim = (xmin, xmax), (ymin, ymax)
            self.ax.set_xlim(self.xlim)
            self.ax.set_ylim(self.ylim)
            self.radius = float(radius) if radius is not None else disc_radius_for(len(self.labels), axes_w * axes_h)
            self.test_radius = float(np.clip(self.radius * 1.2, 2.4, 6.0))
            extra = style.test_legend_handles() if test_legend else []
            if shown_classes:
                self._class_legend(extra, right, legend_cols)
            else:  # a legend of more names than fit cannot be read; say so where it would be
                self.fig.text(right, 0.49, style.too_many_classes_note(n_classes), ha="left", va="center",
                              fontsize=style.FONT_SIZE, color=MUTED)
                if extra:
                    self.fig.legend(handles=extra, loc="upper left", bbox_to_anchor=(right - 0.01, 0.30), frameon=False,
                                    fontsize=style.FONT_SIZE, handletextpad=0.3, borderaxespad=0)
            self.fig.text(0.03, 0.905, style.plain(style.short(subtitle, 90)), ha="left", va="bottom",
                          fontsize=style.FONT_SIZE, color=MUTED)
            # What changes per frame is animated: left out of the background, blitted per frame.
            self.title = self.fig.text(0.03, 0.935, "", ha="left", va="bottom", fontsize=16, weight="bold", animated=True)
            self.caption = self.fig.text(0.03, 0.035, "", ha="left", va="bottom", fontsize=style.FONT_SIZE + 1,
                                         color=INK, animated=True)
            self.wrong = self.ax.scatter(np.empty(0), np.empty(0), zorder=5, animated=True,
                                         s=style.marker_area(self.test_radius + 2.5, dpi), **style.WRONG_MARKER)
            self.rings = self.ax.scatter(np.empty(0), np.empty(0), zorder=4, animated=True,
                                         s=style.marker_area(self.radius + 4.5, dpi), **style.RING_MARKER)
            self.edge_marks = {side: self.ax.scatter(np.empty(0), np.empty(0), zorder=6, animated=True, marker=marker,
                                                     s=style.marker_area(4.5, dpi), edgecolors=INK, linewidths=0.6,
                                                     clip_on=False)
                               for side, marker in _SIDES.items()}
            self.beyond = 0

            canvas = self.fig.canvas
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.fig.bbox)
            self._background_rgb = np.asarray(canvas.buffer_rgba())[..., :3].copy()
            self._height = int(round(self.fig.bbox.height))
            self._title_text = TextStamper(self.title, self._height)
            self._caption_text = TextStamper(self.caption, self._height)
            x0, y0, x1, y1 = self.ax.bbox.extents
            # The axes' inside in image rows/columns (image rows grow downwards).
            self._cols = (int(np.ceil(x0)), int(np.floor(x1)))
            self._rows = (self._height - int(np.floor(y1)), self._height - int(np.ceil(y0)))
            self.shape = (self._height, int(round(self.fig.bbox.width)), 3)

    def pixels(self, coords: np.ndarray) -> np.ndarray:
        """Image ``(x, y)`` pixel positions (y downwards) of map coordinates, as in every frame."""
        disp = self.ax.transData.transform(np.asarray(coords, dtype=np.float64).reshape(-1, 2))
        return np.column_stack([disp[:, 0], self._height - disp[:, 1]])

    def _beyond(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which image positions ``xy`` lie beyond the axes, and their side (0 left, 1 right, 2 top, 3 bottom)."""
        (r0, r1), (c0, c1) = self._rows, self._cols
        over = np.column_stack([c0 - xy[:, 0], xy[:, 0] - c1, r0 - xy[:, 1], xy[:, 1] - r1])
        finite = np.isfinite(xy).all(axis=1)
        out = finite & (over.max(axis=1, initial=-np.inf) > 0) if len(xy) else np.zeros(0, bool)
        return out, over.argmax(axis=1) if len(xy) else np.zeros(0, int)

    def _edge_positions(self, xy: np.ndarray) -> np.ndarray:
        """Image positions clamped just inside the axes, as data coordinates for matplotlib."""
        (r0, r1), (c0, c1) = self._rows, self._cols
        x = np.clip(xy[:, 0], c0 + _EDGE_INSET, c1 - _EDGE_INSET)
        y = np.clip(xy[:, 1], r0 + _EDGE_INSET, r1 - _EDGE_INSET)
        disp = np.column_stack([x, self._height - y])
        return self.ax.transData.inverted().transform(disp)

    def draw(self, coords: np.ndarray, *, title: str = "", caption: str = "", test_coords: np.ndarray | None = None,
             test_labels: np.ndarray | None = None, test_wrong: np.ndarray | None = None,
             rings: np.ndarray | None = None) -> np.ndarray:
        """Draw one frame and return it as ``(height, width, 3)`` uint8.

        Parameters
        ----------
        coords : (n, 2)
            Map position of every point, in the order of ``labels``.
        title, caption : str
            Big title above the map ("Epoch 3") and the line under it (accuracy, quality). When
            points lie beyond the frame, the caption also says how many (:func:`beyond_note`).
        test_coords : (m, 2), optional
            Test points, drawn over the probe points (which are then drawn pale), as discs with
            a dark outline: in their class colour when ``test_labels`` is given, else gold.
        test_labels : (m,) int, optional
            True class of every test point.
        test_wrong : (m,) bool, optional
            Test points whose prediction was wrong at this epoch: marked with a black cross.
        rings : (k,) int, optional
            Indices of points to ring (e.g. the most-forgotten examples).
        """
        coords = np.asarray(coords, dtype=np.float64)
        if coords.shape != (len(self.labels), 2):
            raise ValueError(f"coords must be (n, 2) with n = {len(self.labels)} labelled points, got {coords.shape}")
        has_tests = test_coords is not None and len(test_coords) > 0
        if has_tests:
            test_coords = np.asarray(test_coords, dtype=np.float64).reshape(-1, 2)
            if test_labels is not None and len(test_labels) != len(test_coords):
                raise ValueError(f"test_labels has {len(test_labels)} entries for {len(test_coords)} test points")
            if test_wrong is not None and len(test_wrong) != len(test_coords):
                raise ValueError(f"test_wrong has {len(test_wrong)} entries for {len(test_coords)} test points")
        frame = self._background_rgb.copy()
        (r0, r1), (c0, c1) = self._rows, self._cols
        area = frame[r0:r1, c0:c1]
        xy = self.pixels(coords[self._order])
        colours = self._point_colors
        if has_tests:
            colours = colours + (1.0 - colours) * PROBE_FADE
        rows, cols, rgb, cover = splat_discs_sparse(xy - (c0, r0), colours, shape=(r1 - r0, c1 - c0),
                                                    radius=self.radius)
        composite_sparse(area, rows, cols, rgb, cover)
        beyond_xy, beyond_rgb = [xy], [self._point_colors]
        if has_tests:
            txy = self.pixels(test_coords)
            if test_labels is not None:
                tcol = self.colors[np.asarray(test_labels, dtype=np.int64)].astype(np.float32)
            else:
                tcol = np.broadcast_to(hex_to_rgb([TEST_POINT])[0].astype(np.float32), (len(txy), 3))
            # A dark outline under every disc, then the discs: each test point reads on any background.
            for colour, radius in ((hex_to_rgb([INK])[0].astype(np.float32), self.test_radius + 1.0),
                                   (tcol, self.test_radius)):
                rows, cols, rgb, cover = splat_discs_sparse(txy - (c0, r0), colour, shape=(r1 - r0, c1 - c0),
                                                            radius=radius)
                composite_sparse(area, rows, cols, rgb, cover)
            beyond_xy.append(txy)
            beyond_rgb.append(tcol)
        all_xy, all_rgb = np.concatenate(beyond_xy), np.concatenate(beyond_rgb)
        out, side = self._beyond(all_xy)
        self.beyond = int(out.sum())
        wrong = None
        if has_tests and test_wrong is not None and np.any(test_wrong):
            wrong = test_coords[np.asarray(test_wrong, dtype=bool)]
        has_rings = rings is not None and len(rings) > 0
        if has_rings or wrong is not None or self.beyond:
            # Few markers with edges: matplotlib draws them over the numpy pixels in its own buffer.
            canvas = self.fig.canvas
            canvas.restore_region(self._background)
            buf = np.asarray(canvas.buffer_rgba())
            buf[..., :3] = frame
            if has_rings:
                self.rings.set_offsets(coords[np.asarray(rings, dtype=np.intp)])
                self.ax.draw_artist(self.rings)
            if wrong is not None:
                self.wrong.set_offsets(wrong)
                self.ax.draw_artist(self.wrong)
            for k, marks in enumerate(self.edge_marks.values()):
                pick = out & (side == k)
                if pick.any():
                    marks.set_offsets(self._edge_positions(all_xy[pick]))
                    marks.set_facecolors(all_rgb[pick])
                    self.ax.draw_artist(marks)
            frame = buf[..., :3].copy()
        if self.beyond:
            caption = " · ".join(p for p in (caption, beyond_note(self.beyond)) if p)
        self.title.set_text(title)
        self.caption.set_text(caption)
        self._title_text.stamp(frame, title, max_lines=1)
        self._caption_text.stamp(frame, caption, max_lines=2)
        return frame

    def _class_legend(self, extra: list, right: float, legend_cols: int) -> None:
        """The class legend right of the map, its names shortened until it ends inside the figure
        (an 800-pixel frame holds about 18 characters a name in one column, fewer in three)."""
        renderer = self.fig.canvas.get_renderer()

        def legend_at(limit: int):
            legend = self.fig.legend(handles=style.class_legend_handles(self.class_names, self.colors, limit=limit) + extra,
                                     loc="center left", bbox_to_anchor=(right - 0.01, 0.49), frameon=False,
                                     ncol=legend_cols, fontsize=style.FONT_SIZE, handletextpad=0.3, borderaxespad=0,
                                     columnspacing=1.2)
            box = legend.get_window_extent(renderer)
            return legend, box.x1 <= self.fig.bbox.x1 - 2

        legend, fits = legend_at(style.NAME_CHARS)
        if fits:
            return
        legend.remove()
        lo, hi = 4, style.NAME_CHARS - 1  # the longest limit that fits, by bisection (a few legends)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            legend, fits = legend_at(mid)
            legend.remove()
            lo, hi = (mid, hi) if fits else (lo, mid - 1)
        legend_at(lo)

    def close(self) -> None:
        """Drop the figure (frames already returned stay valid)."""
        self.fig.clear()

    def __enter__(self) -> MapFrameRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
