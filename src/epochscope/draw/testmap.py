"""The train + test map: the final epoch's map with the test set laid on it as gold stars.

It is drawn by the same renderer as the time-lapse frames, so the probe points sit on
exactly the pixels of the last frame.

Example::

    img = train_test_map(run, maps)              # (H, W, 3) uint8
    save_png(img, "train_test_map.png")
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .mapframe import MapFrameRenderer
from .timelapse import map_subtitle

__all__ = ["train_test_map", "caption_for_test_set"]


def caption_for_test_set(n_test: int, accuracy: float | None) -> str:
    """``"★ 1,000 test examples · test accuracy 0.981"``."""
    text = f"★ {n_test:,} test examples"
    if accuracy is not None and np.isfinite(accuracy):
        text += f" · test accuracy {accuracy:.3f}"
    return text


def train_test_map(run: Any, maps: Any, *, epoch: int | None = None,
                   renderer: MapFrameRenderer | None = None) -> np.ndarray:
    """The map at ``epoch`` (default: the last embedded) with the test points as gold stars.

    Raises ``ValueError`` when the maps hold no test coordinates (the run recorded no test set).
    """
    if getattr(maps, "test_coords", None) is None:
        raise ValueError("these maps hold no test coordinates (the run recorded no test set)")
    epochs = [int(e) for e in maps.epochs]
    epoch = epochs[-1] if epoch is None else int(epoch)
    if epoch not in epochs:
        raise ValueError(f"epoch {epoch} is not in the maps (epochs {epochs[0]}..{epochs[-1]})")
    i = epochs.index(epoch)
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
