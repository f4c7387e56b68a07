"""Measure the memory a training step keeps for backward.

:func:`saved_activation_bytes` counts, exactly and on any device, the bytes of every
distinct tensor storage that autograd saves for backward during a forward pass (hooked
with ``torch.autograd.graph.saved_tensors_hooks``); tensors sharing one storage (a ReLU
output also saved by the next layer) are counted once, and parameters are reported
separately. At the end of the forward pass all of them are alive at once, so this is the
activation part of a training step's peak memory.

:func:`cuda_peak_bytes` is the allocator's own peak on a CUDA device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from jaqmoo.quant.checkpoints import load_supernet
from jaqmoo.quant.csq import csq_blocks
from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.quant.sandwich import sandwich_policies, sandwich_step


@dataclass
class SavedMemory:
    """Bytes saved for backward by one forward pass."""

    activation_bytes: int
    parameter_bytes: int
    n_tensors: int

    @property
    def total_bytes(self) -> int:
        return self.activation_bytes + self.parameter_bytes


def saved_activation_bytes(model: nn.Module, forward: Callable[[], Tensor]) -> SavedMemory:
    """Run ``forward()`` (which returns the loss), count what autograd saves, then backprop."""
    param_ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}
    count = [0]

    def pack(t: Tensor) -> Tensor:
        count[0] += 1
        if t.layout == torch.strided and t.device.type != "meta":
            storage = t.untyped_storage()
            seen.setdefault(storage.data_ptr(), storage.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = forward()
    act = sum(b for p, b in seen.items() if p not in param_ptrs)
    par = sum(b for p, b in seen.items() if p in param_ptrs)
    loss.backward()
    return SavedMemory(act, par, count[0])


def sandwich_saved_peak(supernet: nn.Module, policies: list[QuantPolicy],
                        loss: Callable[[], Tensor]) -> SavedMemory:
    """The largest :func:`saved_activation_bytes` over the sub-steps of a sandwich step (each
    configuration's graph is freed by its backward before the next one is built, so the step
    holds one at a time); ``loss`` builds the current configuration's loss."""
    peak = None
    for policy in policies:
        supernet.set_policy(policy)
        saved = saved_activation_bytes(supernet, loss)
        if peak is None or saved.activation_bytes > peak.activation_bytes:
            peak = saved
    return peak


def cuda_peak_bytes(step: Callable[[], None], device: torch.device) -> int:
    """Peak bytes allocated on ``device`` (CUDA) while running ``step()``."""
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base





def _rss_bytes() -> int:
    import os

    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak_rss() -> bool:
    """Reset the kernel's resident high-water mark (VmHWM; Linux >= 4.0); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def _measure_in_child(ckpt: str, batch: int, bits: int, csq_fraction: float, lsq_path: str,
                      seed: int, sandwich: bool) -> int:  # pragma: no cover - runs in a subprocess
    import ctypes
    import gc
    import threading
    from contextlib import nullcontext

    torch.set_num_threads(1)
    net = load_supernet(ckpt)
    net.set_csq_fraction(csq_fraction)
    net.set_lsq_path(lsq_path)
    net.set_policy(net.uniform_policy(bits))
    net.train()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *net.meta.input_shape, generator=g)
    y = torch.randint(0, net.meta.num_classes, (batch,), generator=g)
    policies = (sandwich_policies(net, np.random.default_rng(seed), 1, top_bits=bits) if sandwich
                else [net.uniform_policy(bits)])

    def step() -> None:
        with csq_blocks(net.model) if csq_fraction > 0 else nullcontext():
            sandwich_step(net, x, y, len(policies), lambda i: net.set_policy(policies[i]), distill=True)

    step()  # warm-up: gradient buffers exist, libraries and kernels are loaded, as in training
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    base = _rss_bytes()
    exact = _reset_peak_rss()
    samples = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(_rss_bytes())
            done.wait(0.0005)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    step()
    done.set()
    th.join()
    peak = max(_peak_rss_bytes(), max(samples)) if exact else max(samples)
    return peak - base


def _child_main() -> None:  # pragma: no cover - runs in a subprocess
    import json
    import sys

    args = json.loads(sys.argv[1])
    print(f"PEAK_RSS_DELTA {_measure_in_child(**args)}")


def step_peak_rss_bytes(ckpt: str, batch: int, bits: int, csq_fraction: float, lsq_path: str = "fused",
                        seed: int = 0, sandwich: bool = False) -> int:
    """Peak resident-memory growth (bytes) of one steady-state training step, in a fresh process.

    The step trains every layer at ``bits``, or with ``sandwich`` a whole sandwich step capped at
    ``bits`` (:func:`~jaqmoo.quant.sandwich.sandwich_policies`: uniform ``bits``, uniform lowest
    bits and one level + noise middle, in-place distillation), whose peak is the largest over
    its sub-steps.

    The supernet is loaded from ``ckpt`` (so CSQ's sensitive channels are the saved ones), a
    random batch is built and one warm-up forward/backward runs (gradient buffers allocated,
    library code and kernels loaded, as in every step after the first of a training run).
    Then freed heap is returned to the system, the resident set size is read, the kernel's
    high-water mark is reset and a second forward/backward runs; its high-water mark (or,
    where the reset is not allowed, the maximum of RSS samples every 0.5 ms) minus the
    starting RSS is returned. The child runs with a fixed ``MALLOC_MMAP_THRESHOLD_`` so that
    tensors are mapped and unmapped as they live and die, and RSS follows live memory. A
    fresh process per measurement keeps one configuration's allocator state from hiding
    another's.
    """
    import json
    import os
    import subprocess
    import sys

    args = json.dumps({"ckpt": str(ckpt), "batch": batch, "bits": bits, "csq_fraction": csq_fraction,
                       "lsq_path": lsq_path, "seed": seed, "sandwich": sandwich})
    code = "from jaqmoo.quant.memory import _child_main; _child_main()"
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True, timeout=1800, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("PEAK_RSS_DELTA "):
            return int(line.split()[1])
    raise RuntimeError(f"memory measurement failed (exit {proc.returncode}): {proc.stderr[-2000:]}")


__all__ = ["SavedMemory", "saved_activation_bytes", "sandwich_saved_peak", "cuda_peak_bytes", "step_peak_rss_bytes"]
