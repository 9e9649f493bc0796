"""The shared look of every picture: figure sizes, fonts, markers, legends, in one place.

Colours come from :mod:`epochscope.colors` (shared with the HTML report); this module holds
no colour of its own and changes no matplotlib setting (see :mod:`epochscope.draw.figure`).
"""

from __future__ import annotations

from .._text import printable
from ..colors import FRAME_EDGE, INK, class_colors

__all__ = ["class_legend_handles", "fit_lines", "plain", "short", "text_measure", "test_legend_handles",
           "too_many_classes_note", "DPI", "FONT_SIZE", "FRAME_MS", "MAP_FIGSIZE", "MAX_LEGEND_CLASSES", "NAME_CHARS",
           "RING_MARKER", "WRONG_MARKER", "marker_area", "style_map_axes"]

DPI = 100
FONT_SIZE = 10
#: Display time of one epoch in every animation (time-lapse and network), milliseconds.
FRAME_MS = 500.0
#: Size of a map frame (inches at :data:`DPI`): 800 x 600 pixels.
MAP_FIGSIZE = (8.0, 6.0)
#: Points singled out on a map (most-forgotten examples): a black ring around the dot.
RING_MARKER = {"marker": "o", "facecolors": "none", "edgecolors": "black", "linewidths": 1.3}
#: A test point the model got wrong: a black cross over its disc.
WRONG_MARKER = {"marker": "x", "color": INK, "linewidths": 1.4}
#: More classes than this get no legend (a note says why), on maps and in the report.
MAX_LEGEND_CLASSES = 60
#: Class and layer names are drawn at most this long (a 1 MB name would take minutes to lay out).
NAME_CHARS = 40


def marker_area(radius_px: float, dpi: float = DPI) -> float:
    """``plt.scatter``'s ``s`` (marker area in points²) for a disc of ``radius_px`` pixels at ``dpi``."""
    return float((2.0 * radius_px * 72.0 / dpi) ** 2)


def plain(text: object) -> str:
    r"""``text`` made safe for a matplotlib label: shown literally, never parsed as mathtext.

    Matplotlib treats a string with an even number of ``$`` as mathtext, so a class or layer
    named ``$x^2$`` would be typeset and one named ``$\foo$`` would stop the drawing with a
    parser error. Escaped dollars are drawn as plain ``$``. Use it for every string that
    comes from a run (class, layer and metric names); Pillow-stamped text needs no escaping.

    >>> plain("$x^2$ & <b>")
    '\\$x^2\\$ & <b>'
    """
    return str(text).replace("$", r"\$")


#: Line breaks in a name become spaces when it is drawn: a label is one line.
_BREAKS = str.maketrans({c: " " for c in "\n\r\x0b\x0c\x85\u2028\u2029"})


def short(text: object, limit: int = NAME_CHARS) -> str:
    r"""``text`` on one line, control characters shown escaped, cut to ``limit`` characters with an
    ellipsis: names drawn in pictures stay readable (a name of several lines would stack over its
    neighbours; an escape character would be drawn as a missing-glyph box, with a warning), and a
    huge name costs no time to lay out.

    >>> short("a" * 50, 10), short("two\nlines"), short("\x1b[2J")
    ('aaaaaaaaa…', 'two lines', '\\x1b[2J')
    """
    text = printable(str(text)[: 4 * limit + 4].replace("\r\n", "\n").translate(_BREAKS))
    return text if len(text) <= limit else text[: max(limit - 1, 1)] + "…"


def text_measure(figure, fontsize: float):
    """A function giving the width in pixels of a line of plain text drawn at ``fontsize`` on
    ``figure`` (its renderer and matplotlib's default font)."""
    from matplotlib.font_manager import FontProperties

    renderer = figure.canvas.get_renderer()
    prop = FontProperties(size=fontsize)
    return lambda line: renderer.get_text_width_height_descent(line, prop, ismath=False)[0]


def fit_lines(lines, width_px: float, measure) -> list[str]:
    """``lines`` each cut (with an ellipsis) until ``measure(line)`` (its width in pixels) fits
    ``width_px``; a line that cannot fit even as one character and the ellipsis becomes ``"…"``."""
    out = []
    for line in lines:
        text = line
        while measure(text) > width_px and len(text) > 1:
            text = text[:-2] + "…" if len(text) > 2 else "…"
            if text == "…":
                break
        out.append(text)
    return out


def too_many_classes_note(n_classes: int) -> str:
    """What a picture shows instead of a legend with too many entries to read."""
    return f"{n_classes} classes:\ntoo many to list;\ncolours follow the\nclass order round\nthe colour wheel"


def class_legend_handles(class_names, colors=None, *, markersize: float = 7.0, limit: int = NAME_CHARS) -> list:
    """Legend entries (coloured dots) for ``class_names``, in class order (names shown literally,
    each cut to ``limit`` characters by :func:`short`); ``colors`` defaults to
    :func:`epochscope.colors.class_colors`."""
    from matplotlib.lines import Line2D

    colors = class_colors(len(class_names)) if colors is None else colors
    return [Line2D([], [], linestyle="", marker="o", markersize=markersize, markerfacecolor=c,
                   markeredgecolor="none", label=plain(short(name, limit))) for name, c in zip(class_names, colors)]


def test_legend_handles(*, markersize: float = 7.0) -> list:
    """Legend entries that say how a map shows its test set: pale probe points, test points with
    a dark outline in their class colour, a cross for a misclassified one."""
    from matplotlib.lines import Line2D

    from ..colors import NEUTRAL_RGB

    pale = tuple(c + (1 - c) * 0.6 for c in NEUTRAL_RGB)
    return [Line2D([], [], linestyle="", marker="o", markersize=markersize, markerfacecolor=pale,
                   markeredgecolor="none", label="probe (pale)"),
            Line2D([], [], linestyle="", marker="o", markersize=markersize, markerfacecolor="white",
                   markeredgecolor=INK, label="test (outlined)"),
            Line2D([], [], linestyle="", marker="x", markersize=markersize, color=INK, label="misclassified")]


def style_map_axes(ax) -> None:
    """The look of every 2-D map: no ticks (map coordinates carry no units) and a light frame."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color(FRAME_EDGE)
