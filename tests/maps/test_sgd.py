"""epochscope's UMAP optimiser against umap-learn's, its coherence term, and its on-disk compilation cache.

Slow: the kernels compile on the first call on a machine (later processes load them).
"""

import subprocess
import sys

import numpy as np
import pytest

from epochscope.maps.fuzzy import ab_params, epochs_per_sample, fuzzy_graph
from epochscope.maps.knn import exact_knn
from epochscope.maps.quality import separation, trustworthiness
from epochscope.maps.sgd import CHUNKS, PASS_PARTS, chunk_bounds, compiled_kernel, optimize_layout

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, 1500)
    x = (rng.normal(size=(6, 24))[labels] * 1.5 + rng.normal(size=(1500, 24))).astype(np.float32)
    graph = fuzzy_graph(*exact_knn(x, 15)).tocoo()
    n_epochs = 200
    graph.data[graph.data < graph.data.max() / n_epochs] = 0.0
    graph.eliminate_zeros()
    start = rng.uniform(0, 10, size=(1500, 2)).astype(np.float32)
    return x, labels, graph, epochs_per_sample(graph.data, n_epochs), n_epochs, start


def test_same_quality_as_umap_learns_optimiser_on_the_same_graph(problem):
    from umap.layouts import optimize_layout_euclidean

    x, labels, graph, eps, n_epochs, start = problem
    a, b = ab_params(1.0, 0.1)
    ours = optimize_layout(start, None, graph.row, graph.col, eps, n_epochs, a=a, b=b, seed=0)
    rng_state = np.random.RandomState(0).randint(-(2**31) + 1, 2**31 - 1, 3).astype(np.int64)
    theirs = start.copy()
    theirs = optimize_layout_euclidean(theirs, theirs, graph.row, graph.col, n_epochs, len(x), eps, a, b, rng_state,
                                       1.0, 1.0, 5.0, parallel=False, move_other=True)
    # same objective, same schedule: as faithful and as separated (measured: both 0.94-0.95 / 0.93-0.95)
    assert abs(trustworthiness(x, ours) - trustworthiness(x, theirs)) < 0.01
    assert abs(separation(ours, labels) - separation(theirs, labels)) < 0.03
    # and at UMAP's scale (the same min_dist means the same cluster size)
    def spread(y):
        return np.median([np.linalg.norm(y[labels == c] - y[labels == c].mean(0), axis=1).mean() for c in range(6)])
    assert 0.8 < spread(ours) / spread(theirs) < 1.25


def test_runs_reproduce_on_any_number_of_threads_and_seeds_differ(problem):
    x, labels, graph, eps, n_epochs, start = problem
    a, b = ab_params(1.0, 0.1)
    one = optimize_layout(start, None, graph.row, graph.col, eps, 20, a=a, b=b, seed=3)
    again = optimize_layout(start, None, graph.row, graph.col, eps, 20, a=a, b=b, seed=3)
    alone = optimize_layout(start, None, graph.row, graph.col, eps, 20, a=a, b=b, seed=3, parallel=False)
    other = optimize_layout(start, None, graph.row, graph.col, eps, 20, a=a, b=b, seed=4)
    np.testing.assert_array_equal(one, again)
    np.testing.assert_array_equal(one, alone)  # threads change the speed, never the map
    assert not np.array_equal(one, other)
    # edges in another order are sorted by head first: the same map
    order = np.random.default_rng(5).permutation(len(graph.row))
    shuffled = optimize_layout(start, None, graph.row[order], graph.col[order], eps[order], 20, a=a, b=b, seed=3)
    np.testing.assert_array_equal(one, shuffled)


def _reference_passes(emb, head, tail, eps, n_epochs, a, b, seed, anchor=None, coherence=0.0):
    """The chunked SGD written out in numpy float32 (independent of the kernel): each pass in
    PASS_PARTS parts; in a part, chunk c moves its own head points at once and sees every other
    point as it was when the part began; its pulls on those are added after the part."""
    from epochscope.maps import _sgd_kernels

    f = np.float32
    emb = emb.astype(np.float32).copy()
    n = len(emb)
    edge_bounds, _ = chunk_bounds(head, eps, n)
    next_sample, eps_neg = eps.copy(), eps / 5.0
    next_neg = eps_neg.copy()
    clip = lambda v: f(min(max(v, -4.0), 4.0))  # noqa: E731

    def edge(i, c, state, snap, delta, epoch, alpha):
        j, k = head[i], tail[i]
        d = emb[j] - snap[k]
        d2 = f(d @ d)
        coeff = f(-2.0 * a * b) * d2 ** f(b - 1) / (f(a) * d2 ** f(b) + f(1)) if d2 > 0 else f(0)
        g = np.array([clip(coeff * d[0]), clip(coeff * d[1])], np.float32) * alpha
        emb[j] += g
        delta[c, k] -= g
        next_sample[i] += eps[i]
        n_neg = int((epoch - next_neg[i]) / eps_neg[i])
        for _ in range(n_neg):
            state = _sgd_kernels._next.py_func(state)
            m = (state * n) >> 32
            if m == j:
                continue
            d = emb[j] - snap[m]
            d2 = f(d @ d)
            if d2 > 0:
                coeff = f(2.0 * b) / ((f(0.001) + d2) * (f(a) * d2 ** f(b) + f(1)))
                emb[j] += np.array([clip(coeff * d[0]), clip(coeff * d[1])], np.float32) * alpha
        if n_neg > 0:
            next_neg[i] += n_neg * eps_neg[i]
        return state

    for epoch in range(n_epochs):
        alpha = f(1.0 * (1.0 - epoch / n_epochs))
        states = [_sgd_kernels._seed_state.py_func(seed, epoch, c) for c in range(CHUNKS)]
        for part in range(PASS_PARTS):
            snap = emb.copy()
            delta = np.zeros((CHUNKS, n, 2), np.float32)
            for c in range(CHUNKS):
                size = edge_bounds[c + 1] - edge_bounds[c]
                first = edge_bounds[c] + size * part // PASS_PARTS
                for i in range(first, edge_bounds[c] + size * (part + 1) // PASS_PARTS):
                    if next_sample[i] <= epoch and eps[i] > 0:
                        states[c] = edge(i, c, states[c], snap, delta, epoch, alpha)
            emb += delta.sum(axis=0)
        if coherence > 0:
            emb += alpha * f(coherence) * (anchor - emb)
    return emb


def test_chunked_passes_match_a_numpy_reference(problem):
    # A small graph, few passes: the kernel's snapshot, own-row and delta bookkeeping against
    # the same passes written out in numpy (float rounding apart: fastmath, summation order).
    x, labels, graph, eps, n_epochs, start = problem
    keep = (graph.row < 120) & (graph.col < 120)
    head, tail, w = graph.row[keep], graph.col[keep], graph.data[keep]
    order = np.argsort(head, kind="stable")
    head, tail = head[order].astype(np.int64), tail[order].astype(np.int64)
    eps_small = epochs_per_sample(w[order], 6)
    a, b = ab_params(1.0, 0.1)
    begin = start[:120] / 4  # close enough for every kind of step: attraction, repulsion, clipping
    anchor = begin + 0.5
    ours = optimize_layout(begin, None, head, tail, eps_small, 6, a=a, b=b, seed=7, anchor=anchor, coherence=0.1)
    reference = _reference_passes(begin, head, tail, eps_small, 6, a, b, 7, anchor=anchor, coherence=0.1)
    assert np.abs(ours - begin).max() > 0.5  # the passes did move the points
    np.testing.assert_allclose(ours, reference, atol=2e-3)


def test_chunks_hold_whole_rows_and_balance_the_sampled_work():
    rng = np.random.default_rng(0)
    head = np.sort(rng.integers(0, 5000, 20000))
    eps = rng.choice([1.0, 10.0], size=len(head))
    edges, rows = chunk_bounds(head, eps, 5000)
    assert len(edges) == len(rows) == CHUNKS + 1
    assert edges[0] == 0 and edges[-1] == len(head) and rows[0] == 0 and rows[-1] == 5000
    for c in range(CHUNKS):  # every edge of a chunk has its head in the chunk's rows
        assert np.all((head[edges[c]:edges[c + 1]] >= rows[c]) & (head[edges[c]:edges[c + 1]] < rows[c + 1]))
    work = np.array([np.sum(1.0 / eps[edges[c]:edges[c + 1]]) for c in range(CHUNKS)])
    row_work = np.bincount(head, weights=1.0 / eps)
    # by samples per pass, not by edge count: off the even share by less than one row's work
    assert np.all(np.abs(work - work.mean()) <= row_work.max())
    assert work.max() / work.mean() < 1.02
    one_hub = chunk_bounds(np.zeros(50, dtype=np.int64), np.ones(50), 3)  # one row holds every edge
    assert one_hub[0][0] == 0 and one_hub[0][-1] == 50 and one_hub[1][-1] == 3


def test_coherence_pulls_points_toward_their_anchor(problem):
    x, labels, graph, eps, n_epochs, start = problem
    a, b = ab_params(1.0, 0.1)
    anchor = optimize_layout(start, None, graph.row, graph.col, eps, n_epochs, a=a, b=b, seed=0)
    moved = anchor + np.float32(3.0) * np.random.default_rng(1).normal(size=anchor.shape).astype(np.float32)

    def distance_to_anchor(coherence):
        # over three seeds: where a weakly held cluster lands is the SGD's draw (one seed at
        # coherence 0.01 ended farther from its anchor than with no pull)
        ys = [optimize_layout(moved, None, graph.row, graph.col, eps, 100, a=a, b=b, seed=seed, anchor=anchor,
                              coherence=coherence) for seed in (1, 2, 3)]
        return float(np.mean([np.linalg.norm(y - anchor, axis=1) for y in ys]))

    free, weak, strong = distance_to_anchor(0.0), distance_to_anchor(0.05), distance_to_anchor(0.3)
    assert strong < weak < free

    # per-point weights scale the pull: 0 is no pull at all, 1 the pull unscaled
    def run(**kw):
        return optimize_layout(moved, None, graph.row, graph.col, eps, 30, a=a, b=b, seed=1, anchor=anchor, **kw)

    n = len(moved)
    np.testing.assert_array_equal(run(coherence=0.3, anchor_weight=np.zeros(n)), run(coherence=0.0))
    np.testing.assert_array_equal(run(coherence=0.3, anchor_weight=np.ones(n)), run(coherence=0.3))
    half = np.arange(n) % 2 == 0

    def gap(y, rows):
        return float(np.linalg.norm(y[rows] - anchor[rows], axis=1).mean())

    mixed, free, pulled = run(coherence=0.3, anchor_weight=half), run(coherence=0.0), run(coherence=0.3)
    assert gap(mixed, half) < gap(free, half)  # the weighted half is pulled ...
    assert gap(mixed, ~half) > gap(pulled, ~half)  # ... the other half less than under a full pull
    with pytest.raises(ValueError, match="anchor_weight"):
        run(coherence=0.3, anchor_weight=np.full(n, 1.5))


def test_per_point_rates_hold_points_and_ones_give_umaps_map(problem):
    x, labels, graph, eps, n_epochs, start = problem
    a, b = ab_params(1.0, 0.1)
    n = len(start)
    held = np.arange(n) % 2 == 0
    rate = np.where(held, 0.0, 1.0).astype(np.float32)
    y = optimize_layout(start, None, graph.row, graph.col, eps, 50, a=a, b=b, seed=2, rate=rate)
    np.testing.assert_array_equal(y[held], start[held])  # a rate of 0 never moves the point
    assert np.all(np.linalg.norm(y[~held] - start[~held], axis=1).mean() > 0.1)
    half = optimize_layout(start, None, graph.row, graph.col, eps, 50, a=a, b=b, seed=2,
                           rate=np.full(n, 0.5, np.float32))
    full = optimize_layout(start, None, graph.row, graph.col, eps, 50, a=a, b=b, seed=2)
    ones = optimize_layout(start, None, graph.row, graph.col, eps, 50, a=a, b=b, seed=2, rate=np.ones(n, np.float32))
    assert not np.array_equal(half, full)
    # the same steps up to float rounding, which UMAP's chaotic SGD amplifies: compare what the maps show
    assert abs(separation(ones, labels) - separation(full, labels)) < 0.05
    with pytest.raises(ValueError, match=r"rate must be"):
        optimize_layout(start, None, graph.row, graph.col, eps, 5, a=a, b=b, rate=np.full(n, 2.0, np.float32))


def test_kept_neighbours_counts_each_points_unchanged_neighbours():
    from epochscope.maps.umap_chain import kept_neighbours

    before = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0]])
    after = np.array([[0, 2, 1], [1, 2, 3], [2, 3, 4]])
    np.testing.assert_allclose(kept_neighbours(after, before), [1.0, 0.5, 0.0])  # itself not counted
    with pytest.raises(ValueError, match="differ in shape"):
        kept_neighbours(after[:, :2], before)


def test_tail_held_fixed_when_placing_points(problem):
    x, labels, graph, eps, n_epochs, start = problem
    a, b = ab_params(1.0, 0.1)
    tail = start.copy()
    heads = np.zeros((5, 2), dtype=np.float32)
    optimize_layout(heads, tail, np.arange(5), np.arange(5), np.ones(5), 10, a=a, b=b)
    np.testing.assert_array_equal(tail, start)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="edge ends must index"):
        optimize_layout(np.zeros((4, 2)), None, [0], [4], [1.0], 5, a=1.0, b=1.0)
    with pytest.raises(ValueError, match="edge ends must index"):
        optimize_layout(np.zeros((4, 2)), np.zeros((2, 2)), [3], [-1], [1.0], 5, a=1.0, b=1.0)
    with pytest.raises(ValueError, match="one length"):
        optimize_layout(np.zeros((4, 2)), None, [0, 1], [1], [1.0], 5, a=1.0, b=1.0)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        optimize_layout(np.zeros((4, 3)), None, [0], [1], [1.0], 5, a=1.0, b=1.0)
    with pytest.raises(ValueError, match="anchor"):
        optimize_layout(np.zeros((4, 2)), None, [0], [1], [1.0], 5, a=1.0, b=1.0, anchor=np.zeros((3, 2)),
                        coherence=0.1)


def test_kernels_compile_once_per_machine_and_load_from_numbas_cache():
    from epochscope.maps.knn import smallest_k

    kernel = compiled_kernel()
    optimize_layout(np.zeros((3, 2)), None, [0], [1], [1.0], 2, a=1.0, b=1.0)  # compiled or loaded now
    smallest_k(np.zeros((2, 3), np.float32), 2)
    code = (
        "import numpy as np\n"
        "from epochscope.maps.sgd import compiled_kernel, optimize_layout\n"
        "from epochscope.maps.knn import smallest_k\n"
        "from epochscope.maps import _knn_kernels\n"
        "optimize_layout(np.zeros((3, 2)), None, [0], [1], [1.0], 2, a=1.0, b=1.0)\n"
        "optimize_layout(np.zeros((3, 2)), None, [0], [1], [1.0], 2, a=1.0, b=1.0, parallel=False)\n"
        "smallest_k(np.zeros((2, 3), np.float32), 2)\n"
        "for k in (compiled_kernel(), _knn_kernels.smallest):\n"
        "    print(sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values()))\n"
    )
    assert kernel is compiled_kernel()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    sgd_hits, sgd_misses, topk_hits, topk_misses = map(int, out)
    assert sgd_hits >= 1 and sgd_misses == 0
    assert topk_hits >= 1 and topk_misses == 0


def test_bad_inputs_are_refused_not_silently_wrapped_or_read_out_of_bounds():
    layout = np.zeros((4, 2))
    # an index past int32 must not wrap around to a valid row (2**32 -> 0)
    with pytest.raises(ValueError, match="edge ends must index"):
        optimize_layout(layout, None, np.array([2**32]), np.array([1]), [1.0], 5, a=1.0, b=1.0)
    with pytest.raises(ValueError, match="integers"):
        optimize_layout(layout, None, np.array([0.7]), np.array([1]), [1.0], 5, a=1.0, b=1.0)
    # a tail layout that is not (m, 2): the kernel would read its column 1 out of bounds
    for tail in (np.zeros((4, 1)), np.zeros((4, 3)), np.zeros(4)):
        with pytest.raises(ValueError, match=r"tail_embedding must be \(m, 2\)"):
            optimize_layout(layout, tail, [0], [1], [1.0], 5, a=1.0, b=1.0)
    # NaN or inf would spread along the edges to the whole map
    bad = np.array([[np.nan, 0.0], [0.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    with pytest.raises(ValueError, match="finite"):
        optimize_layout(bad, None, [0, 1], [1, 2], [1.0, 1.0], 5, a=1.0, b=1.0)
    with pytest.raises(ValueError, match="finite"):
        optimize_layout(layout, bad, [0], [1], [1.0], 5, a=1.0, b=1.0)
    with pytest.raises(ValueError, match="finite"):
        optimize_layout(layout, None, [0], [1], [1.0], 5, a=1.0, b=1.0, anchor=bad, coherence=0.1)
    with pytest.raises(ValueError, match="coherence"):
        optimize_layout(layout, None, [0], [1], [1.0], 5, a=1.0, b=1.0, anchor=layout, coherence=np.nan)
    # NaN epochs_per_sample sampled the edge on every pass (-1, not NaN, means never)
    with pytest.raises(ValueError, match="epochs_per_sample"):
        optimize_layout(layout, None, [0, 1], [1, 2], [np.nan, 1.0], 5, a=1.0, b=1.0)


def test_duplicate_edges_give_one_map_in_any_order():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(6, 2)).astype(np.float32)
    head, tail, eps = np.array([0, 0, 1, 1, 2, 2]), np.array([1, 1, 0, 0, 3, 3]), np.array([1.0, 2.0, 1.0, 3.0, 1.5, 1.0])
    first = optimize_layout(start, None, head, tail, eps, 30, a=1.577, b=0.895)
    swap = [1, 0, 3, 2, 5, 4]
    np.testing.assert_array_equal(optimize_layout(start, None, head[swap], tail[swap], eps[swap], 30, a=1.577, b=0.895),
                                  first)


def test_a_strong_pull_lands_on_the_anchor_and_never_overshoots():
    # alpha * coherence * weight above 1 stepped past the anchor (above 2: away from it, growing)
    start = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=np.float32)
    anchor = start + 1.0
    out = optimize_layout(start, None, [0], [1], [1e9], 40, a=1.577, b=0.895, initial_alpha=10.0, anchor=anchor,
                          coherence=0.9, negative_sample_rate=1.0)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, anchor, atol=1e-5)


def test_no_negative_samples_still_pull_the_heads():
    # negative_sample_rate=0 (umap-learn allows it: attraction only) made the kernel's count of
    # negative samples int(nan), and a head whose count was negative was never written back: its
    # pulls were lost (placed points never moved, laid-out heads only moved as tails)
    a, b = 1.577, 0.895
    placed = optimize_layout(np.zeros((1, 2)), np.array([[5.0, 5.0]]), [0], [0], [1.0], 5, a=a, b=b,
                             negative_sample_rate=0.0)
    assert placed[0, 0] > 0.1 and placed[0, 1] > 0.1
    start = np.array([[0, 0], [3, 0]], np.float32)
    one_way = optimize_layout(start, None, [0], [1], [1.0], 2, a=a, b=b, negative_sample_rate=0.0)
    assert one_way[0, 0] > 0.1 and one_way[1, 0] < 2.9  # both ends pulled, the head too
    with pytest.raises(ValueError, match="negative_sample_rate"):
        optimize_layout(start, None, [0], [1], [1.0], 1, a=a, b=b, negative_sample_rate=-1.0)
