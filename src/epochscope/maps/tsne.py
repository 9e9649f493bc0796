"""t-SNE maps with openTSNE, each epoch warm-started from its neighbour's map.

The anchor epoch gets a full openTSNE fit (PCA start, early exaggeration); every other
epoch starts from its neighbour's finished map with the new epoch's affinities and runs
``warm_iterations`` plain iterations. Test points are placed by openTSNE's ``transform``.
openTSNE is an optional extra (``pip install 'epochscope[tsne]'``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._optional import require
from .._progress import progress as progress_bar
from .base import MethodSettings, SequenceResult, Stopwatch

__all__ = ["TsneSettings"]


@dataclass(frozen=True)
class TsneSettings(MethodSettings):
    """Settings of ``method="tsne"``.

    Parameters
    ----------
    perplexity : t-SNE's perplexity (about a third of the neighbour count).
    warm_iterations : iterations of every frame after the anchor.
    direction : ``"backward"`` (anchor = last epoch) or ``"forward"``.
    n_jobs : threads for openTSNE.
    seed : random seed.

    Example::

        maps = epochscope.embed(run, "hidden", method="tsne", perplexity=50)
    """

    name: ClassVar[str] = "tsne"
    perplexity: float = 30.0
    warm_iterations: int = 250
    direction: str = "backward"
    n_jobs: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.perplexity > 1:
            raise ValueError(f"perplexity must be > 1, got {self.perplexity!r}")
        if not isinstance(self.warm_iterations, int) or self.warm_iterations < 1:
            raise ValueError(f"warm_iterations must be an integer >= 1, got {self.warm_iterations!r}")
        if self.direction not in ("backward", "forward"):
            raise ValueError(f"direction must be 'backward' or 'forward', got {self.direction!r}")

    @property
    def min_examples(self) -> int:
        # openTSNE needs 3 * perplexity neighbours.
        return int(np.ceil(3 * self.perplexity)) + 1

    def embed_sequence(self, source, *, progress: bool = True) -> SequenceResult:
        open_tsne = require("openTSNE", extra="tsne", purpose="t-SNE maps")
        epochs = list(source.epochs)
        order = list(range(len(epochs)))[:: -1 if self.direction == "backward" else 1]
        coords: list = [None] * len(epochs)
        tests: list = [None] * len(epochs)
        timings: dict[str, float] = {}
        previous = None
        for step, i in enumerate(progress_bar(order, desc=f"tsne {source.layer}", enabled=progress)):
            with Stopwatch(timings, "fit"):
                x = source.probe(epochs[i]).astype(np.float64)
                if previous is None:
                    embedding = open_tsne.TSNE(perplexity=self.perplexity, n_jobs=self.n_jobs,
                                               random_state=self.seed, verbose=False).fit(x)
                else:
                    affinities = open_tsne.affinity.PerplexityBasedNN(
                        x, perplexity=self.perplexity, n_jobs=self.n_jobs, random_state=self.seed, verbose=False)
                    embedding = open_tsne.TSNEEmbedding(
                        np.array(previous, dtype=np.float64), affinities, n_jobs=self.n_jobs,
                        random_state=self.seed, verbose=False)
                    embedding = embedding.optimize(n_iter=self.warm_iterations, exaggeration=1.0, momentum=0.8)
            if step == 0:
                timings["first_epoch"] = timings["fit"]
            coords[i] = np.asarray(embedding, dtype=np.float32)
            previous = coords[i]
            with Stopwatch(timings, "test"):
                t = source.test(epochs[i])
                if t is not None:
                    tests[i] = np.asarray(embedding.transform(t.astype(np.float64)), dtype=np.float32)
        return SequenceResult(coords, tests, align="procrustes",
                              anchor="last" if self.direction == "backward" else "first", timings=timings)
