"""Batch sweeps: a base experiment x axes (model, accelerator, any spec key, seed) -> named
runs, executed on a local process pool or a Dask cluster, resumable, with combined outputs.

Python API::

    from jaqmoo.sweep import load_sweep_spec, run_sweep, load_sweep
    plan = load_sweep_spec("problems/sweep-quick.yaml", out_dir="runs/sq")
    print(plan.describe())                      # what --dry-run prints
    outcome = run_sweep(plan, workers=2)        # or scheduler="tcp://host:8786" / "local"
    sweep = load_sweep("runs/sq")               # .summary, .fronts (DataFrames)

Modules: :mod:`~jaqmoo.sweep.spec` (spec + expansion), :mod:`~jaqmoo.sweep.executor`
(backends + dependency loop), :mod:`~jaqmoo.sweep.tasks` (what a worker runs),
:mod:`~jaqmoo.sweep.runner` (one launch), :mod:`~jaqmoo.sweep.outputs` (summary, fronts,
reading a sweep folder), :mod:`~jaqmoo.sweep.plots` (grid plot).
"""

from jaqmoo.sweep.outputs import Sweep, is_sweep_dir, load_sweep
from jaqmoo.sweep.runner import SweepOutcome, run_sweep
from jaqmoo.sweep.spec import RunPlan, SweepPlan, expand_sweep, load_sweep_spec

__all__ = ["RunPlan", "Sweep", "SweepOutcome", "SweepPlan", "expand_sweep", "is_sweep_dir", "load_sweep",
           "load_sweep_spec", "run_sweep"]
