"""Set-up shared by the issue-3 benchmarks (``accuracy_fidelity.py``, ``csq_memory.py``).

Both train MobileNetV2 supernets on Fashion-MNIST (28x28 small-input variant, one input
channel, reduced ``width_mult``) under the same presets and command-line options:

* ``tiny``  — a seconds-to-minutes smoke run (tiny data; the numbers are not meaningful).
* ``small`` — what fits a 2-core CPU in about half an hour: width 0.25, 12,000 training
  images, 3 float epochs then 3 quantized (sandwich) epochs, 0.5-epoch QAT per policy,
  20 policies, 2,000 validation images.
* ``full``  — width 0.35, all 54,000 training images, 3 float + 10 quantized epochs,
  1 QAT epoch per policy, 24 policies (hours on a CPU; use ``--device cuda``).

Every preset value can be overridden on the command line.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from jaqmoo.quant.supernet import Supernet, load_supernet, read_checkpoint
from jaqmoo.quant.train import TrainConfig, train_supernet

PRESETS = {
    "tiny": dict(width_mult=0.25, max_train=600, float_epochs=1, epochs=1, n_random=1, qat_epochs=0.2,
                 policies=20, val_images=300, predictor_samples=20, batch_size=64),
    "small": dict(width_mult=0.25, max_train=12000, float_epochs=3, epochs=3, n_random=1, qat_epochs=0.5,
                  policies=20, val_images=2000, predictor_samples=40, batch_size=128),
    "full": dict(width_mult=0.35, max_train=None, float_epochs=3, epochs=10, n_random=2, qat_epochs=1.0,
                 policies=24, val_images=2000, predictor_samples=200, batch_size=128),
}


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser with the options both benchmarks share (preset values left as ``None``)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="small")
    p.add_argument("--model", default="mobilenet_v2")
    p.add_argument("--width-mult", type=float)
    p.add_argument("--max-train", type=int)
    p.add_argument("--float-epochs", type=int, help="float epochs before the quantized ones")
    p.add_argument("--epochs", type=int, help="quantized (sandwich-rule) supernet epochs")
    p.add_argument("--n-random", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--csq-fraction", type=float, default=0.25)
    p.add_argument("--qat-epochs", type=float)
    p.add_argument("--qat-lr", type=float, default=5e-4)
    p.add_argument("--policies", type=int)
    p.add_argument("--val-images", type=int)
    p.add_argument("--retrain", action="store_true", help="train again even if the checkpoints exist")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    return p


def parse(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv`` and fill every option left unset from the chosen preset."""
    args = p.parse_args(argv)
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def train_config(args: argparse.Namespace, out: Path, csq_fraction: float, float_epochs: int, epochs: int,
                 resume: bool = False) -> TrainConfig:
    return TrainConfig(model=args.model, dataset="fashion-mnist", out=str(out), float_epochs=float_epochs,
                       epochs=epochs, batch_size=args.batch_size, lr=args.lr, width_mult=args.width_mult,
                       csq_fraction=csq_fraction, n_random=args.n_random, seed=args.seed, device=args.device,
                       progress=not args.quiet, resume=resume)


def _epochs_done(path: Path) -> int:
    return int(read_checkpoint(path).get("epoch", 0)) if path.is_file() else -1


def float_start(args: argparse.Namespace, splits, path: str | Path) -> Path:
    """The float-trained starting point (``float_epochs`` epochs) shared by every supernet of a run."""
    path = Path(path)
    if args.retrain or _epochs_done(path) < args.float_epochs:
        t0 = time.perf_counter()
        train_supernet(train_config(args, path, 0.0, args.float_epochs, 0), splits=splits)
        print(f"float start: {args.float_epochs} epochs on {len(splits.train)} images in "
              f"{time.perf_counter() - t0:.0f} s -> {path}")
    return path


def supernet_from_float_start(args: argparse.Namespace, splits, start: Path, fraction: float,
                              path: str | Path) -> Supernet:
    """A supernet trained ``epochs`` quantized epochs on from the float start at ``start``
    (trained first if missing); reused when complete, without touching ``start``."""
    path = Path(path)
    total = args.float_epochs + args.epochs
    if args.retrain or _epochs_done(path) < total:
        if args.retrain or _epochs_done(path) < args.float_epochs:
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
