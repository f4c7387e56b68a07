"""``jaqmoo timeloop check DIR [--search]``: hold the cost model against a Timeloop run.

Without ``--search`` the folder's mapping (``*.map.yaml``, else the input's ``mapping:``,
else ``*.map.txt``) is evaluated and every per-level/tensor access count, the energies and
the cycles are printed beside Timeloop's; the exit status is 1 on any mismatch (accesses
must be equal, energy within ``--tolerance``, cycles equal).

The folder may be a Timeloop v0.4 run or a scenario of the Klhufek et al. mixed-precision
fork (``version: 0.3`` architecture, ``arch/`` with compound components, constraints,
``prob.yaml`` with ``commonBitwidth`` / ``bitwidths``); the stats file's dialect picks the
counting convention (see :mod:`jaqmoo.timeloop.check`).

With ``--search`` our mapper searches the same constrained mapspace instead (``--budget``
factor splits sampled, then local search); the exit status is 1 if its best mapping is worse
than Timeloop's mapping, re-costed by our model, by more than ``--search-tolerance`` (the
stats print EDP to three significant figures).
"""

from __future__ import annotations

import argparse
import importlib

from jaqmoo.errors import JaqmooError

SEARCH_BUDGET = 5000
"""Factor splits ``check --search`` samples: enough to meet or beat the fork mapper's best EDP
on every shared reference run (its random search evaluated far more mappings)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("timeloop", help="validate the cost model against Timeloop outputs")
    sub = parser.add_subparsers(dest="timeloop_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="compare our model with a Timeloop reference folder",
                           description="Evaluate a Timeloop run's mapping with jaqmoo's cost model and print every "
                                       "per-level access count, energy and cycle count beside Timeloop's "
                                       "*.stats.txt (exit 1 on a mismatch); with --search, search the same "
                                       "constrained mapspace with jaqmoo's mapper instead.")
    check.add_argument("folder", help="folder with a Timeloop input, its ERT/ART, the mapping and *.stats.txt")
    check.add_argument("--search", action="store_true",
                       help="run our mapper on the folder's constrained mapspace instead of its mapping")
    check.add_argument("--metric", default="energy", choices=("energy", "edp", "cycles"),
                       help="mapper objective with --search (default: energy)")
    check.add_argument("--tolerance", type=float, default=0.01,
                       help="relative energy tolerance (default 0.01 = 1%%)")
    check.add_argument("--budget", type=int, default=SEARCH_BUDGET,
                       help=f"with --search: factor splits the mapper samples before its local search "
                            f"(default {SEARCH_BUDGET}; the in-loop mapper of a joint search uses fewer)")
    check.add_argument("--search-tolerance", type=float, default=0.005,
                       help="with --search: how much worse than Timeloop's mapping still passes (default 0.005)")
    check.set_defaults(func=run_check)


def print_export(out_dir, layers) -> None:
    """What ``--timeloop DIR`` wrote: the folders, the layers that do not fit at the written bits."""
    print(f"wrote {out_dir}: {len(layers)} layer folders ({layers[0].folder.name} ...) with Timeloop inputs and "
          f"jaqmoo's stats; {out_dir}/README.md says how to run timeloop-model and `jaqmoo timeloop check`")
    unfit = [lx.layer.name for lx in layers if not lx.feasible]
    if unfit:
        print(f"  warning: at the written bits these layers' mappings overflow a buffer, Timeloop will reject them: "
              f"{', '.join(unfit)} (use --dialect fork to keep the point's bits)")


def run_check(args: argparse.Namespace) -> int:
    from jaqmoo.timeloop.check import check_reference, load_reference

    if args.tolerance < 0 or args.search_tolerance < 0:
        raise JaqmooError("--tolerance and --search-tolerance must be >= 0")
    if args.budget < 1:
        raise JaqmooError(f"--budget must be a positive integer (got {args.budget})")
    if not args.search:
        report = check_reference(args.folder, rel_tol=args.tolerance)
        print(report.text())
        return 0 if report.ok else 1
    return _run_search(args, load_reference)


def _run_search(args: argparse.Namespace, load_reference) -> int:
    try:
        mapper = importlib.import_module("jaqmoo.mapping.mapper")
    except ModuleNotFoundError as exc:
        if exc.name == "jaqmoo.mapping.mapper":
            raise JaqmooError("--search needs the mapper (jaqmoo.mapping.mapper), which is not "
                              "installed in this build; run without --search to check the model") from exc
        raise
    from jaqmoo.mapping.model import evaluate

    tl, reference_mapping, stats = load_reference(args.folder)
    ours = mapper.Mapper(metric=args.metric, budget=args.budget).best(tl.problem, tl.accelerator, tl.bits)
    ref_costs = evaluate(tl.problem, tl.accelerator, reference_mapping, tl.bits)
    ref_value = float(mapper.metric_values(ref_costs, args.metric)[0])
    print(f"reference: {args.folder}")
    print(f"layer:     {tl.problem}")
    print(f"timeloop best: {stats.energy_pj / 1e6:.4f} uJ, {stats.cycles} cycles, "
          f"{stats.utilization:.2%} utilization")
    print(f"our best ({args.metric}): {ours.energy / 1e6:.4f} uJ, {ours.cycles} cycles, "
          f"{ours.utilization:.2%} utilization, {ours.evaluated} mappings evaluated")
    print(f"  mapping: {ours.description}")
    ratio = ours.value / ref_value if ref_value > 0 else float("nan")
    better = ours.value <= ref_value * (1 + args.search_tolerance)
    print(f"{'PASS' if better else 'FAIL'}: our {args.metric} {ours.value:.6g} vs timeloop's mapping "
          f"{ref_value:.6g} (as costed by our model), ratio {ratio:.4f} "
          f"(tolerance {args.search_tolerance:g})")
    return 0 if better else 1
