"""Accuracy predictor fitted on the old vs the new training-sample draw, judged where the search looks.

    python benchmarks/predictor_sampling.py --spec problems/jaq-mobilenetv2-eyeriss.yaml \\
        --checkpoint runs/cache/mobilenet_v2-elastic-fashion-mnist-a3c5f9052adf.pt --fit 60 --heldout 40

On one supernet checkpoint (read only; its identity is checked against the spec), the spec's
predictor (an :class:`~jaqmoo.quant.elastic_estimators.ArchPredictor` for a ``model.elastic``
spec, else the monotone :class:`~jaqmoo.quant.estimators.PredictorEstimator`) is fitted twice
from the same budget of ``--fit`` supernet-scored samples and the same seed:

* ``old``: the draw the package used before (kept here as the comparison arm): half the
  policies draw every layer's bits independently and uniformly, half move each layer at most
  one candidate from a per-policy level; architectures uniformly random after the largest and
  the smallest;
* ``new``: :func:`jaqmoo.quant.estimators.sample_policies` /
  :func:`jaqmoo.experiment.elastic.sample_pairs` as the package now draws them (uniform
  anchors, then level + noise bits as the search's first population draws them; architectures
  spread over sizes).

Both are scored against the supernet on the SAME ``--heldout`` samples, drawn exactly as the
search's first population draws its random genomes (:class:`~jaqmoo.search.algorithms.SeededIntegerSampling`
on the spec's genome: a level per genome over the bit genes plus noise, architecture and
hardware genes uniform; seeded independently of both fit sets). Every supernet score uses the
spec's ``accuracy.val_images`` validation images with BN recalibrated per sample, as the search
does. Printed per arm: the fit set's accuracy spread, the cross-validated fit error, Kendall tau
(with a 95 % bootstrap interval over the held-out samples) and MAE vs the supernet on the
held-out set, and the prediction for the largest network at the top bits; every supernet score is
saved to ``<--out>/scores.json`` (plain data: policies and architectures as mappings). Last line:
``RESULT tau_old=.. tau_new=.. mae_old=.. mae_new=..`` (MAE in accuracy points).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def old_sample_policies(supernet, n: int, rng: np.random.Generator, choices) -> list:
    """The draw ``sample_policies`` made before (the comparison arm)."""
    from jaqmoo.quant.policy import QuantPolicy

    choices = sorted(int(b) for b in choices)
    names = supernet.layer_names
    out = []
    for i in range(n):
        if i % 2 == 0:
            out.append(supernet.random_policy(rng, choices))
            continue
        level = int(rng.integers(len(choices)))
        w = np.clip(level + rng.integers(-1, 2, len(names)), 0, len(choices) - 1)
        a = np.clip(level + rng.integers(-1, 2, len(names)), 0, len(choices) - 1)
        out.append(supernet.apply_rules(QuantPolicy(names, tuple(choices[j] for j in w),
                                                    tuple(choices[j] for j in a), 8)))
    return out


def old_sample_pairs(supernet, n: int, rng: np.random.Generator, choices) -> list:
    """The (architecture, bits) draw ``sample_pairs`` made before (the comparison arm)."""
    space = supernet.space
    archs = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(max(0, n - 2))]
    return list(zip(archs[:n], old_sample_policies(supernet, n, rng, choices), strict=True))


class _Bounds:
    """The part of a pymoo Problem that SeededIntegerSampling reads."""

    def __init__(self, upper: np.ndarray) -> None:
        self.n_var = len(upper)
        self.upper = np.asarray(upper)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(self.n_var), self.upper.astype(float)


def search_population(genome, n: int, seed: int) -> list:
    """``n`` random genomes of the search's first population (no uniform seeds), decoded."""
    from jaqmoo.search.algorithms import SeededIntegerSampling

    X = SeededIntegerSampling(None, genome.level_genes)._do(_Bounds(genome.upper_bounds), n,
                                                             random_state=np.random.default_rng(seed))
    return genome.decode(X)


def describe(name: str, acc: np.ndarray) -> str:
    q = np.percentile(acc * 100, [0, 25, 50, 75, 100])
    return (f"{name:>8}: n={len(acc):3d}  accuracy % min/q1/median/q3/max "
            f"{' / '.join(f'{v:5.1f}' for v in q)}  below 20 %: {np.mean(acc < 0.2) * 100:4.0f} % of samples")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", default=str(ROOT / "problems" / "jaq-mobilenetv2-eyeriss.yaml"))
    p.add_argument("--checkpoint", required=True, help="the supernet checkpoint (read only)")
    p.add_argument("--fit", type=int, default=60, help="supernet-scored samples per arm")
    p.add_argument("--heldout", type=int, default=40, help="held-out samples, drawn as the search's population")
    p.add_argument("--seed", type=int, default=None, help="fit seed (default: the spec's seed)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "runs" / "predictor-sampling"))
    args = p.parse_args(argv)
    if args.fit < 5 or args.heldout < 3:
        p.error("--fit must be >= 5 and --heldout >= 3")

    from jaqmoo.commands import set_threads
    from jaqmoo.experiment import prepare_experiment
    from jaqmoo.experiment.accuracy import check_identity, supernet_bits
    from jaqmoo.experiment.caches import CachedEstimator
    from jaqmoo.experiment.spec import coerce_spec
    from jaqmoo.quant.estimators import (
        EvalData,
        PredictorEstimator,
        SupernetEstimator,
        sample_policies,
    )
    from jaqmoo.quant.fidelity import bootstrap_kendall_tau

    set_threads(args.threads)
    t_start = time.perf_counter()
    spec = coerce_spec(args.spec)
    seed = spec.seed if args.seed is None else args.seed
    prep = prepare_experiment(spec, out=args.out)
    ckpt = Path(args.checkpoint).expanduser()
    check_identity(spec, prep.splits, ckpt)
    choices = supernet_bits(spec)
    data = EvalData.from_splits(prep.splits, spec.accuracy.val_images, seed=spec.seed)
    elastic = prep.elastic is not None
    if elastic:
        from jaqmoo.experiment.caches import NoGradPairs, PairCache
        from jaqmoo.experiment.elastic import sample_pairs
        from jaqmoo.quant.elastic import load_elastic_supernet
        from jaqmoo.quant.elastic_estimators import ArchPredictor, ElasticSupernetEstimator

        net = load_elastic_supernet(ckpt, expect_space=prep.elastic)
        truth = PairCache(NoGradPairs(ElasticSupernetEstimator(net, data)), prep.elastic, net.active_layer_names)
        score = truth.estimate_pairs
        draws = {"old": old_sample_pairs, "new": sample_pairs}

        def fit(samples, acc):
            return ArchPredictor(net, seed).fit(samples, acc, folds=5)

        def predict(model, samples):
            return model.estimate_pairs(samples)

        top = (prep.elastic.largest(), net.uniform_policy(max(choices)))
    else:
        from jaqmoo.quant.checkpoints import load_supernet

        net = load_supernet(ckpt, expect_model=spec.model.name)
        truth = CachedEstimator(SupernetEstimator(net, data))
        score = truth.estimate
        draws = {"old": old_sample_policies, "new": sample_policies}

        def fit(samples, acc):
            return PredictorEstimator("monotone", seed).fit(samples, acc)

        def predict(model, samples):
            return model.estimate(samples)

        top = net.uniform_policy(max(choices))
    genome = prep.search_space({i: (b, b) for i, b in net.fixed_layers().items()})
    print(f"supernet {ckpt.name}: {'elastic ' if elastic else ''}{spec.model.name}, bits {list(choices)}, "
          f"{len(data.images)} validation images, {args.threads} thread(s)")

    t0 = time.perf_counter()
    held = search_population(genome, args.heldout, seed + 1000)
    held = [(c.arch, c.full_policy) for c in held] if elastic else [c.policy for c in held]
    held_acc = np.asarray(score(held), dtype=float)
    per_eval = (time.perf_counter() - t0) / len(held)
    print(f"held-out: {len(held)} samples drawn as the search's first population (seed {seed + 1000}); "
          f"{per_eval:.2f} s per supernet score")
    print(describe("held-out", held_acc))
    top_acc = float(np.asarray(score([top]), dtype=float)[0])

    results, fit_sets = {}, {}
    for arm, draw in draws.items():
        samples = draw(net, args.fit, np.random.default_rng(seed), choices)
        acc = np.asarray(score(samples), dtype=float)
        fit_sets[arm] = (samples, acc)
        model = fit(samples, acc)
        pred = np.asarray(predict(model, held), dtype=float)
        tau, lo, hi = bootstrap_kendall_tau(pred, held_acc, seed=seed)
        mae = float(np.mean(np.abs(pred - held_acc)) * 100)
        top_pred = float(np.asarray(predict(model, [top]), dtype=float)[0])
        fe = model.fit_error
        results[arm] = (tau, mae)
        print(f"\n[{arm}] {len(samples)} fit samples, seed {seed}")
        print(describe("fit set", acc))
        print(f"  cross-validated on its own fit set: MAE {fe['cv_mae'] * 100:.2f} pts, tau {fe['cv_kendall_tau']:.3f}")
        print(f"  on the held-out set vs the supernet: Kendall tau {tau:.3f} (95 % bootstrap {lo:.3f}..{hi:.3f}), "
              f"MAE {mae:.2f} pts")
        print(f"  {'largest network' if elastic else 'uniform'} at {max(choices)} bits: predicted {top_pred * 100:.1f} %, "
              f"supernet {top_acc * 100:.1f} %")
    scores = Path(args.out) / "scores.json"  # every supernet score, to refit other predictors without the supernet
    scores.parent.mkdir(parents=True, exist_ok=True)
    scores.write_text(json.dumps({"checkpoint": str(ckpt), "held_out": held, "held_out_accuracy": held_acc,
                                  "fit": fit_sets, "top": (top, top_acc)}, default=_plain_data))
    print(f"\nscores saved to {scores}; {len(held) + 2 * args.fit} sample slots, "
          f"{truth.calls} distinct supernet scores, "
          f"{time.perf_counter() - t_start:.0f} s in all")
    (tau_old, mae_old), (tau_new, mae_new) = results["old"], results["new"]
    print(f"RESULT tau_old={tau_old:.3f} tau_new={tau_new:.3f} mae_old={mae_old:.2f} mae_new={mae_new:.2f}")
    return 0


def _plain_data(obj):
    """JSON form of what ``scores.json`` holds (policies, architectures, numpy values)."""
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot store a {type(obj).__name__} in scores.json")


if __name__ == "__main__":
    sys.exit(main())
