"""A slow, literal re-implementation of Timeloop 0.4's temporal delta analysis (test oracle).

For one storage level and one tensor it replays the visits Timeloop simulates -- each loop
above the level runs iteration #0 and one representative iteration #1 weighted by ``n - 1``
(its uniform-temporal extrapolation) -- builds every visited tile as an explicit set of
tensor coordinates, and applies Timeloop's "subtract if same stride" rule: the previous
tile is subtracted only while the tile keeps moving by the same translation; a changed
translation re-fetches the whole tile. The closed form in :mod:`jaqmoo.mapping.model` must
give the same fills.
"""

from __future__ import annotations

import itertools

import numpy as np

from jaqmoo.mapping.mapping import MappingBatch
from jaqmoo.mapping.tensors import AXES, P, R, S
from jaqmoo.workload import DIMS, Layer


def _extents(batch: MappingBatch, i: int) -> np.ndarray:
    """Per-dim extents [L+1, 8] of mapping ``i``'s tiles."""
    t, s = batch.temporal[i], batch.spatial_x[i] * batch.spatial_y[i]
    n_lvl = t.shape[0]
    ext = np.ones((n_lvl + 1, len(DIMS)), dtype=np.int64)
    for lvl in range(n_lvl - 1, -1, -1):
        ext[lvl] = ext[lvl + 1] * t[lvl] * s[lvl]
    return ext


def _box(origin: np.ndarray, ext: np.ndarray, tensor: int, layer: Layer) -> tuple[tuple[int, int], ...]:
    """(low, size) per tensor axis of the tile at per-dim ``origin`` with per-dim ``ext``."""
    out = []
    for dims in AXES[tensor]:
        if len(dims) == 1:
            out.append((int(origin[dims[0]]), int(ext[dims[0]])))
            continue
        big, small = dims
        s, d = (layer.stride_h, layer.dilation_h) if big == P else (layer.stride_w, layer.dilation_w)
        assert small in (R, S)
        low = origin[big] * s + origin[small] * d
        size = (ext[big] - 1) * s + (ext[small] - 1) * d + 1
        out.append((int(low), int(size)))
    return tuple(out)


def _points(box) -> set:
    return set(itertools.product(*(range(lo, lo + n) for lo, n in box)))


def simulated_fills(layer: Layer, batch: MappingBatch, i: int, level: int, tensor: int) -> int:
    """Timeloop's temporal deltas of ``level``'s tile of ``tensor`` (per instance, before the
    Outputs' first-update elision), by explicit simulation."""
    ext = _extents(batch, i)
    spatial = batch.spatial_x[i] * batch.spatial_y[i]
    loops = []  # (dim, n, stride), innermost first
    for lvl in range(level - 1, -1, -1):
        for d in batch.perm[i, lvl]:
            n = int(batch.temporal[i, lvl, d])
            if n > 1:
                loops.append((int(d), n, int(spatial[lvl, d] * ext[lvl + 1, d])))
    state = {"prev": None, "prev_low": None, "prev_tr": None}
    total = 0
    # Outermost loop first; each loop visits iteration #0 (weight 1) then #1 (weight n-1).
    for bits in itertools.product((0, 1), repeat=len(loops)):  # bits[0] = outermost loop
        weight = 1
        origin = np.zeros(len(DIMS), dtype=np.int64)
        for (d, n, stride), b in zip(reversed(loops), bits, strict=True):
            if b:
                weight *= n - 1
                origin[d] += stride
        box = _box(origin, ext[level], tensor, layer)
        cur = _points(box)
        low = tuple(lo for lo, _ in box)
        if state["prev"] is None:
            delta, translation = cur, None
            state["prev_tr"] = None
        else:
            translation = tuple(a - b for a, b in zip(low, state["prev_low"], strict=True))
            if state["prev_tr"] is None:
                delta = cur - state["prev"]
                state["prev_tr"] = translation
            elif translation == state["prev_tr"]:
                delta = cur - state["prev"]
            else:
                delta = cur
                state["prev_tr"] = None
        state["prev"], state["prev_low"] = cur, low
        total += weight * len(delta)
    return total


def _child_points(box) -> frozenset:
    return frozenset(_points(box))


def simulated_input_links(layer: Layer, batch: MappingBatch, i: int, level: int,
                          fanout: tuple[int, int], tensor: int | None = None) -> tuple[int, int]:
    """Literal replay of Timeloop's spatial working set for one tensor (default: Inputs) at the
    fan-out below ``level``: per visit, every child's delta (set of coordinates), link transfers from
    the four mesh neighbours (child keys laid out as ``v * fanout_x + h``, the innermost X
    spatial loop varying fastest), multicast of identical deltas, and the "use links only if
    the parent reads fewer" rule. Returns (parent accesses, link transfers) per parent instance.
    """
    from jaqmoo.mapping.tensors import I_T

    tensor = I_T if tensor is None else tensor
    n_lvl = batch.n_levels
    ext = _extents(batch, i)
    spatial = batch.spatial_x[i] * batch.spatial_y[i]
    child = level + 1
    loops = []
    for lvl in range(child - 1, -1, -1):
        for d in batch.perm[i, lvl]:
            n = int(batch.temporal[i, lvl, d])
            if n > 1:
                loops.append((int(d), n, int(spatial[lvl, d] * ext[lvl + 1, d])))
    # children: X digits (innermost first) then Y digits; key = mixed radix
    order = [int(d) for d in (batch.spatial_perm[i, level] if batch.spatial_perm is not None else range(8))]
    digits = [(d, int(batch.spatial_x[i, level, d]), 1) for d in order if batch.spatial_x[i, level, d] > 1]
    digits += [(d, int(batch.spatial_y[i, level, d]), int(batch.spatial_x[i, level, d]))
               for d in order if batch.spatial_y[i, level, d] > 1]
    n_children = int(np.prod([n for _, n, _ in digits])) if digits else 1
    offsets = []
    for key in range(n_children):
        off = np.zeros(len(DIMS), dtype=np.int64)
        rest = key
        for d, n, scale in digits:
            off[d] += (rest % n) * scale * ext[child, d]
            rest //= n
        offsets.append(off)
    h_size, v_size = fanout
    prev_deltas = None
    state = {"prev": None, "prev_low": None, "prev_tr": None}
    content = transfers = 0
    for bits in itertools.product((0, 1), repeat=len(loops)):
        weight = 1
        origin = np.zeros(len(DIMS), dtype=np.int64)
        for (d, n, stride), b in zip(reversed(loops), bits, strict=True):
            if b:
                weight *= n - 1
                origin[d] += stride
        box = _box(origin, ext[child], tensor, layer)
        cur = _points(box)
        low = tuple(lo for lo, _ in box)
        if child == n_lvl:  # MACs: every visit needs its operand point
            delta = cur
        elif state["prev"] is None:
            delta = cur
        else:
            translation = tuple(a - b for a, b in zip(low, state["prev_low"], strict=True))
            if state["prev_tr"] is None:
                delta = cur - state["prev"]
                state["prev_tr"] = translation
            elif translation == state["prev_tr"]:
                delta = cur - state["prev"]
            else:
                delta = cur
                state["prev_tr"] = None
        state["prev"], state["prev_low"] = cur, low
        # every child's delta is the same shape, moved by the child's offset
        deltas = []
        for off in offsets:
            shift = _box(off, np.ones(len(DIMS), dtype=np.int64), tensor, layer)
            deltas.append(frozenset(tuple(c + s[0] for c, s in zip(pt, shift, strict=True)) for pt in delta))
        served = [False] * n_children
        if prev_deltas is not None:
            for v in range(v_size):
                for h in range(h_size):
                    k1 = v * h_size + h
                    if k1 >= n_children or not deltas[k1]:
                        continue
                    for hh, vv in ((h - 1, v), (h + 1, v), (h, v - 1), (h, v + 1)):
                        if 0 <= hh < h_size and 0 <= vv < v_size:
                            k2 = vv * h_size + hh
                            if k2 < n_children and deltas[k1] == prev_deltas[k2]:
                                served[k1] = True
        without = sum(len(s) for s in set(deltas))
        with_links = sum(len(s) for s in {d for d, sv in zip(deltas, served, strict=True) if not sv})
        if with_links < without:
            content += weight * with_links
            transfers += weight * sum(len(d) for d, sv in zip(deltas, served, strict=True) if sv)
        else:
            content += weight * without
        prev_deltas = deltas
    return content, transfers
