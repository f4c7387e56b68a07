"""Neighbours: local-search moves over the mapspace (one prime factor moved between two free
loops or fan-outs), for the mapper's refinement (see :mod:`jaqmoo.mapping.mapspace`)."""

from __future__ import annotations

import itertools

import numpy as np

from jaqmoo.mapping.mapping import MappingBatch
from jaqmoo.mapping.mapspace.constraints import (
    AXIS_ANY,
    AXIS_X,
    AXIS_Y,
    FREE,
    N_DIMS,
    CapacityEnvelope,
    MapspaceSpec,
    for_layer,
)
from jaqmoo.mapping.mapspace.enumeration import empty_batch, expand_orders, satisfies
from jaqmoo.mapping.mapspace.factorisation import prime_factors, row_hash
from jaqmoo.workload import DIMS, Layer

# --------------------------------------------------------------------------- local search


def free_slots(layer: Layer, spec: MapspaceSpec) -> list[list[tuple[int, int]]]:
    """Per dim, the (kind, level) slots whose factor the mapper may change."""
    spec = for_layer(spec, layer)
    out = []
    for d in range(N_DIMS):
        slots = []
        for lvl, rule in enumerate(spec.rules):
            if rule.temporal[d] == FREE:
                slots.append((0, lvl))
            if spec.fanout_x[lvl] > 1 and rule.spatial_axis[d] in (AXIS_ANY, AXIS_X) and rule.spatial[d] == FREE:
                slots.append((1, lvl))
            if spec.fanout_y[lvl] > 1 and rule.spatial_axis[d] in (AXIS_ANY, AXIS_Y) and rule.spatial[d] == FREE:
                slots.append((2, lvl))
        out.append(slots)
    return out



def neighbors(batch, layer: Layer, spec: MapspaceSpec, envelope: CapacityEnvelope | None = None,
              halo: bool = False):
    """Every mapping one prime-factor move away from a mapping of ``batch`` (all loop orders).

    A move takes one prime factor ``p`` of a dimension from one free slot (a level's
    temporal loop or a fan-out axis) to another. Results respect the constraints, the
    fan-outs and the envelope; duplicates are removed.
    """
    if len(batch) == 0:
        return batch
    f = np.stack([batch.temporal, batch.spatial_x, batch.spatial_y], axis=1)  # [M, 3, L, 8]
    moved = []
    keeps = []
    for d, slots in enumerate(free_slots(layer, spec)):
        primes = [p for p, _ in prime_factors(getattr(layer, DIMS[d]))]
        for (ka, la), (kb, lb) in itertools.permutations(slots, 2):
            for p in primes:
                can = f[:, ka, la, d] % p == 0
                if not can.any():
                    continue
                g = f[can].copy()
                g[:, ka, la, d] //= p
                g[:, kb, lb, d] *= p
                moved.append(g)
                keeps.append(batch.keep[can])
    if not moved:
        return empty_batch(spec.n_levels)
    g = np.concatenate(moved)
    keep = np.concatenate(keeps)
    flat = np.concatenate([g.reshape(len(g), -1), keep.reshape(len(keep), -1)], axis=1)
    _, uniq = np.unique(row_hash(flat), return_index=True)
    g, keep = g[uniq], keep[uniq]
    rows, perm = expand_orders(g[:, 0], spec, halo)
    out = MappingBatch(g[rows, 0], g[rows, 1], g[rows, 2], perm, keep[rows])
    return out.take(satisfies(out, layer, spec, envelope))
