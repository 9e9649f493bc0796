"""``epochscope render RUN --out DIR``: every picture of a run (time-lapse, curves, maps, confusion)."""

from __future__ import annotations

import argparse

from ..maps.methods import METHOD_NAMES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render", help="draw the pictures of a run: time-lapse, curves, train+test map, confusion matrix, ...",
        description="Draw every picture of a run from its run directory alone: samples.png, frames/epoch_NNN.png, "
                    "timelapse.gif/.mp4, curves.png, train_test_map.png, confusion.png, layers_epochs.png "
                    "(several layers), forgetting.png, quality.png and network.gif (with weights). Maps are computed "
                    "once and cached in the run. A run imported from checkpoints gets its curves and network.")
    p.add_argument("run", help="run directory")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--layer", default=None, help="layer whose map is animated (default: the run's first layer)")
    p.add_argument("--method", default="umap", choices=METHOD_NAMES, help="how maps are made (default: umap)")
    p.add_argument("--format", default="gif",
                   help="animation formats, comma-separated: gif, mp4 or gif,mp4 (default: gif)")
    p.add_argument("--epoch", type=int, default=None,
                   help="also draw the confusion matrix at this epoch, as confusion_epoch_N.png (default: none; "
                        "confusion.png is the last epoch's)")
    p.add_argument("--smooth", action="store_true", help="also write an animation that glides between epochs")
    p.add_argument("--test-points", action="store_true",
                   help="lay the test set on every frame (class colours, misclassified crossed)")
    p.add_argument("--no-network", action="store_true", help="do not draw network.gif")
    p.add_argument("--duration", type=float, default=500, help="milliseconds per epoch in animations (default: 500)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..pipeline import render

    paths = render(args.run, args.out, layer=args.layer, method=args.method, formats=args.format, epoch=args.epoch,
                   progress=not args.quiet, smooth=args.smooth, test_points=args.test_points,
                   duration_ms=args.duration, network=not args.no_network)
    if not args.quiet:
        frames = [p for p in paths if p.parent.name == "frames"]
        for p in paths:
            if p not in frames:
                print(p)
        if frames:
            print(f"{frames[0].parent}/ ({len(frames)} frame{'' if len(frames) == 1 else 's'})")
    return 0
