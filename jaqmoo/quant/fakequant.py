"""Fake quantization primitives: LSQ (fused, memory-lean reference, standard autograd).

* :func:`lsq_quantize` is Learned Step size Quantization (Esser et al., ICLR 2020): values
  are divided by a learnable step, clamped to the integer range, rounded with a
  straight-through estimator and multiplied back. The step receives the LSQ gradient
  (scaled by ``1 / sqrt(numel * qmax)``). Written with ordinary autograd ops, it keeps
  several activation-sized tensors alive for backward (``x / s``, the clamped value, the
  rounded value) — the standard "full fake-quant path", kept as the memory benchmark's
  reference. :func:`lsq_quantize_lean` computes the same values and gradients in one
  autograd function that keeps only ``x`` and runs about 2.5x faster on a CPU; it is the
  reference implementation of the fused path.
* :func:`lsq_quantize_fused` (the quantized layers' default) computes the same values and
  gradients with the backward's ingredients made in the forward pass: one pass over the
  tensor forms the code, the clip mask (one byte per element) and the step-gradient term
  ``round(v) - v`` inside / ``qmin``, ``qmax`` outside (LSQ's), so the backward is one masked
  copy of the incoming gradient and one dot product (a per-channel sum for weights), with no
  recomputation and no bool-to-float conversions.
* The CSQ training path (int8 input codes, only the trained channels' outputs kept) is
  :mod:`jaqmoo.quant.csq`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from jaqmoo.quant import lsq_kernels

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


def step_grad_scale(x: Tensor, step: Tensor, qmax: int, numel: int | None = None) -> float:
    """LSQ's step-gradient scale ``1 / sqrt(elements per step * qmax)``; ``numel`` overrides
    ``x.numel()`` (data-parallel training counts the global batch's elements, so every process
    count gives the gradient of one process)."""
    n = x.numel() if numel is None else int(numel)
    return 1.0 / math.sqrt(max(1, n // max(1, step.numel())) * max(1, qmax))


def lsq_quantize(x: Tensor, step: Tensor, qmin: int, qmax: int, numel: int | None = None) -> Tensor:
    """LSQ fake quantization of ``x`` with a learnable ``step`` (broadcastable to ``x``)."""
    g = step_grad_scale(x, step, qmax, numel)
    s = grad_scale(step.abs() + STEP_EPS, g)
    return round_ste(torch.clamp(x / s, qmin, qmax)) * s


class _LeanLSQ(torch.autograd.Function):
    """LSQ with exactly the gradients of :func:`lsq_quantize`, saving only ``x`` and the step.

    Besides memory it saves time: the forward is four in-place passes over one new tensor, and
    the backward finds LSQ's "inside" positions with one comparison (``clamp(v) == v``) and
    writes the step gradient's terms (``round(v) - v`` inside, ``qmin`` / ``qmax`` outside)
    as ``q - v * inside`` into the clamped-and-rounded ``q``, where the standard autograd path
    builds a dozen activation-sized temporaries.
    """

    @staticmethod
    def forward(ctx, x, s, qmin, qmax, g):  # noqa: D401
        ctx.conf = (qmin, qmax, g)
        ctx.save_for_backward(x, s)
        return torch.div(x, s).clamp_(qmin, qmax).round_().mul_(s)

    @staticmethod
    def backward(ctx, grad):
        x, s = ctx.saved_tensors
        qmin, qmax, g = ctx.conf
        v = torch.div(x, s)
        q = v.clamp(qmin, qmax)
        inside = q == v
        grad_x = grad * inside if ctx.needs_input_grad[0] else None
        grad_s = None
        if ctx.needs_input_grad[1]:
            ds = q.round_().sub_(v.mul_(inside)).mul_(grad)  # (round(v) - v inside, qmin / qmax outside) * grad
            if s.numel() == 1:
                grad_s = ds.sum().reshape(s.shape) * g
            else:
                dims = [d for d in range(ds.dim()) if s.shape[d] == 1]
                grad_s = ds.sum(dim=dims, keepdim=True) * g
        return grad_x, grad_s, None, None, None


class _FusedLSQ(torch.autograd.Function):
    """LSQ with the gradients of :func:`lsq_quantize`; forward leaves the backward two passes.

    Saved for backward: the step-gradient term ``ds`` (float, the size of ``x``) and the clip
    mask (bool). ``ds`` is written into the buffer of ``x / s`` and the output into the buffer of
    the clamped codes, so the forward allocates three tensors (codes, ``x / s``, mask) and makes
    seven elementwise passes; the backward makes two (gradient masking, the step's reduction).
    A per-tensor step on a contiguous float32 CPU tensor (every activation quantizer) takes
    :mod:`jaqmoo.quant.lsq_kernels` instead: one pass forward, one pass backward, same values.
    """

    @staticmethod
    def forward(ctx, x, s, qmin, qmax, g):  # noqa: D401
        ctx.conf = (g, s.shape)
        if lsq_kernels.applies(x, s):  # one pass instead of seven (per-tensor steps on the CPU)
            out, ds, outside = lsq_kernels.forward(x, s, qmin, qmax)
            ctx.save_for_backward(ds, outside)
            return out
        v = torch.div(x, s)
        q = v.clamp(qmin, qmax)
        outside = q != v
        q.round_()
        ds = torch.sub(q, v.masked_fill_(outside, 0.0), out=v)  # round(v) - v inside, qmin / qmax outside
        ctx.save_for_backward(ds, outside)
        return q.mul_(s)

    @staticmethod
    def backward(ctx, grad):
        ds, outside = ctx.saved_tensors
        g, s_shape = ctx.conf
        if ctx.needs_input_grad[1] and math.prod(s_shape) == 1 and ds.device.type == "cpu" \
                and grad.dtype == ds.dtype == torch.float32 and ds.is_contiguous():
            grad_x, total = lsq_kernels.backward(grad, ds, outside, ctx.needs_input_grad[0])
            return grad_x, torch.tensor(total * g, dtype=ds.dtype).reshape(s_shape), None, None, None
        grad_x = grad.masked_fill(outside, 0.0) if ctx.needs_input_grad[0] else None
        grad_s = None
        if ctx.needs_input_grad[1]:
            grad = grad.contiguous()
            if math.prod(s_shape) == 1:
                grad_s = (torch.dot(ds.reshape(-1), grad.reshape(-1)) * g).reshape(s_shape)
            else:
                dims = [d for d in range(ds.dim()) if s_shape[d] == 1]
                grad_s = (ds * grad).sum(dim=dims, keepdim=True) * g
        return grad_x, grad_s, None, None, None


def lsq_quantize_fused(x: Tensor, step: Tensor, qmin: int, qmax: int, numel: int | None = None) -> Tensor:
    """:func:`lsq_quantize` (same values and gradients) with the backward prepared in the forward
    pass (see :class:`_FusedLSQ`): the quantized layers' default training path."""
    g = step_grad_scale(x, step, qmax, numel)
    return _FusedLSQ.apply(x, step.abs() + STEP_EPS, qmin, qmax, g)


def lsq_quantize_lean(x: Tensor, step: Tensor, qmin: int, qmax: int, numel: int | None = None) -> Tensor:
    """:func:`lsq_quantize` (same values and gradients) storing only ``x`` for backward."""
    g = step_grad_scale(x, step, qmax, numel)
    return _LeanLSQ.apply(x, step.abs() + STEP_EPS, qmin, qmax, g)


#: The LSQ training paths a quantized layer can take (``QuantMixin.lsq_path``): the fused default,
#: the lean reference and the standard-autograd reference
LSQ_PATHS = {"fused": lsq_quantize_fused, "lean": lsq_quantize_lean, "autograd": lsq_quantize}


def quantize_nograd(x: Tensor, step: Tensor, qmin: int, qmax: int) -> Tensor:
    """The value of :func:`lsq_quantize` without building any autograd graph (one new tensor)."""
    with torch.no_grad():
        s = step.detach().abs() + STEP_EPS
        if s.numel() == 1:
            sv = float(s)
            return torch.div(x, sv).round_().clamp_(qmin, qmax).mul_(sv)
        return torch.div(x, s).round_().clamp_(qmin, qmax).mul_(s)


def sample_columns(n: int, max_samples: int) -> Tensor:
    """The fixed, seeded subsample of ``max_samples`` of ``n`` positions that :func:`mse_init_step`
    judges a slice longer than ``max_samples`` on (a permutation of all ``n``: costly for large ``n``,
    so a caller scoring one tensor at several bit-widths draws it once and passes the sample)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(0))[:max_samples]


#: the most values per slice :func:`mse_init_step` judges a step on (longer slices are subsampled)
MSE_SAMPLES = 65536


def mse_init_step(x: Tensor, qmin: int, qmax: int, dim: int | None = None, grid: int = 40,
                  max_samples: int = MSE_SAMPLES) -> Tensor:
    """The step minimising the mean squared quantization error of ``x`` (per slice along ``dim``).

    Steps ``f * max / qmax`` for ``grid`` fractions ``f`` in ``[0.05, 1]`` are tried (``max``
    the largest magnitude, or the largest value when ``qmin`` is 0); slices longer than
    ``max_samples`` are judged on a fixed, seeded subsample. Returns shape ``()`` or
    ``(x.shape[dim],)``. This is where quantization-aware training starts from a float model:
    LSQ's own ``2 mean|x| / sqrt(qmax)`` is tuned for training from scratch and clips far too
    much at low bits.
    """
    with torch.no_grad():
        rows = x.detach().reshape(1, -1) if dim is None else x.detach().transpose(0, dim).reshape(x.shape[dim], -1)
        if rows.shape[1] > max_samples:
            rows = rows[:, sample_columns(rows.shape[1], max_samples).to(rows.device)]
        top = (rows.amax(1, keepdim=True) if qmin == 0 else rows.abs().amax(1, keepdim=True)).clamp_min(1e-8)
        best = best_err = None
        for f in torch.linspace(0.05, 1.0, grid).tolist():
            s = top * (f / qmax)
            err = (torch.div(rows, s).round_().clamp_(qmin, qmax).mul_(s).sub_(rows)).pow_(2).mean(1, keepdim=True)
            if best is None:
                best, best_err = s, err
            else:
                better = err < best_err
                best, best_err = torch.where(better, s, best), torch.where(better, err, best_err)
        return best.reshape(()) if dim is None else best.reshape(-1)


def lsq_init_step(x: Tensor, qmax: int, dim: int | None = None) -> Tensor:
    """LSQ's initial step ``2 * mean(|x|) / sqrt(qmax)`` (per channel along ``dim`` if given)."""
    with torch.no_grad():
        if dim is None:
            m = x.abs().mean()
        else:
            m = x.abs().transpose(0, dim).reshape(x.shape[dim], -1).mean(1)
        return (2.0 * m / math.sqrt(qmax)).clamp_min(1e-5)


__all__ = [
    "int_range",
    "step_grad_scale",
    "grad_scale",
    "round_ste",
    "lsq_quantize",
    "lsq_quantize_lean",
    "lsq_quantize_fused",
    "LSQ_PATHS",
    "quantize_nograd",
    "lsq_init_step",
    "MSE_SAMPLES",
    "mse_init_step",
    "sample_columns",
]
