"""The embedder's public door: :func:`embed` and the :class:`Maps` it returns.

``epochscope.embed`` and ``epochscope.Maps`` resolve here lazily, so importing
epochscope does not import umap (or numba).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import RunError, stops_on_damage, unknown_name_message
from ..run import Run, open_run
from .align import align_chain, robust_bounds
from .base import MethodSettings, SequenceResult
from .cache import cache_key, epoch_fingerprints, load_maps, save_maps
from .methods import METHODS
from .quality import CkaTerm, frame_quality, motion, pairwise_distances, quality_subsample
from .source import LayerSequence, find_unusable_epochs

__all__ = ["Maps", "embed", "METHODS", "QUALITY_NAMES", "method_settings"]

log = logging.getLogger("epochscope")

QUALITY_NAMES = ("trustworthiness", "motion", "knn_accuracy_map", "knn_accuracy_layer", "cka_previous",
                 "separation", "separation_layer")


@dataclass(frozen=True, eq=False)
class Maps:
    """2-D maps of one layer at every embedded epoch, aligned so that frames can be animated.

    Attributes
    ----------
    layer, method : what was embedded and how.
    params : the method's settings (they key the cache).
    epochs : the epochs embedded, ascending (epochs with NaN/Inf activations are left out).
    coords : float32 ``(n_epochs, n_probe, 2)``; frame ``i`` belongs to ``epochs[i]``.
    test_coords : float32 ``(n_epochs, n_test, 2)`` placed on each frame with that frame's
        transform, or ``None`` when the run holds no test set.
    quality : per-epoch float arrays of length ``n_epochs``: ``trustworthiness``,
        ``motion`` (NaN for the first), ``knn_accuracy_map``, ``knn_accuracy_layer``,
        ``cka_previous`` (NaN for the first), ``separation`` (silhouette of the frame's
        points by class) and ``separation_layer`` (the same in the layer's own space): a
        map tells the layer's story when the two rise and fall together
        (:mod:`epochscope.maps.quality`).
    bounds : ``(xmin, xmax, ymin, ymax)``, the same axes for every frame.
    skipped : ``{epoch: reason}`` for requested epochs that were not embedded.

    Example::

        maps = epochscope.embed("runs/mnist", "hidden")
        xy = maps.frame(maps.epochs[-1])          # (n_probe, 2)
        maps.quality["trustworthiness"].min()
    """

    layer: str
    method: str
    params: dict
    epochs: list
    coords: np.ndarray
    test_coords: np.ndarray | None
    quality: dict
    bounds: tuple
    skipped: dict

    def __repr__(self) -> str:
        span = f"{self.epochs[0]}..{self.epochs[-1]}" if self.epochs else "none"
        tw = self.quality.get("trustworthiness")
        tw_text = f", trustworthiness {np.nanmin(tw):.3f}..{np.nanmax(tw):.3f}" if tw is not None and len(tw) else ""
        return (f"Maps(layer={self.layer!r}, method={self.method!r}, epochs={span} ({len(self.epochs)}), "
                f"probe={self.coords.shape[1]}, test={0 if self.test_coords is None else self.test_coords.shape[1]}"
                f"{tw_text}, skipped={sorted(self.skipped)})")

    def _repr_html_(self) -> str:
        """In a notebook: what was mapped, the quality per epoch and the last frame (see :mod:`.inline`)."""
        from .inline import maps_html

        return maps_html(self)

    def _index(self, epoch: int) -> int:
        epoch = int(epoch)
        try:
            return self.epochs.index(epoch)
        except ValueError:
            if epoch in self.skipped:
                raise ValueError(f"epoch {epoch} was not embedded: {self.skipped[epoch]}") from None
            span = f"{self.epochs[0]}..{self.epochs[-1]}" if self.epochs else "none"
            raise ValueError(f"epoch {epoch} is not in these maps (epochs {span})") from None

    def frame(self, epoch: int) -> np.ndarray:
        """The probe set's ``(n_probe, 2)`` coordinates at ``epoch``."""
        return self.coords[self._index(epoch)]

    def test_frame(self, epoch: int) -> np.ndarray | None:
        """The test set's ``(n_test, 2)`` coordinates at ``epoch``, or ``None`` without a test set."""
        if self.test_coords is None:
            self._index(epoch)
            return None
        return self.test_coords[self._index(epoch)]


def method_settings(method: str, options: dict[str, Any]) -> MethodSettings:
    """The settings object of ``method`` built from ``options`` (clear errors for unknown names).

    >>> method_settings("pca", {}).params()
    {'scale': 'rms'}
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(unknown_name_message("method", str(method), list(METHODS)))
    module_name, class_name = METHODS[method]
    cls = getattr(importlib.import_module(module_name), class_name)
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        listing = ", ".join(valid) if valid else "none"
        raise TypeError(f"embed(method={method!r}) got unknown option(s) {', '.join(unknown)}; "
                        f"its options are: {listing}")
    return cls(**options)


def _as_run(run: Run | str | os.PathLike[str]) -> Run:
    if isinstance(run, Run):
        return run
    if isinstance(run, (str, os.PathLike)):
        return open_run(run)
    raise TypeError(f"run must be a Run or the path of a run directory, got {type(run).__name__}")


def _choose_epochs(run: Run, layer: str, epochs: Sequence[int] | None) -> list[int]:
    available = run.epochs
    if not available:
        raise RunError(f"{run.path} holds no finished epoch yet; record at least one before embedding")
    held = run.layer_epochs(layer)  # a layer added when the run was resumed is held from then on
    if epochs is None:
        if not held:
            raise RunError(f"layer '{layer}': no epoch of {run.path} holds its outputs; nothing can be embedded")
        return held
    chosen = sorted({int(e) for e in epochs})
    missing = [e for e in chosen if e not in set(available)]
    if missing:
        raise ValueError(f"epochs {missing} are not in the run {run.path} (epochs {available[0]}..{available[-1]})")
    lacking = [e for e in chosen if e not in set(held)]
    if lacking:
        raise ValueError(f"epochs {lacking}: layer '{layer}' has no outputs there (it is held at epochs "
                         f"{held[0] if held else '-'}..{held[-1] if held else '-'}, added when the run was resumed?)")
    if not chosen:
        raise ValueError("epochs must name at least one epoch (or be None for all)")
    return chosen


def _quality(source: LayerSequence, coords: list[np.ndarray], *,
             before: tuple[int, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Quality figures of each frame; ``before``: ``(epoch, aligned frame)`` of the frame that
    precedes ``source.epochs[0]`` (an extended growing entry), for its motion and CKA."""
    sub = quality_subsample(source.n_probe)
    labels = source.labels[sub]
    n = len(coords)
    q = {name: np.full(n, np.nan) for name in QUALITY_NAMES}
    previous_layer = previous_frame = None
    if before is not None:
        previous_layer = CkaTerm.from_squared_distances(pairwise_distances(source.probe(before[0], rows=sub)))
        previous_frame = before[1]
    for i, epoch in enumerate(source.epochs):
        dist = pairwise_distances(source.probe(epoch, rows=sub))
        for name, value in frame_quality(None, coords[i][sub], labels, k=10, squared_distances=dist).items():
            q[name][i] = value
        layer = CkaTerm.from_squared_distances(dist)
        if previous_layer is not None:
            q["motion"][i] = motion(previous_frame, coords[i])
            q["cka_previous"][i] = previous_layer.cka(layer)
        previous_layer, previous_frame = layer, coords[i]
    return q


def _maps_from_entry(layer: str, method: str, params: dict, hit: dict[str, Any]) -> Maps:
    meta = hit["meta"]
    return Maps(layer=layer, method=method, params=params, epochs=[int(e) for e in meta["epochs"]],
                coords=hit["coords"], test_coords=hit["test_coords"],
                quality={k: hit["quality"][k] for k in QUALITY_NAMES},
                bounds=tuple(float(b) for b in meta["bounds"]),
                skipped={int(k): str(v) for k, v in meta["skipped"].items()})


def _gaps(run: Run, layer: str, held: list[int]) -> dict[int, str]:
    """Epochs after the first of ``held`` whose file of ``layer`` is missing or not a
    regular file (deleted, a link): logged and listed as skipped, so a time-lapse never jumps over
    an epoch without saying so (``epochscope check`` names the file)."""
    if not held:
        return {}
    gaps = {e: "its activations file is missing or not a regular file (epochscope check names it)"
            for e in run.epochs if e > held[0] and e not in set(held)}
    if gaps:
        log.warning("layer %r: epochs %s have no readable activations file; embedding the others (run epochscope check)",
                    layer, sorted(gaps))
    return gaps


def _extends(hit: dict[str, Any] | None, requested: list[int], fingerprints: dict[str, str]) -> bool:
    """Whether a growing entry holds the first epochs of ``requested``, built from the outputs
    the run holds now (``fingerprints``), and can be continued to the rest."""
    if hit is None or hit.get("state") is None:
        return False
    done = [int(e) for e in hit["meta"]["requested"]]
    return (len(done) < len(requested) and requested[:len(done)] == done and bool(hit["meta"]["epochs"])
            and all(hit["meta"]["fingerprints"].get(str(e)) == fingerprints[str(e)] for e in done))


def embed_timed(run: Run | str | os.PathLike[str], layer: str | None = None, method: str = "umap", *,
                epochs: Sequence[int] | None = None, cache: bool = True, progress: bool = True,
                **options: Any) -> tuple[Maps, dict[str, float]]:
    """:func:`embed`, also returning seconds per phase (``fit``, ``test``, ``align``, ``quality``;
    ``cached`` when read back). For benchmarks; same arguments as :func:`embed`."""
    # a run file that cannot be read (activations, labels) stops the maps with `epochscope check`
    with stops_on_damage(run, "the maps are not made"):
        return _embed_timed(run, layer, method, epochs=epochs, cache=cache, progress=progress, **options)


def _embed_timed(run: Run | str | os.PathLike[str], layer: str | None, method: str, *,
                 epochs: Sequence[int] | None, cache: bool, progress: bool, **options: Any) -> tuple[Maps, dict[str, float]]:
    run = _as_run(run)
    if layer is None:
        if not run.layers:
            raise RunError(f"{run.path} records no layer; nothing to embed")
        layer = run.layers[0]
    run.layer_info(layer)  # ValueError listing the recorded layers
    settings = method_settings(method, options)
    requested = _choose_epochs(run, layer, epochs)
    params = settings.params()
    # One growing entry per layer, method and settings for a method that can continue its
    # sequence (all epochs requested): a run that gained epochs computes only the new frames.
    growing = epochs is None and settings.incremental
    key = cache_key(run, layer, method, params, None if growing else requested)
    timings: dict[str, float] = {}
    hit = None
    # What identifies each epoch's recorded outputs: an epoch dropped by a repair and recorded
    # again must not be shown with the frame (and figures) of its old outputs.
    fingerprints = epoch_fingerprints(run, layer, requested)
    if cache:
        t0 = time.perf_counter()
        hit = load_maps(run, key, quality=QUALITY_NAMES)
        if (hit is not None and [int(e) for e in hit["meta"]["requested"]] == requested
                and hit["meta"]["fingerprints"] == fingerprints):
            timings["cached"] = time.perf_counter() - t0
            log.debug("maps of %r (%s) read from the cache %s", layer, method, key)
            return _maps_from_entry(layer, method, params, hit), timings
    resume = hit if growing and _extends(hit, requested, fingerprints) else None
    todo = requested[len(resume["meta"]["requested"]):] if resume is not None else requested

    unusable = find_unusable_epochs(run, layer, todo)
    if unusable:
        log.warning("layer %r: epochs %s hold NaN/Inf activations (diverged training?); embedding the others",
                    layer, sorted(unusable))
    usable = [e for e in todo if e not in unusable]
    skipped = {**_gaps(run, layer, requested if epochs is None else []), **unusable}
    if resume is not None:
        skipped = {**{int(k): str(v) for k, v in resume["meta"]["skipped"].items()}, **skipped}
    if not usable and resume is None:
        raise RunError(f"layer {layer!r}: every requested epoch holds NaN/Inf activations ({sorted(unusable)}); "
                       "nothing can be embedded")
    source = LayerSequence(run, layer, usable)
    if source.n_probe < settings.min_examples:
        # Suggest only a setting the method has (pca has none to lower).
        knob = next((name for name in ("n_neighbors", "perplexity") if name in params), None)
        fix = f"lower {knob} or record a larger probe set" if knob else "record a larger probe set"
        raise ValueError(f"layer {layer!r} has {source.n_probe} probe examples but method {method!r} with "
                         f"{params} needs at least {settings.min_examples}; {fix}")

    before = None
    if resume is not None:
        log.debug("maps of %r (%s): continuing the cached %d epochs with %d new", layer, method,
                  len(resume["meta"]["epochs"]), len(usable))
        before = (int(resume["meta"]["epochs"][-1]), np.asarray(resume["coords"][-1]))
    if usable:
        state = resume["state"] if resume is not None else None
        result: SequenceResult = (settings.embed_sequence(source, progress=progress, state=state) if state is not None
                                  else settings.embed_sequence(source, progress=progress))
        timings.update(result.timings)
        t0 = time.perf_counter()
        if result.align == "procrustes":
            coords, tests = align_chain(result.coords, result.test_coords, anchor=result.anchor,
                                        previous=None if before is None else before[1])
        else:
            coords, tests = [np.asarray(c, np.float32) for c in result.coords], list(result.test_coords)
        timings["align"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        quality = _quality(source, coords, before=before)
        timings["quality"] = time.perf_counter() - t0
        new_state = result.state
    else:  # every new epoch is unusable: the entry only learns that
        coords, tests, quality, new_state = [], [], {k: np.zeros(0) for k in QUALITY_NAMES}, resume["state"]
    has_test = source.has_test and all(t is not None for t in tests)
    if resume is not None:
        has_test = has_test and resume["test_coords"] is not None
        coords = [*resume["coords"], *coords]
        tests = [*(resume["test_coords"] if has_test else [None] * len(resume["coords"])), *tests]
        quality = {k: np.concatenate([resume["quality"][k], quality[k]]) for k in QUALITY_NAMES}
        usable = [int(e) for e in resume["meta"]["epochs"]] + usable
    coords_arr = np.stack(coords).astype(np.float32)
    tests_arr = np.stack(tests).astype(np.float32) if has_test else None
    bounds = robust_bounds([*coords, *(tests if has_test else [])])
    maps = Maps(layer=layer, method=method, params=params, epochs=usable, coords=coords_arr, test_coords=tests_arr,
                quality=quality, bounds=bounds, skipped=skipped)
    if cache:
        save_maps(run, key, {"layer": layer, "method": method, "params": params, "epochs": usable,
                             "requested": requested, "bounds": list(bounds),
                             "skipped": {str(k): v for k, v in skipped.items()}, "fingerprints": fingerprints},
                  coords_arr, tests_arr, quality, state=new_state if growing else None)
    return maps, timings


def embed(run: Run | str | os.PathLike[str], layer: str | None = None, method: str = "umap", *,
          epochs: Sequence[int] | None = None, cache: bool = True, progress: bool = True, **options: Any) -> Maps:
    """2-D maps of ``layer`` at every epoch of ``run``, aligned across epochs and cached in the run.

    Parameters
    ----------
    run : a :class:`~epochscope.Run` or the path of a run directory.
    layer : a recorded layer (default: the run's first layer).
    method : ``"umap"`` (default: every frame a converged UMAP of its epoch, held in place
        by the frame before),
        ``"umap-independent"`` (the classic recipe: a fresh UMAP with n_neighbors=40 per
        epoch), ``"aligned-umap"`` (umap-learn's AlignedUMAP, slow), ``"pca"`` (fast,
        sign-aligned), ``"tsne"`` (openTSNE, warm-started).
    epochs : which epochs to embed (default: all finished ones). Epochs whose activations
        hold NaN/Inf are skipped, logged and listed in ``Maps.skipped``.
    cache : read the maps from ``run.cache_dir/maps`` when the same layer, method, settings
        and epochs were embedded before, and store them there otherwise. With the default
        method and ``epochs=None`` the entry grows with the run: epochs added since it was
        written are computed (only they) and appended (docs/maps.md, "Incremental maps").
    progress : show a progress bar over the epochs.
    **options : the method's settings, e.g. ``n_neighbors=15``, ``warm_epochs=60`` for
        ``umap``; an unknown option raises ``TypeError`` listing the valid ones.

    Returns
    -------
    Maps : float32 coordinates ``(n_epochs, n_probe, 2)`` (and ``(n_epochs, n_test, 2)`` with a
        test set) in the map's own units, one frame per embedded epoch, and the per-epoch quality.

    Raises
    ------
    NotARunError : ``run`` is a path that holds no run.
    RunError : the run holds no finished epoch, no epoch holds ``layer``, or every requested
        epoch holds NaN/Inf; also a run file that cannot be read (truncated, corrupted), named
        with the advice to run ``epochscope check RUN``.
    ValueError : an unknown ``method`` or ``layer`` (the message lists the valid ones), ``epochs``
        the run (or the layer) does not hold, or fewer probe examples than the method needs.
    TypeError : an option the method does not have (the message lists its options), or a ``run``
        that is neither a :class:`~epochscope.Run` nor a path.
    MissingDependencyError : the method's package is not installed (numba for ``umap``,
        umap-learn for ``umap-independent`` and ``aligned-umap``, openTSNE for ``tsne``); the
        message names the ``pip install`` to run.

    Example::

        maps = epochscope.embed("runs/mnist", "hidden")               # warm-started UMAP chain
        quick = epochscope.embed("runs/mnist", "hidden", method="pca")
        print(maps.quality["trustworthiness"])
    """
    return embed_timed(run, layer, method, epochs=epochs, cache=cache, progress=progress, **options)[0]
