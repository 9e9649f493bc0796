"""Helpers shared by the benchmarks: data loading with the documented fallback, timing, tables."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist.npz"


def load_mnist(prefer_full: bool = True):
    """Full MNIST from ../shared/data/mnist.npz when present, else the embedded mnist-5k (with a message)."""
    from epochscope.datasets import load_dataset

    if prefer_full and SHARED_MNIST.exists():
        return load_dataset("mnist", path=SHARED_MNIST)
    print(f"note: {SHARED_MNIST} not found; using the embedded mnist-5k instead (figures not comparable)")
    return load_dataset("mnist-5k")


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    import torch

    return f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def table(header: list[str], rows: list[list[object]]) -> str:
    """A markdown table."""
    def fmt(v: object) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
