"""Speed of one quantized training step against the float step: lean reference, fused LSQ, CSQ.

All paths train the same MobileNetV2-0.25 supernet (Fashion-MNIST shape, 1 x 28 x 28) on the
same batch (``--batch``, 128 by default), from the same weights, interleaved in one process
(each repetition runs every path once, in turn, so machine load hits all alike):

* ``float``: one forward/backward with every layer in float;
* ``lean_ref``: one step at the policy (every layer at ``--bits``) with the lean LSQ function
  on every channel (the previous default, kept as the reference implementation);
* ``lean``: the same step with the fused LSQ function (the layers' default now; same values
  and gradients, ``tests/test_quant_fakequant.py``);
* ``csq``: the same step with CSQ at ``--csq-fraction`` (fused conv-BN-activation blocks,
  only the most sensitive channels trained quantization-aware);

and one sandwich step (largest, smallest and one level + noise middle configuration with
in-place distillation: what supernet training runs per batch) for the three quantized paths.
Medians over ``--reps`` repetitions (after one warm-up), min and max beside them, and the
machine's load average. The lean reference and the fused path are checked to agree (loss and
gradient vector) on every repetition. Last line:
``RESULT step_seconds_float=.. step_seconds_lean_ref=.. step_seconds_lean=.. step_seconds_csq=.. quant_over_float=.. csq_over_lean=..``
(one-policy steps; ``quant_over_float`` = lean / float, ``csq_over_lean`` = csq / lean).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from contextlib import nullcontext

import numpy as np
import torch

from jaqmoo.quant.csq import csq_blocks
from jaqmoo.quant.sandwich import sandwich_policies
from jaqmoo.quant.sensitivity import rank_sensitive_channels
from jaqmoo.quant.supernet import Supernet, build_supernet
from jaqmoo.quant.train import train_step

#: path name -> (LSQ path, CSQ on)
QUANT_PATHS = {"lean_ref": ("lean", False), "lean": ("fused", False), "csq": ("fused", True)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--reps", type=int, default=10, help="interleaved repetitions of each measurement (>= 10)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bits", type=int, default=4, help="uniform bits of the one-policy step")
    p.add_argument("--csq-fraction", type=float, default=0.1)
    p.add_argument("--width-mult", type=float, default=0.25)
    p.add_argument("--no-sandwich", action="store_true", help="time the one-policy steps only")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: elapsed seconds; cpu: the process's CPU seconds (at --threads 1 the time an idle "
                        "core takes, little moved by other jobs on a shared machine)")
    args = p.parse_args(argv)
    if args.reps < 1:
        p.error("--reps must be >= 1")
    return args


def spread(times: list[float]) -> str:
    return f"median {statistics.median(times):.3f} s (min {min(times):.3f}, max {max(times):.3f})"


def prepare(args: argparse.Namespace) -> tuple[Supernet, torch.Tensor, torch.Tensor, dict]:
    """The supernet (activation steps initialised, CSQ channels ranked on the batch), the batch and
    the starting weights every timed step is reset to."""
    torch.manual_seed(0)
    net = build_supernet("mobilenet_v2", 10, 1, 28, args.width_mult, "fashion-mnist")
    net.train()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (args.batch,), generator=gen)
    with torch.no_grad():
        for b in net.bits:  # every bit-width's activation step initialised
            net.set_policy(net.uniform_policy(b))
            net(x)
    net.set_csq_fraction(args.csq_fraction)
    rank_sensitive_channels(net, [(x, y)])
    state = {k: v.clone() for k, v in net.state_dict().items()}
    return net, x, y, state


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def run_step(net: Supernet, x, y, policies, lsq_path: str, csq: bool, fraction: float,
             clock=time.perf_counter) -> tuple[float, float, list]:
    """One timed step (forward/backward of every policy, gradients accumulated): seconds, loss, gradients."""
    net.set_lsq_path(lsq_path)
    net.set_csq_fraction(fraction if csq else 0.0)
    net.zero_grad(set_to_none=True)
    with csq_blocks(net.model) if csq else nullcontext():
        torch.manual_seed(1)  # the same dropout masks on every path
        t0 = clock()
        loss = train_step(net, x, y, policies, distill=True)
        seconds = clock() - t0
    return seconds, loss, [p.grad for p in net.parameters() if p.grad is not None]


def time_paths(args: argparse.Namespace) -> tuple[dict[str, list[float]], float, float]:
    """Interleaved timings of every (path, step kind); the largest loss and relative gradient
    difference between the lean reference and the fused path."""
    net, x, y, state = prepare(args)
    one = [net.uniform_policy(args.bits)]
    kinds = {"step": lambda rep: one}
    if not args.no_sandwich:
        kinds["sandwich"] = lambda rep: sandwich_policies(net, np.random.default_rng(rep), 1)
    times: dict[str, list[float]] = {}
    loss_diff = grad_diff = 0.0
    for rep in range(args.reps + 1):  # repetition 0 warms up allocator and kernels
        net.load_state_dict(state)
        s, _, _ = run_step(net, x, y, [net.uniform_policy(32)], "fused", False, args.csq_fraction,
                             CLOCKS[args.clock])
        if rep:
            times.setdefault("step float", []).append(s)
        for kind, policies in kinds.items():
            out = {}
            for name, (path, csq) in QUANT_PATHS.items():
                net.load_state_dict(state)
                s, loss, grads = run_step(net, x, y, policies(rep), path, csq, args.csq_fraction,
                                                CLOCKS[args.clock])
                out[name] = (loss, torch.cat([g.flatten() for g in grads]))
                if rep:
                    times.setdefault(f"{kind} {name}", []).append(s)
            (la, ga), (lb, gb) = out["lean_ref"], out["lean"]
            loss_diff = max(loss_diff, abs(la - lb))
            grad_diff = max(grad_diff, float((ga - gb).norm() / ga.norm()))
    return times, loss_diff, grad_diff


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    times, loss_diff, grad_diff = time_paths(args)
    load1 = os.getloadavg()
    print(f"MobileNetV2-{args.width_mult:g}, batch {args.batch}, {args.threads} thread(s), {args.reps} interleaved "
          f"repetitions; one-policy step at uniform {args.bits} bits; CSQ fraction {args.csq_fraction:g}; {args.clock} clock")
    for name, t in times.items():
        print(f"{name:>18}: {spread(t)}")
    med = {k: statistics.median(v) for k, v in times.items()}
    for kind in ("step", "sandwich"):
        if f"{kind} lean" in med:
            base = med["step float"]
            print(f"{kind:>8} / float step: " + ", ".join(f"{n} {med[f'{kind} {n}'] / base:.2f}x" for n in QUANT_PATHS))
    print(f"lean reference vs fused: largest loss difference {loss_diff:.2e}, gradient vectors differ by "
          f"{grad_diff:.2e} (relative L2)")
    print(f"load average before {load0[0]:.2f}, after {load1[0]:.2f} (1 min; shared machine); {time.perf_counter() - t0:.0f} s")
    print(f"RESULT step_seconds_float={med['step float']:.3f} step_seconds_lean_ref={med['step lean_ref']:.3f} "
          f"step_seconds_lean={med['step lean']:.3f} step_seconds_csq={med['step csq']:.3f} "
          f"quant_over_float={med['step lean'] / med['step float']:.2f} csq_over_lean={med['step csq'] / med['step lean']:.2f}")


if __name__ == "__main__":
    main()
