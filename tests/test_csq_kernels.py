"""CSQ's one-pass CPU kernels (``jaqmoo.quant.csq_kernels``) against the eager block.

Stage by stage the kernels' elementwise values are bit-identical to the eager operations; the
whole block (forward, every gradient, the running statistics) agrees with the eager path up to
the float64 reductions' summation order, at every bit-width, signed and unsigned inputs, every
activation, dense, grouped and depthwise convolutions, serial and on 2 threads.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from jaqmoo.quant import csq, csq_kernels
from jaqmoo.quant.csq import CSQBlock, encode_input, pack_bits
from jaqmoo.quant.fakequant import int_range
from jaqmoo.quant.layers import QuantConv2d


@pytest.fixture(params=[1, 2], ids=["serial", "2-threads"])
def threads(request):
    old = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(old)


def _run(conv, bn, act, x, up, fast: bool, monkeypatch):
    conv, bn = copy.deepcopy(conv), copy.deepcopy(bn)
    x = x.clone().requires_grad_()
    with monkeypatch.context() as m:
        m.setattr(csq, "KERNEL_SLICE_ELEMENTS", 16 * 6 * 5 * 7)  # 16 samples: three slices (14, 13, 13)
        m.setattr(csq, "SLICE", 8)
        if not fast:
            m.setattr(csq_kernels, "applies", lambda *a: False)
        out = CSQBlock(conv, bn, act).train()(x)
        (out * up).sum().backward()
    return [out.detach(), x.grad, conv.weight.grad, conv.a_step.grad, bn.weight.grad, bn.bias.grad,
            bn.running_mean, bn.running_var]


ACTS = {"relu6": nn.ReLU6, "relu": nn.ReLU, "none": None}
#: act x groups x threads (18 cases), bits cycling 2..8 and signedness alternating: every (bits, signed)
#: pair and every (act, groups, threads) combination once; the slow test runs the whole product
FAST_CASES = [(2 + i % 7, i % 2 == 0, act, groups, threads)
              for i, (act, groups, threads) in enumerate(itertools.product(ACTS, (1, 2, 6), (1, 2)))]
FULL_CASES = list(itertools.product(range(2, 9), (True, False), ACTS, (1, 2, 6), (1, 2)))


@pytest.mark.parametrize("bits,signed,act,groups,threads", FAST_CASES)
def test_kernel_block_equals_the_eager_block(bits, signed, act, groups, threads, monkeypatch):
    _compare_block(bits, signed, act, groups, threads, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("bits,signed,act,groups,threads", FULL_CASES)
def test_kernel_block_equals_the_eager_block_every_combination(bits, signed, act, groups, threads, monkeypatch):
    _compare_block(bits, signed, act, groups, threads, monkeypatch)


def _compare_block(bits, signed, act_name, groups, threads, monkeypatch):
    act = ACTS[act_name]() if ACTS[act_name] is not None else None
    old = torch.get_num_threads()
    torch.set_num_threads(threads)  # the kernels follow torch's thread count
    try:
        _compare_block_at(bits, signed, act, groups, monkeypatch)
    finally:
        torch.set_num_threads(old)


def _compare_block_at(bits, signed, act, groups, monkeypatch):
    torch.manual_seed(bits)
    conv = QuantConv2d.from_module(nn.Conv2d(6, 6, 3, padding=1, stride=1 + (bits % 2), groups=groups, bias=False))
    conv.set_bits(bits, bits)
    bn = nn.BatchNorm2d(6)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    x = torch.randn(40, 6, 5, 7) * 2  # two eager batch slices; 210 mask bits per sample (a padded byte)
    if not signed:
        x = x.abs()
    conv.train()
    conv(x)  # the activation step and signedness
    assert int(conv.a_signed) == int(signed)
    conv.sensitive = torch.tensor([0, 4])
    assert csq_kernels.applies(x, *int_range(bits, signed))
    up = torch.randn_like(CSQBlock(copy.deepcopy(conv), copy.deepcopy(bn), act).train()(x)).detach()
    got = _run(conv, bn, act, x, up, True, monkeypatch)
    ref = _run(conv, bn, act, x, up, False, monkeypatch)
    names = ["output", "grad_x", "grad_w", "grad_step", "grad_gamma", "grad_beta", "running_mean", "running_var"]
    for name, a, b in zip(names, got, ref, strict=True):
        # summation order differs (float64 sums in the kernels): an absolute slack on the tensor's scale
        scale = max(1.0, float(b.abs().max()))
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * scale), (name, (a - b).abs().max())


@pytest.mark.parametrize("qmin,qmax", [(-2, 1), (-8, 7), (-128, 127), (0, 3), (0, 255)])
def test_encode_is_bit_identical(qmin, qmax, threads):
    x = torch.randn(33, 5, 6, 7) * (qmax - qmin) / 4
    s = 0.37
    codes, resid = torch.empty(x.shape, dtype=torch.uint8 if qmin == 0 else torch.int8), torch.empty(x.shape,
                                                                                                     dtype=torch.int8)
    xq = csq_kernels.encode(x, s, qmin, qmax, codes, resid)
    c_ref, r_ref = encode_input(x, s, qmin, qmax)
    assert torch.equal(codes, c_ref) and torch.equal(resid, r_ref)
    assert torch.equal(xq, c_ref.to(torch.float32).mul_(s))
    assert torch.equal(csq_kernels.decode(codes, s), xq)


@pytest.mark.parametrize("lo,hi", [(0.0, 6.0), (0.0, float("inf")), (-float("inf"), float("inf"))])
def test_normalize_and_statistics(lo, hi, threads):
    yc = torch.randn(9, 5, 3, 7) * 3 + 1
    y = torch.empty_like(yc)
    sums = np.zeros((2, 5))
    csq_kernels.store_and_sum(yc[:4], y[:4], sums)
    csq_kernels.store_and_sum(yc[4:], y[4:], sums)
    assert torch.equal(y, yc)
    var, mean = csq_kernels.stats(sums, y.numel() // 5)
    v_ref, m_ref = torch.var_mean(yc, dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(var, v_ref, rtol=1e-6) and torch.allclose(mean, m_ref, rtol=1e-6, atol=1e-7)
    a, b = torch.rand(5) + 0.5, torch.randn(5)
    masked = hi < float("inf") or lo > -float("inf")
    packed = csq_kernels.normalize(y, mean, a, b, lo, hi, masked)
    z = yc.sub(mean.view(1, -1, 1, 1)).mul_(a.view(1, -1, 1, 1)).add_(b.view(1, -1, 1, 1))
    if masked:
        assert torch.equal(packed, pack_bits((z > lo) & (z < hi)))
        z.clamp_(lo, hi)
    else:
        assert packed is None
    assert torch.equal(y, z)


@pytest.mark.parametrize("masked", [True, False])
def test_backward_stages_are_bit_identical(masked, threads):
    g = torch.Generator().manual_seed(1)
    go = torch.randn(6, 5, 3, 7, generator=g)
    mask = torch.rand(go.shape, generator=g) > 0.3
    packed = pack_bits(mask) if masked else None
    gz = go * mask if masked else go.clone()
    idx = torch.tensor([1, 3])
    y_s = torch.randn(6, 2, 3, 7, generator=g)
    scale, inv_s = torch.rand(5, generator=g) + 0.5, torch.rand(2, generator=g) + 0.5
    mean_s, a_s, b_s = (torch.randn(2, generator=g) for _ in range(3))
    scale_s = scale[idx]
    gy, gy_s = csq_kernels.grad_y(go, packed, scale, y_s, idx, mean_s, inv_s, a_s, b_s, scale_s)
    view = (1, -1, 1, 1)
    gz_s = gz.index_select(1, idx)
    xhat = (y_s - mean_s.view(view)).mul_(inv_s.view(view))
    ref_s = (gz_s - a_s.view(view) - xhat * b_s.view(view)).mul_(scale_s.view(view))
    ref = gz.mul(scale.view(view)).index_copy_(1, idx, ref_s)
    assert torch.equal(gy_s, ref_s) and torch.equal(gy, ref)
    sb, sg = csq_kernels.bn_sums(go, packed, y_s, idx, mean_s, inv_s)
    assert torch.allclose(sb, gz_s.sum(dim=(0, 2, 3)), rtol=1e-5, atol=1e-5)
    assert torch.allclose(sg, (gz_s * xhat).sum(dim=(0, 2, 3)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("qmin,qmax", [(-8, 7), (0, 255)])
def test_lsq_gradient_pass(qmin, qmax, threads):
    x = torch.randn(7, 4, 5, 5) * qmax * 0.3
    gxq = torch.randn(x.shape)
    s = 0.5
    codes, resid = encode_input(x, s, qmin, qmax)
    grad_x = torch.empty_like(gxq)
    total = csq_kernels.lsq_grad(gxq, codes, resid, grad_x)
    clipped = resid == csq_kernels.CLIP_MARK
    assert clipped.any() and (~clipped).any()
    assert torch.equal(grad_x, gxq.masked_fill(clipped, 0.0))
    ds = torch.where(clipped, codes.to(torch.float32), resid.to(torch.float32).div_(254.0))
    assert abs(total - float((ds * gxq).double().sum())) < 1e-4


def test_kernels_serve_contiguous_float32_one_byte_codes_only():
    x = torch.randn(2, 3, 4, 4)
    assert csq_kernels.applies(x, -128, 127) and csq_kernels.applies(x, 0, 255)
    assert not csq_kernels.applies(x, -512, 511)  # codes above one byte: the eager path
    assert not csq_kernels.applies(x.double(), -8, 7)
    assert not csq_kernels.applies(x.transpose(2, 3), -8, 7)
