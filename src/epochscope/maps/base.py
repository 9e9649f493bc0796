"""What every map method hands back, and the helpers the methods share."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

__all__ = ["SequenceResult", "MethodSettings", "NeighbourSettings"]


@dataclass
class SequenceResult:
    """Raw frames of one method, chronological, before the shared alignment step.

    ``align`` says how :func:`epochscope.embed` aligns them: ``"procrustes"`` (rotation and
    mirror onto the neighbouring frame, starting from ``anchor``) or ``"none"`` (the method
    aligned them itself, e.g. PCA's sign alignment). ``timings`` holds seconds per phase
    (``"fit"``, ``"test"``, ``"first_epoch"``) for benchmarks. ``state``: what a method that
    can continue a sequence (:attr:`MethodSettings.incremental`) needs to compute the frames
    of later epochs without recomputing these (named arrays; ``None`` for other methods).
    """

    coords: list[np.ndarray]
    test_coords: list[np.ndarray | None]
    align: str = "procrustes"
    anchor: str = "first"
    timings: dict[str, float] = field(default_factory=dict)
    state: dict[str, np.ndarray] | None = None


@dataclass(frozen=True)
class MethodSettings:
    """Base of each method's settings: a frozen dataclass whose fields key the cache."""

    name: ClassVar[str] = ""
    #: Whether :meth:`embed_sequence` accepts the ``state`` of an earlier call and computes
    #: only the frames of the later epochs (frame ``t`` depends only on epochs up to ``t``).
    incremental: ClassVar[bool] = False

    def params(self) -> dict[str, Any]:
        """The settings as a plain dict (these key the cache and are stored in ``Maps.params``)."""
        return dataclasses.asdict(self)

    @property
    def min_examples(self) -> int:
        """The fewest probe examples the method can embed with these settings."""
        return 3

    def embed_sequence(self, source: Any, *, progress: bool = True,
                       state: dict[str, np.ndarray] | None = None) -> SequenceResult:  # pragma: no cover
        """The raw frames of ``source.epochs``; ``state`` (incremental methods only): continue
        from the :attr:`SequenceResult.state` of the epochs before them."""
        raise NotImplementedError


@dataclass(frozen=True)
class NeighbourSettings(MethodSettings):
    """Base of the UMAP methods' settings: validates ``n_neighbors`` (a field of the subclass)
    and needs one more example than neighbours."""

    def __post_init__(self) -> None:
        n = self.n_neighbors
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 2:
            raise ValueError(f"n_neighbors must be an integer >= 2, got {n!r}")

    @property
    def min_examples(self) -> int:
        return int(self.n_neighbors) + 1


class Stopwatch:
    """Adds elapsed seconds to ``timings[name]`` inside a ``with`` block."""

    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> Stopwatch:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timings[self.name] = self.timings.get(self.name, 0.0) + time.perf_counter() - self.t0
