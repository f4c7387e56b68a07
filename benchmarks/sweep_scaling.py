"""Sweep scaling: the same small sweep on the local pool with 1 and 2 workers and on a Dask
LocalCluster with 2 workers, measured in one run.

    python benchmarks/sweep_scaling.py [--seeds 2] [--population 8] [--generations 3] [--work-dir DIR]

The sweep: simple_cnn on digits x {eyeriss, simba} x seeds (4 runs by default). The shared
supernets (one per seed) are trained first, untimed, by a warm-up sweep that also fills
numba's on-disk cache; each timed launch then starts from an empty sweep folder and loads
them (as every run of a real sweep does once its supernet task is done). Timed: the whole
``run_sweep`` call (pool start-up, supernet loads, runs, outputs). The Dask figure excludes
starting the LocalCluster (an existing cluster is already running; printed separately).

Figures: ``speedup_2_workers`` = wall(pool, 1 worker) / wall(pool, 2 workers);
``dask_overhead_seconds_per_run`` = (wall(Dask, 2 workers) - wall(pool, 2 workers)) / runs.
The three fronts.csv must be identical (checked).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from jaqmoo.sweep import expand_sweep, run_sweep

BASE = {
    "name": "scaling",
    "model": {"name": "simple_cnn"},
    "dataset": {"name": "digits"},
    "accelerator": {"template": "eyeriss", "fixed": {"technology": 45}},
    "quantization": {"weight_bits": [2, 3, 4, 6, 8], "act_bits": [4, 6, 8]},
    "accuracy": {"estimator": "supernet", "train": {"epochs": 2, "batch_size": 64, "n_random": 1}, "val_images": 200},
    "objectives": ["accuracy", "energy", "memory"],
    "constraints": {"max_accuracy_drop": 0.2},
    "search": {"seed_bits": [8, 6, 4]},
}


def sweep_data(cache: Path, seeds: int, population: int, generations: int) -> dict:
    base = {**BASE, "accuracy": {**BASE["accuracy"], "checkpoint": str(cache / "{model}-s{seed}.pt")},
            "search": {**BASE["search"], "population": population, "generations": generations}}
    return {"name": "scaling", "base": base,
            "axes": {"accelerator": ["eyeriss", "simba"], "seed": list(range(seeds))}}


def timed(data: dict, out: Path, **kwargs) -> float:
    plan = expand_sweep(data, out_dir=out)
    t0 = time.perf_counter()
    outcome = run_sweep(plan, progress=False, echo=lambda s: None, **kwargs)
    wall = time.perf_counter() - t0
    if outcome.failed:
        raise SystemExit(f"runs failed in {out}: {outcome.failed}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--population", type=int, default=8)
    ap.add_argument("--generations", type=int, default=3)
    ap.add_argument("--work-dir", help="keep the sweep folders here (default: a temporary folder)")
    args = ap.parse_args()
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="sweep-scaling-"))
    work.mkdir(parents=True, exist_ok=True)
    data = sweep_data(work / "cache", args.seeds, args.population, args.generations)
    n_runs = 2 * args.seeds
    for name in ("warmup", "pool1", "pool2", "dask2"):
        shutil.rmtree(work / name, ignore_errors=True)

    t = timed(data, work / "warmup", workers=2)
    print(f"warm-up (trains {args.seeds} supernet(s), {n_runs} runs; untimed): {t:.1f} s")
    pool1 = timed(data, work / "pool1", workers=1)
    print(f"local pool, 1 worker : {pool1:.1f} s for {n_runs} runs")
    pool2 = timed(data, work / "pool2", workers=2)
    print(f"local pool, 2 workers: {pool2:.1f} s")

    from distributed import LocalCluster

    t0 = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        start = time.perf_counter() - t0
        dask2 = timed(data, work / "dask2", scheduler=cluster.scheduler_address)
    print(f"Dask LocalCluster, 2 workers: {dask2:.1f} s (+ {start:.1f} s to start the cluster, not counted)")
    fronts = [(work / n / "fronts.csv").read_bytes() for n in ("pool1", "pool2", "dask2")]
    same = fronts[0] == fronts[1] == fronts[2]
    print(f"identical fronts.csv across the three launches: {same}")
    if not same:
        raise SystemExit("the three launches disagree")
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    speedup = pool1 / pool2
    overhead = (dask2 - pool2) / n_runs
    print(f"RESULT speedup_2_workers={speedup:.3f} dask_overhead_seconds_per_run={overhead:.3f}")


if __name__ == "__main__":
    main()
