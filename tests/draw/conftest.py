"""Fixtures for the picture tests: maps built by hand, so renderers are tested apart from how maps are made."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest


def make_fake_maps(*, n_epochs: int = 4, n: int = 300, n_test: int = 40, n_classes: int = 3, layer: str = "hidden",
                   method: str = "fake", seed: int = 0, labels: np.ndarray | None = None,
                   test_labels: np.ndarray | None = None, epochs: list[int] | None = None) -> SimpleNamespace:
    """A Maps-like object whose class clusters tighten over the epochs (same fields as epochscope.Maps)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes if labels is None else np.asarray(labels)
    test_labels = np.arange(n_test) % n_classes if test_labels is None else np.asarray(test_labels)
    epochs = list(range(n_epochs)) if epochs is None else list(epochs)
    angle = 2 * np.pi * np.arange(n_classes) / n_classes
    centres = np.column_stack([np.cos(angle), np.sin(angle)]) * 5
    coords, tests = [], []
    for i in range(len(epochs)):
        spread = 3.0 / (1 + 2 * i)
        coords.append(centres[labels] + rng.normal(size=(len(labels), 2)) * spread)
        tests.append(centres[test_labels] + rng.normal(size=(len(test_labels), 2)) * spread)
    coords = np.stack(coords).astype(np.float32)
    tests = np.stack(tests).astype(np.float32) if n_test else None
    allc = coords.reshape(-1, 2)
    bounds = (float(allc[:, 0].min()), float(allc[:, 0].max()), float(allc[:, 1].min()), float(allc[:, 1].max()))
    e = len(epochs)
    nan_first = np.r_[np.nan, np.linspace(0.5, 0.05, max(e - 1, 0))]
    quality = {"trustworthiness": np.linspace(0.7, 0.95, e), "motion": nan_first,
               "knn_accuracy_map": np.linspace(0.4, 0.99, e), "knn_accuracy_layer": np.linspace(0.5, 1.0, e),
               "cka_previous": np.r_[np.nan, np.linspace(0.6, 0.99, max(e - 1, 0))]}
    maps = SimpleNamespace(layer=layer, method=method, params={}, epochs=epochs, coords=coords, test_coords=tests,
                           quality=quality, bounds=bounds, skipped={})
    maps.frame = lambda epoch: maps.coords[maps.epochs.index(int(epoch))]
    maps.test_frame = lambda epoch: None if maps.test_coords is None else maps.test_coords[maps.epochs.index(int(epoch))]
    return maps


@pytest.fixture
def fake_maps() -> SimpleNamespace:
    """4 epochs, 300 probe points and 40 test points in 3 classes."""
    return make_fake_maps()


def nearest_color_counts(img: np.ndarray, colors: np.ndarray, *, tol: float = 30) -> np.ndarray:
    """How many pixels of ``img`` lie within ``tol`` (0-255 units) of each RGB colour in ``colors`` (0-1)."""
    px = img.reshape(-1, 3).astype(np.float32)
    target = np.asarray(colors, dtype=np.float32) * 255
    d = np.linalg.norm(px[:, None, :] - target[None, :, :], axis=2)
    return (d < tol).sum(axis=0)


@pytest.fixture
def maps_factory():
    """:func:`make_fake_maps`, to build maps with other sizes in a test."""
    return make_fake_maps


@pytest.fixture
def color_counts():
    """:func:`nearest_color_counts`."""
    return nearest_color_counts

