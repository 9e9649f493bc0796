"""PCA maps: fast and deterministic, one PCA per epoch with signs aligned across epochs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.linalg

from .._progress import progress as progress_bar
from .align import sign_align
from .base import MethodSettings, SequenceResult, Stopwatch

__all__ = ["PcaSettings"]


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # threadpoolctl comes with scikit-learn; without it, just run threaded
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1)


@dataclass(frozen=True)
class PcaSettings(MethodSettings):
    """Settings of ``method="pca"``.

    Parameters
    ----------
    scale : ``"rms"`` scales every frame to unit RMS radius, so an early epoch whose
        activations are small is not a dot in the middle of the shared axes; ``"none"``
        keeps the layer's own scale (growth of the spread stays visible).

    Example::

        maps = epochscope.embed(run, "hidden", method="pca", scale="none")
    """

    name: ClassVar[str] = "pca"
    scale: str = "rms"

    def __post_init__(self) -> None:
        if self.scale not in ("rms", "none"):
            raise ValueError(f"scale must be 'rms' or 'none', got {self.scale!r}")

    def embed_sequence(self, source, *, progress: bool = True) -> SequenceResult:
        timings: dict[str, float] = {}
        coords, tests = [], []
        previous = None
        for epoch in progress_bar(source.epochs, desc=f"pca {source.layer}", enabled=progress):
            with Stopwatch(timings, "fit"):
                x = source.probe(epoch).astype(np.float64)
                mean = x.mean(axis=0)
                centred = x - mean
                # Only the two leading eigenvectors of the (width x width) covariance, on one BLAS
                # thread: multithreaded LAPACK crawls on a busy machine (measured on 5,000 x 512,
                # 2 shared cores: SVD 7 s, threaded eigh 0.2-4.9 s, this 0.06 s per epoch).
                width = centred.shape[1]
                with _one_blas_thread():
                    _, vectors = scipy.linalg.eigh(centred.T @ centred, subset_by_index=[max(width - 2, 0), width - 1])
                axes = vectors[:, ::-1]
                if axes.shape[1] < 2:
                    axes = np.pad(axes, ((0, 0), (0, 2 - axes.shape[1])))
                frame = centred @ axes
                if previous is not None:
                    signs = sign_align(frame, previous)
                    frame, axes = frame * signs, axes * signs
                factor = 1.0
                if self.scale == "rms":
                    rms = float(np.sqrt(np.mean(np.sum(frame**2, axis=1))))
                    factor = 1.0 / rms if rms > 0 else 1.0
                previous = frame
                coords.append((frame * factor).astype(np.float32))
            with Stopwatch(timings, "test"):
                t = source.test(epoch)
                tests.append(None if t is None else (((t.astype(np.float64) - mean) @ axes) * factor).astype(np.float32))
        return SequenceResult(coords, tests, align="none", timings=timings)
