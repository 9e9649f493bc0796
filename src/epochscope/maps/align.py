"""Alignment of consecutive frames and the fixed axes of a sequence.

Every method returns one 2-D frame per epoch in its own arbitrary orientation; these
helpers remove what rotation, mirror and shift is left between neighbouring frames
(orthogonal Procrustes, scipy), so an animation of the frames does not jump.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["procrustes_transform", "align_chain", "sign_align", "robust_bounds"]


def procrustes_transform(frame: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rotation/mirror that best maps ``frame`` onto ``reference`` (same points, same order).

    Returns ``(rotation, frame_centre, reference_centre)`` such that
    ``(frame - frame_centre) @ rotation + reference_centre`` is the aligned frame. Scale
    is left alone: a map that grows or shrinks between epochs keeps doing so.

    >>> r = np.array([[0.0, 1.0], [-1.0, 0.0]])
    >>> a = np.random.default_rng(0).normal(size=(20, 2))
    >>> rot, c1, c2 = procrustes_transform(a @ r, a)
    >>> bool(np.allclose((a @ r - c1) @ rot + c2, a))
    True
    """
    from scipy.linalg import orthogonal_procrustes

    frame = np.asarray(frame, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if frame.shape != reference.shape:
        raise ValueError(f"frame {frame.shape} and reference {reference.shape} must hold the same points")
    fc, rc = frame.mean(axis=0), reference.mean(axis=0)
    rotation, _ = orthogonal_procrustes(frame - fc, reference - rc)
    return rotation, fc, rc


def _apply(points: np.ndarray | None, rotation: np.ndarray, centre: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    if points is None:
        return None
    return ((np.asarray(points, dtype=np.float64) - centre) @ rotation + target).astype(np.float32)


def align_chain(frames: Sequence[np.ndarray], test_frames: Sequence[np.ndarray | None] | None = None, *,
                anchor: str = "first", previous: np.ndarray | None = None
                ) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """Align each frame onto its neighbour in the chain, starting from the anchor frame.

    ``anchor="first"`` keeps the first frame as it is (centred) and aligns each later frame
    onto the aligned frame before it; ``"last"`` goes backwards from the last frame. Test
    points of a frame get exactly the same transform as the frame's probe points.
    ``previous`` (with ``anchor="first"``): the aligned frame that precedes ``frames[0]``,
    which is then aligned onto it (continuing a chain aligned before).

    >>> f = [np.eye(2), -np.eye(2)]
    >>> aligned, _ = align_chain(f)
    >>> bool(np.allclose(aligned[0], aligned[1]))
    True
    """
    if anchor not in ("first", "last"):
        raise ValueError(f"anchor must be 'first' or 'last', got {anchor!r}")
    n = len(frames)
    tests: list[np.ndarray | None] = list(test_frames) if test_frames is not None else [None] * n
    out: list[np.ndarray | None] = [None] * n
    out_test: list[np.ndarray | None] = [None] * n
    if previous is not None and anchor != "first":
        raise ValueError("previous continues a chain forward: it needs anchor='first'")
    order = range(n) if anchor == "first" else range(n - 1, -1, -1)
    for i in order:
        frame = np.asarray(frames[i], dtype=np.float64)
        if previous is None:
            centre = frame.mean(axis=0)
            rotation, target = np.eye(2), np.zeros(2)
        else:
            rotation, centre, target = procrustes_transform(frame, previous)
        out[i] = _apply(frame, rotation, centre, target)
        out_test[i] = _apply(tests[i], rotation, centre, target)
        previous = out[i]
    return out, out_test  # type: ignore[return-value]


def sign_align(frame: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The per-axis signs (+1/-1) that make each axis of ``frame`` agree with ``reference``.

    Used for PCA, whose axes keep their meaning (PC1, PC2) and only their sign is arbitrary.

    >>> sign_align(np.array([[1.0, 2.0], [-1.0, -2.0]]), np.array([[-1.0, 2.0], [1.0, -2.0]])).tolist()
    [-1.0, 1.0]
    """
    f = frame - frame.mean(axis=0)
    r = reference - reference.mean(axis=0)
    dots = np.sum(f * r, axis=0)
    return np.where(dots < 0, -1.0, 1.0)


def robust_bounds(frames: Sequence[np.ndarray], *, quantile: float = 0.005, margin: float = 0.05
                  ) -> tuple[float, float, float, float]:
    """Fixed axes ``(xmin, xmax, ymin, ymax)`` for every frame of a sequence.

    Taken from the ``quantile`` and ``1 - quantile`` of all points of all frames, so a few
    outliers do not shrink the picture, then widened by ``margin`` of the span on each side.

    >>> robust_bounds([np.array([[0.0, 0.0], [1.0, 2.0]])], quantile=0.0, margin=0.0)
    (0.0, 1.0, 0.0, 2.0)
    """
    points = np.concatenate([np.asarray(f, dtype=np.float64).reshape(-1, 2) for f in frames if f is not None and len(f)])
    points = points[np.all(np.isfinite(points), axis=1)]
    if not len(points):
        return (-1.0, 1.0, -1.0, 1.0)
    lo = np.quantile(points, quantile, axis=0)
    hi = np.quantile(points, 1 - quantile, axis=0)
    span = np.maximum(hi - lo, 1e-9)
    lo, hi = lo - margin * span, hi + margin * span
    return (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
