"""What a forward pass computes beyond its Conv2d and Linear modules: the not-costed operations.

:class:`OpTracer` watches one forward pass of a torch model through a
:class:`torch.overrides.TorchFunctionMode` (it sees every torch function and tensor operator,
also those called outside any module) and the module call stack (hooks on every module). It

* counts, per category, the operations jaqmoo's cost model leaves out (residual adds,
  squeeze-excitation / gating multiplies, pooling, activations, normalisation, concatenation):
  :meth:`OpTracer.not_costed`;
* refuses what would otherwise be silently mis-costed: a convolution or matrix product that is
  not the plain call of a ``Conv2d``/``Linear`` module (a functional ``F.conv2d``/``F.linear``,
  ``matmul``/``bmm``/``einsum``, attention, 1-D/3-D or transposed convolutions): the cost model
  would not see its multiply-accumulates (:attr:`OpTracer.refused`).

Operations inside a ``Conv2d``/``Linear`` module's own forward (its convolution, a quantizer's
rounding) belong to that layer and are not listed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from torch.overrides import TorchFunctionMode

#: convolutions: only ``conv2d`` inside a Conv2d module is costed
CONV_OPS = frozenset({"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                      "conv_tbc", "convolution"})
#: matrix products: only ``linear`` inside a Linear module is costed
MATMUL_OPS = frozenset({"linear", "bilinear", "matmul", "__matmul__", "__rmatmul__", "__imatmul__", "mm", "bmm",
                        "addmm", "baddbmm", "addbmm", "einsum", "tensordot", "mv", "addmv", "dot", "inner", "outer",
                        "scaled_dot_product_attention", "multi_head_attention_forward", "unfold", "fold"})
ADD_OPS = frozenset({"add", "__add__", "__radd__", "__iadd__", "add_", "sub", "__sub__", "__rsub__", "__isub__"})
MUL_OPS = frozenset({"mul", "__mul__", "__rmul__", "__imul__", "mul_", "div", "__truediv__", "__itruediv__"})
ACTIVATION_OPS = frozenset({"relu", "relu_", "relu6", "hardtanh", "hardtanh_", "hardswish", "hardsigmoid", "silu",
                            "sigmoid", "sigmoid_", "tanh", "gelu", "leaky_relu", "elu", "selu", "celu", "mish",
                            "softplus", "prelu", "glu", "threshold", "softmax", "log_softmax"})
NORM_OPS = frozenset({"batch_norm", "layer_norm", "group_norm", "instance_norm", "local_response_norm"})
CONCAT_OPS = frozenset({"cat", "concat", "concatenate", "stack"})

#: category -> what the cost model does about it (printed beside the counts)
CATEGORIES: dict[str, str] = {
    "residual add": "element-wise sum of two feature maps (skip connections)",
    "element-wise multiply": "feature map times a per-channel or per-pixel factor (squeeze-excitation, gating)",
    "pooling": "max/average pooling, global pooling",
    "activation": "ReLU, ReLU6, h-swish, SiLU, sigmoid, softmax ...",
    "normalization": "batch norm (folded into the preceding conv on an accelerator), layer/group norm",
    "concatenation": "channel concatenation (data movement only)",
    "other element-wise": "scalar add/multiply outside an activation module",
}


def _op_name(func: Any) -> str:
    return str(getattr(func, "__name__", "") or "")


def _tensors(args: tuple, kwargs: dict) -> list[Any]:
    import torch

    return [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]


class OpTracer(TorchFunctionMode):
    """Counts the not-costed operations of one forward pass and collects the refused ones.

    ``module_names`` maps ``id(module)`` to its qualified name; ``costed`` tells whether a module
    is a costed layer (``"conv"`` for a Conv2d, ``"linear"`` for a Linear, else None); enter :meth:`watch` around the forward pass."""

    def __init__(self, module_names: dict[int, str], costed: Callable[[Any], str | None]) -> None:
        super().__init__()
        self._names = module_names
        self._costed = costed
        self._stack: list[Any] = []
        self.counts: dict[str, list[int]] = {}  # category -> [operations, output elements]
        self.refused: list[str] = []

    # ------------------------------------------------------------------ module stack
    def _push(self, module: Any, _inputs: Any) -> None:
        self._stack.append(module)

    def _pop(self, module: Any, _inputs: Any, _output: Any) -> None:
        if self._stack and self._stack[-1] is module:
            self._stack.pop()

    def _where(self) -> str:
        if not self._stack:
            return "the model's forward"
        module = self._stack[-1]
        return f"{self._names.get(id(module), '?') or '(top)'} ({type(module).__name__})"

    @contextmanager
    def watch(self, model: Any) -> Iterator[OpTracer]:
        """Hooks on every module of ``model`` and this mode, for one forward pass."""
        handles = []
        for module in model.modules():
            handles.append(module.register_forward_pre_hook(self._push))
            handles.append(module.register_forward_hook(self._pop, always_call=True))
        try:
            with self:
                yield self
        finally:
            for h in handles:
                h.remove()

    # ------------------------------------------------------------------ classification
    def _category(self, name: str, tensors: list[Any]) -> str | None:
        if "pool" in name or (name == "mean" and tensors and tensors[0].dim() == 4):
            return "pooling"  # x.mean((2, 3)) is global average pooling (MNASNet)
        if name in ACTIVATION_OPS:
            return "activation"
        if name in NORM_OPS:
            return "normalization"
        if name in CONCAT_OPS:
            return "concatenation"
        two_maps = len(tensors) >= 2 and all(t.dim() >= 2 for t in tensors[:2])
        if name in ADD_OPS:
            return "residual add" if two_maps and tensors[0].shape == tensors[1].shape else "other element-wise"
        if name in MUL_OPS:
            return "element-wise multiply" if two_maps else "other element-wise"
        return None

    def _check_compute(self, name: str, tensors: list[Any]) -> None:
        kind = self._costed(self._stack[-1]) if self._stack else None
        if (name, kind) in (("conv2d", "conv"), ("linear", "linear")):
            return
        shapes = ", ".join("x".join(str(s) for s in t.shape) for t in tensors[:2])
        self.refused.append(f"{name}({shapes}) in {self._where()}")

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = _op_name(func)
        if name in CONV_OPS or name in MATMUL_OPS:
            self._check_compute(name, _tensors(args, kwargs))
            return out
        if self._stack and self._costed(self._stack[-1]):
            return out  # part of a costed layer (e.g. a quantizer's arithmetic)
        category = self._category(name, _tensors(args, kwargs))
        if category is None:
            return out
        counts = self.counts.setdefault(category, [0, 0])
        counts[0] += 1
        counts[1] += int(out.numel()) if hasattr(out, "numel") else 0
        return out

    def not_costed(self) -> tuple[tuple[str, int, int], ...]:
        """``(category, operations, output elements)`` per category met, in :data:`CATEGORIES` order."""
        return tuple((c, *self.counts[c]) for c in CATEGORIES if c in self.counts)  # type: ignore[misc]


def describe_not_costed(entries: tuple[tuple[str, int, int], ...]) -> list[str]:
    """One line per not-costed category: ``"residual add: 16 ops, 1.20 M elements (...)"``."""
    return [f"{cat}: {ops} op{'s' if ops != 1 else ''}, {elems / 1e6:.3g} M elements ({CATEGORIES.get(cat, '')})"
            for cat, ops, elems in entries]


def not_costed_record(entries: tuple[tuple[str, int, int], ...]) -> dict[str, dict[str, int]]:
    """The not-costed operations as plain data for ``meta.json``: ``{category: {ops, elements}}``."""
    return {cat: {"ops": int(ops), "elements": int(elems)} for cat, ops, elems in entries}


__all__ = ["CATEGORIES", "OpTracer", "describe_not_costed", "not_costed_record"]
