"""``epochscope embed RUN``: compute (or read back) a layer's 2-D maps and print their quality per epoch."""

from __future__ import annotations

import argparse
import math

from .._text import plural
from ..maps.methods import METHOD_NAMES

#: ``--n-neighbors`` of embed and report: the umap methods' settings (pca and tsne refuse it).
NEIGHBORS_HELP = ("neighbour count of the umap methods (default: 15 for umap and aligned-umap, 40 for "
                  "umap-independent; pca and tsne have none)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embed", help="compute a layer's 2-D maps over the epochs (cached in the run)",
        description="Embed a recorded layer into aligned 2-D maps at every epoch, store them in the run's cache "
                    "and print per-epoch quality: trustworthiness, frame-to-frame motion, class separation "
                    "(silhouette by class) in the map and in the layer, k-NN class accuracy in the map and in "
                    "the layer, and linear CKA to the previous epoch.")
    p.add_argument("run", help="run directory")
    p.add_argument("--layer", default=None, help="recorded layer (default: the run's first layer)")
    p.add_argument("--method", default="umap", choices=METHOD_NAMES,
                   help="umap: every frame a converged UMAP of its epoch held in place by the frame before "
                        "(default); umap-independent: the classic fresh UMAP per epoch; aligned-umap: umap-learn's "
                        "AlignedUMAP (slow); pca: fast, needs no extra; tsne: openTSNE, warm-started (needs "
                        "epochscope[tsne])")
    p.add_argument("--epochs", default=None,
                   help="epochs to embed: '0,5,10', '3-9' or a mix (default: all finished epochs)")
    p.add_argument("--no-cache", action="store_true", help="recompute and do not store the result")
    p.add_argument("--n-neighbors", type=int, default=None, help=NEIGHBORS_HELP)
    p.set_defaults(func=run)


def parse_epochs(text: str | None) -> list[int] | None:
    """``'0,2,5-7'`` -> ``[0, 2, 5, 6, 7]``; ``None`` -> ``None`` (all epochs).

    >>> parse_epochs("0,2,5-7")
    [0, 2, 5, 6, 7]
    """
    if text is None:
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part:
                lo, hi = part.split("-", 1)
                out.extend(range(int(lo), int(hi) + 1))
            else:
                out.append(int(part))
    except ValueError as err:
        raise ValueError(f"--epochs: expected numbers and ranges like '0,2,5-7', got {text!r}") from err
    if not out:
        raise ValueError(f"--epochs: no epoch given in {text!r}")
    return out


def _fmt(value: float) -> str:
    return "     -" if value is None or math.isnan(value) else f"{value:6.3f}"


def quality_table(maps, unit: str = "epoch") -> str:
    """The per-epoch quality of ``maps`` as aligned text columns (``unit="step"``: a run recorded
    inside epochs, whose records are numbered by step).

    ``sep-map`` / ``sep-layer``: class separation (silhouette) of the map's points and of the
    layer's values; a faithful time-lapse shows them rising and falling together.
    """
    q = maps.quality
    nan = [float("nan")] * len(maps.epochs)
    sep, sep_layer = q.get("separation", nan), q.get("separation_layer", nan)
    lines = [f"{unit:<5}  trust  motion  sep-map  sep-layer  knn-map  knn-layer  cka-prev"]
    for i, epoch in enumerate(maps.epochs):
        lines.append(f"{epoch:5d} {_fmt(q['trustworthiness'][i])} {_fmt(q['motion'][i])}  {_fmt(sep[i])}"
                     f"     {_fmt(sep_layer[i])}   {_fmt(q['knn_accuracy_map'][i])}     {_fmt(q['knn_accuracy_layer'][i])}"
                     f"    {_fmt(q['cka_previous'][i])}")
    for epoch, why in sorted(maps.skipped.items()):
        lines.append(f"{epoch:5d}  skipped: {why}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import time

    from ..maps.api import embed_timed
    from . import echo

    options = {}
    if args.n_neighbors is not None:
        options["n_neighbors"] = args.n_neighbors
    t0 = time.perf_counter()
    maps, timings = embed_timed(args.run, args.layer, args.method, epochs=parse_epochs(args.epochs),
                                cache=not args.no_cache, progress=not args.quiet, **options)
    seconds = time.perf_counter() - t0
    source = "read from the cache" if "cached" in timings else f"computed in {seconds:.1f} s"
    echo(f"{maps.method} maps of layer '{maps.layer}': {plural(len(maps.epochs), 'epoch')}, {maps.coords.shape[1]:,} probe"
          + (f" + {maps.test_coords.shape[1]:,} test" if maps.test_coords is not None else "") + f" points, {source}")
    from ..run import open_run

    echo(quality_table(maps, open_run(args.run).manifest.record_unit))
    return 0
