"""CSQ vs full fake-quant: training-step memory and ranking fidelity (issue 3 acceptance).

Part 1 — memory of one training step, same model (MobileNetV2, 28x28 small-input variant,
reduced width), same batch, same policy, same run:

* ``saved for backward``: exact bytes of every distinct tensor storage autograd keeps for
  the backward pass (``torch.autograd.graph.saved_tensors_hooks``), activations and
  parameters; all of it is alive at the forward/backward boundary, where a step's memory
  peaks. This is the ``peak_memory_ratio`` of the RESULT line.
* ``RSS peak``: resident-memory growth of a fresh process during one forward/backward
  (sampled every 0.5 ms plus the kernel high-water mark) — includes allocator effects and
  backward transients; reported as ``rss_peak_ratio``.
* ``CUDA peak`` (``--device cuda``): ``torch.cuda.max_memory_allocated``.

Configurations: ``full`` = standard LSQ fake quantization written with autograd ops on
every channel (the usual QAT implementation); ``csq`` = the top ``--csq-fraction`` most
sensitive channels per layer on the LSQ path (exact LSQ gradients, memory-lean function),
the rest through the straight-through path that stores nothing beyond the layer input.
For context also ``full-lean`` (every channel through the memory-lean LSQ function) and
``float`` (no quantization).

Part 2 — fidelity: one float-trained network (``--float-epochs``) is the common start of a
full-path supernet and a CSQ supernet, trained on with identical settings and seeds
(``--epochs`` quantized sandwich epochs); both score the same random mixed policies and are
compared with the same QAT ground truth: each policy fine-tuned with full LSQ from the
common float start (``--qat-epochs``), which favours neither supernet. Last line:
``RESULT peak_memory_ratio=.. tau_full=.. tau_csq=.. rss_peak_ratio=..``.

Presets (``tiny``, ``small``, ``full``) are described in ``fashion_setup.py``;
``--memory-only`` skips part 2.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import fashion_setup
import numpy as np
import torch
import torch.nn.functional as F

from jaqmoo.data import load_dataset
from jaqmoo.quant.estimators import EvalData, QATEstimator, SupernetEstimator, sample_policies
from jaqmoo.quant.fidelity import compare
from jaqmoo.quant.memory import cuda_peak_bytes, saved_activation_bytes, step_peak_rss_bytes
from jaqmoo.quant.sensitivity import rank_sensitive_channels
from jaqmoo.quant.supernet import build_supernet, load_supernet
from jaqmoo.quant.train import iterate_batches

MiB = 1024 * 1024


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = fashion_setup.parser(__doc__)
    p.add_argument("--memory-batch", type=int, default=128, help="batch of the memory measurement")
    p.add_argument("--memory-bits", type=int, default=4, help="uniform bits during the memory measurement")
    p.add_argument("--float-checkpoint", default="bench_supernet_float.pt",
                   help="the float-trained start both supernets (and the QAT ground truth) begin from")
    p.add_argument("--full-checkpoint", default="bench_supernet_full.pt",
                   help="full-path supernet: reused if complete, resumed if it has fewer epochs")
    p.add_argument("--csq-checkpoint", default="bench_supernet_csq.pt", help="CSQ supernet (same settings)")
    p.add_argument("--memory-only", action="store_true")
    p.add_argument("--no-rss", action="store_true", help="skip the (slower) fresh-process RSS measurement")
    return fashion_setup.parse(p, argv)


def measure_memory(args: argparse.Namespace, splits) -> dict[str, dict[str, float]]:
    """Part 1: one training step's memory in each configuration (see module doc)."""
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    net = build_supernet(args.model, splits.num_classes, splits.in_channels, splits.input_size,
                         args.width_mult, splits.name, csq_fraction=args.csq_fraction).to(device)
    net.train()
    gen = torch.Generator().manual_seed(args.seed)
    x, y = next(iterate_batches(splits.train, args.memory_batch, True, gen, device, drop_last=True))
    net(x)  # initialise the activation steps of the largest config
    rank_sensitive_channels(net, [(x, y)])  # measured sensitivity on this batch (smallest bits)
    net.set_policy(net.uniform_policy(args.memory_bits))
    net(x)
    configs = {"full": (0.0, False, args.memory_bits), "csq": (args.csq_fraction, False, args.memory_bits),
               "full-lean": (0.0, True, args.memory_bits), "float": (0.0, False, 32)}
    results: dict[str, dict[str, float]] = {}
    for name, (fraction, lean, bits) in configs.items():
        net.set_csq_fraction(fraction)
        net.set_lean_lsq(lean)
        net.set_policy(net.uniform_policy(bits))
        net.zero_grad(set_to_none=True)
        saved = saved_activation_bytes(net, lambda: F.cross_entropy(net(x), y))
        net.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        F.cross_entropy(net(x), y).backward()
        seconds = time.perf_counter() - t0
        results[name] = {"saved_activation": saved.activation_bytes, "saved_total": saved.total_bytes,
                         "step_seconds": seconds}
        if device.type == "cuda":
            net.zero_grad(set_to_none=True)
            results[name]["cuda_peak"] = cuda_peak_bytes(lambda: F.cross_entropy(net(x), y).backward(), device)
    net.set_lean_lsq(False)
    if not args.no_rss:
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = net.save(Path(tmp) / "memory.pt")
            for name, (fraction, lean, bits) in configs.items():
                results[name]["rss_peak"] = step_peak_rss_bytes(str(ckpt), args.memory_batch, bits, fraction, lean,
                                                                args.seed)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    splits = load_dataset("fashion-mnist", seed=args.seed, max_train=args.max_train)
    print(f"dataset: {splits.describe()}")
    print(f"model: {args.model} (28x28 small-input variant), width_mult={args.width_mult}; memory step: batch "
          f"{args.memory_batch}, uniform {args.memory_bits}-bit, CSQ fraction {args.csq_fraction}")
    mem = measure_memory(args, splits)
    print(f"\n{'config':>10} {'saved act MiB':>14} {'saved total MiB':>16} {'RSS peak MiB':>13} {'step s':>7}")
    for name, r in mem.items():
        rss = f"{r['rss_peak'] / MiB:13.1f}" if "rss_peak" in r else f"{'-':>13}"
        print(f"{name:>10} {r['saved_activation'] / MiB:14.1f} {r['saved_total'] / MiB:16.1f} {rss} {r['step_seconds']:7.2f}")
        if "cuda_peak" in r:
            print(f"{'':>10} CUDA peak {r['cuda_peak'] / MiB:.1f} MiB")
    ratio = mem["csq"]["saved_total"] / mem["full"]["saved_total"]
    rss_ratio = mem["csq"]["rss_peak"] / mem["full"]["rss_peak"] if "rss_peak" in mem["csq"] else float("nan")
    print(f"CSQ / full: saved for backward {ratio:.3f}, RSS peak {rss_ratio:.3f}; "
          f"CSQ / full-lean saved {mem['csq']['saved_total'] / mem['full-lean']['saved_total']:.3f}")
    if "cuda_peak" in mem["csq"]:
        print(f"CSQ / full CUDA peak {mem['csq']['cuda_peak'] / mem['full']['cuda_peak']:.3f}")

    tau_full = tau_csq = float("nan")
    if not args.memory_only:
        start = fashion_setup.float_start(args, splits, args.float_checkpoint)
        full_net = fashion_setup.supernet_from_float_start(args, splits, start, 0.0, args.full_checkpoint)
        csq_net = fashion_setup.supernet_from_float_start(args, splits, start, args.csq_fraction, args.csq_checkpoint)
        data = EvalData.from_splits(splits, args.val_images, 2, 128, args.seed, args.device)
        policies = sample_policies(full_net, args.policies, np.random.default_rng(args.seed + 1))
        est_full = SupernetEstimator(full_net, data).estimate(policies)
        est_csq = SupernetEstimator(csq_net, data).estimate(policies)
        qat = QATEstimator(load_supernet(start, device=args.device), splits, data, epochs=args.qat_epochs, lr=args.qat_lr, batch_size=args.batch_size,
                           seed=args.seed, device=args.device, progress=not args.quiet)
        truth = qat.estimate(policies)
        f_full, f_csq = compare(policies, est_full, truth, "full"), compare(policies, est_csq, truth, "csq")
        table = f_full.table.copy()
        table["csq"] = est_csq
        for col in ("full", "csq", "qat_truth"):
            table[col] = (table[col] * 100).round(2)
        print("\n" + table[["policy", "mean_w_bits", "mean_a_bits", "full", "csq", "qat_truth"]].to_string(
            index=False, float_format=lambda v: f"{v:.2f}"))
        tau_full, tau_csq = f_full.kendall_tau, f_csq.kendall_tau
        print(f"\nKendall tau vs QAT: full supernet {tau_full:.3f} (mean |gap| {f_full.mean_abs_gap * 100:.2f} pts), "
              f"CSQ supernet {tau_csq:.3f} (mean |gap| {f_csq.mean_abs_gap * 100:.2f} pts); "
              f"CSQ loses {tau_full - tau_csq:+.3f}")
    print(f"RESULT peak_memory_ratio={ratio:.3f} tau_full={tau_full:.3f} tau_csq={tau_csq:.3f} rss_peak_ratio={rss_ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
