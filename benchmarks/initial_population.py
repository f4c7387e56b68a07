"""The search's first population: spread over precision levels vs plain uniform genes, same run.

    python benchmarks/initial_population.py [--spec problems/compare-digits.yaml] [--generations 10]

Runs jaqmoo's NSGA-II (the spec's genome, population 64) for seeds 0, 1, 2 twice: with the
spread first population (:class:`jaqmoo.search.algorithms.SeededIntegerSampling` given the bit
genes, the default) and with plain uniformly random genomes (the same sampler without them).
One supernet and one predictor serve all six runs; every front is re-scored by the supernet;
hypervolumes are in one normalisation over all six runs (as ``compare_searchers.py``).
Last line: ``RESULT hv_spread=.. hv_plain=.. hv_spread_std=.. hv_plain_std=..`` (means and
standard deviations over the seeds).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare_searchers as cs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", default=str(ROOT / "problems" / "compare-digits.yaml"))
    p.add_argument("--generations", type=int, default=10)
    p.add_argument("--population", type=int, default=64)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default=str(ROOT / "runs" / "initial-population"))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import jaqmoo.search.session as session
    from jaqmoo.commands import set_threads
    from jaqmoo.experiment import prepare_experiment
    from jaqmoo.experiment.accuracy import obtain_accuracy
    from jaqmoo.experiment.spec import coerce_spec
    from jaqmoo.search.indicators import hv_scale, hypervolume

    set_threads(args.threads)
    out = Path(args.out)
    spec = coerce_spec(args.spec)
    prep = prepare_experiment(spec, out=out / "shared")
    accuracy = obtain_accuracy(spec, prep.splits, prep.layer_names, out / "shared" / "supernet.pt", progress=False)
    spread_algorithm = session.make_algorithm

    def plain_algorithm(name, pop_size, n_obj, seeds=None, level_genes=None):
        return spread_algorithm(name, pop_size, n_obj, seeds)  # the same sampler without the bit genes

    runs = {}
    for arm, factory in (("spread", spread_algorithm), ("plain", plain_algorithm)):
        with mock.patch.object(session, "make_algorithm", factory):
            for seed in args.seeds:
                variant = cs.variant(spec, "jaqmoo", args.population, args.generations, seed, ())
                runs[(arm, seed)] = cs.run_one(variant, out / f"{arm}-s{seed}", accuracy)[0]
    objectives = list(spec.objectives)
    points = {k: cs.scored_points(r) for k, r in runs.items()}
    scale = hv_scale(np.vstack([cs.objective_matrix(d, objectives) for d in points.values() if len(d)]))
    hv = {k: hypervolume(cs.objective_matrix(d, objectives), scale) for k, d in points.items()}
    summary = {}
    for arm in ("spread", "plain"):
        values = np.array([hv[(arm, s)] for s in args.seeds])
        summary[arm] = (values.mean(), values.std())
        print(f"{arm:7s} hypervolume per seed {' / '.join(f'{v:.4f}' for v in values)}  "
              f"mean {values.mean():.4f} std {values.std():.4f}")
    print(f"RESULT hv_spread={summary['spread'][0]:.4f} hv_plain={summary['plain'][0]:.4f} "
          f"hv_spread_std={summary['spread'][1]:.4f} hv_plain_std={summary['plain'][1]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
