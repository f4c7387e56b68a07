"""Model registry: ``build_model(name, ...)`` for every CNN jaqmoo supports.

torchvision models are used as they are; for small images (``input_size`` below 96,
e.g. 28x28 Fashion-MNIST or 32x32 CIFAR) the early downsampling is reduced the usual
CIFAR way (stem stride 1; ResNet's 7x7 stem and max-pool become a 3x3 stride-1 stem) by
replacing modules after construction, never by editing the models' source. A model whose
first convolution does not match ``in_channels`` gets that convolution rebuilt.
"""

from __future__ import annotations

from collections.abc import Callable

import torchvision
from torch import nn

from jaqmoo.errors import JaqmooError
from jaqmoo.models.mobilenet_v1 import MobileNetV1
from jaqmoo.models.simple_cnn import SimpleCNN

SMALL_INPUT_BELOW = 96


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


def _mobilenet_v1(num_classes: int, in_channels: int, small: bool, width_mult: float) -> nn.Module:
    return MobileNetV1(num_classes, in_channels, width_mult, stem_stride=1 if small else 2)


def _simple_cnn(num_classes: int, in_channels: int, small: bool, width_mult: float) -> nn.Module:
    return SimpleCNN(num_classes, in_channels, width_mult)


def _mobilenet_v2(num_classes: int, in_channels: int, small: bool, width_mult: float) -> nn.Module:
    model = torchvision.models.mobilenet_v2(weights=None, num_classes=num_classes, width_mult=width_mult)
    stem = model.features[0][0]
    if small or in_channels != stem.in_channels:
        model.features[0][0] = _replace_conv(stem, in_channels, stride=1 if small else None)
    return model


def _mobilenet_v3_small(num_classes: int, in_channels: int, small: bool, width_mult: float) -> nn.Module:
    model = torchvision.models.mobilenet_v3_small(weights=None, num_classes=num_classes, width_mult=width_mult)
    stem = model.features[0][0]
    if small or in_channels != stem.in_channels:
        model.features[0][0] = _replace_conv(stem, in_channels, stride=1 if small else None)
    return model


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


Builder = Callable[[int, int, bool, float], nn.Module]

MODELS: dict[str, Builder] = {
    "mobilenet_v1": _mobilenet_v1,
    "mobilenet_v2": _mobilenet_v2,
    "resnet18": _resnet18,
    "mobilenet_v3_small": _mobilenet_v3_small,
    "simple_cnn": _simple_cnn,
}


def build_model(
    name: str,
    num_classes: int = 1000,
    in_channels: int = 3,
    input_size: int = 224,
    width_mult: float = 1.0,
) -> nn.Module:
    """Build a supported CNN with fresh (untrained) weights.

    Args:
        name: one of :data:`MODELS` (``mobilenet_v1``, ``mobilenet_v2``, ``resnet18``,
            ``mobilenet_v3_small``, ``simple_cnn``).
        num_classes: classifier outputs.
        in_channels: image channels (1 for Fashion-MNIST / digits, 3 for RGB).
        input_size: image height/width; below 96 the small-input variant is built.
        width_mult: channel width multiplier (MobileNets and ``simple_cnn``).
    """
    if name not in MODELS:
        raise JaqmooError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    if input_size < 4:
        raise JaqmooError(f"input_size {input_size} is too small (need >= 4 pixels)")
    if width_mult <= 0:
        raise JaqmooError(f"width_mult must be > 0 (got {width_mult})")
    return MODELS[name](num_classes, in_channels, input_size < SMALL_INPUT_BELOW, width_mult)


__all__ = ["MODELS", "MobileNetV1", "SimpleCNN", "build_model"]
