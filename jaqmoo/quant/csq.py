"""CSQ: channel-wise sparse quantization-aware training (JAQ's memory saving for supernets).

During quantized supernet training only the most quantization-sensitive *output channels*
of each ``QuantConv2d -> BatchNorm2d [-> ReLU/ReLU6]`` block are trained
quantization-aware (their weights, weight steps and batch-norm affine parameters get
gradients). The other channels still run quantized in forward (the network sees the
policy) but are not trained in that epoch, and the block stores nothing per channel for
them. Which channels are sensitive is re-measured at the start of every quantized epoch
(:func:`jaqmoo.quant.sensitivity.rank_sensitive_channels`).

The whole block is one autograd function (:class:`_CSQConvBNAct`). What it keeps for
backward, per element of the block's input ``x`` (``n_in`` elements) and output
(``n_out`` elements):

* the input's integer codes clamped to the quantizer's range, one byte (int8 for signed,
  uint8 for unsigned inputs up to 8 bits), which rebuild the quantized input exactly for the
  weight gradient;
* the LSQ rounding residual ``round(x / s) - x / s`` as int8 (1 byte, resolution 1/254),
  for the activation step-size gradient, with the value -128 marking LSQ's clipped positions
  (their code then says which end: ``qmin`` or ``qmax``);
* the activation's derivative mask, bit-packed (1/8 byte of ``n_out``);
* the convolution output of the sensitive channels only, float (``4 * fraction`` bytes of
  ``n_out``), for the exact batch-norm backward of the channels being trained.

The memory-lean LSQ path (the baseline) keeps, per block, the float input, the float
quantized input, the float convolution output and the float batch-norm output: about
16 bytes per element against ``2 + 0.125 + 4 * fraction`` here.

Gradients: exact LSQ/STE gradients for the input, the sensitive channels' weights and the
activation step (up to the residual's 1/254 resolution); the sensitive channels' batch
norm is back-propagated exactly; through the other channels the batch statistics are
treated as constants (``dy = dz * gamma / sigma``), the usual frozen-batch-norm
approximation, since their convolution output is not stored.

CSQ assumes a trained start (``float_epochs`` first, or a pretrained model): channels that
are never ranked sensitive keep the weights they start the quantized epochs with.

:func:`csq_blocks` installs the fused blocks for the duration of a ``with`` block (the
model's state-dict keys are unchanged outside it).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jaqmoo.quant import csq_kernels
from jaqmoo.quant.csq_kernels import CLIP_MARK, RESID_SCALE
from jaqmoo.quant.distributed import (
    all_reduce_sum,
    batch_stats,
    data_parallel,
    update_running_stats,
)
from jaqmoo.quant.fakequant import STEP_EPS
from jaqmoo.quant.layers import QuantConv2d
from jaqmoo.quant.policy import FLOAT_BITS

ACTIVATIONS = {nn.ReLU: (0.0, math.inf), nn.ReLU6: (0.0, 6.0)}


def pack_bits(mask: Tensor) -> Tensor:
    """A bool tensor packed 8 values per uint8, one row per sample: ``[N, ceil(M / 8)]``
    (``M`` values per sample; see :func:`unpack_bits`)."""
    rows = mask.reshape(mask.shape[0], -1)
    pad = (-rows.shape[1]) % 8
    if pad:
        rows = torch.cat([rows, rows.new_zeros(rows.shape[0], pad)], dim=1)
    weights = (2 ** torch.arange(8, device=mask.device, dtype=torch.int16)).to(torch.uint8)
    return (rows.view(rows.shape[0], -1, 8).to(torch.uint8) * weights).sum(2, dtype=torch.uint8)


def unpack_bits(packed: Tensor, shape: torch.Size) -> Tensor:
    """Inverse of :func:`pack_bits`: a bool tensor of ``shape`` (``shape[0]`` rows of ``packed``)."""
    shifts = torch.arange(8, device=packed.device, dtype=torch.uint8)
    bits = (packed.unsqueeze(2) >> shifts).bitwise_and_(1).to(torch.bool).reshape(packed.shape[0], -1)
    return bits[:, : math.prod(shape[1:])].reshape(shape)


#: samples per batch slice on the eager path (its float temporaries exist for a slice at a time)
SLICE = 32
#: the kernels' path slices by elements instead: as many samples as keep a slice's larger side
#: (input or convolution output) within this many elements, at least :data:`SLICE`. Small late
#: layers then run in one slice (one convolution call instead of four at batch 128: the slicing
#: cost ~30 % of the kernels' step), large early ones keep 32-sample temporaries (the memory peak)
KERNEL_SLICE_ELEMENTS = 1 << 20


def _kernel_slice(n: int, x_shape: torch.Size, conv: nn.Conv2d) -> int:
    """Samples per slice on the kernels' path (see :data:`KERNEL_SLICE_ELEMENTS`), balanced over the batch."""
    h, w = x_shape[2:]
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    ho, wo = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    per_sample = max(math.prod(x_shape[1:]), conv.out_channels * ho * wo)
    size = max(SLICE, KERNEL_SLICE_ELEMENTS // max(1, per_sample))
    return -(-n // -(-n // size))  # n over ceil(n / size) slices, rounded up


def _chunks(n: int, size: int = SLICE) -> list[slice]:
    """Slices of the batch processed together (bounds the temporaries of a block to ``size`` samples)."""
    return [slice(i, min(n, i + size)) for i in range(0, n, size)]


def _code_dtype(qmin: int, qmax: int) -> torch.dtype:
    if qmin >= -128 and qmax <= 127:
        return torch.int8
    if qmin >= 0 and qmax <= 255:
        return torch.uint8
    return torch.int16


def encode_input(x: Tensor, s: float, qmin: int, qmax: int) -> tuple[Tensor, Tensor]:
    """Integer codes and int8 rounding residual of ``x / s``.

    Codes are ``clamp(round(x / s), qmin, qmax)`` (so ``codes * s`` is the quantized input), in
    one byte for up to 8 bits. The residual is ``round(254 * (x / s - round(x / s)))`` where
    ``qmin <= x / s <= qmax`` (LSQ's "inside") and :data:`CLIP_MARK` where LSQ clips.
    """
    v = x / s
    r = v.round()
    clipped = (v < qmin).logical_or_(v > qmax)
    resid = v.sub_(r).mul_(-RESID_SCALE).round_().clamp_(-127, 127).to(torch.int8)  # in place: one float less
    del v
    resid.masked_fill_(clipped, CLIP_MARK)
    return r.clamp_(qmin, qmax).to(_code_dtype(qmin, qmax)), resid


class _CSQConvBNAct(torch.autograd.Function):
    """``act(BN_train(conv(Q(x), wq)))`` storing codes, residual (clip-marked), mask and the sensitive outputs.

    Forward and backward run over slices of the batch (:func:`_chunks`), so the float
    temporaries (quantized input, convolution workspace, gradients) exist for a slice at a
    time; only the block's output (forward) and the input gradient (backward) are whole.

    The elementwise stages run as eager torch operations, or, where :func:`csq_kernels.applies`
    (a contiguous float32 CPU input, one-byte codes: the one dispatch point), as the one-pass
    kernels of :mod:`jaqmoo.quant.csq_kernels` (same values; reductions summed in float64).
    """

    @staticmethod
    def forward(ctx, x, wq, s, gamma, beta, block, sensitive, qmin, qmax, g):  # noqa: D401
        conv, bn = block.conv, block.bn
        sv = float(s)
        n = x.shape[0]
        fast = csq_kernels.applies(x, qmin, qmax)
        codes = torch.empty(x.shape, dtype=_code_dtype(qmin, qmax), device=x.device)
        resid = torch.empty(x.shape, dtype=torch.int8, device=x.device)
        y = sums = None
        size = _kernel_slice(n, x.shape, conv) if fast else SLICE
        for sl in _chunks(n, size):
            if fast:
                xq = csq_kernels.encode(x[sl], sv, qmin, qmax, codes[sl], resid[sl])
            else:
                c, r = encode_input(x[sl], sv, qmin, qmax)
                codes[sl], resid[sl] = c, r
                xq = c.to(x.dtype).mul_(sv)
                del c, r
            yc = F.conv2d(xq, wq, None, conv.stride, conv.padding, conv.dilation, conv.groups)
            if y is None:
                y = yc.new_empty((n, *yc.shape[1:]))
                sums = np.zeros((2, y.shape[1]))
            if fast:
                csq_kernels.store_and_sum(yc, y[sl], sums)
            else:
                y[sl] = yc
            del xq, yc
        if fast and not data_parallel():
            count = y.numel() // y.shape[1]
            var, mean = csq_kernels.stats(sums, count)
        else:
            var, mean, count = batch_stats(y)  # of the global batch when training data-parallel
        update_running_stats(bn, mean, var, count)
        invstd = torch.rsqrt(var + bn.eps)
        y_s = y.index_select(1, sensitive)
        lo, hi = block.act_range
        masked = lo > -math.inf or hi < math.inf
        if fast:
            z, mask = y, csq_kernels.normalize(y, mean, invstd * gamma, beta, lo, hi, masked)
        else:
            z = y.sub_(mean.view(1, -1, 1, 1)).mul_((invstd * gamma).view(1, -1, 1, 1)).add_(beta.view(1, -1, 1, 1))
            mask = None
            if masked:
                mask = torch.cat([pack_bits((z[sl] > lo) & (z[sl] < hi)) for sl in _chunks(n)])
                z.clamp_(lo, hi)
        ctx.conf = (sv, qmin, qmax, g, x.shape, conv.stride, conv.padding, conv.dilation, conv.groups, count, fast,
                    size)
        ctx.save_for_backward(codes, resid, mask, y_s, wq, gamma, mean, invstd, sensitive)
        return z

    @staticmethod
    def backward(ctx, grad_out):
        codes, resid, mask, y_s, wq, gamma, mean, invstd, idx = ctx.saved_tensors
        sv, qmin, qmax, g, x_shape, stride, padding, dilation, groups, m, fast, size = ctx.conf
        dtype = grad_out.dtype
        scale = (gamma * invstd).view(1, -1, 1, 1)
        scale_s, mean_s, inv_s = scale[:, idx], mean[idx].view(1, -1, 1, 1), invstd[idx].view(1, -1, 1, 1)
        depthwise = groups > 1 and groups == wq.shape[0] == x_shape[1]

        def grad_z(sl: slice) -> Tensor:
            go = grad_out[sl]
            return go.clone() if mask is None else go * unpack_bits(mask[sl], go.shape)

        # pass 1: the trained channels' batch-norm reductions over the whole batch
        if fast:
            grad_out = grad_out.contiguous()
            dbeta_s, dgamma_s = csq_kernels.bn_sums(grad_out, mask, y_s, idx, mean_s, inv_s)
        else:
            dbeta_s = torch.zeros_like(mean_s).view(-1)
            dgamma_s = torch.zeros_like(dbeta_s)
            for sl in _chunks(grad_out.shape[0]):
                gz_s = grad_z(sl).index_select(1, idx)
                dbeta_s += gz_s.sum(dim=(0, 2, 3))
                dgamma_s += (gz_s * ((y_s[sl] - mean_s) * inv_s)).sum(dim=(0, 2, 3))
        k = dbeta_s.numel()  # the batch norm's backward needs the global batch's sums (data-parallel training)
        sums = all_reduce_sum(torch.cat([dbeta_s, dgamma_s]))
        sum_beta, sum_gamma = sums[:k], sums[k:]
        # pass 2, per slice: dy (exact for trained channels, batch statistics held constant for the
        # others), the trained channels' weight gradient, the input gradient and the step gradient
        grad_x = grad_out.new_empty(x_shape)
        gw = torch.zeros((idx.numel(), *wq.shape[1:]), dtype=wq.dtype, device=wq.device)
        grad_s = torch.zeros((), dtype=dtype, device=grad_out.device)
        for sl in _chunks(grad_out.shape[0], size):
            c = codes[sl]
            if fast:
                gy, gy_s = csq_kernels.grad_y(grad_out[sl], None if mask is None else mask[sl], scale, y_s[sl], idx,
                                              mean_s, inv_s, sum_beta / m, sum_gamma / m, scale_s)
                xq = csq_kernels.decode(c, sv)
            else:
                gz = grad_z(sl)
                gz_s = gz.index_select(1, idx)
                gy = gz.mul_(scale)
                xhat_s = (y_s[sl] - mean_s).mul_(inv_s)
                gy_s = (gz_s - (sum_beta / m).view(1, -1, 1, 1) - xhat_s * (sum_gamma / m).view(1, -1, 1, 1)).mul_(scale_s)
                gy.index_copy_(1, idx, gy_s)
                del gz_s, xhat_s
                xq = c.to(dtype).mul_(sv)
            if groups == 1:
                gw += torch.nn.grad.conv2d_weight(xq, gw.shape, gy_s, stride, padding, dilation, 1)
            elif depthwise:  # output channel c reads input channel c
                gw += torch.nn.grad.conv2d_weight(xq.index_select(1, idx), gw.shape, gy_s, stride, padding,
                                                  dilation, idx.numel())
            else:
                gw += torch.nn.grad.conv2d_weight(xq, wq.shape, gy, stride, padding, dilation, groups).index_select(0, idx)
            del xq, gy_s
            gxq = torch.nn.grad.conv2d_input(c.shape, wq, gy, stride, padding, dilation, groups)
            del gy
            if fast:
                grad_s += csq_kernels.lsq_grad(gxq, c, resid[sl], grad_x[sl])
                continue
            clipped = resid[sl] == CLIP_MARK
            if ctx.needs_input_grad[2]:  # LSQ: the rounding residual inside, qmin / qmax (the code) where clipped
                ds = torch.where(clipped, c.to(dtype), resid[sl].to(dtype).div_(RESID_SCALE))
                grad_s += ds.mul_(gxq).sum()
                del ds
            grad_x[sl] = gxq.masked_fill_(clipped, 0.0)
            del gxq, clipped
        grad_w = torch.zeros_like(wq).index_copy_(0, idx, gw)
        grad_gamma = torch.zeros_like(gamma).index_copy_(0, idx, dgamma_s)
        grad_beta = torch.zeros_like(gamma).index_copy_(0, idx, dbeta_s)
        return grad_x, grad_w, (grad_s * g).reshape(1), grad_gamma, grad_beta, None, None, None, None, None


class CSQBlock(nn.Module):
    """A ``QuantConv2d -> BatchNorm2d [-> ReLU / ReLU6]`` block trained with CSQ (see module doc).

    In training with gradients, at quantized weight and activation bits and with sensitive
    channels marked on the convolution, the fused CSQ function runs; otherwise the three
    modules run as usual.
    """

    def __init__(self, conv: QuantConv2d, bn: nn.BatchNorm2d, act: nn.Module | None) -> None:
        super().__init__()
        self.conv, self.bn, self.act = conv, bn, act
        self.act_range = ACTIVATIONS[type(act)] if act is not None else (-math.inf, math.inf)

    @staticmethod
    def can_fuse(conv: nn.Module, bn: nn.Module) -> bool:
        """Whether ``conv`` then ``bn`` form a block CSQ handles."""
        return (
            isinstance(conv, QuantConv2d)
            and conv.bias is None
            and conv.padding_mode == "zeros"
            and not isinstance(conv.padding, str)
            and isinstance(bn, nn.BatchNorm2d)
            and bn.affine
            and bn.num_features == conv.out_channels
        )

    def _fused(self) -> bool:
        c = self.conv
        return (self.training and self.bn.training and torch.is_grad_enabled() and c.sensitive.numel() > 0
                and c.w_bits != FLOAT_BITS and c.a_bits != FLOAT_BITS)

    def forward(self, x: Tensor) -> Tensor:
        if not self._fused():
            out = self.bn(self.conv(x))
            return self.act(out) if self.act is not None else out
        c = self.conv
        qmin, qmax = c._act_range(x)
        step = c._act_step(x, qmax)
        g = 1.0 / math.sqrt(max(1, x.numel() * c.batch_shards) * max(1, qmax))
        s = step.abs().reshape(1) + STEP_EPS
        return _CSQConvBNAct.apply(x, c.quant_weight(), s, self.bn.weight, self.bn.bias, self,
                                   c.sensitive, qmin, qmax, g)


def _act_of(module: nn.Module) -> nn.Module | None:
    return module if type(module) in ACTIVATIONS else None


def install_csq_blocks(model: nn.Module) -> list[tuple[nn.Sequential, int, tuple[nn.Module, ...]]]:
    """Replace every fusable block inside an ``nn.Sequential`` by a :class:`CSQBlock`.

    Returns what :func:`remove_csq_blocks` needs to put the original modules back.
    """
    found = []
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        i = 0
        while i < len(seq) - 1:
            if CSQBlock.can_fuse(seq[i], seq[i + 1]):
                act = _act_of(seq[i + 2]) if i + 2 < len(seq) else None
                n = 3 if act is not None else 2
                found.append((seq, i, tuple(seq[i + j] for j in range(n))))
                i += n
            else:
                i += 1
    for seq, i, mods in found:
        seq[i] = CSQBlock(mods[0], mods[1], mods[2] if len(mods) == 3 else None)
        for j in range(1, len(mods)):
            seq[i + j] = nn.Identity()
    return found


def remove_csq_blocks(found: list[tuple[nn.Sequential, int, tuple[nn.Module, ...]]]) -> None:
    """Undo :func:`install_csq_blocks`."""
    for seq, i, mods in found:
        for j, m in enumerate(mods):
            seq[i + j] = m


@contextmanager
def csq_blocks(model: nn.Module) -> Iterator[int]:
    """Train with CSQ blocks installed inside the ``with`` block; yields how many were installed."""
    found = install_csq_blocks(model)
    try:
        yield len(found)
    finally:
        remove_csq_blocks(found)


__all__ = ["CLIP_MARK", "CSQBlock", "csq_blocks", "encode_input", "install_csq_blocks", "pack_bits", "remove_csq_blocks",
           "unpack_bits"]
