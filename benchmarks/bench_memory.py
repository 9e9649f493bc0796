"""Benchmark: peak memory and time of ``embed`` + ``render`` (+ ``report``) on a large run.

Target (issue 14): at most 2 GiB for every stage, for render and report of a 60,000-example,
20-epoch run and of a 2,000-example, 1,000-epoch run. ``render`` streams its frames (one frame
plus the writers' state in memory, whatever the number of epochs), so its peak should not grow
with ``--epochs`` or ``--smooth``.

Writes a synthetic run through :class:`epochscope.run.RunWriter`, epoch by epoch and in
row chunks straight into the epoch's memory-mapped layer file (the whole run is never in
memory): a ``--probe``-example probe set (default 60,000), a ``--test`` set (default
1,000), one ``--width``-wide layer (default 512) and ``--epochs`` epochs (default 20).
Every example keeps its own low-dimensional identity across epochs and the classes
separate as training goes on, so the maps show clusters forming.

Then each stage runs in a fresh Python process, exactly as a user would run it::

    python -m epochscope embed RUN                      # default method: the warm-started UMAP chain
    python -m epochscope render RUN --out OUT           # default format: GIF (maps read from the cache)
    python -m epochscope report RUN --out OUT/report.html

and the peak resident memory of each process is read from the kernel when it exits
(``os.wait4``'s ``ru_maxrss``), beside its wall and CPU time, the size of the run on disk
and of one epoch. Target: at most 2 GiB for every stage.

Run from the repository root (the full size takes 10-15 minutes on 2 shared cores)::

    .venv/bin/python benchmarks/bench_memory.py --out benchmarks/results/memory.md
    .venv/bin/python benchmarks/bench_memory.py --probe 5000 --epochs 4 --width 64   # a quick check
    # the issue's second run: render and report of 1,000 epochs (PCA maps: the memory of drawing
    # does not depend on how the maps were made, and 1,000 UMAP epochs take long)
    .venv/bin/python benchmarks/bench_memory.py --probe 2000 --test 500 --epochs 1000 --width 64 --method pca
    .venv/bin/python benchmarks/bench_memory.py --probe 2000 --test 500 --epochs 100 --width 64 --method pca --smooth

When a peak needs explaining, the peak RSS (anonymous / file-backed) per stage of embed,
sampled in one process::

    .venv/bin/python benchmarks/bench_memory.py --profile RUN [--epochs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _common import table

TARGET_BYTES = 2 * 1024**3
LAYER = "hidden"
N_CLASSES = 10
LATENT = 16  # per-example identity: a point keeps its neighbours from epoch to epoch
CHUNK = 5_000  # rows generated and written at a time


def write_run(path: Path, *, n_probe: int, n_test: int, n_epochs: int, width: int, seed: int = 0,
              weights: bool = True) -> None:
    """Write the synthetic run epoch by epoch, ``CHUNK`` rows at a time, into memory-mapped files;
    with ``weights``, a small dense chain (width-64-10) per epoch, so render draws network.gif too."""
    from epochscope.run import RunWriter

    rng = np.random.default_rng(seed)
    labels = np.arange(n_probe) % N_CLASSES
    test_labels = np.arange(n_test) % N_CLASSES
    centres = rng.normal(size=(N_CLASSES, width)).astype(np.float32) * 1.5
    mix = rng.normal(size=(LATENT, width)).astype(np.float32) / np.sqrt(LATENT)
    names = [str(i) for i in range(N_CLASSES)]
    w1 = rng.normal(size=(64, width)).astype(np.float32) / np.sqrt(width)
    w2 = rng.normal(size=(N_CLASSES, 64)).astype(np.float32) / 8

    def identity(split: str, lo: int, hi: int) -> np.ndarray:
        # The same latent code for an example at every epoch, regenerated per chunk (never the whole set).
        offset = 0 if split == "probe" else 1_000_003
        g = np.random.default_rng([seed, offset + lo])
        return g.normal(size=(hi - lo, LATENT)).astype(np.float32)

    with RunWriter.open(path, framework="synthetic", labels=labels, class_names=names,
                        test_labels=test_labels if n_test else None) as w:
        w.declare_layer(LAYER, (width,), width, None)
        for epoch in range(n_epochs):
            t = epoch / max(n_epochs - 1, 1)
            with w.epoch(epoch) as ep:
                for split, y, n in (("probe", labels, n_probe), ("test", test_labels, n_test)):
                    if not n:
                        continue
                    buf = ep.layer_buffer(LAYER, split=split)
                    for lo in range(0, n, CHUNK):
                        hi = min(lo + CHUNK, n)
                        noise = np.random.default_rng([seed, epoch, lo, n]).normal(size=(hi - lo, width))
                        buf[lo:hi] = (identity(split, lo, hi) @ mix + t * centres[y[lo:hi]]
                                      + 0.3 * noise.astype(np.float32))
                acc = 0.1 + 0.88 * t
                wrong = rng.random(n_probe) >= acc
                ep.set_predictions(np.where(wrong, (labels + 1) % N_CLASSES, labels))
                if n_test:
                    wrong_t = rng.random(n_test) >= acc * 0.97
                    ep.set_predictions(np.where(wrong_t, (test_labels + 1) % N_CLASSES, test_labels), split="test")
                if weights:
                    ep.set_weights({"fc1.weight": w1 * (1 + 0.5 * t), "fc2.weight": w2 * (1 + t * rng.random(w2.shape))})
                ep.set_metrics({"loss": 2.3 * (1 - t) + 0.05, "accuracy": acc,
                                "val_loss": 2.3 * (1 - t) + 0.08, "val_accuracy": acc * 0.97})


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(cmd: list[str], log: Path) -> dict[str, float]:
    """Run ``cmd`` in a fresh process; its wall time, CPU time and peak resident memory (bytes)."""
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        # wait4 gives this one child's own resource usage (RUSAGE_CHILDREN would mix the stages).
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with status {proc.returncode}; see {log}:\n"
                         + log.read_text()[-3000:])
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss * 1024}


def _rss() -> dict[str, int]:
    """VmRSS, RssAnon, RssFile (MiB) of this process."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) // 1024
    return out


def profile_embed(run_dir: str, n_epochs: int | None) -> str:
    """Peak RSS per stage of the UMAP chain's embed, sampled every 50 ms in this process."""
    import functools
    import threading

    stage, peaks = ["import"], {}

    def sample() -> None:
        while True:
            now = _rss()
            peak = peaks.setdefault(stage[0], dict.fromkeys(now, 0))
            for k, v in now.items():
                peak[k] = max(peak[k], v)
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    import umap  # noqa: F401  (its import is a stage of its own)

    import epochscope.maps.api as api
    import epochscope.maps.umap_chain as chain

    def mark(name, fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            before, stage[0] = stage[0], name
            try:
                return fn(*a, **k)
            finally:
                stage[0] = before
        return wrapper

    chain.nearest_neighbours = mark("k nearest neighbours", chain.nearest_neighbours)
    chain._spectral_start = mark("spectral start (anchor epoch)", chain._spectral_start)
    chain.umap_layout = mark("layout", chain.umap_layout)
    chain.place_points = mark("test points (place_points)", chain.place_points)
    api.find_unusable_epochs = mark("NaN/Inf scan", api.find_unusable_epochs)
    api._quality = mark("quality figures", api._quality)
    stage[0] = "rest (fuzzy graph, reading epochs, align)"
    t0 = time.perf_counter()
    api.embed(run_dir, method="umap", cache=False, progress=False,
              epochs=None if n_epochs is None else list(range(n_epochs)))
    seconds = time.perf_counter() - t0
    time.sleep(0.2)
    rows = [[name, v["VmRSS"], v["RssAnon"], v["RssFile"]] for name, v in peaks.items()]
    peak = max(v["VmRSS"] for v in peaks.values())
    return (f"embed of {run_dir} ({'all' if n_epochs is None else n_epochs} epochs): {seconds:.0f} s, "
            f"peak RSS {peak:,} MiB\n\n"
            + table(["stage", "peak RSS MiB", "anonymous", "file-backed"], rows))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--probe", type=int, default=60_000, help="probe examples (default 60,000)")
    p.add_argument("--test", type=int, default=1_000, help="test examples (default 1,000; 0 for none)")
    p.add_argument("--epochs", type=int, default=20, help="epochs (default 20)")
    p.add_argument("--width", type=int, default=512, help="layer width (default 512)")
    p.add_argument("--method", default="umap", help="map method for embed (default umap)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report stage")
    p.add_argument("--format", default="gif", help="render's animation formats (default gif; gif,mp4 for both)")
    p.add_argument("--smooth", action="store_true", help="render also the smooth animation (6 frames per epoch)")
    p.add_argument("--no-weights", action="store_true", help="write no weights (render then draws no network.gif)")
    p.add_argument("--workdir", default=None, help="where the run and pictures go (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the run and pictures")
    p.add_argument("--out", default=None, help="also write the markdown result here")
    p.add_argument("--profile", metavar="RUN", default=None,
                   help="print peak memory per stage of embedding RUN (in this process) and exit")
    p.add_argument("--_write", metavar="RUN", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args._write:  # the child process that writes the run
        write_run(Path(args._write), n_probe=args.probe, n_test=args.test, n_epochs=args.epochs, width=args.width,
                  weights=not args.no_weights)
        return 0
    if args.profile:
        epochs = args.epochs if "--epochs" in (argv if argv is not None else sys.argv[1:]) else None
        text = profile_embed(args.profile, epochs)
        print(text)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write("\n" + text + "\n")
        return 0

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="es-bench-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    run_dir, pictures = work / "run", work / "pictures"
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.rmtree(pictures, ignore_errors=True)
    py = sys.executable
    size = f"--probe {args.probe} --test {args.test} --epochs {args.epochs} --width {args.width}" + \
        (" --no-weights" if args.no_weights else "")
    render_opts = ["--format", args.format] + (["--smooth"] if args.smooth else [])
    what = args.format.upper().replace(",", " + ") + (", smooth" if args.smooth else "") + \
        ("" if args.no_weights else ", network.gif")
    stages = [
        ("write the run (RunWriter)", [py, __file__, *size.split(), "--_write", str(run_dir)]),
        ("import umap + matplotlib only", [py, "-c", "import umap, matplotlib.pyplot, epochscope.maps.api"]),
        (f"`epochscope embed RUN --method {args.method}`", [py, "-m", "epochscope", "embed", str(run_dir),
                                                          "--method", args.method]),
        (f"`epochscope render RUN --out OUT --method {args.method} {' '.join(render_opts)}` ({what})",
         [py, "-m", "epochscope", "render", str(run_dir), "--out", str(pictures), "--method", args.method,
          *render_opts]),
    ]
    if not args.no_report:
        stages.append((f"`epochscope report RUN --method {args.method}` (all points)",
                       [py, "-m", "epochscope", "report", str(run_dir), "--out", str(pictures / "report.html"),
                        "--method", args.method]))
    rows, results = [], {}
    for name, cmd in stages:
        print(f"{name} ...", flush=True)
        r = measure(cmd, work / f"stage-{len(results)}.log")
        results[name] = r
        print(f"  {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU, peak RSS {r['rss'] / 2**20:.0f} MiB", flush=True)
        rows.append([name, f"{r['wall']:.1f}", f"{r['cpu']:.1f}", f"{r['rss'] / 2**20:.0f}",
                     "yes" if r["rss"] <= TARGET_BYTES else "**no**"])

    total = disk_bytes(run_dir)
    epoch_dirs = sorted((run_dir / "epochs").iterdir())
    one_epoch = disk_bytes(epoch_dirs[-1])
    caches = disk_bytes(run_dir / "cache") if (run_dir / "cache").exists() else 0
    gif = pictures / ("timelapse.gif" if "gif" in args.format else "timelapse.mp4")
    peak = max(results[name]["rss"] for name, _ in stages[2:])
    lines = [
        f"Run: {args.probe:,} probe + {args.test:,} test examples, one {args.width}-wide layer, {args.epochs} epochs, "
        f"{N_CLASSES} classes; {total / 2**20:,.0f} MiB on disk (one epoch {one_epoch / 2**20:,.1f} MiB, "
        f"maps cache {caches / 2**20:,.1f} MiB); time-lapse {gif.stat().st_size / 2**20:.1f} MiB.",
        "",
        table(["stage (fresh process)", "wall s", "CPU s", "peak RSS MiB", "<= 2 GiB"], rows),
        "",
        f"Highest peak of embed/render/report: {peak / 2**20:,.0f} MiB = {peak / one_epoch:.1f}x one epoch, "
        f"{peak / total:.2f}x the whole run on disk. Target 2 GiB: {'met' if peak <= TARGET_BYTES else 'NOT met'}.",
        f"Command: `.venv/bin/python benchmarks/bench_memory.py {size} --method {args.method} "
        f"{' '.join(render_opts)}`; "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}.",
    ]
    text = "\n".join(lines)
    print()
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("# Memory of embed + render on a large run\n\n" + text + "\n")
    if not args.keep and not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"run and pictures kept in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
