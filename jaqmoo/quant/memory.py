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

import torch
from torch import Tensor, nn


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


def cuda_peak_bytes(step: Callable[[], None], device: torch.device) -> int:
    """Peak bytes allocated on ``device`` (CUDA) while running ``step()``."""
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base


__all__ = ["SavedMemory", "saved_activation_bytes", "cuda_peak_bytes"]
