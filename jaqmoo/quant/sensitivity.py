"""Measured per-channel quantization sensitivity (which channels CSQ trains).

The score of output channel ``c`` of a layer is the first-order (Taylor) estimate of how
much the loss moves when that channel's weights are quantized::

    score_c = sum over the weights W[c] of | dL/dW * (Q_b(W) - W) |

measured with every layer at ``bits`` (by default the supernet's smallest bit-width, where
quantization hurts most) on a few training batches; ``dL/dW`` is the gradient of the
quantized network (LSQ's straight-through gradient). Channels whose quantization error
meets large gradients rank first.

Why a measured score rather than the batch-norm scale JAQ ranks by: ``|gamma|`` says how
much a channel matters in the float network (it is the network-slimming pruning criterion),
not how much quantizing it costs; a channel with a large scale whose weights sit on the
quantization grid loses nothing, and this score sees both the error and its effect on the
loss. It costs one forward/backward per batch (``sensitivity_batches``, 2 by default),
once per quantized epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from jaqmoo.quant.fakequant import int_range, quantize_nograd
from jaqmoo.quant.policy import FLOAT_BITS
from jaqmoo.quant.supernet import Supernet


def measure_sensitivity(
    supernet: Supernet,
    batches: Iterable[tuple[Tensor, Tensor]],
    bits: int | None = None,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> list[Tensor]:
    """Per layer, a score per output channel (larger = more sensitive); see module doc."""
    loss_fn = loss_fn or nn.functional.cross_entropy
    bits = bits if bits is not None else min(supernet.bits)
    layers = supernet.layers
    saved_policy = supernet.policy()
    scores = [torch.zeros(m.weight.shape[0], device=m.weight.device) for m in layers]
    try:
        supernet.set_policy(supernet.uniform_policy(bits))
        weights = [m.weight for m in layers]
        for x, y in batches:
            grads = torch.autograd.grad(loss_fn(supernet(x), y), weights, allow_unused=True)
            for i, (m, g) in enumerate(zip(layers, grads, strict=True)):
                if g is None or m.w_bits == FLOAT_BITS:
                    continue
                with torch.no_grad():
                    qmin, qmax = int_range(m.w_bits, True)
                    step = m.w_step[m.bits.index(m.w_bits)].view(-1, *([1] * (m.weight.dim() - 1)))
                    err = quantize_nograd(m.weight, step, qmin, qmax) - m.weight
                    scores[i] += (g * err).abs().flatten(1).sum(1)
    finally:
        supernet.set_policy(saved_policy)
    return scores


def rank_sensitive_channels(supernet: Supernet, batches: Iterable[tuple[Tensor, Tensor]],
                            bits: int | None = None) -> list[Tensor]:
    """Measure sensitivity and mark each layer's top ``csq_fraction`` channels; returns the scores."""
    scores = measure_sensitivity(supernet, batches, bits)
    supernet.set_sensitive_channels(scores)
    return scores


__all__ = ["measure_sensitivity", "rank_sensitive_channels"]
