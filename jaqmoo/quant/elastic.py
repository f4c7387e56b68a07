"""The elastic, bit-switchable supernet: one set of weights for every (architecture, bits) pair.

:class:`ElasticSupernet` is a :class:`~jaqmoo.quant.supernet.Supernet` over the largest
network of an :class:`~jaqmoo.models.elastic_mbv2.ElasticSpace` (MobileNetV2 or MobileNetV1,
:mod:`jaqmoo.models.elastic_mbv1`): every Conv2d/Linear is a
bit-switchable :class:`~jaqmoo.quant.layers.QuantConv2d` / ``QuantLinear`` with CSQ exactly
as in the fixed supernet, and a per-layer policy always covers all layers of the largest
network (the bits of layers that do not run are ignored). :meth:`ElasticSupernet.set_arch`
selects a sub-network:

- depth: blocks beyond a stage's depth are skipped (residual blocks in MobileNetV2, equal-shape
  blocks passed through as identity in MobileNetV1);
- expand: the hidden channels beyond ``round(in * ratio)`` are held at exactly zero after
  the expand and the depthwise layers, which equals running the prefix-sliced block;
  :func:`sort_hidden_channels` orders the hidden channels by importance (L1 norm of the
  projection weights that read them) so that each prefix is the best subset (MobileNetV2
  only: MobileNetV1's blocks have no expand choice);
- kernel: a depthwise layer's weight is parametrized (:class:`KernelTransform`): a smaller
  kernel is the centre of the largest one through a learnable ``k*k x k*k`` transform
  (identity at start, once-for-all's kernel transformation), zero-padded to the largest
  size, so the convolution equals the small kernel with its own padding.

Checkpoints record the space in the supernet identity (``config.extra.elastic``);
:func:`load_elastic_supernet` refuses a checkpoint of another space or a fixed one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from jaqmoo.errors import JaqmooError
from jaqmoo.models.elastic_mbv2 import InvertedResidual
from jaqmoo.models.elastic_space import (
    ArchSpec,
    ElasticSpace,
    build_largest,
    build_standalone,
    subnet_layers,
)
from jaqmoo.quant.policy import FLOAT_BITS, SUPPORTED_BITS, QuantPolicy, check_bits
from jaqmoo.quant.sampling import level_policies
from jaqmoo.quant.sandwich import sandwich_step
from jaqmoo.quant.supernet import Supernet, SupernetMeta, read_checkpoint


class KernelTransform(nn.Module):
    """Weight parametrization of a depthwise conv: the active kernel as a transformed centre."""

    def __init__(self, kmax: int, kernels: Sequence[int]) -> None:
        super().__init__()
        self.kmax = int(kmax)
        self.active = int(kmax)
        self.mats = nn.ParameterDict({str(k): nn.Parameter(torch.eye(k * k)) for k in kernels if k < kmax})

    def forward(self, weight: Tensor) -> Tensor:
        k = self.active
        if k >= self.kmax:
            return weight
        o = (self.kmax - k) // 2
        centre = weight[:, :, o : o + k, o : o + k].reshape(weight.shape[0], weight.shape[1], k * k)
        small = (centre @ self.mats[str(k)].t()).reshape(weight.shape[0], weight.shape[1], k, k)
        return F.pad(small, (o, o, o, o))


def _blocks(model: nn.Module) -> list[InvertedResidual]:
    """The blocks with hidden channels to rank (MobileNetV2's; a MobileNetV1 has none)."""
    return [m for m in model.features if isinstance(m, InvertedResidual)]


class ElasticSupernet(Supernet):
    """A :class:`Supernet` over the largest network of ``space`` with a selectable sub-network."""

    def __init__(self, model: nn.Module, meta: SupernetMeta, space: ElasticSpace) -> None:
        super().__init__(model, meta)
        self.space = space
        for block in model.elastic_blocks():
            conv = block.dw_conv
            parametrize.register_parametrization(conv, "weight", KernelTransform(conv.kernel_size[0], space.kernel))
        self.arch = space.largest()

    def set_arch(self, spec: ArchSpec) -> ArchSpec:
        """Run the sub-network ``spec`` from now on; returns its canonical form."""
        spec = self.space.check(spec)
        for block, shape in zip(self.model.elastic_blocks(), self.space.block_shapes(spec), strict=True):
            block.active = shape is not None
            if shape is not None:
                block.active_hidden = shape.hidden
                block.dw_conv.parametrizations.weight[0].active = shape.kernel
        self.arch = spec
        return spec

    def active_layer_names(self, spec: ArchSpec | None = None) -> tuple[str, ...]:
        """The supernet layers that run in ``spec`` (default: the current one), in order."""
        spec = self.arch if spec is None else spec
        m = self.meta
        return tuple(layer.name for layer in subnet_layers(self.space, spec, m.num_classes, m.in_channels, m.input_size))

    def subnet_policy(self, policy: QuantPolicy, spec: ArchSpec | None = None) -> QuantPolicy:
        """``policy`` (over the largest network) restricted to the layers that run in ``spec``."""
        return self.check_policy(policy).with_layers(self.active_layer_names(spec), strict=False)

    def state_for_checkpoint(self) -> dict:
        state = super().state_for_checkpoint()
        state["elastic"] = self.space.to_dict()
        return state


@torch.no_grad()
def sort_hidden_channels(supernet: ElasticSupernet) -> None:
    """Reorder every block's hidden channels by importance (descending L1 norm of the projection
    weights that read them), so the prefix a smaller expand ratio keeps is the most important one.

    Every tensor indexed by a hidden channel moves together (expand conv rows and their weight
    steps, BatchNorms, depthwise kernels, steps and transforms' inputs, projection columns), so
    the largest network computes the same function before and after; CSQ channel choices of
    the affected layers are cleared (the next sensitivity measurement picks them again).
    """
    for block in _blocks(supernet.model):
        seq = list(block.conv)
        if len(seq) < 4:  # no expand layer: the hidden channels are the block's inputs (not elastic, not movable)
            continue
        proj = seq[-2]
        order = proj.weight.abs().sum(dim=(0, 2, 3)).argsort(descending=True)
        for unit in seq[:-2]:
            conv, bn = unit[0], unit[1]
            if parametrize.is_parametrized(conv, "weight"):
                conv.parametrizations.weight.original.copy_(conv.parametrizations.weight.original[order])
            else:
                conv.weight.copy_(conv.weight[order])
            if conv.w_step.shape[1] == len(order):
                conv.w_step.copy_(conv.w_step[:, order])
            for name in ("weight", "bias", "running_mean", "running_var"):
                t = getattr(bn, name)
                t.copy_(t[order])
            conv.sensitive = torch.zeros(0, dtype=torch.long, device=conv.weight.device)
        proj.weight.copy_(proj.weight[:, order])
        proj.sensitive = torch.zeros(0, dtype=torch.long, device=proj.weight.device)


@torch.no_grad()
def export_subnet(supernet: ElasticSupernet, spec: ArchSpec) -> nn.Module:
    """The float weights of sub-network ``spec`` copied into a standalone network
    (:func:`~jaqmoo.models.elastic_mbv2.build_standalone`): hidden-channel prefixes, the
    transformed kernels cropped to their size, and the BatchNorm statistics."""
    m = supernet.meta
    spec = supernet.space.check(spec)
    net = build_standalone(supernet.space, spec, m.num_classes, m.in_channels, m.input_size)
    arch = supernet.arch
    supernet.set_arch(spec)
    try:
        src = dict(zip(supernet.layer_names, supernet.layers, strict=True))
        big = dict(supernet.model.named_modules())
        names = supernet.active_layer_names(spec)
        dst = [(n, mod) for n, mod in net.named_modules() if isinstance(mod, nn.Conv2d | nn.Linear)]
        for name, (_, new) in zip(names, dst, strict=True):
            old = src[name]
            w = old.weight
            k, c = new.weight.shape[0], new.weight.shape[1]
            if isinstance(new, nn.Conv2d):
                o = (w.shape[-1] - new.weight.shape[-1]) // 2
                w = w[:k, :c, o : w.shape[-1] - o, o : w.shape[-1] - o]
            new.weight.copy_(w[:k, :c])
            if new.bias is not None:
                new.bias.copy_(old.bias[:k])
        bn_src = [big[n] for n, mod in supernet.model.named_modules() if isinstance(mod, nn.BatchNorm2d)
                  and _bn_runs(n, names)]
        bn_dst = [mod for mod in net.modules() if isinstance(mod, nn.BatchNorm2d)]
        for old, new in zip(bn_src, bn_dst, strict=True):
            n = new.num_features
            for attr in ("weight", "bias", "running_mean", "running_var"):
                getattr(new, attr).copy_(getattr(old, attr)[:n])
    finally:
        supernet.set_arch(arch)
    return net


def _bn_runs(bn_name: str, active_layers: Sequence[str]) -> bool:
    """Whether the BatchNorm ``bn_name`` follows an active layer (``x.conv.0.1`` -> ``x.conv.0.0``,
    ``x.conv.3`` -> ``x.conv.2``)."""
    head, _, last = bn_name.rpartition(".")
    return f"{head}.{int(last) - 1}" in active_layers


def build_elastic_supernet(space: ElasticSpace, num_classes: int, in_channels: int, input_size: int,
                           dataset: str = "", bits: Sequence[int] = SUPPORTED_BITS, per_channel: bool = True,
                           csq_fraction: float = 0.0, fixed_first_last: int | None = None) -> ElasticSupernet:
    """An untrained :class:`ElasticSupernet` for ``space``."""
    bits = tuple(sorted({check_bits(int(b), "supernet bits") for b in bits}))
    if FLOAT_BITS in bits or not bits:
        raise JaqmooError(f"supernet bits must be a non-empty subset of {list(SUPPORTED_BITS)} (got {list(bits)})")
    net = build_largest(space, num_classes, in_channels, input_size)
    meta = SupernetMeta(space.model, dataset, num_classes, in_channels, input_size, float(space.width_mult), bits,
                        per_channel, float(csq_fraction), fixed_first_last)
    return ElasticSupernet(net, meta, space)


def elastic_of_payload(payload: dict) -> dict | None:
    """The architecture space a checkpoint records (None for a fixed-network checkpoint)."""
    config = payload.get("config")
    extra = config.get("extra") if isinstance(config, dict) else None
    found = extra.get("elastic") if isinstance(extra, dict) else None
    return found if found is not None else payload.get("elastic")


def load_elastic_supernet(path: str | Path, expect_space: ElasticSpace | None = None,
                          device: str | torch.device = "cpu") -> ElasticSupernet:
    """Rebuild an :class:`ElasticSupernet`; :class:`JaqmooError` for a fixed-network checkpoint
    or one trained for another architecture space than ``expect_space``."""
    payload = read_checkpoint(path)
    recorded = elastic_of_payload(payload)
    if recorded is None:
        raise JaqmooError(f"checkpoint {path} is a fixed-network supernet, not an elastic one; "
                          "train one with `jaqmoo supernet train --elastic`")
    space = ElasticSpace.from_dict(recorded, model=recorded.get("model", "mobilenet_v2"))
    if expect_space is not None and space != expect_space:
        want, have = expect_space.to_dict(), space.to_dict()
        diffs = [f"{k}: {have[k]!r} -> {want[k]!r}" for k in want if want[k] != have.get(k)]
        raise JaqmooError(f"checkpoint {path} was trained for another architecture space ({'; '.join(diffs)}); "
                          "retrain it for this model.elastic or point model.checkpoint to the matching file")
    meta = SupernetMeta.from_dict(payload["meta"], str(path))
    sn = build_elastic_supernet(space, meta.num_classes, meta.in_channels, meta.input_size, meta.dataset, meta.bits,
                                meta.per_channel, meta.csq_fraction, meta.fixed_first_last)
    state = payload["state_dict"]
    for name, layer in zip(sn.layer_names, sn.layers, strict=True):
        saved = state.get(f"{name}.sensitive")
        if isinstance(saved, Tensor) and saved.dim() == 1:
            layer.sensitive = torch.zeros(saved.numel(), dtype=torch.long)
    try:
        sn.model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise JaqmooError(f"checkpoint {path}: its weights do not fit the elastic space {space.to_dict()}; "
                          f"it is damaged or from another jaqmoo version: {str(exc).splitlines()[0]}") from exc
    return sn.to(device)


def sandwich_pairs(supernet: ElasticSupernet, rng: np.random.Generator, n_random: int) -> list[tuple[ArchSpec, QuantPolicy]]:
    """The sandwich rule over (architecture, bits): largest at max bits first (the teacher),
    smallest at min bits, then ``n_random`` random architectures with per-layer bits drawn as the
    search draws them (level + noise, :func:`~jaqmoo.quant.sampling.level_policies`)."""
    space = supernet.space
    pairs = [(space.largest(), supernet.uniform_policy(max(supernet.bits))),
             (space.smallest(), supernet.uniform_policy(min(supernet.bits)))]
    archs = [space.sample(rng) for _ in range(n_random)]
    pairs += list(zip(archs, level_policies(supernet, n_random, rng, supernet.bits), strict=True))
    return pairs


def elastic_train_step(supernet: ElasticSupernet, x: Tensor, y: Tensor,
                       pairs: list[tuple[ArchSpec, QuantPolicy]], distill: bool,
                       teacher_probs: Tensor | None = None) -> float:
    """Forward/backward every (architecture, bits) pair, in-place distillation from the first (or
    from ``teacher_probs``, an outside teacher's soft predictions, when given); the largest
    architecture is selected again afterwards."""
    def select(i: int) -> None:
        supernet.set_arch(pairs[i][0])
        supernet.set_policy(pairs[i][1])

    try:
        return sandwich_step(supernet, x, y, len(pairs), select, distill, teacher_probs)
    finally:
        supernet.set_arch(supernet.space.largest())


def evaluate_pair(supernet: ElasticSupernet, spec: ArchSpec, policy: QuantPolicy, calib: Sequence[Tensor],
                  images: Tensor, labels: Tensor) -> float:
    """Accuracy of ``(spec, policy)`` after BN recalibration for that pair; the supernet's own
    BN statistics and selected sub-network are restored afterwards."""
    bns = [m for m in supernet.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in bns]
    arch, pol = supernet.arch, supernet.policy()
    try:
        supernet.set_arch(spec)
        supernet.set_policy(policy)
        supernet.recalibrate_bn(calib)
        return supernet.accuracy(images, labels)
    finally:
        with torch.no_grad():
            for m, (mean, var, n) in zip(bns, saved, strict=True):
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(n)
        supernet.set_arch(arch)
        supernet.set_policy(pol)


__all__ = ["ElasticSupernet", "KernelTransform", "build_elastic_supernet", "elastic_of_payload", "elastic_train_step",
           "export_subnet",
           "evaluate_pair", "load_elastic_supernet", "sandwich_pairs", "sort_hidden_channels"]
