"""One sandwich-rule training step: several configurations of a supernet, gradients accumulated.

The step itself knows nothing about what a configuration is: ``select(i)`` switches the
supernet to the i-th (a bit policy for a fixed supernet, an (architecture, bits) pair for an
elastic one). With in-place distillation the first configuration (the largest) learns from the
labels and teaches the others with its detached soft predictions. This module sits below
:mod:`jaqmoo.quant.elastic` and :mod:`jaqmoo.quant.train`, which both use it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn


def distill_loss(student: Tensor, teacher_probs: Tensor) -> Tensor:
    """KL divergence of the student from the (detached) teacher distribution."""
    return F.kl_div(F.log_softmax(student, dim=1), teacher_probs, reduction="batchmean")


def sandwich_step(supernet: nn.Module, x: Tensor, y: Tensor, n: int, select: Callable[[int], object],
                  distill: bool) -> float:
    """Forward/backward configurations ``0..n-1`` (``select(i)`` switches the supernet to the
    i-th); with ``distill`` the first one's soft predictions teach the others. Mean loss."""
    total = 0.0
    teacher = None
    for i in range(n):
        select(i)
        out = supernet(x)
        if i == 0 or not distill or teacher is None:
            loss = F.cross_entropy(out, y)
            if i == 0:
                teacher = F.softmax(out.detach(), dim=1)
        else:
            loss = distill_loss(out, teacher)
        loss.backward()
        total += float(loss.detach())
    return total / max(1, n)


__all__ = ["distill_loss", "sandwich_step"]
