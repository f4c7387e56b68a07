"""Layers and workloads: the convolution shapes the cost model and the search work on.

A :class:`Layer` is one convolution loop nest in Timeloop's terms, over dimensions
N (batch), G (groups), K (output channels per group), C (input channels per group),
P, Q (output height, width) and R, S (filter height, width), with strides and dilations.
Grouped and depthwise convolutions keep their groups (a depthwise 3x3 over 32 channels is
G=32, K=C=1, never a dense 32x32 convolution); a linear layer is a 1x1 convolution on a
1x1 map.

:func:`extract_workload` runs a torch model once on a dummy input and records every
``Conv2d`` and ``Linear`` in execution order. Layer names are the modules' qualified
names, which is also how quantization policies address layers
(:func:`quantizable_layers` lists the same modules in the same order).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from jaqmoo.errors import JaqmooError

DIMS: tuple[str, ...] = ("N", "G", "K", "C", "P", "Q", "R", "S")
MAX_INPUT_VALUES = 2**24  # values of one input image the workload extraction may run a forward pass on
MAX_LAYER_VALUES = 2**53  # counts are exact float64 integers below this (see jaqmoo.mapping.model.Accesses)


@dataclass(frozen=True)
class Layer:
    """One convolution (or linear) layer as a loop nest. All sizes are per group."""

    name: str
    kind: str  # "conv", "grouped", "depthwise" or "linear"
    N: int = 1
    G: int = 1
    K: int = 1
    C: int = 1
    P: int = 1
    Q: int = 1
    R: int = 1
    S: int = 1
    stride_h: int = 1
    stride_w: int = 1
    dilation_h: int = 1
    dilation_w: int = 1

    def __post_init__(self) -> None:
        for dim in DIMS:
            value = getattr(self, dim)
            if not isinstance(value, int) or value < 1:
                raise JaqmooError(f"layer {self.name!r}: dimension {dim} must be a positive integer (got {value!r})")
        for field in ("stride_h", "stride_w", "dilation_h", "dilation_w"):
            value = getattr(self, field)
            if not isinstance(value, int) or not 1 <= value <= MAX_LAYER_VALUES:
                raise JaqmooError(f"layer {self.name!r}: {field} must be an integer >= 1 (got {value!r})")
        if math.prod(getattr(self, dim) for dim in DIMS) > MAX_LAYER_VALUES:
            raise JaqmooError(f"layer {self.name!r}: {self.dims} makes more than 2^53 multiply-accumulates, beyond "
                              "what the cost model counts exactly; check the layer's dimensions")

    @property
    def dims(self) -> dict[str, int]:
        """The loop bounds ``{"N": .., "G": .., ..., "S": ..}``."""
        return {d: getattr(self, d) for d in DIMS}

    @property
    def macs(self) -> int:
        """Multiply-accumulates: the product of all loop bounds."""
        return math.prod(getattr(self, d) for d in DIMS)

    @property
    def input_h(self) -> int:
        """Input rows the layer touches (padding included)."""
        return (self.P - 1) * self.stride_h + (self.R - 1) * self.dilation_h + 1

    @property
    def input_w(self) -> int:
        """Input columns the layer touches (padding included)."""
        return (self.Q - 1) * self.stride_w + (self.S - 1) * self.dilation_w + 1

    @property
    def weight_count(self) -> int:
        return self.G * self.K * self.C * self.R * self.S

    @property
    def input_count(self) -> int:
        return self.N * self.G * self.C * self.input_h * self.input_w

    @property
    def output_count(self) -> int:
        return self.N * self.G * self.K * self.P * self.Q

    @property
    def shape_key(self) -> tuple:
        """Everything but the name: layers with equal keys cost the same."""
        d = asdict(self)
        d.pop("name")
        return tuple(d.values())


@dataclass(frozen=True)
class Workload:
    """A network as an ordered tuple of layers."""

    name: str
    layers: tuple[Layer, ...]

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def unique_shapes(self) -> dict[tuple, list[int]]:
        """Map each distinct layer shape to the indices of the layers that have it."""
        groups: dict[tuple, list[int]] = {}
        for i, layer in enumerate(self.layers):
            groups.setdefault(layer.shape_key, []).append(i)
        return groups


def quantizable_layers(model) -> list[tuple[str, object]]:
    """The ``(qualified name, module)`` of every Conv2d and Linear, in registration order.

    This is the order of a quantization policy's entries and of :func:`extract_workload`'s
    layers (for the supported models, registration order is execution order).
    """
    from torch import nn

    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def layer_from_module(name: str, module, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> Layer:
    """Build a :class:`Layer` from a Conv2d/Linear and the shapes it saw (batch first)."""
    from torch import nn

    if isinstance(module, nn.Conv2d):
        groups = module.groups
        n, _, _, _ = in_shape
        _, _, p, q = out_shape
        k = module.out_channels // groups
        c = module.in_channels // groups
        if groups == 1:
            kind = "conv"
        elif k == 1 and c == 1:
            kind = "depthwise"
        else:
            kind = "grouped"
        r, s = module.kernel_size
        return Layer(
            name, kind, N=n, G=groups, K=k, C=c, P=p, Q=q, R=r, S=s,
            stride_h=module.stride[0], stride_w=module.stride[1],
            dilation_h=module.dilation[0], dilation_w=module.dilation[1],
        )
    if isinstance(module, nn.Linear):
        rows = math.prod(in_shape[:-1])  # batch (and any extra leading dims)
        return Layer(name, "linear", N=rows, K=module.out_features, C=module.in_features)
    raise JaqmooError(f"module {name!r} of type {type(module).__name__} is not a Conv2d or Linear")


def extract_workload(model, input_shape: tuple[int, ...], name: str | None = None, batch: int = 1) -> Workload:
    """Run ``model`` once on zeros of ``(batch, *input_shape)`` and record its layers.

    Args:
        model: any torch module built of Conv2d/Linear (plus anything else, ignored).
        input_shape: ``(channels, height, width)``.
        name: workload name (defaults to the model's class name).
        batch: the N dimension of every layer.
    """
    import torch

    if len(input_shape) != 3 or any(int(s) < 1 for s in input_shape):
        raise JaqmooError(f"input shape must be CxHxW with positive sizes (got {input_shape})")
    modules = dict(quantizable_layers(model))
    seen: dict[str, Layer] = {}
    order: list[str] = []

    def hook(mod, inputs, output):
        qual = names[id(mod)]
        layer = layer_from_module(qual, mod, tuple(inputs[0].shape), tuple(output.shape))
        if qual in seen:
            if seen[qual] != layer:
                raise JaqmooError(f"module {qual!r} is called twice with different shapes; not supported")
            return
        seen[qual] = layer
        order.append(qual)

    names = {id(m): n for n, m in modules.items()}
    handles = [m.register_forward_hook(hook) for m in modules.values()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((batch, *(int(s) for s in input_shape))))
    except RuntimeError as exc:
        raise JaqmooError(f"model does not accept input of shape {tuple(input_shape)}: {exc}") from exc
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return Workload(name or type(model).__name__, tuple(seen[n] for n in order))


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """Parse ``"3x224x224"`` into ``(3, 224, 224)``."""
    try:
        parts = tuple(int(p) for p in text.lower().split("x"))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) < 1:
        raise JaqmooError(f"--input must look like 3x224x224 (channels x height x width), got {text[:200]!r}")
    if math.prod(parts) > MAX_INPUT_VALUES:  # checked before a forward pass allocates activations for it
        raise JaqmooError(f"--input {text[:200]}: {math.prod(parts)} values per image is too large (at most "
                          f"{MAX_INPUT_VALUES}, e.g. 4x2048x2048)")
    return parts  # type: ignore[return-value]


def model_workload(model_name: str, input_shape: tuple[int, int, int], num_classes: int = 1000,
                   width_mult: float = 1.0) -> Workload:
    """Deprecated: moved to :func:`jaqmoo.models.model_workload` (models sit above the workload
    layer; this shim's upward import is the one the import contracts list as allowed)."""
    import warnings

    from jaqmoo.models import model_workload as moved

    warnings.warn("jaqmoo.workload.model_workload moved to jaqmoo.models.model_workload", DeprecationWarning,
                  stacklevel=2)
    return moved(model_name, input_shape, num_classes, width_mult)
