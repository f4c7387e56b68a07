"""The real candidate evaluator: accuracy estimator + cost model (+ mapper or mapping genes).

:class:`JointEvaluator` implements :class:`jaqmoo.search.problem.CandidateEvaluator`.
Accuracy is estimated for the whole batch at once (cached per policy); cost comes from
:func:`jaqmoo.cost.network_cost` on the accelerator built from the candidate's hardware
parameters (cached per parameter set). In ``inner`` mapping mode the mapper picks each
layer's best mapping for the decoded bits and hardware; in ``outer`` mode each layer's
mapping gene indexes its candidate list (:mod:`jaqmoo.search.mapping_genes`). A candidate
with a layer that fits no buffer is returned ``feasible=False`` with the reason.

Inner mode pays a one-time warm-up (:meth:`JointEvaluator.prepare`, run before the first
cost): every layer shape is searched on corner designs of the hardware space -- each PE
array the genes allow (a grid of them when there are more than ``max_pe_arrays``) at the
largest buffers and word widths with the smallest bits, and a coarse grid of PE arrays at the
smallest buffers and word widths with the largest bits and at lower-third ones with the
middle bits -- and the retained mappings, pruned
of dominated ones, form one BatchTile set per shape
(:mod:`jaqmoo.mapping.batchtile`). Every candidate after that,
whatever its PE array, buffers, word widths or bits, is a re-fit of those sets: a fan-out
mask and the stage-B cost, no search -- except on a PE array the warm-up did not encode (when
the space has more than ``max_pe_arrays``), which each layer shape searches once, briefly
(:data:`ENCODE_BUDGET`), the first time a candidate uses it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.search.genome import Candidate, GenomeSpace
from jaqmoo.workload import Workload

NAN = float("nan")
ENCODE_BUDGET = 64
"""``Mapper.encode_budget`` of inner mapping: a PE array the warm-up did not encode is searched once
per layer shape (64 factor splits, refinement from the best re-fitted mappings) before its re-fit
(see docs/benchmarks/mapper_speed.md: the re-fit alone misses such arrays by up to 17 %)."""
ENCODE_ROUNDS = 3
COST_KEYS = ("energy_pj", "cycles", "latency_s", "edp", "memory_bits", "weight_memory_bits",
             "activation_memory_bits", "area_mm2")


def accelerator_area_mm2(accel: Any) -> float | None:
    """Total area of an accelerator in mm² (None when its tables carry no area)."""
    area = getattr(accel, "area_um2", None)
    if area is None:
        return None
    area = area() if callable(area) else area
    return float(area) / 1e6 if area else None


def cost_record(cost: Any) -> dict[str, Any]:
    """Flatten a ``NetworkCost`` into record columns (totals, per-level energy, per-layer mappings)."""
    rec: dict[str, Any] = {"feasible": bool(getattr(cost, "feasible", True)), "reason": getattr(cost, "reason", "") or ""}
    for k in COST_KEYS:
        v = getattr(cost, k, None)
        rec[k] = float(v) if v is not None else NAN
    levels: dict[str, float] = {}
    for lc in cost.layers:
        rec[f"map.{lc.name}"] = getattr(lc, "mapping", None) or getattr(lc, "mapping_summary", "") or ""
        for lvl, e in (getattr(lc, "energy_by_level", None) or {}).items():
            levels[lvl] = levels.get(lvl, 0.0) + float(e)
    for lvl, e in levels.items():
        rec[f"energy.{lvl}"] = e
    if not rec["feasible"]:
        for k in COST_KEYS:
            rec[k] = NAN
    return rec


def infeasible_record(reason: str) -> dict[str, Any]:
    return {"feasible": False, "reason": reason, **{k: NAN for k in COST_KEYS}}


class JointEvaluator:
    """Scores candidates for accuracy and hardware cost (see the module doc)."""

    def __init__(self, workload: Workload, template: Any, accuracy: Any, space: GenomeSpace,
                 metric: str = "energy", accumulator_bits: int | None = None, max_pe_arrays: int = 36,
                 cache_dir: str | Path | None = None) -> None:
        self.workload = workload
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        """Folder of the persistent warm-up cache (:mod:`jaqmoo.mapping.cache`); None: no cache."""
        self.warmup_stats: Any = None
        """:class:`jaqmoo.mapping.cache.WarmupStats` of :meth:`prepare` (None until it ran)."""
        self.accumulator_bits = accumulator_bits
        """Partial-sum width given by the spec (None: the template's psum width)."""
        self.template = template
        self.accuracy = accuracy
        self.space = space
        self.metric = metric
        self._accels: dict[tuple, Any] = {}
        self._costs: dict[tuple, dict] = {}
        self.mapper = self._make_mapper()
        self._loose = self._capacity_genes()
        self.max_pe_arrays = int(max_pe_arrays)
        self.warmup_seconds: float | None = None
        """Seconds :meth:`prepare` took (None until it ran)."""
        self.outer = None
        if space.mapping_mode == "outer":
            from jaqmoo.search.mapping_genes import OuterMapping

            w_min = min(list(space.weight_choices) + [w for w, _ in space.fixed_layers.values()])
            a_min = min(list(space.act_choices) + [a for _, a in space.fixed_layers.values()])
            self.outer = OuterMapping(workload, space.mapping_candidates, metric, min_bits=(w_min, a_min, a_min))

    def _make_mapper(self) -> Any:
        from jaqmoo.mapping.mapper import Mapper

        return Mapper(metric=self.metric, encode_budget=ENCODE_BUDGET, encode_rounds=ENCODE_ROUNDS)

    def _capacity_genes(self) -> dict[str, int]:
        """Searched parameters that leave the topology alone (buffer depths, word widths...), at their maximum."""
        base = dict(self.space.hardware_fixed)
        try:
            ref = self.template.build(**base).topology_key
        except JaqmooError:
            return {}
        out = {}
        for g in self.space.hardware_genes:
            try:
                same = all(self.template.build(**base, **{g.name: v}).topology_key == ref for v in g.choices)
            except JaqmooError:
                same = False
            if same:
                out[g.name] = g.choices[-1]
        return out

    @property
    def min_bits(self) -> tuple[int, int, int]:
        fixed = list(self.space.fixed_layers.values())
        w = min(list(self.space.weight_choices) + [b[0] for b in fixed])
        a = min(list(self.space.act_choices) + [b[1] for b in fixed])
        return (w, a, min(a, 8))

    @property
    def max_bits(self) -> tuple[int, int, int]:
        fixed = list(self.space.fixed_layers.values())
        w = max(list(self.space.weight_choices) + [b[0] for b in fixed])
        a = max(list(self.space.act_choices) + [b[1] for b in fixed])
        return (w, a, max(a, self.space.last_output_bits))

    @property
    def mid_bits(self) -> tuple[int, int, int]:
        w = sorted(self.space.weight_choices)[len(self.space.weight_choices) // 2]
        a = sorted(self.space.act_choices)[len(self.space.act_choices) // 2]
        return (w, a, a)

    def pe_arrays(self, limit: int | None = None) -> list[dict[str, int]]:
        """Values of the genes that change the topology (PE array sizes...) that :meth:`prepare` encodes.

        Every combination of their choices, or, when there are more than ``limit`` (default
        ``max_pe_arrays``), of their smallest, middle and largest choices (a seeded sample of
        ``limit`` if still too many).
        """
        limit = self.max_pe_arrays if limit is None else limit
        topo = [g for g in self.space.hardware_genes if g.name not in self._loose]
        grids = [list(g.choices) for g in topo]
        if int(np.prod([len(c) for c in grids], dtype=float)) > limit:
            grids = [sorted({c[0], c[len(c) // 2], c[-1]}) for c in grids]
        combos = list(itertools.product(*grids))
        if len(combos) > limit:
            rng = np.random.default_rng(0)
            combos = [combos[i] for i in sorted(rng.choice(len(combos), limit, replace=False))]
        return [{g.name: v for g, v in zip(topo, combo, strict=True)} for combo in combos]

    def corner_designs(self) -> list[tuple[dict[str, int], tuple[int, int, int]]]:
        """``(hardware, bits)`` corners :meth:`prepare` searches.

        Each PE array of :meth:`pe_arrays` with the capacity genes (buffer depths, word
        widths...) at their largest choice and the smallest bits (so the tile sets cover every
        PE array of the space), then a coarse grid of PE arrays (smallest / middle / largest
        choices, at most ``max_pe_arrays // 4``) with the capacity genes at their smallest
        choice and the largest bits, and at their lower-third choice and the middle bits (so
        they hold mappings for small and middling buffers too).
        """
        base = dict(self.space.hardware_fixed)
        capacity = [g for g in self.space.hardware_genes if g.name in self._loose]
        tight = {g.name: g.choices[0] for g in capacity}
        lower = {g.name: g.choices[len(g.choices) // 3] for g in capacity}
        coarse = self.pe_arrays(max(1, min(self.max_pe_arrays // 4, 9)))
        return ([({**base, **self._loose, **pe}, self.min_bits) for pe in self.pe_arrays()]
                + [({**base, **tight, **pe}, self.max_bits) for pe in coarse]
                + [({**base, **lower, **pe}, self.mid_bits) for pe in coarse])

    def prepare(self) -> float:
        """The one-time warm-up of inner mapping (see the module doc); returns its seconds."""
        if self.warmup_seconds is not None:
            return self.warmup_seconds
        from jaqmoo.mapping.cache import TileSetCache, warm_up

        t0 = time.perf_counter()
        corners = []
        for design, bits in self.corner_designs():
            try:
                corners.append((self.accelerator(design), bits))
            except JaqmooError:
                continue  # an impossible corner; the real request reports it
        cache = None if self.cache_dir is None else TileSetCache(self.cache_dir)
        self.warmup_stats = warm_up(self.mapper, self.workload.layers, corners, self.metric, cache)
        self.mapper.prune_tile_sets()
        self.mapper.refit_topologies = True
        self.warmup_seconds = time.perf_counter() - t0
        return self.warmup_seconds

    @property
    def energy_source(self) -> str:
        return str(getattr(self.accelerator(dict(self.space.hardware_fixed)), "energy_source", ""))

    def accelerator(self, hardware: dict[str, int]) -> Any:
        key = tuple(sorted(hardware.items()))
        if key not in self._accels:
            self._accels[key] = self.template.build(**hardware).with_accumulator_bits(
                self.accumulator_bits, "quantization.accumulator_bits")
        return self._accels[key]

    def cost(self, cand: Candidate) -> dict[str, Any]:
        """Cost columns of one candidate (memoised: the search revisits genomes)."""
        key = (cand.policy.weight_bits, cand.policy.act_bits, cand.hardware_key(), cand.mapping_genes)
        if key not in self._costs:
            self._costs[key] = self._compute_cost(cand)
        return self._costs[key]

    def cost_value(self, cand: Candidate, key: str) -> float:
        """One cost column of ``cand`` (``energy_pj``, ``latency_s``...; inf when infeasible), not
        memoised: for searchers that probe many policies they never store (HAQ's action wall)."""
        memo = self._costs.get((cand.policy.weight_bits, cand.policy.act_bits, cand.hardware_key(), cand.mapping_genes))
        rec = memo if memo is not None else self._compute_cost(cand)
        v = rec.get(key, NAN)
        return float(v) if rec["feasible"] and v is not None and np.isfinite(v) else float("inf")

    def _compute_cost(self, cand: Candidate) -> dict[str, Any]:
        try:
            accel = self.accelerator(dict(cand.hardware))
        except JaqmooError as exc:
            rec = infeasible_record(f"hardware: {exc}")
        else:
            try:
                rec = cost_record(self.network_cost(cand))
            except JaqmooError as exc:
                if self.outer is not None:
                    raise
                rec = infeasible_record(str(exc))
            if rec["feasible"] and not np.isfinite(rec.get("area_mm2", NAN)):
                area = accelerator_area_mm2(accel)
                rec["area_mm2"] = area if area is not None else NAN
        return rec

    def network_cost(self, cand: Candidate) -> Any:
        """The per-layer :class:`~jaqmoo.cost.NetworkCost` of one candidate (mappings, energy per
        level and tensor); raises :class:`JaqmooError` when its hardware cannot be built."""
        accel = self.accelerator(dict(cand.hardware))
        if self.outer is not None:
            return self.outer.network_cost(accel, cand.policy, cand.mapping_genes)
        from jaqmoo.cost import network_cost

        self.prepare()
        return network_cost(self.workload, accel, policy=cand.policy, metric=self.metric, mapper=self.mapper,
                            raise_on_infeasible=False)

    def evaluate(self, candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
        acc = self.accuracy.estimate([c.policy for c in candidates])
        out = []
        for c, a in zip(candidates, acc, strict=True):
            rec = dict(self.cost(c))
            rec["accuracy"] = float(a)
            out.append(rec)
        return out
