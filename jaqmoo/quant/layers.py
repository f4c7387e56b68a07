"""Bit-switchable quantized Conv2d / Linear layers (LSQ step sizes per candidate bit-width).

:class:`QuantConv2d` and :class:`QuantLinear` subclass ``nn.Conv2d`` / ``nn.Linear`` so
that a wrapped model is still seen by :func:`jaqmoo.workload.quantizable_layers` and
:func:`jaqmoo.workload.extract_workload` exactly like the original. They share the float
weights and hold, for every candidate bit-width, one learnable weight step (per output
channel when ``per_channel``) and one learnable activation step. Activations are quantized
at the layer's input, unsigned when the input is non-negative (after ReLU) and signed
otherwise (decided the first time the layer sees data).

CSQ (``csq_fraction`` > 0): the layer's ``sensitive`` buffer lists the output channels
trained quantization-aware (chosen by :mod:`jaqmoo.quant.sensitivity`); the training
itself runs in :class:`jaqmoo.quant.csq.CSQBlock`, which fuses the layer with its
batch-norm and activation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jaqmoo.quant.fakequant import (
    LSQ_PATHS,
    int_range,
    lsq_init_step,
    lsq_quantize,
    lsq_quantize_lean,
    quantize_nograd,
)
from jaqmoo.quant.policy import FLOAT_BITS, SUPPORTED_BITS


class QuantMixin:
    """State and logic shared by the quantized layer types."""

    bits: tuple[int, ...]

    def _init_quant(self, bits: tuple[int, ...], per_channel: bool) -> None:
        self.bits = tuple(bits)
        self.per_channel = per_channel
        n_out = self.weight.shape[0] if per_channel else 1
        w_step = torch.empty(len(bits), n_out, device=self.weight.device)
        for i, b in enumerate(bits):
            qmax = int_range(b, True)[1]
            w_step[i] = lsq_init_step(self.weight, qmax, dim=0 if per_channel else None)
        self.w_step = nn.Parameter(w_step)
        self.a_step = nn.Parameter(torch.ones(len(bits), device=self.weight.device))
        self.register_buffer("a_step_ready", torch.zeros(len(bits), dtype=torch.bool, device=self.weight.device))
        # -1: not seen yet, 0: unsigned input, 1: signed input
        self.register_buffer("a_signed", torch.tensor(-1, dtype=torch.int8, device=self.weight.device))
        self.register_buffer("sensitive", torch.zeros(0, dtype=torch.long, device=self.weight.device))
        self.w_bits = max(bits)
        self.a_bits = max(bits)
        self.csq_fraction = 0.0
        self.batch_shards = 1  # data-parallel processes sharing each batch (LSQ's step-gradient scale counts all)
        self.lsq_path = "fused"  # a key of LSQ_PATHS: "fused" (default), "lean" or "autograd" (references)

    def _bit_index(self, bits: int) -> int:
        return self.bits.index(bits)

    def set_bits(self, w_bits: int, a_bits: int) -> None:
        """Select the weight and activation bit-widths (``FLOAT_BITS`` = not quantized)."""
        for b in (w_bits, a_bits):
            if b != FLOAT_BITS and b not in self.bits:
                raise ValueError(f"bits {b} not in this layer's candidates {self.bits}")
        self.w_bits, self.a_bits = int(w_bits), int(a_bits)

    def quant_weight(self) -> Tensor:
        if self.w_bits == FLOAT_BITS:
            return self.weight
        qmin, qmax = int_range(self.w_bits, True)
        step = self.w_step[self._bit_index(self.w_bits)]
        step = step.view(-1, *([1] * (self.weight.dim() - 1)))
        if not torch.is_grad_enabled():
            return quantize_nograd(self.weight, step, qmin, qmax)
        if self.lsq_path == "autograd" and self.csq_fraction == 0.0:
            return lsq_quantize(self.weight, step, qmin, qmax)
        # weights: the lean function saves only the weight itself (a parameter, alive anyway), where the
        # fused one would keep a weight-sized gradient term; the time difference is negligible here
        return lsq_quantize_lean(self.weight, step, qmin, qmax)

    def _act_range(self, x: Tensor) -> tuple[int, int]:
        if int(self.a_signed) < 0:
            with torch.no_grad():
                self.a_signed.fill_(1 if bool((x < 0).any()) else 0)
        return int_range(self.a_bits, bool(int(self.a_signed) == 1))

    def _act_step(self, x: Tensor, qmax: int) -> Tensor:
        i = self._bit_index(self.a_bits)
        if not bool(self.a_step_ready[i]):
            with torch.no_grad():
                self.a_step[i] = lsq_init_step(x, qmax)
                self.a_step_ready[i] = True
        return self.a_step[i]

    def quant_input(self, x: Tensor) -> Tensor:
        """LSQ fake quantization of the input activation (every channel; CSQ's fused path is
        :class:`jaqmoo.quant.csq.CSQBlock`)."""
        if self.a_bits == FLOAT_BITS:
            return x
        qmin, qmax = self._act_range(x)
        step = self._act_step(x, qmax)
        if not torch.is_grad_enabled():
            return quantize_nograd(x, step, qmin, qmax)
        return LSQ_PATHS[self.lsq_path](x, step, qmin, qmax, numel=x.numel() * self.batch_shards)

    def extra_repr(self) -> str:  # pragma: no cover - cosmetic
        base = super().extra_repr()
        return f"{base}, w_bits={self.w_bits}, a_bits={self.a_bits}, csq={self.csq_fraction}"


class QuantConv2d(QuantMixin, nn.Conv2d):
    """``nn.Conv2d`` with bit-switchable LSQ fake quantization of weights and input."""

    @classmethod
    def from_module(cls, conv: nn.Conv2d, bits: tuple[int, ...] = SUPPORTED_BITS,
                    per_channel: bool = True) -> QuantConv2d:
        q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode,
                device=conv.weight.device, dtype=conv.weight.dtype)
        q.weight = conv.weight
        if conv.bias is not None:
            q.bias = conv.bias
        q._init_quant(bits, per_channel)
        return q

    @property
    def csq_supported(self) -> bool:
        """CSQ handles convolutions with zero padding (fused with their batch-norm when trained)."""
        return self.padding_mode == "zeros" and not isinstance(self.padding, str)

    def forward(self, x: Tensor) -> Tensor:
        out = self._conv_forward(self.quant_input(x), self.quant_weight(), None)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out


class QuantLinear(QuantMixin, nn.Linear):
    """``nn.Linear`` with bit-switchable LSQ fake quantization (never on CSQ's fused path)."""

    @classmethod
    def from_module(cls, lin: nn.Linear, bits: tuple[int, ...] = SUPPORTED_BITS,
                    per_channel: bool = True) -> QuantLinear:
        q = cls(lin.in_features, lin.out_features, lin.bias is not None,
                device=lin.weight.device, dtype=lin.weight.dtype)
        q.weight = lin.weight
        if lin.bias is not None:
            q.bias = lin.bias
        q._init_quant(bits, per_channel)
        return q

    @property
    def csq_supported(self) -> bool:
        return False

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(self.quant_input(x), self.quant_weight(), self.bias)


QuantLayer = QuantConv2d | QuantLinear


def n_sensitive(channels: int, fraction: float) -> int:
    """How many of ``channels`` output channels a CSQ ``fraction`` trains quantization-aware."""
    return max(1, min(channels, int(math.ceil(fraction * channels))))




class FoldedConvBN(nn.Module):
    """Eval-only fusion of a :class:`QuantConv2d` and the ``BatchNorm2d`` right after it.

    The batch-norm's affine map (running statistics) is folded into the layer's *quantized*
    weights and a bias, and those are computed once: ``BN(conv(q(x), q(W)))`` equals
    ``conv(q(x), q(W) * a) + b`` up to float rounding. Used by
    :meth:`jaqmoo.quant.supernet.Supernet.accuracy` to skip the separate batch-norm pass and
    the per-batch weight quantization.
    """

    def __init__(self, conv: QuantConv2d, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        self.conv = conv
        with torch.no_grad():
            inv_std = torch.rsqrt(bn.running_var + bn.eps)
            scale = inv_std * bn.weight if bn.affine else inv_std
            shift = -bn.running_mean * scale
            if bn.affine:
                shift = shift + bn.bias
            if conv.bias is not None:
                shift = shift + conv.bias * scale
            self.weight = conv.quant_weight() * scale.view(-1, 1, 1, 1)
            self.bias = shift

    @staticmethod
    def can_fold(conv: nn.Module, bn: nn.Module) -> bool:
        return (
            isinstance(conv, QuantConv2d)
            and isinstance(bn, nn.BatchNorm2d)
            and conv.padding_mode == "zeros"
            and bn.running_var is not None
            and bn.num_features == conv.out_channels
        )

    def forward(self, x: Tensor) -> Tensor:
        c = self.conv
        return F.conv2d(c.quant_input(x), self.weight, self.bias, c.stride, c.padding, c.dilation, c.groups)


__all__ = ["FoldedConvBN", "QuantConv2d", "QuantLinear", "QuantLayer", "QuantMixin", "n_sensitive"]
