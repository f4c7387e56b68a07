"""Invariants of the analytical model on random mappings (hypothesis).

* the closed-form fills equal a literal replay of Timeloop's delta algorithm;
* every tensor is moved at least once through the outermost level (compulsory traffic);
* lower bits never increase energy, packed words or cycles;
* the capacity mask agrees with the tile sizes; chunked analysis equals one-shot analysis.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from timeloop_sim import simulated_fills

import jaqmoo.mapping.model as model
from jaqmoo.hardware.spec import Accelerator, Compute, Level
from jaqmoo.mapping.mapping import MappingBatch
from jaqmoo.mapping.model import _numpy, analyze, cost
from jaqmoo.mapping.tensors import tensor_sizes
from jaqmoo.workload import DIMS, Layer

pytestmark = pytest.mark.usefixtures("model_backend")  # both backends (tests/conftest.py)

WT, IN, OUT = 0, 1, 2
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_accel(glb_depth: int = 256, rf_depth: int = 32) -> Accelerator:
    """DRAM -> global buffer -> (dummy, 2x2 fan-out) -> 4 PE buffers -> (2 fan-out) -> 8 MACs."""
    def lvl(name, depth, inst, mx, my, e, width=32, dummy=False):
        return Level(name, "dummy_storage" if dummy else ("DRAM" if depth is None else "SRAM"), inst, mx, my,
                     depth, width if not dummy else 1, 8 if not dummy else 1,
                     read_energy=e, write_energy=e * 0.9, update_energy=e * 0.9, leak_energy=e / 100)
    levels = (lvl("DRAM", None, 1, 1, 1, 100.0, width=64), lvl("GLB", glb_depth, 1, 1, 1, 6.0),
              lvl("inter", None, 1, 1, 1, 0.0, dummy=True), lvl("PE", rf_depth, 4, 2, 2, 1.0, width=16))
    return Accelerator("prop", levels, Compute("mac", "intmac", 8, 4, 2, 0.3))


@st.composite
def layers(draw):
    sizes = {"N": draw(st.sampled_from([1, 2])), "G": 1, "K": draw(st.sampled_from([1, 2, 4, 6])),
             "C": draw(st.sampled_from([1, 2, 3, 4])), "P": draw(st.sampled_from([1, 2, 4, 5, 6])),
             "Q": draw(st.sampled_from([1, 2, 3])), "R": draw(st.sampled_from([1, 2, 3])),
             "S": draw(st.sampled_from([1, 3]))}
    strides = {"stride_h": draw(st.sampled_from([1, 2])), "dilation_h": draw(st.sampled_from([1, 2])),
               "stride_w": draw(st.sampled_from([1, 2])), "dilation_w": 1}
    return Layer("rand", "conv", **sizes, **strides)


@st.composite
def mapping_of(draw, layer: Layer) -> MappingBatch:
    sizes = layer.dims
    n_lvl = 4
    t = np.ones((n_lvl, 8), dtype=np.int64)
    sx = np.ones_like(t)
    sy = np.ones_like(t)
    # slots: temporal at DRAM/GLB/PE, spatial X/Y below the dummy (2x2), X below PE (2)
    room = {("sx", 2): 2, ("sy", 2): 2, ("sx", 3): 2}
    for d, dim in enumerate(DIMS):
        n = sizes[dim]
        primes = [p for p in (2, 3, 5) for _ in range(10) if n % p ** (_ + 1) == 0]
        for p in primes:
            options = [("t", 0), ("t", 1), ("t", 3)] + [k for k, v in room.items() if v % p == 0 and v >= p]
            kind, lvl = draw(st.sampled_from(options))
            if kind == "t":
                t[lvl, d] *= p
            else:
                (sx if kind == "sx" else sy)[lvl, d] *= p
                room[(kind, lvl)] //= p
    perm = np.stack([draw(st.permutations(range(8))) for _ in range(n_lvl)])
    keep = np.array([[True] * 3, [draw(st.booleans()) for _ in range(3)], [False] * 3,
                     [draw(st.booleans()) for _ in range(3)]])
    batch = MappingBatch(t[None], sx[None], sy[None], perm[None], keep[None])
    batch.check(layer)
    return batch


@st.composite
def layer_and_mapping(draw):
    layer = draw(layers())
    return layer, draw(mapping_of(layer))


@st.composite
def layer_and_mappings(draw, n: int):
    layer = draw(layers())
    return layer, MappingBatch.concat([draw(mapping_of(layer)) for _ in range(n)])


@SETTINGS
@given(layer_and_mapping())
def test_fills_equal_literal_timeloop_replay(case):
    layer, batch = case
    accel = make_accel()
    a = analyze(layer, accel, batch)
    for lvl in (1, 3):
        for t in range(3):
            if not a.keep[0, lvl, t]:
                continue
            expected = simulated_fills(layer, batch, 0, lvl, t)
            got = a.fills[0, lvl, t] + (a.partition[0, lvl, t] if t == OUT else 0)
            assert got == expected, (lvl, t)


@SETTINGS
@given(layer_and_mapping())
def test_compulsory_traffic_at_the_outermost_level(case):
    layer, batch = case
    a = analyze(layer, make_accel(), batch)
    w_size, i_size, o_size = tensor_sizes(layer)
    assert a.reads[0, 0, WT] >= w_size
    assert a.updates[0, 0, OUT] >= o_size
    if layer.stride_h == layer.stride_w == layer.dilation_h == layer.dilation_w == 1:  # else: gaps in the box
        assert a.reads[0, 0, IN] >= i_size
    assert (a.reads >= 0).all() and (a.fills >= 0).all() and (a.updates >= 0).all()
    # every kept level is read at least once per MAC that needs it, in total
    assert a.compute_cycles[0] * a.compute_instances[0] == layer.macs


@SETTINGS
@given(layer_and_mapping(), st.tuples(*[st.integers(1, 8)] * 3), st.tuples(*[st.integers(0, 8)] * 3))
def test_lower_bits_never_cost_more(case, low, extra):
    layer, batch = case
    accel = make_accel()
    a = analyze(layer, accel, batch)
    high = tuple(lo + e for lo, e in zip(low, extra, strict=True))
    c_lo, c_hi = cost(a, accel, low), cost(a, accel, high)
    assert c_lo.energy[0] <= c_hi.energy[0] * (1 + 1e-12)
    assert (c_lo.tile_words <= c_hi.tile_words).all()
    assert (c_lo.occupancy_words <= c_hi.occupancy_words).all()
    assert c_lo.cycles[0] <= c_hi.cycles[0]
    assert c_lo.width_ok[0] >= c_hi.width_ok[0] and c_lo.capacity_ok[0] >= c_hi.capacity_ok[0]


@SETTINGS
@given(layer_and_mapping(), st.sampled_from([None, (8, 8, 8), (4, 2, 8), (2, 2, 2), (16, 8, 32)]),
       st.integers(2, 64), st.integers(1, 16))
def test_capacity_mask_consistent_with_tiles(case, bits, glb_depth, rf_depth):
    layer, batch = case
    accel = make_accel(glb_depth, rf_depth)
    a = analyze(layer, accel, batch)
    c = cost(a, accel, bits)
    vpw = c.values_per_word
    for lvl, level in enumerate(accel.levels):
        for t in range(3):
            if not a.keep[0, lvl, t]:
                assert c.tile_words[0, lvl, t] == 0
            else:
                col = 3 if t == 2 and a.psum_f[0, lvl] else t  # partial sums: accumulator column
                if vpw[lvl, col] > 0:
                    words = c.tile_words[0, lvl, t]
                    assert words * vpw[lvl, col] >= a.tile[0, lvl, t] > (words - 1) * vpw[lvl, col]
        fits = level.depth is None or level.is_dummy or c.occupancy_words[0, lvl] <= level.effective_depth
        if not fits:
            assert not c.capacity_ok[0]
    assert c.capacity_ok[0] == all(
        lv.depth is None or lv.is_dummy or c.occupancy_words[0, i] <= lv.effective_depth
        for i, lv in enumerate(accel.levels))
    assert c.feasible[0] == (c.capacity_ok[0] and c.width_ok[0] and a.fanout_ok[0])
    assert (c.fail_level[0] == -1) == bool(c.feasible[0])


@settings(max_examples=15, deadline=None)
@given(layer_and_mappings(7))
def test_chunked_analysis_equals_one_shot(case):
    layer, batch = case
    accel = make_accel()
    whole = analyze(layer, accel, batch)
    saved = _numpy.CHUNK
    try:
        _numpy.CHUNK = 3
        chunked = analyze(layer, accel, batch, backend="numpy")
    finally:
        _numpy.CHUNK = saved
    for field in model.FIELDS:
        assert np.array_equal(getattr(whole, field), getattr(chunked, field)), field
    singles = [analyze(layer, accel, batch.take(i)) for i in range(len(batch))]
    for field in ("reads", "fills", "updates", "tile"):
        assert np.array_equal(np.concatenate([getattr(x, field) for x in singles]), getattr(whole, field))


def test_fanout_overflow_detected():
    layer = Layer("x", "conv", K=8)
    accel = make_accel()
    t = np.ones((1, 4, 8), dtype=np.int64)
    sx = np.ones_like(t)
    sx[0, 2, 2] = 8  # 8 > the 2-wide X fan-out below the dummy level
    batch = MappingBatch(t, sx, np.ones_like(t), np.tile(np.arange(8), (1, 4, 1)),
                         np.ones((1, 4, 3), dtype=bool))
    a = analyze(layer, accel, batch)
    assert not a.fanout_ok[0] and a.fanout_fail_level[0] == 2
    c = cost(a, accel)
    assert not c.feasible[0] and "fan-out" in c.reason(0)


@pytest.mark.parametrize("n", [0, 1, 5])
def test_empty_and_small_batches(n):
    layer = Layer("x", "conv", K=4, C=2, P=4)
    t = np.ones((1, 4, 8), dtype=np.int64)
    t[0, 0, 2], t[0, 1, 3], t[0, 3, 4] = 4, 2, 4
    one = MappingBatch(t, np.ones_like(t), np.ones_like(t), np.tile(np.arange(8), (1, 4, 1)),
                       np.ones((1, 4, 3), dtype=bool))
    batch = MappingBatch.concat([one] * max(n, 1)).take(slice(0, n))
    a = analyze(layer, make_accel(), batch)
    c = cost(a, make_accel())
    assert len(a) == n and len(c) == n


@SETTINGS
@given(layers(), st.lists(st.sampled_from([1, 2, 3]), min_size=8, max_size=8),
       st.lists(st.sampled_from([1, 2, 3, 4]), min_size=8, max_size=8))
def test_distinct_child_tiles_match_enumeration(layer, child, fan):
    """Children of a fan-out share a parent access exactly when their tiles are the same set
    of tensor coordinates: count distinct tile sets by brute force."""
    import itertools

    from jaqmoo.mapping.tensors import AXES, P, distinct_children

    child_ext, fan = np.array(child), np.array(fan)
    for t in range(3):
        tiles = set()
        for idx in itertools.product(*(range(f) for f in fan)):
            origin = np.array(idx) * child_ext
            box = []
            for dims in AXES[t]:
                if len(dims) == 1:
                    box.append(range(origin[dims[0]], origin[dims[0]] + child_ext[dims[0]]))
                else:
                    big, small = dims
                    s, d = (layer.stride_h, layer.dilation_h) if big == P else (layer.stride_w, layer.dilation_w)
                    lo = origin[big] * s + origin[small] * d
                    size = (child_ext[big] - 1) * s + (child_ext[small] - 1) * d + 1
                    box.append(range(lo, lo + size))
            tiles.add(frozenset(itertools.product(*box)))
        assert distinct_children(child_ext, fan, t, layer) == len(tiles)


@st.composite
def with_spatial_order(draw, layer):
    batch = draw(mapping_of(layer))
    order = np.stack([draw(st.permutations(range(8))) for _ in range(batch.n_levels)])
    return MappingBatch(batch.temporal, batch.spatial_x, batch.spatial_y, batch.perm, batch.keep, order[None])


@SETTINGS
@given(st.data(), st.sampled_from([WT, IN]))
def test_link_transfers_equal_literal_timeloop_replay(data, tensor):
    """Parent accesses and neighbour forwarding of Weights / Inputs at both fan-outs
    (dummy -> PEs, PE -> MACs) equal a literal replay of Timeloop's spatial working-set
    analysis (link transfers, multicast, the parent-reads-fewer rule)."""
    from timeloop_sim import simulated_input_links

    layer = data.draw(layers())
    batch = data.draw(with_spatial_order(layer))
    accel = make_accel()
    a = analyze(layer, accel, batch)
    fan = accel.fanouts
    if not a.keep[0, 3, tensor]:
        return
    for lvl in (2, 3):  # jaqmoo models the mesh layouts where PE keys match mesh positions
        fx, fy = np.prod(batch.spatial_x[0, lvl]), np.prod(batch.spatial_y[0, lvl])
        if fy > 1 and fx != fan[lvl][0]:
            return
    content_pe, _ = simulated_input_links(layer, batch, 0, 3, fan[3], tensor)
    content_dummy, transfers = simulated_input_links(layer, batch, 0, 2, fan[2], tensor)
    above = 1 if a.keep[0, 1, tensor] else 0
    assert a.reads[0, above, tensor] == content_dummy
    peer = transfers / a.instances[0, 3]
    assert a.reads[0, 3, tensor] == content_pe + round(peer)
    fills = simulated_fills(layer, batch, 0, 3, tensor)
    n_children = int(np.prod(batch.spatial_x[0, 2] * batch.spatial_y[0, 2]))
    assert a.fills[0, 3, tensor] == int(np.floor(fills - transfers / n_children + peer + 1e-9))


def test_eyeriss_diagonal_link_transfers():
    """Row-stationary reuse: filter rows S spread over 3 PEs (innermost Y spatial loop), the
    output rows Q stepping by one above them (stride 1). Each step, PE s needs the input row
    q + s that PE s + 1 held the step before: 2 of 3 PEs get it from their neighbour."""
    from timeloop_sim import simulated_input_links

    layer = Layer("rs", "conv", Q=4, S=2)
    accel = make_accel()
    t = np.ones((1, 4, 8), dtype=np.int64)
    t[0, 1, 5] = 4  # Q4 at the global buffer
    sx = np.ones_like(t)
    sx[0, 2, 7] = 2  # S across the 2-wide mesh below the dummy level
    order = np.tile(np.arange(8)[::-1], (1, 4, 1))  # S innermost
    batch = MappingBatch(t, sx, np.ones_like(t), np.tile(np.arange(8), (1, 4, 1)),
                         np.ones((1, 4, 3), dtype=bool), order)
    batch.check(layer)
    a = analyze(layer, accel, batch)
    content, transfers = simulated_input_links(layer, batch, 0, 2, accel.fanouts[2])
    assert transfers > 0
    assert a.reads[0, 1, IN] == content
    # without links the buffer would send both PEs their row at every one of the 4 steps
    assert content < 2 * 4
    assert a.reads[0, 3, IN] > 4  # the forwarding PEs read (and are filled) more

