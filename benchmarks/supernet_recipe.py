"""The accurate supernet recipe: MobileNetV2 on all of Fashion-MNIST, float and uniform-bit accuracy.

Trains (or resumes, or reads from the cache) the ``recipe`` preset of ``fashion_setup.py``:
a float start on all 54,000 training images (6,000 of the 60,000 held out for validation)
with random crop + flip, then sandwich-rule quantized epochs from it; both cached under
``--work-dir`` by a key hashing every input that changes the weights (recipe, data, seed,
``TRAINING_VERSION``). Then, on the 10,000 test images:

* the float start's accuracy (float policy, its own batch-norm statistics);
* the supernet at every layer's weights and activations at 8, 4, 3 and 2 bits (no layer
  pinned), batch-norm statistics recalibrated per policy on ``--calib-batches`` seeded
  training batches, as every jaqmoo estimate is;
* for context, post-training quantization of the float start at the same bits (MSE-calibrated
  steps, recalibrated batch norms).

``train_seconds`` is the time of the training epochs (float + quantized) as recorded in the
checkpoints' histories, so it adds up across interrupted and resumed runs (per-epoch validation
and the evaluation here excluded). Last line:
``RESULT float_test_acc=.. uniform8_test_acc=.. uniform4_test_acc=.. uniform3_test_acc=.. uniform2_test_acc=.. train_seconds=..``
(accuracies in percent).
"""

from __future__ import annotations

import os
import sys
import time

import fashion_setup
import torch

from jaqmoo.data import load_dataset
from jaqmoo.quant.checkpoints import load_supernet
from jaqmoo.quant.estimators import EvalData, SupernetEstimator
from jaqmoo.quant.policy import FLOAT_BITS
from jaqmoo.quant.supernet import read_checkpoint

REPORT_BITS = (8, 4, 3, 2)


def epoch_seconds(path) -> float:
    """Seconds of the training epochs a checkpoint's history records."""
    return float(sum(r.get("seconds", 0.0) for r in read_checkpoint(path).get("history", [])))


def main(argv: list[str] | None = None) -> int:
    p = fashion_setup.parser(__doc__)
    p.add_argument("--calib-batches", type=int, default=8, help="BN recalibration batches per policy (128 images each)")
    p.add_argument("--test-images", type=int, default=10000)
    p.add_argument("--float-only", action="store_true",
                   help="train (or load) the float start only and report it and its PTQ: the first half of the "
                        "recipe, on its own (RESULT float_test_acc=.. ptq8_test_acc=.. ... float_train_seconds=..)")
    p.set_defaults(preset="recipe")
    args = fashion_setup.parse(p, argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    splits = load_dataset("fashion-mnist", seed=args.seed, max_train=args.max_train)
    print(f"dataset: {splits.describe()}")
    print(f"recipe: {args.model} width {args.width_mult:g}, {args.float_epochs} float epochs (lr {args.lr:g}) + "
          f"{args.epochs} sandwich epochs (quant lr {args.quant_lr}), augment {args.augment}, batch {args.batch_size}, "
          f"n_random {args.n_random}, csq {args.csq_fraction:g}, seed {args.seed}, {args.threads} thread(s); "
          f"cache {fashion_setup.work_path(args, '').parent}")
    start_path = fashion_setup.work_path(args, "float.pt")
    if args.float_only:
        return report_float_start(args, splits, start_path, t0)
    net = fashion_setup.supernet_from_float_start(args, splits, start_path, args.csq_fraction,
                                                  fashion_setup.work_path(args, f"supernet-csq{args.csq_fraction:g}.pt"))
    sup_path = fashion_setup.work_path(args, f"supernet-csq{args.csq_fraction:g}.pt")
    train_seconds = epoch_seconds(sup_path)
    for record in read_checkpoint(sup_path).get("history", []):
        accs = (f"float {record['acc_float'] * 100:.2f} %" if "acc_max_bits" not in record else
                f"max-bits {record['acc_max_bits'] * 100:.2f} %, min-bits {record['acc_min_bits'] * 100:.2f} %")
        print(f"  epoch {record['epoch']:>2} {record['phase']:>9}: loss {record['loss']:.4f}, val {accs} "
              f"({record['seconds']:.0f} s)")
    data = EvalData.from_splits(splits, args.test_images, args.calib_batches, 128, args.seed, args.device, use_test=True)
    start = load_supernet(start_path, device=args.device)
    float_acc = SupernetEstimator(start, data).estimate_one(start.uniform_policy(FLOAT_BITS))
    start.calibrate_steps(data.calib[0])
    ptq = SupernetEstimator(start, data).estimate([start.uniform_policy(b) for b in REPORT_BITS])
    est = SupernetEstimator(net, data)
    sup_float = est.estimate_one(net.uniform_policy(FLOAT_BITS))
    accs = est.estimate([net.uniform_policy(b) for b in REPORT_BITS])
    print(f"\ntest accuracy ({len(data.images)} images), every layer at the uniform bits:")
    print(f"  float start: {float_acc * 100:.2f} %   (supernet's shared weights in float: {sup_float * 100:.2f} %)")
    for b, a, q in zip(REPORT_BITS, accs, ptq, strict=True):
        print(f"  {b}-bit supernet {a * 100:6.2f} %  ({(a - float_acc) * 100:+.2f} points; PTQ of the float start {q * 100:.2f} %)")
    print(f"training epochs {train_seconds:.0f} s (from the checkpoints' histories); this process {time.perf_counter() - t0:.0f} s; "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} (shared machine)")
    print("RESULT " + " ".join([f"float_test_acc={float_acc * 100:.2f}"]
                               + [f"uniform{b}_test_acc={a * 100:.2f}" for b, a in zip(REPORT_BITS, accs, strict=True)]
                               + [f"train_seconds={train_seconds:.0f}"]))
    return 0


def report_float_start(args, splits, start_path, t0: float) -> int:
    """The float start (trained first if missing) and its post-training quantization on the test images."""
    fashion_setup.float_start(args, splits, start_path)
    data = EvalData.from_splits(splits, args.test_images, args.calib_batches, 128, args.seed, args.device, use_test=True)
    start = load_supernet(start_path, device=args.device)
    float_acc = SupernetEstimator(start, data).estimate_one(start.uniform_policy(FLOAT_BITS))
    start.calibrate_steps(data.calib[0])
    ptq = SupernetEstimator(start, data).estimate([start.uniform_policy(b) for b in REPORT_BITS])
    seconds = epoch_seconds(start_path)
    print(f"float start: {float_acc * 100:.2f} % on {len(data.images)} test images; PTQ "
          + ", ".join(f"{b}-bit {q * 100:.2f} %" for b, q in zip(REPORT_BITS, ptq, strict=True))
          + f"; float epochs {seconds:.0f} s; this process {time.perf_counter() - t0:.0f} s; load average "
          + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    print("RESULT " + " ".join([f"float_test_acc={float_acc * 100:.2f}"]
                               + [f"ptq{b}_test_acc={q * 100:.2f}" for b, q in zip(REPORT_BITS, ptq, strict=True)]
                               + [f"float_train_seconds={seconds:.0f}"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
