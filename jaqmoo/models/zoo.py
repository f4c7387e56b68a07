"""The built-in models, each registered in :data:`~jaqmoo.models.registry.MODELS` where it is defined.

torchvision models are used as they are; for small images (``input_size`` below 96,
e.g. 28x28 Fashion-MNIST or 32x32 CIFAR) the early downsampling is reduced the usual
CIFAR way (stem stride 1; ResNet's 7x7 stem and max-pool become a 3x3 stride-1 stem) by
replacing modules after construction, never by editing the models' source. A model whose
first convolution does not match ``in_channels`` gets that convolution rebuilt.

Adding a model: one function here (or in its own module imported by :mod:`jaqmoo.models`)
``(num_classes, in_channels, small, width_mult) -> nn.Module`` under ``@MODELS.register(name)``.
"""

from __future__ import annotations

import torchvision
from torch import nn

from jaqmoo.errors import JaqmooError
from jaqmoo.models.mobilenet_v1 import MobileNetV1
from jaqmoo.models.registry import MODELS
from jaqmoo.models.simple_cnn import SimpleCNN


def _replace_conv(conv: nn.Conv2d, in_channels: int | None = None, stride: int | None = None,
                  kernel: int | None = None) -> nn.Conv2d:
    """A new Conv2d like ``conv`` with some hyper-parameters changed (fresh weights)."""
    k = kernel if kernel is not None else conv.kernel_size[0]
    return nn.Conv2d(
        in_channels if in_channels is not None else conv.in_channels,
        conv.out_channels,
        k,
        stride if stride is not None else conv.stride,
        k // 2 if kernel is not None else conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
    )


@MODELS.register("mobilenet_v1")
def _mobilenet_v1(num_classes: int, in_channels: int, small: bool, width_mult: float) -> nn.Module:
    return MobileNetV1(num_classes, in_channels, width_mult, stem_stride=1 if small else 2)


@MODELS.register("simple_cnn")
def _simple_cnn(num_classes: int, in_channels: int, small: bool, width_mult: float) -> nn.Module:
    return SimpleCNN(num_classes, in_channels, width_mult)


def _adapted_stem(model: nn.Module, in_channels: int, small: bool) -> nn.Module:
    """A torchvision MobileNet with its stem conv taking ``in_channels`` (stride 1 for small inputs)."""
    stem = model.features[0][0]
    if small or in_channels != stem.in_channels:
        model.features[0][0] = _replace_conv(stem, in_channels, stride=1 if small else None)
    return model


@MODELS.register("mobilenet_v2")
def _mobilenet_v2(num_classes: int, in_channels: int, small: bool, width_mult: float) -> nn.Module:
    return _adapted_stem(torchvision.models.mobilenet_v2(weights=None, num_classes=num_classes, width_mult=width_mult),
                         in_channels, small)


@MODELS.register("mobilenet_v3_small")
def _mobilenet_v3_small(num_classes: int, in_channels: int, small: bool, width_mult: float) -> nn.Module:
    return _adapted_stem(torchvision.models.mobilenet_v3_small(weights=None, num_classes=num_classes,
                                                               width_mult=width_mult), in_channels, small)


@MODELS.register("resnet18")
def _resnet18(num_classes: int, in_channels: int, small: bool, width_mult: float) -> nn.Module:
    if width_mult != 1.0:
        raise JaqmooError("resnet18: width_mult is not supported (use 1.0)")
    model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    if small:
        model.conv1 = _replace_conv(model.conv1, in_channels, stride=1, kernel=3)
        model.maxpool = nn.Identity()
    elif in_channels != model.conv1.in_channels:
        model.conv1 = _replace_conv(model.conv1, in_channels)
    return model
