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
            "Prints what is wrong, file by file, and exactly what --repair would remove or rewrite."
        ),
        epilog="exit status: 0 the run is healthy, 1 problems remain (or the file system refused a repair, or "
               "another process is writing the run), 2 a folder that is not a run or a mistake in the options, "
               "130 interrupted (Ctrl-C)",
    )
    p.add_argument("run", help="run directory")
    p.add_argument(
        "--repair",
        action="store_true",
        help="do what a plain check lists, nothing else: remove a trailing epoch whose own files are missing, "
        "truncated or unreadable, leftovers of killed writers, stale or corrupt caches; write anew, without metrics, "
        "a metrics row that is missing or broken when the rest of its epoch is whole (never remove a good epoch, a "
        "damaged epoch in the middle, a file that only disagrees with the manifest, a link or an unknown file)",
    )
    p.add_argument("--force", action="store_true",
                   help="with --repair: carry out a plan that removes more than half of the run's epochs "
                        "(refused without it, changing nothing)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..checking import check_run
    from . import echo

    if args.force and not args.repair:
        raise ValueError("--force: only means something with --repair (epochscope check RUN --repair --force)")
    report = check_run(args.run, repair=args.repair, force=args.force)
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
            "refused": report.refused,
        }, indent=2))
    else:
        echo(report)
    return 0 if report.ok and not report.refused else 1
