"""Accuracy fidelity of the CSQ supernet on Fashion-MNIST (issue 3 acceptance).

Trains (or loads) a bit-switchable MobileNetV2 supernet — torchvision's MobileNetV2 in
jaqmoo's 28x28 small-input variant (stem stride 1), single-channel input, reduced
``width_mult`` — then prints:

* float and uniform 8/6/4/3/2-bit accuracies from the supernet (BN recalibrated);
* for ``--policies`` random mixed policies the supernet estimate, the predictor estimate
  and the QAT ground truth (QATEstimator: fine-tune that policy from the supernet weights
  for ``--qat-epochs`` epochs) side by side, Kendall tau and mean absolute gap;
* seconds per supernet estimate (``--val-images`` images, ``--threads`` threads) and per
  predictor estimate.

Presets (``--preset``):

* ``tiny``  — seconds-to-minutes smoke run (tiny data, numbers are not meaningful).
* ``small`` — what fits a shared 2-core CPU in ~20-30 minutes: width 0.25, 6,000 training
  images, 3 supernet epochs, 0.5-epoch QAT per policy, 20 policies, 2,000 val images.
* ``full``  — the documented setting: width 0.35, all 54,000 training images,
  15 supernet epochs, 1 QAT epoch per policy, 24 policies, 2,000 val images, 200 predictor
  samples (hours on a CPU; use ``--device cuda``).

Every preset value can be overridden on the command line. The last line is
``RESULT kendall_tau=.. mean_abs_gap=.. seconds_per_supernet_estimate=.. seconds_per_predictor_estimate=..``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from jaqmoo.data import load_dataset
from jaqmoo.quant.estimators import (
    EvalData,
    PredictorEstimator,
    QATEstimator,
    SupernetEstimator,
    sample_policies,
)
from jaqmoo.quant.fidelity import compare, timed_estimates
from jaqmoo.quant.supernet import load_supernet
from jaqmoo.quant.train import TrainConfig, train_supernet

PRESETS = {
    "tiny": dict(width_mult=0.25, max_train=600, epochs=1, n_random=1, qat_epochs=0.2, policies=20,
                 val_images=300, predictor_samples=20, batch_size=64),
    "small": dict(width_mult=0.25, max_train=6000, epochs=3, n_random=1, qat_epochs=0.5, policies=20,
                  val_images=2000, predictor_samples=40, batch_size=128),
    "full": dict(width_mult=0.35, max_train=None, epochs=15, n_random=2, qat_epochs=1.0, policies=24,
                 val_images=2000, predictor_samples=200, batch_size=128),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="small")
    p.add_argument("--model", default="mobilenet_v2")
    p.add_argument("--width-mult", type=float)
    p.add_argument("--max-train", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--n-random", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--csq-fraction", type=float, default=0.25)
    p.add_argument("--qat-epochs", type=float)
    p.add_argument("--qat-lr", type=float, default=5e-4)
    p.add_argument("--policies", type=int)
    p.add_argument("--val-images", type=int)
    p.add_argument("--predictor-samples", type=int)
    p.add_argument("--checkpoint", default="bench_supernet_fashion.pt",
                   help="supernet checkpoint: reused if it exists (and --retrain is not given)")
    p.add_argument("--retrain", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json-out", help="write all numbers to this JSON file")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    splits = load_dataset("fashion-mnist", seed=args.seed, max_train=args.max_train)
    print(f"dataset: {splits.describe()}")
    print(f"model: {args.model} (torchvision MobileNetV2, 28x28 small-input variant: stem stride 1), "
          f"width_mult={args.width_mult}, 1 input channel, 10 classes; CSQ fraction {args.csq_fraction}")
    ckpt = Path(args.checkpoint)
    if args.retrain or not ckpt.is_file():
        cfg = TrainConfig(model=args.model, dataset="fashion-mnist", out=str(ckpt), epochs=args.epochs,
                          batch_size=args.batch_size, lr=args.lr, width_mult=args.width_mult,
                          csq_fraction=args.csq_fraction, n_random=args.n_random, seed=args.seed,
                          device=args.device, progress=not args.quiet)
        t0 = time.perf_counter()
        train_supernet(cfg, splits=splits)
        print(f"supernet trained: {args.epochs} epochs on {len(splits.train)} images in {time.perf_counter() - t0:.0f} s")
    else:
        print(f"supernet reused from {ckpt}")
    net = load_supernet(ckpt, device=args.device)
    data = EvalData.from_splits(splits, args.val_images, 2, 128, args.seed, args.device)
    sup = SupernetEstimator(net, data)

    print(f"\nsupernet accuracy on {len(data.images)} validation images (BN recalibrated on 2x128 train images):")
    uniform = {"float": net.uniform_policy(32)}
    uniform.update({f"{b}-bit": net.uniform_policy(b) for b in (8, 6, 4, 3, 2)})
    uniform_acc = {}
    for name, pol in uniform.items():
        uniform_acc[name] = float(sup.estimate([pol])[0])
        print(f"  {name:>6}: {uniform_acc[name] * 100:6.2f} %")

    rng = np.random.default_rng(args.seed + 1)
    policies = sample_policies(net, args.policies, rng)
    sup.estimate(policies[:1])  # warm-up (allocator, kernels)
    sup_acc, sec_sup = timed_estimates(sup, policies)
    print(f"\nsupernet estimate: {sec_sup:.3f} s per policy ({len(data.images)} images, {args.threads} threads)")

    train_rng = np.random.default_rng(args.seed + 2)
    fit_policies = sample_policies(net, args.predictor_samples, train_rng)
    t0 = time.perf_counter()
    predictor = PredictorEstimator(seed=args.seed).fit(fit_policies, sup.estimate(fit_policies))
    fit_seconds = time.perf_counter() - t0
    pred_acc, sec_pred_single = timed_estimates(predictor, policies)
    many = sample_policies(net, 1000, np.random.default_rng(args.seed + 3))
    t0 = time.perf_counter()
    predictor.estimate(many)
    sec_pred_batch = (time.perf_counter() - t0) / len(many)
    fe = predictor.fit_error
    print(f"predictor (ridge on bit features) fitted on {args.predictor_samples} supernet samples in {fit_seconds:.0f} s; "
          f"cross-validated fit error vs supernet: MAE {fe['cv_mae'] * 100:.2f} pts, RMSE {fe['cv_rmse'] * 100:.2f} pts, "
          f"tau {fe['cv_kendall_tau']:.3f}")
    print(f"predictor estimate: {sec_pred_single * 1e3:.3f} ms per policy one at a time, "
          f"{sec_pred_batch * 1e6:.1f} us per policy in a batch of 1000")

    qat = QATEstimator(net, splits, data, epochs=args.qat_epochs, lr=args.qat_lr, batch_size=args.batch_size,
                       seed=args.seed, device=args.device, progress=not args.quiet)
    t0 = time.perf_counter()
    truth = qat.estimate(policies)
    qat_seconds = time.perf_counter() - t0
    print(f"QAT ground truth: {args.qat_epochs} epoch(s) of fine-tuning per policy from the supernet weights, "
          f"{qat_seconds / len(policies):.0f} s per policy")

    fid = compare(policies, sup_acc, truth, "supernet")
    fid.table["predictor"] = pred_acc
    pred_fid = compare(policies, pred_acc, truth, "predictor")
    table = fid.table[["policy", "mean_w_bits", "mean_a_bits", "supernet", "predictor", "qat_truth"]].copy()
    for col in ("supernet", "predictor", "qat_truth"):
        table[col] = (table[col] * 100).round(2)
    print("\n" + table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"\nsupernet vs QAT: Kendall tau {fid.kendall_tau:.3f}, mean |gap| {fid.mean_abs_gap * 100:.2f} pts")
    print(f"predictor vs QAT: Kendall tau {pred_fid.kendall_tau:.3f}, mean |gap| {pred_fid.mean_abs_gap * 100:.2f} pts")
    print(f"total {time.perf_counter() - t_start:.0f} s")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({
            "args": vars(args), "uniform": uniform_acc, "supernet": sup_acc.tolist(), "predictor": pred_acc.tolist(),
            "qat_truth": truth.tolist(), "kendall_tau": fid.kendall_tau, "mean_abs_gap": fid.mean_abs_gap,
            "predictor_tau": pred_fid.kendall_tau, "predictor_fit_error": fe,
            "seconds_per_supernet_estimate": sec_sup, "seconds_per_predictor_estimate": sec_pred_single,
            "policies": [p.to_dict() for p in policies],
        }, indent=1))
    print(f"RESULT kendall_tau={fid.kendall_tau:.3f} mean_abs_gap={fid.mean_abs_gap:.4f} "
          f"seconds_per_supernet_estimate={sec_sup:.3f} seconds_per_predictor_estimate={sec_pred_single:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
