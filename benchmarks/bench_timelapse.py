"""Benchmark: does the time-lapse tell the truth about learning, and how fast is it from the first call?

For each recorded run (``timelapse_runs.py``: the issue's MNIST CNN run and the demo's run)
and each map method, one **fresh Python process** embeds layer ``hidden`` at every epoch
(``epochscope.embed(..., cache=False)``) and reports its quality figures; the parent times
the whole process (interpreter start, imports, numba compilation or cache loading, the
maps, test placement and quality figures). Then one table per run:

- **fidelity**: per frame, the class separation of the map (``silhouette_score`` of the 2-D
  points by class on the fixed 2,000-point quality subsample) against a fresh
  ``umap.UMAP(n_neighbors=15, min_dist=0.1)`` fitted on that epoch alone (seed 0): mean and
  largest absolute difference, and the largest difference between consecutive-frame
  changes. The same figures for a second fresh seed give the noise floor.
- **trustworthiness** (k=10) against the classic recipe, worst frame;
- **motion** (mean over frames) and its ratio to the classic recipe's;
- **speed**: fresh-process seconds and the speed-up over the classic recipe
  (``umap.UMAP(n_neighbors=40)`` per epoch), after a first run on the machine (numba's
  on-disk cache filled); the very first run's cost (empty cache) is reported apart.

``--runs scale`` adds the seed's workload: a 60,000-digit probe over 20 epochs (the classic
recipe timed on one and on two epochs in fresh processes, after a first classic run that
fills umap-learn's and pynndescent's numba cache, and extrapolated from the difference),
with the peak resident memory; ``--partial`` uses a scale run whose
recording stopped early, over the epochs it holds.

Run from the repository root (builds the runs on first use, under ``benchmarks/.cache/``)::

    python benchmarks/bench_timelapse.py --out benchmarks/results/maps-timelapse.md
    python benchmarks/bench_timelapse.py --runs scale --methods umap,umap-independent \\
        --out benchmarks/results/maps-scale.md
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

METHODS = ("umap", "umap-independent", "aligned-umap")
#: Epochs of the scale run compared with fresh UMAP fits, seeds 0 and 1 (about a minute each at 60,000 points).
SCALE_FIDELITY_EPOCHS = (0, 1, 2, 3, 5, 10, 15, 20)
LABELS = {"umap": "umap (default)", "umap-independent": "umap-independent (classic)", "aligned-umap": "aligned-umap",
          "umap+parallel": "umap, parallel=True"}


# ---------------------------------------------------------------- child processes

def child_embed(run: str, method: str, epochs: list[int] | None, out: str) -> None:
    """Embed in this fresh process and write timings and quality to ``out`` (JSON)."""
    import numpy as np

    t_import = time.perf_counter()
    from epochscope.maps.api import embed_timed

    imported = time.perf_counter() - t_import
    # "umap+parallel": the method with parallel=True (numba's threads)
    method, _, flag = method.partition("+")
    options = {flag: True} if flag else {}
    maps, timings = embed_timed(run, "hidden", method, epochs=epochs, cache=False, progress=False, **options)
    result = {
        "in_process": time.perf_counter() - _T0, "import": imported, "timings": timings, "epochs": maps.epochs,
        "quality": {k: [None if not np.isfinite(v) else float(v) for v in vals] for k, vals in maps.quality.items()},
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    Path(out).write_text(json.dumps(result))


def child_reference(run: str, seed: int, out: str, epochs: list[int] | None = None) -> None:
    """Fresh ``umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=seed)`` per epoch: separation per frame."""
    import numpy as np
    import umap

    import epochscope
    from epochscope.maps.quality import quality_subsample, separation

    r = epochscope.open_run(run)
    sub = quality_subsample(len(r.labels))
    labels = np.asarray(r.labels)[sub]
    epochs = r.epochs if epochs is None else epochs
    seps = []
    for epoch in epochs:
        x = np.asarray(r.activations("hidden", epoch), dtype=np.float32)
        frame = umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=seed).fit_transform(x)
        seps.append(separation(frame[sub], labels))
    Path(out).write_text(json.dumps({"separation": seps, "epochs": epochs}))


# ---------------------------------------------------------------- the parent

def _spawn(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run this script as a child; returns (wall seconds, load average at the end)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], check=True,
                   env={**os.environ, **(env or {})})
    return time.perf_counter() - t0, os.getloadavg()[0]


def measure(run: Path, method: str, *, cache_dir: Path, epochs: list[int] | None = None) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    args = ["--child-embed", str(run), method, out]
    if epochs is not None:
        args += ["--epochs", ",".join(map(str, epochs))]
    wall, load = _spawn(args, env={"NUMBA_CACHE_DIR": str(cache_dir)})
    result = json.loads(Path(out).read_text())
    os.unlink(out)
    result["wall"], result["load"] = wall, load
    return result


def reference(run: Path, seed: int, epochs: list[int] | None = None) -> list[float]:
    """Fresh-UMAP separation per epoch (or at ``epochs``), computed once per run and seed (kept in benchmarks/.cache)."""
    tag = "" if epochs is None else "-epochs" + "_".join(map(str, epochs))
    path = HERE / ".cache" / f"reference-{run.name}-seed{seed}{tag}.json"
    if not path.exists():
        _spawn(["--child-reference", str(run), str(seed), str(path)] + ([] if epochs is None else
                                                                          ["--epochs", ",".join(map(str, epochs))]))
    return json.loads(path.read_text())["separation"]


def fidelity(sep, ref) -> tuple[float, float, float]:
    import numpy as np

    sep, ref = np.asarray(sep, float), np.asarray(ref, float)
    diff = sep - ref
    steps = np.abs(np.diff(sep) - np.diff(ref)) if len(sep) > 1 else np.zeros(1)
    return float(np.abs(diff).mean()), float(np.abs(diff).max()), float(steps.max())


def run_table(name: str, run: Path, methods: list[str], cache_dir: Path, first: dict | None) -> str:
    import numpy as np

    ref0, ref1 = reference(run, 0), reference(run, 1)
    results = {m: measure(run, m, cache_dir=cache_dir) for m in methods}
    classic = results.get("umap-independent")
    floor = fidelity(ref1, ref0)
    lines = [
        f"**{name}** ({run.name}: {len(ref0)} epochs). Fidelity against a fresh `UMAP(n_neighbors=15, min_dist=0.1)` "
        f"of each epoch (seed 0); noise floor (seed 1 against seed 0): mean {floor[0]:.3f}, largest {floor[1]:.3f}, "
        f"worst step {floor[2]:.3f}. Targets: mean <= 0.03, largest <= 0.05, worst step <= 0.03; trustworthiness "
        "within 0.01 of the classic on every frame; motion <= 1/3 of the classic's.",
        "",
        "| method | fresh process (s) | speed-up vs classic | separation mean / largest diff | worst step diff "
        "| vs seed 1: mean / largest / step | trust. worst diff vs classic | motion mean | motion ratio "
        "| fit / test / quality (s) | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, r in results.items():
        q = r["quality"]
        sep = q["separation"]
        f0, f1 = fidelity(sep, ref0), fidelity(sep, ref1)
        motion = float(np.nanmean(np.asarray(q["motion"], dtype=float)))
        if classic is not None:
            speed = f"{classic['wall'] / r['wall']:.1f}x"
            trust = float(np.min(np.asarray(q["trustworthiness"]) - np.asarray(classic["quality"]["trustworthiness"])))
            trust_text = f"{trust:+.4f}"
            ratio = f"{motion / float(np.nanmean(np.asarray(classic['quality']['motion'], dtype=float))):.2f}"
        else:
            speed, trust_text, ratio = "—", "—", "—"
        t = r["timings"]
        lines.append(
            f"| {LABELS.get(method, method)} | {r['wall']:.1f} | {speed} | {f0[0]:.3f} / {f0[1]:.3f} | {f0[2]:.3f} "
            f"| {f1[0]:.3f} / {f1[1]:.3f} / {f1[2]:.3f} | {trust_text} | {motion:.3f} | {ratio} "
            f"| {t.get('fit', 0):.1f} / {t.get('test', 0):.1f} / {t.get('quality', 0):.1f} | {r['load']:.1f} |")
    lines.append("")
    lines.append("Separation per epoch (map; the layer's own in the last row):")
    lines.append("")
    lines.append("| | " + " | ".join(str(e) for e in results[methods[0]]["epochs"]) + " |")
    lines.append("|---|" + "---|" * len(ref0))
    lines.append("| fresh UMAP, seed 0 | " + " | ".join(f"{v:.3f}" for v in ref0) + " |")
    lines.append("| fresh UMAP, seed 1 | " + " | ".join(f"{v:.3f}" for v in ref1) + " |")
    for method, r in results.items():
        lines.append(f"| {LABELS.get(method, method)} | " + " | ".join(f"{v:.3f}" for v in r["quality"]["separation"]) + " |")
    layer = results[methods[0]]["quality"]["separation_layer"]
    lines.append("| the layer (its own space) | " + " | ".join(f"{v:.3f}" for v in layer) + " |")
    if first is not None:
        lines.append("")
        lines.append(f"Very first run on the machine (numba's cache empty): `umap` {first['wall']:.1f} s in a fresh "
                     f"process, against {results['umap']['wall']:.1f} s once its kernels are cached.")
    return "\n".join(lines)


def scale_table(run: Path, cache_dir: Path) -> str:
    import epochscope

    epochs = epochscope.open_run(run).epochs
    ours = measure(run, "umap", cache_dir=cache_dir)
    # The classic recipe timed on one epoch and on two, each in a fresh process: the difference
    # is one more epoch's cost (fit, transform, quality) without the process start-up and
    # umap-learn's compilation, which a process pays once.
    # umap-learn and pynndescent keep some of their compiled functions in numba's on-disk cache:
    # the first classic process on a machine pays for them and later ones do not (measured: one
    # epoch 313 s, then two epochs 199 s). A first run fills that cache, as for our method; on
    # this run, since umap-learn only calls pynndescent above 4,096 examples (a first run on the
    # 2,000-example demo run left one epoch at 279 s against 187 s for two).
    measure(run, "umap-independent", cache_dir=cache_dir, epochs=epochs[:1])
    one = measure(run, "umap-independent", cache_dir=cache_dir, epochs=epochs[:1])
    classic = measure(run, "umap-independent", cache_dir=cache_dir, epochs=epochs[:2])
    per_epoch = classic["wall"] - one["wall"]
    if per_epoch <= 0:
        raise SystemExit(f"the classic took {one['wall']:.0f} s for one epoch and {classic['wall']:.0f} s for two: "
                         "the machine's load changed between them; rerun on a quiet machine")
    extrapolated = one["wall"] + per_epoch * (len(epochs) - 1)
    # Fidelity at scale: a fresh UMAP of 60,000 points takes about a minute, so against seed 0 at
    # SCALE_FIDELITY_EPOCHS only (steps compared between those epochs).
    import numpy as np

    at = [e for e in SCALE_FIDELITY_EPOCHS if e in epochs]
    ref, ref1 = reference(run, 0, at), reference(run, 1, at)
    ours_sep = [ours["quality"]["separation"][epochs.index(e)] for e in at]
    fid, fid1, floor = fidelity(ours_sep, ref), fidelity(ours_sep, ref1), fidelity(ref1, ref)
    trust = np.asarray(ours["quality"]["trustworthiness"][:2]) - np.asarray(classic["quality"]["trustworthiness"][:2])
    motion = float(np.nanmean(np.asarray(ours["quality"]["motion"], dtype=float)))
    classic_motion = float(np.nanmean(np.asarray(classic["quality"]["motion"], dtype=float)))
    return "\n".join([
        f"**Scale**: {run.name}, a {epochscope.open_run(run).manifest.probe_size:,}-digit probe, {len(epochs)} epochs "
        f"({'all recorded' if len(epochs) >= 21 else f'the recording stopped after {len(epochs)} of the planned 21'}; "
        "both methods compared over these epochs).",
        "",
        "| method | fresh process (s) | speed-up vs classic | peak RSS (MiB) | fit / test / quality (s) | load avg |",
        "|---|---|---|---|---|---|",
        f"| umap (default) | {ours['wall']:.0f} | {extrapolated / ours['wall']:.1f}x | {ours['max_rss_mib']:.0f} "
        f"| {ours['timings']['fit']:.0f} / {ours['timings'].get('test', 0):.0f} / {ours['timings']['quality']:.0f} "
        f"| {ours['load']:.1f} |",
        f"| umap-independent (classic), **timed on 1 and 2 epochs, {len(epochs)} extrapolated** | {extrapolated:.0f} "
        f"(1 epoch: {one['wall']:.0f}, 2 epochs: {classic['wall']:.0f}) | 1.0x | {classic['max_rss_mib']:.0f} "
        f"| {classic['timings']['fit']:.0f} / {classic['timings'].get('test', 0):.0f} / "
        f"{classic['timings']['quality']:.0f} | {classic['load']:.1f} |",
        "",
        f"Fidelity at scale against a fresh `UMAP(n_neighbors=15, min_dist=0.1)` (seed 0) of epochs {at}: separation "
        f"mean / largest difference {fid[0]:.3f} / {fid[1]:.3f}, worst step (between those epochs) {fid[2]:.3f}; "
        f"against seed 1: {fid1[0]:.3f} / {fid1[1]:.3f} / {fid1[2]:.3f}; noise floor (seed 1 against seed 0): "
        f"{floor[0]:.3f} / {floor[1]:.3f} / {floor[2]:.3f}; "
        f"trustworthiness minus the classic's at epochs 0 and 1: {trust[0]:+.4f}, {trust[1]:+.4f}; motion mean "
        f"{motion:.3f} (the classic's, epochs 0-1 only: {classic_motion:.3f}).",
        "",
        "| | " + " | ".join(str(e) for e in at) + " |",
        "|---|" + "---|" * len(at),
        "| fresh UMAP, seed 0 | " + " | ".join(f"{v:.3f}" for v in ref) + " |",
        "| fresh UMAP, seed 1 | " + " | ".join(f"{v:.3f}" for v in ref1) + " |",
        "| umap (default) | " + " | ".join(f"{v:.3f}" for v in ours_sep) + " |",
        "| the layer (its own space) | " + " | ".join(
            f"{ours['quality']['separation_layer'][epochs.index(e)]:.3f}" for e in at) + " |",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="issue,demo", help="issue, demo and/or scale")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child-embed", nargs=3, metavar=("RUN", "METHOD", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--child-reference", nargs=3, metavar=("RUN", "SEED", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--epochs", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--partial", action="store_true",
                        help="use a scale run whose recording stopped early as it is (the table says how many epochs)")
    args = parser.parse_args(argv)
    if args.child_embed:
        epochs = None if args.epochs is None else [int(e) for e in args.epochs.split(",")]
        child_embed(args.child_embed[0], args.child_embed[1], epochs, args.child_embed[2])
        return 0
    if args.child_reference:
        epochs = None if args.epochs is None else [int(e) for e in args.epochs.split(",")]
        child_reference(args.child_reference[0], int(args.child_reference[1]), args.child_reference[2], epochs)
        return 0

    from timelapse_runs import prepare

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    cache_dir = Path(tempfile.mkdtemp(prefix="epochscope-numba-"))
    sections = [f"Load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
                "(shared machine: compare the ratios within one table, not seconds across tables)."]
    first = None
    for name in [r.strip() for r in args.runs.split(",") if r.strip()]:
        run = prepare(name, partial=args.partial and name == "scale")
        if name == "scale":
            measure(prepare("demo"), "umap", cache_dir=cache_dir)  # fill numba's cache first
            sections.append(scale_table(run, cache_dir))
        else:
            if first is None and "umap" in methods:
                first = measure(run, "umap", cache_dir=cache_dir)  # empty cache: the very first run
            sections.append(run_table(name, run, methods, cache_dir, first if len(sections) == 1 else None))
        text = "\n\n".join(sections)
        print(text, flush=True)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(f"<!-- python benchmarks/bench_timelapse.py {' '.join(argv or sys.argv[1:])} -->\n\n"
                                + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
