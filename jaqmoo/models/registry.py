"""The model registry: :data:`MODELS` (name -> builder) and :func:`build_model`, :func:`model_workload`.

Builders register themselves where they are defined (:mod:`jaqmoo.models.zoo`); a reference
``torchvision:<name>`` or ``package.module:callable`` (:mod:`jaqmoo.models.references`) is built
by :func:`build_model` too, and :func:`check_model_name` validates either kind of name.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from jaqmoo.errors import JaqmooError
from jaqmoo.models.references import build_reference, check_reference, is_reference
from jaqmoo.registry import Registry
from jaqmoo.workload import Workload, extract_workload

#: below this input size the small-input variant of a model is built (stem stride 1)
SMALL_INPUT_BELOW = 96

#: ``(num_classes, in_channels, small, width_mult) -> nn.Module``
Builder = Callable[[int, int, bool, float], nn.Module]

#: every model :func:`build_model` can build, by name
MODELS: Registry[Builder] = Registry(
    "model", hint=", or a reference: torchvision:<name> (e.g. torchvision:resnet50) or package.module:callable")


def check_model_name(name: str) -> str:
    """``name`` if it is a registered model or a well-formed reference; a JaqmooError otherwise."""
    if is_reference(name):
        return check_reference(name)
    return MODELS.canonical(name) or MODELS.lookup(name)  # lookup raises, naming the choices


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
            ``mobilenet_v3_small``, ``simple_cnn``), ``torchvision:<name>`` or a user's builder
            ``package.module:callable`` (:mod:`jaqmoo.models.references`: the arguments it is
            called with).
        num_classes: classifier outputs.
        in_channels: image channels (1 for Fashion-MNIST / digits, 3 for RGB).
        input_size: image height/width; below 96 the small-input variant is built.
        width_mult: channel width multiplier (MobileNets and ``simple_cnn``).
    """
    builder = None if is_reference(name) else MODELS.lookup(name)
    if input_size < 4:
        raise JaqmooError(f"input_size {input_size} is too small (need >= 4 pixels)")
    if width_mult <= 0:
        raise JaqmooError(f"width_mult must be > 0 (got {width_mult})")
    small = input_size < SMALL_INPUT_BELOW
    if builder is None:
        return build_reference(name, num_classes, in_channels, input_size, small, width_mult)
    return builder(num_classes, in_channels, small, width_mult)


def model_workload(model_name: str, input_shape: tuple[int, int, int], num_classes: int = 1000,
                   width_mult: float = 1.0) -> Workload:
    """Build a registry model (or reference) for ``input_shape`` and extract its workload.

    The model is built and run on torch's ``meta`` device (shapes only: no weight initialisation,
    no arithmetic; ResNet-50 in about 1 s instead of 5); a model that cannot run there is built and
    run on the CPU instead, with the same result."""
    import torch

    c, h, _ = input_shape

    def extract(device: str) -> Workload:
        with torch.device(device):
            model = build_model(model_name, num_classes=num_classes, in_channels=c, input_size=h,
                                width_mult=width_mult)
        return extract_workload(model, input_shape, name=model_name, num_classes=num_classes)

    try:
        return extract("meta")
    except Exception as exc:
        if isinstance(exc, JaqmooError) and exc.__cause__ is None:
            raise  # a refusal (attention, unused layers...): the same on the CPU
        return extract("cpu")  # whatever the meta pass failed on, the CPU pass reports (or succeeds)


__all__ = ["MODELS", "SMALL_INPUT_BELOW", "Builder", "build_model", "check_model_name", "model_workload"]
