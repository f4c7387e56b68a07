"""Architecture search with the elastic supernet: fidelity and value (issue 12 acceptance).

(a) Fidelity. An elastic, bit-switchable MobileNetV2 supernet (depth / expand / kernel) is
trained with ``jaqmoo.quant.train.train_supernet``: ``--float-epochs`` float epochs on the
largest network (the *float start*, cached next to the checkpoint), then ``--epochs``
sandwich epochs over (architecture, bits) with in-place distillation, resumed from that
start. ``--pairs`` sampled (architecture, uniform bits) pairs are scored on it (BN
recalibrated per pair) and compared with an independent truth: the same sub-network
exported from the float start (hidden channels sorted by importance, as the supernet's
prefixes are), fine-tuned *standalone* with quantization-aware training at the pair's bits
for ``--qat-epochs`` epochs (seeded; never touching the supernet), BN recalibrated. Both
sides are scored on the same held-out images (the test split: the fidelity check selects
nothing). ``tau_arch`` is Kendall's tau between the two accuracy lists, ``tau_ci_low`` the
2.5th percentile of a 2000-sample bootstrap over pairs.

(b) Value. For each of ``--seeds`` seeds two NSGA-II searches with the same evaluator
(accuracy from the supernet, cost from the Eyeriss template on the decoded sub-network's
workload), the same population x generations budget and objectives accuracy, energy, memory:
the joint architecture + bits + hardware search, and the bits + hardware search of the fixed
largest network. Hypervolume of each front uses one reference point per seed (scale = the
largest finite value over both runs' evaluations, reference 1.1 in scaled units).

Default preset: scikit-learn digits (8x8, 1 channel), width 0.25, bits {2, 4, 8}, kernels
{3, 5}; the defaults are what the measured figures in the notes ran with (a CPU preset, not a
statement about ImageNet). Last line:
``RESULT tau_arch=.. tau_ci_low=.. tau_arch_within_bits=.. tau_arch_within_bits_ci_low=..
tau_bits_only=.. hv_joint_arch=.. hv_fixed_arch=.. seconds=..`` (the hypervolumes are the means
over seeds; each seed is printed). ``tau_arch_within_bits`` is the mean over bit-widths of the
tau among pairs of the same bits (different architectures: what bit-width cannot explain, with
its band-bootstrap low end); ``tau_bits_only`` ranks the pairs by their bits alone, the baseline
an architecture ranking has to beat.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

from jaqmoo.data import load_dataset
from jaqmoo.models.elastic_space import ElasticSpace
from jaqmoo.quant.elastic import (
    evaluate_pair,
    export_subnet,
    load_elastic_supernet,
    sort_hidden_channels,
)
from jaqmoo.quant.elastic_estimators import ElasticSupernetEstimator
from jaqmoo.quant.estimators import EvalData
from jaqmoo.quant.fidelity import bootstrap_band_tau, bootstrap_kendall_tau
from jaqmoo.quant.supernet import Supernet, SupernetMeta, checkpoint_epochs, read_checkpoint
from jaqmoo.quant.train import (
    TrainConfig,
    iterate_batches,
    make_optimizer,
    train_step,
    train_supernet,
)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="digits")
    p.add_argument("--width-mult", type=float, default=0.25)
    p.add_argument("--depth", default="2,3,4")
    p.add_argument("--expand", default="3,4,6")
    p.add_argument("--kernel", default="3,5")
    p.add_argument("--bits", default="2,4,8")
    p.add_argument("--float-epochs", type=int, default=15, help="float epochs of the largest network (the float start)")
    p.add_argument("--epochs", type=int, default=10, help="sandwich epochs of the supernet after the float start")
    p.add_argument("--qat-epochs", type=float, default=3.0,
                   help="standalone QAT epochs of each sub-network from the float start (the truth)")
    p.add_argument("--qat-lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--n-random", type=int, default=2)
    p.add_argument("--pairs", type=int, default=24)
    p.add_argument("--val-images", type=int, default=360,
                   help="held-out images of the fidelity check (test split) and of the searches (validation split)")
    p.add_argument("--population", type=int, default=10)
    p.add_argument("--generations", type=int, default=4)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--hw", default="glb_depth", help="searched Eyeriss parameters (comma-separated)")
    p.add_argument("--mapper-budget", type=int, default=300, help="mappings evaluated per layer search")
    p.add_argument("--out", default=None, help="checkpoint path (default: a temporary folder)")
    return p.parse_args()


def ints(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in text.split(",") if t)


def qat_from_float_start(start: Path, space: ElasticSpace, arch, bits: int, splits, args, seed: int,
                         data: EvalData) -> float:
    """The truth for one pair: sub-network ``arch`` exported from the float start (hidden channels
    sorted by importance), fine-tuned on its own with QAT at uniform ``bits`` for ``--qat-epochs``
    epochs (seeded), BN recalibrated, scored on ``data``."""
    float_sn = load_elastic_supernet(start, expect_space=space)
    sort_hidden_channels(float_sn)
    net = export_subnet(float_sn, arch)
    meta = SupernetMeta("mobilenet_v2", splits.name, splits.num_classes, splits.in_channels, splits.input_size,
                        space.width_mult, ints(args.bits))
    torch.manual_seed(seed)
    sn = Supernet(net, meta)
    sn.calibrate_steps(data.calib[0])  # QAT starts from quantization-error-optimal steps, as the supernet's did
    opt = make_optimizer(sn, TrainConfig(lr=args.qat_lr))
    per_epoch = max(1, len(splits.train) // args.batch_size)
    total = max(1, round(args.qat_epochs * per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    gen = torch.Generator().manual_seed(seed)
    pol = sn.uniform_policy(bits)
    sn.train()
    step = 0
    while step < total:
        for x, y in iterate_batches(splits.train, args.batch_size, True, gen, drop_last=True):
            opt.zero_grad(set_to_none=True)
            train_step(sn, x, y, [pol], distill=False)
            torch.nn.utils.clip_grad_norm_(sn.parameters(), 5.0)
            opt.step()
            sched.step()
            step += 1
            if step == total:
                break
    sn.set_policy(pol)
    sn.recalibrate_bn(data.calib)
    return sn.accuracy(data.images, data.labels)


def train_elastic(space: ElasticSpace, bits: tuple[int, ...], splits, args, out: Path) -> Path:
    """Train (or reuse) the float start and the supernet resumed from it; returns the float start's path."""
    start = out.with_name(out.stem + f"-float{args.float_epochs}.pt")

    def config(path: Path, epochs: int, resume: bool) -> TrainConfig:
        return TrainConfig(model="mobilenet_v2", dataset=splits.name, out=str(path), epochs=epochs,
                           float_epochs=args.float_epochs, batch_size=args.batch_size, lr=args.lr,
                           width_mult=args.width_mult, bits=bits, n_random=args.n_random, progress=False,
                           resume=resume, extra={"elastic": space.to_dict()})

    if checkpoint_epochs(start) < args.float_epochs:
        train_supernet(config(start, 0, False), splits=splits)
    if checkpoint_epochs(out) < args.float_epochs + args.epochs:
        if checkpoint_epochs(out) < args.float_epochs:
            shutil.copyfile(start, out)
        train_supernet(config(out, args.epochs, True), splits=splits)
    return start


def bootstrap_low(a: np.ndarray, b: np.ndarray, n: int = 2000, seed: int = 0) -> float:
    """Lower end of the 95 % percentile-bootstrap interval of Kendall tau."""
    return bootstrap_kendall_tau(a, b, n_boot=n, seed=seed)[1]


def run_search(genome, evaluator, args, seed: int) -> list[dict]:
    from pymoo.optimize import minimize

    from jaqmoo.search.algorithms import make_algorithm
    from jaqmoo.search.problem import JointProblem

    problem = JointProblem(genome, evaluator, ["accuracy", "energy", "memory"])
    seeds = genome.uniform_seeds([8, 4, 2])
    algo = make_algorithm("nsga2", args.population, 3, seeds)
    records: list[dict] = []
    problem.on_batch = records.extend
    minimize(problem, algo, ("n_gen", args.generations), seed=seed, verbose=False)
    return records


def objectives(records: list[dict]) -> np.ndarray:
    return np.array([[1 - r["accuracy"], r["energy_pj"], r["memory_bits"]] for r in records if r["feasible"]])


def main() -> None:
    from jaqmoo.hardware.templates import get_template
    from jaqmoo.search.arch_genes import ArchEvaluator, ArchGenomeSpace
    from jaqmoo.search.genome import GenomeSpace, HardwareGene
    from jaqmoo.search.indicators import hv_scale, hypervolume

    args = parse_args()
    t0 = time.perf_counter()
    torch.set_num_threads(1)
    bits = ints(args.bits)
    space = ElasticSpace(ints(args.depth), ints(args.expand), ints(args.kernel), args.width_mult)
    splits = load_dataset(args.dataset, seed=0)
    out = Path(args.out or Path(tempfile.mkdtemp()) / "elastic.pt")
    t_train = time.perf_counter()
    start = train_elastic(space, bits, splits, args, out)
    sn = load_elastic_supernet(out, expect_space=space)
    for rec in read_checkpoint(out).get("history", []):
        print("supernet epoch", {k: round(v, 3) if isinstance(v, float) else v for k, v in rec.items()})
    print(f"supernet: {out} ({time.perf_counter() - t_train:.0f} s)")
    data = EvalData.from_splits(splits, args.val_images, calib_batches=2, calib_batch_size=64)
    held_out = EvalData.from_splits(splits, args.val_images, calib_batches=2, calib_batch_size=64, use_test=True)

    # (a) fidelity
    rng = np.random.default_rng(123)
    pairs = [(space.largest(), bits[-1]), (space.smallest(), bits[0])]
    pairs += [(space.sample(rng), bits[i % len(bits)]) for i in range(args.pairs - 2)]
    sup, alone = [], []
    for i, (arch, b) in enumerate(pairs):
        t1 = time.perf_counter()
        sup.append(evaluate_pair(sn, arch, sn.uniform_policy(b), held_out.calib, held_out.images, held_out.labels))
        alone.append(qat_from_float_start(start, space, arch, b, splits, args, 1000 + i, held_out))
        print(f"pair {i:2d}: depth {arch.depth} bits {b}: supernet {sup[-1]:.3f} standalone QAT {alone[-1]:.3f} "
              f"({time.perf_counter() - t1:.0f} s)", flush=True)
    sup_a, alone_a = np.array(sup), np.array(alone)
    tau = float(kendalltau(sup_a, alone_a).statistic)
    tau_low = bootstrap_low(sup_a, alone_a)
    print(f"fidelity: Kendall tau {tau:.3f} (bootstrap 95% low {tau_low:.3f}) over {len(pairs)} pairs, "
          f"{len(held_out.images)} test images")
    # what bit-width alone explains: tau within each bit-width (same bits, different architectures)
    # and the bit-width-only predictor (accuracy ranked by the bits; ties inside a bit-width)
    pair_bits = np.array([b for _, b in pairs])
    tau_within, within_low, _ = bootstrap_band_tau(sup_a, alone_a, pair_bits)
    tau_bits = float(kendalltau(pair_bits, alone_a).statistic)
    per_bit = {int(b): float(kendalltau(sup_a[pair_bits == b], alone_a[pair_bits == b]).statistic)
               for b in np.unique(pair_bits)}
    print("| predictor | tau across all pairs | tau within a bit-width (mean; per bit-width) |")
    print("| --- | ---: | --- |")
    print(f"| elastic supernet | {tau:.3f} | {tau_within:.3f} (95 % low {within_low:.3f}; "
          + ", ".join(f"{b}-bit {t:.3f}" for b, t in per_bit.items()) + ") |")
    print(f"| bit-width only | {tau_bits:.3f} | undefined (one value per bit-width) |")

    # (b) value: joint vs fixed largest architecture, same evaluator / budget / reference point
    template = get_template("eyeriss")
    hw = tuple(HardwareGene(n, template.param(n).choices, template.param(n).default) for n in args.hw.split(",") if n)
    bits_space = GenomeSpace(sn.layer_names, bits, bits, hardware_genes=hw)
    acc = ElasticSupernetEstimator(sn, data)
    hv_joint, hv_fixed = [], []
    for seed in range(args.seeds):
        runs = {}
        for mode, fixed in (("joint", None), ("fixed", space.largest())):
            genome = ArchGenomeSpace(space, bits_space, splits.num_classes, splits.in_channels, splits.input_size,
                                     fixed_arch=fixed)
            t1 = time.perf_counter()
            runs[mode] = objectives(run_search(genome, ArchEvaluator(genome, template, acc, mapper_options={"budget": args.mapper_budget}), args, seed))
            print(f"seed {seed} {mode}: {len(runs[mode])} feasible evaluations ({time.perf_counter() - t1:.0f} s)",
                  flush=True)
        scale = hv_scale(np.vstack(list(runs.values())))
        hj, hf = hypervolume(runs["joint"], scale), hypervolume(runs["fixed"], scale)
        hv_joint.append(hj)
        hv_fixed.append(hf)
        print(f"seed {seed}: hypervolume joint {hj:.4f} fixed {hf:.4f} (scale {[f'{s:.3g}' for s in scale]})")
    seconds = time.perf_counter() - t0
    print(f"RESULT tau_arch={tau:.3f} tau_ci_low={tau_low:.3f} tau_arch_within_bits={tau_within:.3f} "
          f"tau_arch_within_bits_ci_low={within_low:.3f} tau_bits_only={tau_bits:.3f} hv_joint_arch={np.mean(hv_joint):.4f} "
          f"hv_fixed_arch={np.mean(hv_fixed):.4f} seconds={seconds:.0f}")


if __name__ == "__main__":
    main()
