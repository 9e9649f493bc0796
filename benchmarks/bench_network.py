"""Benchmark: the network animation, the classic Graphviz way against epochscope.

The classic way (as in the seed-002 weight-graph scripts): for every frame, write the
graph as DOT (edge ``penwidth`` from |w|, colour from the change), render it with
``dot -Tpng``, show the PNG with ``imshow`` next to the accuracy curve, and join the frames
with matplotlib's ``FuncAnimation`` and ``PillowWriter``. epochscope draws the figure once
and updates one ``LineCollection`` per frame (blitting), then writes a shared-palette GIF.

Both sides draw the same 4-5-5-5-3 network over the same snapshots with the same edge
values (from :class:`epochscope.network.NetworkHistory`), at the same figure size,
into a GIF; times are end to end (reading weights and writing the file included).

Run from the repository root::

    .venv/bin/python benchmarks/bench_network.py --frames 100 --out benchmarks/results/network.md

``--run PATH`` times a recorded run instead (e.g. the Iris demo's ``demo-out/run``).
Without Graphviz (``dot`` not on PATH) the classic side is skipped with a message.
"""

from __future__ import annotations

import argparse
import io
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
import numpy as np  # noqa: E402
from _common import table  # noqa: E402

SIZES = (4, 5, 5, 5, 3)


def synthetic_run(path: Path, frames: int, seed: int = 0) -> Path:
    """A 4-5-5-5-3 run whose weights random-walk and whose accuracy rises, ``frames`` epochs."""
    from epochscope.run import RunWriter

    rng = np.random.default_rng(seed)
    w = {f"l{i}": rng.normal(size=(o, n)) for i, (n, o) in enumerate(zip(SIZES[:-1], SIZES[1:]), start=1)}
    with RunWriter.open(path, framework="synthetic", labels=np.zeros(1, np.int64),
                        class_names=["a", "b", "c"]) as writer:
        for epoch in range(frames):
            for k in w:
                w[k] = w[k] + rng.normal(scale=0.05, size=w[k].shape)
            with writer.epoch(epoch) as ep:
                ep.set_weights({f"{k}.weight": v for k, v in w.items()})
                ep.set_predictions(np.full(1, -1))
                acc = 1 - 0.6 * np.exp(-epoch / 15)
                ep.set_metrics({"accuracy": acc, "val_accuracy": acc - 0.03, "loss": 1 - acc})
    return path


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (``dot``): robust to a busy machine."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def epochscope_side(run: Path, out: Path, *, shared_palette: bool = True) -> tuple[float, float, int]:
    from epochscope.draw import network as net

    t0, c0 = time.perf_counter(), cpu_seconds()
    if shared_palette:
        net.network_animation(run, out, progress=False)
    else:  # the same frames through draw.animate.write_animation (a median-cut palette per frame)
        from epochscope.draw.animate import write_animation
        from epochscope.network import NetworkHistory
        from epochscope.run import open_run

        r = open_run(run)
        h = NetworkHistory.from_run(r)
        fig = net.NetworkFigure(h, {m["epoch"]: m for m in r.metrics})
        frames = [fig.render(i) for i in range(len(h))]
        fig.close()
        write_animation(frames, out, duration_ms=100)
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    from PIL import Image

    return elapsed, cpu, Image.open(out).n_frames


def dot_source(history, index: int) -> str:
    """The frame as Graphviz DOT: ranks left to right, penwidth from |w|, colour from the change."""
    from epochscope.colors import rgb_to_hex

    frame = history.frame(index)
    colours = rgb_to_hex(frame.colors())
    lines = ["digraph G {", "rankdir=LR; splines=line; nodesep=0.3; ranksep=1.6;",
             'node [shape=circle, label="", width=0.3, style=filled, fillcolor=white];', "edge [arrowhead=none];"]
    for start, stop in zip(history.node_offsets[:-1], history.node_offsets[1:]):
        lines.append("{rank=same; " + " ".join(f"n{i};" for i in range(start, stop)) + "}")
    for s, d, width, colour in zip(frame.src, frame.dst, frame.width, colours):
        lines.append(f'n{s} -> n{d} [penwidth={0.3 + 4.7 * width:.2f}, color="{colour}"];')
    lines.append("}")
    return "\n".join(lines)


def classic_side(run: Path, out: Path) -> tuple[float, float, int]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    from epochscope.network import NetworkHistory
    from epochscope.run import open_run

    t0, c0 = time.perf_counter(), cpu_seconds()
    r = open_run(run)
    history = NetworkHistory.from_run(r)
    rows = r.metrics
    epochs = [m["epoch"] for m in rows]
    acc = [m.get("accuracy", np.nan) for m in rows]
    fig, (ax_curve, ax_img) = plt.subplots(1, 2, figsize=(12, 5), dpi=100, gridspec_kw={"width_ratios": [1, 2.5]})
    ax_curve.plot(epochs, acc)
    (marker,) = ax_curve.plot([], [], "o", color="red")

    def update(i):
        png = subprocess.run(["dot", "-Tpng"], input=dot_source(history, i).encode(), capture_output=True,
                             check=True).stdout
        ax_img.clear()
        ax_img.imshow(plt.imread(io.BytesIO(png)))
        ax_img.set_axis_off()
        ax_img.set_title(f"epoch {history.epochs[i]}")
        marker.set_data([epochs[i]], [acc[i]])
        return [ax_img, marker]

    anim = FuncAnimation(fig, update, frames=len(history), blit=False)
    anim.save(out, writer=PillowWriter(fps=10))
    plt.close(fig)
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    from PIL import Image

    return elapsed, cpu, Image.open(out).n_frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100, help="snapshots of the synthetic run (default: 100)")
    parser.add_argument("--run", default=None, help="time this recorded run instead of a synthetic one")
    parser.add_argument("--out", default=None, help="also write the table to this markdown file")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-network-"))
    try:
        run = Path(args.run) if args.run else synthetic_run(work / "run", args.frames)
        # warm-up: imports and matplotlib's font cache, outside the timings
        epochscope_side(synthetic_run(work / "warm", 3), work / "warm.gif")
        rows = []
        ours, ours_cpu, n = epochscope_side(run, work / "ours.gif")
        adaptive, adaptive_cpu, n2 = epochscope_side(run, work / "ours-adaptive.gif", shared_palette=False)
        classic = classic_cpu = None
        if shutil.which("dot"):
            classic, classic_cpu, n3 = classic_side(run, work / "classic.gif")
            rows.append(["classic: dot -Tpng per frame + imshow + FuncAnimation/PillowWriter", n3,
                         1000 * classic / n3, 1000 * classic_cpu / n3, "1.0x", "1.0x"])
        else:
            print("note: Graphviz 'dot' is not on PATH (apt-get install graphviz); the classic side is skipped")
        for label, t, cpu, frames in (
                ("epochscope drawing + draw.animate.write_animation (median-cut palette per frame)",
                 adaptive, adaptive_cpu, n2),
                ("epochscope network_animation (blitted LineCollection, shared GIF palette)", ours, ours_cpu, n)):
            wall_ratio = f"{(classic / n3) / (t / frames):.1f}x" if classic else "n/a"
            cpu_ratio = f"{(classic_cpu / n3) / (cpu / frames):.1f}x" if classic else "n/a"
            rows.append([label, frames, 1000 * t / frames, 1000 * cpu / frames, wall_ratio, cpu_ratio])
        sizes = "-".join(map(str, SIZES)) if not args.run else args.run
        text = (f"Network animation, {sizes}, {n} snapshots, 1200x500 px GIF, end to end "
                f"(read weights, draw, write); CPU = this process + dot subprocesses:\n\n"
                + table(["pipeline", "frames", "wall ms / frame", "CPU ms / frame", "speed-up (wall)",
                         "speed-up (CPU)"], rows))
        print(text)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(text + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
