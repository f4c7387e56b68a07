"""Training, resume and the estimator interface on digits (seconds)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from jaqmoo.data import load_dataset
from jaqmoo.errors import JaqmooError
from jaqmoo.quant.checkpoints import load_supernet
from jaqmoo.quant.estimators import (
    AccuracyEstimator,
    EvalData,
    PredictorEstimator,
    QATEstimator,
    SupernetEstimator,
    policy_features,
    sample_policies,
)
from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.quant.train import TrainConfig, iterate_batches, train_supernet

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    splits = load_dataset("digits")
    out = tmp_path_factory.mktemp("sn") / "digits.pt"
    cfg = TrainConfig(model="simple_cnn", dataset="digits", out=str(out), epochs=3, batch_size=64, lr=5e-3,
                      csq_fraction=0.25, n_random=1, progress=False)
    train_supernet(cfg, splits=splits)
    return splits, out, cfg


def test_training_learns_and_checkpoint_has_history(trained):
    splits, out, _ = trained
    payload = torch.load(out, weights_only=True)
    assert payload["epoch"] == 3 and len(payload["history"]) == 3
    assert payload["history"][-1]["acc_max_bits"] > 0.6  # 10 classes: chance is 0.1
    net = load_supernet(out)
    assert all(m.sensitive.numel() > 0 for m in net.layers[1:-1])  # CSQ ranked channels


def test_resume_continues_from_the_checkpoint(trained, tmp_path):
    splits, out, cfg = trained
    cfg2 = TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "r.pt"), "epochs": 1})
    train_supernet(cfg2, splits=splits)
    cfg3 = TrainConfig(**{**cfg2.__dict__, "epochs": 2, "resume": True})
    train_supernet(cfg3, splits=splits)
    payload = torch.load(tmp_path / "r.pt", weights_only=True)
    assert payload["epoch"] == 2 and [h["epoch"] for h in payload["history"]] == [1, 2]
    bad = TrainConfig(**{**cfg3.__dict__, "model": "mobilenet_v1"})
    with pytest.raises(JaqmooError, match="not 'mobilenet_v1'"):
        train_supernet(bad, splits=splits)


def test_float_epochs_come_first_and_train_only_the_float_network(trained, tmp_path):
    splits, _, cfg = trained
    base = {**cfg.__dict__, "epochs": 1, "float_epochs": 1}
    float_only = TrainConfig(**{**base, "out": str(tmp_path / "f.pt"), "epochs": 0})
    train_supernet(float_only, splits=splits)
    net = load_supernet(tmp_path / "f.pt")
    # no quantized epoch follows: the steps are fitted to the final float weights (scored as PTQ)
    assert all(bool(m.a_step_ready.all()) for m in net.layers)
    assert [h["phase"] for h in torch.load(tmp_path / "f.pt", weights_only=True)["history"]] == ["float"]
    refit = copy.deepcopy(net)
    refit.calibrate_steps(next(iterate_batches(splits.train, 256, shuffle=False))[0])
    assert all(torch.equal(a.w_step, b.w_step) and torch.equal(a.a_step, b.a_step)
               for a, b in zip(net.layers, refit.layers, strict=True))
    both = TrainConfig(**{**base, "out": str(tmp_path / "fq.pt")})
    train_supernet(both, splits=splits)
    payload = torch.load(tmp_path / "fq.pt", weights_only=True)
    assert [h["phase"] for h in payload["history"]] == ["float", "quantized"]
    assert payload["epoch"] == 2
    with pytest.raises(JaqmooError, match="float_epochs"):
        TrainConfig(float_epochs=-1).validate()


def test_estimators_share_one_interface(trained):
    splits, out, _ = trained
    net = load_supernet(out)
    data = EvalData.from_splits(splits, n_val=144)
    sup = SupernetEstimator(net, data)
    assert isinstance(sup, AccuracyEstimator)
    pols = [net.uniform_policy(8), net.uniform_policy(2)] + sample_policies(net, 10, np.random.default_rng(0))
    acc = sup.estimate(pols)
    assert acc.shape == (12,) and ((acc >= 0) & (acc <= 1)).all()
    assert acc[0] > acc[1]  # 8-bit beats 2-bit
    assert np.array_equal(acc, sup.estimate(pols))  # deterministic (fixed calibration/validation data)
    pred = PredictorEstimator().fit(pols, acc)
    assert set(pred.fit_error) >= {"cv_mae", "cv_rmse", "cv_kendall_tau"}
    p_acc = pred.estimate(pols)
    assert p_acc.shape == (12,) and ((p_acc >= 0) & (p_acc <= 1)).all()
    # the folded linear fast path equals the fitted scikit-learn pipeline
    assert np.allclose(p_acc, np.clip(pred.model.predict(policy_features(pols)), 0, 1))
    qat = QATEstimator(net, splits, data, epochs=0.2, batch_size=64, device="cpu")
    q_acc = qat.estimate(pols[:2])
    assert q_acc.shape == (2,) and q_acc[0] > 0.5
    # the ground truth must not depend on torch's global RNG (dropout draws from it)
    hook = net.model.register_forward_pre_hook(lambda _m, args: (torch.nn.functional.dropout(args[0], 0.3, _m.training),))
    try:
        torch.manual_seed(1)
        first = qat.estimate(pols[1:2])
        torch.manual_seed(2)
        assert np.array_equal(first, qat.estimate(pols[1:2]))
    finally:
        hook.remove()


def test_estimator_bad_input(trained):
    splits, out, _ = trained
    net = load_supernet(out)
    sup = SupernetEstimator(net, EvalData.from_splits(splits, n_val=50))
    with pytest.raises(JaqmooError, match="layers"):
        sup.estimate([QuantPolicy.uniform(net.layer_names[:2], 4)])
    with pytest.raises(JaqmooError, match="QuantPolicy"):
        sup.estimate(["4/8"])
    with pytest.raises(JaqmooError, match="fit"):
        PredictorEstimator().estimate([net.uniform_policy(4)])


def test_cli_train_and_eval(tmp_path, capsys):
    from jaqmoo.cli import main

    out = tmp_path / "cli.pt"
    assert main(["supernet", "train", "--model", "simple_cnn", "--dataset", "digits", "--epochs", "1",
                 "--out", str(out), "--quiet", "--n-random", "0", "--csq-fraction", "0.25"]) == 0
    assert main(["supernet", "eval", "--checkpoint", str(out), "--bits", "4/8", "--json"]) == 0
    assert '"accuracy"' in capsys.readouterr().out
    policy = tmp_path / "p.yaml"
    policy.write_text("default: 6/6\nlayers:\n  features.0: {w: 8, a: 8}\n")
    assert main(["supernet", "eval", "--checkpoint", str(out), "--bits-file", str(policy)]) == 0
    assert main(["supernet", "eval", "--checkpoint", str(out), "--bits", "1/8"]) == 2
    policy.write_text("layers:\n  features.0: {w: 8, a: 8}\n")
    assert main(["supernet", "eval", "--checkpoint", str(out), "--bits-file", str(policy)]) == 2
    assert "no bits" in capsys.readouterr().err


def _synthetic_samples(n: int, n_layers: int, seed: int):
    """Policies and a noisy accuracy that falls with every layer's quantization noise."""
    rng = np.random.default_rng(seed)
    names = tuple(f"l{i}" for i in range(n_layers))
    sens = rng.uniform(0.0, 0.05, n_layers)
    pols, acc = [], []
    for _ in range(n):
        w, a = rng.integers(2, 9, n_layers), rng.integers(2, 9, n_layers)
        pols.append(QuantPolicy(names, tuple(int(b) for b in w), tuple(int(b) for b in a)))
        acc.append(0.9 - float(sens @ (4.0 ** (2 - w) + 4.0 ** (2 - a))) + rng.normal(0, 0.02))
    return pols, np.clip(acc, 0, 1)


def test_monotone_predictor_never_rewards_fewer_bits():
    pols, acc = _synthetic_samples(60, 30, 0)  # fewer samples than features: ridge has spurious signs
    mono = PredictorEstimator("monotone").fit(pols, acc)
    free = PredictorEstimator("ridge").fit(pols, acc)
    coef_mono, coef_free = mono.linear[0], free.linear[0]
    assert (coef_mono >= -1e-12).all()  # every feature grows with the bits
    assert (coef_free < -1e-6).any()  # the unconstrained fit has "fewer bits is better" terms
    rng = np.random.default_rng(1)
    for p in rng.choice(len(pols), 10, replace=False):
        pol = pols[p]
        for i in range(len(pol)):
            if pol.weight_bits[i] > 2:
                lower = QuantPolicy(pol.layer_names, pol.weight_bits[:i] + (pol.weight_bits[i] - 1,)
                                    + pol.weight_bits[i + 1:], pol.act_bits)
                assert mono.estimate([lower])[0] <= mono.estimate([pol])[0] + 1e-12


def test_cli_eval_uniform_bits_follow_the_first_last_rule(tmp_path, capsys):
    from jaqmoo.cli import main

    out = tmp_path / "ruled.pt"
    train_supernet(TrainConfig(model="simple_cnn", dataset="digits", out=str(out), epochs=1, batch_size=64,
                               n_random=0, progress=False, fixed_first_last=8))
    assert main(["supernet", "eval", "--checkpoint", str(out), "--bits", "4/8"]) == 0
    assert "held by the supernet's first/last-layer rule" in capsys.readouterr().out
    policy = tmp_path / "p.yaml"
    policy.write_text("default: 4/8\n")  # an explicit per-layer policy must respect the rule itself
    assert main(["supernet", "eval", "--checkpoint", str(out), "--bits-file", str(policy)]) == 2
    assert "first and last layers at 8 bits" in capsys.readouterr().err


def test_quantized_training_calibrates_steps_once_at_the_float_to_quantized_switch(trained, tmp_path, monkeypatch):
    from jaqmoo.quant.supernet import Supernet

    splits, _, cfg = trained
    calls = []
    original = Supernet.calibrate_steps

    def counting(self, batch):
        calls.append(len(batch))
        return original(self, batch)

    monkeypatch.setattr(Supernet, "calibrate_steps", counting)
    base = {**cfg.__dict__, "epochs": 1, "float_epochs": 1, "out": str(tmp_path / "c.pt")}
    train_supernet(TrainConfig(**base), splits=splits)
    assert len(calls) == 1
    train_supernet(TrainConfig(**{**base, "epochs": 2, "resume": True}), splits=splits)
    assert len(calls) == 1  # resumed past the switch: the learned steps are kept
