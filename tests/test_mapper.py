"""Mapper and mapspace: feasibility, constraints, caching, optimality against Timeloop."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.spec import MapConstraint
from jaqmoo.hardware.templates import load_accelerator_spec
from jaqmoo.mapping import mapspace as ms
from jaqmoo.mapping.mapper import (
    Mapper,
    find_best_mapping,
    metric_values,
    pareto_front,
    pareto_indices,
)
from jaqmoo.mapping.mapping import MappingBatch, single_level_order
from jaqmoo.mapping.model import cost, evaluate
from jaqmoo.workload import DIMS, Layer

REF = Path(__file__).resolve().parents[2] / "shared" / "reference" / "timeloop" / "mapper-eyeriss-like-conv"
if not REF.exists():
    REF = Path("/work/shared/reference/timeloop/mapper-eyeriss-like-conv")

FAST = dict(budget=400, refine_rounds=4)


@pytest.fixture(scope="module")
def reference():
    if not REF.exists():
        pytest.skip("Timeloop reference folder not available")
    from jaqmoo.timeloop.inputs import load_timeloop_input

    return load_timeloop_input(REF / "parsed-processed-input.yaml")


SMALL = Layer("small", "conv", K=16, C=8, P=8, Q=8, R=3, S=3)
DEPTHWISE = Layer("dw", "depthwise", G=16, P=8, Q=8, R=3, S=3)
LINEAR = Layer("fc", "linear", K=10, C=64)


@pytest.mark.parametrize("layer", [SMALL, DEPTHWISE, LINEAR], ids=lambda layer: layer.name)
def test_mapspace_covers_dims_and_respects_constraints(eyeriss, layer):
    mapper = Mapper(**FAST)
    spec = mapper.spec(eyeriss)
    env = ms.envelope_for(eyeriss, (8, 8, 8))
    space = ms.Mapspace(layer, spec, env)
    assert len(space) > 0
    batch = space.materialize(*space.sample(300))
    assert len(batch) > 0
    batch.check(layer)  # factors multiply to the dims, perms are permutations
    assert ms.satisfies(batch, layer, spec, env).all()
    # the eyeriss constraints: no temporal loops at the ifmap spad, Q/K only on X below the column level
    ifmap = eyeriss.level_index("ifmap_spad")
    assert (batch.temporal[:, ifmap] == 1).all()
    col = eyeriss.level_index("inter_PE_column_spatial")
    allowed_x = [DIMS.index(d) for d in ("K", "Q", "G")]
    others = [i for i in range(len(DIMS)) if i not in allowed_x]
    assert (batch.spatial_x[:, col][:, others] == 1).all()
    assert (batch.spatial_y[:, col] == 1).all()
    # fan-outs fit the mesh
    for lvl, (fx, fy) in enumerate(eyeriss.fanouts):
        assert (batch.spatial_x[:, lvl].prod(axis=1) <= fx).all()
        assert (batch.spatial_y[:, lvl].prod(axis=1) <= fy).all()


def test_neighbors_respect_constraints(eyeriss):
    mapper = Mapper(**FAST)
    spec = mapper.spec(eyeriss)
    env = ms.envelope_for(eyeriss, (8, 8, 8))
    space = ms.Mapspace(SMALL, spec, env)
    batch = space.materialize(*space.sample(5))
    nb = ms.neighbors(batch, SMALL, spec, env)
    assert len(nb) > 0
    nb.check(SMALL)
    assert ms.satisfies(nb, SMALL, spec, env).all()


def test_ordered_factorizations():
    f = ms.ordered_factorizations(12, 3)
    assert (f.prod(axis=1) == 12).all()
    assert len({tuple(r) for r in f}) == len(f) == 18  # (2^2 over 3 slots: 6) x (3 over 3: 3)


def test_mapper_returns_feasible_best(eyeriss):
    r = find_best_mapping(SMALL, eyeriss, (8, 8, 8), metric="energy")
    assert r.costs.feasible.all()
    assert r.evaluated > 0
    again = evaluate(SMALL, eyeriss, r.mapping, (8, 8, 8))
    assert again.energy[0] == pytest.approx(r.energy)
    assert "psum_spad" in r.description or "weights_spad" in r.description


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    k=st.sampled_from([1, 2, 4, 6, 16, 24]),
    c=st.sampled_from([1, 3, 8, 12]),
    pq=st.sampled_from([1, 2, 7, 8]),
    rs=st.sampled_from([1, 3]),
    psum=st.sampled_from([1, 2, 4]),
    wspad=st.sampled_from([1, 2, 8]),
    bits=st.sampled_from([(8, 8, 8), (4, 4, 4), (2, 8, 4)]),
)
def test_overflowing_mapping_is_never_returned(eyeriss, k, c, pq, rs, psum, wspad, bits):
    """Tiny buffers: the mapper either returns a mapping that fits every level or says why not."""
    levels = list(eyeriss.levels)
    for i, lvl in enumerate(levels):
        if lvl.name == "psum_spad":
            levels[i] = dataclasses.replace(lvl, depth=psum)
        if lvl.name == "weights_spad":
            levels[i] = dataclasses.replace(lvl, depth=wspad)
    accel = dataclasses.replace(eyeriss, levels=tuple(levels))
    layer = Layer("h", "conv", K=k, C=c, P=pq, Q=pq, R=rs, S=rs)
    try:
        r = find_best_mapping(layer, accel, bits, metric="energy", mapper=Mapper(**FAST))
    except JaqmooError as exc:
        assert "'h'" in str(exc)
        return
    c_ = evaluate(layer, accel, r.mapping, bits)
    assert c_.feasible.all()
    for i, lvl in enumerate(accel.levels):
        if lvl.depth is not None and not lvl.is_dummy:
            assert c_.occupancy_words[0, i] <= lvl.effective_depth


def test_cache_hit_returns_identical_result(eyeriss):
    mapper = Mapper(**FAST)
    a = mapper.best(SMALL, eyeriss, (8, 8, 8))
    searches = mapper.stats.searches
    b = mapper.best(SMALL, eyeriss, (8, 8, 8))
    assert b is a
    assert mapper.stats.result_hits == 1 and mapper.stats.searches == searches
    renamed = dataclasses.replace(SMALL, name="other")
    c = mapper.best(renamed, eyeriss, (8, 8, 8))
    assert c.layer.name == "other"
    assert c.description == a.description and c.energy == a.energy
    for f in ("temporal", "spatial_x", "spatial_y", "perm", "keep"):
        assert np.array_equal(getattr(c.mapping, f), getattr(a.mapping, f))


def test_new_hardware_recosts_cached_candidates(eyeriss):
    """Smaller buffers / other energies re-run only stage B on the retained candidates."""
    mapper = Mapper(**FAST)
    mapper.best(SMALL, eyeriss, (8, 8, 8))
    searches = mapper.stats.searches
    smaller = load_accelerator_spec("eyeriss", glb_depth=4096, weights_spad_depth=128)
    r = mapper.best(SMALL, smaller, (8, 8, 8))
    assert mapper.stats.searches == searches and mapper.stats.candidate_hits == 1
    assert r.costs.feasible.all()
    assert evaluate(SMALL, smaller, r.mapping, (8, 8, 8)).feasible.all()
    # larger buffers than the enumeration was pruned for: a new search, not a stale answer
    mapper.best(SMALL, load_accelerator_spec("eyeriss", glb_depth=65536, psum_spad_depth=64), (8, 8, 8))
    assert mapper.stats.searches == searches + 1


def test_pareto_set_is_nondominated(eyeriss):
    r = find_best_mapping(SMALL, eyeriss, (8, 8, 8), metric="energy", pareto=True, mapper=Mapper(**FAST))
    e, cyc = r.pareto_costs.energy, r.pareto_costs.cycles
    assert len(e) >= 1 and r.pareto_costs.feasible.all()
    for i in range(len(e)):
        dominated = (e <= e[i]) & (cyc <= cyc[i]) & ((e < e[i]) | (cyc < cyc[i]))
        assert not dominated.any()
    assert e.min() == pytest.approx(r.energy)
    assert (pareto_indices(np.array([1.0, 2.0, 0.5]), np.array([3.0, 1.0, 5.0])) == [2, 0, 1]).all()


@pytest.mark.parametrize("n, k, block", [(0, 3, 256), (1, 2, 256), (300, 4, 7), (700, 5, 256), (200, 1, 16)])
def test_pareto_front_equals_brute_force(n, k, block):
    """Every row no other row dominates, once (ties: one of equal rows), across block boundaries."""
    rng = np.random.default_rng(n + k)
    x = rng.integers(0, 6, size=(n, k)).astype(np.float64)  # few values: many ties and equal rows
    got = pareto_front(x, block=block)
    le = (x[None, :, :] <= x[:, None, :]).all(axis=2)  # le[i, j]: row j at most row i everywhere
    strictly = le & ~(x[None, :, :] == x[:, None, :]).all(axis=2)
    want = {tuple(r) for r in x[~strictly.any(axis=1)]}
    assert sorted(map(tuple, x[got])) == sorted(want)  # each non-dominated row value exactly once
    assert (np.diff(got) > 0).all()


def test_metrics_order(eyeriss):
    mapper = Mapper(**FAST)
    by_energy = mapper.best(SMALL, eyeriss, (8, 8, 8), metric="energy")
    by_cycles = mapper.best(SMALL, eyeriss, (8, 8, 8), metric="cycles")
    by_edp = mapper.best(SMALL, eyeriss, (8, 8, 8), metric="edp")
    assert by_energy.energy <= by_cycles.energy + 1e-6
    assert by_cycles.cycles <= by_energy.cycles
    assert by_edp.energy * by_edp.cycles <= by_energy.energy * by_energy.cycles * (1 + 1e-9)
    with pytest.raises(JaqmooError, match="metric"):
        mapper.best(SMALL, eyeriss, (8, 8, 8), metric="area")
    assert metric_values(by_energy.costs, "energy")[0] == pytest.approx(by_energy.energy)


def test_no_feasible_mapping_error_names_layer_level_and_words(eyeriss):
    pinned = dataclasses.replace(
        eyeriss, constraints=eyeriss.constraints + (MapConstraint("psum_spad", "temporal", factors=(("K", 64),)),)
    )
    layer = Layer("too_big", "conv", K=64, C=4, P=4, Q=4)
    with pytest.raises(JaqmooError) as info:
        find_best_mapping(layer, pinned, (8, 8, 8), mapper=Mapper(**FAST))
    msg = str(info.value)
    assert "'too_big'" in msg and "'psum_spad'" in msg
    # 64 partial sums (C=4 is reduced in the spad) at the template's 16-bit psum width, one per
    # 16-bit word (they packed two per word when partial sums were costed at 8-bit activations)
    assert "needs at least 64 words" in msg and "only 16 fit" in msg and "partial sums at 16 bits" in msg


def test_too_wide_operand_error(eyeriss):
    with pytest.raises(JaqmooError) as info:
        find_best_mapping(SMALL, eyeriss, (32, 32, 32), mapper=Mapper(**FAST))
    assert "'small'" in str(info.value) and "wider than a word" in str(info.value)


def _reference_mapping(layer: Layer) -> MappingBatch:
    """Timeloop's best mapping from timeloop-mapper.map.txt of the reference folder."""
    T = np.ones((7, 8), dtype=np.int64)
    P, Q, K, C, R, S = (DIMS.index(d) for d in "PQKCRS")
    T[0, [P, Q, K]] = [8, 2, 4]
    T[1, [P, Q]] = [14, 4]
    T[5, R] = 3
    T[6, K] = 8
    X = np.ones_like(T)
    X[2, Q] = 14
    Y = np.ones_like(T)
    Y[3, [C, S]] = 3
    perms = ["KQPCRSN", "QPCKRSN", "CKRSNPQ", "CKRSNPQ", "CKRSNPQ", "RCKSNPQ", "KCRSNPQ"]
    perm = np.array([single_level_order(p) for p in perms])
    keep = np.array([[1, 1, 1], [0, 1, 1], [0, 0, 0], [0, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=bool)
    return MappingBatch(T[None], X[None], Y[None], perm[None], keep[None])


def test_best_by_energy_beats_timeloop_reference(reference):
    """Same constraints as timeloop-mapper: our best energy <= Timeloop's mapping (59.28 uJ)."""
    layer, accel = reference.problem, reference.accelerator
    ref = _reference_mapping(layer)
    mapper = Mapper()
    spec = mapper.spec(accel)
    assert ms.satisfies(ref, layer, spec, ms.envelope_for(accel, None)).all()
    ref_cost = evaluate(layer, accel, ref, None)
    assert ref_cost.feasible[0]
    assert ref_cost.energy[0] == pytest.approx(59.28e6, rel=0.01)
    best = mapper.best(layer, accel, None, metric="energy")
    assert best.energy <= ref_cost.energy[0]
    assert best.energy <= 59.28e6


def test_take_rows_matches_reevaluation(eyeriss):
    from jaqmoo.mapping.mapper import take_costs, take_rows

    spec = Mapper().spec(eyeriss)
    space = ms.Mapspace(SMALL, spec, ms.envelope_for(eyeriss, (8, 8, 8)))
    batch = space.materialize(*space.sample(50))
    full = evaluate(SMALL, eyeriss, batch, (4, 8, 8))
    rows = np.array([3, 0, len(batch) - 1])
    again = evaluate(SMALL, eyeriss, batch.take(rows), (4, 8, 8))
    for part in (cost(take_rows(full.accesses, rows), eyeriss, (4, 8, 8)), take_costs(full, rows, eyeriss, (4, 8, 8)),
                 take_costs(take_costs(full, np.arange(eyeriss.n_levels), eyeriss, (4, 8, 8)), [0], eyeriss, (4, 8, 8))):
        if len(part) == 1:
            ref = evaluate(SMALL, eyeriss, batch.take([0]), (4, 8, 8))
        else:
            ref = again
        for name in ("energy", "cycles", "feasible", "occupancy_words", "energy_by_level", "utilization"):
            assert np.allclose(getattr(part, name), getattr(ref, name)), name
        assert np.array_equal(part.accesses.reads, ref.accesses.reads)
        assert np.array_equal(part.values_per_word, ref.values_per_word)


def test_sample_and_full_enumeration_agree_on_small_spaces(eyeriss):
    spec = Mapper().spec(eyeriss)
    env = ms.envelope_for(eyeriss, (8, 8, 8))
    layer = Layer("tiny", "conv", K=4, C=2, P=2, Q=2, R=3, S=3)
    space = ms.Mapspace(layer, spec, env)
    all_rows = space.materialize(np.arange(len(space)))  # row numbers of factor_rows()
    sampled = space.materialize(*space.sample(10**6))  # small: exhaustive
    assert len(all_rows) == len(sampled) > 0
    assert ms.satisfies(all_rows, layer, spec, env).all()
    big = ms.Mapspace(Layer("big", "conv", K=256, C=128, P=28, Q=28, R=3, S=3), spec, env, min_utilization=0.5)
    idx, tiles = big.sample(200, seed=3)
    assert 0 < len(idx) <= 200 and len(np.unique(idx, axis=0)) == len(idx)
    batch = big.materialize(idx, tiles)
    assert ms.satisfies(batch, big.layer, spec, env).all()
    pes = (batch.spatial_x * batch.spatial_y).prod(axis=(1, 2))
    assert pes.min() >= 0.5 * 168 * 0.5  # utilization floor relative to the best parallelization


def test_prepare_merges_corners_and_covers_designs_between(eyeriss):
    mapper = Mapper(**FAST)
    small = load_accelerator_spec("eyeriss", glb_depth=1024, psum_spad_depth=4, weights_spad_depth=32)
    large = load_accelerator_spec("eyeriss", glb_depth=65536, psum_spad_depth=64, weights_spad_depth=512)
    mapper.prepare([SMALL, DEPTHWISE], [large, small], bits=(8, 8, 8))
    assert mapper.stats.searches == 4
    sizes = mapper.retained_sizes()
    assert len(sizes) == 2 and min(sizes) > 0
    middle = load_accelerator_spec("eyeriss", glb_depth=8192, psum_spad_depth=16, weights_spad_depth=128)
    for layer in (SMALL, DEPTHWISE):
        r = mapper.best(layer, middle, (8, 8, 8))
        assert evaluate(layer, middle, r.mapping, (8, 8, 8)).feasible.all()
    assert mapper.stats.searches == 4 and mapper.stats.candidate_hits == 2
