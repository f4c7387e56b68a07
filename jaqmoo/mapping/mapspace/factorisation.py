"""Factorisation: every ordered split of each dimension over the loops and fan-outs the
constraints leave free, grouped into units (one dimension, or a sliding-window pair P,R / Q,S)
with their tile contributions (see :mod:`jaqmoo.mapping.mapspace`)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.mapping.mapspace.constraints import (
    AXIS_ANY,
    AXIS_X,
    AXIS_Y,
    D_C,
    D_G,
    D_K,
    D_N,
    D_P,
    D_Q,
    D_R,
    D_S,
    FREE,
    N_DIMS,
    RELEVANT,
    CapacityEnvelope,
    MapspaceSpec,
    fits_envelope,
    forced_keep,
)
from jaqmoo.mapping.tensors import tile_size
from jaqmoo.workload import DIMS, Layer


def prime_factors(n: int) -> list[tuple[int, int]]:
    out = []
    p = 2
    while p * p <= n:
        if n % p == 0:
            e = 0
            while n % p == 0:
                n //= p
                e += 1
            out.append((p, e))
        p += 1
    if n > 1:
        out.append((n, 1))
    return out


def prime_list(n: int) -> list[int]:
    """Prime factors of ``n`` with multiplicity, ascending (``12 -> [2, 2, 3]``)."""
    return [p for p, e in prime_factors(n) for _ in range(e)]


def _compositions(total: int, parts: int) -> list[tuple[int, ...]]:
    """All tuples of ``parts`` non-negative ints summing to ``total``."""
    if parts == 0:
        return [()] if total == 0 else []
    out = []
    for bars in itertools.combinations(range(total + parts - 1), parts - 1):
        prev = -1
        comp = []
        for b in bars:
            comp.append(b - prev - 1)
            prev = b
        comp.append(total + parts - 1 - prev - 1)
        out.append(tuple(comp))
    return out


def ordered_factorizations(n: int, parts: int) -> np.ndarray:
    """All ordered ways to write ``n`` as a product of ``parts`` positive ints, ``[k, parts]``."""
    if parts == 0:
        return np.ones((1 if n == 1 else 0, 0), dtype=np.int64)
    result = np.ones((1, parts), dtype=np.int64)
    for p, e in prime_factors(n):
        comps = np.array(_compositions(e, parts), dtype=np.int64)
        powers = p**comps
        result = (result[:, None, :] * powers[None, :, :]).reshape(-1, parts)
    return result


@dataclass
class Unit:
    """Options for one dimension (or a coupled pair P,R / Q,S) over all slots."""

    dims: tuple[int, ...]
    factors: np.ndarray  # [k, 3, L, 8] (1 outside self.dims); slot kind 0 temporal, 1 X, 2 Y
    spx: np.ndarray  # [k, L] spatial-X product of these dims at each fan-out
    spy: np.ndarray  # [k, L]
    tile: np.ndarray  # [k, 3, L] contribution to each tensor's tile (values) at each level


def _dim_slot_options(layer: Layer, spec: MapspaceSpec, d: int) -> np.ndarray:
    """``[k, 3, L]`` factor options of dimension ``d`` over (temporal, X, Y) x levels."""
    n_levels = spec.n_levels
    size = getattr(layer, DIMS[d])
    base = np.ones((3, n_levels), dtype=np.int64)
    free: list[tuple[int, int]] = []
    remaining = size
    for lvl, rule in enumerate(spec.rules):
        slots = [(0, rule.temporal[d])]
        if spec.fanout_x[lvl] > 1 and rule.spatial_axis[d] in (AXIS_ANY, AXIS_X):
            slots.append((1, rule.spatial[d]))
        if spec.fanout_y[lvl] > 1 and rule.spatial_axis[d] in (AXIS_ANY, AXIS_Y):
            slots.append((2, rule.spatial[d]))
        for kind, fixed in slots:
            if fixed == FREE:
                free.append((kind, lvl))
            elif fixed > 1:
                f = math.gcd(fixed, remaining)  # a fixed factor the dimension cannot take is clamped
                base[kind, lvl] = f
                remaining //= f
    if remaining > 1 and not free:
        raise JaqmooError(
            f"layer {layer.name!r}: the constraints leave no loop for dimension {DIMS[d]}={size} "
            f"at any level ({list(spec.level_names)}); free a factor of {DIMS[d]} somewhere"
        )
    facts = ordered_factorizations(remaining, len(free))
    options = np.repeat(base[None], len(facts), axis=0)
    for j, (kind, lvl) in enumerate(free):
        options[:, kind, lvl] *= facts[:, j]
    # a spatial factor can never exceed its axis
    fx = np.array(spec.fanout_x)[None, :]
    fy = np.array(spec.fanout_y)[None, :]
    ok = np.all(options[:, 1, :] <= fx, axis=1) & np.all(options[:, 2, :] <= fy, axis=1)
    return options[ok]


def _extents(opt: np.ndarray) -> np.ndarray:
    """Tile extent of a dimension at each level: product of all factors at and below it."""
    per_level = opt.prod(axis=1)  # [k, L]
    return np.flip(np.cumprod(np.flip(per_level, axis=1), axis=1), axis=1)


def build_units(layer: Layer, spec: MapspaceSpec, envelope: CapacityEnvelope | None = None) -> list[Unit]:
    n_levels = spec.n_levels
    forced = forced_keep(spec)[None]
    opts = {d: _dim_slot_options(layer, spec, d) for d in range(N_DIMS)}
    units = []
    for dims in ((D_N,), (D_G,), (D_K,), (D_C,), (D_P, D_R), (D_Q, D_S)):
        if len(dims) == 1:
            (d,) = dims
            o = opts[d]
            k = len(o)
            factors = np.ones((k, 3, n_levels, N_DIMS), dtype=np.int64)
            factors[..., d] = o
            ext = _extents(o)
            tile = np.ones((k, 3, n_levels), dtype=np.float64)
            for t in range(3):
                if d in RELEVANT[t]:
                    tile[:, t, :] = ext
        else:
            outer, win = dims  # P with R (rows), Q with S (columns)
            oa, ob = opts[outer], opts[win]
            ia, ib = np.meshgrid(np.arange(len(oa)), np.arange(len(ob)), indexing="ij")
            ia, ib = ia.ravel(), ib.ravel()
            k = len(ia)
            factors = np.ones((k, 3, n_levels, N_DIMS), dtype=np.int64)
            factors[..., outer] = oa[ia]
            factors[..., win] = ob[ib]
            ea, eb = _extents(oa)[ia], _extents(ob)[ib]
            stride = layer.stride_h if outer == D_P else layer.stride_w
            dil = layer.dilation_h if outer == D_P else layer.dilation_w
            tile = np.ones((k, 3, n_levels), dtype=np.float64)
            tile[:, 0, :] = eb  # weights see R/S
            tile[:, 2, :] = ea  # outputs see P/Q
            tile[:, 1, :] = (ea - 1) * stride + (eb - 1) * dil + 1  # input window
            o = None
        spx = factors[:, 1].prod(axis=-1)
        spy = factors[:, 2].prod(axis=-1)
        alone_fits = fits_envelope(tile, forced, envelope)  # exact: the other dims only add to a tile
        units.append(Unit(dims, factors[alone_fits], spx[alone_fits], spy[alone_fits], tile[alone_fits]))
    # smallest first: the widest cartesian step comes last, in chunks
    units.sort(key=lambda u: len(u.factors))
    return units



def tiles_of(batch, layer: Layer) -> np.ndarray:
    """``[M, 3, L]`` tile size in values of each tensor at each level (its own and inner loops)."""
    per_level = batch.temporal * batch.spatial_x * batch.spatial_y
    ext = np.flip(np.cumprod(np.flip(per_level, axis=1), axis=1), axis=1)  # [M, L, 8]
    return np.stack([tile_size(ext, t, layer) for t in range(3)], axis=1).astype(np.float64)



_HASH_MULT = np.random.default_rng(20240607).integers(1, 2**62, size=4096, dtype=np.int64) | 1


def row_hash(rows: np.ndarray) -> np.ndarray:
    """int64 [n]: a 64-bit hash of each integer row (wrap-around dot product with fixed odd keys)."""
    rows = rows.reshape(len(rows), -1).astype(np.int64)
    return rows @ _HASH_MULT[: rows.shape[1]]
