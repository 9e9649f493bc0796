"""``epochscope info RUN``: print what a run holds."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="print what a run holds",
                       description="Print a run's layers, epochs, probe and test sets, weights and last metrics.")
    p.add_argument("run", help="run directory")
    p.add_argument("--json", action="store_true", help="print the manifest and epoch list as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._errors import stops_on_damage
    from ..run import open_run
    from ..run.summary import describe
    from . import echo

    # a damaged manifest or metrics file names `epochscope check`, as every other command does
    with stops_on_damage(args.run, "the run's summary is not printed"):
        r = open_run(args.run)
        text = json.dumps({**r.manifest.to_json(), "epochs": r.epochs}, indent=2) if args.json else describe(r)
    if args.json:
        print(text)
    else:
        echo(text)
    return 0
