"""Accuracy fidelity of the CSQ supernet on Fashion-MNIST (issue 3 acceptance).

Trains (or loads) a bit-switchable MobileNetV2 supernet — torchvision's MobileNetV2 in
jaqmoo's 28x28 small-input variant (stem stride 1), single-channel input, reduced
``width_mult`` — then prints:

* float and uniform 8/6/4/3/2-bit accuracies from the supernet (BN recalibrated);
* for ``--policies`` random mixed policies the supernet estimate, the predictor estimate
  and the QAT ground truth (QATEstimator: fine-tune that policy from the supernet weights
  for ``--qat-epochs`` epochs) side by side, Kendall tau and mean absolute gap;
* seconds per supernet estimate (``--val-images`` images, ``--threads`` threads) and per
  predictor estimate (``--no-qat`` stops after these, for timing on an otherwise idle
  machine with an existing checkpoint).

The supernet starts from a float-trained network (``--float-epochs``, kept beside the
checkpoint) and is then trained ``--epochs`` quantized sandwich epochs. Presets
(``--preset tiny|small|full``) are described in ``fashion_setup.py``.

Every preset value can be overridden on the command line. The last line is
``RESULT kendall_tau=.. mean_abs_gap=.. seconds_per_supernet_estimate=.. seconds_per_predictor_estimate=..``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import fashion_setup
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = fashion_setup.parser(__doc__)
    p.add_argument("--predictor-samples", type=int)
    p.add_argument("--checkpoint", default="bench_supernet_fashion.pt",
                   help="supernet checkpoint: reused if complete (and --retrain is not given); its float "
                        "starting point is kept beside it as CHECKPOINT.float.pt")
    p.add_argument("--json-out", help="write all numbers to this JSON file")
    p.add_argument("--no-qat", action="store_true",
                   help="skip the QAT ground truth (speed figures only; tau and gap print as nan)")
    return fashion_setup.parse(p, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    splits = load_dataset("fashion-mnist", seed=args.seed, max_train=args.max_train)
    print(f"dataset: {splits.describe()}")
    print(f"model: {args.model} (torchvision MobileNetV2, 28x28 small-input variant: stem stride 1), "
          f"width_mult={args.width_mult}, 1 input channel, 10 classes; CSQ fraction {args.csq_fraction}")
    ckpt = Path(args.checkpoint)
    net = fashion_setup.supernet_from_float_start(args, splits, ckpt.with_name(ckpt.name + ".float.pt"),
                                                  args.csq_fraction, ckpt)
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
    print(f"predictor (monotone ridge on bit features) fitted on {args.predictor_samples} supernet samples in {fit_seconds:.0f} s; "
          f"cross-validated fit error vs supernet: MAE {fe['cv_mae'] * 100:.2f} pts, RMSE {fe['cv_rmse'] * 100:.2f} pts, "
          f"tau {fe['cv_kendall_tau']:.3f}")
    print(f"predictor estimate: {sec_pred_single * 1e3:.3f} ms per policy one at a time, "
          f"{sec_pred_batch * 1e6:.1f} us per policy in a batch of 1000")

    if args.no_qat:
        print(f"RESULT kendall_tau=nan mean_abs_gap=nan seconds_per_supernet_estimate={sec_sup:.3f} "
              f"seconds_per_predictor_estimate={sec_pred_single:.6f}")
        return 0
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
