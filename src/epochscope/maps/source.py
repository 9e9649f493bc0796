"""One layer of a run as a sequence of float32 arrays, with the epochs that cannot be embedded set aside."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..run import Run

__all__ = ["LayerSequence", "find_unusable_epochs"]

log = logging.getLogger("epochscope")


def find_unusable_epochs(run: Run, layer: str, epochs: Sequence[int]) -> dict[int, str]:
    """Epochs whose probe or test activations hold NaN or Inf (diverged training), with the reason.

    >>> find_unusable_epochs(run, "hidden", run.epochs)  # doctest: +SKIP
    {7: 'probe activations hold 5000 NaN/Inf values'}
    """
    bad: dict[int, str] = {}
    for epoch in epochs:
        reasons = []
        for split, array in (("probe", run.activations(layer, epoch)), ("test", run.test_activations(layer, epoch))):
            if array is None:
                continue
            count = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            if count:
                reasons.append(f"{split} activations hold {count} NaN/Inf values")
        if reasons:
            bad[int(epoch)] = "; ".join(reasons)
    return bad


@dataclass
class LayerSequence:
    """The activations of one layer over the epochs to embed, read as float32 on demand.

    Attributes: ``run``, ``layer``, ``epochs`` (ascending, all finite), ``labels``,
    ``test_labels`` (or ``None``). Arrays are read lazily, so a long run need not fit in memory.
    """

    run: Run
    layer: str
    epochs: list[int]
    labels: np.ndarray = field(init=False)
    test_labels: np.ndarray | None = field(init=False)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.run.labels)
        self.test_labels = self.run.test_labels

    @property
    def n_probe(self) -> int:
        return len(self.labels)

    @property
    def has_test(self) -> bool:
        return self.test_labels is not None and len(self.test_labels) > 0

    def probe(self, epoch: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Probe activations of ``epoch`` as a C-contiguous float32 ``(n_probe, width)`` array, or
        only the examples ``rows`` (ascending indices; read from the memory-mapped file alone)."""
        held = self.run.activations(self.layer, epoch)
        return np.ascontiguousarray(held if rows is None else held[rows], dtype=np.float32)

    def test(self, epoch: int) -> np.ndarray | None:
        """Test activations of ``epoch`` (float32), or ``None`` when the run has no test set."""
        if not self.has_test:
            return None
        return np.ascontiguousarray(self.run.test_activations(self.layer, epoch), dtype=np.float32)
