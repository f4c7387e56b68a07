"""Vectorized Timeloop-v0.4-style analytical model, in two stages.

``analyze(layer, accel, batch) -> Accesses``
    Per mapping, level and tensor: tile sizes and reads / fills / updates per instance, in
    values. Depends only on the layer, the mappings and the level/fan-out structure.
``cost(accesses, accel, bits=None) -> Costs``
    Bit-packing into words, capacity feasibility, energy per level / tensor / action (+
    leakage, + MAC energy), cycles with bandwidth throttling, utilization. A few array ops
    on the cached :class:`Accesses`, so the mapper can re-cost for new hardware parameters
    or new bit-widths without re-analyzing.

This module holds the semantics and the constants both backends share: the result types, the
packing rule, the MAC energy scaling and the per-level hardware constants
(:mod:`jaqmoo.mapping.model.geometry` holds the per-layer constants of the analysis); two backends implement both stages beside each
other (``backend=``): :mod:`jaqmoo.mapping.model._numpy`, the vectorized reference (chunks of
mappings, one array pass per step), and :mod:`jaqmoo.mapping.model._numba`, compiled
per-mapping loops (the default when numba imports, several times faster, the same numbers:
``tests/test_model_kernel.py``). ``JAQMOO_NO_NUMBA=1`` forces numpy.

Semantics (what Timeloop 0.4's nest analysis computes, in closed form)
----------------------------------------------------------------------
*Fills* of a level's tile (per instance) come from the temporal loops of all outer levels.
Timeloop simulates each loop by its iteration #0 and one representative iteration #1
(weighted by ``n - 1``) and, between consecutive visits, re-fetches only the new part of the
tile when the tile moved by the same translation as the previous step (sliding-window reuse),
otherwise the whole tile. For the binary-counter visit sequence this yields::

    fills = n_visits * tile - W_eq * overlap(tile, T_first)

with ``T_first`` the translation of the innermost non-trivial loop above the level,
``overlap`` the size of the tile intersected with its copy moved by ``T_first`` (the whole
tile for an irrelevant loop: stationarity), and ``W_eq`` the summed weights
``(n_k - 1) * prod(outer n)`` of the loop steps whose translation equals ``T_first``.

*Reads* of a kept level are the fills of its kept child, summed over the distinct child
tiles of every fan-out in between (identical tiles are multicast, or spatially reduced for
Outputs) and over bypassed levels in between. The innermost level serves the MACs.

*Outputs* (read-modify-write): ``updates`` = what the children write back; ``reads =
updates - partition`` and ``fills = child-visible fills - partition`` (the first update of
each partial sum needs no read and no fill), where ``partition`` is the number of distinct
outputs an instance ever holds. The outermost level has no fills.

*Link transfers* (Timeloop forwards data between neighbouring PEs): when a child's new
delta equals what a mesh neighbour received on the previous visit (the diagonal input reuse
of row-stationary mappings; operands shared by MACs that did not change), the parent does
not send it again; the neighbours' extra reads and fills are charged to the child level.
Modelled for Weights and Inputs, for the innermost X and Y spatial loops, where the PEs'
loop indices match their mesh positions (the mapping fills the X mesh, or uses only one
mesh axis). Partial sums are not forwarded.

*Partial sums* (``Accesses.psum_f``): a level's Outputs are partial sums when a reduction loop
(C, R, S) with a factor > 1 lies outside the tile of the next inner level keeping Outputs (the
MACs if none): the level adds up unfinished sums. Stage B stores and moves them at the
accelerator's accumulator width; a level that only ever receives completed outputs holds
them at the output (next layer's activation) bits. Bit-packing applies to both.

*Clusters and leakage* (Timeloop v0.4): ``cluster_size`` instances share one ``width``-bit
word, so an instance's word is ``width / cluster_size`` bits (block size ``width /
(datawidth * cluster_size)``, capacity ``depth * block size``) and access energy is charged per
utilized cluster; every level leaks in each utilized instance on every cycle, whether or not
the mapping keeps a tensor there.

*Conventions* (``Accelerator.convention``, :data:`jaqmoo.hardware.spec.CONVENTIONS`): the
search uses ``jaqmoo`` (the above, Timeloop v0.4's counting). ``fork`` reproduces the
Klhufek et al. mixed-precision Timeloop fork: it also counts the first fill of every
partial-sum tile (Outputs ``fills`` without the ``- partition``), packs values within the
level's word-bits words (:meth:`~jaqmoo.hardware.spec.Level.values_per_word`), does not
scale the MAC energy with the bits, keeps partial sums at the Outputs bits and charges access
energy per utilized instance rather than per cluster.

Not modelled (none of the reference runs uses them): imperfect factorization, network
(wire) energy from an ERT ``wire`` entry, address-generation and adder energies (0 in
v0.4 ERTs), sparsity.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.spec import TENSORS, Accelerator
from jaqmoo.workload import Layer

BACKENDS: tuple[str, ...] = ("numba", "numpy")
"""Implementations of both stages: ``numba`` (compiled per-mapping loops,
:mod:`jaqmoo.mapping.model._numba`; the default when numba imports) and ``numpy`` (the
vectorized reference, :mod:`jaqmoo.mapping.model._numpy`; the fallback, forced by ``JAQMOO_NO_NUMBA=1``)."""


FIELDS = ("rfu", "tile_f", "partition_f", "keep", "psum_f", "instances_f", "compute_instances_f", "compute_cycles_f",
           "fanout_ok", "fanout_fail_level")


@dataclass
class Accesses:
    """Stage-A result: access counts of M mappings (per instance, in values).

    Counts are stored as float64 arrays holding exact integers (what stage B computes on);
    the int64 views (``reads``, ``fills``, ``updates``, ``tile``...) are built on demand.
    """

    layer: Layer
    level_names: tuple[str, ...]
    topology: tuple
    """``Accelerator.topology_key`` of the accelerator analyzed (cost checks it)."""
    macs: int
    """Multiply-accumulates of the layer."""
    rfu: np.ndarray
    """float64 [M, L, 3 tensors, 3]: reads, fills, updates per instance (0 where not kept).
    Reads: values read out of the level; fills: values written into it from its parent;
    updates: partial sums written back from below (Outputs only)."""
    tile_f: np.ndarray
    """float64 [M, L, 3]: values of each tensor in one instance's tile (utilized capacity)."""
    partition_f: np.ndarray
    """float64 [M, L, 3]: Outputs: distinct outputs an instance ever holds (Timeloop's
    partition size, which sets the first-update elision); 0 for the read-only tensors."""
    keep: np.ndarray
    """bool [M, L, 3]: tensor stored at the level (dummy levels never, level 0 always)."""
    psum_f: np.ndarray
    """float64 [M, L]: 1 where the level's Outputs are partial sums still being reduced (a
    reduction loop lies outside the next inner Outputs level's tile), else 0: completed
    outputs. Partial sums are costed at accumulator bits, completed outputs at the output bits."""
    instances_f: np.ndarray
    """float64 [M, L]: utilized instances of each level."""
    compute_instances_f: np.ndarray
    """float64 [M]: utilized MAC units."""
    compute_cycles_f: np.ndarray
    """float64 [M]: temporal iterations = cycles without bandwidth throttling."""
    fanout_ok: np.ndarray
    """bool [M]: spatial factors fit every fan-out (X and Y)."""
    fanout_fail_level: np.ndarray
    """int64 [M]: first level whose fan-out is exceeded, -1 if none."""

    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.tile_f.shape[0])

    def _int(self, name: str, build) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = build().astype(np.int64)
        return self._cache[name]

    @property
    def reads(self) -> np.ndarray:
        """int64 [M, L, 3]: values read per instance."""
        return self._int("reads", lambda: self.rfu[..., 0])

    @property
    def fills(self) -> np.ndarray:
        """int64 [M, L, 3]: values filled per instance."""
        return self._int("fills", lambda: self.rfu[..., 1])

    @property
    def updates(self) -> np.ndarray:
        """int64 [M, L, 3]: partial-sum updates per instance."""
        return self._int("updates", lambda: self.rfu[..., 2])

    @property
    def tile(self) -> np.ndarray:
        """int64 [M, L, 3]: tile sizes in values."""
        return self._int("tile", lambda: self.tile_f)

    @property
    def partition(self) -> np.ndarray:
        """int64 [M, L, 3]: Outputs' partition sizes (0 for read-only tensors)."""
        return self._int("partition", lambda: self.partition_f)

    @property
    def instances(self) -> np.ndarray:
        """int64 [M, L]: utilized instances per level."""
        return self._int("instances", lambda: self.instances_f)

    @property
    def compute_instances(self) -> np.ndarray:
        """int64 [M]: utilized MAC units."""
        return self._int("compute_instances", lambda: self.compute_instances_f)

    @property
    def compute_cycles(self) -> np.ndarray:
        """int64 [M]: cycles without bandwidth throttling."""
        return self._int("compute_cycles", lambda: self.compute_cycles_f)


@dataclass
class Costs:
    """Stage-B result for M mappings (energies in pJ)."""

    accesses: Accesses
    bits: tuple[int, int, int] | None
    """(weight, input, output) bits used, or None = each level's own datawidth."""
    values_per_word: np.ndarray
    """int64 [L, 4]: values of each tensor packed in one instance word of each level (0 = too
    wide); column 3: partial sums (see :func:`values_per_word`)."""
    tile_words: np.ndarray
    """int64 [M, L, 3]: words each kept tensor's tile needs (ceil(tile / values_per_word))."""
    occupancy_words: np.ndarray
    """int64 [M, L]: words used per instance (sum over kept tensors)."""
    capacity_ok: np.ndarray
    """bool [M]: every level's occupancy fits its effective depth."""
    width_ok: np.ndarray
    """bool [M]: no kept tensor is wider than a level's word."""
    feasible: np.ndarray
    """bool [M]: capacity, width and fan-out all fine."""
    fail_level: np.ndarray
    """int64 [M]: first level that makes the mapping infeasible (-1 = feasible)."""
    depth_words: np.ndarray
    """float64 [L]: words one tile may use per instance (depth / multiple buffering; inf = unbounded)."""
    energy_by_tensor: np.ndarray
    """float64 [M, L, 3]: access energy per level and tensor (all utilized clusters)."""
    energy_by_action: np.ndarray
    """float64 [M, L, 3]: access energy per level and action (read, fill, update)."""
    leakage: np.ndarray
    """float64 [M, L]: leakage energy per level (every level, kept tensors or not)."""
    energy_by_level: np.ndarray
    """float64 [M, L]: access + leakage energy per level."""
    mac_energy: np.ndarray
    """float64 [M]: compute energy."""
    energy: np.ndarray
    """float64 [M]: total energy."""
    cycles: np.ndarray
    """int64 [M]: max(compute cycles, bandwidth-throttled cycles of every level)."""
    utilization: np.ndarray
    """float64 [M]: MACs / (cycles * MAC units)."""

    def __len__(self) -> int:
        return int(self.energy.shape[0])

    @property
    def psum_energy(self) -> np.ndarray:
        """float64 [M, L]: access energy of partial sums (Outputs at levels still reducing them)."""
        return self.energy_by_tensor[:, :, 2] * self.accesses.psum_f

    @property
    def edp(self) -> np.ndarray:
        """float64 [M]: energy (pJ) x cycles."""
        return self.energy * self.cycles

    def reason(self, i: int, level_names: tuple[str, ...] | None = None) -> str:
        """Why mapping ``i`` is infeasible ('' if it is feasible)."""
        if self.feasible[i]:
            return ""
        names = level_names or self.accesses.level_names
        lvl = int(self.fail_level[i])
        if not self.accesses.fanout_ok[i]:
            return f"spatial factors exceed the fan-out below level {names[lvl]!r}"
        if not self.width_ok[i]:
            out_col = PSUM if self.accesses.psum_f[i, lvl] else 2
            bad = [TENSORS[t] + (" (partial sums)" if t == 2 and out_col == PSUM else "") for t in range(3)
                   if self.accesses.keep[i, lvl, t] and self.values_per_word[lvl, out_col if t == 2 else t] == 0]
            return f"{', '.join(bad)} wider than a word of level {names[lvl]!r}"
        return (f"level {names[lvl]!r} needs {int(self.occupancy_words[i, lvl])} words per instance "
                f"but only {self.depth_words[lvl]:g} fit")



PSUM = 3
"""Column of :func:`values_per_word` for partial sums (Outputs at a level still reducing them)."""


def values_per_word(accel: Accelerator, bits: tuple[int, int, int] | None) -> np.ndarray:
    """int64 [L, 4]: values packed in one instance word (``width / cluster_size`` bits) per level.

    Columns: Weights, Inputs and completed Outputs at ``bits``, then partial sums at the
    accelerator's accumulator bits (:meth:`~jaqmoo.hardware.spec.Accelerator.psum_bits`).
    ``bits=None``: every column at the level's own datawidth (its block size, Timeloop's
    convention). 0 marks a tensor wider than the word (it cannot be stored there); dummy
    levels, which store nothing, get 1.
    """
    out = np.ones((accel.n_levels, 4), dtype=np.int64)
    for i, lvl in enumerate(accel.levels):
        if lvl.is_dummy:  # stores nothing
            continue
        for t in range(4):
            if bits is None:
                b = lvl.datawidth
            elif t == PSUM:  # the fork keeps partial sums at the Outputs bits
                b = int(bits[2]) if accel.convention == "fork" else accel.psum_bits(i)
            else:
                b = int(bits[t])
            out[i, t] = lvl.values_per_word(b, accel.convention)
    return out


def mac_energy_scale(accel: Accelerator, bits: tuple[int, int, int] | None) -> float:
    """MAC energy relative to the compute's reference operands: ``b_w * b_a / operand_bits^2``
    (a bit-flexible MAC); 1 at the datawidths and under the fork's convention."""
    if bits is None or accel.convention == "fork":
        return 1.0
    return (bits[0] * bits[1]) / float(accel.compute.operand_bits ** 2)


def check_bits(bits: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
    if bits is None:
        return None
    try:
        w, i, o = (int(b) for b in bits)
    except (TypeError, ValueError) as exc:
        raise JaqmooError(f"bits must be (weight, input, output) integers (got {bits!r})") from exc
    if min(w, i, o) < 1:
        raise JaqmooError(f"bits must be positive (got {bits!r})")
    return (w, i, o)


@functools.lru_cache(maxsize=256)
def hardware_constants(accel: Accelerator) -> dict[str, np.ndarray]:
    """Per-level constants of ``accel`` as arrays (cached: accelerators are hashable)."""
    levels = accel.levels
    return {
        "depth": np.array([np.inf if (lvl.depth is None or lvl.is_dummy) else lvl.effective_depth
                           for lvl in levels], dtype=np.float64),
        "action_energy": np.array([[lvl.read_energy, lvl.write_energy, lvl.update_energy] for lvl in levels],
                                  dtype=np.float64),
        "leak": np.array([lvl.leak_energy for lvl in levels], dtype=np.float64),
        # the fork charges every utilized instance (v0.4: one access per utilized cluster)
        "clusters": np.array([float(lvl.instances if accel.convention == "fork" else lvl.clusters) for lvl in levels]),
        "block": np.array([float(lvl.block_size) for lvl in levels]),
        "limits": tuple((i, lvl.read_bandwidth, lvl.write_bandwidth, lvl.shared_bandwidth)
                        for i, lvl in enumerate(levels)
                        if (lvl.read_bandwidth, lvl.write_bandwidth, lvl.shared_bandwidth) != (None,) * 3),
        "limit_array": np.array([[np.nan if bw is None else bw
                                  for bw in (lvl.read_bandwidth, lvl.write_bandwidth, lvl.shared_bandwidth)]
                                 for lvl in levels], dtype=np.float64).reshape(len(levels), 3),
    }



def empty_fields(n_map: int, n_lvl: int) -> dict[str, np.ndarray]:
    """Uninitialized stage-A output arrays (the :class:`Accesses` array fields)."""
    return {
        "rfu": np.empty((n_map, n_lvl, 3, 3)), "tile_f": np.empty((n_map, n_lvl, 3)),
        "partition_f": np.empty((n_map, n_lvl, 3)), "keep": np.empty((n_map, n_lvl, 3), dtype=bool),
        "psum_f": np.empty((n_map, n_lvl)), "instances_f": np.empty((n_map, n_lvl)),
        "compute_instances_f": np.empty(n_map), "compute_cycles_f": np.empty(n_map),
        "fanout_ok": np.empty(n_map, dtype=bool), "fanout_fail_level": np.empty(n_map, dtype=np.int64),
    }
