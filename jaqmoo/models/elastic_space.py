"""The elastic architecture space: sub-network specs, the largest network and sub-network workloads.

The space is once-for-all style, over a *family* of networks (:class:`ElasticFamily`: the stage
table, the channel rounding, the network module and the names of a block's layers). The
families are MobileNetV2 (:mod:`jaqmoo.models.elastic_mbv2`) and MobileNetV1
(:mod:`jaqmoo.models.elastic_mbv1`, whose depthwise-separable block is a block without
expansion); each registers itself in :data:`FAMILIES` and :func:`family` looks one up by
``ElasticSpace.model``. The genes:

- ``depth``: blocks per stage; a stage with ``n`` blocks runs ``min(d, n)`` of them (the first
  ones; the dropped blocks keep the shape, so skipping them is exact);
- ``expand``: the expand ratio of every block that has an expansion; its hidden channels are
  ``round(in_channels * ratio)``, a prefix of the largest block's;
- ``kernel``: the depthwise kernel of every block; smaller kernels are (transformed)
  centres of the largest (see :mod:`jaqmoo.quant.elastic`).

An :class:`ArchSpec` is plain data (depth per stage, expand and kernel per block of the
largest network). :meth:`ElasticSpace.canonical` makes it a phenotype: depths clipped to
what the stage has, and the expand/kernel of blocks that do not run set to 0, so two specs
that build the same network compare equal. :func:`subnet_workload` computes the layers of
the decoded sub-network analytically (named like the supernet's layers, so a per-layer
policy of the largest network applies) and :func:`build_standalone` builds the same
sub-network as an ordinary ``nn.Module``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from jaqmoo.errors import JaqmooError
from jaqmoo.models.registry import SMALL_INPUT_BELOW
from jaqmoo.registry import Registry
from jaqmoo.workload import Layer, Workload


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's channel rounding (never below 90 % of ``v``)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ElasticFamily(ABC):
    """What differs between the elastic network families (plain, stateless).

    ``settings`` is the stage table ``(expand t, channels c, blocks n, stride s)`` of the fixed
    network (``t == 1``: the stage's blocks have no expand layer and no expand choice);
    ``defaults`` the ``model.elastic`` defaults. Subclasses give the channel rounding, the
    network module and the names of the layers of a block and of the head."""

    name: ClassVar[str] = ""
    settings: ClassVar[tuple[tuple[int, int, int, int], ...]] = ()
    defaults: ClassVar[dict[str, tuple[int, ...]]] = {}

    @property
    def max_depth(self) -> int:
        """Blocks of the longest stage (the largest useful depth choice)."""
        return max(n for _, _, n, _ in self.settings)

    @property
    def has_expand(self) -> bool:
        return any(t != 1 for t, _, _, _ in self.settings)

    @abstractmethod
    def channels(self, c: float, width_mult: float) -> int:
        """``c`` channels at ``width_mult``, rounded as the fixed network rounds them."""

    @abstractmethod
    def build(self, space: ElasticSpace, blocks: Sequence[BlockShape], num_classes: int, in_channels: int,
              input_size: int) -> nn.Module:
        """The network with the given blocks (module names as in the fixed network)."""

    @abstractmethod
    def block_layers(self, b: int, shape: BlockShape, size: int, batch: int) -> list[Layer]:
        """The layers of block ``b`` (of the largest network) on an input map of ``size``, named as
        in the largest network."""

    @abstractmethod
    def head_layers(self, space: ElasticSpace, size: int, num_classes: int, batch: int) -> list[Layer]:
        """The layers after the last block."""


#: the elastic families by model name; each family's module registers its own
#: (:mod:`jaqmoo.models.elastic_mbv2`, :mod:`jaqmoo.models.elastic_mbv1`)
FAMILIES: Registry[ElasticFamily] = Registry(
    "elastic model family", hint=". Set model.name to one of them or remove model.elastic")


def family(model: str) -> ElasticFamily:
    """The elastic family of ``model``; :class:`JaqmooError` for a model without an elastic space."""
    if model not in FAMILIES:
        raise JaqmooError(f"model.elastic: only {', '.join(sorted(FAMILIES))} have an elastic space (model is "
                          f"{model!r}); set model.name to one of them or remove model.elastic")
    return FAMILIES[model]


@dataclass(frozen=True)
class BlockShape:
    """One inverted-residual block as built (hidden = 0 would mean no block)."""

    stage: int
    inp: int
    hidden: int
    oup: int
    stride: int
    kernel: int
    has_expand: bool


@dataclass(frozen=True)
class ArchSpec:
    """A sub-network: blocks per stage, and expand ratio / kernel per block of the largest net."""

    depth: tuple[int, ...]
    expand: tuple[int, ...]
    kernel: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"depth": list(self.depth), "expand": list(self.expand), "kernel": list(self.kernel)}

    @property
    def key(self) -> tuple:
        return (self.depth, self.expand, self.kernel)


def _choices(value, name: str, positive_odd: bool = False) -> tuple[int, ...]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = [value]
    try:
        out = tuple(sorted({int(v) for v in value}))
        if any(int(v) != v for v in value):
            raise ValueError
    except (TypeError, ValueError):
        raise JaqmooError(f"model.elastic.{name}: expected a list of integers (got {value!r})") from None
    if not out or min(out) < 1:
        raise JaqmooError(f"model.elastic.{name}: choices must be positive integers (got {list(value)})")
    if positive_odd and any(k % 2 == 0 for k in out):
        raise JaqmooError(f"model.elastic.kernel: kernels must be odd, e.g. [3, 5, 7] (got {list(out)})")
    return out


@dataclass(frozen=True)
class ElasticSpace:
    """The architecture space of an elastic network of family ``model`` (plain, hashable, JSON-able).

    The field defaults are MobileNetV2's; :meth:`from_dict` takes the family's own."""

    depth: tuple[int, ...] = (2, 3, 4)
    expand: tuple[int, ...] = (3, 4, 6)
    kernel: tuple[int, ...] = (3, 5, 7)
    width_mult: float = 1.0
    model: str = "mobilenet_v2"

    def __post_init__(self) -> None:
        if not self.family.has_expand:  # a family without expand layers (MobileNetV1): ratio 1 only
            object.__setattr__(self, "expand", (1,))

    @property
    def family(self) -> ElasticFamily:
        """The network family of :attr:`model` (:func:`family`)."""
        return family(self.model)

    @classmethod
    def from_dict(cls, data: dict, width_mult: float = 1.0, model: str = "mobilenet_v2") -> ElasticSpace:
        """Validate ``model.elastic`` (keys depth, expand, kernel); :class:`JaqmooError` names the field."""
        fam = family(model)
        if not isinstance(data, dict):
            raise JaqmooError(f"model.elastic must be a mapping {{depth: [...], expand: [...], kernel: [...]}} (got {data!r})")
        unknown = sorted(set(data) - {"depth", "expand", "kernel", "width_mult", "model"})
        if unknown:
            raise JaqmooError(f"model.elastic: unknown keys {unknown}; allowed: depth, expand, kernel")
        d = fam.defaults
        expand = _choices(data.get("expand", d["expand"]), "expand")
        if not fam.has_expand and expand != (1,):
            raise JaqmooError(f"model.elastic.expand: {model}'s depthwise-separable blocks have no expand layer "
                              f"(got {list(expand)}); remove model.elastic.expand or give [1]")
        return cls(_choices(data.get("depth", d["depth"]), "depth"), expand,
                   _choices(data.get("kernel", d["kernel"]), "kernel", positive_odd=True),
                   float(data.get("width_mult", width_mult)), model)

    def to_dict(self) -> dict:
        return {"model": self.model, "depth": list(self.depth), "expand": list(self.expand),
                "kernel": list(self.kernel), "width_mult": self.width_mult}

    # ------------------------------------------------------------------ the largest network
    @property
    def stage_blocks(self) -> tuple[int, ...]:
        """Blocks per stage in the largest network: the family's, capped at the largest depth choice."""
        return tuple(min(n, max(self.depth)) for _, _, n, _ in self.family.settings)

    @property
    def n_blocks(self) -> int:
        return sum(self.stage_blocks)

    def block_stage(self) -> tuple[int, ...]:
        return tuple(s for s, n in enumerate(self.stage_blocks) for _ in range(n))

    def block_has_expand(self) -> tuple[bool, ...]:
        settings = self.family.settings
        return tuple(settings[s][0] != 1 for s in self.block_stage())

    def depth_choices(self, stage: int) -> tuple[int, ...]:
        n = self.stage_blocks[stage]
        return tuple(sorted({min(d, n) for d in self.depth}))

    def expand_choices(self, block: int) -> tuple[int, ...]:
        return self.expand if self.block_has_expand()[block] else (1,)

    def gene_choices(self) -> list[tuple[int, ...]]:
        """The values of every architecture gene, in gene order: depth per stage, expand ratio
        per block, depthwise kernel per block."""
        return ([self.depth_choices(s) for s in range(len(self.stage_blocks))]
                + [self.expand_choices(b) for b in range(self.n_blocks)] + [self.kernel for _ in range(self.n_blocks)])

    def from_genes(self, genes: Sequence[int]) -> ArchSpec:
        """The canonical architecture of gene indices into :meth:`gene_choices` (one per gene)."""
        choices = self.gene_choices()
        if len(genes) != len(choices):
            raise JaqmooError(f"architecture genes: got {len(genes)}, this space has {len(choices)}")
        vals = [int(c[int(i)]) for c, i in zip(choices, genes, strict=True)]
        n_st, n_b = len(self.stage_blocks), self.n_blocks
        return self.canonical(ArchSpec(tuple(vals[:n_st]), tuple(vals[n_st : n_st + n_b]), tuple(vals[n_st + n_b :])))

    def largest(self) -> ArchSpec:
        return ArchSpec(tuple(max(self.depth_choices(s)) for s in range(len(self.stage_blocks))),
                        tuple(max(self.expand_choices(b)) for b in range(self.n_blocks)),
                        (max(self.kernel),) * self.n_blocks)

    def smallest(self) -> ArchSpec:
        return self.canonical(ArchSpec(tuple(min(self.depth_choices(s)) for s in range(len(self.stage_blocks))),
                                       tuple(min(self.expand_choices(b)) for b in range(self.n_blocks)),
                                       (min(self.kernel),) * self.n_blocks))

    def sample(self, rng) -> ArchSpec:
        """A uniformly random sub-network (canonical)."""
        depth = tuple(int(rng.choice(self.depth_choices(s))) for s in range(len(self.stage_blocks)))
        expand = tuple(int(rng.choice(self.expand_choices(b))) for b in range(self.n_blocks))
        kernel = tuple(int(rng.choice(self.kernel)) for _ in range(self.n_blocks))
        return self.canonical(ArchSpec(depth, expand, kernel))

    # ------------------------------------------------------------------ specs -> blocks
    def active_blocks(self, spec: ArchSpec) -> tuple[bool, ...]:
        pos = [i for s in range(len(self.stage_blocks)) for i in range(self.stage_blocks[s])]
        return tuple(p < min(spec.depth[s], self.stage_blocks[s]) for p, s in zip(pos, self.block_stage(), strict=True))

    def check(self, spec: ArchSpec) -> ArchSpec:
        """Validate ``spec`` against the space (lengths and choices); returns it canonical."""
        n_st, n_b = len(self.stage_blocks), self.n_blocks
        for name, vals, n in (("depth", spec.depth, n_st), ("expand", spec.expand, n_b), ("kernel", spec.kernel, n_b)):
            if len(vals) != n:
                raise JaqmooError(f"architecture {name} has {len(vals)} entries; this space needs {n}")
        canon = self.canonical(spec)
        act = self.active_blocks(canon)
        for s, d in enumerate(spec.depth):
            if min(d, self.stage_blocks[s]) not in self.depth_choices(s):
                raise JaqmooError(f"architecture depth[{s}]={d}: choose one of {list(self.depth)}")
        for b in range(n_b):
            if act[b] and spec.expand[b] not in self.expand_choices(b):
                raise JaqmooError(f"architecture expand[{b}]={spec.expand[b]}: choose one of {list(self.expand_choices(b))}")
            if act[b] and spec.kernel[b] not in self.kernel:
                raise JaqmooError(f"architecture kernel[{b}]={spec.kernel[b]}: choose one of {list(self.kernel)}")
        return canon

    def canonical(self, spec: ArchSpec) -> ArchSpec:
        """The phenotype: depths clipped to the stage, genes of blocks that do not run zeroed."""
        depth = tuple(min(int(d), n) for d, n in zip(spec.depth, self.stage_blocks, strict=True))
        act = self.active_blocks(ArchSpec(depth, spec.expand, spec.kernel))
        has_e = self.block_has_expand()
        expand = tuple((int(e) if has_e[b] else 1) if act[b] else 0 for b, e in enumerate(spec.expand))
        kernel = tuple(int(k) if act[b] else 0 for b, k in enumerate(spec.kernel))
        return ArchSpec(depth, expand, kernel)

    def block_shapes(self, spec: ArchSpec) -> list[BlockShape | None]:
        """Per block of the largest network: its shape in ``spec``, or None when it does not run."""
        spec = self.canonical(spec)
        act = self.active_blocks(spec)
        out: list[BlockShape | None] = []
        fam = self.family
        inp = self.stem_channels()
        b = 0
        for s, (t, c, _, stride) in enumerate(fam.settings):
            oup = fam.channels(c, self.width_mult)
            for i in range(self.stage_blocks[s]):
                has_e = t != 1
                hidden = int(round(inp * (spec.expand[b] if has_e else 1)))
                out.append(BlockShape(s, inp, hidden, oup, stride if i == 0 else 1, spec.kernel[b], has_e)
                           if act[b] else None)
                inp = oup
                b += 1
        return out

    def stem_channels(self) -> int:
        return self.family.channels(32, self.width_mult)

    def last_channels(self) -> int:
        """MobileNetV2's last 1x1 convolution's outputs."""
        return make_divisible(1280 * max(1.0, self.width_mult))

    def last_input_channels(self) -> int:
        """Channels out of the last block."""
        return self.family.channels(self.family.settings[-1][1], self.width_mult)


def build_largest(space: ElasticSpace, num_classes: int, in_channels: int, input_size: int) -> nn.Module:
    """The float network holding the shared weights of every sub-network of ``space``."""
    return space.family.build(space, [b for b in space.block_shapes(space.largest()) if b is not None],
                              num_classes, in_channels, input_size)


def build_standalone(space: ElasticSpace, spec: ArchSpec, num_classes: int, in_channels: int,
                     input_size: int) -> nn.Module:
    """The sub-network ``spec`` as an ordinary network (fresh weights, only the blocks that run)."""
    spec = space.check(spec)
    return space.family.build(space, [b for b in space.block_shapes(spec) if b is not None],
                              num_classes, in_channels, input_size)


# ---------------------------------------------------------------------------------- workloads
def _conv_out(size: int, kernel: int, stride: int) -> int:
    return (size + 2 * ((kernel - 1) // 2) - kernel) // stride + 1


def conv_layer(name: str, inp: int, oup: int, kernel: int, stride: int, groups: int, size: int, batch: int) -> Layer:
    """The :class:`Layer` of a convolution (padding ``(kernel - 1) // 2``) on a ``size`` x ``size`` map."""
    out = _conv_out(size, kernel, stride)
    kind = "conv" if groups == 1 else ("depthwise" if inp == oup == groups else "grouped")
    return Layer(name, kind, N=batch, G=groups, K=oup // groups, C=inp // groups, P=out, Q=out, R=kernel, S=kernel,
                 stride_h=stride, stride_w=stride)


def subnet_layers(space: ElasticSpace, spec: ArchSpec, num_classes: int, in_channels: int, input_size: int,
                  batch: int = 1) -> list[Layer]:
    """The layers that run in ``spec``, in execution order, named as in the supernet."""
    size = input_size
    stem = conv_layer("features.0.0", in_channels, space.stem_channels(), 3,
                       1 if input_size < SMALL_INPUT_BELOW else 2, 1, size, batch)
    layers = [stem]
    size = stem.P
    fam = space.family
    for i, b in enumerate(space.block_shapes(spec)):
        if b is None:
            continue
        block = fam.block_layers(i, b, size, batch)
        layers += block
        size = block[-1].P
    return layers + fam.head_layers(space, size, num_classes, batch)


def subnet_workload(space: ElasticSpace, spec: ArchSpec, num_classes: int, in_channels: int, input_size: int,
                    batch: int = 1, name: str | None = None) -> Workload:
    """The :class:`Workload` of the decoded sub-network (what the cost model must see)."""
    spec = space.check(spec)
    return Workload(name or space.model, tuple(subnet_layers(space, spec, num_classes, in_channels, input_size, batch)))


def arch_stats(workload: Workload) -> dict[str, int]:
    """MACs and parameters (conv/linear weights plus the classifier bias) of a sub-network."""
    params = sum(layer.weight_count for layer in workload.layers)
    params += sum(layer.K for layer in workload.layers if layer.kind == "linear")
    return {"macs": int(workload.macs), "params": int(params)}


def arch_columns(space: ElasticSpace, spec: ArchSpec) -> dict[str, int]:
    """Readable front columns: ``depth_s{i}``, ``expand_b{j}``, ``kernel_b{j}`` (0: block not run)."""
    spec = space.canonical(spec)
    cols = {f"depth_s{s}": d for s, d in enumerate(spec.depth)}
    cols.update({f"expand_b{b}": e for b, e in enumerate(spec.expand)})
    cols.update({f"kernel_b{b}": k for b, k in enumerate(spec.kernel)})
    return cols


def space_of_model(model: dict) -> ElasticSpace | None:
    """The architecture space of a plain ``model`` spec section (a validated spec's
    ``spec.to_dict()["model"]``, as ``meta.json`` records it); None without ``elastic``."""
    d = model.get("elastic")
    if d is None:
        return None
    return ElasticSpace(tuple(d["depth"]), tuple(d["expand"]), tuple(d["kernel"]),
                        float(model.get("width_mult", 1.0)), str(model["name"]))


__all__ = ["FAMILIES", "SMALL_INPUT_BELOW", "ArchSpec", "BlockShape", "ElasticFamily", "ElasticSpace", "arch_columns",
           "arch_stats", "build_largest", "build_standalone", "conv_layer", "family", "make_divisible", "space_of_model",
           "subnet_layers", "subnet_workload"]
