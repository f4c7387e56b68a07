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
    #: what the forward pass computes that the cost model leaves out: ``(category, operations,
    #: output elements)`` (:mod:`jaqmoo.tracing`); empty when not traced
    not_costed: tuple[tuple[str, int, int], ...] = ()

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
        if math.prod(in_shape[1:-1]) != 1:
            raise JaqmooError(f"Linear {name!r} is applied to a {'x'.join(map(str, in_shape))} tensor (a sequence of "
                              "tokens or a channels-last map, as in attention / ViT / Swin / ConvNeXt blocks); jaqmoo "
                              "costs a Linear only on one feature vector per image and refuses to mis-cost it")
        return Layer(name, "linear", N=in_shape[0], K=module.out_features, C=module.in_features)
    raise JaqmooError(f"module {name!r} of type {type(module).__name__} is not a Conv2d or Linear")


#: modules jaqmoo cannot cost, refused before the forward pass (what to say about each)
UNSUPPORTED_MODULES: dict[str, str] = {
    "MultiheadAttention": "attention (ViT, Swin, MaxViT)",
    "Conv1d": "1-D convolution", "Conv3d": "3-D convolution (video models)",
    "ConvTranspose1d": "transposed convolution", "ConvTranspose2d": "transposed convolution",
    "ConvTranspose3d": "transposed convolution", "LSTM": "recurrent layers", "GRU": "recurrent layers",
    "RNN": "recurrent layers", "Transformer": "attention", "TransformerEncoderLayer": "attention (ViT)",
}


def _layer_kind(module) -> str | None:
    from torch import nn

    return "conv" if isinstance(module, nn.Conv2d) else "linear" if isinstance(module, nn.Linear) else None


def _refuse_unsupported_modules(model, label: str) -> None:
    found = {}
    for qual, module in model.named_modules():
        for cls in type(module).__mro__:
            if cls.__name__ in UNSUPPORTED_MODULES and cls.__module__.startswith("torch.nn"):
                found.setdefault(UNSUPPORTED_MODULES[cls.__name__], qual)
                break
    if found:
        what = "; ".join(f"{kind} (e.g. {qual!r})" for kind, qual in found.items())
        raise JaqmooError(f"{label} contains {what}: jaqmoo costs CNNs built of Conv2d and Linear layers only and "
                          "refuses to mis-cost this model")


def extract_workload(model, input_shape: tuple[int, ...], name: str | None = None, batch: int = 1,
                     num_classes: int | None = None) -> Workload:
    """Run ``model`` once on zeros of ``(batch, *input_shape)`` and record its layers.

    The forward pass is traced (:mod:`jaqmoo.tracing`): the workload lists what it does not
    cost (:attr:`Workload.not_costed`), and a model whose compute the cost model would miss or
    miscount is a :class:`JaqmooError` instead of a wrong cost: a convolution or matrix product
    outside a Conv2d/Linear module (functional calls, attention, 1-D/3-D/transposed convs), a
    Linear applied to a sequence, a Conv2d/Linear called twice or never, or layers that run in
    another order than the model registers them (a quantization policy lists them in registration
    order).

    Args:
        model: any torch module built of Conv2d/Linear (plus element-wise operations, pooling...).
        input_shape: ``(channels, height, width)``.
        name: workload name (defaults to the model's class name).
        batch: the N dimension of every layer.
        num_classes: when given, the output must be ``(batch, num_classes)`` logits.
    """
    import torch

    from jaqmoo.tracing import OpTracer

    if len(input_shape) != 3 or any(int(s) < 1 for s in input_shape):
        raise JaqmooError(f"input shape must be CxHxW with positive sizes (got {input_shape})")
    label = f"model {name!r}" if name else f"model {type(model).__name__}"
    _refuse_unsupported_modules(model, label)
    modules = dict(quantizable_layers(model))
    names = {id(m): n for n, m in modules.items()}
    seen: dict[str, Layer] = {}
    order: list[str] = []
    problems: list[str] = []

    def hook(mod, inputs, output):
        qual = names[id(mod)]
        if qual in seen:
            problems.append(f"{qual!r} is called more than once (the cost model would count it once)")
            return
        try:
            seen[qual] = layer_from_module(qual, mod, tuple(inputs[0].shape), tuple(output.shape))
        except JaqmooError as exc:
            problems.append(str(exc))
            return
        order.append(qual)

    handles = [m.register_forward_hook(hook) for m in modules.values()]
    tracer = OpTracer({id(m): n for n, m in model.named_modules()}, _layer_kind)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), tracer.watch(model):
            device = next((p.device for p in model.parameters()), None)  # "meta": shapes only, no arithmetic
            out = model(torch.zeros((batch, *(int(s) for s in input_shape)), device=device))
    except JaqmooError:
        raise
    except Exception as exc:  # torch raises RuntimeError, torchvision asserts on fixed input sizes
        raise JaqmooError(f"{label} does not accept input of shape {tuple(input_shape)}: "
                          f"{type(exc).__name__}: {str(exc)[:300]} (a network with a fixed or minimum input size, "
                          "such as inception_v3 (75x75 or more) or vgg at 28x28, needs larger images)") from exc
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    _check_trace(label, modules, order, problems, tracer.refused)
    if num_classes is not None and tuple(getattr(out, "shape", ())) != (batch, num_classes):
        raise JaqmooError(f"{label} maps a {'x'.join(map(str, input_shape))} image to "
                          f"{type(out).__name__} {tuple(getattr(out, 'shape', ()))}, not to {num_classes} class "
                          f"logits of shape {(batch, num_classes)}: build it with num_classes={num_classes} (and the "
                          "input's channels) and return the logits tensor only")
    return Workload(name or type(model).__name__, tuple(seen[n] for n in order), tracer.not_costed())


def _check_trace(label: str, modules: dict, order: list[str], problems: list[str], refused: list[str]) -> None:
    """Refuse a traced forward pass the cost model would mis-cost (see :func:`extract_workload`)."""
    if refused:
        more = f" and {len(refused) - 3} more" if len(refused) > 3 else ""
        problems.append(f"it computes {'; '.join(refused[:3])}{more} outside a Conv2d/Linear module (functional "
                        "calls, attention or matrix products): the cost model would not see these multiply-"
                        "accumulates")
    missing = [n for n in modules if n not in order]
    if missing:
        problems.append(f"Conv2d/Linear {missing[:5]} never run in the forward pass (auxiliary heads, unused "
                        "branches): remove them from the model, or the supernet and the policy would list layers "
                        "the cost model never sees")
    elif order != list(modules):
        first = next(i for i, (a, b) in enumerate(zip(order, modules, strict=False)) if a != b)
        problems.append(f"its layers run in another order than they are registered (run: {order[first]!r}, "
                        f"registered: {list(modules)[first]!r}): define the modules in __init__ in the order "
                        "forward uses them (quantization policies list layers in registration order)")
    if problems:
        unique = list(dict.fromkeys(problems))
        more = f"; and {len(unique) - 3} more" if len(unique) > 3 else ""
        raise JaqmooError(f"{label} cannot be costed: " + "; ".join(unique[:3]) + more)


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
