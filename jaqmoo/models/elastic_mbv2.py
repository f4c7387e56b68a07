"""Elastic MobileNetV2: the MobileNetV2 family of :class:`~jaqmoo.models.elastic_space.ElasticSpace`.

Over torchvision's MobileNetV2 (same stages, strides and channel rounding, same module names,
so the largest sub-network of a space whose largest choices are torchvision's -- expand 6,
kernel 3, full depth -- *is* the fixed network): inverted-residual blocks whose hidden
channels may be limited to a prefix (the expand choice) and whose depthwise kernel is elastic.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from jaqmoo.models import elastic_space
from jaqmoo.models.elastic_space import (
    FAMILIES,
    SMALL_INPUT_BELOW,
    BlockShape,
    ElasticFamily,
    ElasticSpace,
    conv_layer,
    make_divisible,
)
from jaqmoo.workload import Layer

#: torchvision MobileNetV2 inverted-residual settings: expand t, channels c, blocks n, stride s
MBV2_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)
class MobileNetV2Family(ElasticFamily):
    """torchvision's MobileNetV2: inverted-residual blocks, ``features.<i>.conv.<j>`` names."""

    name = "mobilenet_v2"
    settings = MBV2_SETTINGS
    defaults = {"depth": (2, 3, 4), "expand": (3, 4, 6), "kernel": (3, 5, 7)}

    def channels(self, c: float, width_mult: float) -> int:
        return make_divisible(c * width_mult)

    def build(self, space: ElasticSpace, blocks: Sequence[BlockShape], num_classes: int, in_channels: int,
              input_size: int) -> nn.Module:
        return MobileNetV2Net(space, blocks, num_classes, in_channels, input_size)

    def block_layers(self, b: int, shape: BlockShape, size: int, batch: int) -> list[Layer]:
        pre = f"features.{b + 1}.conv"
        layers, j = [], 0
        if shape.has_expand:
            layers.append(conv_layer(f"{pre}.0.0", shape.inp, shape.hidden, 1, 1, 1, size, batch))
            j = 1
        dw = conv_layer(f"{pre}.{j}.0", shape.hidden, shape.hidden, shape.kernel, shape.stride, shape.hidden, size, batch)
        return [*layers, dw, conv_layer(f"{pre}.{j + 1}", shape.hidden, shape.oup, 1, 1, 1, dw.P, batch)]

    def head_layers(self, space: ElasticSpace, size: int, num_classes: int, batch: int) -> list[Layer]:
        last = f"features.{space.n_blocks + 1}.0"
        return [conv_layer(last, space.last_input_channels(), space.last_channels(), 1, 1, 1, size, batch),
                Layer("classifier.1", "linear", N=batch, K=num_classes, C=space.last_channels())]


#: the MobileNetV2 family
MBV2 = MobileNetV2Family()


def conv_bn_act(inp: int, oup: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv (no bias) + BatchNorm + ReLU6, padding ``(kernel - 1) // 2`` (torchvision's layout)."""
    return nn.Sequential(nn.Conv2d(inp, oup, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(oup), nn.ReLU6(inplace=False))


class InvertedResidual(nn.Module):
    """MobileNetV2 block whose hidden channels may be limited to a prefix (``active_hidden``)."""

    def __init__(self, shape: BlockShape) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if shape.has_expand:
            layers.append(conv_bn_act(shape.inp, shape.hidden, 1))
        layers.append(conv_bn_act(shape.hidden, shape.hidden, shape.kernel, shape.stride, groups=shape.hidden))
        layers += [nn.Conv2d(shape.hidden, shape.oup, 1, bias=False), nn.BatchNorm2d(shape.oup)]
        self.conv = nn.Sequential(*layers)
        self.use_res = shape.stride == 1 and shape.inp == shape.oup
        self.hidden = shape.hidden
        self.active_hidden = shape.hidden
        self.active = True

    @property
    def dw_conv(self) -> nn.Module:
        """The depthwise convolution (its kernel is the elastic one)."""
        return self.conv[len(self.conv) - 3][0]

    def forward(self, x: Tensor) -> Tensor:
        h = x
        mask = None
        if self.active_hidden < self.hidden:
            mask = (h.new_ones(self.hidden).cumsum(0) <= self.active_hidden).to(h.dtype).view(1, -1, 1, 1)
        for m in list(self.conv)[:-2]:
            h = m(h)
            if mask is not None:  # hidden channels beyond the prefix stay exactly zero
                h = h * mask
        h = self.conv[-1](self.conv[-2](h))
        return x + h if self.use_res else h


class MobileNetV2Net(nn.Module):
    """A MobileNetV2 with given blocks (torchvision's module names: features.i, classifier.1)."""

    def __init__(self, space: ElasticSpace, blocks: Sequence[BlockShape], num_classes: int, in_channels: int,
                 input_size: int) -> None:
        super().__init__()
        stem_stride = 1 if input_size < SMALL_INPUT_BELOW else 2
        feats: list[nn.Module] = [conv_bn_act(in_channels, space.stem_channels(), 3, stem_stride)]
        feats += [InvertedResidual(b) for b in blocks]
        feats.append(conv_bn_act(space.last_input_channels(), space.last_channels(), 1))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(space.last_channels(), num_classes))
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def elastic_blocks(self) -> list[InvertedResidual]:
        """The blocks, in order (each has ``active``, ``active_hidden`` and ``dw_conv``)."""
        return [m for m in self.features if isinstance(m, InvertedResidual)]

    def forward(self, x: Tensor) -> Tensor:
        for m in self.features:
            if isinstance(m, InvertedResidual) and not m.active:
                continue
            x = m(x)
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


FAMILIES.register(MBV2.name, MBV2)

#: names that lived here before the elastic space moved to :mod:`jaqmoo.models.elastic_space`
MOVED_TO_ELASTIC_SPACE = ("ArchSpec", "BlockShape", "ElasticFamily", "ElasticSpace", "ELASTIC_MODELS", "arch_columns",
                          "arch_stats", "build_largest", "build_standalone", "conv_layer", "family", "make_divisible",
                          "space_of_model", "subnet_layers", "subnet_workload")


def __getattr__(name: str) -> object:
    """Deprecated: the elastic space's names, importable from here with a DeprecationWarning."""
    if name not in MOVED_TO_ELASTIC_SPACE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    new = "tuple(FAMILIES)" if name == "ELASTIC_MODELS" else name
    warnings.warn(f"jaqmoo.models.elastic_mbv2.{name} moved to jaqmoo.models.elastic_space ({new})",
                  DeprecationWarning, stacklevel=2)
    return tuple(elastic_space.FAMILIES) if name == "ELASTIC_MODELS" else getattr(elastic_space, name)


__all__ = ["MBV2", "MBV2_SETTINGS", "InvertedResidual", "MobileNetV2Family", "MobileNetV2Net", "conv_bn_act"]
