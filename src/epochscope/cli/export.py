"""``epochscope export tensorboard RUN --out DIR``: a run in another tool's format."""

from __future__ import annotations

import argparse

from .embed import parse_epochs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write a run in another tool's format (TensorBoard)",
        description="Write a run so that another tool opens it: 'tensorboard' writes the embedding projector's "
                    "files and the metrics as scalars.",
    )
    kinds = p.add_subparsers(dest="target", metavar="TARGET")
    kinds.required = True
    t = kinds.add_parser(
        "tensorboard", help="a TensorBoard log directory: projector embeddings and scalars",
        description="Write the embedding projector's files (the layer's recorded outputs, a metadata table with "
                    "labels and predictions, a sprite of the inputs when they are images, projector_config.pbtxt) "
                    "for chosen epochs, and every metric as a scalar. Then: tensorboard --logdir OUT. "
                    "Needs: pip install 'epochscope[tensorboard]'.")
    t.add_argument("run", help="run directory")
    t.add_argument("--out", required=True, help="new or empty folder for the TensorBoard files")
    t.add_argument("--layer", action="append", default=None,
                   help="recorded layer for the projector (repeat for several; default: the run's first layer)")
    t.add_argument("--epochs", default=None,
                   help="epochs for the projector: 'all', '0,5,10', '3-9' or a mix (default: the first and the last)")
    t.add_argument("--no-test", action="store_true", help="leave the test set's points out of the projector")
    t.add_argument("--no-sprite", action="store_true", help="no input thumbnails in the projector")
    t.add_argument("--step", default="auto", choices=("auto", "epoch", "global"),
                   help="the scalars' x axis: the epoch, or the training step recorded with each epoch "
                        "(auto: the step when every epoch has one)")
    t.set_defaults(func=run_tensorboard)


def run_tensorboard(args: argparse.Namespace) -> int:
    from ..integrations.tensorboard import export_tensorboard

    epochs = "all" if args.epochs == "all" else parse_epochs(args.epochs)
    result = export_tensorboard(args.run, args.out, layers=args.layer, epochs=epochs, test=not args.no_test,
                                step=args.step, sprite=not args.no_sprite, progress=not args.quiet)
    print(result.summary())
    return 0
