"""``epochscope check RUN [--repair]``: validate a run file by file; repair what is safe to repair."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="check a run for damaged or missing files",
        description=(
            "Check a run: the manifest, every array's shape and dtype, the epoch sequence, metrics and caches. "
            "Prints what is wrong, file by file. Exit status 0 when the run is healthy, 1 when problems remain."
        ),
    )
    p.add_argument("run", help="run directory")
    p.add_argument(
        "--repair",
        action="store_true",
        help="drop a damaged trailing epoch, leftovers of killed writers and stale or partial caches "
        "(never a good epoch, never a damaged epoch in the middle)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..checking import check_run

    report = check_run(args.run, repair=args.repair)
    if args.json:
        print(json.dumps({
            "path": str(report.path),
            "ok": report.ok,
            "epochs": list(report.epochs),
            "writer": report.writer,
            "repaired": report.repaired,
            "findings": [vars(f) for f in report.findings],
            "actions": [vars(a) for a in report.actions],
            "unrepairable": list(report.unrepairable),
        }, indent=2))
    else:
        print(report)
    return 0 if report.ok else 1
