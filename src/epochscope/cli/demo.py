"""``epochscope demo``: train the example model on an embedded dataset, record it and draw it."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from ..datasets import DATASETS

    p = sub.add_parser(
        "demo", help="train an example model on an embedded dataset and draw how it learns",
        description="Train the classic MNIST CNN on 5,000 embedded digits (or the Iris MLP with --dataset iris, "
                    "or fine-tune a tiny BERT on 3,000 shipped reviews with --dataset text), record it every epoch "
                    "into OUT/run and write the pictures into OUT.",
    )
    p.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    p.add_argument("--dataset", default="mnist-5k", choices=DATASETS, help="dataset (default: mnist-5k)")
    p.add_argument("--data-path", default=None, help="path of mnist.npz for --dataset mnist")
    p.add_argument("--download", action="store_true", help="download MNIST if --dataset mnist has no file")
    p.add_argument("--epochs", type=int, default=None, help="epochs to train (default: 10, iris 100, text 6)")
    p.add_argument("--probe-size", type=int, default=2000, help="probe examples recorded each epoch (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--no-pictures", action="store_true", help="only train and record the run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    run_demo(out=args.out, dataset=args.dataset, epochs=args.epochs, probe_size=args.probe_size, seed=args.seed,
             device=args.device, data_path=args.data_path, download=args.download,
             pictures=not args.no_pictures, show_progress=not args.quiet)
    return 0
