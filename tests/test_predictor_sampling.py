"""Predictor training samples drawn where the search looks: level + noise bits, spread architectures."""

from __future__ import annotations

import numpy as np
import pytest

from jaqmoo.errors import JaqmooError
from jaqmoo.models.elastic_space import ElasticSpace, subnet_workload
from jaqmoo.quant.estimators import SAMPLING_VERSION, sample_policies
from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.quant.supernet import build_supernet

CHOICES = (2, 3, 4, 5, 6, 8)
SPACE = ElasticSpace(depth=(2, 3, 4), expand=(3, 4, 6), kernel=(3, 5), width_mult=0.25)


@pytest.fixture(scope="module")
def net():
    return build_supernet("mobilenet_v2", 10, 1, 28, width_mult=0.25, bits=CHOICES, fixed_first_last=8)


def _mean_free_bits(net, pols) -> np.ndarray:
    free = slice(1, len(net.layer_names) - 1)
    return np.array([(np.mean(p.weight_bits[free]) + np.mean(p.act_bits[free])) / 2 for p in pols])


def test_sample_policies_span_low_middle_and_high_levels(net):
    pols = sample_policies(net, 120, np.random.default_rng(0))
    assert len(pols) == 120
    means = _mean_free_bits(net, pols)
    level = means[len(CHOICES):]  # after the uniform anchors
    assert (level < 3.0).sum() >= 10 and (level > 6.5).sum() >= 10
    assert ((level > 4.0) & (level < 5.5)).sum() >= 10
    # unlike independent uniform genes (mean bits of 50 layers all near 4.7), and with per-layer variety
    assert np.ptp(level) > 4.0
    assert np.median([np.std(p.weight_bits[1:-1]) for p in pols[len(CHOICES):]]) > 0.3
    # few samples near chance: under the old draw nearly every policy had several 2-bit layers
    n_two = np.array([np.sum(np.asarray(p.weight_bits) == 2) + np.sum(np.asarray(p.act_bits) == 2) for p in pols])
    assert np.mean(n_two == 0) > 0.4


def test_sample_policies_anchor_every_uniform_bit_width_ends_first(net):
    pols = sample_policies(net, 40, np.random.default_rng(1))
    anchors = pols[: len(CHOICES)]
    assert [p.weight_bits[5] for p in anchors[:2]] == [8, 2]
    assert sorted(p.weight_bits[5] for p in anchors) == list(CHOICES)
    for p in anchors:
        assert len(set(p.weight_bits[1:-1])) == 1 and p.weight_bits[1:-1] == p.act_bits[1:-1]
    # a small budget keeps the two ends only
    small = sample_policies(net, 6, np.random.default_rng(1))
    assert [p.weight_bits[5] for p in small[:2]] == [8, 2] and len(set(small[2].weight_bits[1:-1])) > 1


def test_sample_policies_keep_rules_and_choices_and_are_deterministic(net):
    a = sample_policies(net, 50, np.random.default_rng(7), (2, 4, 8))
    b = sample_policies(net, 50, np.random.default_rng(7), (2, 4, 8))
    c = sample_policies(net, 50, np.random.default_rng(8), (2, 4, 8))
    assert a == b and a != c
    for p in a:
        assert net.check_policy(p) == p  # first/last layers at 8/8, every bit-width allowed
        assert set(p.weight_bits) | set(p.act_bits) <= {2, 4, 8}
        assert (p.weight_bits[0], p.act_bits[0], p.weight_bits[-1], p.act_bits[-1]) == (8, 8, 8, 8)
    assert sample_policies(net, 0, np.random.default_rng(0)) == []
    with pytest.raises(JaqmooError, match="n must be >= 0"):
        sample_policies(net, -1, np.random.default_rng(0))


def test_search_population_and_predictor_samples_share_one_draw():
    from jaqmoo.quant import sampling
    from jaqmoo.search import algorithms

    assert algorithms.spread_levels is sampling.spread_levels
    assert algorithms.SeededIntegerSampling().spread == sampling.LEVEL_SPREAD


def test_sample_archs_spread_sizes_largest_and_smallest_first():
    from jaqmoo.experiment.elastic import sample_archs

    archs = sample_archs(SPACE, 60, np.random.default_rng(0))
    assert archs[0] == SPACE.largest() and archs[1] == SPACE.smallest()
    assert all(SPACE.canonical(a) == a for a in archs)
    assert archs == sample_archs(SPACE, 60, np.random.default_rng(0))
    macs = np.array([subnet_workload(SPACE, a, 10, 1, 8).macs for a in archs[2:]])
    lo, hi = (subnet_workload(SPACE, a, 10, 1, 8).macs for a in (SPACE.smallest(), SPACE.largest()))
    span = (macs - lo) / (hi - lo)
    assert (span < 0.25).sum() >= 3 and (span > 0.75).sum() >= 3 and ((span > 0.35) & (span < 0.65)).sum() >= 3
    assert len({a.key for a in archs}) > 50
    assert sample_archs(SPACE, 1, np.random.default_rng(0)) == [SPACE.largest()]


def test_space_genes_round_trip_through_the_genome():
    from jaqmoo.search.arch_genes import ArchGenomeSpace
    from jaqmoo.search.genome import GenomeSpace

    names = tuple(layer.name for layer in subnet_workload(SPACE, SPACE.largest(), 10, 1, 8).layers)
    g = ArchGenomeSpace(SPACE, GenomeSpace(names, (2, 8), (2, 8)), 10, 1, 8)
    rng = np.random.default_rng(3)
    for x in g.random(20, rng):
        arch = g.decode_arch(x)
        assert SPACE.from_genes(x[: g.n_arch_genes]) == arch
        assert g.decode_arch(g.encode(arch, QuantPolicy.uniform(names, 8))) == arch
    with pytest.raises(JaqmooError, match="architecture genes"):
        SPACE.from_genes([0])


@pytest.mark.slow  # the positive ridge's nested cross-validation: ~90 s of CPU
def test_arch_predictor_fitted_on_sample_pairs_is_monotone_in_bits():
    import torch

    from jaqmoo.experiment.elastic import sample_pairs
    from jaqmoo.quant.elastic import build_elastic_supernet
    from jaqmoo.quant.elastic_estimators import ArchPredictor

    torch.manual_seed(0)
    sn = build_elastic_supernet(SPACE, 10, 1, 8, bits=(2, 4, 8), fixed_first_last=8)
    pairs = sample_pairs(sn, 30, np.random.default_rng(0), (2, 4, 8))
    assert pairs[0] == (SPACE.largest(), sn.uniform_policy(8)) and pairs[1][0] == SPACE.smallest()
    assert all(sn.check_policy(p) == p for _, p in pairs)

    def truth(arch, pol):  # depends on bits and on the network's size
        return min(1.0, np.mean(pol.weight_bits) / 8 * np.log(subnet_workload(SPACE, arch, 10, 1, 8).macs) / 20)

    pred = ArchPredictor(sn).fit(pairs, [truth(a, p) for a, p in pairs])
    assert pred.fit_error["cv_kendall_tau"] > 0.3
    # every layer of a pair lowered to 2 bits (weights, then activations): never predicted higher
    base, lowered = [], []
    for arch, pol in pairs[:4]:
        for i in range(1, len(pol) - 1, 5):
            for kind in ("weight", "act"):
                bits = {"weight": list(pol.weight_bits), "act": list(pol.act_bits)}
                bits[kind][i] = 2
                lowered.append((arch, QuantPolicy(pol.layer_names, tuple(bits["weight"]), tuple(bits["act"]), 8)))
                base.append((arch, pol))
    assert (pred.estimate_pairs(lowered) <= pred.estimate_pairs(base) + 1e-12).all()


def test_predictor_cache_key_names_the_sampling(tmp_path, monkeypatch):
    from jaqmoo.experiment.accuracy import cached_predictor
    from jaqmoo.experiment.spec import coerce_spec
    from jaqmoo.quant import estimators

    spec = coerce_spec("problems/quickstart.yaml")
    ckpt = tmp_path / "supernet.pt"
    ckpt.write_bytes(b"x")
    fits = []

    class Fitted(dict):  # a stand-in predictor stored as data (predictor.npz)
        def to_data(self):
            return {"fit": self["fit"]}, {}

    def fit():
        fits.append(1)
        return Fitted(fit=len(fits))

    def restore(header, arrays):
        return {"fit": header["fit"]}

    default = tmp_path / "run" / "supernet.pt"
    assert cached_predictor(spec, default, ckpt, "monotone", fit, restore=restore)[0] == {"fit": 1}
    assert cached_predictor(spec, default, ckpt, "monotone", fit, restore=restore)[0] == {"fit": 1}  # reused
    monkeypatch.setattr(estimators, "SAMPLING_VERSION", SAMPLING_VERSION + "-other")
    assert cached_predictor(spec, default, ckpt, "monotone", fit, restore=restore)[0] == {"fit": 2}  # refitted
