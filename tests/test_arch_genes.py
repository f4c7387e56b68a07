"""Architecture genes: deterministic, duplicate-aware decode; cost on the decoded sub-network (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

from jaqmoo.errors import JaqmooError
from jaqmoo.models.elastic_space import ElasticSpace, subnet_workload
from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.search.arch_genes import ArchEvaluator, ArchGenomeSpace
from jaqmoo.search.genome import GenomeSpace, HardwareGene

SPACE = ElasticSpace(depth=(2, 3, 4), expand=(3, 4, 6), kernel=(3, 5), width_mult=0.25)
SHAPE = dict(num_classes=10, in_channels=1, input_size=8)


def _genome(fixed_arch=None, hw=()) -> ArchGenomeSpace:
    names = tuple(layer.name for layer in subnet_workload(SPACE, SPACE.largest(), 10, 1, 8).layers)
    bits = GenomeSpace(names, (2, 4, 8), (4, 8), hardware_genes=hw)
    return ArchGenomeSpace(SPACE, bits, **SHAPE, fixed_arch=fixed_arch)


class FakePairs:
    """Accuracy = mean bits / 8 * log(MACs) / 20: depends on both; counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def estimate_pairs(self, pairs):
        self.calls += len(pairs)
        out = []
        for arch, pol in pairs:
            macs = subnet_workload(SPACE, arch, 10, 1, 8).macs
            out.append(min(1.0, np.mean(pol.weight_bits) / 8 * np.log(macs) / 20))
        return np.array(out)


def test_decode_is_deterministic_and_duplicate_aware():
    g = _genome()
    rng = np.random.default_rng(0)
    X = g.random(40, rng)
    for x in X:
        a, b = g.decode_one(x), g.decode_one(x.copy())
        assert a == b and g.phenotype_key(a) == g.phenotype_key(b)
    # change every gene of a layer / block that does not run: same phenotype
    x = g.encode(SPACE.smallest(), QuantPolicy.uniform(g.layer_names, 4, 8))
    cand = g.decode_one(x)
    active = set(cand.policy.layer_names)
    assert len(active) < len(g.layer_names)
    y = x.copy()
    names = g.gene_names()
    changed = 0
    for j, n in enumerate(names):
        if n.startswith(("w.", "a.")) and n[2:] not in active:
            y[j] = 0
            changed += 1
        if n.startswith(("arch.expand.b", "arch.kernel.b")) and cand.arch.kernel[int(n.rsplit("b", 1)[1])] == 0:
            y[j] = g.upper_bounds[j] - y[j]
            changed += 1
    assert changed > 0 and not np.array_equal(x, y)
    other = g.decode_one(y)
    assert g.phenotype_key(other) == g.phenotype_key(cand)
    assert other.full_policy == cand.full_policy  # inactive layers canonicalised too
    # depth 3 and 4 on a 3-block stage are one network (a single choice "3")
    assert SPACE.depth_choices(2) == (2, 3)  # the depth gene of a 3-block stage has no "4"
    # and a changed active gene is a different phenotype
    z = x.copy()
    j = next(j for j, n in enumerate(names) if n.startswith("w.") and n[2:] in active)
    z[j] = (z[j] + 1) % 3
    assert g.phenotype_key(g.decode_one(z)) != g.phenotype_key(cand)


def test_encode_decode_round_trip_and_fixed_arch():
    g = _genome()
    rng = np.random.default_rng(1)
    for _ in range(10):
        arch = SPACE.sample(rng)
        pol = QuantPolicy(g.layer_names, tuple(int(b) for b in rng.choice([2, 4, 8], len(g.layer_names))),
                          tuple(int(b) for b in rng.choice([4, 8], len(g.layer_names))), 8)
        cand = g.decode_one(g.encode(arch, pol))
        assert cand.arch == arch
        assert cand.policy == pol.with_layers(cand.policy.layer_names, strict=False)
    fixed = _genome(fixed_arch=SPACE.largest())
    assert fixed.n_var == fixed.bits.n_var and fixed.n_arch_genes == 0
    assert fixed.decode_one(fixed.random(1, rng)[0]).arch == SPACE.largest()
    with pytest.raises(JaqmooError, match="largest sub-network"):
        ArchGenomeSpace(SPACE, GenomeSpace(("x",), (8,), (8,)), **SHAPE)


def test_evaluator_costs_the_decoded_subnetwork():
    from jaqmoo.cost import network_cost
    from jaqmoo.hardware.templates import get_template

    g = _genome(hw=(HardwareGene("glb_depth", (4096, 8192), 8192),))
    template = get_template("eyeriss")
    fake = FakePairs()
    ev = ArchEvaluator(g, template, fake)
    x = g.encode(SPACE.smallest(), QuantPolicy.uniform(g.layer_names, 8, 8))
    cand = g.decode_one(x)
    rec, again = ev.evaluate([cand, g.decode_one(x.copy())])
    assert fake.calls == 1  # the duplicate phenotype is scored once
    wl = subnet_workload(SPACE, cand.arch, 10, 1, 8)
    assert rec["macs"] == wl.macs < subnet_workload(SPACE, SPACE.largest(), 10, 1, 8).macs
    direct = network_cost(wl, template.build(**cand.hardware), policy=cand.policy, mapper=ev.mapper)
    assert rec["energy_pj"] == pytest.approx(direct.energy_pj)
    assert rec["memory_bits"] == pytest.approx(direct.memory_bits)
    assert rec["depth_s2"] == 2 and rec["kernel_b9"] == 0 and rec["kernel_b16"] == 3 and again == rec


def test_joint_problem_runs_with_arch_genes():
    from jaqmoo.hardware.templates import get_template
    from jaqmoo.search.problem import JointProblem

    g = _genome()
    prob = JointProblem(g, ArchEvaluator(g, get_template("eyeriss"), FakePairs()), ["accuracy", "energy"])
    recs = prob.score(np.vstack([g.uniform_seeds([8, 4]), g.random(4, np.random.default_rng(2))]))
    assert len(recs) == 8 and all(r["feasible"] for r in recs)
    assert {r["depth_s3"] for r in recs[:4]} == {4, 2}
    assert all("arch.depth.s0" not in r for r in recs) and all("macs" in r for r in recs)


@pytest.mark.slow
def test_arch_predictor_is_monotone_in_bits():
    import torch

    from jaqmoo.quant.elastic import build_elastic_supernet
    from jaqmoo.quant.elastic_estimators import ArchPredictor

    torch.manual_seed(0)
    sn = build_elastic_supernet(SPACE, 10, 1, 8, bits=(2, 4, 8))
    rng = np.random.default_rng(0)
    pairs = [(SPACE.sample(rng), sn.random_policy(rng, (2, 4, 8))) for _ in range(30)]
    fake = FakePairs()
    pred = ArchPredictor(sn).fit(pairs, fake.estimate_pairs(pairs))
    assert pred.fit_error["cv_kendall_tau"] > 0.3
    for arch, pol in pairs[:10]:
        base = pred.estimate_pairs([(arch, pol)])[0]
        for i in range(0, len(pol), 7):
            w = list(pol.weight_bits)
            w[i] = 2
            lower = QuantPolicy(pol.layer_names, tuple(w), pol.act_bits, 8)
            assert pred.estimate_pairs([(arch, lower)])[0] <= base + 1e-12
