"""Plain, hashable description of an accelerator for the cost model.

An :class:`Accelerator` is a chain of storage :class:`Level` s from the outermost (DRAM,
index 0) to the innermost, then the :class:`Compute` units. Each level has ``instances``
copies laid out as a ``mesh_x`` x ``mesh_y`` mesh; the spatial fan-out between level ``l``
and the next inner level (or the compute) is the ratio of their meshes, per axis.

Dummy levels (Timeloop's ``dummy_storage``, e.g. ``inter_PE_spatial``) hold no data; they
only host a spatial fan-out (and the mapping constraints attached to it).

All per-action energies are in pJ per *vector* access (one physical word of ``width``
bits, Accelergy's ERT convention); areas are in um^2.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from jaqmoo.errors import JaqmooError

TENSORS: tuple[str, ...] = ("Weights", "Inputs", "Outputs")
"""Tensor order used by every array with a tensor axis."""

TENSOR_INDEX = {t: i for i, t in enumerate(TENSORS)}

CONVENTIONS: tuple[str, ...] = ("jaqmoo", "fork")
"""Counting conventions of the cost model (see :attr:`Accelerator.convention`):

``jaqmoo``
    Timeloop v0.4 counting; a ``b``-bit tensor packs ``floor(width / b)`` values into one
    physical word (vector) of the level; MAC energy scales with ``b_w * b_a``.
``fork``
    the Klhufek et al. mixed-precision Timeloop fork: values never straddle the level's
    ``word-bits`` words (``floor(datawidth / b)`` operands per word, ``block size`` words per
    vector); MAC energy does not depend on the bits; the first fill of every partial-sum
    tile is counted (v0.4 elides it, as it elides the first read); partial sums stay at the
    Outputs bits; access energy is charged per utilized instance (v0.4: per utilized cluster).
"""


@dataclass(frozen=True)
class Level:
    """One storage level (all its instances share these parameters)."""

    name: str
    cls: str
    """Component class (``DRAM``, ``SRAM``, ``smartbuffer_RF``, ``dummy_storage``...)."""
    instances: int
    mesh_x: int
    mesh_y: int
    depth: int | None
    """Words per instance; ``None`` = unbounded (DRAM)."""
    width: int
    """Bits per physical word (one vector access)."""
    datawidth: int
    """Bits per value (Timeloop's ``datawidth``/word bits)."""
    keep: tuple[str, ...] = ()
    """Tensors the constraints force to be stored here."""
    bypass: tuple[str, ...] = ()
    """Tensors the constraints force to bypass this level."""
    read_bandwidth: float | None = None
    """Values (at ``datawidth``) read per cycle per instance; ``None`` = unlimited."""
    write_bandwidth: float | None = None
    """Values written (fills + updates) per cycle per instance; ``None`` = unlimited."""
    shared_bandwidth: float | None = None
    """Reads + writes per cycle per instance; ``None`` = unlimited."""
    multiple_buffering: float = 1.0
    read_energy: float = 0.0
    """pJ per vector read."""
    write_energy: float = 0.0
    """pJ per vector write (fill)."""
    update_energy: float = 0.0
    """pJ per vector update (read-modify-write of a partial sum)."""
    leak_energy: float = 0.0
    """pJ per instance per cycle."""
    area: float = 0.0
    """um^2 per instance."""
    energy_source: str = ""
    cluster_size: int = 1
    """Instances sharing one physical word (Timeloop's ``cluster_size``): each instance owns
    ``width / cluster_size`` bits of it, and one vector access serves the whole cluster."""

    def __post_init__(self) -> None:
        for attr in ("instances", "mesh_x", "mesh_y", "width", "datawidth", "cluster_size"):
            value = getattr(self, attr)
            if not isinstance(value, int) or value < 1:
                raise JaqmooError(f"level {self.name!r}: {attr} must be a positive integer (got {value!r})")
        if self.depth is not None and (not isinstance(self.depth, int) or self.depth < 1):
            raise JaqmooError(f"level {self.name!r}: depth must be a positive integer (got {self.depth!r})")
        if self.mesh_x * self.mesh_y != self.instances:
            raise JaqmooError(f"level {self.name!r}: meshX*meshY ({self.mesh_x}*{self.mesh_y}) "
                              f"!= instances ({self.instances})")
        if not self.is_dummy and self.width < self.datawidth:
            raise JaqmooError(f"level {self.name!r}: word width {self.width} bits is smaller than "
                              f"its datawidth {self.datawidth} bits")
        if not self.is_dummy and self.cluster_size > 1 and self.width < self.datawidth * self.cluster_size:
            raise JaqmooError(f"level {self.name!r}: cluster_size {self.cluster_size} needs a word of at least "
                              f"{self.datawidth * self.cluster_size} bits (datawidth {self.datawidth} x cluster_size; "
                              f"width is {self.width}); lower cluster_size or widen the word")
        if self.multiple_buffering <= 0:
            raise JaqmooError(f"level {self.name!r}: multiple_buffering must be > 0")
        overlap = set(self.keep) & set(self.bypass)
        if overlap:
            raise JaqmooError(f"level {self.name!r}: tensors {sorted(overlap)} are both kept and bypassed")
        for t in self.keep + self.bypass:
            if t not in TENSOR_INDEX:
                raise JaqmooError(f"level {self.name!r}: unknown tensor {t!r} (use {', '.join(TENSORS)})")

    @property
    def is_dummy(self) -> bool:
        """True for levels that hold nothing and only host a fan-out."""
        return self.cls == "dummy_storage"

    @property
    def instance_word_bits(self) -> int:
        """Bits of a word one instance owns: ``width / cluster_size``."""
        return max(1, self.width // self.cluster_size)

    @property
    def block_size(self) -> int:
        """Values per instance word at the level's own datawidth (Timeloop's block size,
        ``width / (datawidth * cluster_size)``)."""
        return max(1, self.instance_word_bits // self.datawidth)

    @property
    def clusters(self) -> int:
        """Physical word groups: ``instances / cluster_size`` (Timeloop's cluster count, at least 1)."""
        return max(1, self.instances // self.cluster_size)

    @property
    def size(self) -> int | None:
        """Capacity in values at ``datawidth`` (Timeloop's "Size"), or None if unbounded."""
        return None if self.depth is None else self.depth * self.block_size

    def values_per_word(self, bits: int, convention: str = "jaqmoo") -> int:
        """Values of a ``bits``-wide tensor per instance word (``width / cluster_size`` bits, one
        vector access) under ``convention``; 0 when one value does not fit (the tensor cannot be
        stored here). ``jaqmoo``: ``floor(instance word / bits)``; ``fork``: ``block size x
        floor(datawidth / bits)`` (no value straddles a word-bits word)."""
        if convention == "fork":
            return self.block_size * (self.datawidth // bits)
        return self.instance_word_bits // bits

    @property
    def effective_depth(self) -> float | None:
        """Words available to one tile (depth / multiple_buffering)."""
        return None if self.depth is None else self.depth / self.multiple_buffering


@dataclass(frozen=True)
class Compute:
    """The arithmetic units below the innermost storage level."""

    name: str
    cls: str
    instances: int
    mesh_x: int
    mesh_y: int
    energy: float
    """pJ per MAC at the reference operand widths."""
    operand_bits: int = 8
    """Reference operand width (multiplier_width, else datawidth/width) the energy is for."""
    leak_energy: float = 0.0
    area: float = 0.0
    """um^2 per instance."""
    energy_source: str = ""

    def __post_init__(self) -> None:
        for attr in ("instances", "mesh_x", "mesh_y", "operand_bits"):
            value = getattr(self, attr)
            if not isinstance(value, int) or value < 1:
                raise JaqmooError(f"compute {self.name!r}: {attr} must be a positive integer (got {value!r})")
        if self.mesh_x * self.mesh_y != self.instances:
            raise JaqmooError(f"compute {self.name!r}: meshX*meshY != instances")


@dataclass(frozen=True)
class MapConstraint:
    """One Timeloop mapspace constraint, with dims already in jaqmoo names."""

    target: str
    type: str
    """``temporal``, ``spatial`` or ``bypass``."""
    factors: tuple[tuple[str, int], ...] = ()
    """Fixed factors ``((dim, value), ...)``; dims not listed are free."""
    permutation: tuple[str, ...] | None = None
    """Dims innermost first (a prefix constraint when shorter than 8)."""
    split: int | None = None
    """Spatial only: the first ``split`` dims of ``permutation`` go to mesh X, the rest to Y."""
    keep: tuple[str, ...] = ()
    bypass: tuple[str, ...] = ()


@dataclass(frozen=True)
class Accelerator:
    """Storage levels outermost -> innermost, then compute."""

    name: str
    levels: tuple[Level, ...]
    compute: Compute
    constraints: tuple[MapConstraint, ...] = ()
    cycle_seconds: float = 1e-9
    energy_source: str = ""
    """Where the energies came from: ``ERT <file>``, ``built-in <template> table``..."""
    extra: tuple[tuple[str, str], ...] = field(default=())
    """Free-form provenance notes ``((key, value), ...)``."""
    accumulator_bits: int | None = None
    """Bits of a partial sum at every level that holds outputs still being reduced (a
    template's psum width, or ``quantization.accumulator_bits``); None = each level's own
    ``datawidth`` (Timeloop's convention)."""
    convention: str = "jaqmoo"
    """Counting convention of the cost model, one of :data:`CONVENTIONS`. jaqmoo's search uses
    ``jaqmoo``; ``fork`` reproduces the Klhufek et al. Timeloop fork (``jaqmoo timeloop
    check`` picks it from the stats file's dialect)."""

    def __post_init__(self) -> None:
        if self.accumulator_bits is not None and (
                not isinstance(self.accumulator_bits, int) or self.accumulator_bits < 1):
            raise JaqmooError(f"accelerator {self.name!r}: accumulator_bits must be a positive integer "
                              f"(got {self.accumulator_bits!r})")
        if not self.levels:
            raise JaqmooError(f"accelerator {self.name!r} has no storage levels")
        if self.convention not in CONVENTIONS:
            raise JaqmooError(f"accelerator {self.name!r}: convention {self.convention!r} is not one of "
                              f"{', '.join(CONVENTIONS)}")
        names = [lvl.name for lvl in self.levels]
        if len(set(names)) != len(names):
            raise JaqmooError(f"accelerator {self.name!r}: duplicate level names {names}")
        meshes = [(lvl.mesh_x, lvl.mesh_y) for lvl in self.levels] + [(self.compute.mesh_x, self.compute.mesh_y)]
        for (ax, ay), (bx, by), name in zip(meshes, meshes[1:], names + [self.compute.name], strict=False):
            if bx % ax or by % ay:
                raise JaqmooError(f"accelerator {self.name!r}: mesh of {name!r} ({bx}x{by}) is not a "
                                  f"multiple of the mesh above it ({ax}x{ay})")

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    def with_accumulator_bits(self, bits: int | None, what: str = "accumulator_bits") -> Accelerator:
        """This accelerator with partial sums at ``bits`` (None: keep its own setting)."""
        if bits is None:
            return self
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 64:
            raise JaqmooError(f"{what}: partial-sum width must be an integer in 1..64 bits (got {bits!r})")
        return dataclasses.replace(self, accumulator_bits=bits)

    def psum_bits(self, level: int) -> int:
        """Bits of a partial sum stored at ``level`` (:attr:`accumulator_bits` or its datawidth)."""
        return self.accumulator_bits if self.accumulator_bits is not None else self.levels[level].datawidth

    def level_index(self, name: str) -> int:
        for i, lvl in enumerate(self.levels):
            if lvl.name == name:
                return i
        raise JaqmooError(f"accelerator {self.name!r} has no level {name!r} "
                          f"(levels: {', '.join(lvl.name for lvl in self.levels)})")

    def fanout(self, level: int) -> tuple[int, int]:
        """(X, Y) fan-out between ``level`` and the next inner level (or the compute)."""
        upper = self.levels[level]
        lower = self.levels[level + 1] if level + 1 < self.n_levels else self.compute
        return lower.mesh_x // upper.mesh_x, lower.mesh_y // upper.mesh_y

    @property
    def fanouts(self) -> tuple[tuple[int, int], ...]:
        return tuple(self.fanout(i) for i in range(self.n_levels))

    @property
    def area_um2(self) -> float:
        """Total area (every instance of every level plus the compute)."""
        return sum(lvl.area * lvl.instances for lvl in self.levels) + self.compute.area * self.compute.instances

    @property
    def topology_key(self) -> tuple:
        """What :func:`jaqmoo.mapping.model.analyze` depends on (names, meshes, convention)."""
        return tuple((lvl.name, lvl.mesh_x, lvl.mesh_y, lvl.is_dummy) for lvl in self.levels) + (
            (self.compute.name, self.compute.mesh_x, self.compute.mesh_y), self.convention)
