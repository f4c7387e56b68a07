"""Speed of the LSQ fake-quantization paths: the lean autograd function against standard autograd.

Both paths compute the same values and gradients (``tests/test_quant_fakequant.py``); until
this benchmark's round the quantized layers trained with the standard-autograd path
(``lsq_quantize``), now they use the lean function (``lsq_quantize_lean``) by default. Two
measurements, both sides interleaved in one process (same inputs, same thread count, so
machine load hits both alike):

* ``op``: forward + backward of one fake-quantization of a post-ReLU activation tensor
  (``--batch`` x 48 x 28 x 28, unsigned 4 bits, one learnable step);
* ``step``: one sandwich training step (largest + smallest + one random policy, in-place
  distillation) of the MobileNetV2-0.25 supernet on 1 x 28 x 28 inputs at ``--batch``, every
  channel quantized (CSQ fraction 0): what elastic supernets, the lean supernet of
  ``csq_memory.py`` and every QAT fine-tune of the fidelity truths run.

The step's loss and gradients of both paths are compared too. They agree up to float
rounding, with one visible effect: the standard path's straight-through round
(``(round(z) - z).detach() + z``) leaves its codes an ulp off the integers, and at 2 bits such
an ulp occasionally flips a downstream rounding, which moves the whole gradient by about 1 %
(the lean path's codes are exact integers). Median and min/max over ``--reps`` interleaved repetitions. Last line:
``RESULT op_speedup=.. step_seconds_standard=.. step_seconds_lean=.. step_speedup=..``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from jaqmoo.quant.fakequant import lsq_quantize, lsq_quantize_lean
from jaqmoo.quant.supernet import build_supernet
from jaqmoo.quant.train import sandwich_policies, train_step

PATHS = {"standard": False, "lean": True}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--reps", type=int, default=5, help="interleaved repetitions of each measurement")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args()


def spread(times: list[float]) -> str:
    return f"median {statistics.median(times):.3f} s (min {min(times):.3f}, max {max(times):.3f})"


def time_op(batch: int, reps: int) -> dict[str, list[float]]:
    """Forward + backward of one activation fake-quantization per path, interleaved."""
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(batch, 48, 28, 28, generator=gen).relu_()
    up = torch.randn(x0.shape, generator=gen)
    fns = {"standard": lsq_quantize, "lean": lsq_quantize_lean}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps + 1):  # the first round warms up allocator and kernels
        for name, fn in fns.items():
            x = x0.clone().requires_grad_(True)
            s = torch.tensor(0.1, requires_grad=True)
            t0 = time.perf_counter()
            fn(x, s, 0, 15).backward(up)
            times[name].append(time.perf_counter() - t0)
    return {k: v[1:] for k, v in times.items()}


def time_step(batch: int, reps: int) -> tuple[dict[str, list[float]], float, float]:
    """One sandwich step per path, interleaved, from identical weights; returns the times, the
    largest loss difference and the largest relative difference of the whole gradient vector
    (L2 norm; single step-size entries are sums with heavy cancellation, where float rounding
    alone moves them by their own size)."""
    net = build_supernet("mobilenet_v2", 10, 1, 28, 0.25, "fashion-mnist")
    net.train()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    times: dict[str, list[float]] = {k: [] for k in PATHS}
    loss_diff, grad_diff = 0.0, 0.0
    for rep in range(reps + 1):
        losses, grads = {}, {}
        for name, lean in PATHS.items():
            net.load_state_dict(state)
            net.set_lean_lsq(lean)
            net.zero_grad(set_to_none=True)
            policies = sandwich_policies(net, np.random.default_rng(rep), 1)
            torch.manual_seed(rep)  # same dropout masks for both paths
            t0 = time.perf_counter()
            losses[name] = train_step(net, x, y, policies, distill=True)
            times[name].append(time.perf_counter() - t0)
            grads[name] = [p.grad.clone() for p in net.parameters() if p.grad is not None]
        loss_diff = max(loss_diff, abs(losses["standard"] - losses["lean"]))
        a, b = torch.cat([g.flatten() for g in grads["standard"]]), torch.cat([g.flatten() for g in grads["lean"]])
        grad_diff = max(grad_diff, float((a - b).norm() / a.norm()))
    return {k: v[1:] for k, v in times.items()}, loss_diff, grad_diff


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    op = time_op(args.batch, args.reps)
    for name, t in op.items():
        print(f"op   {name:>8}: {spread(t)}  (fake-quant fwd+bwd, {args.batch}x48x28x28, 4 bits)")
    step, loss_diff, grad_diff = time_step(args.batch, args.reps)
    for name, t in step.items():
        print(f"step {name:>8}: {spread(t)}  (MobileNetV2-0.25 sandwich step, batch {args.batch}, {args.threads} thread(s))")
    print(f"paths agree: largest loss difference {loss_diff:.2e}, gradient vectors differ by {grad_diff:.2e} (relative L2)")
    med = {k: statistics.median(v) for k, v in step.items()}
    op_speedup = statistics.median(op["standard"]) / statistics.median(op["lean"])
    print(f"RESULT op_speedup={op_speedup:.2f} step_seconds_standard={med['standard']:.3f} "
          f"step_seconds_lean={med['lean']:.3f} step_speedup={med['standard'] / med['lean']:.2f}")


if __name__ == "__main__":
    main()
