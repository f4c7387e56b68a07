"""One sandwich-rule training step: several configurations of a supernet, gradients accumulated.

The step itself knows nothing about what a configuration is: ``select(i)`` switches the
supernet to the i-th (a bit policy for a fixed supernet, an (architecture, bits) pair for an
elastic one). With in-place distillation the first configuration (the largest) learns from the
labels and teaches the others with its detached soft predictions. :func:`sandwich_policies`
draws the configurations of a fixed-network supernet's step. This module sits below
:mod:`jaqmoo.quant.elastic` and :mod:`jaqmoo.quant.train`, which both use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch.nn.functional as F
from torch import Tensor, nn

from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.quant.sampling import level_policies


def sandwich_policies(supernet: Any, rng: np.random.Generator, n_random: int,
                      top_bits: int | None = None) -> list[QuantPolicy]:
    """Largest, smallest and ``n_random`` middle per-layer bit configurations of a
    :class:`~jaqmoo.quant.supernet.Supernet`, the middles drawn where the search looks (one level
    per policy plus per-layer noise, :func:`~jaqmoo.quant.sampling.level_policies`) rather than
    every layer independently (whose few 2-bit layers put most middles near chance).
    ``top_bits`` caps the bit-widths (default: the supernet's largest)."""
    hi = max(supernet.bits) if top_bits is None else int(top_bits)
    choices = [b for b in supernet.bits if b <= hi]
    return [supernet.uniform_policy(hi), supernet.uniform_policy(min(choices))] + level_policies(
        supernet, n_random, rng, choices)


def distill_loss(student: Tensor, teacher_probs: Tensor) -> Tensor:
    """KL divergence of the student from the (detached) teacher distribution."""
    return F.kl_div(F.log_softmax(student, dim=1), teacher_probs, reduction="batchmean")


def sandwich_step(supernet: nn.Module, x: Tensor, y: Tensor, n: int, select: Callable[[int], object],
                  distill: bool, teacher_probs: Tensor | None = None) -> float:
    """Forward/backward configurations ``0..n-1`` (``select(i)`` switches the supernet to the
    i-th); with ``distill`` the first one's soft predictions teach the others (in-place
    distillation), or, when ``teacher_probs`` (an outside teacher's soft predictions for ``x``)
    are given, those teach every configuration. Mean loss."""
    total = 0.0
    teacher = teacher_probs if distill else None
    for i in range(n):
        select(i)
        out = supernet(x)
        if teacher is None:
            loss = F.cross_entropy(out, y)
            if i == 0 and distill:
                teacher = F.softmax(out.detach(), dim=1)
        else:
            loss = distill_loss(out, teacher)
        loss.backward()
        total += float(loss.detach())
    return total / max(1, n)


__all__ = ["distill_loss", "sandwich_policies", "sandwich_step"]
