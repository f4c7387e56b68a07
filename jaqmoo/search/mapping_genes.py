"""Outer mapping search: per-layer mapping genes index a list of candidate mappings.

For every (layer shape, accelerator topology) the candidate list is built once: the
layer's constrained mapspace (:class:`jaqmoo.mapping.mapspace.Mapspace`, pruned with the
capacity envelope of the smallest bit-widths the search uses, so low-bit tiles are in it) is
sampled, evaluated in one vectorized pass and its ``k`` best mappings by the metric are kept,
ranked best first. A gene ``g`` picks candidate ``g``; the candidate is then costed at the
individual's actual bits and buffer sizes. If it does not fit (capacity, word width, mesh),
it is **repaired** to the nearest feasible candidate index (``g+1, g-1, g+2, ...``); if no
candidate fits, the individual is infeasible (and penalised by the feasibility constraint).

Totals follow :func:`jaqmoo.cost.network_cost` exactly (energy and cycles summed, EDP =
energy x cycles, packed weight bits summed, peak packed input + output activation bits), so
``inner`` and ``outer`` runs are directly comparable.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaqmoo.cost import NetworkCost, layer_cost
from jaqmoo.mapping import mapspace as ms
from jaqmoo.mapping.mapper import metric_values
from jaqmoo.mapping.mapping import MappingBatch, describe
from jaqmoo.mapping.model import analyze, cost
from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.workload import Layer, Workload


def repair_index(feasible: np.ndarray, gene: int) -> int | None:
    """The feasible index nearest to ``gene`` (ties: the lower index), or None."""
    ok = np.flatnonzero(feasible)
    if len(ok) == 0:
        return None
    dist = np.abs(ok - gene)
    return int(ok[np.argmin(dist)])


class OuterMapping:
    """Candidate lists per layer and network cost for given mapping genes."""

    def __init__(self, workload: Workload, k: int, metric: str = "energy", min_bits: tuple[int, int, int] = (2, 2, 2),
                 budget: int = 3000, seed: int = 0) -> None:
        self.workload = workload
        self.k = k
        self.metric = metric
        self.min_bits = tuple(int(b) for b in min_bits)
        self.budget = budget
        self.seed = seed
        self._candidates: dict[tuple, tuple[MappingBatch, Any]] = {}
        self._specs: dict[tuple, ms.MapspaceSpec] = {}
        self._layer_costs: dict[tuple, Any] = {}

    def spec(self, accel: Any) -> ms.MapspaceSpec:
        key = (accel.topology_key, accel.constraints, tuple((lvl.keep, lvl.bypass) for lvl in accel.levels))
        if key not in self._specs:
            self._specs[key] = ms.spec_from_accelerator(accel)
        return self._specs[key]

    def candidates(self, layer: Layer, accel: Any) -> tuple[MappingBatch, Any]:
        """The ``k`` best sampled mappings of ``layer`` on ``accel``'s topology, best first, and their accesses."""
        spec = self.spec(accel)
        key = (layer.shape_key, accel.topology_key, spec)
        hit = self._candidates.get(key)
        if hit is not None:
            return hit
        space = ms.Mapspace(layer, spec, ms.envelope_for(accel, self.min_bits))
        seed = (self.seed * 1_000_003 + zlib.crc32(repr(layer.shape_key).encode())) & 0xFFFFFFFF
        batch = space.materialize(*space.sample(self.budget, seed))
        if len(batch) == 0:
            self._candidates[key] = (batch, None)
            return self._candidates[key]
        acc = analyze(layer, accel, batch)
        values = metric_values(cost(acc, accel, self.min_bits), self.metric)
        order = np.argsort(values, kind="stable")
        order = order[np.isfinite(values[order])][: self.k]
        best = batch.take(order)
        self._candidates[key] = (best, analyze(layer, accel, best))
        return self._candidates[key]

    def layer_choice(self, layer: Layer, accel: Any, bits: tuple[int, int, int], gene: int) -> tuple[int | None, Any, MappingBatch]:
        """(repaired candidate index or None, costs of all candidates at ``bits``, candidates)."""
        batch, acc = self.candidates(layer, accel)
        key = (layer.shape_key, accel, bits)
        costs = self._layer_costs.get(key)
        if costs is None and acc is not None:
            costs = self._layer_costs[key] = cost(acc, accel, bits)
        if costs is None:
            return None, None, batch
        return repair_index(costs.feasible, min(int(gene), len(batch) - 1)), costs, batch

    def network_cost(self, accel: Any, policy: QuantPolicy, genes: Sequence[int]) -> NetworkCost:
        """Like :func:`jaqmoo.cost.network_cost`, with each layer's mapping chosen by its gene."""
        names = tuple(lvl.name for lvl in accel.levels)
        out = NetworkCost.start(self.workload.name, accel, self.metric)
        policy = policy.with_layers([layer.name for layer in self.workload.layers])
        for i, (layer, gene) in enumerate(zip(self.workload.layers, genes, strict=True)):
            lb = policy.tensor_bits(i)
            j, costs, batch = self.layer_choice(layer, accel, lb, gene)
            if j is None:
                why = costs.reason(min(int(gene), len(batch) - 1), names) if costs is not None and len(batch) else "no mapping fits the fan-out"
                return out.mark_infeasible(f"layer {layer.name!r}: no candidate mapping fits at bits {lb}: {why}")
            mapping = describe(batch, j, names) + (f" (gene {gene}->{j})" if j != gene else "")
            out.add(layer_cost(layer, accel, lb, costs, j, mapping, len(batch), batch.take([j])), accel)
        return out
