"""The built-in models, each registered in :data:`~jaqmoo.models.registry.MODELS` where it is defined.

torchvision models are used as they are, their stem adapted to the input channels and to small
images (:func:`jaqmoo.models.adapt.adapt_input`: stem stride 1; ResNet's 7x7 stem and max-pool
become a 3x3 stride-1 stem), as ``torchvision:<name>`` references are.

Adding a model: one function here (or in its own module imported by :mod:`jaqmoo.models`)
``(num_classes, in_channels, small, width_mult) -> nn.Module`` under ``@MODELS.register(name)``.
"""

from __future__ import annotations

import torchvision
from torch import nn

from jaqmoo.errors import JaqmooError
from jaqmoo.models.adapt import adapt_input
from jaqmoo.models.mobilenet_v1 import MobileNetV1
from jaqmoo.models.registry import MODELS
from jaqmoo.models.simple_cnn import SimpleCNN


@MODELS.register("mobilenet_v1")
def _mobilenet_v1(num_classes: int, in_channels: int, small: bool, width_mult: float) -> nn.Module:
    return MobileNetV1(num_classes, in_channels, width_mult, stem_stride=1 if small else 2)


@MODELS.register("simple_cnn")
def _simple_cnn(num_classes: int, in_channels: int, small: bool, width_mult: float) -> nn.Module:
    return SimpleCNN(num_classes, in_channels, width_mult)


@MODELS.register("mobilenet_v2")
def _mobilenet_v2(num_classes: int, in_channels: int, small: bool, width_mult: float) -> nn.Module:
    return adapt_input(torchvision.models.mobilenet_v2(weights=None, num_classes=num_classes, width_mult=width_mult),
                         in_channels, small)


@MODELS.register("mobilenet_v3_small")
def _mobilenet_v3_small(num_classes: int, in_channels: int, small: bool, width_mult: float) -> nn.Module:
    return adapt_input(torchvision.models.mobilenet_v3_small(weights=None, num_classes=num_classes,
                                                               width_mult=width_mult), in_channels, small)


@MODELS.register("resnet18")
def _resnet18(num_classes: int, in_channels: int, small: bool, width_mult: float) -> nn.Module:
    if width_mult != 1.0:
        raise JaqmooError("resnet18: width_mult is not supported (use 1.0)")
    return adapt_input(torchvision.models.resnet18(weights=None, num_classes=num_classes), in_channels, small)
