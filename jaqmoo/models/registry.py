"""The model registry: :data:`MODELS` (name -> builder) and :func:`build_model`, :func:`model_workload`.

Builders register themselves where they are defined (:mod:`jaqmoo.models.zoo`); a reference
such as ``torchvision:<name>`` or ``module:callable`` plugs in here, in :func:`build_model`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from jaqmoo.errors import JaqmooError
from jaqmoo.registry import Registry
from jaqmoo.workload import Workload, extract_workload

#: below this input size the small-input variant of a model is built (stem stride 1)
SMALL_INPUT_BELOW = 96

#: ``(num_classes, in_channels, small, width_mult) -> nn.Module``
Builder = Callable[[int, int, bool, float], nn.Module]

#: every model :func:`build_model` can build, by name
MODELS: Registry[Builder] = Registry("model")


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
    builder = MODELS.lookup(name)
    if input_size < 4:
        raise JaqmooError(f"input_size {input_size} is too small (need >= 4 pixels)")
    if width_mult <= 0:
        raise JaqmooError(f"width_mult must be > 0 (got {width_mult})")
    return builder(num_classes, in_channels, input_size < SMALL_INPUT_BELOW, width_mult)


def model_workload(model_name: str, input_shape: tuple[int, int, int], num_classes: int = 1000,
                   width_mult: float = 1.0) -> Workload:
    """Build a registry model for ``input_shape`` and extract its workload."""
    c, h, _ = input_shape
    model = build_model(model_name, num_classes=num_classes, in_channels=c, input_size=h, width_mult=width_mult)
    return extract_workload(model, input_shape, name=model_name)


__all__ = ["MODELS", "SMALL_INPUT_BELOW", "Builder", "build_model", "model_workload"]
