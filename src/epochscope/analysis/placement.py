"""How far to trust where a test point was placed on a map.

Test points are not part of a map's fit: they are laid onto it afterwards (UMAP's transform,
a projection onto the principal axes, ...). A test point laid far from every probe point, or
among probe points of several classes, sits "between clusters" on the picture although the
model may well have classified it right; a reader takes it for a confused example. This
module measures, per test point, what its neighbourhood on the map says, so the pictures and
the report can flag such placements instead of letting them mislead:

- ``far``: the nearest probe point is more than :data:`FAR_FACTOR` times the typical
  neighbourhood radius of the probe points away (the median distance from a probe point to its
  :data:`NEIGHBOURS`-th nearest other probe point). The radius of a neighbourhood, not the gap to
  the single nearest point: on a map whose clusters are piled tight (UMAP's ``min_dist``) the
  nearest gap is tiny, and a test point right beside a cluster would count as far;
- ``mixed``: among its :data:`NEIGHBOURS` nearest probe points on the map, no class holds at
  least :data:`MAJORITY` of them.

Neighbours are found with scipy's ``cKDTree`` (exact, in 2-D: milliseconds for thousands of
points).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FAR_FACTOR", "MAJORITY", "NEIGHBOURS", "Placement", "placement_quality"]

FAR_FACTOR = 2.0
NEIGHBOURS = 10
MAJORITY = 0.6


@dataclass(frozen=True)
class Placement:
    """Per test point (arrays of length ``n_test``): ``far`` and ``mixed`` (bool, see the module
    doc), ``neighbour_class`` (int64: the most common class among its nearest probe points on
    the map, -1 without a position) and ``neighbour_count`` (int64: how many of the
    ``k`` nearest hold that class); ``k`` neighbours were asked."""

    far: np.ndarray
    mixed: np.ndarray
    neighbour_class: np.ndarray
    neighbour_count: np.ndarray
    k: int

    @property
    def doubtful(self) -> np.ndarray:
        """Placements a picture should not be read literally from: ``far | mixed``."""
        return self.far | self.mixed


def placement_quality(probe_xy: np.ndarray, probe_labels: np.ndarray, test_xy: np.ndarray, *,
                   k: int = NEIGHBOURS) -> Placement:
    """Measure the neighbourhood of every test point on one map (see the module doc).

    ``probe_xy`` ``(n, 2)`` and ``test_xy`` ``(m, 2)`` are positions on the same map (NaN rows:
    no position, never flagged); ``probe_labels`` ``(n,)`` the probe classes. Raises
    ``ValueError`` for arrays of the wrong shape.

    >>> p = np.array([[0, 0], [0.1, 0], [0, 0.1], [0.1, 0.1], [5, 5], [5.1, 5], [5, 5.1], [5.1, 5.1]])
    >>> pl = placement_quality(p, np.repeat([0, 1], 4), np.array([[0.05, 0.0], [4.0, 4.0]]), k=3)
    >>> pl.far.tolist(), pl.neighbour_class.tolist()
    ([False, True], [0, 1])
    """
    from scipy.spatial import cKDTree

    probe_xy = np.asarray(probe_xy, dtype=np.float64)
    test_xy = np.asarray(test_xy, dtype=np.float64)
    probe_labels = np.asarray(probe_labels, dtype=np.int64).reshape(-1)
    if probe_xy.ndim != 2 or probe_xy.shape[1] != 2 or test_xy.ndim != 2 or test_xy.shape[1] != 2:
        raise ValueError(f"probe_xy and test_xy must be (n, 2) positions, got {probe_xy.shape} and {test_xy.shape}")
    if len(probe_labels) != len(probe_xy):
        raise ValueError(f"probe_labels has {len(probe_labels)} entries for {len(probe_xy)} probe points")
    m = len(test_xy)
    far, mixed = np.zeros(m, bool), np.zeros(m, bool)
    klass, count = np.full(m, -1, np.int64), np.zeros(m, np.int64)
    ok_p = np.isfinite(probe_xy).all(axis=1)
    ok_t = np.isfinite(test_xy).all(axis=1)
    pts, labs = probe_xy[ok_p], probe_labels[ok_p]
    k = int(min(k, len(pts)))
    if k < 1 or not ok_t.any():
        return Placement(far, mixed, klass, count, k)
    tree = cKDTree(pts)
    if len(pts) > 1:
        reach = min(k, len(pts) - 1)
        spacing = float(np.median(tree.query(pts, k=reach + 1)[0][:, reach]))
    else:
        spacing = 0.0
    dist, idx = tree.query(test_xy[ok_t], k=k)
    dist, idx = dist.reshape(-1, k), idx.reshape(-1, k)
    neighbour_labels = labs[idx]
    # Majority class per row: sort each row, count runs.
    srt = np.sort(neighbour_labels, axis=1)
    best_class = srt[:, 0].copy()
    best_count = np.zeros(len(srt), np.int64)
    for c in np.unique(srt):
        n_c = (srt == c).sum(axis=1)
        better = n_c > best_count
        best_class[better], best_count[better] = c, n_c[better]
    klass[ok_t], count[ok_t] = best_class, best_count
    if spacing > 0:
        far[ok_t] = dist[:, 0] > FAR_FACTOR * spacing
    mixed[ok_t] = best_count < MAJORITY * k
    return Placement(far, mixed, klass, count, k)
