"""Collect what the report shows from a run and its 2-D maps into one JSON-able payload.

This is the "data" half of the report; :mod:`epochscope.html.page` turns a payload into
HTML. Keeping them apart lets the viewer be tested with hand-made maps, without fitting any.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from .._errors import RunError
from ..analysis import confusion_over_epochs, confusion_split, forgetting_events, most_forgotten
from ..colors import class_colors_hex, curve_colors
from ..run import Run
from .encode import pack_array, quantise_coords
from .thumbnails import as_images, sprite_sheet

__all__ = ["MapsLike", "build_payload", "HIGHLIGHT_COUNT"]

log = logging.getLogger("epochscope")

HIGHLIGHT_COUNT = 25  # most-forgotten examples ringed by the "highlight" toggle
PAYLOAD_VERSION = 1


class MapsLike(Protocol):
    """What the report needs of :class:`epochscope.Maps` (see ``epochscope.maps.api``)."""

    epochs: Sequence[int]
    coords: np.ndarray  # (n_epochs, n_probe, 2)
    test_coords: np.ndarray | None  # (n_epochs, n_test, 2)
    quality: Mapping[str, Sequence[float]]
    bounds: tuple[float, float, float, float]
    skipped: Mapping[int, str]


def build_payload(
    run: Run,
    maps: MapsLike,
    *,
    layer: str,
    method: str,
    max_points: int | None = None,
    network: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Everything the viewer draws, as plain JSON data with packed arrays.

    Parameters
    ----------
    run : the opened run.
    maps : 2-D maps of ``layer`` (an ``epochscope.Maps`` or any object with its fields).
    layer, method : shown in the title.
    max_points : keep at most this many probe (and test) points, a fixed random subset
        chosen with ``seed``; ``None`` keeps all. The confusion matrices and curves always
        count every example.
    network : optional per-epoch network drawing data (see :mod:`epochscope.html.network`).

    The confusion matrix counts the split :func:`epochscope.analysis.confusion_split` names
    (the test set when the run recorded one, as ``confusion.png``): ``confusion`` holds
    ``(n_epochs, true, predicted)`` counts (uint32), ``confusionSplit`` the split's name and
    ``confusionMissing`` per epoch the examples without a prediction (counted as wrong in the
    accuracy, as the PNG does).

    Raises ``ValueError`` for maps of the wrong shape or a bad ``max_points``, ``RunError``
    for maps without any epoch.

    Example::

        payload = build_payload(run, maps, layer="hidden", method="pca")
    """
    if max_points is not None and (isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1):
        raise ValueError(f"max_points must be a positive integer or None, got {max_points!r}; "
                         "e.g. max_points=20000")
    epochs = [int(e) for e in maps.epochs]
    if not epochs:
        raise RunError(f"the maps of layer '{layer}' hold no epoch (skipped: {dict(maps.skipped) or 'none'}); "
                       "record at least one epoch or check the embedder's messages")
    coords = np.asarray(maps.coords)
    n_probe = run.manifest.probe_size
    if coords.shape != (len(epochs), n_probe, 2):
        raise ValueError(f"maps.coords: expected shape {(len(epochs), n_probe, 2)} (epochs, probe points, 2), "
                         f"got {coords.shape}")
    class_names = run.class_names
    n_classes = len(class_names)
    rng = np.random.default_rng(seed)
    probe_idx = _subset(n_probe, max_points, rng)
    labels = np.asarray(run.labels)

    test_labels = None if run.test_labels is None else np.asarray(run.test_labels)

    probe_pred_all = _predictions(run, epochs, "probe", n_probe)
    test_pred_all = None if test_labels is None else _predictions(run, epochs, "test", len(test_labels))
    # The same split as confusion.png (the test set when there is one): both ask analysis.
    split = confusion_split(run)
    confusion_labels, confusion_pred = (test_labels, test_pred_all) if split == "test" else (labels, probe_pred_all)
    payload: dict[str, Any] = {
        "version": PAYLOAD_VERSION,
        "title": run.path.name or str(run.path),
        "info": {
            "run": str(run.path),
            "framework": run.framework,
            "layer": layer,
            "method": method,
            "created": run.manifest.created,
            "probeSize": n_probe,
            "testSize": run.manifest.test_size,
            "shownPoints": len(probe_idx),
        },
        "classNames": class_names,
        "colors": class_colors_hex(n_classes),
        "epochs": epochs,
        "bounds": [float(b) for b in maps.bounds],
        "skipped": {str(k): str(v) for k, v in dict(maps.skipped).items()},
        "probe": _point_set(coords, maps.bounds, labels, probe_pred_all, probe_idx, n_classes),
        "confusion": pack_array(confusion_over_epochs(confusion_labels, confusion_pred, n_classes).astype(np.uint32)),
        "confusionSplit": split,
        "confusionMissing": [int(k) for k in ((confusion_pred < 0) | (confusion_pred >= n_classes)).sum(axis=1)],
        # Of those, the predictions of a class the run does not name (a model with more outputs than classes).
        "confusionOutside": [int(k) for k in (confusion_pred >= n_classes).sum(axis=1)],
        "metrics": _metrics(run),
        "quality": _quality(epochs, maps.quality),
        "network": dict(network) if network else None,
    }
    events, ranked = _forgetting(run, n_probe)
    payload["probe"]["forgetting"] = pack_array(np.minimum(events[probe_idx], 255).astype(np.uint8))
    # The ranking of every probe example kept in its order, restricted to the shown ones, as
    # positions among the shown points (probe_idx is sorted, so searchsorted finds them).
    shown = ranked[np.isin(ranked, probe_idx)][:HIGHLIGHT_COUNT]
    payload["probe"]["mostForgotten"] = [int(i) for i in np.searchsorted(probe_idx, shown)]

    test_coords = None if maps.test_coords is None else np.asarray(maps.test_coords)
    test_idx = np.arange(0)
    if test_coords is not None and test_labels is not None:
        n_test = len(test_labels)
        if test_coords.shape != (len(epochs), n_test, 2):
            raise ValueError(f"maps.test_coords: expected shape {(len(epochs), n_test, 2)}, got {test_coords.shape}")
        test_idx = _subset(n_test, max_points, rng)
        payload["test"] = _point_set(test_coords, maps.bounds, test_labels, test_pred_all, test_idx, n_classes)
    else:
        payload["test"] = None

    payload["thumbnails"] = _thumbnails(run, probe_idx, test_idx if payload["test"] else None)
    # What hovering shows where there is no image: the example's text, or a tabular example's values.
    payload["probe"]["texts"] = _hover_texts(run.probe_texts, run.probe_inputs, probe_idx)
    if payload["test"]:
        payload["test"]["texts"] = _hover_texts(run.test_texts, run.test_inputs, test_idx)
    return payload


# --------------------------------------------------------------------------- pieces


def _subset(n: int, max_points: int | None, rng: np.random.Generator) -> np.ndarray:
    if max_points is None or n <= max_points:
        return np.arange(n)
    return np.sort(rng.choice(n, size=max_points, replace=False))


def _label_dtype(n_classes: int) -> type:
    # The largest value of the dtype marks "no prediction", the one below it "a class outside the run's".
    return np.uint8 if n_classes < 254 else np.uint16


def _point_set(coords: np.ndarray, bounds: Sequence[float], labels: np.ndarray, predictions: np.ndarray,
               idx: np.ndarray, n_classes: int) -> dict[str, Any]:
    dtype = _label_dtype(n_classes)
    unknown = np.iinfo(dtype).max
    outside = unknown - 1
    pred = predictions[:, idx]
    pred = np.where(pred >= n_classes, outside, np.where(pred >= 0, pred, unknown)).astype(dtype)
    return {
        "count": int(len(idx)),
        "index": pack_array(idx.astype(np.uint32)),
        "coords": pack_array(quantise_coords(coords[:, idx], tuple(bounds)), delta_axis0=True),
        "labels": pack_array(labels[idx].astype(dtype)),
        "predictions": pack_array(pred),
        "unknownClass": int(unknown),
        "outsideClass": int(outside),
    }


def _predictions(run: Run, epochs: Sequence[int], split: str, n: int) -> np.ndarray:
    """``(n_epochs, n)`` predicted classes, ``-1`` where an epoch has none recorded."""
    out = np.full((len(epochs), n), -1, dtype=np.int64)
    for row, epoch in enumerate(epochs):
        try:
            pred = run.predictions(epoch) if split == "probe" else run.test_predictions(epoch)
        except RunError:
            continue  # predictions are optional: the epoch simply shows none
        if pred is not None and len(pred) == n:
            out[row] = pred
    return out


def _forgetting(run: Run, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per probe example, forgetting events over every recorded epoch; and the indices of the
    examples with at least one event, most forgotten first (both from :mod:`epochscope.analysis`)."""
    try:
        return forgetting_events(run), most_forgotten(run, n)
    except RunError:
        log.info("report: some epochs have no predictions; forgetting events are not shown")
        return np.zeros(n, dtype=np.int64), np.zeros(0, dtype=np.int64)


def _floats(values: Sequence[float]) -> list[float | None]:
    return [float(v) if v is not None and math.isfinite(float(v)) else None for v in np.asarray(values, float).ravel()]


def _metrics(run: Run) -> dict[str, Any]:
    """Numeric per-epoch metrics, grouped into accuracy-like and loss-like curves."""
    rows = run.metrics
    keys: list[str] = []
    for row in rows:
        for k, v in row.items():
            if k != "epoch" and k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool):
                keys.append(k)
    series = {k: _floats([row.get(k, math.nan) if isinstance(row.get(k), (int, float)) else math.nan for row in rows])
              for k in keys}
    accuracy = [k for k in keys if "acc" in k.lower()]
    loss = [k for k in keys if "loss" in k.lower()]
    return {
        "epochs": [int(row.get("epoch", i)) for i, row in enumerate(rows)],
        "accuracy": accuracy,
        "loss": loss,
        "series": series,
        # Each chart's colours as the static pictures draw them (epochscope.colors), by name.
        "colors": {**curve_colors(accuracy), **curve_colors(loss)},
    }


def _quality(epochs: list[int], quality: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    """The map-quality curves, with their colours as quality.png draws them."""
    series = {str(k): _floats(v) for k, v in dict(quality).items()}
    return {"epochs": epochs, "series": series, "colors": curve_colors(list(series))}


#: The most characters of an example's text the hover shows (the run keeps up to 1,000).
HOVER_TEXT_CHARS = 300
#: A tabular example's values are shown on hover when it has at most this many.
HOVER_MAX_FEATURES = 16


def _hover_texts(texts: Sequence[str] | None, inputs: np.ndarray | None, idx: np.ndarray) -> list[str] | None:
    """Per shown example, the line hovering shows under its label: its text (cut to
    :data:`HOVER_TEXT_CHARS`; data, which the viewer sets as text, never as markup), or for
    flat numeric inputs of at most :data:`HOVER_MAX_FEATURES` values (Iris) those values;
    ``None`` when the run holds neither (or images, shown as thumbnails)."""
    if texts is not None:
        return [t if len(t) <= HOVER_TEXT_CHARS else t[:HOVER_TEXT_CHARS - 1] + "…" for t in (texts[i] for i in idx)]
    if inputs is None:
        return None
    x = np.asarray(inputs)
    if x.ndim != 2 or x.shape[1] > HOVER_MAX_FEATURES or x.dtype.kind not in "biuf":
        return None
    return ["inputs: " + ", ".join(f"{float(v):.4g}" for v in x[i]) for i in idx]


def _thumbnails(run: Run, probe_idx: np.ndarray, test_idx: np.ndarray | None) -> dict[str, Any] | None:
    """One sprite: the shown probe inputs, then the shown test inputs (when images were kept)."""
    probe = as_images(run.probe_inputs)
    if probe is None:
        return None
    parts = [probe[probe_idx]]
    test = as_images(run.test_inputs) if test_idx is not None else None
    if test is not None and test.shape[1:] == probe.shape[1:]:
        parts.append(test[test_idx])
    sprite = sprite_sheet(np.concatenate(parts) if len(parts) > 1 else parts[0])
    return {**sprite.to_json(), "testOffset": len(probe_idx) if len(parts) > 1 else None}
