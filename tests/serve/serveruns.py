"""Tiny runs for the serve tests, and a recorder that appends epochs to one from another process.

Both runs of a pair share one probe (same labels, inputs and class names) but not their layers'
outputs: run "b" is run "a" turned by a known rotation and scaled, so aligning "b" onto "a" must
find that transform again. Class names try to inject markup, so every test also checks escaping.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from epochscope.run import RunWriter

CLASS_NAMES = ["zero", "<img src=x onerror=alert(1)>", "two"]
N_PROBE, N_TEST, WIDTH = 60, 15, 8


def probe(seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.arange(N_PROBE) % len(CLASS_NAMES)
    test_labels = np.arange(N_TEST) % len(CLASS_NAMES)
    inputs = rng.random((N_PROBE, 1, 6, 6)).astype(np.float32)
    test_inputs = rng.random((N_TEST, 1, 6, 6)).astype(np.float32)
    return labels, test_labels, inputs, test_inputs


def open_writer(path: Path, *, probe_seed: int = 0) -> RunWriter:
    labels, test_labels, inputs, test_inputs = probe(probe_seed)
    w = RunWriter.open(path, framework="synthetic", labels=labels, class_names=CLASS_NAMES, test_labels=test_labels,
                       probe_inputs=inputs, test_inputs=test_inputs)
    w.declare_layer("hidden", (WIDTH,), WIDTH, None)
    return w


def activations(labels: np.ndarray, epoch: int, seed: int) -> np.ndarray:
    """Classes pull apart as the epochs pass (clean clusters from epoch 4 on)."""
    centres = np.random.default_rng(1234).normal(size=(len(CLASS_NAMES), WIDTH)) * 4
    noise = np.random.default_rng(seed * 1000 + epoch).normal(size=(len(labels), WIDTH))
    return (min(1.0, epoch / 4) * centres[labels] + noise).astype(np.float32)


def write_epoch(w: RunWriter, epoch: int, *, seed: int = 0, transform: np.ndarray | None = None) -> None:
    labels, test_labels, _, _ = probe()
    acc = min(1.0, 0.4 + 0.1 * epoch)
    x, xt = activations(labels, epoch, seed), activations(test_labels, epoch, seed + 7)
    if transform is not None:
        x, xt = x @ transform, xt @ transform
    rng = np.random.default_rng(epoch)
    with w.epoch(epoch) as ep:
        ep.set_activations("hidden", x)
        ep.set_activations("hidden", xt, split="test")
        ep.set_predictions(np.where(rng.random(N_PROBE) < acc, labels, (labels + 1) % 3))
        ep.set_predictions(np.where(rng.random(N_TEST) < acc, test_labels, (test_labels + 1) % 3), split="test")
        ep.set_weights({"l1.weight": np.full((4, 5), 0.1 * (epoch + 1)), "l2.weight": np.ones((3, 4))})
        ep.set_metrics({"loss": 1.0 / (epoch + 1), "accuracy": acc, "val_accuracy": acc * 0.9})


def rotation(width: int = WIDTH, seed: int = 5) -> np.ndarray:
    """A fixed orthogonal matrix times 2: run "b"'s layer is run "a"'s, turned and scaled."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(width, width)))
    return 2.0 * q


def make_run(path: Path, epochs: int, *, seed: int = 0, transform: np.ndarray | None = None, probe_seed: int = 0) -> Path:
    w = open_writer(path, probe_seed=probe_seed)
    try:
        for e in range(epochs):
            write_epoch(w, e, seed=seed, transform=transform)
    finally:
        w.close()
    return path


def record_on_signal(path: Path, control: Path, epochs: int) -> None:
    """The recording process: holds the run's lock and writes the next epoch each time ``control/go``
    appears (then removes it and prints ``wrote EPOCH``); stops after ``epochs`` more epochs."""
    w = open_writer(path)
    try:
        for _ in range(epochs):
            go = control / "go"
            while not go.exists():
                time.sleep(0.05)
            go.unlink()
            epoch = w.next_epoch
            write_epoch(w, epoch)
            print(f"wrote {epoch}", flush=True)
    finally:
        w.close()


if __name__ == "__main__":  # python serveruns.py RUN CONTROL N
    record_on_signal(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
