"""Class names from a run someone else recorded, drawn: long names, line breaks, escape sequences.

Each picture must stay readable whatever the names are: every name on one line, control
characters shown escaped (as the command line shows them), nothing cut off at the figure's edge,
no two titles over each other.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

HOSTILE = ["<script>alert(1)</script>", "\x1b]0;pwned\x07\x1b[2J", "A" * 5000, "class\nwith\nnewlines",
           "$x^2$ \\frac{1}{2}", "a rather long but honest class name"]


def test_short_puts_a_name_on_one_line_with_control_characters_escaped() -> None:
    from epochscope.draw.style import short

    assert short("class\nwith\r\nbreaks") == "class with breaks"
    assert short("\x1b]0;pwned\x07") == "\\x1b]0;pwned\\x07"
    assert short("ünïcødé 日本") == "ünïcødé 日本"
    assert len(short("x" * 1_000_000, 40)) == 40


def _boxes(fig, texts):
    renderer = fig.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in texts]


def test_sample_titles_fit_their_cells_and_never_overlap() -> None:
    """Titles of neighbouring thumbnails: each on one line, inside the figure, apart from each other."""
    from epochscope.draw.samples import SamplesDisplay

    n = 30
    titles = [HOSTILE[i % len(HOSTILE)] for i in range(n)]
    d = SamplesDisplay(images=np.random.default_rng(0).random((n, 8, 8)), titles=titles, n_columns=10).plot()
    fig = d.figure_
    texts = [t.get_text() for t in d.titles_]
    assert all("\n" not in t and "\x1b" not in t for t in texts)
    boxes = _boxes(fig, d.titles_)
    for b in boxes:
        assert b.x0 >= fig.bbox.x0 - 1 and b.x1 <= fig.bbox.x1 + 1, b
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)


@pytest.mark.parametrize("k", [6, 25, 45])
def test_map_legend_of_long_names_stays_inside_the_frame(k: int) -> None:
    from epochscope.draw.mapframe import MapFrameRenderer

    names = [HOSTILE[i % len(HOSTILE)] + (f" {i}" if i >= len(HOSTILE) else "") for i in range(k)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Glyph 27 missing from font" for an escape character
        r = MapFrameRenderer((0, 1, 0, 1), np.arange(3 * k) % k, names, test_legend=True)
    try:
        (legend,) = r.fig.legends
        texts = [t.get_text() for t in legend.get_texts()][:k]
        assert all("\n" not in t and "\x1b" not in t for t in texts)
        # shortened to what fits (a one-column legend holds more), never emptied
        assert texts[0].endswith("…") and HOSTILE[0].startswith(texts[0][:-1])
        assert len(texts[0]) >= (10 if k <= 20 else 4)
        box = legend.get_window_extent(r.fig.canvas.get_renderer())
        assert box.x0 >= r.ax.get_window_extent().x1 and box.x1 <= r.fig.bbox.x1, (box, r.fig.bbox)
    finally:
        r.close()


def test_confusion_tick_labels_of_names_with_line_breaks_do_not_overlap() -> None:
    from epochscope.draw.confusion import ConfusionDisplay

    k = len(HOSTILE)
    d = ConfusionDisplay(counts=np.eye(k, dtype=int) * 2, class_names=HOSTILE, epoch=2, split="test").plot()
    labels = [t.get_text() for t in d.ax_.get_xticklabels() + d.ax_.get_yticklabels() if t.get_text()]
    assert len(labels) == 2 * k and all("\n" not in t for t in labels)  # one line each: none stacks over its neighbour
