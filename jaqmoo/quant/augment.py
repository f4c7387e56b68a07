"""Cheap, seeded, batched data augmentation for supernet training (random crop and flip).

``crop-flip``: every image is padded by ``pad`` pixels with the batch's background value (its
minimum, the normalised black of Fashion-MNIST / MNIST-like images) and cropped back to its size
at a random offset, then mirrored left-right with probability 1/2. The whole batch is done in
three tensor operations (no Python loop over images); the offsets and flips come from the
training's own generator, so a seeded run draws the same augmentation every time and on resume.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from jaqmoo.errors import JaqmooError

#: the augmentations ``TrainConfig.augment`` accepts
AUGMENTATIONS = ("none", "crop-flip", "crop")


def check_augment(name: str) -> str:
    """``name`` if it is one of :data:`AUGMENTATIONS`; :class:`JaqmooError` otherwise."""
    if name not in AUGMENTATIONS:
        raise JaqmooError(f"augment {name!r}: use one of {', '.join(AUGMENTATIONS)}")
    return name


def random_crop_flip(x: Tensor, generator: torch.Generator, pad: int = 2, flip: bool = True) -> Tensor:
    """``x`` ``[N, C, H, W]`` randomly shifted by up to ``pad`` pixels (padded with the batch minimum)
    and, when ``flip``, mirrored left-right with probability 1/2; draws from ``generator`` (CPU)."""
    n, _, h, w = x.shape
    shifts = torch.randint(0, 2 * pad + 1, (2, n), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5 if flip else None
    padded = F.pad(x, (pad, pad, pad, pad), value=float(x.min()))
    rows = (shifts[0].view(n, 1) + torch.arange(h)).to(x.device)
    cols = (shifts[1].view(n, 1) + torch.arange(w)).to(x.device)
    if flips is not None:
        cols = torch.where(flips.to(x.device).view(n, 1), cols.flip(1), cols)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    out = padded.permute(0, 2, 3, 1)[batch, rows.view(n, h, 1), cols.view(n, 1, w)]  # [N, H, W, C]
    return out.permute(0, 3, 1, 2).contiguous()


def augment_batch(x: Tensor, name: str, generator: torch.Generator) -> Tensor:
    """The augmentation ``name`` (:data:`AUGMENTATIONS`) applied to the batch ``x``."""
    if name == "none":
        return x
    return random_crop_flip(x, generator, flip=(name == "crop-flip"))


__all__ = ["AUGMENTATIONS", "augment_batch", "check_augment", "random_crop_flip"]
