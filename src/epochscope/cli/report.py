"""``epochscope report RUN --out report.html``: write the interactive, self-contained HTML report."""

from __future__ import annotations

import argparse

from ..maps.methods import METHOD_NAMES
from .embed import NEIGHBORS_HELP


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="write one self-contained HTML file to scrub through training",
        description="Write an offline HTML page with the layer's 2-D map over the epochs (play, slider, zoom, "
                    "hover with input thumbnails, class toggles), the accuracy/loss and map-quality curves with a "
                    "linked time cursor, the confusion matrix and the network of the current epoch. "
                    "Maps are computed (or read from the run's cache) with the chosen method.")
    p.add_argument("run", nargs="+", help="run directory; two or more runs with the same probe are shown side by side "
                                          "(epoch cursors linked, maps aligned to the first run's, curves overlaid)")
    p.add_argument("--out", default="report.html", help="HTML file to write (default: report.html)")
    p.add_argument("--layer", default=None, help="recorded layer to map (default: the run's first layer)")
    p.add_argument("--method", default="umap", choices=METHOD_NAMES, help="map method (default: umap)")
    p.add_argument("--max-points", type=int, default=None,
                   help="show at most this many probe (and test) points, a fixed random subset (default: all)")
    p.add_argument("--n-neighbors", type=int, default=None, help=NEIGHBORS_HELP)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..pipeline import report

    options = {} if args.n_neighbors is None else {"n_neighbors": args.n_neighbors}
    runs = args.run[0] if len(args.run) == 1 else list(args.run)
    path = report(runs, args.out, layer=args.layer, method=args.method, max_points=args.max_points,
                  progress=not args.quiet, **options)
    size = path.stat().st_size
    print(f"report written to {path} ({size / 1e6:.1f} MB); open it in a browser, no server needed")
    return 0
