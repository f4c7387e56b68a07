"""CLI: ``jaqmoo supernet train`` and ``jaqmoo supernet eval``."""

from __future__ import annotations

import argparse
import json
import time

from jaqmoo.commands import add_quiet_option, add_threads_option, set_threads
from jaqmoo.errors import JaqmooError


def _bits_list(text: str) -> tuple[int, ...]:
    from jaqmoo.quant.policy import check_bits

    try:
        values = [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError as exc:
        raise JaqmooError(f"--train-bits: expected comma-separated integers such as 2,3,4,5,6,7,8 (got {text!r})") from exc
    return tuple(check_bits(v, "--train-bits") for v in values)


def _train(args: argparse.Namespace) -> int:
    from jaqmoo.quant.train import TrainConfig, train_supernet

    set_threads(args.threads)
    cfg = TrainConfig(
        model=args.model, dataset=args.dataset, out=args.out, epochs=args.epochs, float_epochs=args.float_epochs, batch_size=args.batch_size,
        lr=args.lr, optimizer=args.optimizer, width_mult=args.width_mult, bits=_bits_list(args.train_bits),
        per_channel=not args.per_tensor, csq_fraction=args.csq_fraction, fixed_first_last=args.keep_first_last,
        n_random=args.n_random, distill=not args.no_distill, teacher=args.teacher, seed=args.seed, device=args.device,
        data_root=args.data_root, download=args.download, max_train=args.max_train, resume=args.resume,
        input_size=args.input_size, augment=args.augment, quant_lr=args.quant_lr, weight_decay=args.weight_decay,
        progress=not args.quiet,
        extra=_elastic_extra(args),
    )
    t0 = time.perf_counter()
    if args.nproc > 1:  # data-parallel: one process per share of every batch (gloo on CPU, NCCL on GPUs)
        from pathlib import Path

        from jaqmoo.quant.distributed import launch_local
        from jaqmoo.quant.train import resolve_device

        launch_local(train_supernet, (cfg,), args.nproc, resolve_device(cfg.device), args.threads)
        path = Path(cfg.out)
    else:
        path = train_supernet(cfg)
    print(f"wrote {path} ({time.perf_counter() - t0:.0f} s)")
    return 0


def _elastic_extra(args: argparse.Namespace) -> dict:
    """``{"elastic": space}`` for ``--elastic`` (validated), else ``{}``."""
    given = {k: getattr(args, k) for k in ("depth", "expand", "kernel") if getattr(args, k) is not None}
    if not args.elastic:
        if given:
            raise JaqmooError(f"--{'/--'.join(given)} need --elastic (they describe the elastic architecture space)")
        return {}
    from jaqmoo.models.elastic_space import ElasticSpace

    data = {}
    for key, text in given.items():
        try:
            data[key] = [int(t) for t in text.replace(" ", "").split(",") if t]
        except ValueError:
            raise JaqmooError(f"--{key}: expected comma-separated integers such as 3,5,7 (got {text!r})") from None
    return {"elastic": ElasticSpace.from_dict(data, width_mult=args.width_mult, model=args.model).to_dict()}


def _eval(args: argparse.Namespace) -> int:
    from jaqmoo.data import load_dataset
    from jaqmoo.quant.checkpoints import load_supernet
    from jaqmoo.quant.estimators import EvalData, SupernetEstimator
    from jaqmoo.quant.policy import QuantPolicy, parse_bits_spec
    from jaqmoo.quant.train import resolve_device

    set_threads(args.threads)
    if (args.bits is None) == (args.bits_file is None):
        raise JaqmooError("give exactly one of --bits W/A (e.g. 4/8) or --bits-file policy.yaml")
    device = resolve_device(args.device)
    net = load_supernet(args.checkpoint, device=device)
    if hasattr(net, "space") and not args.json:  # an ElasticSupernet: the largest sub-network is selected
        print(f"elastic supernet ({net.space.to_dict()}): evaluating its largest sub-network")
    if args.bits is not None:
        w, a = parse_bits_spec(args.bits)
        policy = net.apply_rules(QuantPolicy.uniform(net.layer_names, w, a))
        held = sorted(net.fixed_layers().items())
        if held and not args.json:
            print("held by the supernet's first/last-layer rule: "
                  + ", ".join(f"{net.layer_names[i]} at {b}/{b}" for i, b in held))
    else:
        policy = QuantPolicy.load(args.bits_file, net.layer_names)
    net.check_policy(policy)
    if not net.meta.dataset:
        raise JaqmooError(f"checkpoint {args.checkpoint} records no dataset; it cannot be evaluated from the CLI")
    split_seed = args.seed if args.split_seed is None else args.split_seed
    splits = load_dataset(net.meta.dataset, args.data_root, seed=split_seed, download=args.download,
                          input_size=net.meta.input_size)
    data = EvalData.from_splits(splits, args.images, args.calib_batches, 128, args.seed, device,
                                use_test=args.split == "test")
    est = SupernetEstimator(net, data)
    t0 = time.perf_counter()
    acc = float(est.estimate([policy])[0])
    seconds = time.perf_counter() - t0
    result = {
        "checkpoint": str(args.checkpoint), "model": net.meta.model, "dataset": net.meta.dataset,
        "split": args.split, "images": len(data.images), "accuracy": acc, "seconds": seconds,
        "mean_weight_bits": sum(policy.weight_bits) / len(policy), "mean_act_bits": sum(policy.act_bits) / len(policy),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{net.meta.model} on {net.meta.dataset} ({args.split}, {len(data.images)} images): "
              f"top-1 accuracy {acc:.4f} ({seconds:.2f} s)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``supernet train`` and ``supernet eval``."""
    p = sub.add_parser("supernet", help="train or evaluate a quantization-aware (CSQ) supernet",
                       description="Train a bit-switchable CSQ supernet outside a run (`train`), or read one policy's "
                                   "accuracy off a trained one (`eval`).")
    ss = p.add_subparsers(dest="supernet_command", required=True, metavar="SUBCOMMAND")

    t = ss.add_parser("train", help="train a bit-switchable supernet (sandwich rule, optional CSQ)",
                      description="Train a bit-switchable supernet: --float-epochs plain float epochs, then "
                                  "--epochs sandwich-rule epochs (largest, smallest and --n-random random bit "
                                  "policies per step, distilled from the largest), with CSQ on --csq-fraction of "
                                  "each layer's channels. One line per epoch reports the validation accuracy; "
                                  "the checkpoint is rewritten after every epoch (--resume continues it).")
    t.add_argument("--model", default="mobilenet_v2", help="model name (see jaqmoo.models.MODELS), torchvision:<name> or "
                                                                    "package.module:callable")
    t.add_argument("--dataset", default="fashion-mnist", help="digits | fashion-mnist | cifar10 | imagefolder")
    t.add_argument("--epochs", type=int, default=5, help="quantized (sandwich-rule) epochs")
    t.add_argument("--float-epochs", type=int, default=0,
                   help="plain float epochs before the quantized ones (a cheap pretrained start)")
    t.add_argument("--out", required=True, help="checkpoint file to write (updated after every epoch)")
    t.add_argument("--csq-fraction", type=float, default=0.0,
                   help="fraction of each layer's channels on the full LSQ path (CSQ); 0 = all (plain LSQ)")
    t.add_argument("--width-mult", type=float, default=1.0, help="channel width multiplier of the model (default 1.0)")
    t.add_argument("--batch-size", type=int, default=128, help="training batch size (default 128)")
    t.add_argument("--lr", type=float, default=2e-3, help="peak learning rate, cosine-decayed to 0 (default 0.002)")
    t.add_argument("--optimizer", default="adamw", choices=["adamw", "sgd"], help="optimizer (default adamw)")
    t.add_argument("--weight-decay", type=float, default=1e-4, help="on conv/linear weights only")
    t.add_argument("--quant-lr", type=float, default=None,
                   help="give the float and the quantized epochs a cosine each, the quantized one from this "
                        "learning rate (default: one cosine over all epochs from --lr)")
    t.add_argument("--augment", default="none",
                   help="training-batch augmentation: none | crop (random 2-pixel shifts) | crop-flip (and left-right flips)")
    t.add_argument("--train-bits", default="2,3,4,5,6,7,8", help="candidate bit-widths (comma-separated)")
    t.add_argument("--per-tensor", action="store_true", help="one weight step per layer instead of per channel")
    t.add_argument("--keep-first-last", type=int, default=None, metavar="BITS",
                   help="fix the first and last layers at BITS bits (weights and activations)")
    t.add_argument("--n-random", type=int, default=2, help="random configurations per step besides max and min")
    t.add_argument("--no-distill", action="store_true", help="train every configuration on the labels")
    t.add_argument("--teacher", choices=("inplace", "float"), default="inplace",
                   help="who distils: the largest configuration (inplace) or a frozen copy of the float start, "
                        "which then teaches every configuration (float; needs --float-epochs or a float checkpoint)")
    t.add_argument("--max-train", type=int, default=None, help="use a seeded subset of the training images")
    t.add_argument("--resume", action="store_true", help="continue from --out if it exists")
    t.add_argument("--nproc", type=int, default=1,
                   help="train data-parallel in this many local processes (gloo on CPU, NCCL on GPUs; --batch-size "
                        "is the global batch; --threads per process); for several nodes use torchrun "
                        "(docs/distributed-training.md)")
    t.add_argument("--input-size", type=int, default=224, help="image size for --dataset imagefolder")
    t.add_argument("--elastic", action="store_true",
                   help="train an elastic (depth/expand/kernel) supernet: sandwich over (architecture, bits)")
    t.add_argument("--depth", default=None, help="elastic depth choices per stage, e.g. 2,3,4 (with --elastic)")
    t.add_argument("--expand", default=None, help="elastic expand-ratio choices, e.g. 3,4,6 (with --elastic)")
    t.add_argument("--kernel", default=None, help="elastic depthwise kernel choices, e.g. 3,5,7 (with --elastic)")
    _common(t)
    t.set_defaults(func=_train)

    e = ss.add_parser("eval", help="accuracy of one policy on a trained supernet (BN recalibrated)",
                      description="Set one bit policy (uniform --bits or per-layer --bits-file) on a trained "
                                  "supernet, recalibrate batch-norm and print its top-1 accuracy on --images "
                                  "validation (or test) images.")
    e.add_argument("--checkpoint", required=True, help="supernet checkpoint written by `jaqmoo supernet train` "
                                                      "(or a run's accuracy.cache_dir)")
    e.add_argument("--bits", help="uniform W/A bits, e.g. 4/8 or 6")
    e.add_argument("--bits-file", help="policy YAML (per-layer bits; see jaqmoo.quant.policy); unlike --bits, layers held by the "
                   "supernet's first/last-layer rule must be given at their fixed bits")
    e.add_argument("--images", type=int, default=2000, help="validation images to evaluate")
    e.add_argument("--calib-batches", type=int, default=2, help="BN recalibration batches (128 images each)")
    e.add_argument("--split", choices=["val", "test"], default="val",
                   help="val: the validation split the search uses (default); test: the held-out test set")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.add_argument("--split-seed", type=int, default=None,
                   help="seed of the train/validation split (a spec's dataset.split_seed; default: --seed)")
    _common(e)
    e.set_defaults(func=_eval)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=None, help="dataset folder (default: the standard location)")
    p.add_argument("--download", action="store_true", help="let torchvision download the dataset if missing")
    p.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda[:N]")
    p.add_argument("--seed", type=int, default=0, help="seed of the data split, sampling and training (default 0)")
    add_threads_option(p)
    add_quiet_option(p)
