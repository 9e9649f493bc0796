import numpy as np
import pytest

from epochscope.maps.align import align_chain, procrustes_transform, robust_bounds, sign_align


def _rotation(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


@pytest.mark.parametrize("mirror", [False, True])
def test_procrustes_undoes_known_rotation_mirror_and_shift(mirror):
    rng = np.random.default_rng(0)
    base = rng.normal(size=(200, 2))
    moved = base @ _rotation(73)
    if mirror:
        moved = moved * np.array([-1.0, 1.0])
    moved = moved + np.array([5.0, -3.0])
    rotation, centre, target = procrustes_transform(moved, base)
    back = (moved - centre) @ rotation + target
    np.testing.assert_allclose(back, base, atol=1e-9)
    assert np.isclose(abs(np.linalg.det(rotation)), 1.0)
    assert np.linalg.det(rotation) < 0 if mirror else np.linalg.det(rotation) > 0


def test_align_chain_applies_the_same_transform_to_test_points():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(100, 2))
    test = rng.normal(size=(10, 2))
    rot = _rotation(140) * np.array([1.0, -1.0])
    frames, tests = align_chain([base, base @ rot + 2.0], [test, test @ rot + 2.0])
    np.testing.assert_allclose(frames[1], frames[0], atol=1e-5)
    np.testing.assert_allclose(tests[1], tests[0], atol=1e-5)
    np.testing.assert_allclose(frames[0].mean(axis=0), 0.0, atol=1e-6)  # anchor is centred, not rotated


def test_align_chain_backwards_keeps_the_last_frame():
    rng = np.random.default_rng(2)
    last = rng.normal(size=(50, 2)) * np.array([3.0, 1.0])
    first = last @ _rotation(90)
    frames, _ = align_chain([first, last], anchor="last")
    np.testing.assert_allclose(frames[1], last - last.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(frames[0], frames[1], atol=1e-5)


def test_sign_align_flips_only_disagreeing_axes():
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(30, 2))
    assert sign_align(ref * np.array([-1.0, 1.0]), ref).tolist() == [-1.0, 1.0]


def test_robust_bounds_ignore_a_far_outlier():
    rng = np.random.default_rng(4)
    pts = rng.uniform(-1, 1, size=(2000, 2))
    pts[0] = [1000.0, -1000.0]
    xmin, xmax, ymin, ymax = robust_bounds([pts])
    assert -1.2 < xmin < -0.9 and 0.9 < xmax < 1.2
    assert -1.2 < ymin < -0.9 and 0.9 < ymax < 1.2
