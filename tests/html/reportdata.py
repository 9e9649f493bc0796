"""Hand-made runs and maps for the report tests: no embedder needed.

The classes include names that try to inject markup, so every test also exercises escaping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from epochscope.run import RunWriter

XSS_CLASS = "<img src=x onerror=alert(1)>"
SCRIPT_CLASS = "</script><script>alert(2)</script>\u2028x"
CLASS_NAMES = ["zero", XSS_CLASS, "two & <b>three</b>", SCRIPT_CLASS]
XSS_LAYER = "hidden<svg onload=alert(3)>"


@dataclass
class FakeMaps:
    """The fields of epochscope.Maps that the report reads."""

    epochs: list
    coords: np.ndarray
    test_coords: np.ndarray | None
    quality: dict
    bounds: tuple
    skipped: dict = field(default_factory=dict)
    layer: str = XSS_LAYER
    method: str = "fake"


def glyphs(labels: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 1, side, side) images: class c lights up a bar at row band c, plus noise."""
    x = rng.random((len(labels), 1, side, side)).astype(np.float32) * 0.2
    band = max(1, side // 4)
    for i, c in enumerate(labels):
        x[i, 0, (c % 4) * band:(c % 4 + 1) * band, :] = 1.0
    return x


def make_report_run(path: Path, *, n_probe: int = 200, n_test: int = 40, n_epochs: int = 6, side: int = 8,
                    class_names=CLASS_NAMES, images: bool = True, seed: int = 0, recorded_accuracy: bool = False) -> Path:
    """A run with image inputs, predictions that improve, dense weights 4-5-C and metrics
    (``recorded_accuracy``: first the probe and test accuracy, as a recorder writes them)."""
    rng = np.random.default_rng(seed)
    n_classes = len(class_names)
    labels = np.arange(n_probe) % n_classes
    test_labels = np.arange(n_test) % n_classes
    w1, w2 = rng.normal(size=(5, 4)), rng.normal(size=(n_classes, 5))
    with RunWriter.open(path, framework="synthetic", labels=labels, class_names=class_names, test_labels=test_labels,
                        probe_inputs=glyphs(labels, side, rng) if images else None,
                        test_inputs=glyphs(test_labels, side, rng) if images else None) as w:
        w.declare_layer(XSS_LAYER, (3,), 3, None)
        for epoch in range(n_epochs):
            with w.epoch(epoch) as ep:
                ep.set_activations(XSS_LAYER, rng.normal(size=(n_probe, 3)))
                ep.set_activations(XSS_LAYER, rng.normal(size=(n_test, 3)), split="test")
                acc = 0.3 + 0.7 * epoch / max(n_epochs - 1, 1)
                ep.set_predictions(np.where(rng.random(n_probe) < acc, labels, (labels + 1) % n_classes))
                ep.set_predictions(np.where(rng.random(n_test) < acc, test_labels, (test_labels + 1) % n_classes),
                                   split="test")
                ep.set_weights({"l1.weight": w1 * (1 + 0.2 * epoch), "l1.bias": np.zeros(5),
                                "l2.weight": w2 * (1 - 0.1 * epoch), "l2.bias": np.zeros(n_classes)})
                first = {"probe_accuracy": acc * 0.95, "test_accuracy": acc * 0.85} if recorded_accuracy else {}
                ep.set_metrics({**first, "loss": 1.0 / (epoch + 1), "accuracy": acc, "val_loss": 1.2 / (epoch + 1),
                                "val_accuracy": acc * 0.9, "epoch_seconds": 1.5})
    return path


def make_maps(run, *, spread: float = 6.0, seed: int = 1, test: bool = True) -> FakeMaps:
    """Clusters that form over the epochs: noise at the first epoch, one blob per class at the last."""
    rng = np.random.default_rng(seed)
    epochs = run.epochs
    n_classes = len(run.class_names)
    angle = 2 * np.pi * np.arange(n_classes) / n_classes
    centres = np.stack([np.cos(angle), np.sin(angle)], axis=1) * spread

    def frames(labels):
        noise = rng.normal(size=(len(labels), 2))
        out = []
        for k in range(len(epochs)):
            t = k / max(len(epochs) - 1, 1)
            out.append(t * centres[labels] + noise * (1.5 - t))
        return np.stack(out).astype(np.float32)

    coords = frames(np.asarray(run.labels))
    test_coords = frames(np.asarray(run.test_labels)) if test and run.test_labels is not None else None
    every = coords if test_coords is None else np.concatenate([coords, test_coords], axis=1)
    lo, hi = every.min(axis=(0, 1)), every.max(axis=(0, 1))
    n = len(epochs)
    quality = {
        "trustworthiness": np.linspace(0.7, 0.95, n),
        "motion": np.r_[np.nan, np.full(n - 1, 0.2)],
        "knn_accuracy_map": np.linspace(0.3, 0.99, n),
        "knn_accuracy_layer": np.linspace(0.35, 1.0, n),
        "cka_previous": np.r_[np.nan, np.linspace(0.5, 0.98, n - 1)],
    }
    return FakeMaps(epochs=list(epochs), coords=coords, test_coords=test_coords, quality=quality,
                    bounds=(float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])))
