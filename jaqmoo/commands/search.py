"""CLI: ``jaqmoo run SPEC``, ``jaqmoo export RUN_DIR``, ``jaqmoo plot RUN_DIR``, ``jaqmoo repair RUN_DIR``."""

from __future__ import annotations

import argparse

from jaqmoo.commands import add_quiet_option, add_threads_option, add_timeloop_options, set_threads
from jaqmoo.errors import JaqmooError


def _run(args: argparse.Namespace) -> int:
    from jaqmoo.experiment import run_experiment

    set_threads(args.threads)
    result = run_experiment(args.spec, out=args.out, resume=args.resume, generations=args.generations,
                            population=args.pop, progress=not args.quiet, strict=args.strict)
    print(result.summary())
    return 0


def _export(args: argparse.Namespace) -> int:
    from jaqmoo.reporting.run import load_run
    from jaqmoo.sweep.outputs import export_sweep, is_sweep_dir

    point_files = args.bits_file is not None or args.policy_file is not None or args.timeloop is not None
    if (args.point is None) == point_files:
        raise JaqmooError("--point K goes with --bits-file FILE, --policy-file FILE and/or --timeloop DIR: the files "
                          "of front point K")
    if args.point is not None:
        if is_sweep_dir(args.run_dir):
            raise JaqmooError(f"--point: {args.run_dir} is a sweep folder; give one of its runs, "
                              f"{args.run_dir}/runs/<run>")
        run = load_run(args.run_dir)
        if args.bits_file is not None:
            print(f"wrote {run.export_point(args.point, args.bits_file)}")
        if args.policy_file is not None:
            from jaqmoo.reporting.policy_file import export_point_policy

            print(f"wrote {export_point_policy(run, args.point, args.policy_file)}")
        if args.timeloop is not None:
            from jaqmoo.commands.timeloop import print_export
            from jaqmoo.reporting.timeloop_point import export_point_timeloop

            done = export_point_timeloop(run, args.point, args.timeloop, args.dialect)
            print_export(args.timeloop, done.layers)
            if not done.matches_run:
                print(f"note: the recomputed energy ({done.energy_pj_recomputed:.6g} pJ) differs from the run's "
                      f"stored one ({done.energy_pj_stored:.6g} pJ): the code changed since the run")
        if args.csv is None and args.parquet is None:
            return 0
    if is_sweep_dir(args.run_dir):  # a `jaqmoo sweep` folder: every run's front, axis columns first
        paths = export_sweep(args.run_dir, csv=args.csv, parquet=args.parquet, all=args.all)
    else:
        paths = load_run(args.run_dir).export(csv=args.csv, parquet=args.parquet, all=args.all)
    for path in paths:
        print(f"wrote {path}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from jaqmoo.reporting.run import load_run
    from jaqmoo.sweep.outputs import is_sweep_dir, plot_sweep

    if is_sweep_dir(args.run_dir):  # a `jaqmoo sweep` folder: the grid of fronts
        print(f"wrote {plot_sweep(args.run_dir, args.out)}")
        return 0
    run = load_run(args.run_dir)
    for path in run.plot(args.out):
        print(f"wrote {path}")
    return 0


def _repair(args: argparse.Namespace) -> int:
    from jaqmoo.search.repair import repair_report_json, repair_run

    report = repair_run(args.run_dir)
    print(repair_report_json(report) if args.json else report.summary())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``run``, ``export`` and ``plot`` sub-commands."""
    p = sub.add_parser("run", help="run a joint quantization/mapping/hardware search from a spec",
                       description="Run the experiment described by a spec file (see problems/*.yaml and "
                                   "`jaqmoo spec --example`): validate it, print the accelerator and its energy "
                                   "source, train or load the supernet, check that its accuracy is meaningful, "
                                   "search, then write front.csv/.parquet, evaluations.csv/.parquet, the PNGs "
                                   "and report.html into the run folder (columns: `jaqmoo columns`).")
    p.add_argument("spec", help="experiment spec YAML, e.g. problems/quickstart.yaml")
    p.add_argument("--out", help="run directory (default: the spec's output.dir or runs/<name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in the output directory from its last completed generation")
    p.add_argument("--generations", type=int, metavar="N", help="override search.generations")
    p.add_argument("--pop", type=int, metavar="N", help="override search.population")
    p.add_argument("--strict", action="store_true",
                   help="stop with an error (exit 2) instead of a warning when the supernet's uniform 8-bit accuracy "
                        "is within 0.10 of chance or more than 0.05 below the float network's (accuracies are "
                        "fractions 0-1)")
    add_quiet_option(p)
    add_threads_option(p)
    p.set_defaults(func=_run)

    p = sub.add_parser("export", help="export a run's Pareto front (or every evaluation) as CSV / Parquet",
                       description="Write a run's Pareto front (or, with --all, every evaluated individual) with "
                                   "readable columns (their units and meanings: `jaqmoo columns`); for a sweep "
                                   "folder, every run's front with the run and axis values as first columns.")
    p.add_argument("run_dir", help="run directory written by `jaqmoo run` (or a `jaqmoo sweep` folder)")
    p.add_argument("--csv", help="CSV file to write")
    p.add_argument("--parquet", help="Parquet file to write")
    p.add_argument("--all", action="store_true", help="every evaluated individual, not only the front")
    p.add_argument("--point", type=int, metavar="K",
                   help="with --bits-file, --policy-file or --timeloop: front point K (the point column of front.csv and of the "
                        "report's table)")
    p.add_argument("--bits-file", metavar="FILE",
                   help="write point K's per-layer bits and hardware as a bits file (YAML) that `jaqmoo cost "
                        "--bits-file` and `jaqmoo supernet eval --bits-file` read back; its header names both commands")
    p.add_argument("--policy-file", metavar="FILE",
                   help="write point K's per-layer bits and mappings (Timeloop directives) and hardware as a policy "
                        "file (YAML, README 'Bits and policy files') that `jaqmoo cost --policy-file` costs without a "
                        "mapper search, reproducing the point's energy, cycles and memory")
    add_timeloop_options(p, "with --point: write front point K's layers as Timeloop inputs (architecture, problem, "
                            "constraints, its mapping) with jaqmoo's figures in Timeloop's stats format, one folder "
                            "per layer, and a README.md on running timeloop-model and `jaqmoo timeloop check`")
    p.set_defaults(func=_export)

    p = sub.add_parser("plot", help="plot a run's Pareto front and hypervolume per generation (PNG)",
                       description="Draw front.png (every 2-D projection of the objectives, uniform-bit baselines "
                                   "as stars) and hypervolume.png (per generation, in the run's own "
                                   "normalisation) of a run folder; for a sweep folder, grid.png (one panel per "
                                   "pair of axis values).")
    p.add_argument("run_dir", help="run directory written by `jaqmoo run` (or a `jaqmoo sweep` folder: grid plot)")
    p.add_argument("--out", help="front PNG path (default: RUN_DIR/front.png)")
    p.set_defaults(func=_plot)

    p = sub.add_parser("repair", help="quarantine damaged result lines of a run folder so that it can be resumed",
                       description="Move damaged, torn or duplicate lines of RUN_DIR/evaluations.jsonl to a "
                                   "quarantine file (nothing is deleted), keep every intact record and list the "
                                   "individuals that `jaqmoo run SPEC --out RUN_DIR --resume` will re-evaluate.")
    p.add_argument("run_dir", help="run directory written by `jaqmoo run`")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_repair)
