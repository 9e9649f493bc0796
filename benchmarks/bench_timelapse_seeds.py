"""How much of the time-lapse's fidelity figures is the draw: the default maps with seeds 0-4.

For the issue and demo runs of ``bench_timelapse.py`` (built by ``timelapse_runs.py``), embeds
layer ``hidden`` with ``epochscope.embed(..., seed=s)`` for five seeds in this process and
prints, against the fresh ``UMAP(n_neighbors=15, min_dist=0.1)`` fits of each epoch that
``bench_timelapse.py`` keeps in ``benchmarks/.cache/reference-*.json`` (seeds 0 and 1): the
mean and largest separation difference, the worst consecutive-step difference, and the mean
motion. Run ``bench_timelapse.py`` once first (it computes the references)::

    python benchmarks/bench_timelapse_seeds.py
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

import epochscope  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache"


def main() -> int:
    for run in ("demo-run", "issue-run"):
        refs = {}
        for seed in (0, 1):
            path = CACHE / f"reference-{run}-seed{seed}.json"
            if not path.exists():
                raise SystemExit(f"{path} not found: run benchmarks/bench_timelapse.py first")
            refs[seed] = np.asarray(json.loads(path.read_text())["separation"])
        for seed in range(5):
            maps = epochscope.embed(CACHE / run, "hidden", cache=False, progress=False, seed=seed)
            sep = np.asarray(maps.quality["separation"])
            motion = float(np.nanmean(np.asarray(maps.quality["motion"], dtype=float)))
            for ref_seed, ref in refs.items():
                diff = np.abs(sep - ref)
                step = np.abs(np.diff(sep) - np.diff(ref)).max()
                print(f"{run} seed {seed} vs fresh seed {ref_seed}: mean {diff.mean():.3f} largest {diff.max():.3f} "
                      f"worst step {step:.3f} motion {motion:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
