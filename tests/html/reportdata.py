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


def _demo_metrics(epoch: int, n_epochs: int, rng: np.random.Generator) -> dict:
    """The metrics row the demo's training loop writes (epochscope.train.fit + the recorder)."""
    t = epoch / max(n_epochs - 1, 1)
    acc = 0.1 + 0.88 * (1 - np.exp(-4 * t)) + rng.normal() * 0.01
    return {"loss": 2.3 * np.exp(-3 * t) + 0.02, "accuracy": min(acc, 1.0), "val_loss": 2.3 * np.exp(-2.8 * t) + 0.05,
            "val_accuracy": min(acc - 0.02, 1.0), "probe_accuracy": min(acc + 0.01, 1.0),
            "test_accuracy": min(acc - 0.03, 1.0), "train_seconds": 4.2, "wall_time": 1.796e9 + epoch,
            "elapsed": 5.0 * epoch, "record_seconds": 0.4}


def make_mnist_like_run(path: Path, *, n_probe: int = 600, n_test: int = 200, n_epochs: int = 11,
                        seed: int = 0) -> Path:
    """A run shaped like the MNIST demo's: digits 0-9 as 28 x 28 images, layer ``hidden``, the CNN's
    weights (conv2D_1..4, hidden after a flatten, end) and the demo's metrics."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_probe) % 10
    test_labels = np.arange(n_test) % 10
    shapes = {"conv2D_1": (32, 1, 3, 3), "conv2D_2": (32, 32, 3, 3), "conv2D_3": (64, 32, 3, 3),
              "conv2D_4": (64, 64, 3, 3), "hidden": (128, 64 * 16), "end": (10, 128)}
    base = {k: rng.normal(size=s).astype(np.float32) * 0.1 for k, s in shapes.items()}
    with RunWriter.open(path, framework="torch", labels=labels, class_names=[str(d) for d in range(10)],
                        test_labels=test_labels, probe_inputs=glyphs(labels, 28, rng),
                        test_inputs=glyphs(test_labels, 28, rng)) as w:
        w.declare_layer("hidden", (128,), 16, None)
        for epoch in range(n_epochs):
            t = epoch / max(n_epochs - 1, 1)
            with w.epoch(epoch) as ep:
                ep.set_activations("hidden", rng.normal(size=(n_probe, 16)))
                ep.set_activations("hidden", rng.normal(size=(n_test, 16)), split="test")
                acc = 0.1 + 0.88 * t
                ep.set_predictions(np.where(rng.random(n_probe) < acc, labels, (labels + 3) % 10))
                ep.set_predictions(np.where(rng.random(n_test) < acc, test_labels, (test_labels + 3) % 10), split="test")
                weights = {}
                for k, v in base.items():
                    weights[f"{k}.weight"] = v * (1 + 0.3 * t * rng.random(v.shape).astype(np.float32))
                    weights[f"{k}.bias"] = np.zeros(v.shape[0], np.float32)
                ep.set_weights(weights)
                ep.set_metrics(_demo_metrics(epoch, n_epochs, rng))
    return path


def make_iris_like_run(path: Path, *, n_epochs: int = 101, seed: int = 0) -> Path:
    """A run shaped like the Iris demo's: 120 probe and 30 test flowers of 4 features (no images),
    layers ``l2``, the 4-5-5-5-3 MLP's weights and the demo's metrics, epochs 0..100."""
    rng = np.random.default_rng(seed)
    labels = np.arange(120) % 3
    test_labels = np.arange(30) % 3
    sizes = (4, 5, 5, 5, 3)
    base = {f"l{i + 1}": rng.normal(size=(b, a)).astype(np.float32) for i, (a, b) in enumerate(zip(sizes, sizes[1:]))}
    with RunWriter.open(path, framework="torch", labels=labels, class_names=["setosa", "versicolor", "virginica"],
                        test_labels=test_labels, probe_inputs=rng.random((120, 4)).astype(np.float32),
                        test_inputs=rng.random((30, 4)).astype(np.float32)) as w:
        w.declare_layer("l2", (5,), 5, None)
        for epoch in range(n_epochs):
            t = epoch / max(n_epochs - 1, 1)
            with w.epoch(epoch) as ep:
                ep.set_activations("l2", rng.normal(size=(120, 5)))
                ep.set_activations("l2", rng.normal(size=(30, 5)), split="test")
                acc = 0.33 + 0.64 * t
                ep.set_predictions(np.where(rng.random(120) < acc, labels, (labels + 1) % 3))
                ep.set_predictions(np.where(rng.random(30) < acc, test_labels, (test_labels + 1) % 3), split="test")
                ep.set_weights({f"{k}.weight": v * (1 + 0.5 * t * np.sin(epoch + np.arange(v.size).reshape(v.shape)))
                                for k, v in base.items()})
                ep.set_metrics(_demo_metrics(epoch, n_epochs, rng))
    return path


def demo_quality(n: int) -> dict:
    """Every quality figure Maps.quality holds (with the separation figures issue 13 adds)."""
    return {"trustworthiness": np.linspace(0.8, 0.97, n), "motion": np.r_[np.nan, np.linspace(0.3, 0.05, n - 1)],
            "knn_accuracy_map": np.linspace(0.3, 0.97, n), "knn_accuracy_layer": np.linspace(0.35, 0.98, n),
            "cka_previous": np.r_[np.nan, np.linspace(0.6, 0.99, n - 1)], "separation": np.linspace(0.0, 0.6, n),
            "separation_layer": np.linspace(0.0, 0.2, n)}


#: Where tests leave pictures for a person to look at (git-ignored).
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
