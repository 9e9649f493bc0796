"""The projection of wide layers: generated from its seed, the same every time, never dense."""

import numpy as np
import pytest

from epochscope.record.projection import BLOCK_ROWS, SparseProjection, legacy_gaussian


def test_the_same_seed_gives_the_same_projection_and_another_seed_another():
    a, b, c = SparseProjection(5000, 64, 3), SparseProjection(5000, 64, 3), SparseProjection(5000, 64, 4)
    assert (a.matrix != b.matrix).nnz == 0 and (a.matrix != c.matrix).nnz > 0


def test_the_stream_is_pinned():
    # The projection of a run must be the same on every machine and numpy version: PCG64's raw
    # words are guaranteed, and these entries were computed once and written down.
    p = SparseProjection(2 * BLOCK_ROWS + 10, 8, seed=0)
    coo = p.matrix.tocoo()
    first = sorted(zip(coo.row.tolist(), coo.col.tolist(), np.sign(coo.data).astype(int).tolist()))[:4]
    assert first == [(8, 1, 1), (13, 5, -1), (25, 0, -1), (29, 7, 1)]
    # 45 draws per column in each whole block, 1 in the last 10 rows; a cell drawn twice is one entry
    assert 700 < p.matrix.nnz <= 8 * (45 + 45 + 1)


def test_it_is_sparse_and_keeps_distances():
    n_in = 20_000
    p = SparseProjection(n_in, 256, seed=0)
    assert p.matrix.nnz <= 1.2 * 256 * np.sqrt(n_in)  # about width * sqrt(n_in) entries, never n_in * width
    x = np.maximum(np.random.default_rng(0).normal(size=(40, n_in)), 0).astype(np.float32)  # ReLU-like
    y = p(x)
    d = np.linalg.norm(x[0] - x[1:], axis=1)
    e = np.linalg.norm(y[0] - y[1:], axis=1)
    assert np.mean(np.abs(e / d - 1)) < 0.06  # Johnson-Lindenstrauss with 256 dimensions


def test_a_64x112x112_layer_costs_megabytes_not_gigabytes():
    p = SparseProjection(64 * 112 * 112, 512, seed=0)  # a dense float32 matrix: 1.6 GB
    size = p.matrix.data.nbytes + p.matrix.indices.nbytes + p.matrix.indptr.nbytes
    assert size < 10 * 2**20


def test_legacy_gaussian_is_what_old_runs_drew():
    rng = np.random.default_rng(5)
    expected = (rng.standard_normal((30, 4)) / np.sqrt(4)).astype(np.float32)
    np.testing.assert_array_equal(legacy_gaussian(30, 4, 5), expected)


@pytest.mark.parametrize("n_in", [2049, 9000])
def test_each_column_has_entries_in_every_block(n_in):
    p = SparseProjection(n_in, 16, seed=1)
    dense_cols = np.asarray((p.matrix != 0).sum(axis=0)).ravel()
    assert (dense_cols >= -(-n_in // BLOCK_ROWS)).all()
