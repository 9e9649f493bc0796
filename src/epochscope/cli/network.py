"""``epochscope network RUN --out network.gif``: animate the network's weights over training."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "network", help="animate the network: edges thicken, thin and change colour as the weights learn",
        description="Draw one node per neuron and one edge per weight for every recorded epoch, next to the "
                    "accuracy curve: width grows with |w|, colour shows how |w| changed (red grew, blue shrank).",
    )
    p.add_argument("run", help="run directory (recorded with weights, or written by 'epochscope import')")
    p.add_argument("--out", default="network.gif", help="output .gif or .mp4 (default: network.gif)")
    p.add_argument("--reference", choices=("previous", "initial"), default="previous",
                   help="colour the change since the previous frame or since the first epoch (default: previous)")
    p.add_argument("--top-k", type=int, default=None, metavar="N",
                   help="draw exactly N edges per layer (default: all, or 150 when a layer is wider than 16)")
    p.add_argument("--top-by", choices=("weight", "change"), default="weight",
                   help="rank edges for --top-k by |w| or by the size of the change (default: weight)")
    p.add_argument("--shape", type=int, nargs="+", default=None, metavar="N",
                   help="expected layer sizes, e.g. --shape 4 5 5 5 3 (an error names a layer that differs)")
    p.add_argument("--layers", nargs="+", default=None, metavar="NAME", help="weight layers to chain, in order")
    p.add_argument("--figsize", type=float, nargs=2, default=(12.0, 5.0), metavar=("W", "H"),
                   help="figure size in inches at 100 px an inch, from 6 3 to 40 25 (default: 12 5)")
    p.add_argument("--duration", type=float, default=None, metavar="MS",
                   help="milliseconds per epoch (default: 500, as the time-lapse)")
    p.add_argument("--fps", type=float, default=None, help="frames per second instead of --duration")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..draw.network import network_animation

    path = network_animation(args.run, args.out, reference=args.reference, top_k=args.top_k, top_by=args.top_by,
                             shape=args.shape, figsize=tuple(args.figsize), fps=args.fps, duration_ms=args.duration,
                             layers=args.layers, progress=not args.quiet)
    if not args.quiet:
        print(path)
    return 0
