"""Supernet wrapping, policies, checkpoints, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jaqmoo.errors import JaqmooError
from jaqmoo.models import model_workload
from jaqmoo.quant.checkpoints import load_supernet
from jaqmoo.quant.fakequant import MSE_SAMPLES, int_range, mse_init_step
from jaqmoo.quant.layers import QuantConv2d
from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.quant.sensitivity import rank_sensitive_channels
from jaqmoo.quant.supernet import build_supernet
from jaqmoo.workload import extract_workload

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


@pytest.fixture()
def net():
    torch.manual_seed(0)
    return build_supernet("simple_cnn", 10, 1, 8, dataset="digits")


def test_layers_align_with_the_workload(net):
    wl = model_workload("simple_cnn", (1, 8, 8), num_classes=10)
    assert net.layer_names == tuple(layer.name for layer in wl.layers)
    # the wrapped model still extracts to the same workload
    assert [layer.shape_key for layer in extract_workload(net.model, (1, 8, 8)).layers] == [
        layer.shape_key for layer in wl.layers]


def test_mobilenet_v2_wraps_without_source_changes():
    sn = build_supernet("mobilenet_v2", 10, 1, 28, width_mult=0.25)
    wl = model_workload("mobilenet_v2", (1, 28, 28), num_classes=10, width_mult=0.25)
    assert len(sn.layer_names) == len(wl.layers) == 53
    assert all(isinstance(m, QuantConv2d) for m in sn.layers[:-1])


def test_policy_round_trip_and_changes_output(net):
    x = torch.randn(4, 1, 8, 8)
    net.train()
    net(x)  # initialise activation steps
    net.eval()
    rng = np.random.default_rng(0)
    pol = net.random_policy(rng)
    net.set_policy(pol)
    assert net.policy() == pol
    out_mixed = net(x)
    net.set_policy(net.uniform_policy(2))
    out_2 = net(x)
    net.set_policy(net.uniform_policy(32))
    out_f = net(x)
    assert not torch.allclose(out_mixed, out_2) and not torch.allclose(out_2, out_f)


def test_bad_policies_are_clear_errors(net):
    with pytest.raises(JaqmooError, match="layers"):
        net.set_policy(QuantPolicy.uniform(net.layer_names[:-1], 4))
    with pytest.raises(JaqmooError, match="out of range"):
        QuantPolicy.uniform(net.layer_names, 9)
    narrow = build_supernet("simple_cnn", 10, 1, 8, bits=(4, 8))
    with pytest.raises(JaqmooError, match="trained for bits"):
        narrow.set_policy(QuantPolicy.uniform(narrow.layer_names, 3))
    with pytest.raises(JaqmooError, match="csq_fraction"):
        net.set_csq_fraction(1.5)


def test_first_last_rule():
    sn = build_supernet("simple_cnn", 10, 1, 8, fixed_first_last=8)
    pol = QuantPolicy.uniform(sn.layer_names, 4)
    with pytest.raises(JaqmooError, match="first and last"):
        sn.set_policy(pol)
    fixed = sn.apply_rules(pol)
    sn.set_policy(fixed)
    assert fixed.weight_bits[0] == fixed.act_bits[-1] == 8 and fixed.weight_bits[1] == 4


def test_checkpoint_round_trip(net, tmp_path):
    x = torch.randn(4, 1, 8, 8)
    net.train()
    net(x)
    net.set_csq_fraction(0.5)
    rank_sensitive_channels(net, [(x, torch.arange(4))])
    net.eval()
    net.set_policy(net.uniform_policy(3, 5))
    ref = net(x)
    path = net.save(tmp_path / "sn.pt")
    back = load_supernet(path)
    back.eval()
    back.set_policy(back.uniform_policy(3, 5))
    assert torch.allclose(back(x), ref)
    assert back.meta.model == "simple_cnn" and back.meta.dataset == "digits"
    assert back.meta.input_shape == (1, 8, 8)
    assert all(torch.equal(a.sensitive, b.sensitive) for a, b in zip(net.layers, back.layers, strict=True))


def test_bad_checkpoints(net, tmp_path):
    path = net.save(tmp_path / "sn.pt")
    with pytest.raises(JaqmooError, match="not 'mobilenet_v2'"):
        load_supernet(path, expect_model="mobilenet_v2")
    payload = torch.load(path, weights_only=True)
    payload["meta"]["model"] = "mobilenet_v1"  # weights of another model under this name
    torch.save(payload, tmp_path / "other.pt")
    with pytest.raises(JaqmooError, match="another model"):
        load_supernet(tmp_path / "other.pt")
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(JaqmooError, match="corrupted"):
        load_supernet(tmp_path / "cut.pt")
    torch.save({"x": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(JaqmooError, match="not a jaqmoo"):
        load_supernet(tmp_path / "plain.pt")
    with pytest.raises(JaqmooError, match="does not exist"):
        load_supernet(tmp_path / "missing.pt")


def test_batch_norm_folding_for_evaluation_matches_the_unfolded_model():
    from jaqmoo.quant.supernet import _fold_batch_norms, _unfold_batch_norms

    torch.manual_seed(0)
    net = build_supernet("mobilenet_v2", 10, 1, 28, dataset="fashion-mnist", width_mult=0.25)
    names = net.layer_names
    net.set_policy(QuantPolicy(names, tuple(4 + i % 5 for i in range(len(names))),
                               tuple(3 + i % 6 for i in range(len(names)))))
    x = torch.randn(16, 1, 28, 28)
    net.model.train()
    with torch.no_grad():
        net.model(x)  # give the batch-norms non-trivial running statistics
    net.model.eval()
    with torch.no_grad():
        reference = net.model(x)
        before = [m for m in net.model.modules()]
        folded = _fold_batch_norms(net.model)
        assert len(folded) >= len(names) - 1  # every conv but the classifier has its BN
        out = net.model(x)
        _unfold_batch_norms(folded)
        assert [m for m in net.model.modules()] == before  # the model is put back as it was
    # equal up to float rounding (a value on a rounding boundary may move by one step)
    assert torch.allclose(out, reference, rtol=1e-3, atol=1e-3 * reference.abs().max().item())
    assert (out.argmax(1) == reference.argmax(1)).float().mean() >= 0.9


def test_calibrated_steps_fit_weights_that_moved_since_wrapping(net):
    """Float training moves weights away from the ones the steps were made for; calibrating
    makes 8-bit match float again, for every candidate bit-width, and changes nothing else."""
    torch.manual_seed(1)
    x = torch.randn(32, 1, 8, 8)
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.mul_(20.0)
    net.set_policy(net.uniform_policy(32))
    net.recalibrate_bn([x])  # running statistics = this batch's, as calibration sees it
    net.eval()
    ref = net(x).detach()

    def rel_error(bits: int) -> float:
        net.set_policy(net.uniform_policy(bits))
        return float((net(x).detach() - ref).norm() / ref.norm())

    stale = {b: rel_error(b) for b in (8, 4)}
    net.set_policy(net.uniform_policy(6))
    net.train()
    bn_before = [t.clone() for n, t in net.state_dict().items() if "running" in n]
    net.calibrate_steps(x)
    assert net.training and net.policy() == net.uniform_policy(6)
    assert all(torch.equal(a, t) for a, t in zip(bn_before, [t for n, t in net.state_dict().items() if "running" in n],
                                                     strict=True))
    assert all(bool(m.a_step_ready.all()) for m in net.layers)
    net.eval()
    fresh = {b: rel_error(b) for b in (8, 4)}
    assert fresh[8] < 0.05 < stale[8]
    assert fresh[4] < stale[4]


def test_calibrated_activation_steps_are_mse_init_step_of_the_whole_input():
    """calibrate_steps draws a large input's subsample once for every bit-width: the steps equal
    mse_init_step of each layer's whole input (which draws the same subsample itself)."""
    torch.manual_seed(1)
    net = build_supernet("simple_cnn", 10, 1, 28, 1.0, "fashion-mnist", (2, 4, 8))
    x = torch.randn(96, 1, 28, 28)
    seen: dict[int, torch.Tensor] = {}
    hooks = [m.register_forward_pre_hook(lambda _m, a, i=i: seen.setdefault(i, a[0].detach().clone()))
             for i, m in enumerate(net.layers)]
    net.set_policy(net.uniform_policy(32))
    net.eval()
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.train()
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    net.train()
    net.calibrate_steps(x)
    assert any(seen[i].numel() > MSE_SAMPLES for i in seen)  # the subsampled case is exercised
    for i, layer in enumerate(net.layers):
        for j, b in enumerate(layer.bits):
            want = mse_init_step(seen[i], *int_range(b, int(layer.a_signed) == 1))
            assert torch.equal(layer.a_step[j].reshape(()), want.reshape(())), (i, b)
