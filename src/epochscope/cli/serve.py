"""``epochscope serve LOGDIR``: a local live view of every run under a folder, updating as training writes."""

from __future__ import annotations

import argparse
import signal
import sys

from ..maps.methods import METHOD_NAMES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="watch every run under a folder learn, live, in the browser",
        description="Serve a local page listing every run under LOGDIR, with each run's report viewer (map with hover, "
                    "curves, confusion matrix, network) that takes in new epochs by itself while training writes them, "
                    "and runs with the same probe side by side. Maps are computed in the background, one run at a "
                    "time, and cached in each run. Ctrl-C stops it.",
        epilog="exit status: 0 stopped by Ctrl-C, 1 the environment failed (the port is taken, a missing optional "
               "package), 2 a mistake in what was given (an option or value, a LOGDIR that does not exist)")
    p.add_argument("logdir", help="the folder that holds the runs (searched 4 levels deep; links are not followed)")
    p.add_argument("--port", type=int, default=8787, help="port to listen on (default: 8787; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only). Another address shows your runs "
                        "to anyone who can reach it, with no password: a warning says so")
    p.add_argument("--layer", default=None, help="recorded layer to map in every run (default: each run's first layer)")
    p.add_argument("--method", default="umap", choices=METHOD_NAMES, help="map method (default: umap)")
    p.add_argument("--max-points", type=int, default=None,
                   help="show at most this many probe (and test) points per run, a fixed random subset (default: all)")
    p.add_argument("--test-hook", action="store_true", help=argparse.SUPPRESS)  # window.epochscope, for browser tests
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..serve import is_loopback, serve
    from . import echo

    if args.max_points is not None and args.max_points < 1:
        raise ValueError(f"--max-points must be a positive whole number, got {args.max_points}")
    if not is_loopback(args.host):
        echo(f"epochscope serve: WARNING: listening on {args.host}: anyone who can reach this address can see every "
             "run under LOGDIR (names, inputs, maps); there is no password. Use --host 127.0.0.1 (the default) to keep "
             "it on this machine.", err=True)

    def ready(server) -> None:
        where = (" (listening on every interface: from another machine use this one's name or address)"
                 if server.every_interface else "")
        echo(f"epochscope serve: {args.logdir} at {server.url}{where} (maps: {args.method}); Ctrl-C stops it")
        sys.stdout.flush()

    # The command says "Ctrl-C stops it": a SIGINT that the launching process ignored is inherited as
    # ignored (Python then installs no handler), and the server could not be stopped that way.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        serve(args.logdir, host=args.host, port=args.port, method=args.method, layer=args.layer,
              max_points=args.max_points, test_hook=args.test_hook, ready=ready)
    except KeyboardInterrupt:
        echo("epochscope serve: stopped")
    return 0
