"""Does evaluating a run's population on a process pool pay? Measured in one run.

    python benchmarks/population_executor.py [--spec problems/quickstart.yaml] [--pop 32]
                                             [--generations 3] [--workers 2]

For the spec's model, dataset and accelerator (default: the quickstart, digits), with its
supernet (trained into the benchmark's work folder when missing), two evaluators are timed
on the same random populations (``--generations`` fresh populations of ``--pop`` genomes,
new evaluators for each mode so no cache is warm):

* ``supernet``: inner mapping mode, every candidate scored by the supernet;
* ``outer``: outer mapping mode (mapping genes), accuracy from the supernet too.

Each is timed in-process and on a :class:`jaqmoo.sweep.population.PoolEvaluator` with
``--workers`` processes (pool start-up and shipping the evaluator included: it is paid once
per run). Records are checked to be identical. Last line:
``RESULT population_speedup_supernet=.. population_speedup_outer=..`` (in-process time /
pool time; > 1 means the pool pays).
"""

from __future__ import annotations

import argparse
import copy
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml


def build(spec_data: dict, work: Path, mode: str):
    from jaqmoo.experiment import prepare_experiment
    from jaqmoo.experiment.accuracy import obtain_accuracy
    from jaqmoo.search.evaluators import build_evaluator

    data = copy.deepcopy(spec_data)
    data.setdefault("mapping", {})["mode"] = mode
    data.setdefault("accuracy", {})["estimator"] = "supernet"
    data["accuracy"].pop("cache_dir", None)
    data["accuracy"]["checkpoint"] = str(work / "supernet.pt")
    prep = prepare_experiment(data, out=work / "run")
    acc = obtain_accuracy(prep.spec, prep.splits, prep.layer_names, work / "supernet.pt", progress=False)
    space = prep.genome_space(acc.fixed_layers)
    return space, build_evaluator(prep.spec.to_dict(), space, prep.template, acc.search_estimator, prep.workload)


def same(a: list[dict], b: list[dict]) -> bool:
    """Equal records (``map.*`` may name another mapping of equal cost: ties are broken by
    what the mapper's cache saw before, and each worker's cache sees other candidates)."""
    for x, y in zip(a, b, strict=True):
        for k in set(x) | set(y):
            if k.startswith("map."):
                continue
            u, v = x.get(k), y.get(k)
            if isinstance(u, float) and isinstance(v, float) and math.isnan(u) and math.isnan(v):
                continue
            if u != v:
                return False
    return True


def measure(spec_data: dict, work: Path, mode: str, pop: int, generations: int, workers: int) -> float:
    from jaqmoo.sweep.population import PoolEvaluator

    space, _ = build(spec_data, work, mode)
    pops = [space.decode(space.random(pop, np.random.default_rng(g))) for g in range(generations)]
    _, serial = build(spec_data, work, mode)
    t0 = time.perf_counter()
    ref = [serial.evaluate(p) for p in pops]
    t_serial = time.perf_counter() - t0
    _, inner = build(spec_data, work, mode)
    pooled = PoolEvaluator(inner, workers=workers)
    t0 = time.perf_counter()
    try:
        got = [pooled.evaluate(p) for p in pops]
    finally:
        pooled.close()
    t_pool = time.perf_counter() - t0
    ok = all(same(a, b) for a, b in zip(ref, got, strict=True))
    print(f"{mode:8s}: in-process {t_serial:7.2f} s, pool of {workers} {t_pool:7.2f} s "
          f"({generations} x {pop} candidates; identical metrics: {ok})")
    if not ok:  # outer mode: each worker's mapping-candidate lists depend on what it evaluated before
        print(f"{mode:8s}: WARNING pool and in-process metrics differ")
    return t_serial / t_pool


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default="problems/quickstart.yaml")
    ap.add_argument("--pop", type=int, default=32)
    ap.add_argument("--generations", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work-dir")
    args = ap.parse_args()
    from jaqmoo.commands import set_threads

    set_threads(1)
    spec_data = yaml.safe_load(Path(args.spec).read_text())
    spec_data.pop("output", None)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="population-executor-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    build(spec_data, work, "inner")
    print(f"supernet ready in {time.perf_counter() - t0:.1f} s ({work / 'supernet.pt'})")
    s_sup = measure(spec_data, work, "inner", args.pop, args.generations, args.workers)
    s_out = measure(spec_data, work, "outer", args.pop, args.generations, args.workers)
    print(f"RESULT population_speedup_supernet={s_sup:.3f} population_speedup_outer={s_out:.3f}")


if __name__ == "__main__":
    main()
