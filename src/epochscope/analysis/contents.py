"""What a run holds to draw, in one place for ``render``, ``report`` and the command line.

A recorded run holds everything; a run written by an importer (Chainer results, PyTorch
checkpoints) holds weights and metrics but no probe activations and no predictions (other
tools never saved what a layer output on fixed examples), and its one-example "probe" is a
placeholder that must never be drawn as data. :func:`run_contents` says what can be drawn
and, in one line, what cannot and why.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PLACEHOLDER_PROBE", "RunContents", "run_contents"]

#: ``manifest.info["probe"]`` of an imported run (see :mod:`epochscope.importers`).
PLACEHOLDER_PROBE = "placeholder"


@dataclass(frozen=True)
class RunContents:
    """What a run holds to draw.

    ``maps``: recorded layers over a real probe set (the maps, frames, time-lapse, forgetting,
    quality); ``predictions``: real predictions (confusion matrix, forgetting); ``metrics``:
    a metrics row with a number besides the epoch (curves); ``weights``: weights at any epoch
    (the network drawing); ``imported_from``: the tool an importer read, or ``None``.
    """

    maps: bool
    predictions: bool
    metrics: bool
    weights: bool
    imported_from: str | None = None

    def skipped_note(self) -> str:
        """One line: what ``render``/``report`` leave out and why (empty when nothing is left out)."""
        if self.maps and self.predictions:
            return ""
        source = (self.imported_from or "").removesuffix(" checkpoints")  # "pytorch checkpoints" names its files already
        why = (f"the run was imported from {source} checkpoints, which hold weights and metrics but no "
               "probe examples" if self.imported_from else "the run recorded no layer")
        left = []
        if not self.maps:
            left.append("the maps (frames, time-lapse, train + test map, quality, forgetting)")
        if not self.predictions:
            left.append("the confusion matrix" if self.maps else "the confusion matrix and samples")
        return f"skipped {' and '.join(left)}: {why}"


def run_contents(run) -> RunContents:
    """What ``run`` (a :class:`~epochscope.Run`) holds to draw; reads the manifest and metrics only."""
    info = run.manifest.info or {}
    placeholder = info.get("probe") == PLACEHOLDER_PROBE
    imported = str(info.get("imported_from") or run.framework) if placeholder else None
    metrics = any(isinstance(v, (int, float)) and not isinstance(v, bool) and k != "epoch"
                  for row in run.metrics for k, v in row.items())
    # Any epoch's weights count (a file's presence, never read): weights recorded at middle epochs
    # only are drawn too, the epochs without them left out and said (as `epochscope check` warns).
    weights = any(run.has_weights(e) for e in run.epochs)
    return RunContents(maps=bool(run.layers) and not placeholder, predictions=not placeholder, metrics=metrics,
                       weights=weights, imported_from=imported)
