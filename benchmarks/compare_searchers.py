"""Searchers compared on one problem, on equal terms: jaqmoo's joint NSGA-II against the seed papers'.

Every searcher gets the same network, hardware model, accuracy estimator (one supernet and one
predictor shared by every run), the same number of accuracy + cost evaluations and, with
``--init spread`` or ``--init random``, the same first population (``search.init``: the
uniform seed policies, then policies spread over precision levels / uniformly random; the same
bit policies for every searcher of a seed; ``--init own`` gives each searcher its paper's own):

* ``uniform``     every uniform w/a policy (49; no budget, no first population, no seed);
* ``random``      the first population, then uniformly random genomes;
* ``haq``         the first population, then HAQ's DDPG agent(s) (``--haq-budgets``: one agent
                  per budget, a fraction of 8-bit energy; the episodes are the rest of the budget);
* ``bits-nsga2``  Klhufek et al.'s bits-only NSGA-II (random mating, per-layer crossover with 5 %
                  reset to 8 bits, mutation of one layer's W or A bits);
* ``jaqmoo``      jaqmoo's joint NSGA-II on the spec's genome: the variant named before the run as
                  jaqmoo's entry (``p_jaqmoo_vs_best_baseline`` is computed for it only);
* ``jaqmoo-outer`` the same with evolved mapping genes; ``jaqmoo-hw`` with hardware genes
                  (separate rows, never picked after the fact).

Each (searcher, seed) is a normal run folder (``<out>/<init>/<searcher>-s<seed>``). Two
hypervolumes per run, both in one fixed normalisation (uniform 8-bit's energy / memory = 1,
accuracy as 1 - accuracy, reference point 1.1):

* **graded**: the run's valid points with the accuracy the search itself reports (the supernet's
  re-score on the validation split);
* **held-out**: the run's front under that accuracy, re-scored by the supernet on the test split
  (never seen by any search), with an accuracy floor: points below uniform 8-bit's held-out
  accuracy minus 5 points count for nothing.

Per searcher: mean and std over the seeds; the best baseline (uniform, random, haq, bits-nsga2)
by mean; a one-sided paired Wilcoxon p-value (exact, seeds paired) of jaqmoo against it, for each
hypervolume. With ``--qat N`` the N lowest-energy policies within 1 point of uniform 8-bit
(held-out) of jaqmoo's and the best baseline's pooled fronts, and uniform 8-bit, get a short QAT
(``--qat-steps``; cached under ``--qat-cache``). Writes ``<out>/<init>/compare_searchers.csv``.

    python benchmarks/compare_searchers.py [--spec problems/mobilenetv2-eyeriss.yaml] [--init spread]
        [--out runs/compare-searchers] [--evaluations 704] [--population 64] [--seeds 0 1 2 3 4]
        [--haq-budgets 0.5] [--searchers ...] [--jobs 2] [--threads 1] [--qat 3] [--smoke]

Last line: ``RESULT init=.. best_baseline=.. p_jaqmoo_vs_best_baseline=.. best_baseline_heldout=..
p_heldout_jaqmoo_vs_best_baseline=.. hv_<searcher>_mean=.. hv_<searcher>_std=..
hv_heldout_<searcher>_mean=.. hv_heldout_<searcher>_std=..`` (``nan`` where a figure does not exist).
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
SEARCHERS = ("uniform", "random", "haq", "bits-nsga2", "jaqmoo", "jaqmoo-outer", "jaqmoo-hw")
BASELINES = ("uniform", "random", "haq", "bits-nsga2")
NAMED = "jaqmoo"  # jaqmoo's entry, named before any run: the joint search on the spec's genome
FLOOR = 0.05  # held-out points below uniform 8-bit minus 5 points count for nothing
QAT_WITHIN = 0.01  # QAT candidates: within 1 point of uniform 8-bit (held-out)


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


def variant(spec, name: str, population: int, generations: int, seed: int, hw_genes: tuple[str, ...],
            init: str = "own", haq_budgets: tuple[float, ...] | None = None):
    """The spec of searcher ``name`` (budget population x generations, ``seed``, first population ``init``)."""
    from jaqmoo.experiment.spec import AcceleratorSpec

    search = replace(spec.search, population=population, generations=generations, init=init,
                     haq_budgets=tuple(haq_budgets or spec.search.haq_budgets),
                     algorithm=name if name in BASELINES else "nsga2")
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


def run_all(tasks: list[tuple[str, int, object, Path]], base_spec, shared: Path, accuracy, jobs: int,
            threads: int | None) -> dict[tuple[str, int], tuple[object, dict]]:
    """Every (searcher, seed, spec, run folder) task, in this process (``jobs`` 1) or in ``jobs`` worker processes."""
    from jaqmoo.report import load_run

    def report(name: str, seed: int, r, sec: dict) -> None:
        print(f"  {name:13s} seed {seed}: {len(r.evaluations)} evaluations, search {sec.get('search', 0):.1f}s, "
              f"re-score {sec.get('rescore', 0):.1f}s", flush=True)

    runs: dict[tuple[str, int], tuple[object, dict]] = {}
    if jobs <= 1:
        for name, seed, spec, run_dir in tasks:
            runs[(name, seed)] = run_one(spec, run_dir, accuracy)
            report(name, seed, *runs[(name, seed)])
        return runs
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # the agent's runs take longest: start them first
    ordered = sorted(tasks, key=lambda t: t[0] != "haq")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_in_worker, base_spec, spec, str(run_dir), str(shared), threads): (name, seed, run_dir)
                   for name, seed, spec, run_dir in ordered}
        for fut in as_completed(futures):
            name, seed, run_dir = futures[fut]
            runs[(name, seed)] = (load_run(run_dir), fut.result())
            report(name, seed, *runs[(name, seed)])
    return {(t[0], t[1]): runs[(t[0], t[1])] for t in tasks}


def summarise(rows: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Mean and std over seeds per searcher (std with ddof 1: the sample's)."""
    g = rows.groupby("searcher", sort=False)
    table = pd.DataFrame({
        "hv_mean": g["hv"].mean(), "hv_std": g["hv"].std(ddof=1),
        "hv_heldout_mean": g["hv_heldout"].mean(), "hv_heldout_std": g["hv_heldout"].std(ddof=1),
        "energy_ratio_mean": g["energy_ratio_vs_8bit"].mean(),
        "evaluations": g["evaluations"].mean(), "search_s": g["search_s"].mean(), "rescore_s": g["rescore_s"].mean(),
        "seeds": g["seed"].count(),
    })
    return table.loc[[s for s in order if s in table.index]]


def significance(rows: pd.DataFrame, summary: pd.DataFrame, column: str) -> tuple[str, float]:
    """The best baseline by mean ``column`` and the one-sided paired p-value of jaqmoo against it."""
    from jaqmoo.search.indicators import paired_p_value

    base = [b for b in BASELINES if b in summary.index]
    if NAMED not in summary.index or not base:
        return "nan", float("nan")
    best = max(base, key=lambda b: summary.loc[b, f"{column}_mean"])
    mine = rows[rows["searcher"] == NAMED].set_index("seed")[column]
    theirs = rows[rows["searcher"] == best].set_index("seed")[column].reindex(mine.index)
    return best, paired_p_value(mine.to_numpy(), theirs.to_numpy())


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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from jaqmoo.search.algorithms import INITS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", default=str(ROOT / "problems" / "mobilenetv2-eyeriss.yaml"))
    p.add_argument("--out", default=None, help="folder of the runs (default runs/compare-searchers[-smoke])")
    p.add_argument("--init", default="spread", choices=INITS, help="first population of every searcher")
    p.add_argument("--evaluations", type=int, default=704, help="accuracy + cost evaluations per run")
    p.add_argument("--population", type=int, default=64)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--searchers", nargs="+", default=list(SEARCHERS), choices=SEARCHERS)
    p.add_argument("--haq-budgets", type=float, nargs="+", default=None,
                   help="HAQ's budgets (fractions of 8-bit energy), one agent each (default: the spec's)")
    p.add_argument("--hw-genes", default="pe_x,pe_y,glb_depth", help="hardware genes of jaqmoo-hw")
    p.add_argument("--tolerance", type=float, default=0.005, help="accuracy drop allowed vs uniform 8-bit")
    p.add_argument("--qat", type=int, default=0, help="short-QAT this many policies of jaqmoo and the best baseline")
    p.add_argument("--qat-steps", type=int, default=300, help="optimizer steps of each short QAT")
    p.add_argument("--qat-cache", default="/work/bench_cache/qat-short", help="cache folder of the short QATs")
    p.add_argument("--threads", type=int, default=None, help="torch / numba threads (per process)")
    p.add_argument("--jobs", type=int, default=2, help="runs at once, each in its own process (1: all in this one)")
    p.add_argument("--smoke", action="store_true",
                   help="a tiny problem (small CNN on 8x8 digits), 16 evaluations, seeds 0 and 1 (for the tests)")
    args = p.parse_args(argv)
    if args.smoke:
        args.evaluations, args.population, args.seeds = 16, 8, [0, 1]
    if args.evaluations % args.population:
        p.error("--evaluations must be a multiple of --population (generations x population)")
    return args


def uniform8(runs: dict) -> pd.Series:
    """Uniform 8-bit's row (default hardware): from the uniform run if there is one, else any run's baselines."""
    ref_run = next((r for (n, _), (r, _) in runs.items() if n == "uniform"), next(iter(runs.values()))[0])
    return ref_run.baselines[ref_run.baselines["baseline"] == "uniform 8-bit"].iloc[0]


def fixed_scale(objectives: list[str], b8: pd.Series) -> list[float]:
    """Accuracy as 1 - accuracy (scale 1); every other objective divided by uniform 8-bit's value."""
    from jaqmoo.objectives import METRIC_OF

    return [1.0 if o == "accuracy" else float(b8[METRIC_OF[o]]) for o in objectives]


def score_runs(runs: dict, objectives: list[str], scale: list[float], held, acc8: float, acc8_h: float,
               e8: float, seeds: list[int], tolerance: float) -> tuple[pd.DataFrame, dict[tuple[str, int], pd.DataFrame]]:
    """One row per (searcher, seed): graded and held-out hypervolumes, energy ratio, budget, seconds;
    and each run's held-out re-scored front. The uniform run (deterministic) stands for every seed."""
    from searcher_truth import floored_hv, run_front

    rows, fronts = [], {}
    for (name, seed), (r, sec) in runs.items():
        df = scored_points(r)
        front = held.rescore(run_front(df, objectives))
        ok = df[df["acc"] >= acc8 - tolerance]
        best_e = float(ok["energy_pj"].min()) if len(ok) else float("nan")
        row = {"searcher": name, "hv": floored_hv(df, objectives, scale, "acc"),
               "hv_heldout": floored_hv(front, objectives, scale, "acc_heldout", acc8_h - FLOOR),
               "energy_ratio_vs_8bit": e8 / best_e, "front_points": len(front), "evaluations": len(r.evaluations),
               "search_s": sec.get("search", float("nan")), "rescore_s": sec.get("rescore", 0.0), "run_dir": str(r.dir)}
        for s in (seeds if name == "uniform" else [seed]):
            rows.append({**row, "seed": s})
            fronts[(name, s)] = front
    return pd.DataFrame(rows), fronts


def run_qat(args, fronts: dict, best: str, acc8_h: float, key8: str, checkpoint: Path, splits, layers) -> dict:
    """Short QAT of the ``--qat`` lowest-energy near-8-bit policies of jaqmoo's and ``best``'s pooled fronts."""
    from searcher_truth import qat_candidates, qat_truth

    picked = {}
    for name in (NAMED, best):
        pooled = pd.concat([f for (n, _), f in fronts.items() if n == name])
        keys = qat_candidates(pooled, acc8_h, QAT_WITHIN, args.qat)
        picked[name] = [(k, float(pooled[pooled["policy"] == k]["energy_pj"].min()),
                         float(pooled[pooled["policy"] == k]["acc_heldout"].iloc[0])) for k in keys]
    t0 = time.perf_counter()
    truth = qat_truth(checkpoint, splits, layers, [key8] + [k for v in picked.values() for k, _, _ in v],
                      args.qat_steps, Path(args.qat_cache))
    print(f"short QAT ({args.qat_steps} steps from the supernet checkpoint, test split; {time.perf_counter() - t0:.0f}s): "
          f"uniform 8-bit {truth[key8]:.4f}")
    for name, items in picked.items():
        for k, e, acc_h in items:
            print(f"  {name:11s} w/a {k}: energy {e:.4g} pJ, held-out supernet {acc_h:.4f}, short QAT {truth[k]:.4f}")
    return {"qat_8bit": truth[key8], **{f"qat_{n.replace('-', '_')}_mean": float(np.mean([truth[k] for k, _, _ in v]))
                                         if v else float("nan") for n, v in picked.items()}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from searcher_truth import HeldOut, policy_key

    from jaqmoo.commands import set_threads
    from jaqmoo.experiment import prepare_experiment
    from jaqmoo.experiment.accuracy import obtain_accuracy
    from jaqmoo.experiment.spec import coerce_spec, parse_spec

    if args.threads:
        set_threads(args.threads)
    t_start = time.perf_counter()
    out = Path(args.out or ROOT / "runs" / ("compare-searchers-smoke" if args.smoke else "compare-searchers"))
    out.mkdir(parents=True, exist_ok=True)
    spec = parse_spec(smoke_spec(out), source="<smoke>") if args.smoke else coerce_spec(args.spec)
    generations = args.evaluations // args.population
    hw_genes = tuple(g for g in args.hw_genes.split(",") if g)
    searchers = [s for s in args.searchers if not (s == "jaqmoo-hw" and (spec.accelerator.search or spec.accelerator.search_all))]

    # one supernet and one predictor for every run (and every --init)
    prep = prepare_experiment(spec, out=out / "shared")
    t0 = time.perf_counter()
    accuracy = obtain_accuracy(spec, prep.splits, prep.layer_names, out / "shared" / "supernet.pt", progress=False)
    print(f"spec: {spec.source}; model {spec.model.name} on {spec.accelerator.template}; objectives "
          f"{list(spec.objectives)}; {args.evaluations} evaluations per run (population {args.population} x "
          f"{generations} generations), first population {args.init}, seeds {args.seeds}; shared accuracy set-up "
          f"{time.perf_counter() - t0:.1f}s")
    tasks = [(name, seed, variant(spec, name, args.population, generations, seed, hw_genes, args.init, args.haq_budgets),
              out / "uniform" if name == "uniform" else out / args.init / f"{name}-s{seed}")
             for name in searchers for seed in (args.seeds[:1] if name == "uniform" else args.seeds)]
    runs = run_all(tasks, spec, out / "shared", accuracy, args.jobs, args.threads)

    objectives = list(spec.objectives)
    layers = list(next(iter(runs.values()))[0].meta["layer_names"])
    b8 = uniform8(runs)
    acc8 = float(b8["accuracy_rescored"]) if pd.notna(b8.get("accuracy_rescored")) else float(b8["accuracy"])
    scale = fixed_scale(objectives, b8)
    est = accuracy.rescore_estimator or accuracy.search_estimator
    while not hasattr(est, "supernet"):  # the supernet estimator inside its cache wrapper
        est = est.estimator
    held = HeldOut(est.supernet, prep.splits, layers, out / "heldout.json")
    key8 = policy_key(b8, layers)
    acc8_h = held.score([key8])[key8]
    t0 = time.perf_counter()
    table, fronts = score_runs(runs, objectives, scale, held, acc8, acc8_h, float(b8["energy_pj"]), args.seeds,
                               args.tolerance)
    (out / args.init).mkdir(parents=True, exist_ok=True)
    table.to_csv(out / args.init / "compare_searchers.csv", index=False)
    summary = summarise(table, searchers)
    print(f"uniform 8-bit (default hardware): accuracy {acc8:.4f} (supernet, validation), {acc8_h:.4f} (supernet, "
          f"{held.n_images} held-out test images; floor {acc8_h - FLOOR:.4f}), energy {b8['energy_pj']:.4g} pJ; "
          f"hypervolume scale {', '.join(f'{v:.4g}' for v in scale)}; held-out re-scoring {time.perf_counter() - t0:.1f}s")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4f}".format):
        print(summary.to_string())
    best, p = significance(table, summary, "hv")
    best_h, p_h = significance(table, summary, "hv_heldout")
    print(f"jaqmoo vs the best baseline (one-sided paired Wilcoxon over {len(args.seeds)} seeds): graded {best} "
          f"p={p:.4f}; held-out {best_h} p={p_h:.4f}")
    extra = {}
    if args.qat and best_h != "nan":
        ckpt = Path(next(iter(runs.values()))[0].meta["supernet_checkpoint"])
        extra = run_qat(args, fronts, best_h, acc8_h, key8, ckpt if ckpt.is_absolute() else Path.cwd() / ckpt,
                        prep.splits, layers)
    pooled = {name: pd.concat([scored_points(runs[(name, s)][0]) for s in args.seeds if (name, s) in runs])
              for name in searchers}
    plot = plot_fronts(pooled, acc8, float(b8["energy_pj"]), out / args.init / "fronts.png")
    print(f"wrote {out / args.init / 'compare_searchers.csv'}, {plot}; total {time.perf_counter() - t_start:.1f}s")
    figures = {f"hv_{k.replace('-', '_')}_{stat}": (summary.loc[k, f"hv_{stat}"] if k in summary.index else float("nan"))
               for k in searchers for stat in ("mean", "std")}
    figures.update({f"hv_heldout_{k.replace('-', '_')}_{stat}":
                    (summary.loc[k, f"hv_heldout_{stat}"] if k in summary.index else float("nan"))
                    for k in searchers for stat in ("mean", "std")})
    print(f"RESULT init={args.init} best_baseline={best} p_jaqmoo_vs_best_baseline={p:.4f} best_baseline_heldout={best_h} "
          f"p_heldout_jaqmoo_vs_best_baseline={p_h:.4f} "
          + " ".join(f"{k}={v:.4f}" for k, v in {**figures, **extra}.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
