"""The fidelity benchmark's policy sampling (mixed bits, stratified over energy) and bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau

from jaqmoo.quant.fidelity import (
    bootstrap_kendall_tau,
    heterogeneous_policies,
    near_uniform,
    stratify_by_energy,
)
from jaqmoo.quant.policy import QuantPolicy

NAMES = tuple(f"l{i}" for i in range(12))
BITS = (2, 3, 4, 5, 6, 7, 8)


def test_stratify_takes_one_per_equal_width_energy_stratum():
    rng = np.random.default_rng(0)
    e = np.concatenate([rng.normal(50, 3, 400), [0.0, 100.0]])  # piled up in the middle, as random policies are
    idx = stratify_by_energy(e, 10, np.random.default_rng(1))
    assert len(idx) == len(set(idx)) == 10 and idx == sorted(idx)
    chosen = np.sort(e[idx])
    assert chosen[0] == 0.0 and chosen[-1] == 100.0  # the extremes are strata of their own
    # far more spread than a random subset of the pool (which stays near 50)
    assert np.std(chosen) > 3 * np.std(e[np.random.default_rng(2).choice(len(e), 10, replace=False)])


def test_stratify_covers_every_stratum_when_all_are_populated():
    e = np.linspace(0, 1, 1000)
    idx = stratify_by_energy(e, 20, np.random.default_rng(0))
    strata = np.minimum((e[idx] * 20).astype(int), 19)
    assert sorted(strata.tolist()) == list(range(20))


def test_stratify_is_seeded_and_checks_its_input():
    e = np.random.default_rng(0).random(100)
    assert stratify_by_energy(e, 10, np.random.default_rng(3)) == stratify_by_energy(e, 10, np.random.default_rng(3))
    with pytest.raises(ValueError, match="pool of 5"):
        stratify_by_energy(np.arange(5.0), 6, np.random.default_rng(0))
    with pytest.raises(ValueError, match="finite"):
        stratify_by_energy(np.array([1.0, np.nan, 2.0]), 2, np.random.default_rng(0))


def test_heterogeneous_policies_are_mixed_and_span_bit_levels():
    pols = heterogeneous_policies(NAMES, 200, np.random.default_rng(0), BITS)
    assert len(pols) == 200 and not any(near_uniform(p) for p in pols)
    means = np.array([np.mean(p.weight_bits + p.act_bits) for p in pols])
    assert means.min() < 3.8 and means.max() > 6.2  # low-bit-heavy and high-bit-heavy policies both occur
    assert all(len(set(p.weight_bits + p.act_bits)) >= 2 for p in pols)


def test_near_uniform_and_rules():
    assert near_uniform(QuantPolicy.uniform(NAMES, 4))
    mixed = QuantPolicy(NAMES, tuple(BITS[i % 7] for i in range(12)), tuple(BITS[(i + 3) % 7] for i in range(12)))
    assert not near_uniform(mixed)

    def keep_first_last(p):
        w, a = list(p.weight_bits), list(p.act_bits)
        w[0] = a[0] = w[-1] = a[-1] = 8
        return QuantPolicy(p.layer_names, tuple(w), tuple(a), 8)

    pols = heterogeneous_policies(NAMES, 20, np.random.default_rng(1), BITS, apply_rules=keep_first_last)
    assert all(p.weight_bits[0] == p.act_bits[-1] == 8 for p in pols)


def test_bootstrap_interval_brackets_tau_and_narrows_with_more_policies():
    rng = np.random.default_rng(0)

    def sample(n):
        truth = rng.random(n)
        return truth + rng.normal(0, 0.15, n), truth

    est, truth = sample(40)
    tau, lo, hi = bootstrap_kendall_tau(est, truth, seed=0)
    assert tau == pytest.approx(kendalltau(est, truth).statistic)
    assert lo < tau < hi and 0 < hi - lo < 0.6
    est2, truth2 = sample(400)
    t2, lo2, hi2 = bootstrap_kendall_tau(est2, truth2, seed=0)
    assert hi2 - lo2 < 0.5 * (hi - lo)
    assert bootstrap_kendall_tau(est, truth, seed=0) == (tau, lo, hi)  # seeded


def test_bootstrap_of_a_perfect_ranking_is_one_and_inputs_are_checked():
    x = np.arange(30.0)
    assert bootstrap_kendall_tau(x, 2 * x + 1, n_boot=200) == pytest.approx((1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="equal-length"):
        bootstrap_kendall_tau(x, x[:-1])
    with pytest.raises(ValueError, match="level"):
        bootstrap_kendall_tau(x, x, level=1.5)
