"""Accuracy fidelity of the CSQ supernet on Fashion-MNIST against an independent truth.

Trains (or loads, from ``--work-dir``) a bit-switchable supernet (MobileNetV2 in jaqmoo's
28x28 small-input variant, or ``simple_cnn`` with ``--preset lite``) from a float-trained
start, then prints:

* float and uniform 8/6/4/3/2-bit accuracies from the supernet (BN recalibrated);
* for ``--policies`` (>= 40 by preset) mixed per-layer policies — drawn with a per-policy
  bit distribution, near-uniform ones rejected, one per equal-width stratum of the
  policy's energy on the ``eyeriss`` template — the supernet estimate, the predictor
  estimate and the QAT ground truth side by side. The truth is independent of the
  supernet being judged: each policy is fine-tuned with full LSQ from the *float-trained
  start* (never from the supernet), seeded (``fashion_setup.qat_truth``, cached);
* Kendall tau with a 95 % percentile-bootstrap interval (2,000 resamples of the
  policies, seeded) and the mean absolute gap;
* seconds per supernet estimate (``--val-images`` images, ``--threads`` threads) and per
  predictor estimate (``--no-qat`` stops after these).

Presets are described in ``fashion_setup.py``; every preset value can be overridden.
Last line: ``RESULT kendall_tau=.. tau_ci_low=.. tau_ci_high=.. mean_abs_gap=..
seconds_per_supernet_estimate=.. seconds_per_predictor_estimate=..``.
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
from jaqmoo.quant.estimators import EvalData, PredictorEstimator, SupernetEstimator, sample_policies
from jaqmoo.quant.fidelity import bootstrap_kendall_tau, compare, timed_estimates


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = fashion_setup.parser(__doc__)
    p.add_argument("--predictor-samples", type=int)
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
    print(f"model: {args.model} (28x28 input; MobileNetV2 in its small-input variant: stem stride 1), "
          f"width_mult={args.width_mult}, 1 input channel, 10 classes; CSQ fraction {args.csq_fraction}")
    net = fashion_setup.trained_supernet(args, splits, args.csq_fraction)
    data = EvalData.from_splits(splits, args.val_images, 2, 128, args.seed, args.device)
    sup = SupernetEstimator(net, data)

    print(f"\nsupernet accuracy on {len(data.images)} validation images (BN recalibrated on 2x128 train images):")
    uniform = {"float": net.uniform_policy(32)}
    uniform.update({f"{b}-bit": net.uniform_policy(b) for b in (8, 6, 4, 3, 2)})
    uniform_acc = {}
    for name, pol in uniform.items():
        uniform_acc[name] = float(sup.estimate([pol])[0])
        print(f"  {name:>6}: {uniform_acc[name] * 100:6.2f} %")

    policies, energies = fashion_setup.fidelity_policies(args, net)
    print(f"\n{len(policies)} mixed policies, one per energy stratum of {energies.min() / 1e6:.2f}.."
          f"{energies.max() / 1e6:.2f} uJ (eyeriss)")
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
        print(f"RESULT kendall_tau=nan tau_ci_low=nan tau_ci_high=nan mean_abs_gap=nan "
              f"seconds_per_supernet_estimate={sec_sup:.3f} "
              f"seconds_per_predictor_estimate={sec_pred_single:.6f}")
        return 0
    t0 = time.perf_counter()
    truth = fashion_setup.qat_truth(args, splits, fashion_setup.work_path(args, "float.pt"), policies, data)
    print(f"QAT ground truth ({args.qat_epochs} epoch(s) of full-LSQ fine-tuning per policy from the float-trained "
          f"start, seed {args.seed}) ready in {time.perf_counter() - t0:.0f} s")

    fid = compare(policies, sup_acc, truth, "supernet")
    fid.table["predictor"] = pred_acc
    fid.table["energy_uj"] = energies / 1e6
    tau, lo, hi = bootstrap_kendall_tau(sup_acc, truth, seed=args.seed)
    pred_fid = compare(policies, pred_acc, truth, "predictor")
    table = fid.table[["policy", "energy_uj", "mean_w_bits", "mean_a_bits", "supernet", "predictor", "qat_truth"]].copy()
    for col in ("supernet", "predictor", "qat_truth"):
        table[col] = (table[col] * 100).round(2)
    print("\n" + table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"\nsupernet vs QAT: Kendall tau {tau:.3f} (95 % bootstrap CI {lo:.3f}..{hi:.3f}), "
          f"mean |gap| {fid.mean_abs_gap * 100:.2f} pts")
    print(f"predictor vs QAT: Kendall tau {pred_fid.kendall_tau:.3f}, mean |gap| {pred_fid.mean_abs_gap * 100:.2f} pts")
    print(f"total {time.perf_counter() - t_start:.0f} s")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({
            "args": vars(args), "uniform": uniform_acc, "supernet": sup_acc.tolist(), "predictor": pred_acc.tolist(),
            "qat_truth": truth.tolist(), "energy_pj": energies.tolist(), "kendall_tau": tau, "tau_ci": [lo, hi],
            "mean_abs_gap": fid.mean_abs_gap,
            "predictor_tau": pred_fid.kendall_tau, "predictor_fit_error": fe,
            "seconds_per_supernet_estimate": sec_sup, "seconds_per_predictor_estimate": sec_pred_single,
            "policies": [p.to_dict() for p in policies],
        }, indent=1))
    print(f"RESULT kendall_tau={tau:.3f} tau_ci_low={lo:.3f} tau_ci_high={hi:.3f} mean_abs_gap={fid.mean_abs_gap:.4f} "
          f"seconds_per_supernet_estimate={sec_sup:.3f} seconds_per_predictor_estimate={sec_pred_single:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
