"""Fake quantization primitives: LSQ and the CSQ straight-through path.

* :func:`lsq_quantize` is Learned Step size Quantization (Esser et al., ICLR 2020): values
  are divided by a learnable step, clamped to the integer range, rounded with a
  straight-through estimator and multiplied back. The step receives the LSQ gradient
  (scaled by ``1 / sqrt(numel * qmax)``). Written with ordinary autograd ops, it keeps
  several activation-sized tensors alive for backward (``x / s``, the clamped value, the
  rounded value) — this is the standard "full fake-quant path".
  :func:`lsq_quantize_lean` computes the same values and gradients in one autograd
  function that keeps only ``x``.
* :func:`ste_quant_conv2d` is the cheap path of CSQ: one autograd function that quantizes
  the input activation and runs the convolution in forward, saving only the input's integer
  codes (int8 up to 6 bits, int16 above: a quarter / half of the float input) and the
  small weight tensor. In backward it rebuilds the quantized input from the codes for the
  weight gradient and passes the input gradient straight through (zeroed where the input
  was clipped). No step-size gradient flows through this path.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

STEP_EPS = 1e-8


def int_range(bits: int, signed: bool) -> tuple[int, int]:
    """Integer range ``(qmin, qmax)`` of a ``bits``-bit signed or unsigned value."""
    if signed:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def grad_scale(x: Tensor, scale: float) -> Tensor:
    """Identity in forward; multiplies the gradient by ``scale`` in backward."""
    y = x * scale
    return (x - y).detach() + y


def round_ste(x: Tensor) -> Tensor:
    """Round in forward; identity gradient in backward."""
    return (x.round() - x).detach() + x


def lsq_quantize(x: Tensor, step: Tensor, qmin: int, qmax: int) -> Tensor:
    """LSQ fake quantization of ``x`` with a learnable ``step`` (broadcastable to ``x``)."""
    g = 1.0 / math.sqrt(max(1, x.numel() // max(1, step.numel())) * max(1, qmax))
    s = grad_scale(step.abs() + STEP_EPS, g)
    return round_ste(torch.clamp(x / s, qmin, qmax)) * s


class _LeanLSQ(torch.autograd.Function):
    """LSQ with exactly the gradients of :func:`lsq_quantize`, saving only ``x`` and the step."""

    @staticmethod
    def forward(ctx, x, s, qmin, qmax, g):  # noqa: D401
        ctx.conf = (qmin, qmax, g)
        ctx.save_for_backward(x, s)
        return torch.clamp(x / s, qmin, qmax).round_().mul_(s)

    @staticmethod
    def backward(ctx, grad):
        x, s = ctx.saved_tensors
        qmin, qmax, g = ctx.conf
        v = x / s
        inside = (v >= qmin) & (v <= qmax)
        grad_x = grad * inside if ctx.needs_input_grad[0] else None
        grad_s = None
        if ctx.needs_input_grad[1]:
            ds = torch.where(inside, v.round() - v, v.clamp(qmin, qmax))
            ds.mul_(grad)
            if s.numel() == 1:
                grad_s = ds.sum().reshape(s.shape) * g
            else:
                dims = [d for d in range(ds.dim()) if s.shape[d] == 1]
                grad_s = ds.sum(dim=dims, keepdim=True) * g
        return grad_x, grad_s, None, None, None


def lsq_quantize_lean(x: Tensor, step: Tensor, qmin: int, qmax: int) -> Tensor:
    """:func:`lsq_quantize` (same values and gradients) storing only ``x`` for backward."""
    g = 1.0 / math.sqrt(max(1, x.numel() // max(1, step.numel())) * max(1, qmax))
    return _LeanLSQ.apply(x, step.abs() + STEP_EPS, qmin, qmax, g)


def quantize_nograd(x: Tensor, step: Tensor, qmin: int, qmax: int) -> Tensor:
    """The value of :func:`lsq_quantize` without building any autograd graph (one new tensor)."""
    with torch.no_grad():
        s = step.detach().abs() + STEP_EPS
        if s.numel() == 1:
            sv = float(s)
            return torch.div(x, sv).round_().clamp_(qmin, qmax).mul_(sv)
        return torch.div(x, s).round_().clamp_(qmin, qmax).mul_(s)


def lsq_init_step(x: Tensor, qmax: int, dim: int | None = None) -> Tensor:
    """LSQ's initial step ``2 * mean(|x|) / sqrt(qmax)`` (per channel along ``dim`` if given)."""
    with torch.no_grad():
        if dim is None:
            m = x.abs().mean()
        else:
            m = x.abs().transpose(0, dim).reshape(x.shape[dim], -1).mean(1)
        return (2.0 * m / math.sqrt(qmax)).clamp_min(1e-5)


def _code_dtype(qmin: int, qmax: int) -> torch.dtype:
    return torch.int8 if qmin - 1 >= -128 and qmax + 1 <= 127 else torch.int16


class _STEQuantConv2d(torch.autograd.Function):
    """Quantize the input and convolve, keeping only the input's integer codes for backward.

    The codes are ``round(x / s)`` clamped to ``[qmin - 1, qmax + 1]`` (int8 up to 6 bits,
    int16 above): ``codes.clamp(qmin, qmax) * s`` is exactly the quantized input (for the
    weight gradient) and codes outside ``[qmin, qmax]`` mark the clipped positions, where
    the straight-through input gradient is zero.
    """

    @staticmethod
    def forward(ctx, x, weight, step, keep, qmin, qmax, stride, padding, dilation, groups):  # noqa: D401
        s = float(step.abs() + STEP_EPS)
        codes = torch.div(x, s).round_().clamp_(qmin - 1, qmax + 1).to(_code_dtype(qmin, qmax))
        xq = codes.clamp(qmin, qmax).to(x.dtype).mul_(s)
        if keep is not None:
            xq.mul_(keep.view(1, -1, 1, 1))
        ctx.conf = (s, qmin, qmax, stride, padding, dilation, groups, x.dtype)
        ctx.save_for_backward(codes, weight, keep)
        return F.conv2d(xq, weight, None, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad_out):
        codes, weight, keep = ctx.saved_tensors
        s, qmin, qmax, stride, padding, dilation, groups, dtype = ctx.conf
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.nn.grad.conv2d_input(codes.shape, weight, grad_out, stride, padding, dilation, groups)
            grad_x.masked_fill_((codes < qmin).logical_or_(codes > qmax), 0.0)
            if keep is not None:
                grad_x.mul_(keep.view(1, -1, 1, 1))
        if ctx.needs_input_grad[1]:
            xq = codes.clamp(qmin, qmax).to(dtype).mul_(s)
            if keep is not None:
                xq.mul_(keep.view(1, -1, 1, 1))
            grad_w = torch.nn.grad.conv2d_weight(xq, weight.shape, grad_out, stride, padding, dilation, groups)
        return grad_x, grad_w, None, None, None, None, None, None, None, None


def ste_quant_conv2d(x: Tensor, weight: Tensor, step: Tensor, qmin: int, qmax: int,
                     stride, padding, dilation, groups: int, keep: Tensor | None = None) -> Tensor:
    """``conv2d(fake_quant(x), weight)`` storing no activation tensor beyond ``x`` itself.

    ``keep`` (float 0/1 per input channel) zeroes the channels handled elsewhere (the
    sensitive channels of CSQ, which take the LSQ path).
    """
    return _STEQuantConv2d.apply(x, weight, step.detach(), keep, qmin, qmax, stride, padding, dilation, groups)


__all__ = [
    "int_range",
    "grad_scale",
    "round_ste",
    "lsq_quantize",
    "lsq_quantize_lean",
    "quantize_nograd",
    "lsq_init_step",
    "ste_quant_conv2d",
]
