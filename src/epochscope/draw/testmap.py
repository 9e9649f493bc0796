"""The train + test map: the final epoch's map with the test set laid on it.

Test points are discs in the colour of their true class (outlined), over the probe points
drawn pale; a black cross marks every test point the model got wrong at that epoch. The
caption says how the test points were placed (they are never part of a map's fit) and how
many sit far from every probe point (see :mod:`epochscope.analysis.placement`): such a point
lies "between clusters" on the picture whatever the model made of it.

It is drawn by the same renderer as the time-lapse frames, so the probe points sit on
exactly the pixels of the last frame.

Example::

    TrainTestMapDisplay.from_run(run, maps).plot()   # a Display (in a notebook: shown inline)
    img = train_test_map(run, maps)                  # the pixels, (H, W, 3) uint8
    save_png(img, "train_test_map.png")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..analysis import placement_quality
from .figure import FrameDisplay, as_run, check_maps
from .mapframe import MapFrameRenderer
from .timelapse import _frame_index, map_subtitle

__all__ = ["TrainTestMapDisplay", "caption_for_test_set", "placement_note", "train_test_map"]

_PLACED = {
    "umap": "placed by UMAP's transform after the fit",
    "umap-independent": "placed by UMAP's transform after the fit",
    "aligned-umap": "placed by UMAP's transform after the fit",
    "pca": "projected onto the probe set's principal axes",
    "tsne": "placed by openTSNE's transform after the fit",
}


def placement_note(method: str) -> str:
    """How a map method placed the test points, in words (they are not part of the fit).

    >>> placement_note("pca")
    "projected onto the probe set's principal axes"
    """
    return _PLACED.get(str(method), f"placed on the probe map after the {method} fit")


def caption_for_test_set(n_test: int, accuracy: float | None, *, method: str | None = None, wrong: int | None = None,
                         far: int | None = None) -> str:
    """The caption of the train + test map: what the test points are and how they were placed,
    then the accuracy, the misclassified and the far-placed count (two lines when the method is given).

    >>> caption_for_test_set(1000, 0.981, method="pca", wrong=19, far=3).splitlines()[1]
    '19 misclassified (×) · test accuracy 0.981 · 3 placed far from every probe point'
    """
    first = f"{n_test:,} test examples in their true class's colour"
    if method is not None:
        first += f", {placement_note(method)}"
    parts = []
    if wrong is not None:
        parts.append(f"{wrong:,} misclassified (×)")
    if accuracy is not None and np.isfinite(accuracy):
        parts.append(f"test accuracy {accuracy:.3f}")
    if far:
        parts.append(f"{far:,} placed far from every probe point")
    return first + ("\n" + " · ".join(parts) if parts else "")


def train_test_map(run: Any, maps: Any, *, epoch: int | None = None,
                   renderer: MapFrameRenderer | None = None) -> np.ndarray:
    """The map at ``epoch`` (default: the last embedded) with the test points in their class
    colours, misclassified ones crossed, as ``(H, W, 3)`` uint8.

    Raises ``ValueError`` when the maps hold no test coordinates (the run recorded no test set)
    or not ``epoch``.
    """
    if getattr(maps, "test_coords", None) is None:
        raise ValueError("these maps hold no test coordinates (the run recorded no test set)")
    i, epoch = _frame_index(maps, epoch)
    test_labels = np.asarray(run.test_labels)
    predicted = run.test_predictions(epoch)
    wrong = None if predicted is None else np.asarray(predicted) != test_labels
    accuracy = float(np.mean(~wrong)) if wrong is not None and len(test_labels) else None
    coords, test_coords = np.asarray(maps.coords[i]), np.asarray(maps.test_coords[i])
    placed = placement_quality(coords, run.labels, test_coords)
    caption = caption_for_test_set(len(test_labels), accuracy, method=maps.method,
                                   wrong=None if wrong is None else int(wrong.sum()), far=int(placed.far.sum()))
    own = renderer is None
    r = renderer or MapFrameRenderer(maps.bounds, run.labels, run.class_names, subtitle=map_subtitle(maps),
                                     test_legend=True)
    try:
        when = run.timeline.title(epoch) if run.manifest.record_unit == "step" else f"Epoch {epoch}"
        return r.draw(coords, title=f"{when}: probe set and test set", caption=caption,
                      test_coords=test_coords, test_labels=test_labels, test_wrong=wrong)
    finally:
        if own:
            r.close()


@dataclass
class TrainTestMapDisplay(FrameDisplay):
    """The train + test map (``train_test_map.png``) as a Display: ``image`` ``(H, W, 3)`` uint8
    at ``epoch``. Attributes after :meth:`plot`: ``figure_``, ``ax_``, ``image_``."""

    image: np.ndarray
    epoch: int

    @classmethod
    def from_run(cls, run: Any, maps: Any, *, epoch: int | None = None) -> TrainTestMapDisplay:
        """:func:`train_test_map` of ``run`` and ``maps`` (the layer's :class:`~epochscope.Maps`,
        with test coordinates) at ``epoch`` (default: the last embedded)."""
        run = as_run(run)
        check_maps(run, maps, test=True)
        _, epoch = _frame_index(maps, epoch)
        return cls(image=train_test_map(run, maps, epoch=epoch), epoch=epoch)

    def _frame(self) -> np.ndarray:
        return self.image
