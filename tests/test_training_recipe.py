"""The training recipe's machinery: augmentation, sandwich middles, schedule, determinism, cache keys."""

from __future__ import annotations

import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jaqmoo.errors import JaqmooError
from jaqmoo.quant.augment import augment_batch, random_crop_flip
from jaqmoo.quant.identity import identity_hash, make_identity
from jaqmoo.quant.policy import FLOAT_BITS
from jaqmoo.quant.sampling import level_policies
from jaqmoo.quant.sandwich import sandwich_policies
from jaqmoo.quant.supernet import build_supernet
from jaqmoo.quant.train import (
    TrainConfig,
    frozen_teacher,
    lr_factor,
    soft_targets,
    train_step,
    train_supernet,
)

ROOT = Path(__file__).resolve().parents[1]


def test_crop_flip_is_a_shift_of_the_padded_image_or_its_mirror():
    x = torch.randn(16, 2, 9, 7)
    out = random_crop_flip(x, torch.Generator().manual_seed(3), pad=2)
    assert out.shape == x.shape
    padded = F.pad(x, (2, 2, 2, 2), value=float(x.min()))
    for i in range(len(x)):
        windows = [padded[i, :, r : r + 9, c : c + 7] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(2)) for w in windows)
    flipped = sum(not any(torch.equal(out[i], w) for w in [padded[i, :, r : r + 9, c : c + 7] for r in range(5)
                                                          for c in range(5)]) for i in range(len(x)))
    assert 0 < flipped < len(x)  # some mirrored, some not
    assert torch.equal(random_crop_flip(x, torch.Generator().manual_seed(3), pad=0, flip=False), x)
    assert torch.equal(augment_batch(x, "none", torch.Generator()), x)
    # seeded: the same generator state gives the same batch
    assert torch.equal(out, random_crop_flip(x, torch.Generator().manual_seed(3), pad=2))


def test_a_float_teacher_teaches_every_configuration_its_frozen_float_predictions():
    torch.manual_seed(0)
    net = build_supernet("simple_cnn", 10, 1, 8, 1.0, "digits")
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,))
    net.calibrate_steps(x)
    teacher = frozen_teacher(net)
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training
    with torch.no_grad():
        net.set_policy(net.uniform_policy(FLOAT_BITS))
        expected = torch.softmax(net.eval()(x), dim=1)
    assert torch.allclose(soft_targets(teacher, x), expected)
    net.train()
    pols = [net.uniform_policy(8), net.uniform_policy(2)]
    probs = soft_targets(teacher, x)
    loss = train_step(net, x, y, pols, distill=True, teacher_probs=probs)
    with torch.no_grad():  # every configuration (the largest too) is scored against the teacher
        want = []
        for p in pols:
            net.set_policy(p)
            want.append(float(F.kl_div(F.log_softmax(net(x), dim=1), probs, reduction="batchmean")))
    assert loss == pytest.approx(sum(want) / 2, rel=1e-5)
    assert soft_targets(None, x) is None
    with pytest.raises(JaqmooError, match="teacher must be one of"):
        TrainConfig(teacher="big").validate()
    with pytest.raises(JaqmooError, match="needs distill"):
        TrainConfig(teacher="float", float_epochs=1, distill=False).validate()
    with pytest.raises(JaqmooError, match="needs a float start"):
        TrainConfig(teacher="float").validate()
    TrainConfig(teacher="float", extra={"pretrained": "w.pt"}).validate()


def test_a_float_taught_run_resumed_mid_way_equals_one_run(tmp_path, monkeypatch):
    from jaqmoo.data import load_dataset
    from jaqmoo.quant.supernet import Supernet

    torch.set_num_threads(1)
    splits = load_dataset("digits", seed=3, max_train=256)
    common = dict(model="simple_cnn", dataset="digits", float_epochs=1, epochs=2, batch_size=64, lr=5e-3,
                  quant_lr=1e-3, n_random=1, teacher="float", progress=False, seed=3)
    whole = train_supernet(TrainConfig(out=str(tmp_path / "a.pt"), **common), splits=splits)
    save = Supernet.save

    def save_then_stop(self, path, **extra):  # killed right after the first quantized epoch's checkpoint
        save(self, path, **extra)
        if extra.get("epoch") == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Supernet, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(TrainConfig(out=str(tmp_path / "b.pt"), **common), splits=splits)
    monkeypatch.setattr(Supernet, "save", save)
    assert "teacher" in torch.load(tmp_path / "b.pt", weights_only=True)  # the frozen float start travels along
    train_supernet(TrainConfig(out=str(tmp_path / "b.pt"), resume=True, **common), splits=splits)
    a, b = (torch.load(p, weights_only=True)["state_dict"] for p in (whole, tmp_path / "b.pt"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_augmentation_and_bad_quant_lr_are_clear_errors():
    with pytest.raises(JaqmooError, match="augment 'rotate'"):
        TrainConfig(augment="rotate").validate()
    with pytest.raises(JaqmooError, match="quant_lr"):
        TrainConfig(quant_lr=0.0).validate()


def test_sandwich_middles_are_drawn_where_the_search_looks():
    net = build_supernet("simple_cnn", 10, 1, 8, 1.0, "digits")
    pols = sandwich_policies(net, np.random.default_rng(5), 3)
    assert pols[0] == net.uniform_policy(max(net.bits)) and pols[1] == net.uniform_policy(min(net.bits))
    assert pols[2:] == level_policies(net, 3, np.random.default_rng(5), net.bits)


def test_per_phase_cosine_restarts_at_the_quantized_learning_rate():
    cfg = TrainConfig(float_epochs=2, epochs=2, lr=1e-2, quant_lr=1e-3)
    assert lr_factor(0, cfg, 10) == pytest.approx(1.0)
    assert lr_factor(19, cfg, 10) < 0.01  # the float phase ends near zero
    assert lr_factor(20, cfg, 10) == pytest.approx(0.1)  # quantized epochs restart at quant_lr
    assert lr_factor(40, cfg, 10) == pytest.approx(0.0, abs=1e-12)
    one = TrainConfig(float_epochs=2, epochs=2, lr=1e-2)
    assert lr_factor(20, one, 10) == pytest.approx(0.5)  # default: one cosine over all epochs


def test_new_recipe_fields_leave_old_identities_alone_and_change_new_ones():
    meta = {"model": "m", "bits": [2, 8]}
    base = asdict_config(TrainConfig())
    old = {k: v for k, v in base.items() if k not in ("augment", "quant_lr", "teacher")}  # a checkpoint from before them
    assert make_identity(meta, old) == make_identity(meta, base)
    for change in ({"augment": "crop-flip"}, {"quant_lr": 5e-4}, {"teacher": "float"}):
        assert identity_hash(make_identity(meta, {**base, **change})) != identity_hash(make_identity(meta, base))


def asdict_config(cfg: TrainConfig) -> dict:
    from dataclasses import asdict

    return asdict(cfg)


_TRAIN = """
import sys, torch
torch.set_num_threads(1)
from jaqmoo.data import load_dataset
from jaqmoo.quant.train import TrainConfig, train_supernet
cfg = TrainConfig(model="simple_cnn", dataset="digits", out=sys.argv[1], float_epochs=1, epochs=1, batch_size=64,
                  lr=5e-3, quant_lr=1e-3, n_random=1, augment="crop-flip", progress=False, seed=7)
train_supernet(cfg, splits=load_dataset("digits", seed=7))
"""


def test_two_processes_with_one_seed_train_identical_weights(tmp_path):
    env = {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    paths = [tmp_path / "a.pt", tmp_path / "b.pt"]
    for p in paths:
        proc = subprocess.run([sys.executable, "-c", _TRAIN, str(p)], capture_output=True, text=True, timeout=600,
                              env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = (torch.load(p, weights_only=True)["state_dict"] for p in paths)
    assert a.keys() == b.keys()
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, differing[:5]


def _bench_args(**over) -> Namespace:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import fashion_setup

    argv = [f"--{k.replace('_', '-')}={v}" for k, v in over.items()]
    return fashion_setup, fashion_setup.parse(fashion_setup.parser("test"), ["--preset", "tiny", "--work-dir", "w", *argv])


def test_benchmark_cache_key_changes_with_the_recipe_and_the_training_version(monkeypatch):
    fs, args = _bench_args()
    key = fs.setup_key(args)
    assert fs.setup_key(_bench_args()[1]) == key  # stable
    for change in ({"lr": 1e-3}, {"augment": "crop"}, {"quant_lr": 1e-4}, {"weight_decay": 0.0}, {"seed": 1},
                   {"max_train": 500}, {"teacher": "float"}):
        assert fs.setup_key(_bench_args(**change)[1]) != key, change
    monkeypatch.setattr(fs, "TRAINING_VERSION", fs.TRAINING_VERSION + 1)
    assert fs.setup_key(args) != key


def test_changed_recipe_retrains_the_float_start(monkeypatch, tmp_path):
    """float_start trains when its cache entry is missing (a changed key) and reuses it otherwise."""
    fs, args = _bench_args(float_epochs=1)
    args.work_dir = str(tmp_path)
    calls = []

    def fake_train(cfg, splits):
        calls.append(cfg.out)
        net = build_supernet("simple_cnn", 10, 1, 8, 1.0, "digits")
        net.save(cfg.out, epoch=cfg.float_epochs, history=[], config=json.loads(json.dumps({"lr": cfg.lr})))
        return Path(cfg.out)

    monkeypatch.setattr(fs, "train_supernet", fake_train)
    splits = Namespace(train=range(10))
    fs.float_start(args, splits, fs.work_path(args, "float.pt"))
    fs.float_start(args, splits, fs.work_path(args, "float.pt"))
    assert len(calls) == 1  # cached
    monkeypatch.setattr(fs, "TRAINING_VERSION", fs.TRAINING_VERSION + 1)
    fs.float_start(args, splits, fs.work_path(args, "float.pt"))
    args.lr = args.lr / 2
    fs.float_start(args, splits, fs.work_path(args, "float.pt"))
    assert len(calls) == 3 and len(set(calls)) == 3  # a new version and a new recipe each retrain


def test_eval_data_follows_the_device_setting():
    from jaqmoo.data import load_dataset
    from jaqmoo.quant.estimators import EvalData

    splits = load_dataset("digits")
    data = EvalData.from_splits(splits, 50, 1, 32)  # auto: CUDA when present
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert data.images.device.type == expected and data.calib[0].device.type == expected
    assert EvalData.from_splits(splits, 50, 1, 32, device="cpu").images.device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(JaqmooError, match="CUDA is not available"):
            EvalData.from_splits(splits, 50, 1, 32, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_and_estimates_run_on_the_gpu(tmp_path):
    from jaqmoo.data import load_dataset
    from jaqmoo.quant.checkpoints import load_supernet
    from jaqmoo.quant.estimators import EvalData, SupernetEstimator

    splits = load_dataset("digits")
    cfg = TrainConfig(model="simple_cnn", dataset="digits", out=str(tmp_path / "g.pt"), float_epochs=1, epochs=1,
                      batch_size=64, n_random=1, csq_fraction=0.25, augment="crop-flip", quant_lr=1e-3,
                      device="cuda", progress=False)
    train_supernet(cfg, splits=splits)
    net = load_supernet(tmp_path / "g.pt", device="cuda")
    acc = SupernetEstimator(net, EvalData.from_splits(splits, 200, 1, 64, device="cuda")).estimate(
        [net.uniform_policy(8)])
    assert 0.5 < float(acc[0]) <= 1.0
