"""Benchmark: incremental maps. One new epoch of an embedded run against one warm frame and a full re-embed.

A synthetic run of 5,000 probe and 1,000 test examples (10 classes in a 128-wide layer that
separate over 30 epochs, every example drifting a little each epoch) is written in stages, as
training writes it; after each stage the default maps are embedded with the cache on (one
growing entry, extended). Then:

- **one new epoch**: the 30th epoch is appended and ``embed`` timed (reading the cached
  29 frames, computing one, writing the entry);
- **one warm frame**: the marginal cost of an epoch inside a full embed, ``(T(30 epochs) -
  T(1 epoch)) / 29`` with the cache off (fit, test placement, alignment, quality figures);
- **full re-embed**: ``T(30 epochs)``, what every new epoch cost before;
- **cache size** after 10, 20, 29 and 30 epochs (bytes of the one entry, and the count of entries).

All in one process after a warm-up that loads the compiled kernels. Run from the repository root::

    python benchmarks/bench_maps_incremental.py --out benchmarks/results/maps-incremental.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

N_PROBE, N_TEST, N_CLASSES, WIDTH, N_EPOCHS = 5000, 1000, 10, 128, 30


def _writer(path: Path):
    from epochscope.run import RunWriter

    labels = np.arange(N_PROBE) % N_CLASSES
    test_labels = np.arange(N_TEST) % N_CLASSES
    return RunWriter.open(path, framework="synthetic", labels=labels, test_labels=test_labels,
                          class_names=[f"class {c}" for c in range(N_CLASSES)])


def _layer(epoch: int, labels: np.ndarray, seed: int) -> np.ndarray:
    """Classes that separate over the epochs; each example keeps its own noise and drifts a little."""
    centres = np.random.default_rng(1).normal(size=(N_CLASSES, WIDTH)) * 1.5
    base = np.random.default_rng(seed).normal(size=(len(labels), WIDTH))
    drift = np.random.default_rng(seed + 1000 + epoch).normal(size=base.shape) * 0.2
    share = min(1.0, epoch / (N_EPOCHS * 0.6))
    return (share * centres[labels] + base + drift).astype(np.float32)


def write_epochs(path: Path, epochs: range) -> None:
    labels = np.arange(N_PROBE) % N_CLASSES
    test_labels = np.arange(N_TEST) % N_CLASSES
    with _writer(path) as w:
        if epochs.start == 0:
            w.declare_layer("hidden", (WIDTH,), WIDTH, None)
        for epoch in epochs:
            with w.epoch(epoch) as ep:
                ep.set_activations("hidden", _layer(epoch, labels, 0))
                ep.set_activations("hidden", _layer(epoch, test_labels, 1), split="test")


def entry_bytes(path: Path) -> tuple[int, int]:
    """(entries in the maps cache, bytes of all their files)."""
    from epochscope import open_run
    from epochscope.maps.cache import maps_cache_dir

    root = maps_cache_dir(open_run(path))
    entries = [p for p in root.iterdir() if p.is_dir()]
    return len(entries), sum(f.stat().st_size for e in entries for f in e.iterdir())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import epochscope

    tmp = Path(tempfile.mkdtemp(prefix="epochscope-incremental-"))
    try:
        path = tmp / "run"
        # warm-up: load (or compile) the kernels on a small run of the same kind
        small = tmp / "small"
        from epochscope.run import RunWriter

        with RunWriter.open(small, framework="synthetic", labels=np.arange(300) % 3, class_names=["a", "b", "c"]) as w:
            w.declare_layer("hidden", (8,), 8, None)
            for e in range(2):
                with w.epoch(e) as ep:
                    ep.set_activations("hidden", np.random.default_rng(e).normal(size=(300, 8)).astype(np.float32))
        epochscope.embed(small, "hidden", cache=False, progress=False)

        sizes = {}
        stages = [range(0, 10), range(10, 20), range(20, 29)]
        for stage in stages:
            write_epochs(path, stage)
            epochscope.embed(path, "hidden", progress=False)
            sizes[stage.stop] = entry_bytes(path)
        write_epochs(path, range(29, 30))
        t0 = time.perf_counter()
        grown = epochscope.embed(path, "hidden", progress=False)
        one_new = time.perf_counter() - t0
        sizes[30] = entry_bytes(path)
        from epochscope.maps.cache import STATE_FILE, maps_cache_dir

        state_bytes = sum(f.stat().st_size for f in maps_cache_dir(epochscope.open_run(path)).glob(f"*/{STATE_FILE}"))

        t0 = time.perf_counter()
        epochscope.embed(path, "hidden", epochs=[0], cache=False, progress=False)
        one_epoch = time.perf_counter() - t0
        t0 = time.perf_counter()
        full = epochscope.embed(path, "hidden", cache=False, progress=False)
        full_time = time.perf_counter() - t0
        warm_frame = (full_time - one_epoch) / (N_EPOCHS - 1)
        same = bool(np.array_equal(grown.coords, full.coords))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    stops = sorted(sizes)
    growth = [(sizes[b][1] - sizes[a][1]) / (b - a) for a, b in zip(stops, stops[1:])]
    lines = [
        f"Synthetic run: {N_PROBE:,} probe + {N_TEST:,} test examples, {N_CLASSES} classes in a {WIDTH}-wide layer, "
        f"{N_EPOCHS} epochs; default `umap` maps; one process; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| one new epoch (embed after the 30th epoch landed, cache on) | {one_new:.2f} s |",
        f"| one warm frame (marginal epoch of a full embed: (T30 - T1) / 29) | {warm_frame:.2f} s |",
        f"| **new epoch / warm frame** (target <= 2) | **{one_new / warm_frame:.2f}** |",
        f"| full re-embed of the 30 epochs (what a new epoch cost before) | {full_time:.1f} s |",
        f"| full re-embed / new epoch | {full_time / one_new:.1f}x |",
        f"| extended maps equal to the full re-embed, bit for bit | {'yes' if same else 'no'} |",
        "| cache after 10 / 20 / 29 / 30 epochs: entries | "
        + " / ".join(str(sizes[n][0]) for n in sorted(sizes)) + " |",
        "| cache after 10 / 20 / 29 / 30 epochs: bytes | "
        + " / ".join(f"{sizes[n][1]:,}" for n in sorted(sizes)) + " |",
        "| bytes added per epoch between those stages | " + " / ".join(f"{b:,.0f}" for b in growth) + " |",
        f"| of which the method's state (constant: last layout and neighbour lists) | {state_bytes:,} |",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(f"<!-- python benchmarks/bench_maps_incremental.py {' '.join(argv or sys.argv[1:])} -->\n\n"
                            + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
