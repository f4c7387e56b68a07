"""The numpy backend of the two-stage model: the vectorized reference.

Stage A (:func:`analyze_chunk`) works on [level, dim, mapping] arrays with the mapping axis
last, a chunk of :data:`CHUNK` mappings at a time, one array pass per step; stage B
(:func:`cost_chunk`) on :data:`COST_CHUNK` mappings at a time. The semantics are described in
:mod:`jaqmoo.mapping.model`; :mod:`jaqmoo.mapping.model._numba` computes the same numbers.
"""

from __future__ import annotations

import numpy as np

from jaqmoo.hardware.spec import Accelerator
from jaqmoo.mapping import tensors as tz
from jaqmoo.mapping.mapping import N_DIMS, MappingBatch
from jaqmoo.mapping.model.geometry import Geometry, LiveDims
from jaqmoo.mapping.model.semantics import PSUM, Accesses, hardware_constants

_RANK_BITS = (1 << np.arange(N_DIMS)).astype(np.uint8)
_POPCOUNT = np.array([bin(b).count("1") for b in range(256)])
_NTH_BIT = np.array([[([r for r in range(N_DIMS) if b >> r & 1] + [N_DIMS] * N_DIMS)[i] for b in range(256)]
                     for i in range(N_DIMS)])
"""_NTH_BIT[i][b]: the i-th lowest set bit of b (8 if b has fewer): the i-th non-trivial loop."""
_LOWEST_BIT = np.where(_NTH_BIT[0] < N_DIMS, _NTH_BIT[0], 0)
"""_LOWEST_BIT[b]: the lowest set bit of b (0 if none, as np.argmax of an all-False row)."""

CHUNK = 8192
"""Mappings analyzed per chunk: keeps the working arrays in cache (several times faster)."""
COST_CHUNK = 4096
"""Mappings costed per chunk (stage B's arrays are wider per mapping)."""


def analyze_chunk(g: Geometry, batch: MappingBatch, lo: int, hi: int) -> dict[str, np.ndarray]:
    """Analyze mappings ``lo:hi``; works on [level, dim, mapping] arrays (mapping axis last)."""
    layer, n_lvl = g.layer, g.n_lvl
    m = hi - lo
    n_live = g.n_live

    def load(a: np.ndarray) -> np.ndarray:  # [M, L, 8] -> float [L, live dims + ones row, m]
        out = np.empty((n_lvl, n_live + 1, m))
        out[:, n_live] = 1.0
        src = a[lo:hi].transpose(1, 2, 0)
        for j, d in enumerate(g.live):  # one dim at a time: a strided gather per row is cache-friendlier
            out[:, j] = src[:, d]
        return out

    # Counts are float64 holding exact integers (< 2**53): vectorized multiplies are faster.
    temporal, sx, sy = load(batch.temporal), load(batch.spatial_x), load(batch.spatial_y)
    spatial = sx * sy
    # [L, rank (+1), m]: live dims, innermost first, plus a padding rank holding the ones row
    # (remapped and transposed as int8, then widened: an int64 transpose is slow)
    perm8 = np.empty((n_lvl, N_DIMS + 1, m), dtype=np.int8)
    perm8[:, :N_DIMS] = g.remap8[batch.perm[lo:hi]].transpose(1, 2, 0)
    perm8[:, N_DIMS] = n_live
    perm = perm8.astype(np.int64)
    keep_out = batch.keep[lo:hi] & ~g.dummy[None, :, None]  # [m, L, 3] (the output layout)
    keep_out[:, 0] = True
    keep = np.ascontiguousarray(keep_out.transpose(1, 2, 0))  # [L, 3, m]; rows contiguous
    col = np.arange(m)

    ext = np.empty((n_lvl + 1, n_live + 1, m))  # per-dim tile extents; ext[L] = one MAC
    ext[n_lvl] = 1
    for lvl in range(n_lvl - 1, -1, -1):
        np.multiply(ext[lvl + 1], temporal[lvl], out=ext[lvl])
        ext[lvl] *= spatial[lvl]
    ext_dm = LiveDims(ext.swapaxes(0, 1), g.remap)  # ext_dm[d] -> [L+1, m]

    # Temporal loops with a factor > 1, innermost first: per level, its non-trivial loops in
    # loop order (picked through a set-bit table), padded with trivial loops (n = 1).
    stride_all = spatial * ext[1:]  # [L, dims, m]: dims one temporal step of a level covers
    blocks_dim, blocks_lvl = [], []
    nth_flat = _NTH_BIT * m  # flat offsets of the i-th non-trivial rank's row
    first_pos = np.zeros(n_lvl + 1, dtype=np.int64)  # first_pos[i]: first position above level i
    has_loops = (temporal > 1).any(axis=(1, 2))
    for lvl in range(n_lvl - 1, -1, -1):
        first_pos[lvl + 1] = len(blocks_dim)
        if not has_loops[lvl]:
            continue
        n_rank = np.take(temporal[lvl], perm[lvl, :N_DIMS] * m + col)
        # bit r set: rank r is non-trivial (an OR-reduce is much faster than np.packbits here)
        bits = np.bitwise_or.reduce((n_rank > 1).view(np.uint8) * _RANK_BITS[:, None], axis=0)
        for i in range(int(_POPCOUNT[bits].max())):
            # (gathered from the int8 copy: a smaller source, fewer cache misses)
            blocks_dim.append(np.take(perm8[lvl], nth_flat[i][bits] + col))  # rank 8: padding
            blocks_lvl.append(lvl)
    n_pos = len(blocks_dim)
    first_pos[0] = n_pos
    if n_pos:
        dims_p = np.stack(blocks_dim).astype(np.int64)
        flat_p = (np.array(blocks_lvl)[:, None] * (n_live + 1) + dims_p) * m + col
        n_p, stride_p = np.take(temporal, flat_p), np.take(stride_all, flat_p)
    else:
        dims_p = np.zeros((0, m), dtype=np.int64)
        n_p = stride_p = np.zeros((0, m))
    active = n_p > 1
    suffix = np.ones((n_pos + 1, m))  # prod of n over positions >= p
    for p in range(n_pos - 1, -1, -1):  # row loop: numpy's axis-0 accumulate is slow
        np.multiply(suffix[p + 1], n_p[p], out=suffix[p])
    weight = (n_p - 1) * suffix[1:]  # Timeloop's iteration-#1 weights
    # next_active[p]: the first non-trivial position >= p (n_pos if none); a row loop is
    # much faster than argmax over axis 0 (which copies the array transposed)
    next_active = np.empty((n_pos + 1, m), dtype=np.int64)
    next_active[n_pos] = n_pos
    for p in range(n_pos - 1, -1, -1):
        next_active[p] = np.where(active[p], p, next_active[p + 1])
    first_at = {}  # p0 -> position of the innermost non-trivial loop from p0 on (p0 if none)
    for p0 in set(int(x) for x in first_pos) | {0}:
        if p0 < n_pos:
            row = next_active[p0]
            first_at[p0] = np.where(row < n_pos, row, p0)
    first = {}  # level -> flat index of the innermost non-trivial loop above it
    for i in range(1, n_lvl):
        p0 = first_pos[i]
        if p0 < n_pos:
            first[i] = first_at[p0] * m + col
    dim_first = {i: np.take(dims_p, f) for i, f in first.items()}
    stride_first = {i: np.take(stride_p, f) for i, f in first.items()}

    tile = np.empty((n_lvl, 3, m))
    fills_raw = np.empty((n_lvl, 3, m))
    distinct = np.ones((n_lvl, 3, m))
    fan_levels = np.flatnonzero((spatial > 1).any(axis=(1, 2))).tolist()  # levels with a fan-out
    kept_anywhere = keep.any(axis=2)  # [L, 3]: fills are only needed where some mapping stores
    stride_int = stride_p.astype(np.int64) * active
    link_key: dict[int, np.ndarray] = {}
    link_cum: dict[int, np.ndarray] = {}
    link_overlap: dict[int, dict[int, np.ndarray]] = {tz.W_T: {}, tz.I_T: {}}
    for t in range(3):
        axis_ext = tz.axis_extents_dm(ext_dm, t, layer)  # A x [L+1, m]
        size = axis_ext[0]
        for a in axis_ext[1:]:
            size = size * a
        tile[:, t] = size[:n_lvl]
        # [A, L+1, m]: flat index (axis * (L+1) + level) * m + col; only needed where an axis
        # spans two dims (elsewhere a dim's axis extent is the dim's own extent)
        axis_flat = np.stack(axis_ext) if g.pair_axes[t] else None
        h = np.take(g.hash_l[t], dims_p) * stride_int
        key = 2 * h  # becomes hash of (this loop's move - moves of all inner loops)
        inner = np.zeros(m, dtype=np.int64)
        cum = np.empty_like(h) if t != tz.O_T else None
        for p in range(n_pos):
            inner += h[p]
            key[p] -= inner
            if cum is not None:
                cum[p] = inner
        if t != tz.O_T:
            link_key[t], link_cum[t] = key, cum
        fills_raw[0, t] = tile[0, t]
        for i in range(1, n_lvl):
            if i not in first or not kept_anywhere[i, t]:  # no loops above / nobody stores it
                fills_raw[i, t] = tile[i, t]
                continue
            p0 = first_pos[i]
            eq = key[p0:] == np.take(key, first[i])
            w_eq = (eq * weight[p0:]).sum(axis=0)
            dim_f = dim_first[i]
            ax = np.take(g.axis_l[t], dim_f)
            if axis_flat is None:
                span = np.take(ext[i], dim_f * m + col)
            else:
                span = np.take(axis_flat, (np.maximum(ax, 0) * (n_lvl + 1) + i) * m + col)
            move = np.take(g.coef_l[t], dim_f) * stride_first[i]
            overlap = np.where(ax < 0, tile[i, t], tile[i, t] / span * np.maximum(0, span - move))
            if t != tz.O_T:
                link_overlap[t][i] = overlap
            fills_raw[i, t] = suffix[p0] * tile[i, t] - w_eq * overlap
        for lvl in fan_levels:
            distinct[lvl, t] = tz.distinct_children_dm(LiveDims(ext[lvl + 1], g.remap),
                                                       LiveDims(spatial[lvl], g.remap), t, layer)

    # Partition sizes of the Outputs (Timeloop: parent partition * tile / union of the sibling
    # tiles); they set the first-update elision. Read-only tensors do not need them.
    o = tz.O_T
    partition = np.empty((n_lvl, m))  # of the Outputs (0 for the read-only tensors)
    partition[0] = tile[0, o]
    for i in range(1, n_lvl):
        if i - 1 in fan_levels:
            union = tz.tile_size_dm(LiveDims(ext[i] * spatial[i - 1], g.remap), o, layer)
            partition[i] = np.floor(partition[i - 1] * tile[i, o] / union)
        else:  # no fan-out above: the union of sibling tiles is the tile itself
            partition[i] = partition[i - 1]

    # Reads served by each level: the kept child's fills (through bypassed levels: what the
    # bypassed level would have served), summed over the distinct child tiles of the fan-out.
    compute_cycles = suffix[0]
    links = {}
    for t in (tz.W_T, tz.I_T):
        for lvl, value in _link_transfers(
                g, t, batch, lo, hi, sx, sy, spatial, ext, tile, distinct, keep, fan_levels, link_key[t],
                link_cum[t], link_overlap[t], weight, active, n_p, first_pos, first_at).items():
            links[lvl, t] = value
    served = np.empty((n_lvl, 3, m))
    below = np.broadcast_to(compute_cycles, (3, m))
    for lvl in range(n_lvl - 1, -1, -1):
        served[lvl] = distinct[lvl] * below
        for t in (tz.W_T, tz.I_T):  # data a neighbour forwarded is not read from this level
            if (lvl, t) in links:
                served[lvl, t] -= links[lvl, t][0]
        below = np.where(keep[lvl], fills_raw[lvl], served[lvl])

    reads = np.where(keep, served, 0)
    reads[:, o] = np.where(keep[:, o], served[:, o] - partition, 0)
    fills = np.where(keep, fills_raw, 0)
    fills[:, o] = np.where(keep[:, o], fills_raw[:, o] - partition, 0)
    fills[0] = 0
    updates = np.where(keep[:, o], served[:, o], 0)  # [L, m]: only the Outputs are updated

    fan_x, fan_y = _dim_product(sx), _dim_product(sy)  # [L, m]
    fan_total = fan_x * fan_y
    instances = np.ones((n_lvl, m))
    for lvl in range(1, n_lvl):
        instances[lvl] = instances[lvl - 1] * fan_total[lvl - 1]
    for (lvl, t), (_, transfers, share_cut) in links.items():
        child = lvl + 1
        if child < n_lvl:  # Timeloop charges the forwarding neighbours' reads and fills
            ok = keep[child, t]
            peer = transfers / instances[child]
            reads[child, t] += np.where(ok, np.round(peer), 0)
            fills[child, t] = np.where(ok, np.floor(fills[child, t] - share_cut + peer + 1e-9), 0)
    over = (fan_x > g.fan_x) | (fan_y > g.fan_y)  # [L, m]
    fanout_ok = ~over.any(axis=0)

    def out(a: np.ndarray) -> np.ndarray:  # [L, 3, m] -> contiguous [m, L, 3]
        return np.ascontiguousarray(a.transpose(2, 0, 1))

    rfu = np.empty((m, n_lvl, 3, 3))
    rfu[:, :, :, 0] = reads.transpose(2, 0, 1)
    rfu[:, :, :, 1] = fills.transpose(2, 0, 1)
    rfu[:, :, :o, 2] = 0
    rfu[:, :, o, 2] = updates.T
    partition_f = np.zeros((m, n_lvl, 3))
    partition_f[:, :, o] = partition.T
    return {
        "rfu": rfu, "tile_f": out(tile), "partition_f": partition_f,
        "keep": keep_out, "psum_f": _psum_levels(g, temporal, spatial, keep[:, o]),
        "instances_f": np.ascontiguousarray(instances.T),
        "compute_instances_f": instances[-1] * fan_total[-1], "compute_cycles_f": compute_cycles,
        "fanout_ok": fanout_ok, "fanout_fail_level": np.where(fanout_ok, -1, np.argmax(over, axis=0)),
    }


def _psum_levels(g: Geometry, temporal: np.ndarray, spatial: np.ndarray, keep_o: np.ndarray) -> np.ndarray:
    """float64 [m, L]: 1 where level ``l`` holds partial sums (see :attr:`Accesses.psum_f`).

    A level accumulates when a reduction loop (C, R, S: dims that do not index Outputs) with a
    factor > 1 sits outside the tile of the next inner level that keeps Outputs (the MACs if
    none): such a loop makes the child hand up unfinished sums, or makes the level add up
    the products of the MACs below it.
    """
    n_lvl, m = temporal.shape[0], temporal.shape[2]
    red = np.ones((n_lvl, m))
    for d in np.flatnonzero(g.coef[tz.O_T] == 0):
        red *= temporal[:, g.remap[d]] * spatial[:, g.remap[d]]
    outside = np.ones((n_lvl + 1, m))  # outside[k]: reduction factor of the loops above level k
    np.cumprod(red, axis=0, out=outside[1:])
    psum = np.empty((n_lvl, m))
    child = np.full(m, n_lvl)
    for lvl in range(n_lvl - 1, -1, -1):
        psum[lvl] = np.take_along_axis(outside, child[None, :], axis=0)[0] > 1
        child = np.where(keep_o[lvl], lvl, child)
    return np.ascontiguousarray(psum.T)


def _link_transfers(g, i_t, batch, lo, hi, sx, sy, spatial, ext, tile, distinct, keep, fan_levels,
                    key, cum, overlap, weight, active, n_p, first_pos, first_at) -> dict[int, tuple]:
    """Timeloop's inter-PE link transfers of a read-only tensor ``i_t``, per fan-out level.

    When, between consecutive visits, the child tiles of a fan-out move by exactly the
    offset between two neighbouring PEs (a spatial R/S fan-out meeting a temporal P/Q step
    of one input row, Eyeriss' diagonal reuse; or no move at all for PEs/MACs sharing an
    operand), a PE receives its new data from its neighbour instead of the parent. Timeloop uses that when it lowers the parent's accesses;
    the neighbour's extra reads and fills are charged to the child level (divided, as
    Timeloop does, by the child's total utilized instances). Only the innermost X and Y
    spatial loops form neighbours (no carries), and only visits whose deltas have equal
    shapes match. Returns ``{level: (parent_saving, transfers, child_share_cut)}``, per
    parent instance.
    """
    n_lvl = g.n_lvl
    m = hi - lo
    col = np.arange(m)
    n_pos = weight.shape[0]
    if n_pos == 0:
        return {}
    out = {}
    for lvl in fan_levels:
        child = lvl + 1
        if child < n_lvl and not keep[child, i_t].any():
            continue  # Timeloop discards link transfers into a bypassing child
        p0 = first_pos[child] if child < n_lvl else 0
        if p0 >= n_pos:
            continue
        first = first_at[p0]
        flat_first = first * m + col
        # hash of the moves of all loops below the child: translations are relative to it
        base = np.take(cum, (p0 - 1) * m + col) if p0 > 0 else np.zeros(m, dtype=np.int64)
        t1 = np.take(key, flat_first) + base  # translation hash of the innermost step
        if child < n_lvl:
            size, ovl = tile[child, i_t], overlap.get(child, tile[child, i_t])
        else:  # MACs: every visit needs its full operand point, never a delta
            size = np.ones(m)
            ovl = np.zeros(m)
        relevant = (ovl < size) & (np.take(active, flat_first))
        if child < n_lvl:
            relevant &= keep[child, i_t]  # discarded when the child bypasses the inputs
        if not relevant.any():
            continue
        case_a = relevant & (ovl == 0)
        case_b = relevant & (ovl > 0)
        w_tail = weight[p0:]
        trans = key[p0:] + base  # translation hash of every step above the child
        same_as_first = (key[p0:] == np.take(key, flat_first)) & (np.arange(p0, n_pos)[:, None] > first)
        w_b = np.take(n_p, flat_first) * (same_as_first * w_tail).sum(axis=0)
        delta = np.where(case_a, size, size - ovl)
        if batch.spatial_perm is None:  # the same order for every mapping: [8 ranks] live dims
            order_rows, order = g.remap[g.spatial_order[lvl]], None
        else:  # [8 ranks, m] live dims, innermost first
            order_rows, order = None, g.remap[batch.spatial_perm[lo:hi, lvl, :]].T
        child_ext = ext[lvl + 1]
        saving = np.zeros(m)
        transfers = np.zeros(m)
        share_cut = np.zeros(m)
        n_children = spatial[lvl].prod(axis=0)
        fx = _dim_product(sx[lvl:lvl + 1])[0]
        fy = _dim_product(sy[lvl:lvl + 1])[0]
        h_size, _ = g.fanouts[lvl]
        seen: list[tuple[np.ndarray, np.ndarray]] = []  # (hash, used) of directions counted
        for axis_fan, valid in ((sx[lvl], (fy == 1) | (fx == h_size)), (sy[lvl], fx == h_size)):
            # spatial factor > 1 per rank: [8 ranks, m]
            split = (axis_fan[order_rows] if order is None else np.take(axis_fan, order * m + col)) > 1
            ok = split.any(axis=0) & valid
            if not ok.any():
                continue
            # innermost rank with a split (0 if none, like argmax; the set-bit table is faster)
            rank = _LOWEST_BIT[np.bitwise_or.reduce(split.view(np.uint8) * _RANK_BITS[:, None], axis=0)]
            # innermost spatial dim on this mesh axis
            d = order_rows[rank] if order is None else np.take(order, rank * m + col)
            n_d = np.take(axis_fan, d * m + col)
            step = np.take(g.hash_l[i_t], d) * np.take(child_ext, d * m + col).astype(np.int64)
            weights = []
            for sign in (1, -1):  # visits whose translation is one neighbour step
                h = sign * step
                w_a = ((trans == h) * w_tail).sum(axis=0)
                weights.append((h, np.where(case_a, w_a, np.where(case_b & (t1 == h), w_b, 0.0)) * ok))
            if not any(w.any() for _, w in weights):
                continue
            fan_wo = spatial[lvl].copy()
            fan_wo[d, col] = fan_wo[d, col] / n_d
            # A step along an input-relevant dim serves every PE but the last of the chain;
            # along an irrelevant dim (identical tiles) every PE has a neighbour with its data.
            still = tz.distinct_children_dm(LiveDims(child_ext, g.remap), LiveDims(fan_wo, g.remap), i_t, g.layer)
            unserved = np.where(step == 0, 0.0, still)
            use = ok & (unserved < distinct[lvl, i_t])
            served_n = np.where(step == 0, n_children, n_children * (n_d - 1) / n_d)
            for h, w in weights:
                fresh = np.ones(m, dtype=bool)
                for prev_h, prev_used in seen:
                    fresh &= ~(prev_used & (prev_h == h))
                w = w * (use & fresh)
                seen.append((h, use))
                saving += w * delta * (distinct[lvl, i_t] - unserved)
                transfers += w * delta * served_n
                share_cut += w * delta * served_n / n_children
        if transfers.any():
            out[lvl] = (saving, transfers, share_cut)
    return out


def _dim_product(a: np.ndarray) -> np.ndarray:
    """Product over the dim axis of a [L, dims, m] array (row loop: faster than a reduce)."""
    out = a[:, 0].copy()
    for d in range(1, a.shape[1]):
        out *= a[:, d]
    return out



def cost_chunk(accesses: Accesses, accel: Accelerator, vpw: np.ndarray, sl: slice, out: dict) -> None:
    """Stage B for the mappings ``sl``, written into the ``out`` arrays."""
    hw = hardware_constants(accel)
    keep = accesses.keep[sl]
    vpw_f = np.maximum(vpw, 1).astype(np.float64)  # [L, 4]
    packed = bool((vpw_f > 1).any())
    psum = accesses.psum_f[sl] > 0  # [m, L]
    if (vpw_f[:, 2] != vpw_f[:, PSUM]).any():  # per mapping: Outputs at psum or output bits
        vpw_t = np.repeat(vpw_f[None, :, :3], len(psum), axis=0)  # [m, L, 3]
        vpw_t[:, :, 2] = np.where(psum, vpw_f[:, PSUM], vpw_f[:, 2])
    else:
        vpw_t = vpw_f[:, :3]  # [L, 3], broadcast over the mappings

    # Capacity: words per kept tensor, summed per level, against the effective depth.
    tile_words = out["tile_words"][sl]
    if packed:
        np.divide(accesses.tile_f[sl], vpw_t, out=tile_words)
        np.ceil(tile_words, out=tile_words)
    else:
        tile_words[...] = accesses.tile_f[sl]
    tile_words *= keep
    occupancy = out["occupancy_words"][sl]
    np.add(tile_words[:, :, 0], tile_words[:, :, 1], out=occupancy)
    occupancy += tile_words[:, :, 2]
    too_wide = vpw == 0
    if too_wide.any():
        out_wide = np.where(psum, too_wide[:, PSUM], too_wide[:, 2])
        width_bad = (keep[:, :, 0] & too_wide[:, 0]) | (keep[:, :, 1] & too_wide[:, 1]) | (keep[:, :, 2] & out_wide)
    else:
        width_bad = np.zeros(occupancy.shape, dtype=bool)
    cap_bad = occupancy > hw["depth"]
    capacity_ok = ~cap_bad.any(axis=1)
    width_ok = ~width_bad.any(axis=1)
    feasible = capacity_ok & width_ok & accesses.fanout_ok[sl]
    out["capacity_ok"][sl], out["width_ok"][sl], out["feasible"][sl] = capacity_ok, width_ok, feasible
    if not feasible.all():
        level_bad = cap_bad | width_bad | (np.arange(len(vpw)) == accesses.fanout_fail_level[sl][:, None])
        out["fail_level"][sl] = np.where(feasible, -1, np.argmax(level_bad, axis=1))
    else:
        out["fail_level"][sl] = -1

    # Access energy: vector accesses per action = ceil(values / values per word), one per
    # utilized cluster.
    rfu = accesses.rfu[sl]  # [m, L, 3 tensors, 3 actions]
    if packed:
        words = np.divide(rfu, vpw_t[..., None])
        np.ceil(words, out=words)
    else:
        words = rfu
    energy = hw["action_energy"]  # [L, 3 actions]
    inst = accesses.instances_f[sl]  # [m, L]
    clusters = np.minimum(inst, hw["clusters"])[:, :, None]
    by_tensor = out["energy_by_tensor"][sl]
    np.multiply(words[..., 0], energy[:, 0:1], out=by_tensor)
    by_tensor += words[..., 1] * energy[:, 1:2]
    by_tensor += words[..., 2] * energy[:, 2:3]
    by_tensor *= clusters
    by_action = out["energy_by_action"][sl]
    np.add(words[:, :, 0], words[:, :, 1], out=by_action)
    by_action += words[:, :, 2]
    by_action *= energy
    by_action *= clusters

    # Cycles: a level's bandwidth (datawidth values per cycle per instance) may throttle the
    # compute; packed words move block_size / vpw times fewer datawidth values.
    compute_cycles = accesses.compute_cycles_f[sl]
    cycles = compute_cycles
    if hw["limits"]:
        scale = hw["block"][:, None] / vpw_t  # [L, 3] or [m, L, 3]
        for i, read_bw, write_bw, shared_bw in hw["limits"]:
            lvl_rfu = rfu[:, i].reshape(-1, 9).T.copy().reshape(3, 3, -1)  # [3 tensors, 3 actions, m]
            reads = sum(lvl_rfu[t, 0] * scale[..., i, t] for t in range(3)) / compute_cycles
            writes = sum((lvl_rfu[t, 1] + lvl_rfu[t, 2]) * scale[..., i, t] for t in range(3)) / compute_cycles
            slowdown = np.ones(len(compute_cycles))
            for limit, need in ((read_bw, reads), (write_bw, writes), (shared_bw, reads + writes)):
                if limit is not None:
                    slowdown = np.minimum(slowdown, np.where(need > limit, limit / np.maximum(need, 1e-300), 1.0))
            cycles = np.maximum(cycles, np.ceil(compute_cycles / slowdown))
    out["cycles"][sl] = cycles

    leakage = out["leakage"][sl]
    np.multiply(hw["leak"] * inst, cycles[:, None], out=leakage)
    by_level = out["energy_by_level"][sl]
    np.add(by_tensor[:, :, 0], by_tensor[:, :, 1], out=by_level)
    by_level += by_tensor[:, :, 2]
    by_level += leakage
    by_level.sum(axis=1, out=out["energy"][sl])
