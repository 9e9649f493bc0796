"""The shared look of every picture: figure sizes, fonts, markers, legends, in one place.

Colours come from :mod:`epochscope.colors` (shared with the HTML report); this module holds
no colour of its own and changes no matplotlib setting (see :mod:`epochscope.draw.figure`).
"""

from __future__ import annotations

from ..colors import FRAME_EDGE, TEST_POINT, class_colors

__all__ = ["class_legend_handles", "plain", "too_many_classes_note", "DPI", "FONT_SIZE", "MAP_FIGSIZE",
           "RING_MARKER", "TEST_MARKER", "marker_area", "test_marker_area", "style_map_axes"]

DPI = 100
FONT_SIZE = 10
# Test points on maps: gold stars with a black edge.
TEST_MARKER = {"marker": "*", "color": TEST_POINT, "edgecolor": "black", "linewidths": 0.6, "s": 90}

#: Size of a map frame (inches at :data:`DPI`): 800 x 600 pixels.
MAP_FIGSIZE = (8.0, 6.0)
#: Points singled out on a map (most-forgotten examples): a black ring around the dot.
RING_MARKER = {"marker": "o", "facecolors": "none", "edgecolors": "black", "linewidths": 1.3}


def test_marker_area(n_test: int) -> float:
    """Star size (``s``, points²) for ``n_test`` test points: :data:`TEST_MARKER`'s size up to
    100 points, shrinking with the square root of the count beyond (1,000 full-size stars
    would hide the map under them), never below a third of the full size."""
    full = float(TEST_MARKER["s"])
    return full if n_test <= 100 else max(full / 3, full * (100 / n_test) ** 0.5)


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


def too_many_classes_note(n_classes: int) -> str:
    """What a picture shows instead of a legend with too many entries to read."""
    return f"{n_classes} classes:\ntoo many to list;\ncolours follow the\nclass order round\nthe colour wheel"


def class_legend_handles(class_names, colors=None, *, markersize: float = 7.0) -> list:
    """Legend entries (coloured dots) for ``class_names``, in class order (names shown literally);
    ``colors`` defaults to :func:`epochscope.colors.class_colors`."""
    from matplotlib.lines import Line2D

    colors = class_colors(len(class_names)) if colors is None else colors
    return [Line2D([], [], linestyle="", marker="o", markersize=markersize, markerfacecolor=c,
                   markeredgecolor="none", label=plain(name)) for name, c in zip(class_names, colors)]


def style_map_axes(ax) -> None:
    """The look of every 2-D map: no ticks (map coordinates carry no units) and a light frame."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color(FRAME_EDGE)
