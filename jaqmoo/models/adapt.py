"""Input adaptation of a built CNN: its stem takes ``in_channels``; small images keep their resolution.

For small images (``input_size`` below :data:`~jaqmoo.models.registry.SMALL_INPUT_BELOW`, e.g.
28x28 Fashion-MNIST or 32x32 CIFAR) the early downsampling is reduced the usual CIFAR way,
by replacing modules after construction (never by editing a model's source):

* the first convolution (the stem) gets stride 1, and a kernel larger than 3 becomes 3x3
  (ResNet's 7x7 stride-2 stem becomes a 3x3 stride-1 one);
* a pooling layer that runs between the stem and the next convolution (ResNet's and
  GoogLeNet's stem max-pool) becomes an identity.

A stem whose input channels differ from ``in_channels`` is rebuilt too (fresh weights).
"""

from __future__ import annotations

from torch import nn


def replace_conv(conv: nn.Conv2d, in_channels: int | None = None, stride: int | None = None,
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


def set_submodule(model: nn.Module, qualified: str, module: nn.Module) -> None:
    """Replace the submodule at ``qualified`` (``"features.0.0"``) by ``module``."""
    parent_name, _, child = qualified.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


POOLS = (nn.MaxPool2d, nn.AvgPool2d)


def adapt_input(model: nn.Module, in_channels: int, small: bool) -> nn.Module:
    """``model`` with its stem taking ``in_channels`` and, when ``small``, the stem's downsampling
    removed (see the module docstring); the first Conv2d in registration order is the stem."""
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        return model
    stem_name, stem = convs[0]
    if small:
        big = stem.kernel_size[0] > 3 and stem.kernel_size == (stem.kernel_size[0],) * 2
        set_submodule(model, stem_name, replace_conv(stem, in_channels, stride=1, kernel=3 if big else None))
        second = convs[1][0] if len(convs) > 1 else None
        after_stem = False
        for name, module in list(model.named_modules()):
            if name == stem_name:
                after_stem = True
            elif name == second:
                break
            elif after_stem and isinstance(module, POOLS):
                set_submodule(model, name, nn.Identity())
                break
    elif in_channels != stem.in_channels:
        set_submodule(model, stem_name, replace_conv(stem, in_channels))
    return model


__all__ = ["POOLS", "adapt_input", "replace_conv", "set_submodule"]
