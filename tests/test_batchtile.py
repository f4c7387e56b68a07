"""BatchTile tile sets: re-fitting to new PE arrays is exact, and the fast path stays optimal."""

from __future__ import annotations

import numpy as np
import pytest

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.templates import get_template, load_accelerator_spec
from jaqmoo.mapping import mapspace as ms
from jaqmoo.mapping.batchtile import TileSet, family_key, fanout_caps, link_signature
from jaqmoo.mapping.mapper import Mapper, metric_values
from jaqmoo.mapping.model import analyze, cost, evaluate
from jaqmoo.workload import Layer

SMALL = Layer("small", "conv", K=16, C=8, P=8, Q=8, R=3, S=3)
DEPTHWISE = Layer("dw", "depthwise", G=16, P=8, Q=8, R=3, S=3)
TINY = Layer("tiny", "conv", K=4, C=2, P=2, Q=2, R=3, S=3)
FAST = dict(budget=400, refine_rounds=4)


def _array_fields(acc):
    return {k: v for k, v in vars(acc).items() if isinstance(v, np.ndarray)}


def _assert_same_accesses(got, want):
    a, b = _array_fields(got), _array_fields(want)
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    assert got.topology == want.topology


def _tile_set(layer, accel, bits=(8, 8, 8), **mapper_kw):
    mapper = Mapper(**{**FAST, **mapper_kw})
    mapper.prepare([layer], [accel], bits=bits)
    (cand,) = mapper._candidates.values()
    return mapper, cand


@pytest.mark.parametrize("template, ref_hw, new_hw", [
    ("eyeriss", {"pe_x": 14, "pe_y": 12}, {"pe_x": 8, "pe_y": 4}),
    ("eyeriss", {"pe_x": 32, "pe_y": 32}, {"pe_x": 14, "pe_y": 12}),
    ("simba", {"pe_x": 16, "pe_y": 4}, {"pe_x": 8, "pe_y": 4}),
    ("simba", {"pe_x": 8, "pe_y": 4}, {"pe_x": 16, "pe_y": 2}),
])
def test_refit_equals_analysis_on_the_new_pe_array(template, ref_hw, new_hw):
    """The re-fitted stage-A counts of every fitting row equal a fresh analysis on the new design."""
    ref = load_accelerator_spec(template, **ref_hw)
    new = load_accelerator_spec(template, **new_hw)
    _, tiles = _tile_set(SMALL, ref, min_utilization=0.0)
    rows, batch, acc = tiles.fit(SMALL, new)
    assert 0 < len(rows) <= len(tiles)
    _assert_same_accesses(acc, analyze(SMALL, new, batch))
    # the mask keeps exactly the rows whose spatial factors fit the new fan-outs (less dominated
    # ones when no row's counts change with the PE array)
    fits = evaluate(SMALL, new, tiles.batch).accesses.fanout_ok
    assert fits[rows].all()
    assert set(np.flatnonzero(fits)) - set(rows) <= set(np.flatnonzero(tiles.dominated))


def test_link_signature_rows_are_reanalyzed():
    """On simba (X and Y fan-out at one level) the PE array changes some rows' links: only those."""
    ref = load_accelerator_spec("simba", pe_x=16, pe_y=4)
    new = load_accelerator_spec("simba", pe_x=8, pe_y=4)
    space = ms.Mapspace(SMALL, Mapper().spec(ref), ms.envelope_for(ref, (8, 8, 8)), min_utilization=0.0)
    tiles = TileSet.encode(SMALL, ref, space.materialize(*space.sample(3000, seed=1)), space.envelope)
    rows, batch, acc = tiles.fit(SMALL, new)
    fan = tiles.fan[rows]
    stale = (link_signature(fan, fanout_caps(ref)) != link_signature(fan, fanout_caps(new))).any(axis=1)
    fresh = analyze(SMALL, new, batch)
    changed = ~np.all(tiles.accesses.rfu[rows] == fresh.rfu, axis=(1, 2, 3))
    assert changed.any(), "the test needs rows whose counts change with the PE array"
    assert not (changed & ~stale).any()  # the signature finds every such row
    _assert_same_accesses(acc, fresh)


@pytest.mark.parametrize("layer", [SMALL, DEPTHWISE], ids=lambda layer: layer.name)
def test_fast_path_mapping_is_valid_and_costed_exactly(layer):
    """A design and bits never searched: the re-fitted mapping fits and its cost is the model's."""
    corners = [load_accelerator_spec("eyeriss", pe_x=x, pe_y=y, glb_depth=131072, weights_spad_depth=512,
                                     psum_spad_depth=64, ifmap_spad_depth=64) for x, y in ((14, 12), (4, 4))]
    mapper = Mapper(**FAST)
    mapper.prepare([layer], corners, bits=(2, 2, 2))
    mapper.refit_topologies = True
    searches = mapper.stats.searches
    for hw, bits in (({"pe_x": 8, "pe_y": 16, "glb_depth": 8192}, (4, 6, 5)),
                     ({"pe_x": 2, "pe_y": 8, "weights_spad_depth": 64, "psum_spad_depth": 8}, (8, 3, 8))):
        accel = load_accelerator_spec("eyeriss", **hw)
        r = mapper.best(layer, accel, bits)
        model = evaluate(layer, accel, r.mapping, bits)
        assert model.feasible.all()
        assert model.energy[0] == pytest.approx(r.energy, rel=1e-12)
        assert int(model.cycles[0]) == r.cycles
    assert mapper.stats.searches == searches  # re-fitted, never searched


def test_fast_path_equals_exhaustive_best_on_a_tiny_layer():
    """Every mapping of a tiny layer retained: the re-fit to another design is its exhaustive optimum."""
    big = load_accelerator_spec("eyeriss", pe_x=14, pe_y=12, glb_depth=131072, weights_spad_depth=512,
                                psum_spad_depth=64, ifmap_spad_depth=64)
    mapper = Mapper(budget=10**6, keep_top=10**6, min_utilization=0.0, refine_rounds=1)
    mapper.prepare([TINY], [big], bits=(2, 2, 2))
    mapper.refit_topologies = True
    for hw, bits in (({"pe_x": 4, "pe_y": 2, "psum_spad_depth": 4, "glb_depth": 1024}, (8, 8, 8)),
                     ({"pe_x": 2, "pe_y": 4, "weights_spad_depth": 32}, (4, 2, 6))):
        accel = load_accelerator_spec("eyeriss", **hw)
        r = mapper.best(TINY, accel, bits)
        space = ms.Mapspace(TINY, mapper.spec(accel), ms.envelope_for(accel, bits), min_utilization=0.0)
        everything = space.materialize(*space.sample(10**6))  # small: the whole space
        exhaustive = metric_values(evaluate(TINY, accel, everything, bits), "energy").min()
        assert r.energy == pytest.approx(exhaustive, rel=1e-12)


def test_encode_merges_sets_and_keeps_topologies():
    a = load_accelerator_spec("eyeriss", pe_x=14, pe_y=12)
    b = load_accelerator_spec("eyeriss", pe_x=4, pe_y=4)
    mapper = Mapper(**FAST)
    mapper.prepare([SMALL], [a, b], bits=(8, 8, 8))
    (tiles,) = mapper._candidates.values()
    assert isinstance(tiles, TileSet)
    assert tiles.topologies == {a.topology_key, b.topology_key}
    assert (tiles.fan[..., 0] <= 14).all() and (tiles.fan[..., 1] <= 12).all()
    assert ((tiles.fan[..., 0] <= 4) & (tiles.fan[..., 1] <= 4)).all(axis=1).any()
    # an unseen PE array is searched unless refit_topologies is on
    c = load_accelerator_spec("eyeriss", pe_x=8, pe_y=8)
    before = mapper.stats.searches
    mapper.best(SMALL, c, (8, 8, 8))
    assert mapper.stats.searches == before + 1


def test_evaluator_prepare_encodes_every_pe_array_then_never_searches():
    from jaqmoo.search.evaluation import JointEvaluator
    from jaqmoo.search.genome import GenomeSpace, HardwareGene
    from jaqmoo.workload import Workload

    template = get_template("eyeriss")
    wl = Workload("two", (SMALL, DEPTHWISE))
    genes = (HardwareGene("pe_x", (4, 14), 14), HardwareGene("pe_y", (4, 12), 12),
             HardwareGene("glb_depth", (4096, 16384), 16384), HardwareGene("weights_spad_width", (16, 32), 16))
    space = GenomeSpace(("small", "dw"), (4, 8), (4, 8), hardware_genes=genes)
    ev = JointEvaluator(wl, template, None, space, max_pe_arrays=16)
    corners = ev.corner_designs()
    assert len(corners) == 12
    loose, tight, lower = corners[:4], corners[4:8], corners[8:]
    for group in (loose, tight, lower):
        assert sorted((c["pe_x"], c["pe_y"]) for c, _ in group) == [(4, 4), (4, 12), (14, 4), (14, 12)]
    assert all(c["glb_depth"] == 16384 and c["weights_spad_width"] == 32 and b == (4, 4, 4) for c, b in loose)
    assert all(c["glb_depth"] == 4096 and c["weights_spad_width"] == 16 and b == (8, 8, 8) for c, b in tight)
    assert all(c["glb_depth"] == 4096 and b == ev.mid_bits for c, b in lower)
    assert ev.mapper.encode_budget > 0  # the search's mapper searches a PE array new to the warm-up once
    ev.mapper = Mapper(**FAST)
    assert ev.prepare() >= 0
    searches = ev.mapper.stats.searches
    rng = np.random.default_rng(0)
    for x in rng.integers(0, space.upper_bounds + 1, size=(6, space.n_var)):
        cand = space.decode_one(x)
        rec = ev.cost(cand)
        accel = ev.accelerator(dict(cand.hardware))
        if rec["feasible"]:
            total = 0.0
            for i, layer in enumerate(wl.layers):
                r = ev.mapper.best(layer, accel, cand.policy.tensor_bits(i))
                total += float(cost(analyze(layer, accel, r.mapping), accel, cand.policy.tensor_bits(i)).energy[0])
            assert rec["energy_pj"] == pytest.approx(total, rel=1e-12)
    assert ev.mapper.stats.searches == searches


def test_dominance_pruning_never_changes_the_best():
    """Dropping dominated rows gives the same best energy / EDP / cycles on any design and bits."""
    rng = np.random.default_rng(1)
    template = get_template("eyeriss")
    corners = [load_accelerator_spec("eyeriss", pe_x=x, pe_y=y) for x, y in ((14, 12), (4, 8))]
    for layer in (SMALL, DEPTHWISE):
        mapper = Mapper(**FAST)
        mapper.prepare([layer], corners, bits=(4, 4, 4))
        (tiles,) = mapper.tile_sets()
        assert tiles.dominated.any() and not tiles.dominated.all()
        genes = {p.name: p.choices for p in template.searchable_params}
        for _ in range(12):
            accel = template.build(**{k: int(rng.choice(v)) for k, v in genes.items()})
            bits = tuple(int(b) for b in rng.choice([2, 4, 6, 8], size=3))
            full = cost(analyze(layer, accel, tiles.batch), accel, bits)
            rows, _, acc = tiles.fit(layer, accel)
            pruned = cost(acc, accel, bits)
            for metric in ("energy", "edp", "cycles"):
                want = metric_values(full, metric).min()
                got = metric_values(pruned, metric).min() if len(rows) else np.inf
                assert got == want or got == pytest.approx(want, rel=1e-12), metric


def test_encode_budget_encodes_an_unseen_pe_array_and_closes_the_refit_gap():
    """A 1x1 conv re-fitted to an 8x4 array with tight buffers (tile sets from 14x12 and 32x32 at loose
    buffers and 2x2 at tight ones): the plain re-fit is > 3 % worse than a full search of the design;
    with ``encode_budget`` the new array is searched once (bounded), merged, and the answer is within
    1 % of the full search; a later request on that array re-fits without searching."""
    layer = Layer("pw", "conv", K=128, C=64, P=7, Q=7, R=1, S=1)
    loose = dict(glb_depth=131072, weights_spad_depth=512, psum_spad_depth=64, ifmap_spad_depth=64)
    tight = dict(glb_depth=1024, weights_spad_depth=32, psum_spad_depth=8, ifmap_spad_depth=12)
    new = load_accelerator_spec("eyeriss", pe_x=8, pe_y=4, **tight)
    full = Mapper(budget=200, refine_rounds=4).best(layer, new, (8, 8, 8)).energy
    got = {}
    for budget in (0, 32):
        mapper = Mapper(budget=200, refine_rounds=4, encode_budget=budget)
        mapper.prepare([layer], [load_accelerator_spec("eyeriss", pe_x=x, pe_y=y, **loose) for x, y in ((14, 12), (32, 32))],
                       bits=(2, 2, 2))
        mapper.prepare([layer], [load_accelerator_spec("eyeriss", pe_x=2, pe_y=2, **tight)], bits=(8, 8, 8))
        mapper.refit_topologies = True
        searches = mapper.stats.searches
        got[budget] = mapper.best(layer, new, (8, 8, 8)).energy
        assert mapper.stats.searches == searches + (budget > 0)
        assert new.topology_key in mapper.tile_set(layer, family_key(new)).topologies or budget == 0
        again = load_accelerator_spec("eyeriss", pe_x=8, pe_y=4, **{**tight, "psum_spad_depth": 16})
        mapper.best(layer, again, (6, 8, 8))
        assert mapper.stats.searches == searches + (budget > 0)  # the array is encoded once
    assert got[0] > 1.03 * full  # the gap the rule closes (else this case tests nothing)
    assert got[32] <= 1.01 * full


def test_encode_budget_must_not_be_negative():
    with pytest.raises(JaqmooError, match="encode_budget"):
        Mapper(encode_budget=-1)


@pytest.mark.parametrize("template, first, second", [
    ("eyeriss", {"pe_x": 14, "pe_y": 12}, {"pe_x": 8, "pe_y": 4, "glb_depth": 1024, "weights_spad_depth": 32}),
    ("simba", {"pe_x": 16, "pe_y": 4}, {"pe_x": 8, "pe_y": 4}),
])
def test_incremental_merge_equals_a_full_encode(template, first, second):
    """``merged`` holds the rows ``encode(previous=...)`` holds, with the same stage-A counts on every
    PE array, and its incremental dominance keeps the same best on every design (ties aside)."""
    a, b = load_accelerator_spec(template, **first), load_accelerator_spec(template, **second)
    old = _tile_set(SMALL, a, min_utilization=0.0)[1]
    old.dominated  # noqa: B018 - computed before the merge: the incremental path
    space = ms.Mapspace(SMALL, Mapper().spec(b), ms.envelope_for(b, (8, 8, 8)), min_utilization=0.0)
    new_rows = space.materialize(*space.sample(600, seed=2))
    inc = old.merged(SMALL, b, new_rows, space.envelope)
    full = TileSet.encode(SMALL, b, new_rows, space.envelope, previous=old)
    assert sorted(inc.keys.tolist()) == sorted(full.keys.tolist())
    assert len(inc) > len(old) and inc.topologies == full.topologies
    for design in (a, b, load_accelerator_spec(template, pe_x=4, pe_y=4)):
        rows, batch, acc = inc.fit(SMALL, design)
        _assert_same_accesses(acc, analyze(SMALL, design, batch))
        for bits in ((8, 8, 8), (3, 5, 8)):
            got = metric_values(cost(acc, design, bits), "energy").min()
            frows, _, facc = full.fit(SMALL, design)
            assert got == pytest.approx(metric_values(cost(facc, design, bits), "energy").min(), rel=1e-12)
    # the same number of rows survives the incremental and the full dominance pruning
    assert (~inc.dominated).sum() == (~full.dominated).sum() < len(inc)



def test_retention_keeps_the_best_evaluated_mapping_of_every_smaller_buffer():
    """A search's tile set holds, for any design with smaller buffers (same PE array, energies and
    bits), a mapping as good as the best one the search evaluated that fits it: the (energy, tile
    sizes per buffer) Pareto set is retained, not only one staircase per buffer (which kept, for a
    small weights scratchpad, a mapping that needs a large psum scratchpad or global buffer)."""
    import dataclasses

    from jaqmoo.mapping.mapping import MappingBatch

    layer = Layer("pw", "conv", K=96, C=24, P=28, Q=28, R=1, S=1)
    accel = load_accelerator_spec("eyeriss", pe_x=8, pe_y=4, glb_depth=16384, weights_spad_depth=256,
                                  psum_spad_depth=32, ifmap_spad_depth=24)
    bits = (4, 8, 8)
    seen = []

    class Recording(Mapper):
        def _retain(self, acc, batch, hw, b, metric):
            seen.append(batch)
            return super()._retain(acc, batch, hw, b, metric)

    mapper = Recording(budget=200, refine_rounds=4)
    mapper.prepare([layer], [accel], bits=bits)
    mapper.refit_topologies = True
    everything = MappingBatch.concat(seen)
    rng = np.random.default_rng(3)
    choices = {"shared_glb": (1024, 2048, 4096, 16384), "weights_spad": (32, 64, 128, 256),
               "psum_spad": (8, 16, 32), "ifmap_spad": (12, 24)}
    checked = 0
    for _ in range(16):  # (the per-buffer staircases alone lost up to 21.6 % on these)
        depth = {name: int(rng.choice(c)) for name, c in choices.items()}
        small = dataclasses.replace(accel, levels=tuple(
            dataclasses.replace(lvl, depth=depth.get(lvl.name, lvl.depth)) for lvl in accel.levels))
        want = metric_values(evaluate(layer, small, everything, bits), "energy").min()
        if not np.isfinite(want):
            continue
        checked += 1
        assert mapper.best(layer, small, bits).energy <= want * (1 + 1e-12), depth
    assert checked >= 6
    assert mapper.stats.searches == 1  # every answer above is a re-fit of the one search
