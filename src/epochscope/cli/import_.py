"""``epochscope import chainer|checkpoints ...``: write a run from snapshots that another tool saved."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import", help="write a run from Chainer results or PyTorch checkpoints",
        description="Write an epochscope run (weights and metrics per epoch) from snapshots saved by another tool, "
                    "so 'epochscope network' can draw training that already ran.",
    )
    kinds = p.add_subparsers(dest="source", metavar="SOURCE")
    kinds.required = True
    c = kinds.add_parser("chainer", help="a Chainer trainer result directory (read without Chainer)",
                         description="Read the snapshots (numpy zip files) and the JSON 'log' of a Chainer trainer.")
    c.add_argument("result_dir", help="the trainer's out folder")
    c.add_argument("--out", required=True, help="new run directory")
    c.set_defaults(func=run_chainer)
    k = kinds.add_parser("checkpoints", help="a folder of per-epoch PyTorch state_dict checkpoints",
                         description="Read .pt/.pth/.ckpt files with torch.load(weights_only=True), ordered by the "
                                     "epoch number in their names.")
    k.add_argument("folder", help="folder of checkpoint files")
    k.add_argument("--out", required=True, help="new run directory")
    k.add_argument("--metrics", default=None,
                   help="CSV or JSON of per-epoch metrics with an 'epoch' column, or a TensorBoard log folder "
                        "(default: event files beside the checkpoints, as Lightning writes them)")
    k.set_defaults(func=run_checkpoints)


def run_chainer(args: argparse.Namespace) -> int:
    from ..importers.chainer import import_chainer
    from . import echo

    echo(import_chainer(args.result_dir, args.out, progress=not args.quiet))
    return 0


def run_checkpoints(args: argparse.Namespace) -> int:
    from ..importers.checkpoints import import_checkpoints
    from . import echo

    echo(import_checkpoints(args.folder, args.out, metrics=args.metrics, progress=not args.quiet))
    return 0
