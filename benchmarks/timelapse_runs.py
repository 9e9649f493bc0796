"""The recorded runs the time-lapse benchmark embeds, built once under ``benchmarks/.cache/`` (git-ignored).

- ``issue``: the classic MNIST CNN (``epochscope.models.mnist_cnn``) trained on 10,000
  full-MNIST digits (Adam, lr 1e-3, batch 100), layer ``hidden`` recorded on a 5,000-digit
  probe (disjoint from the training digits) and 2,000 test digits, epochs 0..10.
- ``demo``: exactly what ``epochscope demo`` records (mnist-5k, 10 epochs, probe 2,000).
- ``scale``: the seed's workload, a 60,000-digit probe (the whole full-MNIST training set)
  over 20 epochs, 2,000 test digits; the CNN trains on 10,000 of those digits per epoch
  (training on all 60,000 for 20 epochs takes hours on 2 shared cores; the maps only see
  the probe, which is the full 60,000).

Run ``python benchmarks/timelapse_runs.py issue demo scale`` to build them ahead of the benchmark.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
#: Full MNIST, looked up in ``shared/data`` beside any folder above the repository (worktrees sit deeper).
MNIST = next((p / "shared" / "data" / "mnist.npz" for p in HERE.parents if (p / "shared" / "data" / "mnist.npz").exists()),
             HERE.parents[1] / "shared" / "data" / "mnist.npz")
RUNS = ("issue", "demo", "scale")


def run_path(name: str) -> Path:
    return CACHE / f"{name}-run"


def _finished(path: Path, n_epochs: int, *, partial: bool = False) -> bool:
    from epochscope import open_run
    from epochscope._errors import NotARunError

    try:
        run = open_run(path)
    except NotARunError:
        return False
    if len(run.epochs) >= n_epochs or (partial and len(run.epochs) >= 2):
        return True
    raise SystemExit(f"{path} holds an unfinished run ({len(run.epochs)} of {n_epochs} epochs); remove it and rerun")


def _train_cnn(path: Path, *, n_train: int, n_probe: int, n_test: int, epochs: int, probe_from_train: bool,
               seed: int = 0) -> None:
    import torch

    from epochscope.datasets import load_dataset
    from epochscope.models import mnist_cnn
    from epochscope.torch import Recorder
    from epochscope.train import fit

    if not MNIST.exists():
        raise SystemExit(f"{MNIST} not found: the time-lapse benchmark needs full MNIST")
    torch.set_num_threads(2)
    torch.manual_seed(seed)
    data = load_dataset("mnist", path=MNIST)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.x_train))
    if probe_from_train:
        train_idx, probe_idx = order[:n_train], order[:n_probe]
    else:
        train_idx, probe_idx = order[:n_train], order[len(order) - n_probe:]
    test_idx = rng.permutation(len(data.x_test))[:n_test]
    model = mnist_cnn()
    rec = Recorder(model, ["hidden"], probe=(data.x_train[probe_idx], data.y_train[probe_idx]), run_dir=str(path),
                   test=(data.x_test[test_idx], data.y_test[test_idx]), keep_inputs=False, weights=None,
                   seed=seed, batch_size=1000)
    try:
        fit(model, (data.x_train[train_idx], data.y_train[train_idx]),
            val=(data.x_test[test_idx], data.y_test[test_idx]), epochs=epochs, batch_size=100, lr=1e-3,
            recorder=rec, device="cpu", seed=seed, show_progress=False)
    finally:
        rec.close()


def prepare(name: str, *, partial: bool = False) -> Path:
    """The run ``name`` (one of :data:`RUNS`), built on first use.

    ``partial``: a scale run whose recording stopped early is used as it is (at least 2 epochs).
    """
    path = run_path(name)
    if name == "issue":
        if not _finished(path, 11):
            _train_cnn(path, n_train=10_000, n_probe=5_000, n_test=2_000, epochs=10, probe_from_train=False)
    elif name == "demo":
        if not _finished(path, 11):
            from epochscope.demo import run_demo

            run_demo(CACHE / "demo", pictures=False, show_progress=False)
            os.replace(CACHE / "demo" / "run", path)
            (CACHE / "demo" / ".epochscope-demo.json").unlink(missing_ok=True)  # the demo's list of its own files
            os.rmdir(CACHE / "demo")
    elif name == "scale":
        if not _finished(path, 21, partial=partial):
            _train_cnn(path, n_train=10_000, n_probe=60_000, n_test=2_000, epochs=20, probe_from_train=True)
    else:
        raise SystemExit(f"unknown run {name!r}; choose from {', '.join(RUNS)}")
    return path


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["issue", "demo"]:
        t0 = time.perf_counter()
        print(f"{arg}: {prepare(arg)} ready in {time.perf_counter() - t0:.0f} s", flush=True)
