"""The train + test map: the final epoch's map with the test set laid on it as gold stars.

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

from .figure import FrameDisplay, as_run, check_maps
from .mapframe import MapFrameRenderer
from .timelapse import _frame_index, map_subtitle

__all__ = ["TrainTestMapDisplay", "caption_for_test_set", "train_test_map"]


def caption_for_test_set(n_test: int, accuracy: float | None) -> str:
    """``"★ 1,000 test examples · test accuracy 0.981"``."""
    text = f"★ {n_test:,} test examples"
    if accuracy is not None and np.isfinite(accuracy):
        text += f" · test accuracy {accuracy:.3f}"
    return text


def train_test_map(run: Any, maps: Any, *, epoch: int | None = None,
                   renderer: MapFrameRenderer | None = None) -> np.ndarray:
    """The map at ``epoch`` (default: the last embedded) with the test points as gold stars,
    as ``(H, W, 3)`` uint8.

    Raises ``ValueError`` when the maps hold no test coordinates (the run recorded no test set)
    or not ``epoch``.
    """
    if getattr(maps, "test_coords", None) is None:
        raise ValueError("these maps hold no test coordinates (the run recorded no test set)")
    i, epoch = _frame_index(maps, epoch)
    test_labels = run.test_labels
    predicted = run.test_predictions(epoch)
    accuracy = float(np.mean(predicted == test_labels)) if predicted is not None and len(test_labels) else None
    own = renderer is None
    r = renderer or MapFrameRenderer(maps.bounds, run.labels, run.class_names, subtitle=map_subtitle(maps))
    try:
        return r.draw(np.asarray(maps.coords[i]), title=f"Epoch {epoch}: probe set and test set",
                      caption=caption_for_test_set(len(test_labels), accuracy),
                      test_coords=np.asarray(maps.test_coords[i]))
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
