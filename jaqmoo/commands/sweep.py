"""CLI: ``jaqmoo sweep SPEC [--out DIR] [--workers N] [--scheduler ADDR] [--resume] [--dry-run]``."""

from __future__ import annotations

import argparse

from jaqmoo.commands import add_quiet_option, add_threads_option, resolve_threads

SUMMARY_COLUMNS = ("run", "status", "hypervolume", "front_size", "best_energy_pj", "energy_ratio_vs_8bit",
                   "wall_seconds", "technology_nm")


def _sweep(args: argparse.Namespace) -> int:
    import pandas as pd

    from jaqmoo.errors import JaqmooError
    from jaqmoo.sweep import load_sweep, load_sweep_spec, run_sweep
    from jaqmoo.sweep.cost_sweep import load_cost_sweep

    cost_plan = load_cost_sweep(args.spec, out_dir=args.out)
    if cost_plan is not None:
        return _cost_sweep(cost_plan, args)
    plan = load_sweep_spec(args.spec, out_dir=args.out)
    if args.dry_run:
        print(plan.describe())
        print(f"output folder: {plan.output_dir}")
        return 0
    if args.workers < 1:
        raise JaqmooError(f"--workers must be >= 1 (got {args.workers})")
    outcome = run_sweep(plan, workers=args.workers, scheduler=args.scheduler, resume=args.resume,
                        threads=resolve_threads(args.threads, args.workers), progress=not args.quiet,
                        listen=args.listen, strict=args.strict)
    summary = load_sweep(outcome.dir).summary
    cols = [c for c in ("run", *plan.axes, *SUMMARY_COLUMNS) if c in summary]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary[list(dict.fromkeys(cols))].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if "warning" in summary:
        for run, text in zip(summary["run"], summary["warning"], strict=True):
            if isinstance(text, str) and text:
                print(f"warning: run {run}: {text}")
    print(f"wall time {outcome.wall_seconds:.1f} s; wrote " + ", ".join(str(p) for p in outcome.files))
    if outcome.failed:
        print(f"{len(outcome.failed)} run(s) failed: {', '.join(outcome.failed)} (errors in summary.csv); "
              "fix the cause and re-launch with --resume to run only those")
        return 1
    return 0


def _cost_sweep(plan, args: argparse.Namespace) -> int:
    """A cost-only sweep (``cost:`` instead of ``base:``): :mod:`jaqmoo.sweep.cost_sweep`."""
    import time

    import pandas as pd

    from jaqmoo.sweep.cost_sweep import run_cost_sweep

    print(plan.describe())
    if args.dry_run:
        print(f"output folder: {plan.output_dir}")
        return 0
    t0 = time.perf_counter()
    summary, files = run_cost_sweep(plan, workers=args.workers, threads=resolve_threads(args.threads, args.workers))
    cols = [c for c in ("model", "accelerator", "bits", "status", "layers", "macs", "energy_uj", "cycles", "latency_s",
                        "seconds") if c in summary]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    failed = summary[summary["status"] != "done"]
    for _, row in failed.iterrows():
        print(f"failed: {row['model']} on {row['accelerator']} at {row['bits']} bits: {row.get('error')}")
    print(f"wall time {time.perf_counter() - t0:.1f} s; wrote " + ", ".join(str(p) for p in files))
    return 1 if len(failed) else 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` sub-command."""
    p = sub.add_parser(
        "sweep", help="run a sweep of experiments (models x accelerators x settings x seeds)",
        description="Expand a sweep spec (base experiment + axes) into runs and execute them on a local "
                    "process pool or a Dask cluster; each run is an ordinary `jaqmoo run` folder under "
                    "OUT/runs/, with OUT/summary.csv, OUT/fronts.csv and OUT/grid.png combining them.")
    p.add_argument("spec", help="sweep spec YAML, e.g. problems/sweep-quick.yaml (or a cost-only sweep with a "
                                "cost: section, e.g. problems/zoo-cost.yaml)")
    p.add_argument("--out", help="sweep folder (default: the spec's output.dir or runs/<name>)")
    p.add_argument("--workers", type=int, default=2,
                   help="local pool processes (or LocalCluster workers with --scheduler local); default 2")
    p.add_argument("--scheduler", help="Dask scheduler address tcp://host:port of an existing cluster, "
                                       "or 'local' to start a Dask LocalCluster with --workers workers")
    p.add_argument("--listen", default="127.0.0.1", metavar="HOST",
                   help="interface the --scheduler local cluster's scheduler, workers and dashboard bind to "
                        "(default 127.0.0.1: this machine only; 0.0.0.0 opens them to the network, and anyone "
                        "reaching the scheduler port can run code as you: see docs/scale-out.md)")
    p.add_argument("--resume", action="store_true",
                   help="finish a sweep in --out: finished runs are skipped, failed and missing ones run")
    p.add_argument("--dry-run", action="store_true", help="print the runs the sweep would make and exit")
    p.add_argument("--strict", action="store_true",
                   help="a run whose supernet's uniform 8-bit accuracy is within 0.10 of chance or more than 0.05 "
                        "below the float network's fails with that error (as `jaqmoo run --strict`) instead of "
                        "warning; the sweep then exits 1")
    add_threads_option(p)
    add_quiet_option(p)
    p.set_defaults(func=_sweep)
