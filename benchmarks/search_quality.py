"""Search quality: energy and memory of ONE front point against uniform 8-bit at honest accuracy.

Runs an experiment spec (default ``problems/mobilenetv2-eyeriss.yaml``; ``--spec
benchmarks/specs/search_quality_lite.yaml`` is a 2-core-CPU-sized one), then:

1. re-scores uniform 8-bit and every front point with the supernet on ``--val-images``
   validation images (>= 5,000; never the test split) and on the WHOLE test split (10,000
   images for Fashion-MNIST), the same batch-norm recalibration batches for all of them;
2. for each front point prints both accuracies, drop, energy ratio and memory ratio together
   (both ratios: uniform 8-bit on the same hardware / the point, with the run's cost model);
3. picks ONE point on the VALIDATION accuracies: the largest energy ratio among points whose
   validation accuracy is at most ``--tolerance`` (0.5 points) below uniform 8-bit's; its
   energy and memory ratios and its TEST accuracy drop are the RESULT's (never two best-of
   ratios from two points, never a choice made on the images it is reported on). When no
   point qualifies every figure is ``nan`` (never uniform 8-bit's own 1.000);
4. trains that point's policy and uniform 8-bit with the converged QAT truth
   (``jaqmoo.quant.truth.ConvergedTruth``: ``--qat-steps`` of full LSQ from the same
   float-trained start, cosine schedule fixed in advance, same seed, cached under
   ``--truth-cache``) and reports both test accuracies: the papers' "no accuracy loss".

Last line: ``RESULT energy_ratio_vs_8bit=.. memory_ratio_vs_8bit=.. accuracy_drop_points=..
qat_accuracy_drop_points=.. seconds=..`` (seconds: the search run including supernet
training/loading, predictor fitting and its re-scoring; re-scoring and the QAT truths are
timed separately above it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def hardware_of(row: pd.Series) -> dict[str, int]:
    return {c[3:]: int(row[c]) for c in row.index if c.startswith("hw.") and pd.notna(row[c])}


def policy_of(row: pd.Series, names: list[str]):
    from jaqmoo.quant.policy import QuantPolicy

    return QuantPolicy(tuple(names), tuple(int(row[f"w.{n}"]) for n in names), tuple(int(row[f"a.{n}"]) for n in names))


def uniform8_cost(run, row: pd.Series, b8: pd.Series, cache: dict) -> tuple[float, float]:
    """(energy, memory) of uniform 8-bit on ``row``'s hardware, with the run's own cost model."""
    from jaqmoo.cost import network_cost
    from jaqmoo.hardware.templates import get_template
    from jaqmoo.mapping.mapper import Mapper
    from jaqmoo.models import model_workload

    hw = hardware_of(row)
    if hw == hardware_of(b8):
        return float(b8["energy_pj"]), float(b8["memory_bits"])
    key = tuple(sorted(hw.items()))
    if key not in cache:
        meta = run.meta
        spec = meta["spec"]
        wl = model_workload(spec["model"]["name"], tuple(meta["input_shape"]), meta["num_classes"],
                            spec["model"]["width_mult"])
        accel = get_template(meta["template"]).build(**hw)
        metric = spec["mapping"]["metric"]
        cost = network_cost(wl, accel, policy_of(b8, run.layer_names), metric=metric,
                            mapper=cache.setdefault("_mapper", Mapper(metric=metric)))
        cache[key] = (cost.energy_pj, float(cost.memory_bits))
    return cache[key]


def pick_point(table: pd.DataFrame, acc8: float, tolerance: float) -> pd.Series | None:
    """The row with the largest ``energy_ratio`` among rows whose ``accuracy`` is at most
    ``tolerance`` below ``acc8`` (ties: the more accurate); None when no row qualifies.

    Both ratios of the result come from this one row.
    """
    ok = table[table["accuracy"] >= acc8 - tolerance - 1e-12]
    if ok.empty:
        return None
    return ok.sort_values(["energy_ratio", "accuracy"], ascending=[False, False]).iloc[0]


def headline(table: pd.DataFrame, acc8_val: float, acc8_test: float, tolerance: float) -> dict[str, float]:
    """The RESULT figures of the point :func:`pick_point` selects on ``table``'s validation
    ``accuracy`` (its ``test_accuracy`` gives the reported drop, in points); every figure is
    nan when no point qualifies, and ``point`` is then -1."""
    best = pick_point(table, acc8_val, tolerance) if len(table) else None
    if best is None:
        return {"point": -1, "energy_ratio": float("nan"), "memory_ratio": float("nan"),
                "drop_points": float("nan"), "val_drop_points": float("nan")}
    return {"point": int(best["point"]), "energy_ratio": float(best["energy_ratio"]),
            "memory_ratio": float(best["memory_ratio"]),
            "drop_points": (acc8_test - float(best["test_accuracy"])) * 100,
            "val_drop_points": (acc8_val - float(best["accuracy"])) * 100}


def result_line(figures: dict[str, float], qat_drop: float, seconds: float) -> str:
    """The benchmark's last line (nan where nothing qualified or the QAT check did not run)."""
    return (f"RESULT energy_ratio_vs_8bit={figures['energy_ratio']:.3f} "
            f"memory_ratio_vs_8bit={figures['memory_ratio']:.3f} accuracy_drop_points={figures['drop_points']:.2f} "
            f"qat_accuracy_drop_points={qat_drop:.2f} seconds={seconds:.1f}")


def float_start(prep, path: Path, float_epochs: int, progress: bool) -> Path:
    """A float-trained start with the spec's training settings (cached at ``path``)."""
    from jaqmoo.experiment.accuracy import first_last_bits, supernet_bits, train_kwargs
    from jaqmoo.quant.supernet import checkpoint_epochs
    from jaqmoo.quant.train import TrainConfig, train_supernet

    spec = prep.spec
    if checkpoint_epochs(path) >= float_epochs:
        return path
    kw = {k: v for k, v in train_kwargs(spec).items() if k not in ("epochs", "float_epochs", "csq_fraction")}
    cfg = TrainConfig(model=spec.model.name, dataset=prep.splits.name, out=str(path), width_mult=spec.model.width_mult,
                      bits=supernet_bits(spec), fixed_first_last=first_last_bits(spec), seed=spec.seed, progress=progress,
                      data_root=spec.dataset.root, input_size=spec.dataset.input_size, epochs=0,
                      float_epochs=float_epochs, **kw)
    splits = prep.splits
    if cfg.max_train is not None:
        from jaqmoo.data import load_dataset

        splits = load_dataset(spec.dataset.name, root=spec.dataset.root, seed=spec.dataset.split_seed,
                              input_size=spec.dataset.input_size, max_train=cfg.max_train)
    train_supernet(cfg, splits=splits)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", default=str(ROOT / "problems" / "mobilenetv2-eyeriss.yaml"))
    p.add_argument("--out", default=None, help="run directory (default: runs/bench-<spec name>)")
    p.add_argument("--generations", type=int)
    p.add_argument("--pop", type=int)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--tolerance", type=float, default=0.005, help="accuracy drop allowed vs uniform 8-bit (fraction)")
    p.add_argument("--val-images", type=int, default=None,
                   help="validation images the point is selected on (>= 5000; default: the whole split)")
    p.add_argument("--test-images", type=int, default=None, help="test images accuracies are reported on "
                                                                  "(default: all)")
    p.add_argument("--qat-steps", type=int, default=800, help="budget of both QAT truths in optimizer steps "
                                                             "(the converged budget of accuracy_fidelity)")
    p.add_argument("--qat-lr", type=float, default=1e-3)
    p.add_argument("--truth-cache", default=str(ROOT / "bench_cache" / "truth"), help="QAT truth cache directory")
    p.add_argument("--float-epochs", type=int, default=None,
                   help="epochs of the float start the fine-tunes begin from (default: the spec's, else 3)")
    p.add_argument("--float-start", help="a float-trained checkpoint to fine-tune from (default: train one "
                                         "with the spec's settings, cached in the run directory)")
    p.add_argument("--no-qat", action="store_true", help="skip step 4 (qat_accuracy_drop_points=nan)")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.val_images is not None and args.val_images < 5000:
        p.error("--val-images must be >= 5000 (the point is selected on them; fewer make the 0.5-point "
                "tolerance noise)")

    import torch

    from jaqmoo.experiment import prepare_experiment, run_experiment
    from jaqmoo.quant.checkpoints import load_supernet
    from jaqmoo.quant.estimators import EvalData, SupernetEstimator
    from jaqmoo.quant.truth import ConvergedTruth, TruthRecipe

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    out = args.out or str(ROOT / "runs" / f"bench-{Path(args.spec).stem}")
    result = run_experiment(args.spec, out=out, resume=args.resume, generations=args.generations,
                            population=args.pop, progress=sys.stderr.isatty())
    seconds = time.perf_counter() - t0
    run = result.run
    prep = prepare_experiment(args.spec, out)
    spec = prep.spec
    print(f"spec: {args.spec}; run: {out}")
    print("time: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items()))

    # 1. re-score on validation (selection) and test (report), same recalibration for every policy
    t1 = time.perf_counter()
    from jaqmoo.experiment.accuracy import supernet_path

    ckpt = supernet_path(spec, prep.splits, Path(out) / "supernet.pt")
    net = load_supernet(ckpt, expect_model=spec.model.name)
    n_val = args.val_images or len(prep.splits.val)
    if n_val > len(prep.splits.val) or len(prep.splits.val) < 5000:
        raise SystemExit(f"the validation split has {len(prep.splits.val)} images; the selection needs >= 5000 "
                         "(lower --val-images to at most that, or use a dataset with a larger validation split)")
    val = EvalData.from_splits(prep.splits, n_val, 2, 128, spec.seed, "cpu")
    data = EvalData.from_splits(prep.splits, args.test_images or len(prep.splits.test), 2, 128, spec.seed, "cpu",
                                use_test=True)
    sup_val, sup = SupernetEstimator(net, val), SupernetEstimator(net, data)
    names = run.layer_names
    base = run.baselines
    b8 = base[base["baseline"] == "uniform 8-bit"].iloc[0]
    front = run.front.reset_index(drop=True)
    policies = [policy_of(r, names) for _, r in front.iterrows()]
    acc8_val = float(sup_val.estimate([policy_of(b8, names)])[0])
    acc8 = float(sup.estimate([policy_of(b8, names)])[0])
    acc_val = sup_val.estimate(policies)
    acc = sup.estimate(policies)
    rescore_s = time.perf_counter() - t1
    print(f"re-scored uniform 8-bit and {len(front)} front points on {len(val.images)} validation and "
          f"{len(data.images)} test images (BN recalibrated on the same 2x128 training images) in {rescore_s:.0f} s")
    print(f"uniform 8-bit: validation accuracy {acc8_val * 100:.2f} %, test accuracy {acc8 * 100:.2f} %, "
          f"energy {b8['energy_pj']:.4g} pJ, memory {b8['memory_bits'] / 8192:.1f} KiB")

    # 2. accuracy, energy ratio and memory ratio of every front point together
    cache: dict = {}
    rows = []
    for i, r in front.iterrows():
        e8, m8 = uniform8_cost(run, r, b8, cache)
        rows.append({"point": i, "accuracy": float(acc_val[i]), "test_accuracy": float(acc[i]),
                     "val_drop_points": (acc8_val - acc_val[i]) * 100, "test_drop_points": (acc8 - acc[i]) * 100,
                     "energy_ratio": e8 / r["energy_pj"], "memory_ratio": m8 / r["memory_bits"],
                     "mean_w_bits": np.mean(policies[i].weight_bits), "mean_a_bits": np.mean(policies[i].act_bits),
                     **hardware_of(r)})
    table = pd.DataFrame(rows)
    if len(table):
        table["within"] = table["accuracy"] >= acc8_val - args.tolerance - 1e-12
    print(f"front: {len(front)} points, {int(table['within'].sum()) if len(table) else 0} within "
          f"{args.tolerance * 100:.2f} points of uniform 8-bit on validation; every point with both ratios "
          "(accuracy: validation, test_accuracy: test):")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.sort_values("energy_ratio", ascending=False).to_string(
            index=False, float_format=lambda v: f"{v:.3f}") if len(table) else "  (none)")

    # 3. one point, selected on validation, reported on test
    figures = headline(table, acc8_val, acc8, args.tolerance)
    if figures["point"] < 0:
        print("no front point is within the tolerance on validation: every figure is nan")
    else:
        point_policy = policies[figures["point"]]
        print(f"chosen point {figures['point']} (on validation: drop {figures['val_drop_points']:.2f} pts): "
              f"test drop {figures['drop_points']:.2f} pts, energy ratio {figures['energy_ratio']:.3f}, "
              f"memory ratio {figures['memory_ratio']:.3f}")

    # 4. QAT truth of that point and of uniform 8-bit: same budget, same float start, same seed
    qat_drop = float("nan")
    if not args.no_qat and figures["point"] >= 0:
        t2 = time.perf_counter()
        epochs = args.float_epochs if args.float_epochs is not None else \
            int(spec.accuracy.train_kwargs.get("float_epochs", 0) or 3)
        start = Path(args.float_start) if args.float_start else \
            float_start(prep, Path(out) / f"qat-float-start-f{epochs}.pt", epochs, sys.stderr.isatty())
        start_net = load_supernet(start, expect_model=spec.model.name)
        train_splits = prep.splits
        max_train = spec.accuracy.train_kwargs.get("max_train")
        if max_train is not None:
            from jaqmoo.data import load_dataset

            train_splits = load_dataset(spec.dataset.name, root=spec.dataset.root, seed=spec.dataset.split_seed,
                                        input_size=spec.dataset.input_size, max_train=max_train)
        recipe = TruthRecipe(steps=args.qat_steps, lr=args.qat_lr,
                             batch_size=int(spec.accuracy.train_kwargs.get("batch_size", 128)))
        truth = ConvergedTruth(start, train_splits.train, data.images, data.labels, recipe, args.truth_cache)
        q8, qp = truth.accuracies([start_net.apply_rules(policy_of(b8, names)), start_net.apply_rules(point_policy)],
                                  spec.seed)
        qat_drop = (q8 - qp) * 100
        print(f"QAT truth ({recipe.steps} steps of {len(train_splits.train)} images, lr {recipe.lr:g}, "
              f"from the float start {start}, {time.perf_counter() - t2:.0f} s): uniform 8-bit {q8 * 100:.2f} %, "
              f"chosen point {qp * 100:.2f} % (drop {qat_drop:.2f} pts)")
    print(result_line(figures, qat_drop, seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
