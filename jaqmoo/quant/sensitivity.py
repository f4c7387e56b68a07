"""Measured per-channel quantization sensitivity (which channels CSQ keeps on the LSQ path).

The score of input channel ``c`` of a layer is the first-order (Taylor) estimate of how
much the loss moves when that channel is quantized::

    score_c = sum over batch, h, w of | dL/dx_c * (Q_b(x_c) - x_c) |

measured with every layer at ``bits`` (by default the supernet's smallest bit-width, where
quantization hurts most) on a few training batches. Channels whose quantization error
meets large gradients rank first.
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
    """Per layer, a score per input channel (larger = more sensitive); see module doc."""
    loss_fn = loss_fn or nn.functional.cross_entropy
    bits = bits if bits is not None else min(supernet.bits)
    layers = supernet.layers
    saved_policy = supernet.policy()
    saved_fraction = [m.csq_fraction for m in layers]
    scores = [torch.zeros(m.in_channels if hasattr(m, "in_channels") else m.in_features,
                          device=m.weight.device) for m in layers]
    try:
        supernet.set_policy(supernet.uniform_policy(bits))
        for m in layers:
            m.csq_fraction = 0.0
            m.record_input = True
        for x, y in batches:
            for m in layers:
                m.recorded_input = None
            loss = loss_fn(supernet(x), y)
            recorded = [(i, m.recorded_input) for i, m in enumerate(layers) if m.recorded_input is not None]
            grads = torch.autograd.grad(loss, [t for _, t in recorded], allow_unused=True)
            for (i, inp), g in zip(recorded, grads, strict=True):
                if g is None:
                    continue
                m = layers[i]
                if m.a_bits == FLOAT_BITS:
                    continue
                with torch.no_grad():
                    qmin, qmax = int_range(m.a_bits, bool(int(m.a_signed) == 1))
                    step = m.a_step[m.bits.index(m.a_bits)]
                    err = quantize_nograd(inp.detach(), step, qmin, qmax) - inp.detach()
                    contrib = (g * err).abs()
                    dims = [d for d in range(contrib.dim()) if d != 1]
                    scores[i] += contrib.sum(dim=dims)
    finally:
        for m, f in zip(layers, saved_fraction, strict=True):
            m.csq_fraction = f
            m.record_input = False
            m.recorded_input = None
        supernet.set_policy(saved_policy)
    return scores


def rank_sensitive_channels(supernet: Supernet, batches: Iterable[tuple[Tensor, Tensor]],
                            bits: int | None = None) -> list[Tensor]:
    """Measure sensitivity and mark each layer's top ``csq_fraction`` channels; returns the scores."""
    scores = measure_sensitivity(supernet, batches, bits)
    supernet.set_sensitive_channels(scores)
    return scores


__all__ = ["measure_sensitivity", "rank_sensitive_channels"]
