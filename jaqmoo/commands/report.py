"""CLI: ``jaqmoo report RUN_DIR|SWEEP_DIR [--out report.html] [--open]``."""

from __future__ import annotations

import argparse


def _report(args: argparse.Namespace) -> int:
    from jaqmoo.reporting.html import write_report

    path = write_report(args.target, args.out, max_points=args.max_points, recompute=not args.no_recompute)
    print(f"wrote {path}")
    if args.open:
        import webbrowser

        uri = path.resolve().as_uri()
        try:
            opened = webbrowser.open(uri)
        except webbrowser.Error:
            opened = False
        if not opened:
            print(f"no web browser found here; open this file in one: {uri}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``report`` sub-command."""
    from jaqmoo.reporting.payload import MAX_POINTS

    p = sub.add_parser("report", help="write an interactive, self-contained HTML report of a run or a sweep",
                       description="Write one offline HTML file (plotly embedded, no server): the front in every "
                                   "2-D projection and in 3-D, per-point bits / energy / mappings / hardware, "
                                   "hypervolume per generation, the front table with a CSV download; for a sweep "
                                   "folder, one panel per run.")
    p.add_argument("target", help="run folder (`jaqmoo run --out`) or sweep folder (`jaqmoo sweep --out`)")
    p.add_argument("--out", help="HTML file to write (default: TARGET/report.html)")
    p.add_argument("--open", action="store_true", help="open the report in the default web browser")
    p.add_argument("--max-points", type=int, default=MAX_POINTS,
                   help=f"at most this many points per run in the plots; beyond it dominated points are "
                        f"sampled and the page says so (default {MAX_POINTS})")
    p.add_argument("--no-recompute", action="store_true",
                   help="do not recompute the front points' per-layer energy with the cost model "
                        "(show only what the run folder stores)")
    p.set_defaults(func=_report)
