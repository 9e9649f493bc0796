"""The fixed random projection that stores wide layers: generated from its seed, never stored dense.

A layer wider than ``max_width`` values per example is stored through a random projection
to ``width`` values, the same at every epoch, which keeps the distances between examples
up to a small distortion (Johnson-Lindenstrauss), so the maps of the stored rows are maps of
the layer. A dense Gaussian matrix for a 64 x 112 x 112 convolution output would be
802,816 x 512 float32 values, 1.6 GB, for 0.02 MB of stored data per example set; so the
projection is a *very sparse random projection* in the manner of Li, Hastie and Church
("Very sparse random projections", KDD 2006; scikit-learn's ``SparseRandomProjection``): a
fraction ``density = 1 / sqrt(n_in)`` of the entries are non-zero, each ``+a`` or ``-a`` with
equal chance, scaled so that ``E ||x R||^2 = ||x||^2``. For the layer above it holds
501,528 non-zero entries (6.9 MB as a CSR matrix).

It is generated from the seed in blocks of :data:`BLOCK_ROWS` input values, each block from
its own PCG64 stream (``SeedSequence([seed, n_in, width, block])``) read as raw 32-bit words
with integer arithmetic only: numpy guarantees the bit generator's stream, so the same seed
gives the same projection in every version, on every machine, at every epoch and after a
resume, and nothing needs storing. In each block, every output column takes
``k = round(rows * density)`` (at least 1) of the block's rows, drawn uniformly with
replacement (Lemire's multiply-shift), with a random sign and the scale
``sqrt(rows / (k * width))``. The manifest records ``"projection": "very-sparse"``, the seed
and the density.

Runs recorded before this projection stored a dense Gaussian matrix in
``RUN/reductions/<layer>.npy``; :func:`legacy_gaussian` regenerates one exactly as those runs
drew it, for a resumed old run whose matrix file was lost.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["BLOCK_ROWS", "PROJECTION_KIND", "SparseProjection", "legacy_gaussian"]

#: Input values per generated block: the block's random words (BLOCK_ROWS x width) stay small.
BLOCK_ROWS = 4096
#: What the manifest's reduction records as ``"projection"`` for this projection.
PROJECTION_KIND = "very-sparse"


class SparseProjection:
    """``x (n, n_in) -> x @ R (n, width)`` for the very sparse random matrix ``R`` of ``seed``.

    ``R`` is held as a ``scipy.sparse`` CSR matrix (about ``width * sqrt(n_in)`` non-zero
    entries); it is generated once, block by block, and never as a dense array.

    >>> p = SparseProjection(10_000, 64, seed=0)
    >>> p(np.ones((2, 10_000), np.float32)).shape
    (2, 64)
    """

    def __init__(self, n_in: int, width: int, seed: int) -> None:
        from scipy import sparse

        self.n_in, self.width, self.seed = int(n_in), int(width), int(seed)
        self.density = 1.0 / math.sqrt(self.n_in)
        rows, cols, values = [], [], []
        for block, start in enumerate(range(0, self.n_in, BLOCK_ROWS)):
            count = min(BLOCK_ROWS, self.n_in - start)
            k = max(1, int(round(count * self.density)))
            words = _words(k * self.width, (self.seed, self.n_in, self.width, block)).astype(np.uint64)
            rows.append(start + ((words * np.uint64(count)) >> np.uint64(32)).astype(np.int64))
            cols.append(np.repeat(np.arange(self.width), k))
            scale = np.float32(math.sqrt(count / (k * self.width)))
            values.append(np.where(words & np.uint64(1), scale, -scale).astype(np.float32))
        # Two draws of one cell add up, as the sum over draws that the scale assumes.
        self.matrix = sparse.csr_matrix(
            (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(self.n_in, self.width),
            dtype=np.float32)

    def describe(self) -> dict[str, object]:
        """What the manifest records about this projection."""
        return {"projection": PROJECTION_KIND, "density": self.density, "seed": self.seed}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``x`` (n, n_in) projected to float32 (n, width)."""
        return np.asarray(np.asarray(x, dtype=np.float32) @ self.matrix, dtype=np.float32)


def _words(count: int, key: tuple[int, ...]) -> np.ndarray:
    """``count`` uint32 words of the PCG64 stream of ``key`` (raw output: stable across numpy versions)."""
    raw = np.random.PCG64(np.random.SeedSequence(list(key))).random_raw((count + 1) // 2).astype(np.uint64)
    words = np.empty(2 * len(raw), dtype=np.uint32)
    words[0::2] = raw & np.uint64(0xFFFFFFFF)  # arithmetic, not a view: the same words on any byte order
    words[1::2] = raw >> np.uint64(32)
    return words[:count]


def legacy_gaussian(n_in: int, width: int, seed: int) -> np.ndarray:
    """The dense Gaussian matrix runs recorded before the sparse projection drew (and stored).

    Only for a resumed old run whose ``reductions/`` file is missing: it is 4 x n_in x width bytes.
    """
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n_in, width)) / np.sqrt(width)).astype(np.float32)
