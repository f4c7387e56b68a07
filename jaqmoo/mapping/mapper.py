"""The mapper: the best mapping of a layer on an accelerator, found by vectorized search.

Search (one layer, one accelerator, one bit-width triple):

1. **Enumerate or sample** the constrained mapspace
   (:class:`~jaqmoo.mapping.mapspace.Mapspace`): factor splits that fit the fan-outs and
   the capacity envelope and use at least ``min_utilization`` of the most PEs any split
   reaches; all of them when the space is small, else ``budget`` splits drawn stratified
   over every parallelization (seeded by the layer shape, so results are reproducible).
2. **Expand** each split into all its reuse-distinct loop orders and free bypass choices.
3. **Evaluate** in chunks with the two-stage model (:func:`~jaqmoo.mapping.model.analyze`,
   :func:`~jaqmoo.mapping.model.cost`), dropping infeasible mappings.
4. **Refine** (local search): the ``refine_top`` best mappings' neighbours (one prime
   factor moved between two loops/fan-outs, all loop orders) are evaluated, repeatedly,
   until the best stops improving -- this reaches good mappings outside the sample.

Caching (a :class:`Mapper` owns its caches; keep one mapper for a whole search):

* results by ``(layer.shape_key, bits, accelerator, metric)``: a repeated shape or a
  revisited genome costs a dictionary look-up;
* per ``(layer.shape_key, accelerator family)`` a **tile set**
  (:class:`~jaqmoo.mapping.batchtile.TileSet`, BatchTile-style: the best mappings by the
  metric, the (energy, cycles) Pareto set, for every bounded level the best mapping for
  each buffer occupancy, the Pareto set of energy and every buffer's occupancy together,
  and for every fan-out the best mapping for each spatial size, so smaller buffers and PE
  arrays still find a good feasible mapping) together with its
  stage-A :class:`~jaqmoo.mapping.model.Accesses`, analyzed once. A new design of the same
  family (PE array, buffer depths, word widths, energies) or new bits re-fit the set: a
  fan-out mask, the exact stage-A counts of the fitting rows, and the cheap stage-B
  ``cost`` (the "hardware-search iteration"). A full search runs again when the new
  hardware or bits could fit tiles the cached enumeration pruned (larger buffers or
  smaller bits than ever seen for that shape), when no retained mapping fits, or for a PE
  array no search has seen unless ``refit_topologies``; its retained mappings are merged
  into the set. With ``refit_topologies`` and ``encode_budget`` > 0, such a PE array is
  first encoded by a bounded search of the requested design (once per shape and array)
  and then re-fitted: a re-fit alone lacks mappings that fill a new array at small buffers. :meth:`Mapper.prepare` runs such searches up front on corner designs of a
  hardware search space (every PE array, largest buffers, smallest bits), which keeps the
  re-fitted answers within ~1 % of a fresh search (see ``benchmarks/mapper_speed.py``).

The result is exact for the evaluated mappings (the model's numbers); the search itself
is a heuristic over the constrained space (sampling + local search), like Timeloop's own
random-pruned mapper. On the Timeloop reference ``mapper-eyeriss-like-conv`` it finds
55.27 uJ (energy) / 56.00 uJ at 64512 cycles (EDP) against Timeloop's 59.28 uJ, 86016.
"""

from __future__ import annotations

import copy
import dataclasses
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.mapping import mapspace as ms
from jaqmoo.mapping.batchtile import (
    RowView,
    TileSet,
    family_key,
    fanout_products,
    row_keys,
    take_rows,
)
from jaqmoo.mapping.mapping import MappingBatch, describe
from jaqmoo.mapping.model import Accesses, Costs, analyze, cost, evaluate
from jaqmoo.workload import DIMS, Layer

METRICS: tuple[str, ...] = ("energy", "edp", "cycles")


def metric_values(costs: Costs, metric: str) -> np.ndarray:
    """float64 [M]: the metric of every mapping (``inf`` where infeasible)."""
    if metric == "energy":
        v = costs.energy.astype(np.float64)
    elif metric == "edp":
        v = costs.energy * costs.cycles.astype(np.float64)
    elif metric == "cycles":
        # ties on cycles are broken by energy
        v = costs.cycles.astype(np.float64) * (1.0 + 1e-9) + costs.energy * 1e-12
    else:
        raise JaqmooError(f"metric must be one of {', '.join(METRICS)} (got {metric!r})")
    return np.where(costs.feasible, v, np.inf)


def pareto_indices(energy: np.ndarray, cycles: np.ndarray) -> np.ndarray:
    """Indices of the (energy, cycles) Pareto set (both minimized), by increasing energy."""
    if len(energy) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((cycles, energy))
    c = cycles[order]
    best_before = np.minimum.accumulate(np.concatenate([[np.inf], c[:-1]]))
    return order[c < best_before]


def pareto_front(objectives: np.ndarray, block: int = 256) -> np.ndarray:
    """Indices of the rows of ``objectives`` (float [M, k], all minimized) no other row dominates.

    A row is dropped when another has every objective at most its own (of equal rows only the
    first, in lexicographic order, is kept). Sorted lexicographically, a row can only be
    dominated by an earlier one; each block of rows is compared with the front found so far
    and within itself, so the work is M x front size x k.
    """
    n = len(objectives)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort(objectives.T[::-1])
    x = objectives[order]
    keep = np.zeros(n, dtype=bool)
    front = x[:0]
    for s in range(0, n, block):
        xb = x[s:s + block]
        out = (front[None, :, :] <= xb[:, None, :]).all(axis=2).any(axis=1)
        inner = (xb[None, :, :] <= xb[:, None, :]).all(axis=2)  # inner[i, j]: row j is at most row i
        inner &= np.tri(len(xb), k=-1, dtype=bool)  # only earlier rows (lexicographic order)
        ok = ~(out | inner.any(axis=1))
        keep[s:s + block] = ok
        front = np.concatenate([front, xb[ok]])
    return np.sort(order[keep])


def _staircase(occupancy: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Indices that are the best ``value`` for some occupancy budget (sorted by occupancy)."""
    ok = np.isfinite(value)
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return idx
    order = idx[np.lexsort((value[idx], occupancy[idx]))]
    v = value[order]
    best_before = np.minimum.accumulate(np.concatenate([[np.inf], v[:-1]]))
    return order[v < best_before]


@dataclass
class MappingResult:
    """The best mapping of one layer (and optionally the Pareto set)."""

    layer: Layer
    metric: str
    mapping: MappingBatch
    """The best mapping (a batch of 1)."""
    costs: Costs
    """Its costs (a batch of 1)."""
    description: str
    """One-line summary, outermost level first."""
    evaluated: int
    """Mappings evaluated to find it (0 for a cache hit on an identical request)."""
    pareto: MappingBatch | None = None
    """The (energy, cycles) Pareto set of the evaluated mappings, when asked for."""
    pareto_costs: Costs | None = None

    @property
    def energy(self) -> float:
        """pJ."""
        return float(self.costs.energy[0])

    @property
    def cycles(self) -> int:
        return int(self.costs.cycles[0])

    @property
    def utilization(self) -> float:
        return float(self.costs.utilization[0])

    @property
    def value(self) -> float:
        """The metric of the best mapping."""
        return float(metric_values(self.costs, self.metric)[0])


@dataclass
class MapperStats:
    """Counters (for benchmarks and tests)."""

    evaluated: int = 0
    """Mappings evaluated (analyze + cost) by full searches."""
    recosted: int = 0
    """Mappings re-costed (stage B only) from retained candidate sets."""
    searches: int = 0
    result_hits: int = 0
    candidate_hits: int = 0
    search_seconds: float = 0.0


@dataclass
class Mapper:
    """Finds and caches the best mapping per (layer shape, bits, accelerator).

    Args:
        metric: default metric: ``"energy"``, ``"edp"`` or ``"cycles"``.
        budget: factor splits evaluated per layer before refinement (more: slower, better).
        min_utilization: keep factor splits using at least this fraction of the most PEs
            any split of the layer can use.
        refine_top: mappings whose neighbours each refinement round evaluates.
        refine_rounds: maximum refinement rounds.
        keep_top: best mappings retained per shape for fast re-costing.
        refit_topologies: serve a PE array that no full search has seen from the tile sets
            other arrays encoded (fan-out fit + stage B, see :mod:`jaqmoo.mapping.batchtile`)
            instead of searching it; a hardware search turns this on after
            :meth:`prepare` has encoded corner designs of its space.
        encode_budget: with ``refit_topologies``, a PE array that no search has encoded into a
            shape's tile set is first encoded by a bounded search of the requested design
            (``encode_budget`` factor splits plus the best re-fitted mappings, from which
            ``encode_rounds`` refinement rounds start; 0: never) and merged into the set
            incrementally (:meth:`~jaqmoo.mapping.batchtile.TileSet.merged`), then re-fitted:
            the re-fit then holds mappings that fill that array at those buffers (off by
            default; the hardware search's evaluator turns it on, see
            docs/benchmarks/mapper_speed.md).
        encode_rounds: refinement rounds of those bounded searches.
        orders: ``"reuse"`` or ``"halo"`` (see :mod:`jaqmoo.mapping.mapspace`).
        chunk_rows: factor splits per evaluation chunk (memory bound).
        max_results: cached per-layer results kept (least recently used dropped first).
        seed: sampling seed (mixed with the layer shape).
    """

    metric: str = "energy"
    budget: int = 500
    min_utilization: float = 0.5
    refine_top: int = 8
    refine_rounds: int = 12
    keep_top: int = 64
    refit_topologies: bool = False
    encode_budget: int = 0
    encode_rounds: int = 3
    orders: str = "reuse"
    chunk_rows: int = 2048
    seed: int = 0
    max_results: int = 50_000
    stats: MapperStats = field(default_factory=MapperStats)
    _results: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _candidates: dict = field(default_factory=dict, repr=False)
    _specs: dict = field(default_factory=dict, repr=False)
    _tokens: dict = field(default_factory=dict, repr=False)
    _token_of: dict = field(default_factory=dict, repr=False)
    _derived: dict = field(default_factory=dict, repr=False)
    _encoded: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise JaqmooError(f"metric must be one of {', '.join(METRICS)} (got {self.metric!r})")
        for name in ("budget", "refine_top", "chunk_rows", "max_results", "keep_top"):
            if int(getattr(self, name)) < 1:
                raise JaqmooError(f"Mapper {name} must be a positive integer (got {getattr(self, name)!r})")
        if int(self.encode_budget) < 0 or int(self.encode_rounds) < 0:
            raise JaqmooError(f"Mapper encode_budget and encode_rounds must be >= 0 (got {self.encode_budget!r}, "
                              f"{self.encode_rounds!r})")
        if not 0.0 <= self.min_utilization <= 1.0:
            raise JaqmooError(f"Mapper min_utilization must be in [0, 1] (got {self.min_utilization!r})")
        if self.orders not in ("reuse", "halo"):
            raise JaqmooError(f"Mapper orders must be 'reuse' or 'halo' (got {self.orders!r})")

    # ------------------------------------------------------------------ public
    def spec(self, accel) -> ms.MapspaceSpec:
        """The (cached) mapspace structure of ``accel``."""
        key = (accel.topology_key, accel.constraints, tuple((lvl.keep, lvl.bypass) for lvl in accel.levels))
        spec = self._specs.get(key)
        if spec is None:
            spec = self._specs[key] = ms.spec_from_accelerator(accel)
        return spec

    def best(self, layer: Layer, accel, bits: tuple[int, int, int] | None = None,
             metric: str | None = None, pareto: bool = False) -> MappingResult:
        """The best feasible mapping of ``layer`` (raises :class:`JaqmooError` if none fits)."""
        metric = metric or self.metric
        if metric not in METRICS:
            raise JaqmooError(f"metric must be one of {', '.join(METRICS)} (got {metric!r})")
        bits = None if bits is None else tuple(int(b) for b in bits)
        skey = shape_key(layer)
        rkey = (skey, bits, self._token(accel), metric, pareto)
        hit = self._results.get(rkey)
        if hit is not None:
            self._results.move_to_end(rkey)
        if hit is not None:
            self.stats.result_hits += 1
            return hit if hit.layer is layer or hit.layer == layer else dataclasses.replace(hit, layer=layer, evaluated=0)
        topology, family = self._keys(rkey[2], accel)
        env = self._envelope(rkey[2], accel, bits)
        ckey = (skey, family)
        cand = self._candidates.get(ckey)
        result = None
        if (cand is not None and self.refit_topologies and self.encode_budget and cand.envelope.covers(env)
                and self._needs_encoding(ckey, topology, cand)):
            cand = self._encode_topology(layer, accel, bits, metric, env, ckey)
        if cand is not None and (self.refit_topologies or topology in cand.topologies) and cand.envelope.covers(env):
            result = self._from_candidates(layer, accel, bits, metric, pareto, cand)
            if result is not None:
                self.stats.candidate_hits += 1
        if result is None:
            result = self._search(layer, accel, bits, metric, pareto, self.spec(accel), env, ckey)
        self._results[rkey] = result
        while len(self._results) > self.max_results:  # least recently used first
            self._results.popitem(last=False)
        return result

    def prepare(self, layers, accels, bits: tuple[int, int, int] | None = (8, 8, 8),
                metric: str | None = None) -> None:
        """Run full searches for every distinct layer shape on each of ``accels``.

        Their retained candidates are merged into one :class:`~jaqmoo.mapping.batchtile.TileSet`
        per (shape, accelerator family), and the capacity envelope grows to cover the largest
        of them. A hardware search calls this once with corner designs of its parameter space
        (PE arrays, largest buffers, smallest bits) so that every later design re-fits a set
        that holds good mappings for it.
        """
        metric = metric or self.metric
        bits = None if bits is None else tuple(int(b) for b in bits)
        shapes = {shape_key(layer): layer for layer in layers}
        for accel in accels:
            spec = self.spec(accel)
            for skey, layer in shapes.items():
                ckey = (skey, family_key(accel))
                try:
                    self._search(layer, accel, bits, metric, False, spec, ms.envelope_for(accel, bits), ckey)
                except JaqmooError:
                    continue  # nothing fits this corner; other corners may still do

    def tile_sets(self) -> list[TileSet]:
        """Every cached tile set (one per layer shape and accelerator family)."""
        return list(self._candidates.values())

    def tile_set(self, layer: Layer, family: tuple) -> TileSet | None:
        """The tile set of ``layer``'s shape on accelerator family ``family`` (None: not searched yet)."""
        return self._candidates.get((shape_key(layer), family))

    def install_tile_set(self, layer: Layer, family: tuple, tile_set: TileSet) -> None:
        """Use ``tile_set`` (e.g. read from :mod:`jaqmoo.mapping.cache`) for ``layer``'s shape on ``family``."""
        self._candidates[(shape_key(layer), family)] = tile_set

    def prune_tile_sets(self) -> int:
        """Compute the dominance pruning of every tile set now (else on first use); rows kept."""
        return sum(int((~t.dominated).sum()) for t in self._candidates.values())

    def retained_sizes(self) -> list[int]:
        """Number of retained candidates of every cached (shape, accelerator family)."""
        return [len(c.batch) for c in self._candidates.values()]

    def clear(self) -> None:
        """Drop every cached result and candidate set."""
        self._results.clear()
        self._candidates.clear()
        self._tokens.clear()
        self._derived.clear()
        self._encoded.clear()

    def _keys(self, token: int, accel) -> tuple[tuple, tuple]:
        """``(topology_key, family_key)`` of ``accel`` (computed once per accelerator)."""
        hit = self._derived.get(("keys", token))
        if hit is None:
            hit = self._derived[("keys", token)] = (accel.topology_key, family_key(accel))
        return hit

    def _envelope(self, token: int, accel, bits) -> ms.CapacityEnvelope:
        """``envelope_for(accel, bits)``, computed once per (accelerator, bits)."""
        hit = self._derived.get(("env", token, bits))
        if hit is None:
            if len(self._derived) > self.max_results:
                self._derived.clear()
            hit = self._derived[("env", token, bits)] = ms.envelope_for(accel, bits)
        return hit

    def _token(self, accel) -> int:
        """A small int standing for ``accel`` (equal accelerators share it; hashed once per object)."""
        hit = self._tokens.get(id(accel))
        if hit is not None and hit[0] is accel:
            return hit[1]
        token = self._token_of.setdefault(accel, len(self._token_of))
        self._tokens[id(accel)] = (accel, token)
        return token

    # ------------------------------------------------------------------ internals
    def _result(self, layer, accel, bits, metric, pareto, batch: MappingBatch | RowView, costs: Costs,
                evaluated: int, describe_row=None) -> MappingResult | None:
        """The best row of ``costs`` as a result (``describe_row(i)``: its description, if cached)."""
        values = metric_values(costs, metric)
        if not np.isfinite(values).any():
            return None
        i = int(np.argmin(values))
        best = batch.take([i])
        best_costs = take_costs(costs, [i], accel, bits)
        par, par_costs = None, None
        if pareto:
            f = np.flatnonzero(costs.feasible)
            sel = f[pareto_indices(costs.energy[f], costs.cycles[f].astype(np.float64))]
            par = batch.take(sel)
            par_costs = take_costs(costs, sel, accel, bits)
        if describe_row is None:
            text = describe(best, 0, tuple(lvl.name for lvl in accel.levels))
        else:
            text = describe_row(i)
        return MappingResult(layer, metric, best, best_costs, text, evaluated, par, par_costs)

    def _from_candidates(self, layer, accel, bits, metric, pareto, cand: TileSet) -> MappingResult | None:
        rows, acc = cand.fit_rows(layer, accel)
        if len(rows) == 0:
            return None
        costs = cost(acc, accel, bits)
        self.stats.recosted += len(rows)
        return self._result(layer, accel, bits, metric, pareto, RowView(cand.batch, rows), costs, len(rows),
                            lambda i: cand.describe(int(rows[i])))

    def _needs_encoding(self, ckey, topology, cand: TileSet) -> bool:
        """Whether a bounded search of this request must be merged into ``cand`` before the re-fit:
        its PE array was never searched for this shape. (Searching an array again for other
        buffers or bits, whenever a request's capacity is 4 or 8 times below every one searched
        there, would take 9-17x the searches over a 3,200-candidate search: not done.)"""
        return topology not in cand.topologies and (ckey, topology) not in self._encoded

    def _encode_topology(self, layer, accel, bits, metric, env, ckey) -> TileSet:
        """Merge a bounded search of ``accel`` (a PE array new to the set) into the tile set ``ckey``."""
        self._encoded[(ckey, accel.topology_key)] = env
        _, batch, acc = self._candidates[ckey].fit(layer, accel)
        values = metric_values(cost(acc, accel, bits), metric)
        top = np.argsort(values)[: self.refine_top]
        try:
            self._search(layer, accel, bits, metric, False, self.spec(accel), env, ckey,
                         budget=self.encode_budget, rounds=self.encode_rounds,
                         start=batch.take(top[np.isfinite(values[top])]))
        except JaqmooError:
            pass  # nothing found in the bounded search: the re-fit (or a full search) answers
        return self._candidates[ckey]

    def _retain(self, acc: Accesses, batch: MappingBatch, accel, bits, metric: str) -> np.ndarray:
        """Indices worth keeping for re-costing under other hardware parameters.

        The best ``keep_top`` by the metric and the (energy, cycles) Pareto set on ``accel``;
        per bounded level, the best energy / cycles for every occupancy in words (so a smaller
        buffer there still has a good feasible mapping); the Pareto set of energy and the
        occupancy of every bounded level (so smaller buffers at *several* levels at once still
        have the best evaluated mapping that fits them all, :func:`_capacity_front`); per fan-out,
        the best energy / cycles for every product of X (Y) spatial factors (so a smaller PE
        array still has one).
        """
        costs = cost(acc, accel, bits)
        values = metric_values(costs, metric)
        finite = np.flatnonzero(np.isfinite(values))
        keep = [finite[np.argsort(values[finite])[: self.keep_top]]]
        if len(finite):
            keep.append(finite[pareto_indices(costs.energy[finite], costs.cycles[finite].astype(np.float64))])
        possible = costs.width_ok & acc.fanout_ok
        spreads = _fanout_spreads(batch)
        for m in ("energy", "cycles"):
            v = np.where(possible, costs.energy if m == "energy" else costs.cycles.astype(np.float64), np.inf)
            for lvl in range(costs.occupancy_words.shape[1]):
                occ = costs.occupancy_words[:, lvl]
                if occ.max(initial=0) > 0:
                    keep.append(_staircase(occ, v))
            for spread in spreads:
                keep.append(_staircase(spread, v))
        keep.append(_capacity_front(acc, costs, accel, np.flatnonzero(possible)))
        return np.unique(np.concatenate(keep))

    def _search(self, layer, accel, bits, metric, pareto, spec, env, ckey, budget: int | None = None,
                rounds: int | None = None, start: MappingBatch | None = None) -> MappingResult:
        """A sampled + refined search (``budget`` splits, ``rounds`` refinement rounds; ``start``:
        mappings evaluated first, e.g. the best re-fitted ones, that refinement may start from)."""

        t0 = time.perf_counter()
        self.stats.searches += 1
        space = ms.Mapspace(layer, spec, env, orders=self.orders, min_utilization=self.min_utilization)
        seed = (self.seed * 1_000_003 + zlib.crc32(repr(layer.shape_key).encode())) & 0xFFFFFFFF
        idx, tiles = space.sample(self.budget if budget is None else budget, seed)
        pool: list[MappingBatch] = []
        evaluated = 0
        seen = np.zeros(0, dtype=np.int64)

        def run(batch: MappingBatch) -> None:
            nonlocal evaluated, seen
            if len(batch) == 0:
                return
            keys = row_keys(batch)
            new = ~np.isin(keys, seen)
            if not new.all():  # already evaluated (refinement revisits the pool's neighbours)
                batch, keys = batch.take(new), keys[new]
            if len(batch) == 0:
                return
            seen = np.concatenate([seen, keys])
            acc = analyze(layer, accel, batch)
            evaluated += len(batch)
            sel = self._retain(acc, batch, accel, bits, metric)
            if len(sel):
                pool.append(batch.take(sel))

        def refine(hw, rounds: int) -> None:
            """Local search from the best pooled mappings on ``hw`` until they stop improving."""
            best_value = np.inf
            for _ in range(rounds):
                merged = MappingBatch.concat(pool)
                values = metric_values(evaluate(layer, hw, merged, bits), metric)
                if not np.isfinite(values).any() or values.min() >= best_value * (1 - 1e-9):
                    return
                best_value = float(values.min())
                top = np.argsort(values)[: self.refine_top]
                top = top[np.isfinite(values[top])]
                run(ms.neighbors(merged.take(top), layer, spec, env, halo=self.orders == "halo"))

        if start is not None:
            run(start)
        for s in range(0, len(idx), self.chunk_rows):
            run(space.materialize(idx[s:s + self.chunk_rows], tiles[s:s + self.chunk_rows]))
        if pool:
            refine(accel, self.refine_rounds if rounds is None else rounds)
        if not pool:
            self.stats.search_seconds += time.perf_counter() - t0
            raise no_mapping_error(layer, accel, bits, spec)
        merged = MappingBatch.concat(pool)
        acc = analyze(layer, accel, merged)
        sel = self._retain(acc, merged, accel, bits, metric)
        # keep what earlier searches (other hardware, other PE arrays) found good, too
        previous = self._candidates.get(ckey)
        self._candidates[ckey] = (TileSet.encode(layer, accel, merged.take(sel), env) if previous is None
                                  else previous.merged(layer, accel, merged.take(sel), env))
        self.stats.evaluated += evaluated
        result = self._result(layer, accel, bits, metric, pareto, merged, cost(acc, accel, bits), evaluated)
        self.stats.search_seconds += time.perf_counter() - t0
        if result is None:
            raise no_mapping_error(layer, accel, bits, spec)
        return result


def take_costs(costs: Costs, index, accel, bits) -> Costs:
    """The mappings ``index`` of ``costs`` (as ``cost`` would give them for those mappings).

    Per-mapping arrays are those whose first axis has the batch size; when that equals the
    number of levels (ambiguous with per-level arrays) the rows are re-costed instead.
    """
    n = len(costs)
    if n == costs.accesses.tile.shape[1]:
        return cost(take_rows(costs.accesses, index), accel, bits)
    out = copy.copy(costs)
    out.accesses = take_rows(costs.accesses, index)
    for name, value in vars(costs).items():
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == n:
            setattr(out, name, value[index])
    return out


_LAYER_FIELDS = tuple(f.name for f in dataclasses.fields(Layer) if f.name != "name")


def shape_key(layer: Layer) -> tuple:
    """``layer.shape_key`` (everything but the name), computed without ``asdict``."""
    return tuple(getattr(layer, f) for f in _LAYER_FIELDS)


def _capacity_front(acc: Accesses, costs: Costs, accel, rows: np.ndarray) -> np.ndarray:
    """The rows of ``rows`` on the Pareto front of energy and every bounded buffer's occupancy.

    Objectives, all minimized: the energy on ``accel`` and, per bounded level, the values its
    kept tiles hold (in values, not words, so that the front does not depend on the bits and
    word widths it was found at). For a design with smaller buffers everywhere at the same bits
    and energies, the best of ``rows`` that fits it is then matched by a front member with no
    more energy and no more values in any buffer, which fits too whenever words grow with values
    there (a buffer of one tensor at fixed bits: the scratchpads). The per-level staircases
    cannot promise that: each keeps the best mapping for one buffer's occupancy whatever the
    others need (keeping the tensors of a shared buffer apart: a front ~30 % larger, see
    docs/benchmarks/mapper_speed.md).
    """
    bounded = [i for i, lvl in enumerate(accel.levels) if lvl.depth is not None and not lvl.is_dummy]
    if len(rows) == 0 or not bounded:
        return rows
    held = (acc.tile_f[rows][:, bounded] * acc.keep[rows][:, bounded]).sum(axis=2)
    held = held[:, held.min(axis=0) < held.max(axis=0)]  # constant columns decide nothing
    return rows[pareto_front(np.concatenate([costs.energy[rows, None].astype(np.float64), held], axis=1))]


def _fanout_spreads(batch: MappingBatch) -> list[np.ndarray]:
    """Per level with a spatial split: each mapping's X, Y and X*Y spatial factor products."""
    fan = fanout_products(batch)
    out = []
    for lvl in range(fan.shape[1]):
        x, y = fan[:, lvl, 0], fan[:, lvl, 1]
        out += [a for a in (x, y, x * y) if a.max(initial=1) > 1]
    return out


def smallest_mapping(layer: Layer, spec: ms.MapspaceSpec) -> MappingBatch:
    """The mapping with the smallest tiles: every free factor at the outermost free loop."""
    spec = ms.for_layer(spec, layer)
    n_levels = spec.n_levels
    temporal = np.ones((n_levels, len(DIMS)), dtype=np.int64)
    sx = np.ones_like(temporal)
    sy = np.ones_like(temporal)
    for d, name in enumerate(DIMS):
        remaining = getattr(layer, name)
        for lvl, rule in enumerate(spec.rules):  # fixed factors first
            for arr, fixed in ((temporal, rule.temporal[d]), (sx if rule.spatial_axis[d] != ms.AXIS_Y else sy, rule.spatial[d])):
                if fixed > 1:
                    f = int(np.gcd(fixed, remaining))
                    arr[lvl, d] *= f
                    remaining //= f
        slots = ms.free_slots(layer, spec)[d]
        kind, lvl = slots[0] if slots else (0, 0)
        (temporal, sx, sy)[kind][lvl, d] *= remaining
    keep = np.array([[k == ms.KEEP_YES for k in r.keep] for r in spec.rules], dtype=bool)
    _, perm = ms.expand_orders(temporal[None], spec)
    return MappingBatch(temporal[None], sx[None], sy[None], perm[:1], keep[None])


def no_mapping_error(layer: Layer, accel, bits, spec: ms.MapspaceSpec) -> JaqmooError:
    """A :class:`JaqmooError` saying which level is too small for ``layer`` and by how much."""
    batch = smallest_mapping(layer, spec)
    c = evaluate(layer, accel, batch, bits)
    bits_txt = "each level's datawidth" if bits is None else f"{bits[0]}/{bits[1]}/{bits[2]} bits (w/in/out)"
    if bits is not None:
        acc = "each level's datawidth" if accel.accumulator_bits is None else f"{accel.accumulator_bits} bits"
        bits_txt += f", partial sums at {acc}"
    if not c.width_ok[0]:
        lvl = int(c.fail_level[0])
        return JaqmooError(
            f"layer {layer.name!r}: {c.reason(0)} at {bits_txt}; level {accel.levels[lvl].name!r} has "
            f"{accel.levels[lvl].width}-bit words -- use fewer bits or a wider word"
        )
    depth = [lvl.effective_depth for lvl in accel.levels]
    for lvl, level in enumerate(accel.levels):
        need = int(c.occupancy_words[0, lvl])
        if depth[lvl] is not None and not level.is_dummy and need > depth[lvl]:
            return JaqmooError(
                f"layer {layer.name!r}: no mapping fits: level {level.name!r} needs at least {need} words "
                f"per instance for the smallest tile (at {bits_txt}) but only {int(depth[lvl])} fit; "
                f"increase its depth or word width, or use fewer bits"
            )
    return JaqmooError(
        f"layer {layer.name!r}: the mapper found no feasible mapping on {accel.name!r} at {bits_txt} "
        f"(the smallest tiles fit; the constraints may leave too few choices)"
    )


def find_best_mapping(layer: Layer, accel, bits: tuple[int, int, int] | None = None, metric: str = "energy",
                      pareto: bool = False, mapper: Mapper | None = None) -> MappingResult:
    """Best mapping of ``layer`` on ``accel`` at ``bits`` (None: Timeloop's datawidths) by ``metric``.

    Pass a :class:`Mapper` to share its caches across calls.
    """
    return (mapper or Mapper(metric=metric)).best(layer, accel, bits, metric=metric, pareto=pareto)


__all__ = ["METRICS", "Mapper", "MapperStats", "MappingResult", "find_best_mapping", "metric_values",
           "no_mapping_error", "pareto_front", "pareto_indices", "smallest_mapping"]
