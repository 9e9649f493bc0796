"""The sample grid: probe inputs (images only) with their class names as titles.

Example::

    SamplesDisplay.from_run(run).plot().figure_.savefig("samples.png")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import style
from .figure import FigureDisplay, as_run, new_figure

__all__ = ["SamplesDisplay", "as_images", "pick_examples"]


def as_images(inputs: np.ndarray) -> np.ndarray:
    """Inputs as displayable images: ``(n, H, W)`` grey or ``(n, H, W, 3)`` colour, float.

    Accepts channel-first ``(n, 1|3, H, W)`` (PyTorch), channel-last ``(n, H, W, 1|3)`` (Keras)
    and plain ``(n, H, W)``. Raises ``ValueError`` for inputs that are not images (e.g. tables).
    """
    x = np.asarray(inputs, dtype=np.float32)
    if x.ndim == 3:
        return x
    if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3):
        x = np.moveaxis(x, 1, -1)
    if x.ndim == 4 and x.shape[-1] in (1, 3):
        return x[..., 0] if x.shape[-1] == 1 else x
    raise ValueError(f"inputs of shape {tuple(np.shape(inputs))} are not images; expected (n, H, W), "
                     "(n, 1|3, H, W) or (n, H, W, 1|3)")


def pick_examples(labels: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` example indices taking the classes in turn (first example of each class,
    then the second, ...), so every class shows up in a small grid; with as many columns
    as classes, each column of the grid holds one class."""
    labels = np.asarray(labels).reshape(-1)
    queues = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    picked: list[int] = []
    depth = 0
    while len(picked) < min(n, len(labels)):
        for q in queues:
            if depth < len(q) and len(picked) < n:
                picked.append(int(q[depth]))
        depth += 1
    return np.array(picked, dtype=np.intp)


@dataclass
class SamplesDisplay(FigureDisplay):
    """A grid of input images titled with their class names.

    Attributes after :meth:`plot`: ``figure_``, ``ax_``, ``image_`` (the mosaic) and
    ``titles_`` (one text per image).
    """

    images: np.ndarray
    titles: Sequence[str]
    n_columns: int = 10

    @classmethod
    def from_run(cls, run, *, n_rows: int = 10, n_columns: int = 10) -> SamplesDisplay:
        """The first ``n_rows * n_columns`` probe inputs, classes taken in turn.

        Raises ``ValueError`` when the run kept no probe inputs or they are not images.
        """
        run = as_run(run)
        inputs = run.probe_inputs
        if inputs is None:
            raise ValueError(f"the run {run.path} kept no probe inputs; record with the inputs to draw samples")
        labels = run.labels
        idx = pick_examples(labels, n_rows * n_columns)
        names = run.class_names
        order = np.argsort(idx)  # read the (memory-mapped) inputs in file order, then restore the grid order
        images = np.empty((len(idx), *inputs.shape[1:]), dtype=np.float32)
        images[order] = np.asarray(inputs[idx[order]], dtype=np.float32)
        return cls(images=as_images(images), titles=[names[labels[i]] for i in idx],
                   n_columns=n_columns)

    def plot(self, ax=None) -> SamplesDisplay:
        """Draw the grid on ``ax`` (or a new off-screen figure); returns ``self``.

        The images are tiled into one mosaic shown by a single ``imshow`` with the titles as
        text: a hundred axes would cost seconds to lay out and draw.
        """
        n = len(self.images)
        cols = max(1, min(self.n_columns, n))
        rows = max(1, -(-n // cols))
        if ax is None:
            fig = new_figure((cols * 0.85 + 0.2, rows * 0.95 + 0.5), dpi=style.DPI)
            ax = fig.add_subplot()
            fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.45 / (rows * 0.95 + 0.5))
        fig = ax.get_figure(root=True)
        mosaic, cell = self.mosaic(rows, cols)
        grey = mosaic.ndim == 2
        self.image_ = ax.imshow(mosaic, cmap="gray" if grey else None, interpolation="nearest", aspect="equal",
                                extent=(0, cols * cell[1], rows * cell[0], 0))
        # Each title on one line and cut to its cell's width: a long name would run over its
        # neighbours' titles (the same names are measured once).
        ax.apply_aspect()
        width = ax.bbox.width / cols - 4
        measure = style.text_measure(fig, 8)
        fitted = {name: style.fit_lines([style.short(name)], width, measure)[0] for name in set(self.titles)}
        self.titles_ = []
        for i in range(n):
            r, c = divmod(i, cols)
            self.titles_.append(ax.text((c + 0.5) * cell[1], r * cell[0] + cell[0] * 0.2, style.plain(fitted[self.titles[i]]),
                                        ha="center", va="center", fontsize=8, color="black"))
        ax.set_axis_off()
        ax.set_title("Probe examples", fontsize=style.FONT_SIZE + 2)
        self.figure_, self.ax_ = fig, ax
        return self

    def mosaic(self, rows: int, cols: int) -> tuple[np.ndarray, tuple[int, int]]:
        """All images tiled on a white page, each under a strip for its title; returns the
        mosaic and the ``(height, width)`` of one cell. Values are scaled to [0, 1] over the
        whole set (one scale for all, so brightness compares across images)."""
        imgs = np.asarray(self.images, dtype=np.float32)
        lo, hi = float(np.nanmin(imgs)), float(np.nanmax(imgs))
        imgs = (imgs - lo) / (hi - lo) if hi > lo else np.zeros_like(imgs)
        grey = imgs.ndim == 3
        h, w = imgs.shape[1:3]
        pad, strip = max(1, h // 10), max(6, int(round(h * 0.4)))
        cell = (h + strip + pad, w + 2 * pad)
        page = np.ones((rows * cell[0], cols * cell[1]) + (() if grey else (imgs.shape[-1],)), dtype=np.float32)
        for i, img in enumerate(imgs):
            r, c = divmod(i, cols)
            y0, x0 = r * cell[0] + strip, c * cell[1] + pad
            page[y0:y0 + h, x0:x0 + w] = img
        return page, cell
