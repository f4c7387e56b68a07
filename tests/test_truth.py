"""The converged truth's machinery: band tau, convergence check, resumable QAT, cache, PTQ, bands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import TensorDataset

from jaqmoo.errors import JaqmooError
from jaqmoo.quant.estimators import EvalData, PTQEstimator, SupernetEstimator
from jaqmoo.quant.fidelity import (
    bootstrap_band_tau,
    convergence_check,
    iso_cost_band,
    near_uniform,
    paired_bootstrap_band_tau_difference,
    policy_distance,
    within_band_tau,
)
from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.quant.qat import calibrated_start, qat_finetune
from jaqmoo.quant.sampling import level_policies
from jaqmoo.quant.supernet import build_supernet
from jaqmoo.quant.truth import ConvergedTruth, TruthRecipe


def test_within_band_tau_by_hand():
    # band 0: same order (tau 1); band 1: one of three pairs swapped, (2 - 1) / 3 = 1/3
    est = [1, 2, 3, 1, 2, 3]
    truth = [10, 20, 30, 2, 1, 3]
    assert within_band_tau(est, truth, [0, 0, 0, 1, 1, 1]) == pytest.approx((1 + 1 / 3) / 2)
    # a reversed band: -1; the mean is 0
    assert within_band_tau(est, [10, 20, 30, 3, 2, 1], [0, 0, 0, 1, 1, 1]) == pytest.approx(0.0)
    # a band whose truth is constant has no tau and is left out of the mean
    assert within_band_tau(est, [10, 20, 30, 5, 5, 5], [0, 0, 0, 1, 1, 1]) == pytest.approx(1.0)
    assert np.isnan(within_band_tau(est, [5] * 6, [0, 0, 0, 1, 1, 1]))
    # global tau would be high here (band 1 sits above band 0), the within-band tau is not
    assert within_band_tau([1, 2, 3, 4], [2, 1, 4, 3], ["a", "a", "b", "b"]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="one band label per policy"):
        within_band_tau(est, truth, [0, 1])


def test_convergence_check_by_hand():
    # same ranking, differences 1, 1, 2 and 0 points: tau 1, mean 1.0 point -> not converged (> 0.3)
    c = convergence_check([0.80, 0.70, 0.60, 0.50], [0.81, 0.69, 0.62, 0.50])
    assert c.tau == pytest.approx(1.0) and c.mean_abs_diff_points == pytest.approx(1.0) and not c.passed
    # one swapped pair of six: tau (5 - 1) / 6 = 2/3 -> not converged although the mean is 0.05 point
    c = convergence_check([0.900, 0.800, 0.799, 0.600], [0.900, 0.799, 0.800, 0.600])
    assert c.tau == pytest.approx(2 / 3) and c.mean_abs_diff_points == pytest.approx(0.05) and not c.passed
    # same ranking, 0.2 point apart on average: converged
    c = convergence_check([0.90, 0.85, 0.80, 0.75], [0.902, 0.852, 0.802, 0.752])
    assert c.passed and c.mean_abs_diff_points == pytest.approx(0.2)
    assert "converged" in c.describe()
    with pytest.raises(ValueError):
        convergence_check([0.9], [0.9])


def test_band_bootstrap_and_paired_difference():
    rng = np.random.default_rng(0)
    bands = np.repeat(np.arange(4), 5)
    truth = rng.random(20)
    good = truth + rng.normal(0, 0.02, 20)
    bad = rng.random(20)
    tau, lo, hi = bootstrap_band_tau(good, truth, bands, n_boot=300)
    assert tau == pytest.approx(within_band_tau(good, truth, bands)) and lo <= tau <= hi
    d, dlo, dhi = paired_bootstrap_band_tau_difference(good, bad, truth, bands, n_boot=300)
    assert d == pytest.approx(within_band_tau(good, truth, bands) - within_band_tau(bad, truth, bands))
    assert dlo <= d <= dhi
    # an estimator against itself: the difference is 0 in every resample
    assert paired_bootstrap_band_tau_difference(good, good, truth, bands, n_boot=50) == (0.0, 0.0, 0.0)
    # a perfect against a reversed ranking: 2 in every resample where a band's tau is defined
    d, dlo, dhi = paired_bootstrap_band_tau_difference(truth, -truth, truth, bands, n_boot=50)
    assert (d, dlo, dhi) == pytest.approx((2.0, 2.0, 2.0))


NAMES = tuple(f"l{i}" for i in range(16))
SIZE = np.linspace(1.0, 4.0, len(NAMES))  # per-layer energy weights


def _energy(p: QuantPolicy) -> float:
    return float(np.sum(SIZE * np.array(p.weight_bits) * np.array(p.act_bits)))


@settings(max_examples=10, deadline=None)
@given(level=st.integers(3, 6), seed=st.integers(0, 1000))
def test_iso_cost_band_property(level, seed):
    target = _energy(QuantPolicy.uniform(NAMES, level))
    band = iso_cost_band(NAMES, range(2, 9), _energy, target, 5, np.random.default_rng(seed), tolerance=0.015)
    energies = np.array([_energy(p) for p in band])
    assert len(band) == 5 and np.all(np.abs(energies / target - 1) <= 0.015)
    assert energies.max() / energies.min() <= 1.031  # within +-3 % of each other
    assert not any(near_uniform(p) for p in band)
    assert all(policy_distance(a, b) >= 0.3 for i, a in enumerate(band) for b in band[i + 1:])


def test_iso_cost_band_from_the_search_draw():
    class Net:
        layer_names = NAMES

        @staticmethod
        def apply_rules(p):
            return p

    target = _energy(QuantPolicy.uniform(NAMES, 5))
    band = iso_cost_band(NAMES, range(2, 9), _energy, target, 4, np.random.default_rng(0),
                         draw=lambda r: level_policies(Net, 1, r, range(2, 9))[0])
    assert len(band) == 4 and all(abs(_energy(p) / target - 1) <= 0.015 for p in band)


def test_iso_cost_band_keeps_ruled_layers_and_reports_impossible_targets():
    def rules(p):
        return QuantPolicy(p.layer_names, (8,) + p.weight_bits[1:], (8,) + p.act_bits[1:], 8)

    target = _energy(rules(QuantPolicy.uniform(NAMES, 4)))
    band = iso_cost_band(NAMES, range(2, 9), _energy, target, 3, np.random.default_rng(0), apply_rules=rules)
    assert all(p.weight_bits[0] == p.act_bits[0] == 8 for p in band)
    with pytest.raises(ValueError, match="within"):
        iso_cost_band(NAMES, range(2, 9), _energy, 10 * target, 2, np.random.default_rng(0), max_tries=3)


def _tiny():
    torch.manual_seed(0)
    net = build_supernet("simple_cnn", 10, 1, 8, width_mult=0.5)
    x = torch.randn(96, 1, 8, 8)
    y = torch.randint(0, 10, (96,))
    return net, TensorDataset(x, y)


def test_qat_finetune_resumes_to_the_same_weights(tmp_path):
    net, train = _tiny()
    net.set_policy(net.uniform_policy(4))
    straight = qat_finetune(calibrated_start(net, train.tensors[0][:32]), train, 7, 1e-2, batch_size=16, seed=3)
    ckpt = tmp_path / "partial.pt"

    def kill(step):
        if step == 5:
            raise KeyboardInterrupt

    first = calibrated_start(net, train.tensors[0][:32])
    with pytest.raises(KeyboardInterrupt):
        qat_finetune(first, train, 7, 1e-2, batch_size=16, seed=3, checkpoint=ckpt, checkpoint_every=2,
                     on_step=kill)
    assert ckpt.is_file()  # written at step 4; step 5 is lost with the kill
    resumed = qat_finetune(calibrated_start(net, train.tensors[0][:32]), train, 7, 1e-2, batch_size=16, seed=3,
                           checkpoint=ckpt, checkpoint_every=2)
    assert not ckpt.exists()
    for k, v in straight.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    with pytest.raises(JaqmooError, match="less than one batch"):
        qat_finetune(net, TensorDataset(train.tensors[0][:4], train.tensors[1][:4]), 2, 1e-2, batch_size=16)


def test_converged_truth_caches_per_key_and_rejects_damage(tmp_path):
    net, train = _tiny()
    start = tmp_path / "float.pt"
    net.save(start)
    images, labels = train.tensors[0][:40], train.tensors[1][:40]
    recipe = TruthRecipe(steps=3, lr=1e-2, batch_size=16, bn_batches=2)
    truth = ConvergedTruth(start, train, images, labels, recipe, tmp_path / "cache")
    pol = net.uniform_policy(3)
    a = truth.accuracy(pol, seed=0)
    files = sorted((tmp_path / "cache").glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["key"]["policy"] == ",".join(["3/3"] * len(net.layer_names))
    assert ConvergedTruth(start, train, images, labels, recipe, tmp_path / "cache").cached(pol, 0)["accuracy"] == a
    truth.accuracy(pol, seed=1)
    truth.with_recipe(recipe.doubled()).accuracy(pol, seed=0)
    assert len(list((tmp_path / "cache").glob("*.json"))) == 3  # seed and budget are part of the key
    assert not list((tmp_path / "cache").glob("*.partial.pt"))
    # another float start (different bytes) is another key
    torch.manual_seed(1)
    build_supernet("simple_cnn", 10, 1, 8, width_mult=0.5).save(start)
    assert ConvergedTruth(start, train, images, labels, recipe, tmp_path / "cache").cached(pol, 0) is None
    files[0].write_text("{not json")
    with pytest.raises(JaqmooError, match="delete it"):
        truth.accuracy(pol, seed=0)
    with pytest.raises(JaqmooError, match="steps must be >= 1"):
        TruthRecipe(steps=0)


def test_ptq_is_the_supernet_estimate_of_the_calibrated_float_net():
    net, train = _tiny()
    data = EvalData([train.tensors[0][:32], train.tensors[0][32:64]], train.tensors[0], train.tensors[1])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    pols = [net.uniform_policy(b) for b in (2, 4, 8)]
    ptq = PTQEstimator(net, data).estimate(pols)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # the float net is untouched
    ref = SupernetEstimator(calibrated_start(net, data.calib[0]), data).estimate(pols)
    assert np.array_equal(ptq, ref)
