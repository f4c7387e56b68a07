"""Elastic MobileNetV2 supernet: sub-network workloads, weight sharing, checkpoints (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from jaqmoo.errors import JaqmooError
from jaqmoo.models import model_workload
from jaqmoo.models.elastic_space import (
    ArchSpec,
    ElasticSpace,
    arch_stats,
    build_standalone,
    subnet_workload,
)
from jaqmoo.quant.elastic import (
    build_elastic_supernet,
    elastic_train_step,
    evaluate_pair,
    export_subnet,
    load_elastic_supernet,
    sandwich_pairs,
    sort_hidden_channels,
)
from jaqmoo.quant.policy import FLOAT_BITS
from jaqmoo.workload import extract_workload

SPACE = ElasticSpace(width_mult=0.25)
V1_SPACE = ElasticSpace.from_dict({}, width_mult=0.25, model="mobilenet_v1")  # depth 1/2/4/6, kernel 3/5/7
BOTH = pytest.mark.parametrize("space", [SPACE, V1_SPACE], ids=["v2", "v1"])


def _randomise(sn) -> None:
    """Non-trivial BN statistics and kernel transforms, so equalities below are not vacuous."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in sn.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
        for name, p in sn.named_parameters():
            if ".mats." in name:
                p.add_(0.1 * torch.randn(p.shape, generator=g))


@BOTH
@pytest.mark.parametrize("seed", range(6))
def test_sampled_subnet_workload_equals_standalone(space, seed):
    spec = space.sample(np.random.default_rng(seed))
    derived = subnet_workload(space, spec, 10, 1, 28)
    standalone = extract_workload(build_standalone(space, spec, 10, 1, 28), (1, 28, 28))
    assert [la.shape_key for la in derived.layers] == [lb.shape_key for lb in standalone.layers]
    assert derived.macs == standalone.macs


def test_largest_is_todays_network():
    space = ElasticSpace(depth=(2, 3, 4), expand=(3, 4, 6), kernel=(3,), width_mult=0.5)
    for shape in ((1, 28, 28), (3, 224, 224)):
        ours = subnet_workload(space, space.largest(), 10, *shape[:2])
        today = model_workload("mobilenet_v2", shape, 10, 0.5)
        assert ours.layers == today.layers  # names included: a policy of today's network applies


def test_largest_at_8_bits_reproduces_fixed_cost():
    from jaqmoo.cost import network_cost
    from jaqmoo.hardware.templates import load_accelerator_spec
    from jaqmoo.mapping.mapper import Mapper

    space = ElasticSpace(depth=(2, 3, 4), expand=(3, 4, 6), kernel=(3,), width_mult=0.35)
    accel = load_accelerator_spec("eyeriss")
    ours = network_cost(subnet_workload(space, space.largest(), 10, 1, 8), accel, bits=(8, 8, 8),
                        mapper=Mapper(budget=200, refine_rounds=2))
    today = network_cost(model_workload("mobilenet_v2", (1, 8, 8), 10, 0.35), accel, bits=(8, 8, 8),
                         mapper=Mapper(budget=200, refine_rounds=2))
    assert ours.energy_uj == pytest.approx(today.energy_uj, rel=1e-12)
    assert ours.cycles == today.cycles
    assert ours.memory_bits == today.memory_bits


def test_canonical_makes_duplicates_equal():
    largest = SPACE.largest()
    # stage 1 has 2 blocks: depth 3 and 4 there are the same network; stage 2 at depth 2 drops block 5
    a = ArchSpec(largest.depth[:1] + (3,) + (2,) + largest.depth[3:], largest.expand, largest.kernel)
    b_expand = list(largest.expand)
    b_kernel = list(largest.kernel)
    b_expand[5], b_kernel[5] = 3, 3  # block 5 (third of stage 2) does not run
    b = ArchSpec(largest.depth[:1] + (4,) + (2,) + largest.depth[3:], tuple(b_expand), tuple(b_kernel))
    assert a != b
    assert SPACE.canonical(a) == SPACE.canonical(b)
    assert subnet_workload(SPACE, a, 10, 1, 28) == subnet_workload(SPACE, b, 10, 1, 28)
    assert SPACE.canonical(SPACE.canonical(a)) == SPACE.canonical(a)


def test_bad_specs_and_spaces_are_clear_errors():
    with pytest.raises(JaqmooError, match="kernel"):
        ElasticSpace.from_dict({"kernel": [3, 4]})
    with pytest.raises(JaqmooError, match="unknown keys"):
        ElasticSpace.from_dict({"depths": [2]})
    with pytest.raises(JaqmooError, match="mobilenet_v2"):
        ElasticSpace.from_dict({}, model="resnet18")
    spec = SPACE.largest()
    with pytest.raises(JaqmooError, match="expand"):
        SPACE.check(ArchSpec(spec.depth, (1,) + (5,) * (SPACE.n_blocks - 1), spec.kernel))
    with pytest.raises(JaqmooError, match="depth has"):
        SPACE.check(ArchSpec(spec.depth[:3], spec.expand, spec.kernel))


@BOTH
@pytest.mark.parametrize("seed", range(3))
def test_elastic_forward_equals_exported_standalone(space, seed):
    torch.manual_seed(seed)
    sn = build_elastic_supernet(space, 10, 1, 16, bits=(2, 4, 8))
    _randomise(sn)
    sn.set_policy(sn.uniform_policy(FLOAT_BITS))
    spec = space.sample(np.random.default_rng(seed))
    sn.set_arch(spec)
    sn.eval()
    x = torch.randn(3, 1, 16, 16)
    net = export_subnet(sn, spec).eval()
    with torch.no_grad():
        assert torch.allclose(sn(x), net(x), atol=1e-5)
    workload = subnet_workload(space, spec, 10, 1, 16)
    assert arch_stats(workload)["params"] == sum(
        m.weight.numel() + (m.bias.numel() if isinstance(m, nn.Linear) else 0)
        for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear))
    assert sn.active_layer_names() == tuple(layer.name for layer in workload.layers)


def test_sort_hidden_channels_keeps_largest_function_and_ranks():
    torch.manual_seed(0)
    sn = build_elastic_supernet(SPACE, 10, 1, 16, bits=(4, 8))
    _randomise(sn)
    sn.set_policy(sn.uniform_policy(8))
    sn.eval()
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        before = sn(x)
        sort_hidden_channels(sn)
        after = sn(x)
    assert torch.allclose(before, after, atol=1e-5)
    proj = sn.model.features[3].conv[2].weight.abs().sum(dim=(0, 2, 3))
    assert bool((proj[:-1] >= proj[1:]).all())


def test_training_step_and_pair_evaluation():
    torch.manual_seed(0)
    sn = build_elastic_supernet(SPACE, 10, 1, 8, bits=(2, 4, 8))
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    pairs = sandwich_pairs(sn, np.random.default_rng(0), 2)
    assert pairs[0][0] == SPACE.largest() and pairs[1][0] == SPACE.smallest()
    assert set(pairs[0][1].weight_bits) == {8} and set(pairs[1][1].weight_bits) == {2}
    loss = elastic_train_step(sn, x, y, pairs, distill=True)
    assert np.isfinite(loss)
    grads = [p.grad for n, p in sn.named_parameters() if ".mats." in n]
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads)  # kernel transforms learn
    before = [b.running_mean.clone() for b in sn.modules() if isinstance(b, nn.BatchNorm2d)]
    acc = evaluate_pair(sn, SPACE.smallest(), sn.uniform_policy(2), [x], x, y)
    assert 0.0 <= acc <= 1.0
    after = [b.running_mean for b in sn.modules() if isinstance(b, nn.BatchNorm2d)]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert sn.arch == SPACE.largest()


def saved_and_reloaded(space, path, seed: int):
    """A randomised elastic supernet of ``space`` saved to ``path`` (with its space recorded) and
    loaded back; asserts both compute the same function on a sampled sub-network. Returns the path."""
    torch.manual_seed(0)
    sn = build_elastic_supernet(space, 10, 1, 8, bits=(4, 8))
    _randomise(sn)
    path = sn.save(path, config={"extra": {"elastic": space.to_dict()}})
    back = load_elastic_supernet(path, expect_space=space)
    spec = space.sample(np.random.default_rng(seed))
    x = torch.randn(2, 1, 8, 8)
    for net in (sn, back):
        net.set_arch(spec)
        net.set_policy(net.uniform_policy(4))
        net.eval()
    with torch.no_grad():
        assert torch.allclose(sn(x), back(x))
    return path


def test_checkpoint_round_trip_and_other_space_is_an_error(tmp_path):
    path = saved_and_reloaded(SPACE, tmp_path / "e.pt", 5)
    other = ElasticSpace(depth=(2, 3), expand=(3, 4, 6), kernel=(3, 5, 7), width_mult=0.25)
    with pytest.raises(JaqmooError, match=r"another architecture space \(depth"):
        load_elastic_supernet(path, expect_space=other)
    from jaqmoo.quant.identity import identity_differences, identity_of_checkpoint, make_identity
    from jaqmoo.quant.supernet import read_checkpoint

    ident = identity_of_checkpoint(read_checkpoint(path))
    assert ident["elastic"] == SPACE.to_dict()
    wanted = make_identity(read_checkpoint(path)["meta"], None, elastic=other.to_dict())
    assert any(d.startswith("elastic.depth") for d in identity_differences(ident, wanted))


def test_fixed_checkpoint_is_not_elastic(tmp_path):
    from jaqmoo.quant.supernet import build_supernet

    path = build_supernet("simple_cnn", 10, 1, 8, 0.25, bits=(4, 8)).save(tmp_path / "f.pt")
    with pytest.raises(JaqmooError, match="--elastic"):
        load_elastic_supernet(path)


def test_cli_train_elastic_writes_space_and_resume_refuses_another(tmp_path, capsys):
    from jaqmoo.cli import main
    from jaqmoo.quant.identity import identity_of_checkpoint
    from jaqmoo.quant.supernet import read_checkpoint

    out = tmp_path / "el.pt"
    args = ["supernet", "train", "--elastic", "--depth", "1,2", "--expand", "3,6", "--kernel", "3,5", "--dataset",
            "digits", "--width-mult", "0.25", "--epochs", "1", "--max-train", "64", "--batch-size", "32",
            "--train-bits", "2,8", "--out", str(out), "--quiet", "--threads", "1"]
    assert main(args) == 0
    payload = read_checkpoint(out)
    assert identity_of_checkpoint(payload)["elastic"] == {"model": "mobilenet_v2", "depth": [1, 2], "expand": [3, 6],
                                                          "kernel": [3, 5], "width_mult": 0.25}
    assert "acc_smallest_min_bits" in payload["history"][-1]
    load_elastic_supernet(out, expect_space=ElasticSpace((1, 2), (3, 6), (3, 5), 0.25))
    bad = [a if a != "3,5" else "3,7" for a in args] + ["--resume"]
    capsys.readouterr()
    assert main(bad) != 0
    assert "another architecture space (kernel: [3, 5] -> [3, 7])" in capsys.readouterr().err
    assert main([a for a in args if a != "--elastic"]) != 0
    assert "need --elastic" in capsys.readouterr().err


def test_sort_hidden_channels_keeps_every_block_output():
    """Each block's output is unchanged by the sort (the network's output alone can be blind to it:
    at initialisation it hardly depends on the input). A block without an expand layer keeps its
    channel order: its depthwise channels are its input channels."""
    torch.manual_seed(0)
    sn = build_elastic_supernet(SPACE, 10, 1, 16, bits=(4, 8))
    _randomise(sn)
    sn.set_policy(sn.uniform_policy(FLOAT_BITS))
    sn.eval()
    outputs: list[torch.Tensor] = []
    blocks = [m for m in sn.model.features if hasattr(m, "active_hidden")]
    hooks = [b.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for b in blocks]
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        sn(x)
        before, outputs[:] = list(outputs), []
        sn(torch.randn(2, 1, 16, 16))
        assert not torch.allclose(before[0], outputs[0])  # the blocks do see the input
        outputs.clear()
        sort_hidden_channels(sn)
        sn(x)
    for h in hooks:
        h.remove()
    assert len(before) == len(outputs) == len(blocks)
    for a, b in zip(before, outputs, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
