"""Set-up shared by the supernet benchmarks (``accuracy_fidelity.py``, ``csq_memory.py``).

Both train supernets on Fashion-MNIST (28x28; MobileNetV2 in its small-input variant, one
input channel, reduced ``width_mult``) under the same presets and command-line options,
and judge them against the same independent truth (:func:`qat_truth`): every policy
fine-tuned with full LSQ quantization-aware training from the shared float-trained start
(never from a supernet), seeded, on policies from :func:`fidelity_policies` (mixed
per-layer bits, stratified over the policy's energy on the ``eyeriss`` template).
Checkpoints and the truth are cached under ``--work-dir`` by their settings, so the two
benchmarks share the float start, the supernets and the truth of one set-up.

* ``tiny``  — a seconds-to-minutes smoke run (tiny data; the numbers are not meaningful).
* ``lite``  — the ``simple_cnn`` (3 convolutions + a depthwise-separable pair) instead of
  MobileNetV2, 6,000 training images, 2 float + 2 quantized epochs, 0.5-epoch QAT truth,
  40 policies: what a shared 2-core CPU finishes in well under an hour for all supernets.
* ``small`` — what fits a 2-core CPU in about half an hour: width 0.25, 12,000 training
  images, 3 float epochs then 3 quantized (sandwich) epochs, 0.5-epoch QAT per policy,
  20 policies, 2,000 validation images.
* ``full``  — width 0.35, all 54,000 training images, 3 float + 10 quantized epochs,
  1 QAT epoch per policy, 24 policies (hours on a CPU; use ``--device cuda``).
* ``recipe`` — the accurate supernet of ``supernet_recipe.py`` (``docs/benchmarks/supernet_recipe.md``
  says why each value): width 0.25, all 54,000 training images (6,000 held out for validation),
  random crop + flip, 30 float epochs on a cosine from 2e-3, then 8 sandwich epochs (largest,
  smallest and one level + noise middle, in-place distillation) on a cosine from 5e-4, every
  channel on the LSQ path.

Every preset value can be overridden on the command line. Checkpoints are cached under
``--work-dir/<setup key>``, the key naming the main settings and hashing every input that
changes the weights (the whole training recipe, the data subset, the seed and
``TRAINING_VERSION``): a changed recipe or training code never reuses an old supernet.
``accuracy_fidelity.py``'s converged truth takes its budget (``truth_steps``), iso-cost bands
(``band_targets``, ``band_size``), test images and training subset from the preset too (``tiny``:
4 steps, 2 bands of 3, 300 test images, 600 training images; the others: all 10,000 test images
and every training image).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from jaqmoo.quant.checkpoints import load_supernet
from jaqmoo.quant.estimators import EvalData, QATEstimator
from jaqmoo.quant.fidelity import heterogeneous_policies, stratify_by_energy
from jaqmoo.quant.identity import identity_hash
from jaqmoo.quant.supernet import Supernet, checkpoint_epochs
from jaqmoo.quant.train import TRAINING_VERSION, TrainConfig, train_supernet

PRESETS = {
    "tiny": dict(model="mobilenet_v2", width_mult=0.25, max_train=600, float_epochs=1, epochs=1, n_random=1, qat_epochs=0.2,
                 policies=20, val_images=300, predictor_samples=20, batch_size=64, truth_steps=4, band_targets="3,5",
                 band_size=3, test_images=300, truth_train_images=600),
    "lite": dict(model="simple_cnn", width_mult=1.0, max_train=6000, float_epochs=2, epochs=2, n_random=1,
                 qat_epochs=0.5, policies=40, val_images=2000, predictor_samples=40, batch_size=128, truth_steps=200,
                 band_targets="3,4,5,6", band_size=5, test_images=None),
    "small": dict(model="mobilenet_v2", width_mult=0.25, max_train=12000, float_epochs=3, epochs=3, n_random=1, qat_epochs=0.5,
                  policies=40, val_images=2000, predictor_samples=40, batch_size=128, truth_steps=300,
                  band_targets="3,4,5,6", band_size=5, test_images=None),
    "full": dict(model="mobilenet_v2", width_mult=0.35, max_train=None, float_epochs=3, epochs=10, n_random=2, qat_epochs=1.0,
                 policies=60, val_images=2000, predictor_samples=200, batch_size=128, truth_steps=800,
                 band_targets="3,4,5,6", band_size=5, test_images=None),
    "recipe": dict(model="mobilenet_v2", width_mult=0.25, max_train=None, float_epochs=30, epochs=8, n_random=1,
                   qat_epochs=1.0, policies=40, val_images=6000, predictor_samples=40, batch_size=128,
                   augment="crop-flip", quant_lr=5e-4, csq_fraction=0.0, truth_steps=800,
                   band_targets="3,4,5,6", band_size=5, test_images=None),
}

#: recipe fields added after caches existed, part of the setup key only when not at these defaults
LATER_RECIPE_KEYS = {"teacher": "inplace"}

#: values of the options a preset may leave out
PRESET_DEFAULTS = dict(augment="none", quant_lr=None, csq_fraction=0.25)


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser with the options both benchmarks share (preset values left as ``None``)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="small")
    p.add_argument("--model", help="model name (preset: mobilenet_v2, simple_cnn for 'lite')")
    p.add_argument("--width-mult", type=float)
    p.add_argument("--max-train", type=int)
    p.add_argument("--float-epochs", type=int, help="float epochs before the quantized ones")
    p.add_argument("--epochs", type=int, help="quantized (sandwich-rule) supernet epochs")
    p.add_argument("--n-random", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--quant-lr", type=float, help="the quantized epochs' own cosine starts here (default: one cosine)")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--augment", help="none | crop | crop-flip (preset: none; crop-flip for 'recipe')")
    p.add_argument("--csq-fraction", type=float, help="preset: 0.25 (0 for 'recipe')")
    p.add_argument("--teacher", choices=("inplace", "float"), default="inplace",
                   help="who distils in the sandwich epochs: the largest configuration or the frozen float start")
    p.add_argument("--qat-epochs", type=float)
    p.add_argument("--qat-lr", type=float, default=5e-4)
    p.add_argument("--policies", type=int)
    p.add_argument("--val-images", type=int)
    p.add_argument("--retrain", action="store_true", help="train again even if the checkpoints exist")
    p.add_argument("--work-dir", default="bench_cache",
                   help="where float starts, supernets and the QAT truth are cached (keyed by their settings)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    return p


def parse(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv`` and fill every option left unset from the chosen preset."""
    args = p.parse_args(argv)
    for key, value in {**PRESET_DEFAULTS, **PRESETS[args.preset]}.items():
        if getattr(args, key, None) is None and hasattr(args, key):
            setattr(args, key, value)
    if args.policies < 3:
        p.error("--policies must be >= 3")
    return args


def setup_key(args: argparse.Namespace) -> str:
    """A file-name-safe key of everything the float start and the supernets depend on: the main
    settings readable, then a hash of the whole training recipe (every :class:`TrainConfig` field
    that changes the weights, the CSQ fraction aside: each supernet's file names it), the data
    subset, the seed and :data:`TRAINING_VERSION`."""
    train = args.max_train if args.max_train is not None else "all"
    recipe = asdict(train_config(args, Path("unused.pt"), 0.0, args.float_epochs, args.epochs))
    for key in ("out", "csq_fraction", "device", "progress", "resume"):  # where and how, not what
        recipe.pop(key)
    for key, default in LATER_RECIPE_KEYS.items():  # hashed only when set (older caches keep their key)
        if recipe[key] == default:
            recipe.pop(key)
    digest = identity_hash({"recipe": recipe, "training_version": TRAINING_VERSION})
    return f"{args.model}-w{args.width_mult:g}-n{train}-f{args.float_epochs}-q{args.epochs}-s{args.seed}-{digest}"


def work_path(args: argparse.Namespace, name: str) -> Path:
    """``--work-dir/<setup key>/name`` (directories created)."""
    d = Path(args.work_dir) / setup_key(args)
    d.mkdir(parents=True, exist_ok=True)
    return d / name


def energy_model(net: Supernet):
    """A function ``policy -> energy (pJ)`` of ``net``'s workload on the ``eyeriss`` template
    (mapper: energy; one mapper, so repeated layer shapes and bits are mapped once)."""
    from jaqmoo.cost import network_cost
    from jaqmoo.hardware.templates import get_template
    from jaqmoo.mapping.mapper import Mapper
    from jaqmoo.models import model_workload

    wl = model_workload(net.meta.model, net.meta.input_shape, net.meta.num_classes, net.meta.width_mult)
    accel = get_template("eyeriss").build()
    mapper = Mapper(metric="energy")
    return lambda p: float(network_cost(wl, accel, p, metric="energy", mapper=mapper).energy_pj)


def policy_energies(args: argparse.Namespace, net: Supernet, policies) -> np.ndarray:
    """Energy (pJ) of each policy for ``net``'s workload on the ``eyeriss`` template (mapper: energy)."""
    energy_of = energy_model(net)
    return np.array([energy_of(p) for p in policies])


def fidelity_policies(args: argparse.Namespace, net: Supernet, pool_factor: int = 4) -> tuple[list, np.ndarray]:
    """``args.policies`` mixed policies, one per equal-width energy stratum of a seeded pool
    ``pool_factor`` times larger (:func:`jaqmoo.quant.fidelity.stratify_by_energy`); and their energies."""
    rng = np.random.default_rng(args.seed + 1)
    pool = heterogeneous_policies(net.layer_names, pool_factor * args.policies, rng, net.bits, net.apply_rules)
    energies = policy_energies(args, net, pool)
    idx = stratify_by_energy(energies, args.policies, rng)
    return [pool[i] for i in idx], energies[idx]


def _policy_key(policy) -> str:
    return ",".join(f"{w}/{a}" for w, a in zip(policy.weight_bits, policy.act_bits, strict=True))


def qat_truth(args: argparse.Namespace, splits, start: Path, policies, data: EvalData) -> np.ndarray:
    """QAT ground truth of ``policies``: each fine-tuned from the float start ``start`` (full LSQ,
    ``--qat-epochs``, ``--qat-lr``, seeded) and evaluated on ``data``; cached per policy in the
    work directory, so re-runs and the other benchmark reuse it."""
    cache_path = work_path(args, f"truth-qat{args.qat_epochs:g}-lr{args.qat_lr:g}-val{len(data.images)}.json")
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() and not args.retrain else {}
    todo = [p for p in policies if _policy_key(p) not in cache]
    if todo:
        qat = QATEstimator(load_supernet(start, device=args.device), splits, data, epochs=args.qat_epochs,
                           lr=args.qat_lr, batch_size=args.batch_size, seed=args.seed, device=args.device,
                           progress=not args.quiet)
        t0 = time.perf_counter()
        for p in todo:
            cache[_policy_key(p)] = float(qat.estimate([p])[0])
            cache_path.write_text(json.dumps(cache, indent=0))
        print(f"QAT truth: {len(todo)} policies fine-tuned from the float start, "
              f"{(time.perf_counter() - t0) / len(todo):.1f} s per policy -> {cache_path}")
    return np.array([cache[_policy_key(p)] for p in policies])


def train_config(args: argparse.Namespace, out: Path, csq_fraction: float, float_epochs: int, epochs: int,
                 resume: bool = False) -> TrainConfig:
    """The training configuration of this set-up (``out``, CSQ fraction, epochs and resume as given)."""
    return TrainConfig(model=args.model, dataset="fashion-mnist", out=str(out), float_epochs=float_epochs,
                       epochs=epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                       width_mult=args.width_mult, csq_fraction=csq_fraction, n_random=args.n_random, seed=args.seed,
                       device=args.device, max_train=args.max_train, augment=args.augment, quant_lr=args.quant_lr,
                       teacher=getattr(args, "teacher", "inplace"),
                       progress=not args.quiet, resume=resume)


def float_start(args: argparse.Namespace, splits, path: str | Path) -> Path:
    """The float-trained starting point (``float_epochs`` epochs) shared by every supernet of a run
    (an interrupted one is resumed from its last epoch, unless ``--retrain``)."""
    path = Path(path)
    if args.retrain or checkpoint_epochs(path) < args.float_epochs:
        t0 = time.perf_counter()
        train_supernet(train_config(args, path, 0.0, args.float_epochs, 0, resume=not args.retrain), splits=splits)
        print(f"float start: {args.float_epochs} epochs on {len(splits.train)} images in "
              f"{time.perf_counter() - t0:.0f} s -> {path}")
    return path


def supernet_from_float_start(args: argparse.Namespace, splits, start: Path, fraction: float,
                              path: str | Path) -> Supernet:
    """A supernet trained ``epochs`` quantized epochs on from the float start at ``start``
    (trained first if missing); reused when complete, without touching ``start``."""
    path = Path(path)
    total = args.float_epochs + args.epochs
    if args.retrain or checkpoint_epochs(path) < total:
        if args.retrain or checkpoint_epochs(path) < args.float_epochs:
            shutil.copyfile(float_start(args, splits, start), path)
        t0 = time.perf_counter()
        train_supernet(train_config(args, path, fraction, args.float_epochs, args.epochs, resume=True), splits=splits)
        print(f"supernet (csq_fraction {fraction}): {args.epochs} quantized epochs in "
              f"{time.perf_counter() - t0:.0f} s -> {path}")
    net = load_supernet(path, device=args.device)
    if abs(net.meta.csq_fraction - fraction) > 1e-9 or abs(net.meta.width_mult - args.width_mult) > 1e-9:
        raise SystemExit(f"{path}: trained with csq_fraction {net.meta.csq_fraction}, width {net.meta.width_mult}; "
                         "use --retrain or another path")
    return net


def trained_supernet(args: argparse.Namespace, splits, fraction: float) -> Supernet:
    """The supernet of this set-up at CSQ ``fraction`` (0: every channel on the LSQ path),
    trained from the set-up's float start, both cached in the work directory."""
    return supernet_from_float_start(args, splits, work_path(args, "float.pt"), fraction,
                                     work_path(args, f"supernet-csq{fraction:g}.pt"))
