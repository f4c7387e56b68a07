"""Supernet training: sandwich-rule bit sampling, in-place distillation, cosine LR, resume.

Every step trains the shared weights under several per-layer bit configurations (the
"sandwich rule"): the largest (all layers at the highest bit-width), the smallest, and
``n_random`` random ones; their gradients accumulate before one optimizer step. With
``distill`` the non-largest configurations learn from the largest one's soft predictions
(in-place distillation) instead of the labels; with ``teacher="float"`` a frozen copy of the float
network at the float-to-quantized switch teaches every configuration instead (the float start's
knowledge, which a quantized largest configuration has partly lost). With ``csq_fraction`` > 0 (CSQ) each
quantized epoch starts by measuring channel sensitivity (:mod:`jaqmoo.quant.sensitivity`)
and only each layer's top ``csq_fraction`` output channels are trained quantization-aware,
through the fused blocks of :mod:`jaqmoo.quant.csq` that store no float activation for the
others. ``float_epochs`` plain float epochs may come
first (one float forward/backward per step, several times cheaper than a sandwich step): a
float-trained start lets the shared quantized weights converge in far fewer sandwich steps,
as a pretrained checkpoint does.

A checkpoint is written after every epoch (atomically); ``resume=True`` continues from
it with the same optimizer, schedule and random state.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

from jaqmoo.data import load_dataset
from jaqmoo.errors import JaqmooError
from jaqmoo.models.elastic_space import ElasticSpace
from jaqmoo.progress import progress_bar
from jaqmoo.quant.augment import augment_batch, check_augment
from jaqmoo.quant.checkpoints import load_for_resume
from jaqmoo.quant.csq import csq_blocks
from jaqmoo.quant.distributed import (
    agree,
    average_gradients,
    barrier,
    broadcast_module,
    init_from_env,
    mean_over_ranks,
    rank_device,
    shard,
    sync_batch_norms,
)
from jaqmoo.quant.elastic import (
    ElasticSupernet,
    build_elastic_supernet,
    elastic_train_step,
    evaluate_pair,
    sandwich_pairs,
    sort_hidden_channels,
)
from jaqmoo.quant.policy import FLOAT_BITS, SUPPORTED_BITS, QuantPolicy
from jaqmoo.quant.sandwich import sandwich_policies, sandwich_step
from jaqmoo.quant.sensitivity import measure_sensitivity
from jaqmoo.quant.supernet import Supernet, build_supernet, read_checkpoint
from jaqmoo.strict import number

#: Version of the training code, raised whenever a change makes the same recipe train different
#: weights (cached supernets of an older version are then not reused). 2: LSQ steps calibrated
#: at the float-to-quantized switch (``Supernet.calibrate_steps``); 3: elastic MobileNetV2's
#: channel sort leaves blocks without an expand layer alone; 4: the sandwich rule's middle configurations
#: drawn as the search draws (level + noise, :func:`jaqmoo.quant.sampling.level_policies`), dropout's
#: random state restored on resume, the fused LSQ path for activations.
TRAINING_VERSION = 4

#: who teaches the sandwich's configurations (TrainConfig.teacher)
TEACHERS = ("inplace", "float")


@dataclass
class TrainConfig:
    """Everything :func:`train_supernet` needs (all plain values, stored in the checkpoint)."""

    model: str = "mobilenet_v2"
    dataset: str = "fashion-mnist"
    out: str = "supernet.pt"
    epochs: int = 5
    float_epochs: int = 0
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    width_mult: float = 1.0
    bits: tuple[int, ...] = SUPPORTED_BITS
    per_channel: bool = True
    csq_fraction: float = 0.0
    fixed_first_last: int | None = None
    n_random: int = 2
    distill: bool = True
    teacher: str = "inplace"  # who distils: "inplace" (the largest configuration) or "float" (the frozen float start)
    sensitivity_batches: int = 2
    seed: int = 0
    device: str = "auto"
    data_root: str | None = None
    download: bool = False
    max_train: int | None = None
    max_val: int | None = 1000
    input_size: int = 224  # image size for 'imagefolder' (the other datasets have a fixed size)
    augment: str = "none"  # training-batch augmentation (jaqmoo.quant.augment.AUGMENTATIONS)
    quant_lr: float | None = None  # None: one cosine over all epochs; else float and quantized phases each
    # get their own cosine, the quantized one restarting at quant_lr
    resume: bool = False
    progress: bool = True
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        for f in fields(self):  # every number finite (a NaN lr trains garbage) and of a sane size
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                number(value, f.name)
        if self.epochs < 0:
            raise JaqmooError(f"epochs must be >= 0 (got {self.epochs})")
        if self.float_epochs < 0:
            raise JaqmooError(f"float_epochs must be >= 0 (got {self.float_epochs})")
        if self.batch_size < 1:
            raise JaqmooError(f"batch_size must be >= 1 (got {self.batch_size})")
        if self.lr <= 0:
            raise JaqmooError(f"lr must be > 0 (got {self.lr})")
        if self.n_random < 0:
            raise JaqmooError(f"n_random must be >= 0 (got {self.n_random})")
        if self.optimizer not in ("adamw", "sgd"):
            raise JaqmooError(f"optimizer must be 'adamw' or 'sgd' (got {self.optimizer!r})")
        if not 0.0 <= self.csq_fraction <= 1.0:
            raise JaqmooError(f"csq_fraction must be in [0, 1] (got {self.csq_fraction})")
        if self.quant_lr is not None and self.quant_lr <= 0:
            raise JaqmooError(f"quant_lr must be > 0 or unset (got {self.quant_lr})")
        check_augment(self.augment)
        if self.teacher not in TEACHERS:
            raise JaqmooError(f"teacher must be one of {', '.join(TEACHERS)} (got {self.teacher!r})")
        if self.teacher == "float" and not self.distill:
            raise JaqmooError("teacher 'float' needs distill: true (without distillation nothing is taught)")
        pretrained = self.extra.get("pretrained") if isinstance(self.extra, dict) else None
        if self.teacher == "float" and self.float_epochs == 0 and not pretrained:
            raise JaqmooError("teacher 'float' needs a float start to teach: float_epochs > 0 or pretrained float "
                              "weights (model.checkpoint); without one use teacher: inplace")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else CPU; anything else is checked."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise JaqmooError(f"device {device!r}: CUDA is not available on this machine; use --device cpu")
    return dev


def iterate_batches(ds: Dataset, batch_size: int, shuffle: bool, generator: torch.Generator | None = None,
                    device: torch.device | None = None, drop_last: bool = False) -> Iterator[tuple[Tensor, Tensor]]:
    """Mini-batches of ``ds``: fast slicing for in-memory tensors, a DataLoader otherwise."""
    if isinstance(ds, TensorDataset):
        x_all, y_all = ds.tensors[0], ds.tensors[1]
        n = len(x_all)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        stop = n - (n % batch_size) if drop_last and n >= batch_size else n
        for i in range(0, stop, batch_size):
            idx = order[i : i + batch_size]
            x, y = x_all[idx], y_all[idx]
            yield (x.to(device), y.to(device)) if device is not None else (x, y)
        return
    loader = DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last)
    for x, y in loader:
        yield (x.to(device), y.to(device)) if device is not None else (x, y)


def n_batches(ds: Dataset, batch_size: int, drop_last: bool = False) -> int:
    n = len(ds)
    return n // batch_size if drop_last and n >= batch_size else math.ceil(n / batch_size)


def lr_factor(step: int, cfg: TrainConfig, steps_per_epoch: int) -> float:
    """The learning rate at optimizer step ``step`` as a multiple of ``cfg.lr``: one cosine over all
    epochs, or (``cfg.quant_lr`` set) a cosine over the float epochs and one restarting at
    ``quant_lr`` over the quantized epochs."""
    total = max(1, (cfg.float_epochs + cfg.epochs) * steps_per_epoch)
    if cfg.quant_lr is None:
        return 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    switch = cfg.float_epochs * steps_per_epoch
    if step < switch:
        return 0.5 * (1 + math.cos(math.pi * step / switch))
    span = max(1, total - switch)
    return cfg.quant_lr / cfg.lr * 0.5 * (1 + math.cos(math.pi * min(step - switch, span) / span))


def make_optimizer(supernet: Supernet, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on conv/linear weights only (not on BN, biases or step sizes)."""
    decay, no_decay = [], []
    for name, p in supernet.named_parameters():
        (decay if name.endswith(".weight") and p.dim() > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def train_step(supernet: Supernet, x: Tensor, y: Tensor, policies: list[QuantPolicy], distill: bool,
               teacher_probs: Tensor | None = None) -> float:
    """Forward/backward every policy (gradients accumulate); returns the mean loss."""
    return sandwich_step(supernet, x, y, len(policies), lambda i: supernet.set_policy(policies[i]), distill,
                         teacher_probs)


def frozen_teacher(supernet: Supernet, state: dict | None = None) -> Supernet:
    """A frozen copy of ``supernet`` in float and eval mode (``state``: its weights, when resuming)."""
    teacher = copy.deepcopy(supernet)
    if state is not None:
        teacher.load_state_dict(state)
    teacher.set_policy(teacher.uniform_policy(FLOAT_BITS))
    teacher.eval()
    teacher.requires_grad_(False)
    return teacher


def soft_targets(teacher: Supernet | None, x: Tensor) -> Tensor | None:
    """The teacher's soft predictions for ``x`` (None without a teacher)."""
    if teacher is None:
        return None
    with torch.no_grad():
        return torch.softmax(teacher(x), dim=1)


def quick_accuracy(supernet: Supernet, policy: QuantPolicy, calib: list[Tensor], x: Tensor, y: Tensor) -> float:
    """Accuracy of ``policy`` after BN recalibration (on a copy, so training BN stats stay)."""
    probe = copy.deepcopy(supernet)
    probe.set_policy(policy)
    probe.recalibrate_bn(calib)
    return probe.accuracy(x, y)


def _stack(ds: Dataset, limit: int, device: torch.device) -> tuple[Tensor, Tensor]:
    xs, ys = [], []
    for x, y in iterate_batches(ds, 512, shuffle=False):
        xs.append(x)
        ys.append(y)
        if sum(len(t) for t in xs) >= limit:
            break
    return torch.cat(xs)[:limit].to(device), torch.cat(ys)[:limit].to(device)


def train_supernet(cfg: TrainConfig, splits=None, supernet: Supernet | None = None) -> Path:
    """Train a supernet as described by ``cfg``; returns the checkpoint path.

    ``splits`` (a :class:`jaqmoo.data.DatasetSplits`) and ``supernet`` may be given to
    skip loading/building them (tests, benchmarks).

    Inside a process group (``jaqmoo supernet train --nproc N``, ``torchrun``) every rank runs
    this function: each trains its slice of every global batch of ``batch_size`` images, with
    global batch-norm statistics and averaged gradients, and rank 0 writes the checkpoint
    (:mod:`jaqmoo.quant.distributed`).
    """
    cfg.validate()
    device = resolve_device(cfg.device)
    ctx = init_from_env(device)
    device = rank_device(device, ctx)
    if ctx.active and cfg.batch_size % ctx.world:
        raise JaqmooError(f"batch_size {cfg.batch_size} does not split evenly over {ctx.world} processes; "
                          f"use a multiple of {ctx.world}")
    out = Path(cfg.out)
    if splits is None:
        splits = load_dataset(cfg.dataset, cfg.data_root, seed=cfg.seed, download=cfg.download,
                              input_size=cfg.input_size, max_train=cfg.max_train, max_val=cfg.max_val)
    torch.manual_seed(cfg.seed)
    start_epoch, history = 0, []
    payload = None
    if cfg.resume and out.is_file():
        payload = read_checkpoint(out)
        supernet = load_for_resume(out, payload, cfg.model, _elastic_space(cfg))
        if payload["meta"].get("dataset") != splits.name:
            raise JaqmooError(f"--resume: checkpoint {out} was trained on {payload['meta'].get('dataset')!r}, not {splits.name!r}")
        start_epoch = int(payload.get("epoch", 0))
        history = list(payload.get("history", []))
    elif supernet is None and _elastic_space(cfg) is not None:
        supernet = build_elastic_supernet(_elastic_space(cfg), splits.num_classes, splits.in_channels, splits.input_size,
                                          splits.name, cfg.bits, cfg.per_channel, cfg.csq_fraction, cfg.fixed_first_last)
    elif supernet is None:
        supernet = build_supernet(cfg.model, splits.num_classes, splits.in_channels, splits.input_size,
                                  cfg.width_mult, splits.name, cfg.bits, cfg.per_channel, cfg.csq_fraction,
                                  cfg.fixed_first_last)
    supernet.to(device)
    teacher = None
    if payload is not None and cfg.teacher == "float" and start_epoch > cfg.float_epochs:
        if "teacher" not in payload:
            raise JaqmooError(f"--resume: checkpoint {out} has no float teacher (it was trained with another "
                              "teacher); train again without --resume")
        teacher = frozen_teacher(supernet, payload["teacher"])
    if ctx.active:
        sync_batch_norms(supernet.model)
        broadcast_module(supernet, ctx)
        supernet.set_batch_shards(ctx.world)
    supernet.set_csq_fraction(cfg.csq_fraction)
    opt = make_optimizer(supernet, cfg)
    steps_per_epoch = max(1, n_batches(splits.train, cfg.batch_size, drop_last=True))
    n_epochs = cfg.float_epochs + cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg, steps_per_epoch))
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if payload is not None:
        if "optimizer" in payload:
            opt.load_state_dict(payload["optimizer"])
        if "scheduler" in payload:
            sched.load_state_dict(payload["scheduler"])
        if "rng" in payload:
            gen.set_state(payload["rng"]["torch"])
            rng.bit_generator.state = _restore_np_state(payload["rng"]["numpy"])
            if "global" in payload["rng"]:  # dropout's state (checkpoints of TRAINING_VERSION >= 4)
                torch.set_rng_state(payload["rng"]["global"])
    calib = [x.to(device) for x, _ in iterate_batches(splits.train, 256, shuffle=False)][:2]
    vx, vy = _stack(splits.val, 1000, device)
    cfg_dict = asdict(cfg)
    cfg_dict["bits"] = list(cfg.bits)

    float_policy = supernet.uniform_policy(FLOAT_BITS)
    elastic = isinstance(supernet, ElasticSupernet)
    if elastic:  # the checkpoint's identity carries the (normalised) architecture space
        cfg_dict["extra"] = {**cfg_dict["extra"], "elastic": supernet.space.to_dict()}

    def quantize_from_float() -> None:
        """Step sizes fitted to the float weights (the largest architecture of an elastic supernet)."""
        if elastic:
            supernet.set_arch(supernet.space.largest())
        supernet.calibrate_steps(calib[0])

    def save(epoch: int) -> None:  # rank 0 writes; the others wait until the file is complete
        if ctx.is_main:
            extra = {} if teacher is None else {"teacher": teacher.state_dict()}
            supernet.save(out, epoch=epoch, history=history, optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                          config=cfg_dict, rng={"torch": gen.get_state(), "numpy": _np_state(rng),
                                                "global": torch.get_rng_state()}, **extra)
        barrier(ctx)

    for epoch in range(start_epoch, n_epochs):
        supernet.train()
        float_phase = epoch < cfg.float_epochs
        csq = cfg.csq_fraction > 0.0 and not float_phase
        if epoch == cfg.float_epochs:  # quantized training starts from these float weights
            if cfg.teacher == "float":
                teacher = frozen_teacher(supernet)
            quantize_from_float()
        if elastic and not float_phase:
            sort_hidden_channels(supernet)  # before CSQ ranking: sorting clears the channel choices
        if csq:
            sens = list(iterate_batches(splits.train, cfg.batch_size, True, gen, device))[: cfg.sensitivity_batches]
            # every rank measures the whole batches (as one process does) and takes rank 0's scores,
            # so every rank ranks the same channels
            supernet.set_sensitive_channels(agree(measure_sensitivity(supernet, sens), ctx))
        bar = progress_bar(iterate_batches(splits.train, cfg.batch_size, True, gen, device, drop_last=True),
                           total=steps_per_epoch, desc=f"epoch {epoch + 1}/{n_epochs}{' (float)' if float_phase else ''}",
                           disable=not (cfg.progress and ctx.is_main), leave=False)
        t0, seen, loss_sum, step_losses = time.perf_counter(), 0, 0.0, []
        # CSQ's fused blocks (jaqmoo/quant/csq.py) for fixed-architecture supernets; an elastic
        # supernet trains every channel on the lean LSQ path
        with csq_blocks(supernet.model) if csq and not elastic else nullcontext():
            for x, y in bar:
                x = shard(augment_batch(x, cfg.augment, gen), ctx)
                y = shard(y, ctx)
                opt.zero_grad(set_to_none=True)
                taught = None if float_phase else soft_targets(teacher, x)
                if elastic and not float_phase:  # sandwich over (architecture, bits) jointly
                    loss = elastic_train_step(supernet, x, y, sandwich_pairs(supernet, rng, cfg.n_random), cfg.distill,
                                              taught)
                else:
                    policies = [float_policy] if float_phase else sandwich_policies(supernet, rng, cfg.n_random)
                    loss = train_step(supernet, x, y, policies, cfg.distill, taught)
                average_gradients(supernet, ctx)
                loss = mean_over_ranks(loss, ctx)
                step_losses.append(loss)
                nn.utils.clip_grad_norm_(supernet.parameters(), 5.0)
                opt.step()
                sched.step()
                seen += len(x)
                loss_sum += loss
                if not math.isfinite(loss):
                    raise JaqmooError(f"training diverged (loss {loss}) at epoch {epoch + 1}; lower --lr")
                bar.set_postfix(loss=f"{loss:.3f}", img_s=f"{seen / (time.perf_counter() - t0):.0f}",
                                lr=f"{sched.get_last_lr()[0]:.2e}")
        bar.close()
        record = {
            "epoch": epoch + 1,
            "phase": "float" if float_phase else "quantized",
            "loss": loss_sum / steps_per_epoch,
            "seconds": time.perf_counter() - t0,
            "step_losses": step_losses,
        }
        # validation after the epoch, batch-norms recalibrated on one calibration batch: in the float
        # phase the float network only (jaqmoo.quant.sanity compares 8-bit with it; quantized accuracies
        # would use steps fitted to other weights), afterwards the largest and smallest configurations
        if float_phase:
            record["acc_float"] = quick_accuracy(supernet, float_policy, calib[:1], vx, vy)
        else:
            record["acc_max_bits"] = quick_accuracy(supernet, supernet.uniform_policy(max(supernet.bits)), calib[:1],
                                                    vx, vy)
            record["acc_min_bits"] = quick_accuracy(supernet, supernet.uniform_policy(min(supernet.bits)), calib[:1],
                                                    vx, vy)
        if elastic and not float_phase:  # the bottom of the sandwich: smallest architecture at the lowest bits
            record["acc_smallest_min_bits"] = evaluate_pair(supernet, supernet.space.smallest(),
                                                            supernet.uniform_policy(min(supernet.bits)), calib[:1],
                                                            vx, vy)
        history.append(record)
        if cfg.progress and ctx.is_main:
            accs = (f"float {record['acc_float']:.3f}" if float_phase else
                    f"{max(supernet.bits)}-bit {record['acc_max_bits']:.3f}, "
                    f"{min(supernet.bits)}-bit {record['acc_min_bits']:.3f}")
            tqdm.write(f"epoch {epoch + 1}: loss {record['loss']:.4f}, val acc {accs} ({record['seconds']:.0f} s)")
        if float_phase and epoch + 1 == n_epochs:  # no quantized epochs follow: steps fitted to the final
            quantize_from_float()                  # float weights (the supernet then scores as PTQ does)
        save(epoch + 1)
    if n_epochs == 0 or start_epoch >= n_epochs:
        save(max(start_epoch, n_epochs))
    supernet.set_policy(supernet.uniform_policy(max(supernet.bits)))
    return out


def _elastic_space(cfg: TrainConfig) -> ElasticSpace | None:
    """The :class:`~jaqmoo.models.elastic_mbv2.ElasticSpace` of ``cfg.extra['elastic']`` (None: fixed network)."""
    data = cfg.extra.get("elastic") if isinstance(cfg.extra, dict) else None
    if data is None:
        return None
    return ElasticSpace.from_dict(data, width_mult=cfg.width_mult, model=cfg.model)


def _np_state(rng: np.random.Generator) -> dict:
    """numpy bit-generator state as tensors/ints only (loadable with weights_only=True)."""
    st = rng.bit_generator.state
    return {"bit_generator": st["bit_generator"], "state": int(st["state"]["state"]) % (1 << 62),
            "state_hi": int(st["state"]["state"]) >> 62, "inc": int(st["state"]["inc"]) % (1 << 62),
            "inc_hi": int(st["state"]["inc"]) >> 62, "has_uint32": st["has_uint32"], "uinteger": st["uinteger"]}


def _restore_np_state(d: dict) -> dict:
    return {"bit_generator": d["bit_generator"],
            "state": {"state": (d["state_hi"] << 62) | d["state"], "inc": (d["inc_hi"] << 62) | d["inc"]},
            "has_uint32": d["has_uint32"], "uinteger": d["uinteger"]}


__all__ = ["TEACHERS", "TRAINING_VERSION", "TrainConfig", "frozen_teacher", "soft_targets", "iterate_batches", "lr_factor", "resolve_device", "train_step", "train_supernet"]
