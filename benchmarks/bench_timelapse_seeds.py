"""How much of the time-lapse's fidelity figures is the draw: the default maps with seeds 0-4.

For the issue and demo runs of ``bench_timelapse.py`` (built by ``timelapse_runs.py``), embeds
layer ``hidden`` with ``epochscope.embed(..., seed=s)`` for five seeds in this process and
prints, against the fresh ``UMAP(n_neighbors=15, min_dist=0.1)`` fits of each epoch (seeds 0
and 1, :func:`bench_timelapse.reference`, computed once and kept in ``benchmarks/.cache``),
the mean and largest separation difference and the worst consecutive-step difference
(:func:`bench_timelapse.fidelity`), and the mean motion::

    python benchmarks/bench_timelapse_seeds.py
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from bench_timelapse import fidelity, reference  # noqa: E402
from timelapse_runs import prepare  # noqa: E402

import epochscope  # noqa: E402


def main() -> int:
    for name in ("demo", "issue"):
        run = prepare(name)
        refs = {seed: reference(run, seed) for seed in (0, 1)}
        for seed in range(5):
            maps = epochscope.embed(run, "hidden", cache=False, progress=False, seed=seed)
            motion = float(np.nanmean(np.asarray(maps.quality["motion"], dtype=float)))
            for ref_seed, ref in refs.items():
                mean, largest, step = fidelity(maps.quality["separation"], ref)
                print(f"{run.name} seed {seed} vs fresh seed {ref_seed}: mean {mean:.3f} largest {largest:.3f} "
                      f"worst step {step:.3f} motion {motion:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
