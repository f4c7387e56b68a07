"""Elastic MobileNetV1 (issue 12): the MobileNetV1 family of the elastic space, its supernet,
checkpoints, spec and the `jaqmoo run` / report path on digits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_elastic import saved_and_reloaded
from test_elastic_experiment import _tiny

from jaqmoo.data import FASHION_MNIST_DIR
from jaqmoo.errors import JaqmooError
from jaqmoo.experiment.spec import load_spec, parse_spec
from jaqmoo.models import model_workload
from jaqmoo.models.elastic_mbv1 import v1_stages
from jaqmoo.models.elastic_space import ArchSpec, ElasticSpace, arch_stats, subnet_workload
from jaqmoo.models.mobilenet_v1 import V1_BLOCKS
from jaqmoo.quant.elastic import (
    ElasticSupernet,
    build_elastic_supernet,
    elastic_train_step,
    evaluate_pair,
    load_elastic_supernet,
    sandwich_pairs,
    sort_hidden_channels,
)

V1 = "mobilenet_v1"
SPACE = ElasticSpace.from_dict({}, width_mult=0.25, model=V1)  # depth 1/2/4/6, kernel 3/5/7
JAQ_V1 = Path(__file__).resolve().parent.parent / "problems" / "jaq-mobilenetv1-eyeriss.yaml"


def test_stages_and_space():
    assert v1_stages() == ((1, 64, 1, 1), (1, 128, 2, 2), (1, 256, 2, 2), (1, 512, 6, 2), (1, 1024, 2, 2))
    assert sum(n for _, _, n, _ in v1_stages()) == len(V1_BLOCKS)
    assert SPACE.expand == (1,) and SPACE.depth == (1, 2, 4, 6) and SPACE.stage_blocks == (1, 2, 2, 6, 2)
    assert [SPACE.depth_choices(s) for s in range(5)] == [(1,), (1, 2), (1, 2), (1, 2, 4, 6), (1, 2)]
    assert ElasticSpace(model=V1).expand == (1,)  # a family without expand layers: ratio 1 only
    # a dropped block is always an equal-shape one: each stage's first block runs at every depth
    small = SPACE.block_shapes(SPACE.smallest())
    assert [b is not None for b in small] == [True, True, False, True, False, True] + [False] * 5 + [True, False]
    dropped = [b for b, s in zip(SPACE.block_shapes(SPACE.largest()), small, strict=True) if s is None]
    assert len(dropped) == 8 and all(b.inp == b.oup and b.stride == 1 for b in dropped)


@pytest.mark.parametrize("width, shape", [(0.5, (1, 28, 28)), (1.0, (3, 224, 224)), (0.25, (1, 8, 8))])
def test_largest_is_the_fixed_mobilenet_v1(width, shape):
    space = ElasticSpace.from_dict({"depth": [2, 6], "kernel": [3]}, width_mult=width, model=V1)
    ours = subnet_workload(space, space.largest(), 10, *shape[:2])
    today = model_workload(V1, shape, 10, width)
    assert ours.layers == today.layers  # names included: a policy of today's network applies
    from jaqmoo.models import build_model
    from jaqmoo.models.elastic_space import build_largest

    fixed = build_model(V1, 10, shape[0], shape[1], width).state_dict()
    largest = build_largest(space, 10, shape[0], shape[1]).state_dict()
    assert {k: v.shape for k, v in largest.items()} == {k: v.shape for k, v in fixed.items()}


def test_largest_at_8_bits_reproduces_fixed_cost():
    from jaqmoo.cost import network_cost
    from jaqmoo.hardware.templates import load_accelerator_spec
    from jaqmoo.mapping.mapper import Mapper

    space = ElasticSpace.from_dict({"depth": [1, 6], "kernel": [3]}, width_mult=0.25, model=V1)
    accel = load_accelerator_spec("eyeriss")
    ours = network_cost(subnet_workload(space, space.largest(), 10, 1, 8), accel, bits=(8, 8, 8),
                        mapper=Mapper(budget=200, refine_rounds=2))
    today = network_cost(model_workload(V1, (1, 8, 8), 10, 0.25), accel, bits=(8, 8, 8),
                         mapper=Mapper(budget=200, refine_rounds=2))
    assert ours.energy_uj == pytest.approx(today.energy_uj, rel=1e-12)
    assert ours.cycles == today.cycles
    assert ours.memory_bits == today.memory_bits


@pytest.mark.parametrize("seed", range(3))
def test_subnet_layers_two_per_running_block(seed):
    """Workload == standalone and forward == export are checked for both families in test_elastic.py."""
    spec = SPACE.sample(np.random.default_rng(seed))
    derived = subnet_workload(SPACE, spec, 10, 1, 28)
    assert len(derived.layers) == 2 + 2 * sum(b is not None for b in SPACE.block_shapes(spec))


def test_canonical_and_bad_choices():
    big = SPACE.largest()
    a = ArchSpec((1, 2, 2, 4, 2), big.expand, big.kernel)
    kernel = list(big.kernel)
    kernel[9] = 3  # the 5th block of the 512 stage does not run at depth 4
    b = ArchSpec((1, 2, 2, 4, 2), big.expand, tuple(kernel))
    assert a != b and SPACE.canonical(a) == SPACE.canonical(b)
    assert SPACE.canonical(a).expand == (1,) * 9 + (0, 0) + (1, 1)
    with pytest.raises(JaqmooError, match="depth\\[3\\]=3"):
        SPACE.check(ArchSpec((1, 2, 2, 3, 2), big.expand, big.kernel))
    with pytest.raises(JaqmooError, match="model.elastic.expand: mobilenet_v1's depthwise-separable"):
        ElasticSpace.from_dict({"expand": [3, 6]}, model=V1)


def test_supernet_layers_are_the_fixed_mobilenet_v1s():
    sn = build_elastic_supernet(SPACE, 10, 1, 16, bits=(2, 4, 8))
    assert sn.layer_names[:3] == ("features.0.0", "features.1.0", "features.2.0") and sn.layer_names[-1] == "classifier"


def test_training_step_pair_evaluation_and_no_sorting():
    torch.manual_seed(0)
    sn = build_elastic_supernet(SPACE, 10, 1, 8, bits=(2, 4, 8))
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    pairs = sandwich_pairs(sn, np.random.default_rng(0), 2)
    assert pairs[0][0] == SPACE.largest() and pairs[1][0] == SPACE.smallest()
    assert np.isfinite(elastic_train_step(sn, x, y, pairs, distill=True))
    grads = [p.grad for n, p in sn.named_parameters() if ".mats." in n]
    assert grads and any(g is not None and float(g.abs().sum()) > 0 for g in grads)  # kernel transforms learn
    state = {k: v.clone() for k, v in sn.state_dict().items()}
    sort_hidden_channels(sn)  # MobileNetV1 has no hidden-channel choice: nothing moves
    assert all(torch.equal(state[k], v) for k, v in sn.state_dict().items())
    acc = evaluate_pair(sn, SPACE.smallest(), sn.uniform_policy(2), [x], x, y)
    assert 0.0 <= acc <= 1.0 and sn.arch == SPACE.largest()


def test_checkpoint_records_family_and_space(tmp_path):
    from jaqmoo.quant.checkpoints import load_supernet
    from jaqmoo.quant.identity import identity_of_checkpoint
    from jaqmoo.quant.supernet import read_checkpoint

    path = saved_and_reloaded(SPACE, tmp_path / "v1.pt", 2)
    assert identity_of_checkpoint(read_checkpoint(path))["elastic"]["model"] == V1
    other = ElasticSpace.from_dict({"kernel": [3, 5]}, width_mult=0.25, model=V1)
    with pytest.raises(JaqmooError, match=r"another architecture space \(kernel: \[3, 5, 7\] -> \[3, 5\]\)"):
        load_elastic_supernet(path, expect_space=other)
    as_v2 = ElasticSpace(width_mult=0.25)
    with pytest.raises(JaqmooError, match="model: 'mobilenet_v1' -> 'mobilenet_v2'"):
        load_elastic_supernet(path, expect_space=as_v2)
    with pytest.raises(JaqmooError, match="not 'mobilenet_v2'"):
        load_supernet(path, expect_model="mobilenet_v2")
    assert isinstance(load_supernet(path, expect_model=V1), ElasticSupernet)


# ----------------------------------------------------------------------------- spec


def test_v1_elastic_spec_defaults_and_errors():
    base = {"dataset": {"name": "digits"}, "accelerator": {"template": "eyeriss"}, "search": {"population": 8}}
    spec = parse_spec({"model": {"name": V1, "elastic": {}}, **base}, "t.yaml")
    assert spec.model.elastic_dict == {"depth": [1, 2, 4, 6], "expand": [1], "kernel": [3, 5, 7]}
    assert parse_spec({"model": {"name": V1, "elastic": {"expand": [1]}}, **base}, "t.yaml").model.elastic == spec.model.elastic
    for elastic, message in [({"depth": [2, 7]}, r"model.elastic.depth\[1\]: 7 is out of range"),
                             ({"expand": [3, 6]}, "model.elastic.expand: mobilenet_v1's depthwise-separable"),
                             ({"kernel": [2]}, "model.elastic.kernel: .* even kernel")]:
        with pytest.raises(JaqmooError, match=message):
            parse_spec({"model": {"name": V1, "elastic": elastic}, **base}, "t.yaml")


def test_jaq_v1_spec_parses():
    spec = load_spec(JAQ_V1)
    assert spec.model.name == V1 and spec.model.elastic_dict == {"depth": [1, 2, 4, 6], "expand": [1], "kernel": [3, 5]}
    assert spec.objectives == ("accuracy", "energy", "memory")


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_jaq_v1_spec_prepares_without_training(tmp_path):
    from jaqmoo.experiment import prepare_experiment
    from jaqmoo.experiment.accuracy import expected_identity, supernet_path
    from jaqmoo.search.arch_genes import ArchGenomeSpace

    prep = prepare_experiment(JAQ_V1, out=tmp_path / "run")
    space = prep.search_space()
    assert isinstance(space, ArchGenomeSpace) and space.n_arch_genes == 5 + 2 * 13
    assert [layer.name for layer in prep.workload.layers] == list(prep.layer_names) == list(space.layer_names)
    fixed = model_workload(V1, (1, 28, 28), 10, 0.25).layers  # the largest: the fixed network, kernel 5
    assert [la.name for la in prep.workload.layers] == [lb.name for lb in fixed]
    assert prep.fixed_layers == {0: (8, 8), len(prep.layer_names) - 1: (8, 8)}
    ident = expected_identity(prep.spec, prep.splits)
    assert ident["elastic"]["model"] == V1 and ident["elastic"]["kernel"] == [3, 5]
    assert "mobilenet_v1-elastic-fashion-mnist-" in supernet_path(prep.spec, prep.splits, tmp_path / "x.pt").name


# ----------------------------------------------------------------------------- training, run, report (digits)


def test_cli_trains_an_elastic_v1_supernet(tmp_path):
    from jaqmoo.cli import main
    from jaqmoo.quant.identity import identity_of_checkpoint
    from jaqmoo.quant.supernet import read_checkpoint

    out = tmp_path / "v1.pt"
    args = ["supernet", "train", "--model", V1, "--elastic", "--depth", "1,6", "--kernel", "3,5", "--dataset",
            "digits", "--width-mult", "0.25", "--epochs", "1", "--max-train", "64", "--batch-size", "32",
            "--train-bits", "2,8", "--out", str(out), "--quiet", "--threads", "1"]
    assert main(args) == 0
    payload = read_checkpoint(out)
    assert identity_of_checkpoint(payload)["elastic"] == {"model": V1, "depth": [1, 6], "expand": [1],
                                                          "kernel": [3, 5], "width_mult": 0.25}
    assert "acc_smallest_min_bits" in payload["history"][-1]
    load_elastic_supernet(out, expect_space=ElasticSpace((1, 6), (1,), (3, 5), 0.25, V1))


@pytest.fixture(scope="module")
def tiny_v1_run(tmp_path_factory):
    """A tiny elastic MobileNetV1 run on digits (the V2 test's settings, model swapped)."""
    from jaqmoo.experiment import run_experiment

    tmp = tmp_path_factory.mktemp("elastic_v1")
    spec = _tiny(tmp)
    spec["model"] = {"name": V1, "width_mult": 0.25, "elastic": {"depth": [1, 6], "kernel": [3, 5]}}
    return tmp, spec, run_experiment(spec, out=tmp / "run", progress=False, plots=False)


def test_tiny_v1_run_front_and_report(tiny_v1_run):
    from jaqmoo.experiment.elastic import elastic_space
    from jaqmoo.reporting.html import write_report

    tmp, spec, result = tiny_v1_run
    run = result.run
    space = elastic_space(parse_spec(spec))
    assert space.model == V1 and space.expand == (1,)
    front = pd.read_csv(tmp / "run" / "front.csv")
    assert len(front) == len(run.front) > 0
    n_st, n_b = len(space.stage_blocks), space.n_blocks
    assert (n_st, n_b) == (5, 13)
    for _, row in front.iterrows():
        arch = ArchSpec(tuple(int(row[f"depth_s{i}"]) for i in range(n_st)),
                        tuple(int(row[f"expand_b{j}"]) for j in range(n_b)),
                        tuple(int(row[f"kernel_b{j}"]) for j in range(n_b)))
        wl = subnet_workload(space, arch, 10, 1, 8)
        assert row["macs"] == wl.macs and row["params"] == arch_stats(wl)["params"]
        assert {n for n in run.layer_names if pd.notna(row[f"w.{n}"])} == {layer.name for layer in wl.layers}
    meta = json.loads((tmp / "run" / "meta.json").read_text())
    assert meta["space"]["elastic"]["model"] == V1 and meta["layer_names"][-1] == "classifier"
    assert run.baselines.loc[0, "macs"] > run.baselines.loc[1, "macs"]  # largest vs smallest architecture
    assert run.evaluations["macs"].nunique() > 2
    (tmp / "run" / "report.html").unlink(missing_ok=True)
    html = Path(write_report(tmp / "run")).read_text()
    n_points = len(run.front) + len(run.baselines)
    assert html.count('"check":{"ok":true') == n_points and '"check":{"ok":false' not in html
    assert html.count('"architecture":{"depth":') == n_points


def test_v1_checkpoint_is_refused_as_v2(tiny_v1_run):
    from jaqmoo.experiment import run_experiment

    tmp, spec, _ = tiny_v1_run
    as_v2 = json.loads(json.dumps(spec))
    as_v2["model"] = {"name": "mobilenet_v2", "width_mult": 0.25, "elastic": {"depth": [1, 2], "kernel": [3, 5]}}
    with pytest.raises(JaqmooError, match=r"model: mobilenet_v1 -> mobilenet_v2|model: 'mobilenet_v1' -> 'mobilenet_v2'"):
        run_experiment(as_v2, out=tmp / "as_v2", progress=False, plots=False)
    other = json.loads(json.dumps(spec))
    other["model"]["elastic"]["kernel"] = [3]
    with pytest.raises(JaqmooError, match=r"elastic.kernel: \[3, 5\] -> \[3\]"):
        run_experiment(other, out=tmp / "other", progress=False, plots=False)
    assert not (tmp / "as_v2" / "evaluations.jsonl").exists()
