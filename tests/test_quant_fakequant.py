"""Quantizer values and gradients (LSQ and lean LSQ)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from jaqmoo.quant.fakequant import (
    int_range,
    lsq_quantize,
    lsq_quantize_lean,
    quantize_nograd,
)
from jaqmoo.quant.layers import QuantLinear


@settings(max_examples=30, deadline=None)
@given(bits=st.integers(2, 8), signed=st.booleans(), seed=st.integers(0, 10_000),
       step=st.floats(0.01, 1.0))
def test_values_lie_on_the_grid_and_round_trip(bits, signed, seed, step):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, generator=g) * 2
    qmin, qmax = int_range(bits, signed)
    q = lsq_quantize(x, torch.tensor(step), qmin, qmax)
    codes = q / step
    assert torch.allclose(codes, codes.round(), atol=1e-3)
    assert codes.min() >= qmin - 1e-3 and codes.max() <= qmax + 1e-3
    # in-range values move by at most half a step; quantizing twice changes nothing
    inside = (x / step >= qmin) & (x / step <= qmax)
    assert ((q - x).abs()[inside] <= step / 2 + 1e-5).all()
    assert torch.allclose(lsq_quantize(q, torch.tensor(step), qmin, qmax), q, atol=1e-5)
    assert torch.allclose(quantize_nograd(x, torch.tensor(step), qmin, qmax), q, atol=1e-5)


def test_lsq_gradients_are_straight_through_inside_and_zero_outside():
    x = torch.tensor([-3.0, -0.26, 0.1, 0.74, 5.0], requires_grad=True)
    s = torch.tensor(0.5, requires_grad=True)
    q = lsq_quantize(x, s, -2, 1)
    q.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]  # 0.74 / 0.5 = 1.48 > qmax=1 -> clipped
    # LSQ step gradient: (round(v) - v) inside, qmin / qmax outside, times g
    v = x.detach() / 0.5
    expected = torch.where(v < -2, torch.tensor(-2.0), torch.where(v > 1, torch.tensor(1.0), v.round() - v)).sum()
    g = 1.0 / (5 * 1) ** 0.5
    assert torch.isclose(s.grad, expected * g, atol=1e-6)


def test_lean_lsq_matches_autograd_lsq():
    torch.manual_seed(0)
    for s_shape, (qmin, qmax) in [((), (-8, 7)), ((4, 1, 1, 1), (-8, 7)), ((), (0, 3)), ((1, 3, 1, 1), (0, 15))]:
        x = (torch.randn(4, 3, 5, 5) * 2).requires_grad_()
        s = (torch.rand(s_shape) * 0.3 + 0.1).requires_grad_()
        up = torch.randn(4, 3, 5, 5)
        (lsq_quantize(x, s, qmin, qmax) * up).sum().backward()
        gx, gs = x.grad.clone(), s.grad.clone()
        x.grad = s.grad = None
        out = lsq_quantize_lean(x, s, qmin, qmax)
        (out * up).sum().backward()
        v = x.detach() / s.detach()
        assert bool(((v < qmin) | (v > qmax)).any()) and bool(((v > qmin) & (v < qmax)).any())  # both regimes
        assert torch.allclose(out, lsq_quantize(x, s, qmin, qmax))
        assert torch.allclose(x.grad, gx, atol=1e-6) and torch.allclose(s.grad, gs, atol=1e-5)
        assert s.grad.shape == s.shape


def test_bits_change_outputs_and_float_is_exact():
    torch.manual_seed(0)
    lin = nn.Linear(16, 4)
    q = QuantLinear.from_module(lin)
    x = torch.randn(8, 16)
    q.set_bits(32, 32)
    assert torch.equal(q(x), lin(x))
    outs = {}
    for b in (2, 4, 8):
        q.set_bits(b, b)
        outs[b] = q(x).detach()
    ref = lin(x).detach()
    err = {b: float((o - ref).abs().mean()) for b, o in outs.items()}
    assert err[2] > err[4] > err[8] > 0


def test_mse_init_step_beats_lsq_and_max_scaling_per_channel_and_unsigned():
    from jaqmoo.quant.fakequant import lsq_init_step, mse_init_step

    torch.manual_seed(0)
    x = torch.randn(4, 3000) * torch.tensor([[0.1], [1.0], [5.0], [20.0]])

    def mse(s, rows, qmin, qmax):
        return float(((rows / s).round().clamp(qmin, qmax) * s - rows).pow(2).mean())

    for qmin, qmax in [(-8, 7), (-2, 1)]:
        s = mse_init_step(x, qmin, qmax, dim=0)
        assert s.shape == (4,) and bool((s > 0).all())
        for i in range(4):
            best = mse(s[i], x[i], qmin, qmax)
            assert best < mse(lsq_init_step(x[i], qmax), x[i], qmin, qmax)
            assert best < mse(x[i].abs().max() / qmax, x[i], qmin, qmax)
        assert torch.allclose(s / s[1], torch.tensor([0.1, 1.0, 5.0, 20.0]), rtol=0.25)  # scales with the channel
    u = torch.rand(20000).pow(2) * 3  # non-negative: unsigned range, judged against the maximum
    su = mse_init_step(u, 0, 15)
    assert su.shape == () and mse(su, u, 0, 15) < mse(lsq_init_step(u, 15), u, 0, 15)
    assert torch.equal(mse_init_step(u, 0, 15), su)  # deterministic (seeded subsample)


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(2, 8), signed=st.booleans(), per_channel=st.booleans(), seed=st.integers(0, 10_000),
       n=st.integers(1, 6), c=st.integers(1, 9), hw=st.integers(1, 7), scale=st.floats(0.02, 0.5))
def test_fused_lsq_equals_the_lean_reference_in_values_and_gradients(bits, signed, per_channel, seed, n, c, hw, scale):
    """The fused path (the layers' default) against the lean reference (the previous default) and
    standard autograd LSQ, at every bit-width, over shapes, per-tensor and per-channel steps."""
    from jaqmoo.quant.fakequant import lsq_quantize_fused

    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, c, hw, hw, generator=g) * 2
    if not signed:
        x0 = x0.relu()
    qmin, qmax = int_range(bits, signed)
    s0 = torch.rand((1, c, 1, 1) if per_channel else (), generator=g) * scale + 0.01
    up = torch.randn(x0.shape, generator=g)
    results = []
    for fn in (lsq_quantize_lean, lsq_quantize_fused, lsq_quantize):
        x, s = x0.clone().requires_grad_(), s0.clone().requires_grad_()
        out = fn(x, s, qmin, qmax)
        (out * up).sum().backward()
        results.append((out.detach(), x.grad, s.grad))
    (ref_out, ref_gx, ref_gs), (out, gx, gs), (std_out, _, _) = results
    assert torch.equal(out, ref_out)  # same codes, same values, exactly
    assert torch.allclose(out, std_out, atol=1e-5)
    assert torch.equal(gx, ref_gx)  # the same straight-through mask
    assert gs.shape == s0.shape
    assert torch.allclose(gs, ref_gs, rtol=1e-4, atol=1e-5)  # the same terms, summed in another order


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_one_pass_kernels_equal_the_eager_fused_path(threads, layout):
    """Activation quantizers (one step, float32, CPU) take the one-pass kernels of
    ``jaqmoo.quant.lsq_kernels``, serial and chunked-parallel (a tensor over several chunks);
    outputs and input gradients are bit-identical to the eager path, the step gradient equal up
    to summation order; a channels-last tensor keeps the eager path."""
    from jaqmoo.quant import lsq_kernels
    from jaqmoo.quant.fakequant import _FusedLSQ, lsq_quantize_fused

    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(3, 8, 60, 60, generator=g) * 2  # 86,400 elements: two chunks
    up = torch.randn(x0.shape, generator=g)
    if layout == "channels_last":
        x0 = x0.to(memory_format=torch.channels_last)
    s0 = torch.tensor(0.07)
    assert lsq_kernels.applies(x0, s0) == (layout == "contiguous")
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for qmin, qmax in [(-8, 7), (0, 3), (-128, 127)]:
            x, s = x0.clone().requires_grad_(), s0.clone().requires_grad_()
            out = lsq_quantize_fused(x, s, qmin, qmax)
            (out * up).sum().backward()
            # the eager path of the same function, forced by a non-contiguous view of the same values
            xe, se = x0.clone().requires_grad_(), s0.clone().requires_grad_()
            ge = 1.0 / (x0.numel() * max(1, qmax)) ** 0.5
            xt = xe.transpose(2, 3)  # non-contiguous: eager path
            assert not lsq_kernels.applies(xt, se)
            oe = _FusedLSQ.apply(xt, se.abs() + 1e-8, qmin, qmax, ge).transpose(2, 3)
            (oe * up).sum().backward()
            assert torch.equal(out, oe)
            assert torch.equal(x.grad, xe.grad)
            assert torch.allclose(s.grad, se.grad, rtol=1e-4, atol=1e-4)
    finally:
        torch.set_num_threads(old)
