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


def warm_up(methods: list[str]) -> dict[str, float]:
    """Pay numba's compilation before timing anything (seconds per step, reported separately)."""
    out: dict[str, float] = {}
    rng = np.random.default_rng(0)
    if any(m in methods for m in ("umap", "umap-independent", "aligned-umap")):
        t0 = time.perf_counter()
        import umap

        from epochscope.maps import umap_chain
        from epochscope.maps.fuzzy import fuzzy_graph
        from epochscope.maps.knn import place_points

        # the chain's kernels compile once per machine (numba's on-disk cache); this loads them
        x = rng.normal(size=(400, 16)).astype(np.float32)
        knn, dists = umap_chain.nearest_neighbours(x, 15)
        graph = fuzzy_graph(knn, dists)
        layout = umap_chain.umap_layout(graph, umap_chain._spectral_start(x, graph, 0), n_epochs=5)
        place_points(x, layout, x[:20], n_neighbors=15, n_epochs=5)
        big = rng.normal(size=(4200, 16)).astype(np.float32)
        knn, _ = umap_chain.nearest_neighbours(big, 15)
        umap_chain.nearest_neighbours(big, 15, previous=knn)
        out["umap chain"] = time.perf_counter() - t0
        if "umap-independent" in methods or "aligned-umap" in methods:
            t0 = time.perf_counter()
            # above 4,096 points umap-learn switches to pynndescent, which compiles separately
            big = rng.normal(size=(4200, 16)).astype(np.float32)
            umap.UMAP(n_neighbors=40, n_epochs=5).fit(big).transform(big[:50])
            if "aligned-umap" in methods:
                umap.AlignedUMAP(n_neighbors=15, n_epochs=5).fit([x, x], relations=[{i: i for i in range(len(x))}])
            out["umap-learn"] = time.perf_counter() - t0
    if "tsne" in methods:
        t0 = time.perf_counter()
        import openTSNE

        openTSNE.TSNE(n_jobs=2, n_iter=10, early_exaggeration_iter=10).fit(rng.normal(size=(300, 16)))
        out["openTSNE"] = time.perf_counter() - t0
    return out


def measure(run_dir: Path, method: str) -> dict[str, float]:
    """Embed the ``hidden`` layer with ``method`` (no cache) and collect times and quality."""
    from epochscope.maps.api import embed_timed

    t0 = time.perf_counter()
    maps, timings = embed_timed(run_dir, "hidden", method, cache=False, progress=False)
    wall = time.perf_counter() - t0
    n = len(maps.epochs)
    q = maps.quality
    map_seconds = timings.get("fit", 0.0) + timings.get("test", 0.0) + timings.get("align", 0.0)
    first = timings.get("first_epoch")
    after_first = (timings["fit"] - first) / (n - 1) if first is not None and n > 1 else float("nan")
    return {
        "epochs": n, "map_seconds": map_seconds, "fit_seconds": timings.get("fit", 0.0),
        "test_seconds": timings.get("test", 0.0), "after_first": after_first,
        "quality_seconds": timings.get("quality", 0.0), "wall": wall,
        "trust_mean": float(np.nanmean(q["trustworthiness"])), "trust_min": float(np.nanmin(q["trustworthiness"])),
        "motion_mean": float(np.nanmean(q["motion"])), "knn_map_last": float(q["knn_accuracy_map"][-1]),
    }


def table(results: dict[str, dict[str, float]], baseline: str = "umap-independent") -> str:
    """One markdown table, with ratios against ``baseline`` where it was measured."""
    base = results.get(baseline)
    lines = [
        "| method | maps total (s) | fit / epoch after the first (s) | of which test placement (s) "
        "| quality figures (s) | trustworthiness mean / min | motion mean | k-NN acc. in map (last) "
        "| speed-up vs classic | trust. mean diff | motion ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, r in results.items():
        after = "—" if np.isnan(r["after_first"]) else f"{r['after_first']:.2f}"
        if base is not None:
            ratios = (f"{base['map_seconds'] / r['map_seconds']:.1f}x | {r['trust_mean'] - base['trust_mean']:+.4f} "
                      f"| {r['motion_mean'] / base['motion_mean']:.2f}")
        else:
            ratios = "— | — | —"
        label = "umap-independent (classic)" if method == baseline else method
        lines.append(f"| {label} | {r['map_seconds']:.1f} | {after} | {r['test_seconds']:.1f} | {r['quality_seconds']:.1f} "
                     f"| {r['trust_mean']:.4f} / {r['trust_min']:.4f} | {r['motion_mean']:.3f} | {r['knn_map_last']:.3f} "
                     f"| {ratios} |")
    return "\n".join(lines)


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
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    compile_seconds = warm_up(methods)
    print("numba/openTSNE warm-up (not timed below): "
          + ", ".join(f"{k} {v:.0f} s" for k, v in compile_seconds.items()), file=sys.stderr)
    results = {}
    from epochscope import open_run

    run = open_run(args.run_dir)
    header = (f"Layer `hidden` of the MNIST CNN, {run.manifest.probe_size} probe + {run.manifest.test_size} test "
              f"digits, {len(run.epochs)} epochs (0..{run.epochs[-1]}), {os.cpu_count()} cores. "
              "Maps total = fitting + test placement + alignment, numba compilation excluded; "
              "quality figures (trustworthiness k=10 on 2,000 points, motion, k-NN accuracies, CKA) "
              "are computed for every method and timed separately.")
    for method in methods:
        results[method] = measure(args.run_dir, method)
        print(f"{method}: {results[method]}", file=sys.stderr, flush=True)
        text = header + "\n\n" + table(results)
        if args.out is not None:  # rewritten after every method, so a long run keeps what it measured
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(f"<!-- {' '.join(sys.argv)} -->\n\n" + text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
