"""Small synthetic runs for tests: clusters that form over the epochs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from epochscope.run import RunWriter


def blob_activations(labels: np.ndarray, epoch: int, n_epochs: int, width: int = 16, seed: int = 0) -> np.ndarray:
    """Activations whose classes separate as ``epoch`` grows: noise at 0, clean clusters at the end."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(1234).normal(size=(labels.max() + 1, width)) * 4
    t = epoch / max(n_epochs - 1, 1)
    noise = rng.normal(size=(len(labels), width))
    return (t * centres[labels] + noise).astype(np.float32)


def make_synthetic_run(path: Path, *, n_probe: int = 120, n_test: int = 30, n_classes: int = 3, n_epochs: int = 5,
                       width: int = 16, layers=("hidden",), weights: bool = True, images: bool = True,
                       seed: int = 0) -> Path:
    """A small run with clusters forming over the epochs, dense weights 4-5-3 and metrics."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_probe) % n_classes
    test_labels = np.arange(n_test) % n_classes
    inputs = rng.random((n_probe, 1, 8, 8)).astype(np.float32) if images else None
    test_inputs = rng.random((n_test, 1, 8, 8)).astype(np.float32) if images else None
    names = [f"class {i}" for i in range(n_classes)]
    w1, w2 = rng.normal(size=(5, 4)), rng.normal(size=(n_classes, 5))
    with RunWriter.open(path, framework="synthetic", labels=labels, class_names=names, test_labels=test_labels,
                        probe_inputs=inputs, test_inputs=test_inputs) as w:
        for layer in layers:
            w.declare_layer(layer, (width,), width, None)
        for epoch in range(n_epochs):
            with w.epoch(epoch) as ep:
                for i, layer in enumerate(layers):
                    ep.set_activations(layer, blob_activations(labels, epoch, n_epochs, width, seed + epoch + 17 * i))
                    ep.set_activations(layer, blob_activations(test_labels, epoch, n_epochs, width, seed + 99 + epoch),
                                       split="test")
                acc = min(1.0, 0.3 + 0.7 * epoch / max(n_epochs - 1, 1))
                pred = np.where(rng.random(n_probe) < acc, labels, (labels + 1) % n_classes)
                ep.set_predictions(pred)
                ep.set_predictions(np.where(rng.random(n_test) < acc, test_labels, (test_labels + 1) % n_classes), split="test")
                if weights:
                    ep.set_weights({"l1.weight": w1 * (1 + 0.1 * epoch), "l1.bias": np.zeros(5),
                                    "l2.weight": w2 * (1 - 0.05 * epoch), "l2.bias": np.zeros(n_classes)})
                ep.set_metrics({"loss": 1.0 / (epoch + 1), "accuracy": acc, "val_loss": 1.1 / (epoch + 1),
                                "val_accuracy": acc * 0.95})
    return path


def mlp_weights(sizes=(4, 5, 5, 5, 3), seed=0, scale=1.0) -> dict[str, np.ndarray]:
    """The weights of a dense chain ``l1``..``lN`` (PyTorch's ``(out, in)`` layout, float64) of ``sizes``."""
    rng = np.random.default_rng(seed)
    w = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        w[f"l{i}.weight"] = rng.normal(size=(n_out, n_in)) * scale
        w[f"l{i}.bias"] = rng.normal(size=n_out)
    return w


#: The records of :func:`make_step_run`: (step, epochs done) with 5 steps an epoch, recorded every 3
#: steps and at epoch ends.
STEP_RECORDS = ((0, 0.0), (3, 0.6), (5, 1.0), (6, 1.2), (9, 1.8), (10, 2.0))


def make_step_run(path: Path, *, records=STEP_RECORDS, n_probe: int = 120, n_test: int = 30, n_classes: int = 3,
                  width: int = 16, seed: int = 0) -> Path:
    """A small run recorded inside epochs (records numbered by step, schema 2), with weights and metrics."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_probe) % n_classes
    test_labels = np.arange(n_test) % n_classes
    names = [f"class {i}" for i in range(n_classes)]
    w1, w2 = rng.normal(size=(5, 4)), rng.normal(size=(n_classes, 5))
    n = len(records)
    with RunWriter.open(path, framework="synthetic", labels=labels, class_names=names, test_labels=test_labels) as w:
        w.set_record_unit("step")
        w.declare_layer("hidden", (width,), width, None)
        for i, (step, done) in enumerate(records):
            with w.epoch(step) as ep:
                ep.set_time(step, done)
                ep.set_activations("hidden", blob_activations(labels, i, n, width, seed + i))
                ep.set_activations("hidden", blob_activations(test_labels, i, n, width, seed + 99 + i), split="test")
                acc = min(1.0, 0.3 + 0.7 * i / max(n - 1, 1))
                ep.set_predictions(np.where(rng.random(n_probe) < acc, labels, (labels + 1) % n_classes))
                ep.set_predictions(np.where(rng.random(n_test) < acc, test_labels, (test_labels + 1) % n_classes),
                                   split="test")
                ep.set_weights({"l1.weight": w1 * (1 + 0.1 * i), "l1.bias": np.zeros(5),
                                "l2.weight": w2 * (1 - 0.05 * i), "l2.bias": np.zeros(n_classes)})
                ep.set_metrics({"loss": 1.0 / (i + 1), "accuracy": acc})
    return path


def truncate(path: Path | str, size: int = 50) -> None:
    """Damage a run file the way a crash or a full disk does: cut it to its first ``size`` bytes."""
    with open(path, "r+b") as fh:
        fh.truncate(size)
