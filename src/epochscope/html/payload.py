"""Collect what the report shows from a run and its 2-D maps into one JSON-able payload.

This is the "data" half of the report; :mod:`epochscope.html.page` turns a payload into
HTML. Keeping them apart lets the viewer be tested with hand-made maps, without fitting any.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from .._errors import RunError, damaged_file_error
from .._progress import progress as progress_bar
from .._text import relative_paths
from ..analysis import (
    MAX_FULL_CLASSES,
    confusion_classes,
    confusion_over_epochs,
    confusion_split,
    confusion_summary,
    forgetting_events,
    most_forgotten,
    placement_quality,
    run_contents,
    series_label,
    split_of,
)
from ..colors import class_colors_hex, curve_colors
from ..run import Run
from .encode import pack_array, quantise_coords, raw_array
from .thumbnails import as_images, sprite_sheet

__all__ = ["MapsLike", "build_payload", "damaged", "HIGHLIGHT_COUNT", "MAX_LEGEND_CLASSES", "NAME_CHARS", "short_name"]

log = logging.getLogger("epochscope")

HIGHLIGHT_COUNT = 25  # most-forgotten examples ringed by the "highlight" toggle
PAYLOAD_VERSION = 2
#: More classes than this get no legend buttons (a note says why), as the static maps.
MAX_LEGEND_CLASSES = 60
#: Names from the run are cut to this many characters in the page (a 1 MB class name would be
#: carried and laid out in full otherwise).
NAME_CHARS = 120
_OTHER_METRICS = ("epoch",)


def short_name(name: object, limit: int = NAME_CHARS) -> str:
    """``name`` as text of at most ``limit`` characters (an ellipsis ends a cut name).

    >>> short_name("x" * 200, 5)
    'xxxx…'
    """
    text = str(name)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _run_name(run: Run) -> str:
    """A run's name for the title: its folder, with the parent when the folder says nothing ("run")."""
    path = run.path
    name = path.name or str(path)
    if name.lower() in ("run", "runs", "out", "output", ".") and path.parent.name:
        return f"{path.parent.name}/{name}"
    return name


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
    maps: MapsLike | None,
    *,
    layer: str | None,
    method: str,
    max_points: int | None = None,
    network: Mapping[str, Any] | None = None,
    seed: int = 0,
    title: str | None = None,
    progress: bool = False,
    paths_from: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Everything the viewer draws, as plain JSON data with packed arrays.

    Parameters
    ----------
    run : the opened run.
    maps : 2-D maps of ``layer`` (an ``epochscope.Maps`` or any object with its fields), or
        ``None`` for a run without maps (imported from checkpoints): the page then shows the
        curves and the network, and a note says why there is no map.
    layer, method : shown in the title.
    max_points : keep at most this many probe (and test) points, a fixed random subset
        chosen with ``seed``; ``None`` keeps all. The confusion matrices and curves always
        count every example.
    network : optional per-epoch network drawing data (see :mod:`epochscope.html.network`).
    title : the page's title (default: ``"Layer L, epochs A–B: RUN"``).
    progress : show progress while predictions are read.
    paths_from : the folder the data name paths relative to (default: the run's parent folder).
        The data name no absolute path of this machine (a report is a file to share): ``info.run``
        is the run's path from there (by default its folder's name), and a path quoted in a note
        (an epoch's reason for having no map, the network's note) reads from there too (a path
        outside it by its last part only; :func:`epochscope._text.relative_paths`).

    The confusion matrix counts the split :func:`epochscope.analysis.confusion_split` names
    (the test set when the run recorded one, as ``confusion.png``): ``confusion`` holds
    ``(n_epochs, k, k)`` counts (uint32) of the classes ``confusionNames`` (every class up to
    :data:`~epochscope.analysis.MAX_FULL_CLASSES`, else the most confused ones and "all
    other classes", as the PNG does), ``confusionSplit`` the split's name, ``confusionMissing``
    per epoch the examples without a prediction and ``confusionCorrect`` the right answers
    (counted as in the PNG).

    ``first`` holds the first view (the last epoch) unpacked, so the page draws it while the
    script runs, before any asynchronous decoding: a screenshot or a printout shows the map.

    Raises ``ValueError`` for maps of the wrong shape or a bad ``max_points``, ``RunError``
    for maps without any epoch or a predictions file that is missing or cannot be read (damage,
    never shown as "not recorded"; the message names the file and ``epochscope check``).

    Example::

        payload = build_payload(run, maps, layer="hidden", method="pca")
    """
    if max_points is not None and (isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1):
        raise ValueError(f"max_points must be a positive integer or None, got {max_points!r}; "
                         "e.g. max_points=20000")
    contents = run_contents(run)
    epochs = [int(e) for e in (maps.epochs if maps is not None else run.epochs)]
    if not epochs:
        skipped = dict(maps.skipped) if maps is not None else {}
        raise RunError(f"the maps of layer '{layer}' hold no epoch (skipped: {skipped or 'none'}); "
                       "record at least one epoch or check the embedder's messages")
    n_probe = run.manifest.probe_size
    coords = None
    if maps is not None:
        coords = np.asarray(maps.coords)
        if coords.shape != (len(epochs), n_probe, 2):
            raise ValueError(f"maps.coords: expected shape {(len(epochs), n_probe, 2)} (epochs, probe points, 2), "
                             f"got {coords.shape}")
    class_names = [short_name(c) for c in run.class_names]
    n_classes = len(class_names)
    rng = np.random.default_rng(seed)
    probe_idx = _subset(n_probe, max_points, rng)
    labels = np.asarray(run.labels)
    test_labels = None if run.test_labels is None else np.asarray(run.test_labels)

    predictions = contents.predictions
    probe_pred_all = _predictions(run, epochs, "probe", n_probe, progress and predictions) if predictions else None
    test_pred_all = None
    if predictions and test_labels is not None:
        test_pred_all = _predictions(run, epochs, "test", len(test_labels), progress)
    name = _run_name(run)
    folder = os.path.abspath(run.path)
    root = os.path.abspath(paths_from) if paths_from is not None else os.path.dirname(folder)

    def here(text: object) -> str:  # a text that may quote paths, with none of this machine's in it
        return relative_paths(str(text), root, name=os.path.basename(root) or root)

    span = f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {epochs[0]}–{epochs[-1]}"
    if run.manifest.record_unit == "step":  # records numbered by step: name them by their place in training
        timeline = run.timeline
        span = " – ".join(dict.fromkeys([timeline.label(epochs[0]), timeline.label(epochs[-1])]))
    payload: dict[str, Any] = {
        "version": PAYLOAD_VERSION,
        "title": title or (f"Layer {layer}, {span}: {name}" if layer else f"Training, {span}: {name}"),
        "runName": name,
        "info": {
            "run": here(folder),
            "framework": run.framework,
            "layer": layer,
            "method": method,
            "created": run.manifest.created,
            "probeSize": n_probe if contents.maps else 0,
            "testSize": run.manifest.test_size if contents.maps else 0,
            "shownPoints": len(probe_idx) if contents.maps else 0,
        },
        "classNames": class_names,
        "colors": class_colors_hex(n_classes),
        "legend": n_classes <= MAX_LEGEND_CLASSES,
        "epochs": epochs,
        "skipped": {str(k): here(v) for k, v in dict(maps.skipped if maps is not None else {}).items()},
        "skippedNote": here(contents.skipped_note()),
        "metrics": _metrics(run),
        "quality": _quality(maps, epochs),
        **_time(run),
        "network": ({**network, "note": here(network["note"])} if network and network.get("note") else
                    dict(network) if network else None),
        "probe": None,
        "test": None,
        "thumbnails": None,
        "first": None,
    }
    last_confusion = None
    if predictions:
        conf = _confusion(run, labels, test_labels, probe_pred_all, test_pred_all, n_classes)
        last_confusion = conf.pop("_last_confusion")
        payload.update(conf)
    else:
        payload.update({"confusion": None, "confusionNames": [], "confusionSplit": None})
    if maps is None:
        return payload

    # Quantised over the extent of every point, so nothing is clipped; the first view shows the
    # maps' (robust) bounds and marks points beyond them at the edge.
    payload["view"] = [float(b) for b in maps.bounds]
    test_coords = None if maps.test_coords is None else np.asarray(maps.test_coords)
    bounds = _extent(coords, test_coords, maps.bounds)
    payload["bounds"] = bounds
    payload["probe"] = _point_set(coords, bounds, labels, probe_pred_all, probe_idx, n_classes)
    events, ranked = _forgetting(run, n_probe)
    payload["probe"]["forgetting"] = pack_array(np.minimum(events[probe_idx], 255).astype(np.uint8))
    # The ranking of every probe example kept in its order, restricted to the shown ones, as
    # positions among the shown points (probe_idx is sorted, so searchsorted finds them).
    shown = ranked[np.isin(ranked, probe_idx)][:HIGHLIGHT_COUNT]
    payload["probe"]["mostForgotten"] = [int(i) for i in np.searchsorted(probe_idx, shown)]

    test_idx = np.arange(0)
    if test_coords is not None and test_labels is not None:
        n_test = len(test_labels)
        if test_coords.shape != (len(epochs), n_test, 2):
            raise ValueError(f"maps.test_coords: expected shape {(len(epochs), n_test, 2)}, got {test_coords.shape}")
        test_idx = _subset(n_test, max_points, rng)
        test_pred = test_pred_all if test_pred_all is not None else np.full((len(epochs), n_test), -1)
        payload["test"] = _point_set(test_coords, bounds, test_labels, test_pred, test_idx, n_classes)
        payload["test"].update(_placements(coords, labels, test_coords[:, test_idx], n_classes))
    payload["thumbnails"] = _thumbnails(run, probe_idx, test_idx if payload["test"] else None)
    # What hovering shows where there is no image: the example's text, or a tabular example's values.
    payload["probe"]["texts"] = _hover_texts(run.probe_texts, run.probe_inputs, probe_idx)
    if payload["test"]:
        payload["test"]["texts"] = _hover_texts(run.test_texts, run.test_inputs, test_idx)
    payload["first"] = _first_view(payload, coords, test_coords, bounds, labels, test_labels, probe_idx, test_idx,
                                   n_classes)
    if last_confusion is not None:  # the first view's counts, unpacked (the last epoch's)
        payload["first"]["confusion"] = [int(v) for v in np.asarray(last_confusion).reshape(-1)]
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


def damaged(run: Run, err: BaseException) -> RunError:
    """``err`` (a run file that could not be read) as the error that stops a report: the file and what
    to do. A damaged file is never drawn as "nothing recorded" (see :func:`_predictions`)."""
    return damaged_file_error(run.path, err, "the report is not written")


def _predictions(run: Run, epochs: Sequence[int], split: str, n: int, progress: bool = False) -> np.ndarray:
    """``(n_epochs, n)`` predicted classes (``-1`` where the model gave none, as recorded).

    Every finished epoch holds its predictions file (the writer stores ``-1`` where none were given),
    so a missing or unreadable one is damage: it raises (:func:`damaged`) and is never shown as an
    epoch without predictions."""
    out = np.full((len(epochs), n), -1, dtype=np.int64)
    for row, epoch in progress_bar(list(enumerate(epochs)), desc=f"reading {split} predictions", enabled=progress):
        try:
            pred = run.predictions(epoch) if split == "probe" else run.test_predictions(epoch)
        except RunError as err:
            raise damaged(run, err) from err
        if pred is not None:  # (its shape was checked against the manifest when read)
            out[row] = pred
    return out


def _confusion(run: Run, labels: np.ndarray, test_labels: np.ndarray | None, probe_pred: np.ndarray,
               test_pred: np.ndarray | None, n_classes: int) -> dict[str, Any]:
    """The confusion matrix of every epoch, counted as ``confusion.png`` counts it (see :func:`build_payload`)."""
    # The same split as confusion.png (the test set when there is one): both ask analysis.
    split = confusion_split(run)
    y_true, pred = (test_labels, test_pred) if split == "test" and test_pred is not None else (labels, probe_pred)
    missing = ((pred < 0) | (pred >= n_classes)).sum(axis=1)
    if n_classes <= MAX_FULL_CLASSES:
        counts = confusion_over_epochs(y_true, pred, n_classes)
        names = [short_name(c) for c in run.class_names]
        correct = [int(np.trace(c)) for c in counts]
    else:  # the most confused classes (at the last epoch) and "all other classes", never n x n
        classes = confusion_classes(y_true, pred[-1], n_classes)
        summaries = [confusion_summary(y_true, row, n_classes, classes) for row in pred]
        counts = np.stack([sm.counts for sm in summaries])
        names = [short_name(run.class_names[c]) for c in classes] + [f"all other {n_classes - len(classes):,} classes"]
        correct = [sm.correct for sm in summaries]
    return {
        "_last_confusion": counts[-1],
        "confusion": pack_array(counts.astype(np.uint32)),
        "confusionNames": names,
        "confusionClasses": n_classes,
        "confusionSplit": split,
        "confusionMissing": [int(k) for k in missing],
        # Of those, the predictions of a class the run does not name (a model with more outputs than classes).
        "confusionOutside": [int(k) for k in (pred >= n_classes).sum(axis=1)],
        "confusionCorrect": correct,
    }


def _extent(coords: np.ndarray, test_coords: np.ndarray | None, view: Sequence[float]) -> list[float]:
    """``[xmin, xmax, ymin, ymax]`` holding every finite point of every epoch and the view."""
    lo = np.array([view[0], view[2]], dtype=np.float64)
    hi = np.array([view[1], view[3]], dtype=np.float64)
    for arr in (coords, test_coords):
        if arr is None or not arr.size:
            continue
        flat = np.asarray(arr, dtype=np.float64).reshape(-1, 2)
        flat = flat[np.isfinite(flat).all(axis=1)]
        if len(flat):
            lo, hi = np.minimum(lo, flat.min(axis=0)), np.maximum(hi, flat.max(axis=0))
    return [float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])]


def _placements(coords: np.ndarray, labels: np.ndarray, test_coords: np.ndarray, n_classes: int) -> dict[str, Any]:
    """Per epoch and shown test point, how far to trust where it was placed
    (:func:`epochscope.analysis.placement_quality`): ``placement`` bit 1 far from every probe
    point, bit 2 among probe points of several classes; the nearest probe points' majority class
    and how many of the ``neighbours`` nearest hold it."""
    n_epochs, m = test_coords.shape[:2]
    flags = np.zeros((n_epochs, m), np.uint8)
    dtype = _label_dtype(n_classes)
    klass = np.full((n_epochs, m), np.iinfo(dtype).max, dtype)
    count = np.zeros((n_epochs, m), np.uint8)
    k = 0
    for e in range(n_epochs):
        pl = placement_quality(coords[e], labels, test_coords[e])
        k = pl.k
        flags[e] = pl.far.astype(np.uint8) | (pl.mixed.astype(np.uint8) << 1)
        known = pl.neighbour_class >= 0
        klass[e, known] = pl.neighbour_class[known]
        count[e] = np.minimum(pl.neighbour_count, 255)
    return {"placement": pack_array(flags), "neighbourClass": pack_array(klass), "neighbourCount": pack_array(count),
            "neighbours": int(k)}


def _first_view(payload: dict[str, Any], coords: np.ndarray, test_coords: np.ndarray | None, bounds: Sequence[float],
                labels: np.ndarray, test_labels: np.ndarray | None, probe_idx: np.ndarray, test_idx: np.ndarray,
                n_classes: int) -> dict[str, Any]:
    """The last epoch's points, unpacked (plain base64): the page draws them while its script runs."""
    e = coords.shape[0] - 1
    dtype = _label_dtype(n_classes)
    first: dict[str, Any] = {
        "index": int(e),
        "confusion": None,
        "probe": {"coords": raw_array(quantise_coords(coords[e, probe_idx], tuple(bounds))),
                  "labels": raw_array(labels[probe_idx].astype(dtype))},
        "test": None,
    }
    if payload.get("test") and test_coords is not None and test_labels is not None:
        first["test"] = {"coords": raw_array(quantise_coords(test_coords[e, test_idx], tuple(bounds))),
                         "labels": raw_array(test_labels[test_idx].astype(dtype))}
    return first


def _forgetting(run: Run, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per probe example, forgetting events over every recorded epoch; and the indices of the
    examples with at least one event, most forgotten first (both from :mod:`epochscope.analysis`).
    A predictions file that cannot be read, also at an epoch the maps leave out, raises (:func:`damaged`)."""
    try:
        return forgetting_events(run), most_forgotten(run, n)
    except RunError as err:  # a damaged predictions file (every epoch holds one): never counted as no event
        raise damaged(run, err) from err


def _floats(values: Sequence[float]) -> list[float | None]:
    return [float(v) if v is not None and math.isfinite(float(v)) else None for v in np.asarray(values, float).ravel()]


def _series(key: str, values: Sequence[float], color: str) -> dict[str, Any]:
    return {"key": str(key), "name": series_label(key), "color": color, "values": _floats(values)}


def _metrics(run: Run) -> dict[str, Any]:
    """Numeric per-epoch metrics in two panels, accuracy-like and loss-like, each series with its
    words (:func:`epochscope.analysis.series_label`) and colour (the role's, as curves.png)."""
    rows = run.metrics
    keys: list[str] = []
    for row in rows:
        for k, v in row.items():
            if k not in _OTHER_METRICS and k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool):
                keys.append(k)

    def values(k: str) -> list[float]:
        return [row.get(k, math.nan) if isinstance(row.get(k), (int, float)) else math.nan for row in rows]

    def panel(word: str) -> list[dict[str, Any]]:
        chosen = [k for k in keys if word in k.lower()]
        order = {"train": 0, "val": 1, "probe": 2, "test": 3}
        chosen.sort(key=lambda k: order[split_of(k)])
        colors = curve_colors(chosen)  # the role's colour, as curves.png; others distinct
        return [_series(k, values(k), colors[k]) for k in chosen
                if any(v is not None for v in _floats(values(k)))]

    return {"epochs": [int(row.get("epoch", i)) for i, row in enumerate(rows)], "accuracy": panel("acc"),
            "loss": panel("loss")}


def _time(run: Run) -> dict[str, Any]:
    """``{"time": ...}`` for a run recorded inside epochs (records numbered by step): every
    record's place on the time axis (``values``: its fractional epoch, or its step when some are
    unknown) and its name (``"epoch 0.26 · step 120"``); ``{}`` for a run recorded once an epoch,
    whose epochs are their own places and names (its report is unchanged)."""
    timeline = run.timeline
    if not timeline.by_step:
        return {}
    records = list(timeline.records)
    return {"time": {"axis": timeline.axis, "records": records, "values": timeline.values().tolist(),
                     "labels": [timeline.label(r) for r in records]}}


def _quality(maps: MapsLike | None, epochs: Sequence[int]) -> dict[str, Any]:
    """The map's quality figures per epoch, in words, with the colours of quality.png; every key
    ``Maps.quality`` holds is drawn (also ones added later)."""
    if maps is None:
        return {"epochs": list(epochs), "series": []}
    series = []
    colors = curve_colors([str(k) for k in dict(maps.quality)])
    for k, v in dict(maps.quality).items():
        vals = _floats(v)
        if len(vals) == len(epochs) and any(x is not None for x in vals):
            series.append(_series(k, vals, colors[str(k)]))
    return {"epochs": list(epochs), "series": series}


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
