"""CSQ against the memory-lean LSQ supernet step: training-step memory and ranking fidelity.

Part 1 — memory of one supernet training step (forward + backward), same model, same
batch, same uniform policy, same run, for

* ``float``: no quantization (context);
* ``full``: LSQ written with ordinary autograd ops on every channel (context);
* ``lean``: the package's memory-lean LSQ path on every channel (the baseline);
* ``csq-F``: CSQ at fraction F (0.1, 0.25, 0.5, 1.0): each conv-BN-activation block's
  top-F most sensitive output channels trained quantization-aware, in the fused block of
  :mod:`jaqmoo.quant.csq` that keeps int8 input codes, an int8 rounding residual, a
  bit-packed activation mask and only the trained channels' convolution outputs.

Part 1b — the sandwich step, where supernet training spends its memory: one full sandwich step
(uniform top bits, uniform 2 bits and one level + noise middle, in-place distillation; its peak
is the largest over the sub-steps) with the top at 8 and at 4 bits, for ``lean`` (every channel
on the fused LSQ path), ``csq-0.1`` and ``csq-1`` (CSQ's fused blocks with every channel
trained: is it the selectivity that saves?), with the step's time.

Two measures: ``peak RSS`` — resident-memory growth of a fresh process during the step
(sampled every 0.5 ms plus the kernel high-water mark; includes backward transients and
gradients: the step's real peak, the RESULT's ``peak_memory_ratio_vs_lean``), and
``saved`` — exact bytes autograd keeps for backward (the memory the step holds at the
forward/backward boundary). ``--device cuda`` adds ``torch.cuda.max_memory_allocated``.

Part 2 — fidelity (skipped with ``--memory-only``): from one float-trained start, the lean
supernet (CSQ fraction 0; its values and gradients are those of plain LSQ) and one CSQ
supernet per fraction are trained with identical settings and seeds. All score the same
policies (mixed per-layer bits, stratified over energy) and are compared with the same
independent truth: each policy fine-tuned with full LSQ from the float start
(``fashion_setup.qat_truth``). Kendall tau with a 95 % bootstrap interval per supernet.

Recommended fraction: the smallest whose tau is at least ``tau_lean - 0.05`` (the most
memory saved at that fidelity); if none is, the one with the highest tau. Last line (the
sandwich-step peaks of CSQ 0.1 against lean at 4 and 8 bits and against CSQ 1.0 at 8 bits, then
part 1's ratio and part 2's taus):
``RESULT peak_memory_ratio_vs_lean_4bit=.. peak_memory_ratio_vs_lean_8bit=.. peak_memory_ratio_vs_csq_all_8bit=.. peak_memory_ratio_vs_lean=.. tau_lean=.. tau_csq=.. csq_fraction=..``.

Presets (``tiny``, ``lite``, ``small``, ``full``) are described in ``fashion_setup.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import fashion_setup
import numpy as np
import torch
import torch.nn.functional as F

from jaqmoo.data import load_dataset
from jaqmoo.quant.csq import csq_blocks
from jaqmoo.quant.estimators import EvalData, SupernetEstimator
from jaqmoo.quant.fidelity import bootstrap_kendall_tau
from jaqmoo.quant.memory import (
    cuda_peak_bytes,
    sandwich_saved_peak,
    saved_activation_bytes,
    step_peak_rss_bytes,
)
from jaqmoo.quant.sandwich import sandwich_policies, sandwich_step
from jaqmoo.quant.sensitivity import rank_sensitive_channels
from jaqmoo.quant.supernet import build_supernet
from jaqmoo.quant.train import iterate_batches

MiB = 1024 * 1024
TAU_SLACK = 0.05
#: the sandwich step's configurations: name -> CSQ fraction (0: every channel on the fused LSQ path)
SANDWICH_CONFIGS = {"lean": 0.0, "csq-0.1": 0.1, "csq-1": 1.0}
SANDWICH_TOP_BITS = (8, 4)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = fashion_setup.parser(__doc__)
    p.add_argument("--memory-batch", type=int, default=128, help="batch of the memory measurement")
    p.add_argument("--memory-bits", type=int, default=4, help="uniform bits during the memory measurement")
    p.add_argument("--memory-model", help="model of the memory measurement (default: --model)")
    p.add_argument("--memory-width", type=float, help="its width_mult (default: --width-mult)")
    p.add_argument("--fractions", default="0.1,0.25,0.5,1.0", help="CSQ fractions to measure")
    p.add_argument("--memory-only", action="store_true")
    p.add_argument("--no-rss", action="store_true", help="skip the fresh-process RSS measurement")
    p.add_argument("--no-sandwich", action="store_true", help="skip the sandwich-step measurement (part 1b)")
    args = fashion_setup.parse(p, argv)
    try:
        args.fraction_list = [float(f) for f in args.fractions.split(",")]
    except ValueError:
        p.error(f"--fractions must be comma-separated numbers (got {args.fractions!r})")
    if not args.fraction_list or not all(0.0 < f <= 1.0 for f in args.fraction_list):
        p.error(f"--fractions must lie in (0, 1] (got {args.fractions!r})")
    return args


def memory_configs(fractions: list[float], bits: int) -> dict[str, tuple[float, str, int]]:
    """name -> (csq fraction, LSQ path, uniform bits)."""
    configs = {"float": (0.0, "fused", 32), "full": (0.0, "autograd", bits), "lean": (0.0, "fused", bits)}
    configs.update({f"csq-{f:g}": (f, "fused", bits) for f in fractions})
    return configs


def memory_net(args: argparse.Namespace, splits):
    """The memory measurement's supernet (every bit-width's activation step initialised) and batch."""
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    net = build_supernet(args.memory_model or args.model, splits.num_classes, splits.in_channels, splits.input_size,
                         args.memory_width or args.width_mult, splits.name).to(device)
    net.train()
    gen = torch.Generator().manual_seed(args.seed)
    x, y = next(iterate_batches(splits.train, args.memory_batch, True, gen, device, drop_last=True))
    with torch.no_grad():
        for b in net.bits:
            net.set_policy(net.uniform_policy(b))
            net(x)
    return net, x, y


def measure_sandwich(args: argparse.Namespace, splits) -> dict[tuple[int, str], dict[str, float]]:
    """Part 1b: the peak memory and time of one sandwich step per (top bits, configuration)."""
    net, x, y = memory_net(args, splits)
    results: dict[tuple[int, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for top in SANDWICH_TOP_BITS:
            policies = sandwich_policies(net, np.random.default_rng(args.seed), 1, top_bits=top)
            for name, fraction in SANDWICH_CONFIGS.items():
                net.set_csq_fraction(fraction)
                if fraction > 0:
                    rank_sensitive_channels(net, [(x, y)])
                net.zero_grad(set_to_none=True)
                with csq_blocks(net.model) if fraction > 0 else nullcontext():
                    saved = sandwich_saved_peak(net, policies, lambda: F.cross_entropy(net(x), y))
                    net.zero_grad(set_to_none=True)
                    t0 = time.perf_counter()
                    sandwich_step(net, x, y, len(policies), lambda i, p=policies: net.set_policy(p[i]), distill=True)
                    seconds = time.perf_counter() - t0
                r = results[(top, name)] = {"saved": saved.activation_bytes, "step_seconds": seconds}
                if not args.no_rss:
                    ckpt = net.save(Path(tmp) / f"{name}-{top}.pt")
                    r["rss_peak"] = step_peak_rss_bytes(str(ckpt), args.memory_batch, top, fraction, "fused",
                                                        args.seed, sandwich=True)
    net.set_csq_fraction(0.0)
    return results


def print_sandwich(sw: dict[tuple[int, str], dict[str, float]]) -> None:
    print("\nsandwich step (top bits, 2 bits, one middle; peak over sub-steps)")
    print(f"{'top':>4} {'config':>8} {'peak RSS MiB':>13} {'/ lean':>7} {'saved MiB':>10} {'/ lean':>7} {'step s':>7}")
    for (top, name), r in sw.items():
        lean = sw[(top, "lean")]
        rss = (f"{r['rss_peak'] / MiB:13.1f} {r['rss_peak'] / lean['rss_peak']:7.3f}" if "rss_peak" in r
               else f"{'-':>13} {'-':>7}")
        print(f"{top:>4} {name:>8} {rss} {r['saved'] / MiB:10.1f} {r['saved'] / lean['saved']:7.3f} "
              f"{r['step_seconds']:7.2f}")


def sandwich_ratio(sw: dict[tuple[int, str], dict[str, float]], top: int, over: str) -> float:
    """CSQ 0.1's sandwich-step peak over ``over``'s at ``top`` bits (peak RSS; saved bytes without it)."""
    a, b = sw[(top, "csq-0.1")], sw[(top, over)]
    key = "rss_peak" if "rss_peak" in a else "saved"
    return a[key] / b[key]


def measure_memory(args: argparse.Namespace, splits) -> dict[str, dict[str, float]]:
    """Part 1: one training step's memory in each configuration (see module doc)."""
    device = torch.device(args.device)
    net, x, y = memory_net(args, splits)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (fraction, path, bits) in memory_configs(args.fraction_list, args.memory_bits).items():
            net.set_csq_fraction(fraction)
            net.set_lsq_path(path)
            if fraction > 0:
                rank_sensitive_channels(net, [(x, y)])  # measured sensitivity on this batch (smallest bits)
            net.set_policy(net.uniform_policy(bits))
            net.zero_grad(set_to_none=True)
            with csq_blocks(net.model) if fraction > 0 else nullcontext():
                saved = saved_activation_bytes(net, lambda: F.cross_entropy(net(x), y))
                net.zero_grad(set_to_none=True)
                t0 = time.perf_counter()
                F.cross_entropy(net(x), y).backward()
                seconds = time.perf_counter() - t0
                results[name] = {"saved": saved.total_bytes, "step_seconds": seconds}
                if device.type == "cuda":
                    net.zero_grad(set_to_none=True)
                    results[name]["cuda_peak"] = cuda_peak_bytes(lambda: F.cross_entropy(net(x), y).backward(), device)
            if not args.no_rss:
                ckpt = net.save(Path(tmp) / f"{name}.pt")
                results[name]["rss_peak"] = step_peak_rss_bytes(str(ckpt), args.memory_batch, bits, fraction, path,
                                                                args.seed)
    net.set_lsq_path("fused")
    return results


def print_memory(mem: dict[str, dict[str, float]]) -> None:
    lean = mem["lean"]
    print(f"\n{'config':>9} {'peak RSS MiB':>13} {'/ lean':>7} {'saved MiB':>10} {'/ lean':>7} {'step s':>7}")
    for name, r in mem.items():
        rss = f"{r['rss_peak'] / MiB:13.1f} {r['rss_peak'] / lean['rss_peak']:7.3f}" if "rss_peak" in r else f"{'-':>13} {'-':>7}"
        print(f"{name:>9} {rss} {r['saved'] / MiB:10.1f} {r['saved'] / lean['saved']:7.3f} {r['step_seconds']:7.2f}")
        if "cuda_peak" in r:
            print(f"{'':>9} CUDA peak {r['cuda_peak'] / MiB:.1f} MiB ({r['cuda_peak'] / lean['cuda_peak']:.3f} of lean)")


def memory_ratio(mem: dict[str, dict[str, float]], fraction: float) -> float:
    """Peak-RSS ratio of CSQ at ``fraction`` to the lean step (saved-bytes ratio without RSS)."""
    key = "rss_peak" if "rss_peak" in mem["lean"] else "saved"
    return mem[f"csq-{fraction:g}"][key] / mem["lean"][key]


def recommend(taus: dict[float, float], tau_lean: float, slack: float = TAU_SLACK) -> float:
    """The smallest fraction with tau >= tau_lean - slack; else the fraction with the highest tau."""
    ok = sorted(f for f, t in taus.items() if np.isfinite(t) and t >= tau_lean - slack)
    if ok:
        return ok[0]
    finite = {f: t for f, t in taus.items() if np.isfinite(t)}
    return max(finite, key=finite.get) if finite else max(taus)


def fidelity(args: argparse.Namespace, splits) -> tuple[float, dict[float, float]]:
    """Part 2: tau of the lean supernet and of each CSQ supernet against the float-start QAT truth."""
    t0 = time.perf_counter()
    nets = {0.0: fashion_setup.trained_supernet(args, splits, 0.0)}
    for f in args.fraction_list:
        nets[f] = fashion_setup.trained_supernet(args, splits, f)
    print(f"supernets ready in {time.perf_counter() - t0:.0f} s")
    data = EvalData.from_splits(splits, args.val_images, 2, 128, args.seed, args.device)
    policies, energies = fashion_setup.fidelity_policies(args, nets[0.0])
    print(f"{len(policies)} policies stratified over energy {energies.min() / 1e6:.2f}..{energies.max() / 1e6:.2f} uJ")
    truth = fashion_setup.qat_truth(args, splits, fashion_setup.work_path(args, "float.pt"), policies, data)
    taus = {}
    print(f"\n{'supernet':>9} {'tau':>6} {'95% CI':>15} {'mean |gap| pts':>15}")
    for f, net in nets.items():
        est = SupernetEstimator(net, data).estimate(policies)
        tau, lo, hi = bootstrap_kendall_tau(est, truth, seed=args.seed)
        taus[f] = tau
        name = "lean" if f == 0.0 else f"csq-{f:g}"
        print(f"{name:>9} {tau:6.3f} [{lo:6.3f}, {hi:6.3f}] {np.mean(np.abs(est - truth)) * 100:15.2f}")
    return taus.pop(0.0), taus


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    splits = load_dataset("fashion-mnist", seed=args.seed, max_train=args.max_train)
    print(f"dataset: {splits.describe()}")
    print(f"memory step: {args.memory_model or args.model} width {args.memory_width or args.width_mult}, batch "
          f"{args.memory_batch}, uniform {args.memory_bits}-bit; fidelity: {args.model} width {args.width_mult}")
    mem = measure_memory(args, splits)
    print_memory(mem)
    ratios = {"4bit": float("nan"), "8bit": float("nan"), "all": float("nan")}
    if not args.no_sandwich:
        sw = measure_sandwich(args, splits)
        print_sandwich(sw)
        ratios = {"4bit": sandwich_ratio(sw, 4, "lean"), "8bit": sandwich_ratio(sw, 8, "lean"),
                  "all": sandwich_ratio(sw, 8, "csq-1")}
    tau_lean, taus = float("nan"), {f: float("nan") for f in args.fraction_list}
    if not args.memory_only:
        tau_lean, taus = fidelity(args, splits)
    best = recommend(taus, tau_lean) if not args.memory_only else min(args.fraction_list, key=lambda f: abs(f - 0.25))
    print(f"\nrecommended CSQ fraction {best:g}: memory {memory_ratio(mem, best):.3f} of lean, tau {taus[best]:.3f} "
          f"(lean {tau_lean:.3f}; rule: smallest fraction with tau >= tau_lean - {TAU_SLACK})")
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} (shared machine)")
    print(f"RESULT peak_memory_ratio_vs_lean_4bit={ratios['4bit']:.3f} peak_memory_ratio_vs_lean_8bit={ratios['8bit']:.3f} "
          f"peak_memory_ratio_vs_csq_all_8bit={ratios['all']:.3f} peak_memory_ratio_vs_lean={memory_ratio(mem, best):.3f} "
          f"tau_lean={tau_lean:.3f} tau_csq={taus[best]:.3f} csq_fraction={best:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
