"""Elastic MobileNetV1: the MobileNetV1 family of :class:`~jaqmoo.models.elastic_space.ElasticSpace`.

MobileNetV1's 13 depthwise-separable blocks (a depthwise 3x3 and a pointwise 1x1, each with
BatchNorm and ReLU) are grouped into stages the way MobileNetV2's are: a stage starts at a
block that changes the stride or the width, and the blocks after it in the stage have equal
input and output shapes::

    stage   channels  blocks  stride
      0        64       1       1
      1       128       2       2
      2       256       2       2
      3       512       6       2     (the 512-channel stride-2 block + the run of five)
      4      1024       2       2

- ``depth``: a stage runs its first ``min(d, n)`` blocks. The first block of a stage always
  runs (it changes the shape); a dropped block is an equal-shape block, so skipping it passes
  the activation through unchanged (identity), as skipping a residual block does in
  MobileNetV2. So depth is elastic in the 2-block stages (1 or 2) and in the 512-channel stage
  (1..6); the largest network (depth >= 6) is the fixed MobileNetV1.
- ``kernel``: the depthwise kernel of every block (3/5/7; smaller kernels are transformed
  centres of the largest, exactly as for MobileNetV2, :mod:`jaqmoo.quant.elastic`).
- ``expand``: none. A depthwise-separable block is an inverted-residual block without the
  expand layer (ratio 1), so the space's expand choice is fixed at ``(1,)`` and the front's
  ``expand_b<j>`` columns read 1 (0: the block does not run). A per-block width choice
  (pointwise outputs as an importance-ranked prefix) is not built: with identity skips, every
  block of a stage reads the same channel order, so one ranking would have to span the
  stage, and a fractional width does not fit the integer ``expand`` gene.

The network keeps :class:`~jaqmoo.models.mobilenet_v1.MobileNetV1`'s module names
(``features.<k>`` flat: stem ``features.0``, block ``b``'s depthwise ``features.<2b+1>`` and
pointwise ``features.<2b+2>``; ``pool``; ``classifier``), so the largest sub-network's layers,
workload and cost are the fixed network's.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from jaqmoo.models.elastic_space import (
    FAMILIES,
    SMALL_INPUT_BELOW,
    BlockShape,
    ElasticFamily,
    ElasticSpace,
    conv_layer,
)
from jaqmoo.models.mobilenet_v1 import V1_BLOCKS, conv_bn, v1_channels
from jaqmoo.workload import Layer


def v1_stages(blocks: Sequence[tuple[int, int]] = V1_BLOCKS, stem: int = 32) -> tuple[tuple[int, int, int, int], ...]:
    """MobileNetV1's blocks as a stage table ``(1, channels, blocks, stride)``: a new stage at every
    block that changes the stride or the channels."""
    stages: list[list[int]] = []
    prev = stem
    for c, stride in blocks:
        if stages and stride == 1 and c == prev:
            stages[-1][2] += 1
        else:
            stages.append([1, c, 1, stride])
        prev = c
    return tuple(tuple(s) for s in stages)


class SeparableBlock:
    """Handle on block ``index`` of a :class:`MobileNetV1Net`: its units are the flat modules
    ``features[2 * index + 1]`` (depthwise) and ``features[2 * index + 2]`` (pointwise).
    Plain Python (not a module), so the weights stay registered under the fixed names only."""

    def __init__(self, features: nn.Sequential, index: int) -> None:
        self.features = features
        self.index = index
        self.active = True
        self.active_hidden = 0  # no hidden-channel choice in MobileNetV1 (kept for the common interface)

    @property
    def dw_conv(self) -> nn.Module:
        return self.features[2 * self.index + 1][0]

    def __call__(self, x: Tensor) -> Tensor:
        return self.features[2 * self.index + 2](self.features[2 * self.index + 1](x))


class MobileNetV1Net(nn.Module):
    """A MobileNetV1 with given blocks (the fixed MobileNetV1's module names and units)."""

    def __init__(self, space: ElasticSpace, blocks: Sequence[BlockShape], num_classes: int, in_channels: int,
                 input_size: int) -> None:
        super().__init__()
        stem_stride = 1 if input_size < SMALL_INPUT_BELOW else 2
        layers: list[nn.Module] = [conv_bn(in_channels, space.stem_channels(), 3, stem_stride)]
        for b in blocks:
            layers.append(conv_bn(b.hidden, b.hidden, b.kernel, b.stride, groups=b.hidden))  # depthwise
            layers.append(conv_bn(b.hidden, b.oup, 1, 1))  # pointwise
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(space.last_input_channels(), num_classes)
        self._blocks = [SeparableBlock(self.features, i) for i in range(len(blocks))]

    def elastic_blocks(self) -> list[SeparableBlock]:
        """The blocks, in order (each has ``active`` and ``dw_conv``)."""
        return list(self._blocks)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features[0](x)
        for block in self._blocks:
            if block.active:  # a dropped block has equal input and output shapes: identity
                x = block(x)
        return self.classifier(self.pool(x).flatten(1))


class MobileNetV1Family(ElasticFamily):
    """MobileNetV1 (:mod:`jaqmoo.models.mobilenet_v1`) as an elastic family (see the module doc)."""

    name = "mobilenet_v1"
    settings = v1_stages()
    defaults = {"depth": (1, 2, 4, 6), "expand": (1,), "kernel": (3, 5, 7)}

    def channels(self, c: float, width_mult: float) -> int:
        return v1_channels(c, width_mult)

    def build(self, space: ElasticSpace, blocks: Sequence[BlockShape], num_classes: int, in_channels: int,
              input_size: int) -> nn.Module:
        return MobileNetV1Net(space, blocks, num_classes, in_channels, input_size)

    def block_layers(self, b: int, shape: BlockShape, size: int, batch: int) -> list[Layer]:
        dw = conv_layer(f"features.{2 * b + 1}.0", shape.hidden, shape.hidden, shape.kernel, shape.stride,
                        shape.hidden, size, batch)
        return [dw, conv_layer(f"features.{2 * b + 2}.0", shape.hidden, shape.oup, 1, 1, 1, dw.P, batch)]

    def head_layers(self, space: ElasticSpace, size: int, num_classes: int, batch: int) -> list[Layer]:
        return [Layer("classifier", "linear", N=batch, K=num_classes, C=space.last_input_channels())]


#: the MobileNetV1 family
MBV1 = MobileNetV1Family()
FAMILIES.register(MBV1.name, MBV1)

__all__ = ["MBV1", "MobileNetV1Family", "MobileNetV1Net", "SeparableBlock", "v1_stages"]
