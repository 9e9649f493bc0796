"""The library's own off-screen canvas, and what every Display object shares.

epochscope never touches the user's matplotlib state: it never calls ``matplotlib.use()``,
never leaves ``rcParams`` changed and never imports ``pyplot``. A figure made for a file or a
notebook is a bare :class:`matplotlib.figure.Figure` on its own Agg canvas, so it draws
off-screen whatever backend the user runs, is not registered with pyplot (``plt.show()`` and
``plt.get_fignums()`` never see it) and is freed with its last reference.

Such a figure is drawn with matplotlib's default settings (:func:`own_style`), not the
user's: the library's pictures are white, and under a dark style their titles, labels and
class legend would be white on white. The user's settings are put back as soon as the
figure is drawn. A Display drawn into the user's own Axes follows the user's style.

To draw into a window or a figure of your own, give a Display your axes:
``fig, ax = plt.subplots(); ConfusionDisplay.from_run(run).plot(ax=ax); plt.show()``.

Example::

    fig = new_figure((8, 6))
    ax = fig.add_subplot()
    ...
    save_figure(fig, "picture.png")          # written under a temporary name, then renamed
    png = figure_png(fig)                    # the same picture as PNG bytes
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .._output import atomic_output
from .style import DPI

__all__ = ["FigureDisplay", "FrameDisplay", "as_run", "check_maps", "figure_png", "figure_to_array", "new_figure",
           "own_style", "png_bytes", "save_figure", "save_png", "subfigure_at"]

# zlib level 3: files within ~10 % of the default level's size at about half its encoding time.
PNG_COMPRESS_LEVEL = 3


_Plot = TypeVar("_Plot", bound=Callable[..., Any])


@contextmanager
def own_style() -> Iterator[None]:
    """Draw with matplotlib's default settings inside the block; the user's settings (style,
    ``rcParams``, their ``matplotlibrc``) are restored on exit, also after an error.

    Costs ~4 ms, so it wraps a whole figure's drawing, never one frame of an animation
    (artists keep the settings they were made with). Not for a figure of the user's.
    """
    import matplotlib.style

    with matplotlib.style.context("default"):
        yield


def _in_own_style(plot: _Plot) -> _Plot:
    """``plot(ax=None, ...)`` drawn in :func:`own_style` when it makes its own figure (no ``ax``)."""

    @functools.wraps(plot)
    def wrapper(self: Any, ax: Any = None, *args: Any, **kwargs: Any) -> Any:
        if ax is not None:
            return plot(self, ax, *args, **kwargs)
        with own_style():
            return plot(self, None, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def as_run(run: Any):
    """``run`` itself when it is a :class:`~epochscope.Run`, else the run opened from that path:
    every Display's ``from_run`` takes either."""
    from ..run import Run, open_run

    return run if isinstance(run, Run) else open_run(run)


def check_maps(run: Any, maps: Any, *, test: bool = False) -> None:
    """``ValueError`` unless ``maps`` were made from ``run``: one point per probe example of the
    run, and epochs the run holds (and, with ``test``, when the maps carry test points, one per
    test example of the run).

    Maps carry no labels, so a Display colours them with the run's; maps of another run would be
    drawn with the wrong classes, captions and accuracy. Every Display that takes maps asks here.
    """
    layer = getattr(maps, "layer", "hidden")
    fix = f"these maps come from another run: make this run's with epochscope.embed(run, {layer!r})"
    n_probe = run.manifest.probe_size
    coords = getattr(maps, "coords", None)
    n_points = np.shape(coords)[1] if coords is not None and np.ndim(coords) == 3 else None
    if n_points != n_probe:
        raise ValueError(f"maps of layer {layer!r}: expected one point per probe example of the run {run.path} "
                         f"({n_probe}), got {n_points}; {fix}")
    missing = sorted(set(int(e) for e in maps.epochs) - set(run.epochs))
    if missing:
        raise ValueError(f"maps of layer {layer!r} hold epochs {missing} that the run {run.path} does not have "
                         f"(epochs: {', '.join(map(str, run.epochs)) or 'none'}); {fix}")
    if test and getattr(maps, "test_coords", None) is not None:
        n_test = np.shape(maps.test_coords)[1]
        if not run.has_test:
            raise ValueError(f"maps of layer {layer!r} hold {n_test} test points but the run {run.path} recorded "
                             f"no test set; {fix}")
        if n_test != run.manifest.test_size:
            raise ValueError(f"maps of layer {layer!r}: expected one test point per test example of the run "
                             f"{run.path} ({run.manifest.test_size}), got {n_test}; {fix}")


def new_figure(figsize: tuple[float, float], *, dpi: float = DPI, facecolor: str = "white"):
    """A :class:`~matplotlib.figure.Figure` of ``figsize`` inches at ``dpi`` on its own Agg canvas,
    outside pyplot (see the module doc)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, facecolor=facecolor)
    FigureCanvasAgg(fig)
    return fig


def figure_to_array(fig) -> np.ndarray:
    """Draw ``fig`` on its Agg canvas and return its pixels as ``(H, W, 3)`` uint8."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def figure_png(fig) -> bytes:
    """``fig`` as PNG bytes at its own size and dpi, on white (works on any canvas: matplotlib
    renders PNGs with Agg whatever the figure's backend)."""
    buf = io.BytesIO()
    with own_style():  # the user's savefig.* settings (bbox="tight", transparent) would change the picture
        fig.savefig(buf, format="png", dpi=fig.dpi, facecolor="white")
    return buf.getvalue()


def save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix) at its own dpi, on white, under a
    temporary name renamed into place (:func:`epochscope._output.atomic_output`), so no
    half-written picture is ever left; :class:`~epochscope.OutputError` names the file when the
    disk is full or the folder read-only."""
    path = Path(path)
    with atomic_output(path) as tmp, own_style():
        fig.savefig(tmp, dpi=fig.dpi, facecolor="white")
    return path


def png_bytes(frame: np.ndarray) -> bytes:
    """One ``(H, W, 3)`` uint8 frame as PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def save_png(frame: np.ndarray, path: str | Path) -> Path:
    """Write one ``(H, W, 3)`` uint8 frame as PNG (via a temporary name, so no half-written file is
    left; see :func:`save_figure`)."""
    from PIL import Image

    path = Path(path)
    with atomic_output(path) as tmp:
        Image.fromarray(np.ascontiguousarray(frame)).save(tmp, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return path


def subfigure_at(ax):
    """A :class:`~matplotlib.figure.SubFigure` in the place of ``ax`` (which is removed): how a
    picture of several panels fills the one Axes it was given."""
    fig = ax.get_figure()
    spec = ax.get_subplotspec()
    if spec is None:  # axes placed by position (add_axes), not on a grid
        # A subfigure's place comes from its grid's width and height ratios (not the grid's
        # margins), so the axes' box becomes the middle cell of a 3 x 3 grid.
        x0, y0, x1, y1 = ax.get_position().extents
        widths = [max(v, 1e-6) for v in (x0, x1 - x0, 1.0 - x1)]
        heights = [max(v, 1e-6) for v in (1.0 - y1, y1 - y0, y0)]
        spec = fig.add_gridspec(3, 3, width_ratios=widths, height_ratios=heights, wspace=0, hspace=0)[1, 1]
    ax.remove()
    return fig.add_subfigure(spec)


class FigureDisplay:
    """What every Display object shares: it shows itself inline in a notebook.

    ``_repr_png_`` returns the PNG of ``figure_`` (drawing it with :meth:`plot` first if it was
    not drawn yet), so a display left as the last expression of a notebook cell is shown.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "plot" in cls.__dict__:  # every Display's own figure is drawn in the library's style
            cls.plot = _in_own_style(cls.__dict__["plot"])

    def plot(self, ax: Any = None) -> Any:  # pragma: no cover - every display defines it
        raise NotImplementedError

    def _repr_png_(self) -> bytes:
        if getattr(self, "figure_", None) is None:
            self.plot()
        return figure_png(self.figure_)


class FrameDisplay:
    """What the map pictures share: their picture is a pixel frame ``(H, W, 3)`` uint8 drawn by
    :class:`~epochscope.draw.mapframe.MapFrameRenderer` (the same pixels as the PNG files).

    :meth:`plot` shows the frame with ``imshow``: on a new off-screen figure of exactly the
    frame's size (one image pixel per figure pixel), or in the given Axes. ``_repr_png_`` is
    the frame itself as PNG. Subclasses define :meth:`_frame`.
    """

    def _frame(self) -> np.ndarray:  # pragma: no cover - every frame display defines it
        raise NotImplementedError

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "plot" in cls.__dict__:
            cls.plot = _in_own_style(cls.__dict__["plot"])

    @_in_own_style
    def plot(self, ax: Any = None) -> Any:
        """Show the frame on a new off-screen figure of its own size, or in ``ax``; returns ``self``.

        Attributes after: ``figure_``, ``ax_``, ``image_`` (the ``AxesImage``).
        """
        frame = self._frame()
        own = ax is None
        if own:
            h, w = frame.shape[:2]
            fig = new_figure((w / DPI, h / DPI), dpi=DPI)
            ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        # 1:1 on its own figure: no resampling; in someone else's axes: smoothed to their size.
        self.image_ = ax.imshow(frame, interpolation="none" if own else "antialiased")
        ax.set_axis_off()
        self.figure_, self.ax_ = ax.get_figure(root=True), ax
        return self

    def _repr_png_(self) -> bytes:
        return png_bytes(self._frame())
