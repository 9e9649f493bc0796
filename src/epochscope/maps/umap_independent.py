"""The classic recipe: a fresh ``umap.UMAP(n_neighbors=40)`` per epoch, kept as the baseline.

Each epoch is fitted from scratch, so every frame picks its own rotation, mirror and
cluster placement; :func:`epochscope.embed` still removes the rotation and mirror with
Procrustes, but clusters can swap places between frames. Test points are placed by each
epoch's fitted ``UMAP.transform``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._optional import require
from .._progress import progress as progress_bar
from .base import NeighbourSettings, SequenceResult, Stopwatch

__all__ = ["UmapIndependentSettings"]


@dataclass(frozen=True)
class UmapIndependentSettings(NeighbourSettings):
    """Settings of ``method="umap-independent"``.

    Parameters
    ----------
    n_neighbors : UMAP's ``n_neighbors`` (40 in the classic recipe).
    min_dist : UMAP's ``min_dist``.
    seed : ``None`` (default, as in the classic recipe: parallel and not reproducible) or an
        integer passed as ``random_state`` (reproducible, but umap-learn then runs on one core).

    Example::

        maps = epochscope.embed(run, "hidden", method="umap-independent")
    """

    name: ClassVar[str] = "umap-independent"
    n_neighbors: int = 40
    min_dist: float = 0.1
    seed: int | None = None

    def embed_sequence(self, source, *, progress: bool = True) -> SequenceResult:
        umap = require("umap", extra="maps", purpose="UMAP maps")
        coords, tests = [], []
        timings: dict[str, float] = {}
        for step, epoch in enumerate(progress_bar(source.epochs, desc=f"umap-independent {source.layer}",
                                                  enabled=progress)):
            with Stopwatch(timings, "fit"):
                mapper = umap.UMAP(n_neighbors=self.n_neighbors, min_dist=self.min_dist, random_state=self.seed)
                coords.append(np.asarray(mapper.fit_transform(source.probe(epoch)), dtype=np.float32))
            if step == 0:
                timings["first_epoch"] = timings["fit"]
            with Stopwatch(timings, "test"):
                t = source.test(epoch)
                tests.append(None if t is None else np.asarray(mapper.transform(t), dtype=np.float32))
        return SequenceResult(coords, tests, align="procrustes", anchor="first", timings=timings)
