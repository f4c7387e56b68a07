"""Compiled (numba) backend of the two-stage model in :mod:`jaqmoo.mapping.model`.

The numpy backend beside it (:mod:`jaqmoo.mapping.model._numpy`) is the reference: it works on
[level, dim, mapping] arrays with the mapping axis last, so every step is a numpy pass over
a chunk of mappings. Here the same closed forms are computed one mapping at a time in
compiled loops (a few hundred scalar operations per mapping instead of hundreds of array
passes), writing into the same output arrays. Both backends give identical access counts
(exact integers) and energies equal to rounding; ``tests/test_model_kernel.py`` checks it.

Per mapping the numpy code's padding (positions of trivial loops that a chunk needs to stay
rectangular) disappears: only the temporal loops with a factor > 1 are listed, which is
what the numpy code computes once its zero-weight padding positions are dropped.

Only :func:`analyze_into` and :func:`cost_into` are meant to be called (by
:func:`jaqmoo.mapping.model.analyze` / :func:`~jaqmoo.mapping.model.cost`); the module
imports numba at import time, so :mod:`jaqmoo.mapping.model` imports it lazily and falls
back to numpy when numba is missing or ``JAQMOO_NO_NUMBA=1``.
"""

from __future__ import annotations

import multiprocessing
import os
import threading

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from jaqmoo.errors import JaqmooError
from jaqmoo.mapping.model.threads import usable_cores
from jaqmoo.mapping.tensors import I_T, O_T, W_T

_N_DIMS = 8
_PSUM = 3  # values-per-word column of partial sums (model.PSUM)
_PREFETCH_AHEAD = 4
"""Mappings ahead whose input and output rows are prefetched (the batch arrays are far larger
than the caches and each mapping touches ~3 kB in a dozen streams)."""


@intrinsic
def _prefetch_row(typingctx, arr, m):
    """Hint the CPU to fetch the cache lines of row ``arr[m]`` of a C-contiguous array, ``m < len(arr)``
    (llvm.prefetch, which never faults; an intrinsic, so no reference counting per call)."""
    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8.as_pointer(), i32, i32, i32]), "llvm.prefetch.p0i8")
        rows = builder.extract_value(ary.shape, 0)
        row_bytes = builder.mul(builder.sdiv(ary.nitems, rows), ary.itemsize)
        start = builder.gep(builder.bitcast(ary.data, i8.as_pointer()), [builder.mul(args[1], row_bytes)])
        n_lines = builder.add(builder.sdiv(row_bytes, i64(64)), i64(2))  # rows need not be line-aligned
        with cgutils.for_range(builder, n_lines) as loop:
            ptr = builder.gep(start, [builder.mul(loop.index, i64(64))])
            builder.call(fn, [ptr, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()
    return types.void(arr, m), codegen


# ---------------------------------------------------------------------------------------
# Tensor projections (scalar versions of jaqmoo.mapping.tensors; ``ext[i]`` is a dim row)
# ---------------------------------------------------------------------------------------

@numba.njit(cache=True, error_model="numpy", inline="always")
def _pair_extent(ext: np.ndarray, i: int, t: int, k: int, pairs: np.ndarray, pair_mult: np.ndarray) -> float:
    """Extent of the box spanned by per-dim extents ``ext[i]`` along tensor ``t``'s k-th window axis."""
    return (ext[i, pairs[t, k, 0]] - 1) * pair_mult[t, k, 0] + (ext[i, pairs[t, k, 1]] - 1) * pair_mult[t, k, 1] + 1


@numba.njit(cache=True, error_model="numpy", inline="always")
def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


@numba.njit(cache=True, error_model="numpy", inline="always")
def _axis_products(ext: np.ndarray, e0: int, fan: np.ndarray, f0: int, n_rows: int, distinct: bool,
                   singles: np.ndarray, pairs: np.ndarray, pair_mult: np.ndarray, out: np.ndarray, o: int) -> None:
    """Per tensor ``t``, products over its axes for ``i < n_rows`` into ``out[o + i, t]``.

    ``distinct=False``: values of ``t`` in the box spanned by the extents ``ext[e0 + i]`` (``fan``
    unused). ``distinct=True``: distinct tiles of ``t`` among the children (extents ``ext[e0 + i]``)
    of the fan-out ``fan[f0 + i]`` (scalar ``tensors.distinct_children_dm`` with
    ``tensors.distinct_pairs``).
    One call per batch of rows on purpose: an inlined call costs atomic reference counting of
    its array arguments (it used to be one call per value, a fifth of the run time).
    """
    for r in range(n_rows):
        i, j = e0 + r, f0 + r
        for t in range(3):
            size = 1.0
            for k in range(singles.shape[1]):
                d = singles[t, k]
                if d < 0:
                    break
                size *= fan[j, d] if distinct else ext[i, d]
            for k in range(pairs.shape[1]):
                big, small = pairs[t, k, 0], pairs[t, k, 1]
                if big < 0:
                    break
                if not distinct:
                    size *= _pair_extent(ext, i, t, k, pairs, pair_mult)
                    continue
                n1, n2 = fan[j, big], fan[j, small]
                term = n1 * n2
                if n1 > 1 and n2 > 1:
                    ai = np.int64(ext[i, big] * pair_mult[t, k, 0])
                    bi = np.int64(ext[i, small] * pair_mult[t, k, 1])
                    g = _gcd(ai, bi)
                    term = term - max(0.0, n1 - bi // g) * max(0.0, n2 - ai // g)
                size *= term
            out[o + r, t] = size


# ---------------------------------------------------------------------------------------
# Stage A
# ---------------------------------------------------------------------------------------

@numba.njit(cache=True, error_model="numpy", nogil=True)
def _analyze_range(lo, hi, temporal, spatial_x, spatial_y, perm, keep, spatial_perm, spatial_order, live, dummy,
                   fan_cap_x, fan_cap_y, coef, axis, hash_, singles, pairs, pair_mult, pair_of, out) -> None:
    """Analyze mappings ``lo:hi`` into the output arrays ``out`` (one long loop body on purpose:
    scratch arrays stay locals, no per-call reference counting)."""
    (rfu, tile_f, partition_f, keep_out, psum_f, instances_f, compute_instances_f, compute_cycles_f,
     fanout_ok, fanout_fail_level) = out
    n_lvl = temporal.shape[1]
    n = _N_DIMS
    max_pos = n_lvl * n
    tf, xf, yf, sp = np.empty((n_lvl, n)), np.empty((n_lvl, n)), np.empty((n_lvl, n)), np.empty((n_lvl, n))
    ext = np.empty((n_lvl + 1, n))
    kp = np.empty((n_lvl, 3), dtype=np.bool_)
    tile, overlap, fills_raw = np.empty((n_lvl, 3)), np.empty((n_lvl, 3)), np.empty((n_lvl, 3))
    distinct = np.empty((n_lvl, 3))
    pos_dim = np.empty(max_pos, dtype=np.int64)
    pos_n, pos_stride, weight = np.empty(max_pos), np.empty(max_pos), np.empty(max_pos)
    suffix = np.empty(max_pos + 1)
    first_pos = np.empty(n_lvl + 1, dtype=np.int64)
    n_loops = np.empty(n_lvl, dtype=np.int64)  # temporal loops with a factor > 1 per level
    key, cum = np.empty((3, max_pos), dtype=np.int64), np.empty((3, max_pos), dtype=np.int64)
    partition, fan_x, fan_y, instances = np.empty(n_lvl), np.empty(n_lvl), np.empty(n_lvl), np.empty(n_lvl)
    outside = np.empty(n_lvl + 1)  # outside[k]: reduction factor (C, R, S loops) of all loops above level k
    link = np.empty((n_lvl, 2, 3))
    has_link = np.zeros((n_lvl, 2), dtype=np.bool_)
    row = np.empty((1, n))
    union = np.empty((1, 3))
    seen_h = np.empty(4, dtype=np.int64)
    seen_used = np.empty(4, dtype=np.bool_)
    mesh_ok = np.empty((n_lvl, 2), dtype=np.bool_)
    unserved_dim = np.empty(2 * n_lvl, dtype=np.int64)  # d of the cached unserved_c rows (-1: none)
    unserved_c = np.empty((2 * n_lvl, 3))  # row 2 * lvl + mesh
    has_sp = spatial_perm.shape[0] > 0
    fail = -1  # first level whose fan-out is exceeded (factor-dependent)
    live_idx = np.flatnonzero(live)
    n_live = len(live_idx)
    for a in (tf, xf, yf, sp, ext, row):  # dims of bound 1 stay 1 (the numpy code's ones row)
        a[:] = 1.0

    for m in range(lo, hi):
        ahead = m + _PREFETCH_AHEAD
        if ahead < hi:
            _prefetch_row(temporal, ahead)
            _prefetch_row(spatial_x, ahead)
            _prefetch_row(spatial_y, ahead)
            _prefetch_row(perm, ahead)
            _prefetch_row(rfu, ahead)
            _prefetch_row(tile_f, ahead)
            _prefetch_row(partition_f, ahead)
            _prefetch_row(keep, ahead)
            _prefetch_row(keep_out, ahead)
            _prefetch_row(psum_f, ahead)
            _prefetch_row(instances_f, ahead)
        # Factor-dependent quantities (tile extents and sizes, fan-outs, distinct child tiles,
        # Outputs' partition sizes): a mapper batch lists each factor split with all its loop
        # orders and bypass choices in a row, so they are only recomputed when factors change.
        same = m > lo
        if same:  # branch-free compare of the factor rows (vectorizes)
            diff = False
            for lvl in range(n_lvl):
                for d in range(n):
                    diff |= ((temporal[m, lvl, d] != temporal[m - 1, lvl, d])
                             | (spatial_x[m, lvl, d] != spatial_x[m - 1, lvl, d])
                             | (spatial_y[m, lvl, d] != spatial_y[m - 1, lvl, d]))
            same = not diff
        if not same:
            for lvl in range(n_lvl):
                for j in range(n_live):
                    d = live_idx[j]
                    tf[lvl, d] = temporal[m, lvl, d]
                    xf[lvl, d] = spatial_x[m, lvl, d]
                    yf[lvl, d] = spatial_y[m, lvl, d]
                    sp[lvl, d] = xf[lvl, d] * yf[lvl, d]
            for lvl in range(n_lvl - 1, -1, -1):
                n_loops[lvl] = 0
                for j in range(n_live):
                    d = live_idx[j]
                    ext[lvl, d] = ext[lvl + 1, d] * tf[lvl, d] * sp[lvl, d]
                    if tf[lvl, d] > 1:
                        n_loops[lvl] += 1
            _axis_products(ext, 0, ext, 0, n_lvl, False, singles, pairs, pair_mult, tile, 0)
            outside[0] = 1.0
            for lvl in range(n_lvl):
                r = 1.0
                for j in range(n_live):
                    d = live_idx[j]
                    if coef[O_T, d] == 0:
                        r *= tf[lvl, d] * sp[lvl, d]
                outside[lvl + 1] = outside[lvl] * r
            for lvl in range(n_lvl):
                fx = 1.0
                fy = 1.0
                for j in range(n_live):
                    fx *= xf[lvl, live_idx[j]]
                    fy *= yf[lvl, live_idx[j]]
                fan_x[lvl] = fx
                fan_y[lvl] = fy
                if fx * fy > 1:
                    _axis_products(ext, lvl + 1, sp, lvl, 1, True, singles, pairs, pair_mult, distinct, lvl)
                else:
                    for t in range(3):
                        distinct[lvl, t] = 1.0
            instances[0] = 1.0
            for lvl in range(1, n_lvl):
                instances[lvl] = instances[lvl - 1] * (fan_x[lvl - 1] * fan_y[lvl - 1])
            for lvl in range(n_lvl):
                mesh_ok[lvl, 0] = fan_y[lvl] == 1 or fan_x[lvl] == fan_cap_x[lvl]
                mesh_ok[lvl, 1] = fan_x[lvl] == fan_cap_x[lvl]
            unserved_dim[:] = -1
            fail = -1
            for lvl in range(n_lvl - 1, -1, -1):
                if fan_x[lvl] > fan_cap_x[lvl] or fan_y[lvl] > fan_cap_y[lvl]:
                    fail = lvl
            partition[0] = tile[0, O_T]
            for i in range(1, n_lvl):
                partition[i] = partition[i - 1]
                if fan_x[i - 1] * fan_y[i - 1] > 1:
                    for j in range(n_live):
                        d = live_idx[j]
                        row[0, d] = ext[i, d] * sp[i - 1, d]
                    _axis_products(row, 0, row, 0, 1, False, singles, pairs, pair_mult, union, 0)
                    partition[i] = np.floor(partition[i - 1] * tile[i, O_T] / union[0, O_T])
        for lvl in range(n_lvl):
            for t in range(3):
                kp[lvl, t] = lvl == 0 or (keep[m, lvl, t] and not dummy[lvl])

        # non-trivial temporal loops, innermost level and loop first
        n_pos = 0
        for lvl in range(n_lvl - 1, -1, -1):
            first_pos[lvl + 1] = n_pos
            last = n_pos + n_loops[lvl]
            r = 0
            while n_pos < last:
                d = perm[m, lvl, r]
                r += 1
                if tf[lvl, d] > 1:
                    pos_dim[n_pos] = d
                    pos_n[n_pos] = tf[lvl, d]
                    pos_stride[n_pos] = sp[lvl, d] * ext[lvl + 1, d]
                    n_pos += 1
        first_pos[0] = n_pos
        suffix[n_pos] = 1.0
        for p in range(n_pos - 1, -1, -1):
            suffix[p] = suffix[p + 1] * pos_n[p]
            weight[p] = (pos_n[p] - 1) * suffix[p + 1]

        # translation hashes and fills (sliding-window / stationarity reuse)
        for t in range(3):
            inner = np.int64(0)
            for p in range(n_pos):
                h = hash_[t, pos_dim[p]] * np.int64(pos_stride[p])
                inner += h
                key[t, p] = 2 * h - inner
                cum[t, p] = inner
            fills_raw[0, t] = tile[0, t]
            for i in range(n_lvl):
                overlap[i, t] = tile[i, t]
            for i in range(1, n_lvl):
                p0 = first_pos[i]
                if p0 >= n_pos or not kp[i, t]:
                    fills_raw[i, t] = tile[i, t]
                    continue
                w_eq = 0.0
                for q in range(p0, n_pos):
                    if key[t, q] == key[t, p0]:
                        w_eq += weight[q]
                d = pos_dim[p0]
                ax = axis[t, d]
                if ax >= 0:
                    k = pair_of[t, d]
                    span = ext[i, d] if k < 0 else _pair_extent(ext, i, t, k, pairs, pair_mult)
                    move = coef[t, d] * pos_stride[p0]
                    overlap[i, t] = tile[i, t] / span * max(0.0, span - move)
                fills_raw[i, t] = suffix[p0] * tile[i, t] - w_eq * overlap[i, t]

        # Inter-PE link transfers of the read-only tensors (_numpy._link_transfers): link[lvl, t]
        # = (parent saving, transfers, child share cut) of the fan-out below lvl
        for t in (W_T, I_T):
            for lvl in range(n_lvl):
                has_link[lvl, t] = False
                child = lvl + 1
                if fan_x[lvl] * fan_y[lvl] == 1 or (child < n_lvl and not kp[child, t]):
                    continue  # no fan-out; Timeloop discards link transfers into a bypassing child
                p0 = first_pos[child] if child < n_lvl else 0
                if p0 >= n_pos:
                    continue
                base = cum[t, p0 - 1] if p0 > 0 else np.int64(0)
                t1 = key[t, p0] + base
                if child < n_lvl:
                    size, ovl = tile[child, t], overlap[child, t]
                else:  # MACs: every visit needs its full operand point, never a delta
                    size, ovl = 1.0, 0.0
                if not ovl < size:
                    continue
                case_a = ovl == 0
                case_b = ovl > 0
                w_b = 0.0
                for q in range(p0 + 1, n_pos):
                    if key[t, q] == key[t, p0]:
                        w_b += weight[q]
                w_b = pos_n[p0] * w_b
                delta = size if case_a else size - ovl
                n_children = fan_x[lvl] * fan_y[lvl]
                dist = distinct[lvl, t]
                saving = 0.0
                transfers = 0.0
                share_cut = 0.0
                n_seen = 0
                for mesh in range(2):
                    if not mesh_ok[lvl, mesh]:
                        continue
                    d = -1
                    n_d = 1.0
                    for r in range(n):  # innermost spatial dim split on this mesh axis
                        dr = spatial_perm[m, lvl, r] if has_sp else spatial_order[lvl, r]
                        f = xf[lvl, dr] if mesh == 0 else yf[lvl, dr]
                        if f > 1:
                            d = dr
                            n_d = f
                            break
                    if d < 0:
                        continue
                    step = hash_[t, d] * np.int64(ext[child, d])
                    # A step along an input-relevant dim serves every PE but the last of the chain;
                    # along an irrelevant dim (identical tiles) every PE has a neighbour with its data.
                    # (factor-dependent: cached per factor split and innermost dim d)
                    o = 2 * lvl + mesh
                    if unserved_dim[o] != d:
                        unserved_dim[o] = d
                        for j in range(n_live):
                            row[0, live_idx[j]] = sp[lvl, live_idx[j]]
                        row[0, d] = row[0, d] / n_d
                        _axis_products(ext, child, row, 0, 1, True, singles, pairs, pair_mult, unserved_c, o)
                    unserved = unserved_c[o, t] if step != 0 else 0.0
                    use = unserved < dist
                    served_n = n_children if step == 0 else n_children * (n_d - 1) / n_d
                    # visits whose translation is one neighbour step (+step, then -step)
                    w_pos = 0.0
                    w_neg = 0.0
                    if case_a:
                        for q in range(p0, n_pos):
                            kq = key[t, q] + base
                            if kq == step:
                                w_pos += weight[q]
                            if kq == -step:
                                w_neg += weight[q]
                    elif case_b:
                        if t1 == step:
                            w_pos = w_b
                        if t1 == -step:
                            w_neg = w_b
                    for sign in range(2):
                        h = step if sign == 0 else -step
                        w = w_pos if sign == 0 else w_neg
                        fresh = True
                        for j in range(n_seen):
                            if seen_used[j] and seen_h[j] == h:
                                fresh = False
                        seen_h[n_seen] = h
                        seen_used[n_seen] = use
                        n_seen += 1
                        if use and fresh:
                            saving += w * delta * (dist - unserved)
                            transfers += w * delta * served_n
                            share_cut += w * delta * served_n / n_children
                if transfers != 0:
                    has_link[lvl, t] = True
                    link[lvl, t, 0] = saving
                    link[lvl, t, 1] = transfers
                    link[lvl, t, 2] = share_cut

        # reads served by each level (through bypassed levels), fills, updates
        for t in range(3):
            below = suffix[0]
            for lvl in range(n_lvl - 1, -1, -1):
                served = distinct[lvl, t] * below
                if t != O_T and has_link[lvl, t]:
                    served -= link[lvl, t, 0]
                k = kp[lvl, t]
                part = partition[lvl] if t == O_T else 0.0
                keep_out[m, lvl, t] = k
                tile_f[m, lvl, t] = tile[lvl, t]
                partition_f[m, lvl, t] = part
                rfu[m, lvl, t, 0] = served - part if k else 0.0
                rfu[m, lvl, t, 1] = fills_raw[lvl, t] - part if (k and lvl > 0) else 0.0
                rfu[m, lvl, t, 2] = served if (k and t == O_T) else 0.0
                below = fills_raw[lvl, t] if k else served
        child = n_lvl  # next inner level keeping Outputs (n_lvl: the MACs)
        for lvl in range(n_lvl - 1, -1, -1):
            psum_f[m, lvl] = 1.0 if outside[child] > 1 else 0.0
            if kp[lvl, O_T]:
                child = lvl
            instances_f[m, lvl] = instances[lvl]
        for t in (W_T, I_T):  # the forwarding neighbours' reads and fills are charged to the child
            for lvl in range(n_lvl - 1):
                child = lvl + 1
                if has_link[lvl, t] and kp[child, t]:
                    peer = link[lvl, t, 1] / instances[child]
                    rfu[m, child, t, 0] += np.rint(peer)
                    rfu[m, child, t, 1] = np.floor(rfu[m, child, t, 1] - link[lvl, t, 2] + peer + 1e-9)
        compute_instances_f[m] = instances[n_lvl - 1] * (fan_x[n_lvl - 1] * fan_y[n_lvl - 1])
        compute_cycles_f[m] = suffix[0]
        fanout_ok[m] = fail < 0
        fanout_fail_level[m] = fail


def analyze_into(batch, geometry: dict[str, np.ndarray], out: dict[str, np.ndarray]) -> None:
    """Stage A of every mapping of ``batch`` into the preallocated arrays ``out``.

    ``geometry`` holds the per (layer, accelerator) constants (see
    ``geometry.Geometry.kernel_args``); ``out`` the :class:`~jaqmoo.mapping.model.Accesses`
    array fields, keyed by field name, shaped for ``len(batch)`` mappings.
    """
    g = geometry
    spatial_perm = batch.spatial_perm if batch.spatial_perm is not None else _NO_SPATIAL_PERM
    _run_blocks(
        _analyze_range, len(batch), _c(batch.temporal, np.int64), _c(batch.spatial_x, np.int64),
        _c(batch.spatial_y, np.int64), _c(batch.perm, np.int64), _c(batch.keep, np.bool_), _c(spatial_perm, np.int64),
        g["spatial_order"], g["live"], g["dummy"], g["fan_cap_x"], g["fan_cap_y"], g["coef"], g["axis"], g["hash"],
        g["singles"], g["pairs"], g["pair_mult"], g["pair_of"],
        (out["rfu"], out["tile_f"], out["partition_f"], out["keep"], out["psum_f"], out["instances_f"],
         out["compute_instances_f"], out["compute_cycles_f"], out["fanout_ok"], out["fanout_fail_level"]))


_NO_SPATIAL_PERM = np.zeros((0, 1, _N_DIMS), dtype=np.int64)


def _c(a: np.ndarray, dtype=None) -> np.ndarray:
    """``a`` as the C-contiguous array the kernels were compiled for (no copy when it is one)."""
    return np.ascontiguousarray(a, dtype=dtype)


PARALLEL_MIN = 8192
"""Batches at least this large are split into one contiguous block per thread."""


def n_threads() -> int:
    """Threads the kernels use: ``JAQMOO_THREADS`` if set; else 1 in a multiprocessing worker
    (its pool already uses the cores), else the CPUs this process may use."""
    env = os.environ.get("JAQMOO_THREADS", "").strip()
    if env:
        try:
            value = int(env)
        except ValueError:
            value = 0
        if value < 1:
            raise JaqmooError(f"JAQMOO_THREADS must be a positive integer (got {env!r})")
        return value
    if multiprocessing.parent_process() is not None:
        return 1
    return usable_cores()


def _run_blocks(kernel, n: int, *args) -> None:
    """``kernel(lo, hi, *args)`` over ``0:n``, in contiguous blocks on parallel threads.

    The kernels release the GIL and every mapping's result depends on that mapping only, so
    the output is the same for any number of threads (deterministic).
    """
    k = min(n_threads(), max(1, n // (PARALLEL_MIN // 2))) if n >= PARALLEL_MIN else 1
    bounds = [n * i // k for i in range(k + 1)]
    errors: list[BaseException] = []

    def block(i: int) -> None:
        try:
            kernel(bounds[i], bounds[i + 1], *args)
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=block, args=(i,)) for i in range(1, k)]
    for th in threads:
        th.start()
    block(0)
    for th in threads:
        th.join()
    if errors:
        raise errors[0]


# ---------------------------------------------------------------------------------------
# Stage B
# ---------------------------------------------------------------------------------------

@numba.njit(cache=True, error_model="numpy", nogil=True)
def _cost_range(lo, hi, rfu, tile_f, keep, instances_f, psum_f, compute_cycles_f, fanout_ok, fanout_fail_level,
                vpw, depth, action_energy, leak, clusters, block, limits, mac_energy, out) -> None:
    """Cost mappings ``lo:hi`` into the output arrays ``out``."""
    (tile_words, occupancy_words, capacity_ok, width_ok, feasible, fail_level, energy_by_tensor,
     energy_by_action, leakage, energy_by_level, energy, cycles) = out
    n_lvl = tile_f.shape[1]
    vpw_f = np.empty((n_lvl, 4))
    scale = np.empty((n_lvl, 4))
    for lvl in range(n_lvl):
        for t in range(4):
            vpw_f[lvl, t] = max(vpw[lvl, t], 1)
            scale[lvl, t] = block[lvl] / vpw_f[lvl, t]
    limited = np.zeros(n_lvl, dtype=np.bool_)
    for lvl in range(n_lvl):
        for j in range(3):
            limited[lvl] = limited[lvl] or not np.isnan(limits[lvl, j])
    words = np.empty((n_lvl, 3, 3))
    for m in range(lo, hi):
        cap_ok = True
        wid_ok = True
        first_bad = -1
        for lvl in range(n_lvl):
            occ = 0.0
            bad = lvl == fanout_fail_level[m]
            out_col = _PSUM if psum_f[m, lvl] > 0 else 2  # Outputs: partial sums or completed
            for t in range(3):
                tw = 0.0
                c = t if t < 2 else out_col
                if keep[m, lvl, t]:
                    tw = np.ceil(tile_f[m, lvl, t] / vpw_f[lvl, c]) if vpw_f[lvl, c] > 1 else tile_f[m, lvl, t]
                    if vpw[lvl, c] == 0:
                        wid_ok = False
                        bad = True
                tile_words[m, lvl, t] = np.int64(tw)
                occ = tw if t == 0 else occ + tw
            occupancy_words[m, lvl] = np.int64(occ)
            if occ > depth[lvl]:
                cap_ok = False
                bad = True
            if bad and first_bad < 0:
                first_bad = lvl
        ok = cap_ok and wid_ok and fanout_ok[m]
        capacity_ok[m], width_ok[m], feasible[m] = cap_ok, wid_ok, ok
        fail_level[m] = -1 if ok else max(first_bad, 0)

        # access energy: vector accesses per action = ceil(values / values per word), charged
        # once per utilized cluster
        cc = compute_cycles_f[m]
        cyc = cc
        for lvl in range(n_lvl):
            inst = min(instances_f[m, lvl], clusters[lvl])
            out_col = _PSUM if psum_f[m, lvl] > 0 else 2
            for t in range(3):
                c = t if t < 2 else out_col
                for a in range(3):
                    v = rfu[m, lvl, t, a]
                    words[lvl, t, a] = np.ceil(v / vpw_f[lvl, c]) if vpw_f[lvl, c] > 1 else v  # ceil(v / 1) == v
                e = words[lvl, t, 0] * action_energy[lvl, 0]
                e = e + words[lvl, t, 1] * action_energy[lvl, 1]
                e = e + words[lvl, t, 2] * action_energy[lvl, 2]
                energy_by_tensor[m, lvl, t] = e * inst
            for a in range(3):
                energy_by_action[m, lvl, a] = ((words[lvl, 0, a] + words[lvl, 1, a]) + words[lvl, 2, a]) \
                    * action_energy[lvl, a] * inst
            if limited[lvl]:  # bandwidth throttling (datawidth values per cycle per instance)
                reads = 0.0
                writes = 0.0
                for t in range(3):
                    c = t if t < 2 else out_col
                    reads = reads + rfu[m, lvl, t, 0] * scale[lvl, c]
                    writes = writes + (rfu[m, lvl, t, 1] + rfu[m, lvl, t, 2]) * scale[lvl, c]
                reads = reads / cc
                writes = writes / cc
                slowdown = 1.0
                for j in range(3):
                    limit = limits[lvl, j]
                    need = reads if j == 0 else (writes if j == 1 else reads + writes)
                    if not np.isnan(limit):
                        slowdown = min(slowdown, limit / max(need, 1e-300) if need > limit else 1.0)
                cyc = max(cyc, np.ceil(cc / slowdown))
        cycles[m] = np.int64(cyc)
        total = 0.0
        for lvl in range(n_lvl):
            leakage[m, lvl] = leak[lvl] * instances_f[m, lvl] * cyc  # every level leaks, kept tensors or not
            e = (energy_by_tensor[m, lvl, 0] + energy_by_tensor[m, lvl, 1]) + energy_by_tensor[m, lvl, 2]
            energy_by_level[m, lvl] = e + leakage[m, lvl]
            total += energy_by_level[m, lvl]
        energy[m] = total + mac_energy


def cost_into(accesses, vpw: np.ndarray, hardware: dict, mac_energy: float, out: dict[str, np.ndarray]) -> None:
    """Stage B of every mapping of ``accesses`` into the preallocated arrays ``out``.

    ``vpw``: int64 [L, 4] values per instance word (Weights, Inputs, completed Outputs,
    partial sums); ``hardware`` holds ``depth``, ``action_energy``, ``leak``, ``clusters``
    (physical word groups per level), ``block`` and ``limit_array`` (float64 [L, 3]: read,
    write, shared bandwidth; NaN = unlimited); ``out`` the
    :class:`~jaqmoo.mapping.model.Costs` array fields by name (``energy`` includes
    ``mac_energy``).
    """
    a = accesses
    _run_blocks(_cost_range, len(a), _c(a.rfu, np.float64), _c(a.tile_f, np.float64), _c(a.keep, np.bool_),
                _c(a.instances_f, np.float64), _c(a.psum_f, np.float64), _c(a.compute_cycles_f, np.float64),
                _c(a.fanout_ok, np.bool_), _c(a.fanout_fail_level, np.int64), _c(vpw, np.int64), hardware["depth"],
                hardware["action_energy"], hardware["leak"], hardware["clusters"], hardware["block"],
                hardware["limit_array"], float(mac_energy),
                (out["tile_words"], out["occupancy_words"], out["capacity_ok"], out["width_ok"], out["feasible"],
                 out["fail_level"], out["energy_by_tensor"], out["energy_by_action"], out["leakage"],
                 out["energy_by_level"], out["energy"], out["cycles"]))
