"""Quantization-aware fine-tuning of one fixed policy: the loop under every QAT truth.

* :func:`calibrated_start` — a copy of a (float-trained) supernet whose LSQ step sizes are
  set to their quantization-error-optimal values (:meth:`Supernet.calibrate_steps`): the
  start of every QAT fine-tune and, evaluated without training, post-training quantization.
* :func:`qat_finetune` — AdamW with a cosine learning-rate schedule fixed in advance by the
  step budget, gradient clipping, seeded data order; optionally checkpointed every
  ``checkpoint_every`` steps so that a killed run resumes where it stopped and ends with the
  same weights as an uninterrupted one (same data order, same random state).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from jaqmoo.errors import JaqmooError
from jaqmoo.quant.supernet import Supernet, save_checkpoint
from jaqmoo.quant.train import iterate_batches

QAT_CHECKPOINT_FORMAT = "jaqmoo-qat-partial"


def calibrated_start(supernet: Supernet, batch: Tensor, device: str | torch.device = "cpu") -> Supernet:
    """A copy of ``supernet`` on ``device`` with every step size calibrated on ``batch``
    (:meth:`~jaqmoo.quant.supernet.Supernet.calibrate_steps`; the original is left alone)."""
    start = copy.deepcopy(supernet).to(device)
    start.calibrate_steps(batch.to(device))
    return start


def cosine_factor(step: int, total: int) -> float:
    """Learning-rate factor at ``step`` of ``total``: half a cosine from 1 down to 0."""
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


def _load_partial(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged files
        raise JaqmooError(f"QAT checkpoint {path} is damaged ({type(exc).__name__}); delete it to restart "
                          "this fine-tune from its beginning") from exc
    if not isinstance(state, dict) or state.get("format") != QAT_CHECKPOINT_FORMAT:
        raise JaqmooError(f"{path} is not a jaqmoo QAT checkpoint; delete it to restart this fine-tune")
    return state


def qat_finetune(net: Supernet, train: Dataset, steps: int, lr: float, batch_size: int = 128, seed: int = 0,
                 device: str | torch.device = "cpu", weight_decay: float = 0.0, clip: float = 5.0,
                 checkpoint: str | Path | None = None, checkpoint_every: int = 100,
                 on_step: Callable[[int], None] | None = None) -> Supernet:
    """Train ``net`` in place under its current policy for ``steps`` optimizer steps and return it.

    AdamW (``lr``, ``weight_decay``), learning rate ``lr * cosine_factor(step, steps)``
    (the schedule depends only on ``steps``), gradient norm clipped at ``clip``, batches of
    ``batch_size`` drawn without replacement per pass over ``train`` (incomplete last batch
    dropped) by a generator seeded with ``seed``; torch's global random state (dropout) is
    seeded with ``seed`` too and restored afterwards.

    ``checkpoint``: a file written (atomically, torch weights only) every
    ``checkpoint_every`` steps and read at the start when present, so a killed run resumes
    there; it is removed when training ends. ``on_step(step)`` is called after every step.
    """
    if steps < 1:
        raise JaqmooError(f"QAT steps must be >= 1 (got {steps})")
    if len(train) < batch_size:
        raise JaqmooError(f"QAT: {len(train)} training images is less than one batch of {batch_size}")
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net.train()
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_factor(s, steps))
        gen = torch.Generator().manual_seed(seed)
        step, skip = 0, 0
        saved = _load_partial(checkpoint) if checkpoint is not None else None
        if saved is not None:
            if int(saved["steps"]) != steps:
                raise JaqmooError(f"QAT checkpoint {checkpoint} belongs to a {saved['steps']}-step run, not "
                                  f"{steps}; delete it")
            net.load_state_dict(saved["model"])
            opt.load_state_dict(saved["optimizer"])
            sched.load_state_dict(saved["scheduler"])
            gen.set_state(saved["epoch_generator"])
            torch.set_rng_state(saved["torch_rng"])
            step, skip = int(saved["step"]), int(saved["batch_in_epoch"])
        while step < steps:
            epoch_generator = gen.get_state()
            batches = iterate_batches(train, batch_size, True, gen, torch.device(device), drop_last=True)
            for i, (x, y) in enumerate(batches):
                if i < skip:
                    continue
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(net(x), y).backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
                opt.step()
                sched.step()
                step += 1
                if checkpoint is not None and step % checkpoint_every == 0 and step < steps:
                    save_checkpoint(checkpoint, {
                        "format": QAT_CHECKPOINT_FORMAT, "steps": steps, "step": step, "batch_in_epoch": i + 1,
                        "model": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                        "epoch_generator": epoch_generator, "torch_rng": torch.get_rng_state()})
                if on_step is not None:
                    on_step(step)
                if step >= steps:
                    break
            skip = 0
    if checkpoint is not None and checkpoint.is_file():
        checkpoint.unlink()
    return net


__all__ = ["calibrated_start", "cosine_factor", "qat_finetune"]
