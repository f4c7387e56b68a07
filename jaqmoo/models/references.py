"""Models by reference: ``torchvision:<name>`` and a user's builder ``package.module:callable``.

``torchvision:<name>``
    any classification model of ``torchvision.models.list_models(module=torchvision.models)``
    (``torchvision:resnet50``, ``torchvision:efficientnet_b0``, ``torchvision:regnet_x_400mf``...),
    built with fresh weights and ``num_classes``; its stem adapted to ``in_channels`` and to small
    inputs as :mod:`jaqmoo.models.adapt` describes. ``width_mult`` is passed on to the builders that
    take one (MobileNetV2/V3); ``inception_v3`` and ``googlenet`` are built without their auxiliary
    heads (which only run in training). Models jaqmoo cannot cost (ViT, Swin, MaxViT attention;
    ConvNeXt's channels-last Linear layers) are refused when their workload is extracted.

``package.module:callable``
    a user's builder, imported with :func:`importlib.import_module` (the module must be importable:
    on ``sys.path`` or ``PYTHONPATH``) and called with the keyword arguments it declares among

    * ``num_classes`` (int): classifier outputs (the dataset's classes);
    * ``in_channels`` (int): image channels (1 for Fashion-MNIST / digits, 3 for RGB);
    * ``input_size`` (int): image height = width in pixels;
    * ``width_mult`` (float): the spec's ``model.width_mult`` (1.0 unless set);

    (a ``**kwargs`` builder gets all four). It must return an ``nn.Module`` mapping
    ``(batch, in_channels, input_size, input_size)`` images to ``(batch, num_classes)`` logits, built
    of Conv2d/Linear layers plus anything the cost model leaves out (element-wise operations,
    pooling, activations, normalisation). Importing the module runs its code, as a Python import
    does: name only modules you trust (a run folder's ``spec.yaml`` names it too, and ``jaqmoo
    report`` imports it again to rebuild the network).
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any

from torch import nn

from jaqmoo.errors import JaqmooError, did_you_mean
from jaqmoo.models.adapt import adapt_input

TORCHVISION_PREFIX = "torchvision:"
#: the keyword arguments a user's builder may declare
BUILDER_ARGS = ("num_classes", "in_channels", "input_size", "width_mult")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
#: built without the auxiliary heads that only run in training (their layers would never be costed)
NO_AUX = ("inception_v3", "googlenet")


def is_reference(name: str) -> bool:
    """Whether ``name`` is a ``torchvision:<name>`` or ``module:callable`` reference."""
    return ":" in str(name)


def torchvision_models() -> list[str]:
    """The classification models torchvision can build by name."""
    import torchvision

    return list(torchvision.models.list_models(module=torchvision.models))


def check_reference(name: str) -> str:
    """Validate the form of a model reference (a torchvision name must exist); returns it unchanged.
    A user's module is not imported here (:func:`build_reference` does, with its own errors)."""
    text = str(name)
    if text.startswith(TORCHVISION_PREFIX):
        short = text[len(TORCHVISION_PREFIX):]
        names = torchvision_models()
        if short not in names:
            raise JaqmooError(f"model {text!r}: torchvision has no classification model {short!r}; "
                              f"{did_you_mean(short, names)}choose one of: {', '.join(names)}")
        return text
    module, _, attr = text.partition(":")
    if not _DOTTED.match(module) or not _DOTTED.match(attr):
        raise JaqmooError(f"model {text!r}: a model reference is torchvision:<name> or package.module:callable "
                          "(a dotted module path, a colon, a dotted attribute path), e.g. mypkg.nets:build_net")
    return text


def build_reference(name: str, num_classes: int, in_channels: int, input_size: int, small: bool,
                    width_mult: float) -> nn.Module:
    """Build the model a reference names (see the module docstring)."""
    check_reference(name)
    if name.startswith(TORCHVISION_PREFIX):
        return _torchvision(name[len(TORCHVISION_PREFIX):], num_classes, in_channels, small, width_mult)
    model = _call_builder(name, _builder(name), num_classes=num_classes, in_channels=in_channels,
                          input_size=input_size, width_mult=width_mult)
    if not isinstance(model, nn.Module):
        raise JaqmooError(f"model {name!r}: the builder returned a {type(model).__name__}, not a torch nn.Module")
    return model


def _torchvision(short: str, num_classes: int, in_channels: int, small: bool, width_mult: float) -> nn.Module:
    import torchvision

    kwargs: dict[str, Any] = {"weights": None, "num_classes": num_classes}
    if short in NO_AUX:
        kwargs.update(aux_logits=False, init_weights=True)
    if width_mult != 1.0:
        kwargs["width_mult"] = width_mult
    try:
        model = torchvision.models.get_model(short, **kwargs)
    except TypeError as exc:
        if width_mult != 1.0:
            raise JaqmooError(f"model torchvision:{short} has no width multiplier; set model.width_mult "
                              f"(--width-mult) to 1.0 (got {width_mult})") from exc
        raise JaqmooError(f"model torchvision:{short} cannot be built with num_classes={num_classes}: {exc}") from exc
    return adapt_input(model, in_channels, small)


def _builder(name: str) -> Callable[..., Any]:
    module_name, _, attr = name.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise JaqmooError(f"model {name!r}: module {module_name!r} cannot be imported ({exc}); put its folder on "
                          "PYTHONPATH or install its package") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            public = [n for n in dir(obj) if not n.startswith("_")]
            raise JaqmooError(f"model {name!r}: {module_name} has no attribute {attr!r}; "
                              f"{did_you_mean(part, public)}it defines: {', '.join(public[:20])}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise JaqmooError(f"model {name!r}: {attr} is a {type(obj).__name__}, not a callable that builds a model")
    return obj


def _call_builder(name: str, builder: Callable[..., Any], **given: Any) -> Any:
    """Call ``builder`` with the arguments of :data:`BUILDER_ARGS` its signature declares."""
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return builder(**given)
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kwargs = dict(given)
    else:
        kwargs = {k: v for k, v in given.items() if k in params}
        required = [p.name for p in params.values() if p.default is p.empty and p.name not in given
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if required:
            raise JaqmooError(f"model {name!r}: its builder requires {required}, which jaqmoo does not pass; "
                              f"a builder may declare only {', '.join(BUILDER_ARGS)} (give the others defaults)")
        if given["width_mult"] != 1.0 and "width_mult" not in params:
            raise JaqmooError(f"model {name!r}: its builder takes no width_mult; set model.width_mult to 1.0 "
                              f"(got {given['width_mult']}) or add a width_mult parameter")
    try:
        return builder(**kwargs)
    except JaqmooError:
        raise
    except Exception as exc:
        raise JaqmooError(f"model {name!r}: its builder failed with {', '.join(f'{k}={v}' for k, v in kwargs.items())}: "
                          f"{type(exc).__name__}: {str(exc)[:300]}") from exc


__all__ = ["BUILDER_ARGS", "TORCHVISION_PREFIX", "build_reference", "check_reference", "is_reference",
           "torchvision_models"]
