"""Searchers compared on one problem: jaqmoo's joint NSGA-II against the seed papers' searchers.

Same network, hardware model, accuracy estimator (one supernet and one predictor shared by
every run) and number of accuracy + cost evaluations for every searcher, several seeds each:

* ``uniform``     every uniform w/a policy (its evaluations are fixed: |w| x |a|);
* ``random``      random search over the joint search's genome (the uniform seeds first);
* ``haq``         HAQ's DDPG agent with the action wall, budgets 0.4 .. 0.9 of 8-bit energy;
* ``bits-nsga2``  Klhufek et al.'s bits-only NSGA-II (their seeding, crossover, mutation);
* ``jaqmoo``      jaqmoo's NSGA-II on the spec's genome (``mapping.mode`` of the spec);
* ``jaqmoo-outer`` the same with evolved mapping genes (outer mapping mode);
* ``jaqmoo-hw``   the same with hardware genes (``--hw-genes``; only when the spec has none).

Every run is a normal run folder (``<out>/<searcher>-s<seed>``; ``jaqmoo export`` / ``plot``
work on it; its PNGs are not drawn here); each run's candidate front (the best predicted ranks, twice the population)
is re-scored by the supernet, as ``jaqmoo run`` does. Printed per searcher (mean and spread
over seeds): the hypervolume of the re-scored valid points (accuracy >= the spec's
constraint) in a common normalisation (each objective divided by its largest value over all
runs, reference point 1.1), the best energy among points within ``--tolerance`` (0.5 points)
of uniform 8-bit's re-scored accuracy as ``8-bit energy / that energy`` (both on the same
hardware model in the same run of this script; 8-bit = the uniform run's uniform 8-bit
policy on the template's default hardware), evaluations, search seconds (the mapper's
warm-up included; each run starts with a fresh cost cache) and re-scoring seconds.
Writes ``<out>/compare_searchers.csv`` (one row per run) and ``<out>/fronts.png`` (the
re-scored fronts of every searcher, seeds pooled, accuracy vs energy).

    python benchmarks/compare_searchers.py [--spec problems/mobilenetv2-eyeriss.yaml]
        [--out runs/compare-searchers] [--evaluations 640] [--population 64] [--seeds 0 1 2]
        [--searchers uniform random haq bits-nsga2 jaqmoo jaqmoo-outer jaqmoo-hw] [--jobs 2]
        [--threads 1] [--smoke]

Runs go to ``--jobs`` worker processes (default 2, one per core of a 2-core machine; each
loads the shared supernet and predictor from their caches); ``--jobs 1`` runs them in this
process. Re-running with the same ``--out`` reuses finished runs and resumes interrupted ones.
Last line: ``RESULT best_searcher=<name> hv_jaqmoo=.. hv_haq=.. hv_bits_nsga2=.. hv_random=..
hv_uniform=..`` (then the other jaqmoo variants).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
SEARCHERS = ("uniform", "random", "haq", "bits-nsga2", "jaqmoo", "jaqmoo-outer", "jaqmoo-hw")
RESULT_KEYS = ("jaqmoo", "haq", "bits-nsga2", "random", "uniform")


def smoke_spec(out: Path) -> dict:
    """A seconds-sized problem for the test suite: a small CNN on 8x8 digits, Eyeriss."""
    return {
        "name": "compare-smoke", "seed": 0,
        "model": {"name": "simple_cnn"}, "dataset": {"name": "digits"},
        "accelerator": {"template": "eyeriss"},
        "quantization": {"weight_bits": [2, 4, 6, 8], "act_bits": [4, 6, 8]},
        "mapping": {"mode": "inner", "metric": "energy", "candidates": 8},
        "accuracy": {"estimator": "predictor", "predictor_samples": 12, "val_images": 120,
                     "checkpoint": str(out / "cache" / "smoke-supernet.pt"),
                     "train": {"epochs": 1, "batch_size": 64, "lr": 0.003, "n_random": 1}},
        "objectives": ["accuracy", "energy", "memory"],
        "constraints": {"max_accuracy_drop": 0.2},
        "search": {"algorithm": "nsga2", "population": 8, "generations": 3, "haq_budgets": [0.5, 0.8]},
    }


def variant(spec, name: str, population: int, generations: int, seed: int, hw_genes: tuple[str, ...]):
    """The spec of searcher ``name`` (budget population x generations, ``seed``)."""
    from jaqmoo.experiment.spec import AcceleratorSpec

    search = replace(spec.search, population=population, generations=generations,
                     algorithm=name if name in ("uniform", "random", "haq", "bits-nsga2") else "nsga2")
    out = replace(spec, search=search, seed=seed)
    if name == "jaqmoo-outer":
        out = replace(out, mapping=replace(spec.mapping, mode="outer"))
    if name == "jaqmoo-hw":
        acc = spec.accelerator
        out = replace(out, accelerator=AcceleratorSpec(acc.template, acc.fixed, tuple((g, ()) for g in hw_genes)))
    return out


def scored_points(run) -> pd.DataFrame:
    """Re-scored, valid (feasible, within the accuracy constraint) evaluations of a run, one per genome."""
    df = run.evaluations
    col = "accuracy_rescored" if "accuracy_rescored" in df else "accuracy"
    df = df[df["feasible"] & df[col].notna()].drop_duplicates("genes").copy()
    df["acc"] = df[col].astype(float)
    min_acc = (run.meta.get("constraints") or {}).get("min_accuracy")
    return df[df["acc"] >= min_acc] if min_acc is not None else df


def objective_matrix(points: pd.DataFrame, objectives: list[str]) -> np.ndarray:
    from jaqmoo.report import objective_values

    return objective_values(points, objectives, "acc")


def run_one(spec, out_dir: Path, accuracy) -> tuple[object, dict]:
    """Run (or reuse / resume) one search; returns the loaded run and its timings."""
    from jaqmoo.experiment import run_experiment
    from jaqmoo.report import load_run

    timings = out_dir / "timings.json"
    if timings.is_file():
        return load_run(out_dir), json.loads(timings.read_text())
    resume = (out_dir / "evaluations.jsonl").is_file()
    result = run_experiment(spec, out=out_dir, resume=resume, progress=False, accuracy=accuracy, plots=False)
    return result.run, result.seconds


def run_in_worker(base_spec, spec, out_dir: str, shared_dir: str, threads: int | None) -> dict:
    """A worker process's run: the shared supernet and predictor from their caches, then one search."""
    from jaqmoo.commands import set_threads
    from jaqmoo.experiment import prepare_experiment
    from jaqmoo.experiment.accuracy import obtain_accuracy

    if threads:
        set_threads(threads)
    if (Path(out_dir) / "timings.json").is_file():
        return json.loads((Path(out_dir) / "timings.json").read_text())
    prep = prepare_experiment(base_spec, out=shared_dir)
    accuracy = obtain_accuracy(base_spec, prep.splits, prep.layer_names, Path(shared_dir) / "supernet.pt", progress=False)
    return run_one(spec, Path(out_dir), accuracy)[1]


def run_all(tasks: list[tuple[str, int, object]], base_spec, out: Path, accuracy, jobs: int,
            threads: int | None) -> dict[tuple[str, int], tuple[object, dict]]:
    """Every (searcher, seed, spec) task, in this process (``jobs`` 1) or in ``jobs`` worker processes."""
    from jaqmoo.report import load_run

    def report(name: str, seed: int, r, sec: dict) -> None:
        print(f"  {name:13s} seed {seed}: {len(r.evaluations)} evaluations, search {sec.get('search', 0):.1f}s, "
              f"re-score {sec.get('rescore', 0):.1f}s", flush=True)

    runs: dict[tuple[str, int], tuple[object, dict]] = {}
    if jobs <= 1:
        for name, seed, spec in tasks:
            runs[(name, seed)] = run_one(spec, out / f"{name}-s{seed}", accuracy)
            report(name, seed, *runs[(name, seed)])
        return runs
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # the agent's runs take longest: start them first
    ordered = sorted(tasks, key=lambda t: t[0] != "haq")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_in_worker, base_spec, spec, str(out / f"{name}-s{seed}"), str(out / "shared"),
                               threads): (name, seed) for name, seed, spec in ordered}
        for fut in as_completed(futures):
            name, seed = futures[fut]
            runs[(name, seed)] = (load_run(out / f"{name}-s{seed}"), fut.result())
            report(name, seed, *runs[(name, seed)])
    return {(n, s): runs[(n, s)] for n, s, _ in tasks}


def summarise(rows: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    g = rows.groupby("searcher", sort=False)
    table = pd.DataFrame({
        "hv_mean": g["hv"].mean(), "hv_std": g["hv"].std(ddof=0),
        "energy_ratio_mean": g["energy_ratio_vs_8bit"].mean(), "energy_ratio_std": g["energy_ratio_vs_8bit"].std(ddof=0),
        "evaluations": g["evaluations"].mean(), "search_s": g["search_s"].mean(), "rescore_s": g["rescore_s"].mean(),
        "seeds": g["seed"].count(),
    })
    return table.loc[[s for s in order if s in table.index]]


def plot_fronts(points: dict[str, pd.DataFrame], acc8: float, e8: float, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from jaqmoo.search.indicators import non_dominated

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, df in points.items():
        if df.empty:
            continue
        F = np.stack([df["energy_pj"].to_numpy(float), -df["acc"].to_numpy(float)], axis=1)
        front = df.iloc[non_dominated(F)].sort_values("energy_pj")
        ax.step(front["energy_pj"] / e8, front["acc"] * 100, where="post", marker="o", ms=3, label=name)
    ax.axhline(acc8 * 100, color="grey", lw=0.8, ls="--")
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("energy / uniform 8-bit energy")
    ax.set_ylabel("accuracy (%, supernet re-scored)")
    ax.set_title("Fronts of every searcher (seeds pooled)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", default=str(ROOT / "problems" / "mobilenetv2-eyeriss.yaml"))
    p.add_argument("--out", default=None, help="folder of the runs (default runs/compare-searchers[-smoke])")
    p.add_argument("--evaluations", type=int, default=640, help="accuracy + cost evaluations per run")
    p.add_argument("--population", type=int, default=64)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--searchers", nargs="+", default=list(SEARCHERS), choices=SEARCHERS)
    p.add_argument("--hw-genes", default="pe_x,pe_y,glb_depth", help="hardware genes of jaqmoo-hw")
    p.add_argument("--tolerance", type=float, default=0.005, help="accuracy drop allowed vs uniform 8-bit")
    p.add_argument("--threads", type=int, default=None, help="torch / numba threads (per process)")
    p.add_argument("--jobs", type=int, default=2, help="runs at once, each in its own process (1: all in this one)")
    p.add_argument("--smoke", action="store_true",
                   help="a tiny problem (small CNN on 8x8 digits), 16 evaluations, seeds 0 and 1 (for the tests)")
    args = p.parse_args(argv)

    from jaqmoo.commands import set_threads
    from jaqmoo.experiment import prepare_experiment
    from jaqmoo.experiment.accuracy import obtain_accuracy
    from jaqmoo.experiment.spec import coerce_spec, parse_spec
    from jaqmoo.search.indicators import REFERENCE, hv_scale, hypervolume

    if args.threads:
        set_threads(args.threads)
    t_start = time.perf_counter()
    out = Path(args.out or ROOT / "runs" / ("compare-searchers-smoke" if args.smoke else "compare-searchers"))
    out.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        spec = parse_spec(smoke_spec(out), source="<smoke>")
        args.evaluations, args.population, args.seeds = 16, 8, [0, 1]
    else:
        spec = coerce_spec(args.spec)
    if args.evaluations % args.population:
        p.error("--evaluations must be a multiple of --population (generations x population)")
    generations = args.evaluations // args.population
    hw_genes = tuple(g for g in args.hw_genes.split(",") if g)
    searchers = [s for s in args.searchers if not (s == "jaqmoo-hw" and (spec.accelerator.search or spec.accelerator.search_all))]

    # one supernet and one predictor for every run
    prep = prepare_experiment(spec, out=out / "shared")
    t0 = time.perf_counter()
    accuracy = obtain_accuracy(spec, prep.splits, prep.layer_names, out / "shared" / "supernet.pt", progress=False)
    shared_s = time.perf_counter() - t0
    print(f"spec: {spec.source}; model {spec.model.name} on {spec.accelerator.template}; objectives "
          f"{list(spec.objectives)}; {args.evaluations} evaluations per run (population {args.population} x "
          f"{generations} generations), seeds {args.seeds}")
    print(f"shared accuracy set-up: {shared_s:.1f}s ({', '.join(f'{k} {v:.1f}s' for k, v in accuracy.seconds.items())})")

    tasks = [(name, seed, variant(spec, name, args.population, generations, seed, hw_genes))
             for name in searchers for seed in args.seeds]
    runs = run_all(tasks, spec, out, accuracy, args.jobs, args.threads)

    objectives = list(spec.objectives)
    points = {k: scored_points(r) for k, (r, _) in runs.items()}
    allF = np.vstack([objective_matrix(df, objectives) for df in points.values() if len(df)])
    scale = hv_scale(allF)
    # uniform 8-bit: from a uniform run if there is one, else from any run's baselines
    ref_run = next((r for (n, _), (r, _) in runs.items() if n == "uniform"), next(iter(runs.values()))[0])
    b8 = ref_run.baselines[ref_run.baselines["baseline"] == "uniform 8-bit"].iloc[0]
    acc8 = float(b8["accuracy_rescored"]) if pd.notna(b8.get("accuracy_rescored")) else float(b8["accuracy"])
    e8 = float(b8["energy_pj"])
    rows = []
    for (name, seed), (r, sec) in runs.items():
        df = points[(name, seed)]
        ok = df[df["acc"] >= acc8 - args.tolerance]
        best_e = float(ok["energy_pj"].min()) if len(ok) else float("nan")
        rows.append({"searcher": name, "seed": seed, "hv": hypervolume(objective_matrix(df, objectives), scale),
                     "energy_ratio_vs_8bit": e8 / best_e if len(ok) else float("nan"), "best_energy_pj": best_e,
                     "valid_rescored_points": len(df), "evaluations": len(r.evaluations),
                     "search_s": sec.get("search", float("nan")), "rescore_s": sec.get("rescore", 0.0),
                     "run_dir": str(r.dir)})
    table = pd.DataFrame(rows)
    table.to_csv(out / "compare_searchers.csv", index=False)
    summary = summarise(table, searchers)
    print(f"uniform 8-bit (default hardware): accuracy {acc8:.4f} (supernet), energy {e8:.4g} pJ; "
          f"hypervolume scale {', '.join(f'{v:.4g}' for v in scale)} (objective / scale, reference point {REFERENCE})")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4f}".format):
        print(summary.to_string())
    pooled = {name: pd.concat([points[(name, s)] for s in args.seeds]) for name in searchers}
    plot = plot_fronts(pooled, acc8, e8, out / "fronts.png")
    print(f"wrote {out / 'compare_searchers.csv'}, {plot}; total {time.perf_counter() - t_start:.1f}s")
    best = summary["hv_mean"].idxmax()
    hv = {k: summary.loc[k, "hv_mean"] if k in summary.index else float("nan") for k in searchers}
    keys = [k for k in RESULT_KEYS if k in hv] + [k for k in searchers if k not in RESULT_KEYS]
    print(f"RESULT best_searcher={best} " + " ".join(f"hv_{k.replace('-', '_')}={hv[k]:.4f}" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
