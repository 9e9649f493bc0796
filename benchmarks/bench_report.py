"""Benchmark: the HTML report at 20,000 points x 50 epochs - file size and playback rate.

Builds a synthetic run with RunWriter (20,000 MNIST digits as probe inputs, predictions,
metrics, a 784-64-10 dense chain's weights) and synthetic smooth maps (no UMAP needed),
writes the report, then opens it in headless Chromium and counts the page's own
requestAnimationFrame-driven frames over a few seconds of playback.

Run from the repository root::

    .venv/bin/python benchmarks/bench_report.py --out benchmarks/results/report.md

Also prints how the coordinates would weigh in other encodings (float32 JSON text, raw
uint16 base64) next to the one used (uint16, per-epoch delta, byte-shuffled, deflated,
base64), from the same arrays in the same run.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _common import load_mnist, table

TARGET_MB = 25.0
TARGET_FPS = 30.0


class SyntheticMaps:
    """Clusters forming over the epochs with a little per-epoch drift, like a real chained map."""

    def __init__(self, labels: np.ndarray, n_epochs: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        n_classes = int(labels.max()) + 1
        angle = 2 * np.pi * np.arange(n_classes) / n_classes
        centres = np.stack([np.cos(angle), np.sin(angle)], axis=1) * 8
        start = rng.normal(size=(len(labels), 2)) * 4
        spread = rng.normal(size=(len(labels), 2))
        drift = np.cumsum(rng.normal(size=(n_epochs, len(labels), 2)) * 0.05, axis=0)
        t = (np.arange(n_epochs) / max(n_epochs - 1, 1))[:, None, None]
        self.coords = ((1 - t) * start + t * (centres[labels] + spread) + drift).astype(np.float32)
        self.epochs = list(range(n_epochs))
        self.test_coords = None
        lo, hi = self.coords.min(axis=(0, 1)), self.coords.max(axis=(0, 1))
        self.bounds = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
        self.quality = {"trustworthiness": np.linspace(0.8, 0.95, n_epochs), "motion": np.r_[np.nan, np.full(n_epochs - 1, 0.1)],
                        "knn_accuracy_map": np.linspace(0.2, 0.97, n_epochs),
                        "knn_accuracy_layer": np.linspace(0.3, 0.99, n_epochs),
                        "cka_previous": np.r_[np.nan, np.linspace(0.6, 0.99, n_epochs - 1)]}
        self.skipped = {}


def make_run(path: Path, n_points: int, n_epochs: int, seed: int = 0):
    from epochscope import open_run
    from epochscope.run import RunWriter

    data = load_mnist()
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(data.x_train), size=n_points, replace=len(data.x_train) < n_points)
    x, y = data.x_train[idx], np.asarray(data.y_train[idx])
    w1, w2 = rng.normal(size=(64, 784)) * 0.05, rng.normal(size=(10, 64)) * 0.2
    with RunWriter.open(path, framework="synthetic", labels=y, class_names=data.class_names, probe_inputs=x) as w:
        w.declare_layer("hidden", (2,), 2, None)
        for epoch in range(n_epochs):
            with w.epoch(epoch) as ep:
                ep.set_activations("hidden", np.zeros((n_points, 2), np.float16))
                acc = 0.2 + 0.78 * epoch / max(n_epochs - 1, 1)
                ep.set_predictions(np.where(rng.random(n_points) < acc, y, rng.integers(0, 10, n_points)))
                ep.set_weights({"fc1.weight": w1 * (1 + 0.02 * epoch), "fc2.weight": w2 * (1 + 0.01 * epoch)})
                ep.set_metrics({"loss": 2.3 / (epoch + 1), "accuracy": acc, "val_loss": 2.4 / (epoch + 1),
                                "val_accuracy": acc * 0.97})
    return open_run(path), y


def part_sizes(page: str) -> dict[str, int]:
    data = json.loads(page.split('id="epochscope-data">', 1)[1].split("</script>", 1)[0])
    probe = data["probe"]
    sizes = {k: len(probe[k]["b64"]) for k in ("coords", "predictions", "labels", "index", "forgetting")}
    sizes["thumbnails"] = len(data["thumbnails"]["uri"]) if data["thumbnails"] else 0
    sizes["confusion"] = len(data["confusion"]["b64"])
    net = data["network"]
    sizes["network"] = sum(len(net[k]["b64"]) for k in ("src", "dst", "width", "change")) if net.get("available") else 0
    return sizes


def playback(path: Path, seconds: float, warmup: float) -> dict[str, float]:
    from epochscope.html.headless import chromium_context, unavailable_reason

    reason = unavailable_reason()
    if reason:
        print(f"playback not measured: {reason}")
        return {}
    with chromium_context() as ctx:
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        t0 = time.perf_counter()
        page.goto(path.resolve().as_uri())
        page.evaluate("window.epochscope.ready")
        load_s = time.perf_counter() - t0
        draw_ms = page.evaluate("window.epochscope.drawTime(30)")
        page.evaluate("window.epochscope.setSpeed(2); window.epochscope.setLoop(true); window.epochscope.play()")
        page.wait_for_timeout(warmup * 1000)
        f0, p0, t0 = page.evaluate("[window.epochscope.frames(), window.epochscope.position(), performance.now()]")
        page.wait_for_timeout(seconds * 1000)
        f1, p1, t1 = page.evaluate("[window.epochscope.frames(), window.epochscope.position(), performance.now()]")
        page_fps = page.evaluate("window.epochscope.fps()")
        if errors:
            raise RuntimeError(f"page errors: {errors}")
    return {"load_s": load_s, "fps": (f1 - f0) * 1000 / (t1 - t0), "page_fps": page_fps, "draw_ms": draw_ms,
            "epochs_played": (p1 - p0) % 49}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=20_000)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=4.0, help="playback measured over this long")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--keep", default=None, help="write the report here too (to look at it)")
    ap.add_argument("--out", default=None, help="also write the markdown table to this file")
    args = ap.parse_args()

    from epochscope.html.encode import pack_array, quantise_coords
    from epochscope.html.network import network_payload
    from epochscope.html.page import render_page
    from epochscope.html.payload import build_payload

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        run, labels = make_run(tmp / "run", args.points, args.epochs)
        make_s = time.perf_counter() - t0
        maps = SyntheticMaps(labels, args.epochs)
        t0 = time.perf_counter()
        payload = build_payload(run, maps, layer="hidden", method="synthetic",
                                network=network_payload(run, maps.epochs))
        page = render_page(payload, test_hook=True)  # playback is measured through window.epochscope
        build_s = time.perf_counter() - t0
        path = tmp / "report.html"
        path.write_text(page, encoding="utf-8")
        if args.keep:
            Path(args.keep).write_text(page, encoding="utf-8")
        size = path.stat().st_size
        parts = part_sizes(page)
        q = quantise_coords(maps.coords, maps.bounds)
        enc = {
            "float32 as JSON text": len(json.dumps(np.round(maps.coords, 4).tolist(), separators=(",", ":"))),
            "uint16, base64": len(base64.b64encode(q.tobytes())),
            "uint16, shuffle + deflate, base64": len(pack_array(q)["b64"]),
            "uint16, delta + shuffle + deflate, base64 (used)": len(pack_array(q, delta_axis0=True)["b64"]),
        }
        play = playback(path, args.seconds, args.warmup)

    cells = args.points * args.epochs / 1000
    state = parts["coords"] + parts["predictions"]
    rows = [
        ["file size", f"{size / 1e6:.2f} MB", f"< {TARGET_MB:.0f} MB", "met" if size / 1e6 < TARGET_MB else "NOT met"],
        ["per-epoch state (positions + predictions) per 1,000 points per epoch", f"{state / cells / 1e3:.2f} KB", "", ""],
        ["thumbnails (PNG sprite, base64)", f"{parts['thumbnails'] / 1e6:.2f} MB", "", ""],
    ]
    if play:
        rows += [
            [f"playback, frames per second (rAF counter, {args.seconds:.0f} s)", f"{play['fps']:.1f}",
             f">= {TARGET_FPS:.0f}", "met" if play["fps"] >= TARGET_FPS else "NOT met"],
            ["one map frame drawn (20k points, interpolated)", f"{play['draw_ms']:.1f} ms", "", ""],
            ["page load to ready (decode + first draw)", f"{play['load_s']:.2f} s", "", ""],
        ]
    rows += [["writing the report (payload + page)", f"{build_s:.1f} s", "", ""]]
    lines = [f"Report benchmark: {args.points:,} points x {args.epochs} epochs (synthetic run made in {make_s:.0f} s)", "",
             table(["measure", "value", "target", ""], rows), "",
             "Parts of the page (base64 characters): " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in parts.items()), "",
             table(["coordinates encoded as", "size", "ratio to used"],
                   [[k, f"{v / 1e6:.2f} MB", f"{v / enc['uint16, delta + shuffle + deflate, base64 (used)']:.2f}x"]
                    for k, v in enc.items()])]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
