"""CSQ: the fused conv-BN-activation block's values, gradients, memory and installation."""

from __future__ import annotations

import copy
from contextlib import nullcontext

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from jaqmoo.quant.csq import CLIP_MARK, CSQBlock, csq_blocks, encode_input, pack_bits, unpack_bits
from jaqmoo.quant.layers import QuantConv2d
from jaqmoo.quant.memory import sandwich_saved_peak, saved_activation_bytes
from jaqmoo.quant.sandwich import sandwich_policies
from jaqmoo.quant.sensitivity import measure_sensitivity, rank_sensitive_channels
from jaqmoo.quant.supernet import build_supernet


def _block(groups: int, act: nn.Module | None, seed: int = 0):
    torch.manual_seed(seed)
    conv = QuantConv2d.from_module(nn.Conv2d(8, 8, 3, padding=1, groups=groups, bias=False))
    conv.set_bits(4, 4)
    bn = nn.BatchNorm2d(8)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    return conv, bn, act


def _grads(conv, bn, act, x, up, fused: bool):
    conv, bn = copy.deepcopy(conv), copy.deepcopy(bn)
    x = x.clone().requires_grad_()
    conv.train()
    bn.train()
    if fused:
        out = CSQBlock(conv, bn, act)(x)
    else:
        out = bn(conv(x))
        out = act(out) if act is not None else out
    (out * up).sum().backward()
    return out.detach(), x.grad, conv.weight.grad, conv.a_step.grad, conv.w_step.grad, bn.weight.grad, bn.bias.grad, bn


@pytest.mark.parametrize("groups", [1, 8])
@pytest.mark.parametrize("act", [nn.ReLU6(), nn.ReLU(), None])
def test_all_channels_trained_gives_the_lsq_values_and_gradients(groups, act):
    conv, bn, act = _block(groups, act)
    x = torch.randn(40, 8, 6, 6).abs() + 0.01  # non-negative (after a ReLU): unsigned codes; 2 batch slices
    up = torch.randn(40, 8, 6, 6)
    conv.lsq_path = "lean"
    conv(x)  # initialise the activation step
    conv.sensitive = torch.arange(8)
    ref = _grads(conv, bn, act, x, up, fused=False)
    got = _grads(conv, bn, act, x, up, fused=True)
    for i in (0, 1, 2, 4, 5, 6):  # output; input, weight, weight-step and batch-norm gradients
        assert torch.allclose(ref[i], got[i], rtol=1e-3, atol=2e-4), (i, (ref[i] - got[i]).abs().max())
    # the activation step's gradient comes from the int8 rounding residual (resolution 1/254)
    assert torch.allclose(ref[3], got[3], rtol=0.1, atol=2e-3)  # typical magnitude here: ~0.1
    assert torch.allclose(ref[-1].running_mean, got[-1].running_mean, atol=1e-6)
    assert torch.allclose(ref[-1].running_var, got[-1].running_var, atol=1e-5)


@pytest.mark.parametrize("groups", [1, 8])
def test_only_sensitive_channels_are_trained(groups):
    conv, bn, act = _block(groups, nn.ReLU6())
    x = torch.randn(4, 8, 6, 6)
    up = torch.randn(4, 8, 6, 6)
    conv(x)
    sens = torch.tensor([1, 5])
    conv.sensitive = sens
    ref = _grads(conv, bn, act, x, up, fused=False)
    out, gx, gw, ga, gws, gg, gb, _ = _grads(conv, bn, act, x, up, fused=True)
    assert torch.allclose(out, ref[0], atol=1e-5)
    other = torch.tensor([i for i in range(8) if i not in (1, 5)])
    assert torch.allclose(gw[sens], ref[2][sens], rtol=1e-3, atol=2e-4)
    assert torch.equal(gw[other], torch.zeros_like(gw[other]))
    assert torch.allclose(gg[sens], ref[5][sens], atol=1e-4) and torch.allclose(gb[sens], ref[6][sens], atol=1e-4)
    assert torch.equal(gg[other], torch.zeros(6)) and torch.equal(gb[other], torch.zeros(6))
    assert torch.equal(gws[:, other], torch.zeros_like(gws[:, other]))
    assert gx.abs().sum() > 0 and ga is not None  # the input gradient still flows through every channel


def test_block_stores_codes_residual_mask_and_sensitive_outputs_only():
    conv, bn, act = _block(1, nn.ReLU6())
    x = torch.randn(16, 8, 10, 10)
    conv(x)
    conv.sensitive = torch.tensor([0, 3])
    block = CSQBlock(conv, bn, act).train()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        block(x.requires_grad_())
    big = sorted((str(t.dtype), tuple(t.shape)) for t in saved if t.numel() >= 16 * 8 * 10 * 10 // 8)
    assert big == sorted([("torch.int8", (16, 8, 10, 10)), ("torch.int8", (16, 8, 10, 10)),
                          ("torch.uint8", (16, 8 * 10 * 10 // 8)), ("torch.float32", (16, 2, 10, 10))])


def test_encode_input_marks_lsq_clipping_exactly():
    v = torch.tensor([-9.0, -8.6, -8.4, -8.0, 0.3, 6.6, 7.0, 7.4, 7.6, 9.0])
    codes, resid = encode_input(v, 1.0, -8, 7)
    assert codes.dtype == torch.int8 and codes.tolist() == [-8, -8, -8, -8, 0, 7, 7, 7, 7, 7]
    clipped = [i for i, r in enumerate(resid.tolist()) if r == CLIP_MARK]
    assert clipped == [0, 1, 2, 7, 8, 9]  # LSQ: inside iff qmin <= v <= qmax
    assert abs(float(resid[4]) / 254 - (0 - 0.3)) < 1 / 254
    codes8, resid8 = encode_input(torch.tensor([-0.2, 0.0, 254.6, 255.0, 300.0]), 1.0, 0, 255)
    assert codes8.dtype == torch.uint8 and codes8.tolist() == [0, 0, 255, 255, 255]  # unsigned 8 bits: one byte
    assert [r == CLIP_MARK for r in resid8.tolist()] == [True, False, False, False, True]


def test_pack_bits_round_trip():
    m = torch.rand(3, 5, 7) > 0.5
    packed = pack_bits(m)
    assert packed.shape == (3, 5) and packed.dtype == torch.uint8  # 35 bits per sample -> 5 bytes
    assert torch.equal(unpack_bits(packed, m.shape), m)
    assert torch.equal(unpack_bits(packed[1:], m[1:].shape), m[1:])  # rows unpack on their own


def _mnv2(fraction: float):
    torch.manual_seed(0)
    sn = build_supernet("mobilenet_v2", 10, 1, 16, width_mult=0.25, csq_fraction=fraction)
    x, y = torch.randn(8, 1, 16, 16), torch.randint(0, 10, (8,))
    sn.train()
    sn(x)
    return sn, x, y


@pytest.mark.parametrize("bits", [4, 8])
def test_csq_install_keeps_state_dict_and_cuts_saved_memory(bits):
    sn, x, y = _mnv2(0.0)
    sn.set_lsq_path("fused")
    sn.set_policy(sn.uniform_policy(bits))
    keys = list(sn.state_dict())

    def step():
        return F.cross_entropy(sn(x), y)

    lean = saved_activation_bytes(sn, step)
    sn.set_csq_fraction(0.25)
    rank_sensitive_channels(sn, [(x, y)])
    sn.set_policy(sn.uniform_policy(bits))
    with csq_blocks(sn.model) as n:
        assert n == len(sn.layers) - 1  # every conv (the classifier is linear)
        csq = saved_activation_bytes(sn, step)
    assert list(sn.state_dict()) == keys
    assert csq.activation_bytes < 0.4 * lean.activation_bytes


def test_sensitivity_scores_output_channels_and_marks_the_top_fraction():
    sn, x, y = _mnv2(0.25)
    scores = measure_sensitivity(sn, [(x, y)])
    assert [s.numel() for s in scores] == [m.weight.shape[0] for m in sn.layers]
    assert all(bool((s >= 0).all()) for s in scores) and all(float(s.sum()) > 0 for s in scores[:-1])
    sn.set_sensitive_channels(scores)
    conv = sn.layers[1]
    k = conv.sensitive.numel()
    assert k == -(-conv.out_channels // 4)
    assert set(conv.sensitive.tolist()) == set(torch.topk(scores[1], k).indices.tolist())


def test_policies_switch_while_blocks_are_installed():
    sn, x, y = _mnv2(0.25)
    rank_sensitive_channels(sn, [(x, y)])
    with csq_blocks(sn.model):
        sn.set_policy(sn.uniform_policy(3))
        assert all(m.w_bits == 3 for m in sn.layers)
        F.cross_entropy(sn(x), y).backward()
    assert sn.layers[0] is sn.model.get_submodule(sn.layer_names[0])


@pytest.mark.parametrize("top", [4, 8])
def test_csq_cuts_the_sandwich_step_peak(top):
    """The largest saved-for-backward memory over a sandwich step's sub-steps (top bits, 2 bits, a
    level + noise middle): CSQ 0.1 well under the fused-LSQ step, and under CSQ with every channel."""
    sn, x, y = _mnv2(0.0)
    sn.set_lsq_path("fused")
    policies = sandwich_policies(sn, np.random.default_rng(0), 1, top_bits=top)
    assert policies[0] == sn.uniform_policy(top) and max(max(p.weight_bits) for p in policies) == top

    def loss():
        return F.cross_entropy(sn(x), y)

    peaks = {}
    for fraction in (0.0, 0.1, 1.0):
        sn.set_csq_fraction(fraction)
        if fraction > 0:
            rank_sensitive_channels(sn, [(x, y)])
        with csq_blocks(sn.model) if fraction > 0 else nullcontext():
            peaks[fraction] = sandwich_saved_peak(sn, policies, loss).activation_bytes
    assert peaks[0.1] < 0.3 * peaks[0.0]
    assert peaks[0.1] < peaks[1.0]
