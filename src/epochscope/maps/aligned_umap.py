"""umap-learn's ``AlignedUMAP``: every epoch fitted jointly, tied to its neighbours by identity relations.

The steadiest UMAP-based maps, and by far the slowest (it optimises all epochs together;
measured 700-840 s for 11 epochs of 5,000 points on 2 cores). Test points are placed on
each epoch's map as ``UMAP.transform`` would place them (:func:`.knn.place_points`),
because ``AlignedUMAP`` has no transform of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._optional import require
from .base import NeighbourSettings, SequenceResult, Stopwatch
from .knn import place_points

__all__ = ["AlignedUmapSettings"]


@dataclass(frozen=True)
class AlignedUmapSettings(NeighbourSettings):
    """Settings of ``method="aligned-umap"``.

    Parameters
    ----------
    n_neighbors, min_dist : as for UMAP.
    alignment_regularisation : how strongly an example is pulled to its place in the
        neighbouring epochs (umap-learn's default 0.01).
    alignment_window_size : how many neighbouring epochs pull (umap-learn's default 3).
    seed : ``random_state`` (``None``: parallel, not reproducible).

    Example::

        maps = epochscope.embed(run, "hidden", method="aligned-umap")
    """

    name: ClassVar[str] = "aligned-umap"
    n_neighbors: int = 15
    min_dist: float = 0.1
    alignment_regularisation: float = 0.01
    alignment_window_size: int = 3
    seed: int | None = None

    def embed_sequence(self, source, *, progress: bool = True) -> SequenceResult:
        umap = require("umap", extra="maps", purpose="UMAP maps")
        timings: dict[str, float] = {}
        with Stopwatch(timings, "fit"):
            data = [source.probe(e) for e in source.epochs]
            if len(data) == 1:
                mapper = umap.UMAP(n_neighbors=self.n_neighbors, min_dist=self.min_dist, random_state=self.seed)
                coords = [np.asarray(mapper.fit_transform(data[0]), dtype=np.float32)]
            else:
                identity = {i: i for i in range(source.n_probe)}
                aligned = umap.AlignedUMAP(
                    n_neighbors=self.n_neighbors, min_dist=self.min_dist, random_state=self.seed,
                    alignment_regularisation=self.alignment_regularisation,
                    alignment_window_size=self.alignment_window_size, verbose=progress,
                ).fit(data, relations=[identity] * (len(data) - 1))
                coords = [np.asarray(c, dtype=np.float32) for c in aligned.embeddings_]
        with Stopwatch(timings, "test"):
            tests = []
            for x, layout, epoch in zip(data, coords, source.epochs):
                t = source.test(epoch)
                tests.append(None if t is None else place_points(x, layout, t, n_neighbors=self.n_neighbors,
                                                                 min_dist=self.min_dist))
        return SequenceResult(coords, tests, align="procrustes", anchor="first", timings=timings)
