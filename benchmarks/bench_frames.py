"""Frames per second drawing a time-lapse: epochscope's frame renderer against the classic recipe.

Classic (what tutorials do): for every frame a new matplotlib figure, ``scatter`` coloured by
class, a colorbar, ``savefig`` to PNG; then Pillow opens the PNGs and joins them into a GIF.

epochscope: :class:`~epochscope.draw.mapframe.MapFrameRenderer` draws the axes and legend once,
stamps the points into the pixels with numpy and blits the title and caption; frames go to
the GIF (and, in the second row, also to PNG files) straight from memory.

Both sides draw the same 800 x 600 frames of the same map (``--points`` points in 10
classes whose clusters form over ``--frames`` epochs), one after the other in one process,
so the ratio holds even on a busy machine. Wall-clock and CPU seconds are both reported:
on a shared machine the CPU time (``time.process_time``, all threads of this process) is
the steadier of the two. The MP4 is encoded by an ffmpeg subprocess, whose CPU time is
not counted. Prints a markdown table.

    python benchmarks/bench_frames.py                 # 30 frames of 5,000 points
    python benchmarks/bench_frames.py --points 20000 --frames 30
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np


def make_map_sequence(n_points: int, n_frames: int, n_classes: int = 10, seed: int = 0):
    """Coordinates ``(n_frames, n_points, 2)`` whose class clusters form over the frames, and labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n_points)
    angle = 2 * np.pi * np.arange(n_classes) / n_classes
    centres = np.column_stack([np.cos(angle), np.sin(angle)]) * 6
    noise = rng.normal(size=(n_points, 2))
    coords = []
    for i in range(n_frames):
        t = i / max(n_frames - 1, 1)
        coords.append(t * centres[labels] + noise * (3.0 - 2.0 * t))
    return np.stack(coords).astype(np.float32), labels


def classic(coords: np.ndarray, labels: np.ndarray, folder: Path) -> Path:
    """New figure + scatter + colorbar + savefig per frame, then Pillow joins the PNGs into a GIF."""
    import matplotlib.pyplot as plt
    from PIL import Image

    lo, hi = coords.reshape(-1, 2).min(axis=0), coords.reshape(-1, 2).max(axis=0)
    files = []
    for i, xy in enumerate(coords):
        fig, ax = plt.subplots(figsize=(8, 6), dpi=100)
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=5)
        fig.colorbar(sc, ax=ax)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_title(f"Epoch {i}")
        path = folder / f"classic_{i:03d}.png"
        fig.savefig(path)
        plt.close(fig)
        files.append(path)
    images = [Image.open(p) for p in files]
    out = folder / "classic.gif"
    images[0].save(out, save_all=True, append_images=images[1:], duration=500, loop=0)
    return out


def epochscope_frames(coords: np.ndarray, labels: np.ndarray, folder: Path, *, pngs: bool, mp4: bool = False):
    """epochscope's renderer: frames drawn once, then GIF (and PNG files / MP4) from memory."""
    from epochscope.draw.mapframe import MapFrameRenderer
    from epochscope.draw.timelapse import Timelapse

    allc = coords.reshape(-1, 2)
    bounds = (allc[:, 0].min(), allc[:, 0].max(), allc[:, 1].min(), allc[:, 1].max())
    times = {}
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    r = MapFrameRenderer(bounds, labels, [str(c) for c in range(10)], subtitle="layer hidden · benchmark")
    frames = [r.draw(xy, title=f"Epoch {i}", caption="accuracy 0.912 · val accuracy 0.897 · map trustworthiness 0.95")
              for i, xy in enumerate(coords)]
    r.close()
    times["draw"] = time.perf_counter() - t0
    lapse = Timelapse(frames=frames, epochs=list(range(len(frames))))
    if pngs:
        t = time.perf_counter()
        lapse.save_frames(folder / "frames")
        times["png"] = time.perf_counter() - t
    t = time.perf_counter()
    lapse.save(folder / "epochscope.gif")
    times["gif"] = time.perf_counter() - t
    if mp4:
        t = time.perf_counter()
        lapse.save(folder / "epochscope.mp4")
        times["mp4"] = time.perf_counter() - t
    times["total"] = time.perf_counter() - t0
    times["cpu"] = time.process_time() - cpu0
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--keep", default=None, help="folder to keep the outputs in (default: a temporary one)")
    args = parser.parse_args(argv)
    coords, labels = make_map_sequence(args.points, args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        # Warm up both sides (imports, font cache) so neither pays first-use costs in the timing.
        classic(coords[:1], labels, folder)
        epochscope_frames(coords[:1], labels, folder, pngs=True)
        t, cpu = time.perf_counter(), time.process_time()
        classic(coords, labels, folder)
        classic_s, classic_cpu = time.perf_counter() - t, time.process_time() - cpu
        gif_only = epochscope_frames(coords, labels, folder, pngs=False)
        with_png = epochscope_frames(coords, labels, folder, pngs=True, mp4=True)
        without_mp4 = epochscope_frames(coords, labels, folder, pngs=True)
    n = args.frames
    rows = [
        ("classic: new figure + scatter + colorbar + savefig per frame, Pillow joins PNGs", classic_s, classic_cpu),
        ("epochscope: frames -> GIF", gif_only["total"], gif_only["cpu"]),
        ("epochscope: frames -> PNG files + GIF", without_mp4["total"], without_mp4["cpu"]),
        ("epochscope: frames -> PNG files + GIF + MP4", with_png["total"], with_png["cpu"]),
    ]
    print(f"{n} frames of a {args.points:,}-point map, 800 x 600 px (python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})\n")
    print("| pipeline | wall s | frames/s | vs classic | CPU s | CPU frames/s | vs classic (CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, secs, cpu in rows:
        print(f"| {name} | {secs:.2f} | {n / secs:.1f} | {classic_s / secs:.1f}x "
              f"| {cpu:.2f} | {n / cpu:.1f} | {classic_cpu / cpu:.1f}x |")
    print(f"\nepochscope phases (s): drawing {with_png['draw']:.2f} ({1000 * with_png['draw'] / n:.0f} ms/frame), "
          f"PNG files {with_png['png']:.2f}, GIF {with_png['gif']:.2f}, MP4 {with_png['mp4']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
