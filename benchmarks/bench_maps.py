"""Benchmark: coherent time-lapse maps, the classic recipe against the warm-started chain.

Trains the classic MNIST CNN (``epochscope.models.mnist_cnn``) for a few epochs while
recording its ``hidden`` layer on a 5,000-digit probe (and a 1,000-digit test set), then
embeds that layer at every epoch with each method and prints one markdown table:
total time, time per epoch after the first, trustworthiness (mean, min), motion (mean)
and the ratios against the classic recipe (``umap-independent``).

Run from the repository root::

    .venv/bin/python benchmarks/bench_maps.py --run-dir /tmp/bench-maps-run \
        --methods umap-independent,umap,pca,tsne,aligned-umap --out benchmarks/results/maps.md

The recorded run is made once and reused (``--run-dir``). numba compiles UMAP's kernels
once per process (20-25 s); a small warm-up fit pays that before any timing starts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"


def prepare_run(run_dir: Path, *, epochs: int, n_train: int, n_probe: int, n_test: int, seed: int = 0) -> Path:
    """Train the CNN and record ``hidden`` into ``run_dir`` unless a finished run is already there."""
    from epochscope import open_run
    from epochscope._errors import NotARunError

    try:
        run = open_run(run_dir)
        if len(run.epochs) >= epochs + 1:
            return run_dir
        raise SystemExit(f"{run_dir} holds an unfinished run ({len(run.epochs)} epochs); remove it or pick another --run-dir")
    except NotARunError:
        pass
    import torch

    from epochscope.datasets import load_dataset
    from epochscope.models import mnist_cnn
    from epochscope.torch import Recorder
    from epochscope.train import fit

    torch.set_num_threads(2)
    if MNIST.exists():
        data = load_dataset("mnist", path=MNIST)
    else:
        print(f"{MNIST} not found; using the smaller mnist-5k dataset", file=sys.stderr)
        data = load_dataset("mnist-5k")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.x_train))
    n_train = min(n_train, len(order) - n_probe)
    train_idx, probe_idx = order[:n_train], order[len(order) - n_probe:]
    test_idx = rng.permutation(len(data.x_test))[:n_test]
    model = mnist_cnn()
    rec = Recorder(model, ["hidden"], probe=(data.x_train[probe_idx], data.y_train[probe_idx]), run_dir=str(run_dir),
                   test=(data.x_test[test_idx], data.y_test[test_idx]), keep_inputs=False, seed=seed)
    try:
        fit(model, (data.x_train[train_idx], data.y_train[train_idx]), val=(data.x_test[test_idx], data.y_test[test_idx]),
            epochs=epochs, recorder=rec, device="cpu", seed=seed)
    finally:
        rec.close()
    return run_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=Path("/tmp/epochscope-bench-maps-run"))
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (epoch 0 is recorded too)")
    parser.add_argument("--train", type=int, default=12000, help="training digits")
    parser.add_argument("--probe", type=int, default=5000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--methods", default="umap-independent,umap,pca,tsne,aligned-umap")
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    prepare_run(args.run_dir, epochs=args.epochs, n_train=args.train, n_probe=args.probe, n_test=args.test)
    print(f"run ready in {time.perf_counter() - t0:.0f} s: {args.run_dir}", file=sys.stderr)
    if args.prepare_only:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
