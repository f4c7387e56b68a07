"""Vectorized Timeloop-v0.4-style analytical model, in two stages.

``analyze(layer, accel, batch) -> Accesses``
    Per mapping, level and tensor: tile sizes and reads / fills / updates per instance, in
    values. Depends only on the layer, the mappings and the level/fan-out structure.
``cost(accesses, accel, bits=None) -> Costs``
    Bit-packing into words, capacity feasibility, energy per level / tensor / action (+
    leakage, + MAC energy), cycles with bandwidth throttling, utilization. A few array ops
    on the cached :class:`Accesses`, so the mapper can re-cost for new hardware parameters
    or new bit-widths without re-analyzing.

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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.spec import TENSORS, Accelerator
from jaqmoo.mapping import tensors as tz
from jaqmoo.mapping.mapping import N_DIMS, MappingBatch
from jaqmoo.workload import DIMS, Layer

# Odd 64-bit multipliers that hash a translation vector (one entry per tensor axis) into one
# integer; translations are compared through these hashes (wrap-around arithmetic).
_AXIS_HASH = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                       0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD], dtype=np.uint64).view(np.int64)


@dataclass
class Accesses:
    """Stage-A result: access counts of M mappings (per instance, in values)."""

    layer: Layer
    level_names: tuple[str, ...]
    topology: tuple
    """``Accelerator.topology_key`` of the accelerator analyzed (cost checks it)."""
    macs: int
    """Multiply-accumulates of the layer."""
    tile: np.ndarray
    """int64 [M, L, 3]: values of each tensor in one instance's tile (utilized capacity)."""
    keep: np.ndarray
    """bool [M, L, 3]: tensor stored at the level (dummy levels never, level 0 always)."""
    reads: np.ndarray
    """int64 [M, L, 3]: values read per instance (0 where not kept)."""
    fills: np.ndarray
    """int64 [M, L, 3]: values written into the level from its parent, per instance."""
    updates: np.ndarray
    """int64 [M, L, 3]: partial sums written back from below, per instance (Outputs only)."""
    partition: np.ndarray
    """int64 [M, L, 3]: distinct values an instance ever holds (Timeloop's partition size)."""
    instances: np.ndarray
    """int64 [M, L]: utilized instances of each level."""
    compute_instances: np.ndarray
    """int64 [M]: utilized MAC units."""
    compute_cycles: np.ndarray
    """int64 [M]: temporal iterations = cycles without bandwidth throttling."""
    fanout_ok: np.ndarray
    """bool [M]: spatial factors fit every fan-out (X and Y)."""
    fanout_fail_level: np.ndarray
    """int64 [M]: first level whose fan-out is exceeded, -1 if none."""

    def __len__(self) -> int:
        return int(self.tile.shape[0])


@dataclass
class Costs:
    """Stage-B result for M mappings (energies in pJ)."""

    accesses: Accesses
    bits: tuple[int, int, int] | None
    """(weight, input, output) bits used, or None = each level's own datawidth."""
    values_per_word: np.ndarray
    """int64 [L, 3]: values of each tensor packed in one word of each level (0 = too wide)."""
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
    energy_by_tensor: np.ndarray
    """float64 [M, L, 3]: access energy per level and tensor (all utilized instances)."""
    energy_by_action: np.ndarray
    """float64 [M, L, 3]: access energy per level and action (read, fill, update)."""
    leakage: np.ndarray
    """float64 [M, L]: leakage energy per level."""
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
            bad = [TENSORS[t] for t in range(3)
                   if self.accesses.keep[i, lvl, t] and self.values_per_word[lvl, t] == 0]
            return f"{', '.join(bad)} wider than a word of level {names[lvl]!r}"
        return (f"level {names[lvl]!r} needs {int(self.occupancy_words[i, lvl])} words "
                f"per instance, more than fit")


# ---------------------------------------------------------------------------------------
# Stage A
# ---------------------------------------------------------------------------------------

def analyze(layer: Layer, accel: Accelerator, batch: MappingBatch) -> Accesses:
    """Access counts of every mapping in ``batch`` (see the module docstring)."""
    n_map, n_lvl = len(batch), batch.n_levels
    if n_lvl != accel.n_levels:
        raise JaqmooError(f"mapping batch has {n_lvl} levels but accelerator {accel.name!r} has "
                          f"{accel.n_levels}")
    temporal = batch.temporal
    spatial = batch.spatial_x * batch.spatial_y
    rows = np.arange(n_map)

    # Per-dim extents of each level's tile; ext[:, L] is one MAC (all ones).
    ext = np.ones((n_map, n_lvl + 1, N_DIMS), dtype=np.int64)
    ext[:, :n_lvl] = np.cumprod((temporal * spatial)[:, ::-1], axis=1)[:, ::-1]
    loop_stride = spatial * ext[:, 1:]  # dims covered by one step of level l's temporal loop

    dummy = np.array([lvl.is_dummy for lvl in accel.levels])
    keep = batch.keep & ~dummy[None, :, None]
    keep[:, 0, :] = True

    # Temporal loops of all levels, innermost first: position p = (L-1-l)*8 + rank.
    perm_rev = batch.perm[:, ::-1, :]
    dims_p = perm_rev.reshape(n_map, -1)
    n_p = np.take_along_axis(temporal[:, ::-1, :], perm_rev, axis=2).reshape(n_map, -1)
    stride_p = np.take_along_axis(loop_stride[:, ::-1, :], perm_rev, axis=2).reshape(n_map, -1)
    active = n_p > 1
    suffix = np.ones((n_map, n_p.shape[1] + 1), dtype=np.int64)
    suffix[:, :-1] = np.cumprod(n_p[:, ::-1], axis=1)[:, ::-1]  # prod of n over positions >= p
    weight = (n_p - 1) * suffix[:, 1:]  # visits that step loop p (iteration #1 weight)
    compute_cycles = suffix[:, 0]

    coef = tz.coefficients(layer)
    tile = np.empty((n_map, n_lvl, 3), dtype=np.int64)
    fills_raw = np.empty((n_map, n_lvl, 3), dtype=np.int64)
    distinct = np.empty((n_map, n_lvl, 3), dtype=np.int64)
    partition = np.empty((n_map, n_lvl, 3), dtype=np.int64)
    for t in range(3):
        axis_d = tz.axis_of(t)
        tile[:, :, t] = tz.tile_size(ext[:, :n_lvl], t, layer)
        axis_ext = np.stack(tz.axis_extents(ext[:, :n_lvl], t, layer), axis=-1)  # [M, L, A]
        axis_p = axis_d[dims_p]
        mag_p = coef[t][dims_p] * stride_p
        hash_d = np.where(axis_d >= 0, _AXIS_HASH[np.maximum(axis_d, 0)] * coef[t], 0)
        h = hash_d[dims_p] * stride_p * active
        translation_key = 2 * h - np.cumsum(h, axis=1)  # hash of (move_p - moves of inner loops)

        fills_raw[:, 0, t] = tile[:, 0, t]
        for lvl in range(1, n_lvl):
            p0 = (n_lvl - lvl) * N_DIMS
            act = active[:, p0:]
            first = p0 + np.argmax(act, axis=1)
            key_first = translation_key[rows, first]
            w_eq = np.sum(np.where(translation_key[:, p0:] == key_first[:, None], weight[:, p0:], 0), axis=1)
            ax = axis_p[rows, first]
            span = axis_ext[rows, lvl, np.maximum(ax, 0)]
            size = tile[:, lvl, t]
            overlap = np.where(ax < 0, size, size // span * np.maximum(0, span - mag_p[rows, first]))
            fills_raw[:, lvl, t] = suffix[:, p0] * size - w_eq * overlap

        distinct[:, :, t] = tz.distinct_children(ext[:, 1:], spatial, t, layer)

        # Partition sizes (Timeloop: parent partition * tile / union of sibling tiles).
        partition[:, 0, t] = tile[:, 0, t]
        for lvl in range(1, n_lvl):
            union = tz.tile_size(ext[:, lvl] * spatial[:, lvl - 1], t, layer)
            partition[:, lvl, t] = partition[:, lvl - 1, t] * tile[:, lvl, t] // union

    # Reads served by each level: the kept child's fills (or, through bypassed levels, what the
    # bypassed level would have served), summed over the distinct child tiles of the fan-out.
    served = np.empty((n_map, n_lvl, 3), dtype=np.int64)
    below = np.broadcast_to(compute_cycles[:, None], (n_map, 3))
    for lvl in range(n_lvl - 1, -1, -1):
        served[:, lvl] = distinct[:, lvl] * below
        below = np.where(keep[:, lvl], fills_raw[:, lvl], served[:, lvl])

    rw = np.array(tz.READ_WRITE)
    outermost = np.zeros(n_lvl, dtype=bool)
    outermost[0] = True
    reads = np.where(rw, served - partition, served)
    fills = np.where(outermost[None, :, None], 0, np.where(rw, fills_raw - partition, fills_raw))
    updates = np.where(rw, served, 0)
    reads = np.where(keep, reads, 0)
    fills = np.where(keep, fills, 0)
    updates = np.where(keep, updates, 0)

    fan_total = np.prod(spatial, axis=2)
    instances = np.ones((n_map, n_lvl), dtype=np.int64)
    instances[:, 1:] = np.cumprod(fan_total[:, :-1], axis=1)
    compute_instances = instances[:, -1] * fan_total[:, -1]

    fan_x = np.array([f[0] for f in accel.fanouts])
    fan_y = np.array([f[1] for f in accel.fanouts])
    over = (np.prod(batch.spatial_x, axis=2) > fan_x) | (np.prod(batch.spatial_y, axis=2) > fan_y)
    fanout_ok = ~over.any(axis=1)
    fanout_fail = np.where(fanout_ok, -1, np.argmax(over, axis=1))

    return Accesses(
        layer=layer, level_names=tuple(lvl.name for lvl in accel.levels), topology=accel.topology_key,
        macs=layer.macs, tile=tile, keep=keep, reads=reads, fills=fills, updates=updates,
        partition=partition, instances=instances, compute_instances=compute_instances,
        compute_cycles=compute_cycles, fanout_ok=fanout_ok, fanout_fail_level=fanout_fail,
    )


# ---------------------------------------------------------------------------------------
# Stage B
# ---------------------------------------------------------------------------------------

def values_per_word(accel: Accelerator, bits: tuple[int, int, int] | None) -> np.ndarray:
    """int64 [L, 3]: floor(width / bits) per level and tensor (bits=None: the level's block size).

    0 marks a tensor wider than the level's word (it cannot be stored there).
    """
    out = np.empty((accel.n_levels, 3), dtype=np.int64)
    for i, lvl in enumerate(accel.levels):
        for t in range(3):
            b = lvl.datawidth if bits is None else int(bits[t])
            out[i, t] = lvl.width // b
    return out


def _ceil_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return -(-a // b)


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


def cost(accesses: Accesses, accel: Accelerator, bits: tuple[int, int, int] | None = None) -> Costs:
    """Energy, cycles and feasibility of analyzed mappings on ``accel`` at ``bits``.

    ``bits=None`` stores every tensor at each level's own ``datawidth`` (Timeloop's
    behaviour). Otherwise a word of ``width`` bits packs ``floor(width / b)`` values of a
    ``b``-bit tensor; capacity, access energy and bandwidth are counted in packed words.
    """
    if accesses.topology != accel.topology_key:
        raise JaqmooError(f"accesses were analyzed for a different accelerator topology than "
                          f"{accel.name!r}; run analyze() again")
    bits = check_bits(bits)
    keep = accesses.keep
    vpw = values_per_word(accel, bits)  # [L, 3]
    vpw_safe = np.maximum(vpw, 1)[None]
    width_bad = keep & (vpw[None] == 0)

    tile_words = np.where(keep, _ceil_div(accesses.tile, vpw_safe), 0)
    occupancy = tile_words.sum(axis=2)
    depth = np.array([np.inf if (lvl.depth is None or lvl.is_dummy) else lvl.effective_depth
                      for lvl in accel.levels])
    cap_bad = occupancy > depth[None]
    level_bad = cap_bad | width_bad.any(axis=2)
    level_bad = level_bad | (np.arange(accel.n_levels)[None] == accesses.fanout_fail_level[:, None])
    capacity_ok = ~cap_bad.any(axis=1)
    width_ok = ~width_bad.any(axis=(1, 2))
    feasible = capacity_ok & width_ok & accesses.fanout_ok
    fail_level = np.where(feasible, -1, np.argmax(level_bad, axis=1))

    # Access energy: per action, vector accesses = ceil(values / values per word).
    e_read = np.array([lvl.read_energy for lvl in accel.levels])[None, :, None]
    e_fill = np.array([lvl.write_energy for lvl in accel.levels])[None, :, None]
    e_upd = np.array([lvl.update_energy for lvl in accel.levels])[None, :, None]
    inst = accesses.instances[:, :, None]
    by_read = _ceil_div(accesses.reads, vpw_safe) * e_read * inst
    by_fill = _ceil_div(accesses.fills, vpw_safe) * e_fill * inst
    by_upd = _ceil_div(accesses.updates, vpw_safe) * e_upd * inst
    energy_by_tensor = by_read + by_fill + by_upd
    energy_by_action = np.stack([by_read.sum(axis=2), by_fill.sum(axis=2), by_upd.sum(axis=2)], axis=2)

    # Cycles: each level's bandwidth (values at its datawidth per cycle per instance) may
    # throttle the compute; packed words move block_size / vpw times fewer datawidth values.
    compute_cycles = accesses.compute_cycles.astype(np.float64)
    block = np.array([lvl.block_size for lvl in accel.levels])[None, :, None]
    scale = block / vpw_safe
    read_demand = (accesses.reads * scale).sum(axis=2)
    write_demand = ((accesses.fills + accesses.updates) * scale).sum(axis=2)
    slowdown = np.ones_like(read_demand, dtype=np.float64)
    for i, lvl in enumerate(accel.levels):
        for limit, demand in ((lvl.read_bandwidth, read_demand[:, i]),
                              (lvl.write_bandwidth, write_demand[:, i]),
                              (lvl.shared_bandwidth, read_demand[:, i] + write_demand[:, i])):
            if limit is not None:
                need = demand / compute_cycles
                slowdown[:, i] = np.minimum(slowdown[:, i], np.where(need > limit, limit / np.maximum(need, 1e-300), 1.0))
    level_cycles = np.ceil(compute_cycles[:, None] / slowdown)
    cycles = np.maximum(compute_cycles, level_cycles.max(axis=1)).astype(np.int64)

    leak = np.array([lvl.leak_energy for lvl in accel.levels])[None, :]
    leakage = np.where(keep.any(axis=2), leak * accesses.instances * cycles[:, None], 0.0)
    energy_by_level = energy_by_tensor.sum(axis=2) + leakage

    comp = accel.compute
    if bits is None:
        mac_scale = 1.0
    else:
        mac_scale = (bits[0] * bits[1]) / float(comp.operand_bits * comp.operand_bits)
    mac_energy = np.full(len(accesses), accesses.macs * comp.energy * mac_scale)
    energy = energy_by_level.sum(axis=1) + mac_energy
    utilization = accesses.macs / (cycles * float(comp.instances))

    return Costs(
        accesses=accesses, bits=bits, values_per_word=vpw, tile_words=tile_words,
        occupancy_words=occupancy, capacity_ok=capacity_ok, width_ok=width_ok, feasible=feasible,
        fail_level=fail_level, energy_by_tensor=energy_by_tensor, energy_by_action=energy_by_action,
        leakage=leakage, energy_by_level=energy_by_level, mac_energy=mac_energy, energy=energy,
        cycles=cycles, utilization=utilization,
    )


def evaluate(layer: Layer, accel: Accelerator, batch: MappingBatch,
             bits: tuple[int, int, int] | None = None) -> Costs:
    """``cost(analyze(layer, accel, batch), accel, bits)``."""
    return cost(analyze(layer, accel, batch), accel, bits)


__all__ = ["Accesses", "Costs", "analyze", "cost", "evaluate", "values_per_word", "DIMS"]
