"""Small cases of the analytical model worked out by hand, and mixed-precision costing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.spec import Accelerator, Compute, Level
from jaqmoo.mapping.mapping import MappingBatch, describe, single_level_order
from jaqmoo.mapping.model import analyze, cost, evaluate, values_per_word
from jaqmoo.timeloop.inputs import load_timeloop_input
from jaqmoo.workload import DIMS, Layer

pytestmark = pytest.mark.usefixtures("model_backend")  # both backends (tests/conftest.py)

REFERENCE = Path(__file__).parent / "data" / "timeloop_reference"
WT, IN, OUT = 0, 1, 2


def conv1d(p: int = 16, r: int = 3, k: int = 1) -> Layer:
    return Layer("conv1d", "conv", K=k, P=p, R=r)


def one_mapping(n_levels: int, temporal: dict[int, dict[str, int]], orders: dict[int, str] | None = None,
                spatial_x: dict[int, dict[str, int]] | None = None, keep=None) -> MappingBatch:
    t = np.ones((1, n_levels, 8), dtype=np.int64)
    sx = np.ones_like(t)
    for lvl, factors in temporal.items():
        for d, f in factors.items():
            t[0, lvl, DIMS.index(d)] = f
    for lvl, factors in (spatial_x or {}).items():
        for d, f in factors.items():
            sx[0, lvl, DIMS.index(d)] = f
    perm = np.tile(np.arange(8), (1, n_levels, 1))
    for lvl, order in (orders or {}).items():
        perm[0, lvl] = single_level_order(order)
    keep = np.ones((1, n_levels, 3), dtype=bool) if keep is None else np.asarray(keep)[None]
    return MappingBatch(t, sx, np.ones_like(t), perm, keep)


def buffer(name: str, depth: int | None, instances: int = 1, width: int = 8, datawidth: int = 8,
           e: float = 1.0, **kw) -> Level:
    return Level(name, "SRAM" if depth else "DRAM", instances, instances, 1, depth, width, datawidth,
                 read_energy=e, write_energy=e, update_energy=e, **kw)


def mac(instances: int = 1, energy: float = 0.5) -> Compute:
    return Compute("mac", "intmac", instances, instances, 1, energy)


def test_one_level_by_hand():
    """conv1d P=16 R=3 on one buffer: every MAC reads a weight and an input and updates an
    output; the first update of each of the 16 outputs needs no read."""
    layer = conv1d()
    accel = Accelerator("one", (buffer("Buffer", 64, e=2.0),), mac(energy=0.5))
    c = evaluate(layer, accel, one_mapping(1, {0: {"P": 16, "R": 3}}, {0: "RP"}))
    a = c.accesses
    assert a.reads[0, 0].tolist() == [48, 48, 48 - 16]
    assert a.fills[0, 0].tolist() == [0, 0, 0]
    assert a.updates[0, 0].tolist() == [0, 0, 48]
    assert a.tile[0, 0].tolist() == [3, 18, 16]
    # energy: (48 + 48 + 32 reads + 48 updates) * 2 pJ + 48 MACs * 0.5 pJ
    assert c.energy[0] == pytest.approx((48 + 48 + 32 + 48) * 2.0 + 48 * 0.5)
    assert c.cycles[0] == 48 and c.utilization[0] == 1.0


def test_two_level_output_stationary_by_hand():
    """MainMemory[P16] Buffer[R3] (output stationary): per output position p the buffer holds
    3 weights (fetched once: P is irrelevant to weights), a 3-input window (the window slides
    by one input per p: 3 + 15*1 = 18 fills) and 1 partial sum (16 of them, each written
    once, never re-filled)."""
    layer = conv1d()
    accel = Accelerator("os", (buffer("MainMemory", None, e=10.0), buffer("Buffer", 64, e=1.0)), mac())
    c = evaluate(layer, accel, one_mapping(2, {0: {"P": 16}, 1: {"R": 3}}))
    a = c.accesses
    assert a.fills[0, 1].tolist() == [3, 18, 0]
    assert a.reads[0, 1].tolist() == [48, 48, 32]
    assert a.updates[0, 1].tolist() == [0, 0, 48]
    assert a.reads[0, 0].tolist() == [3, 18, 0]
    assert a.updates[0, 0].tolist() == [0, 0, 16]
    buffer_e = (3 + 18) + (48 + 48 + 32) + 48
    memory_e = 10.0 * (3 + 18 + 16)
    assert c.energy_by_level[0].tolist() == pytest.approx([memory_e, buffer_e])


def test_two_level_weight_stationary_by_hand():
    """MainMemory[R3] Buffer[P16]: each filter tap is fetched once (3 weight fills); the 16
    partial sums stay in the buffer across the R loop (outputs stationary at the buffer:
    3 visits x 16 = 48 updates, 48 - 16 reads); inputs 16 per tap, sliding by one: 16 + 2."""
    layer = conv1d()
    accel = Accelerator("ws", (buffer("MainMemory", None), buffer("Buffer", 64)), mac())
    a = analyze(layer, accel, one_mapping(2, {0: {"R": 3}, 1: {"P": 16}}))
    assert a.fills[0, 1].tolist() == [3, 18, 0]
    assert a.reads[0, 1].tolist() == [48, 48, 32]
    assert a.updates[0, 0].tolist() == [0, 0, 16]


def test_spatial_multicast_and_reduction_by_hand():
    """K=4 spread over 4 PEs: inputs are multicast (read once from the shared buffer for all
    four PEs), weights are not; C=4 spread over 4 PEs instead: the partial sums of the four
    PEs are reduced spatially (the parent sees one update per output)."""
    layer = Layer("fc", "linear", K=4, C=4)
    levels = (buffer("DRAM", None), buffer("PEbuf", 16, instances=4))
    accel = Accelerator("pe4", levels, mac(4))
    by_k = analyze(layer, accel, one_mapping(2, {1: {"C": 4}}, spatial_x={0: {"K": 4}}))
    assert by_k.fills[0, 1].tolist() == [4, 4, 0]  # per PE: its 4 weights, all 4 inputs
    assert by_k.reads[0, 0].tolist() == [16, 4, 0]  # inputs multicast to the 4 PEs
    assert by_k.updates[0, 0, OUT] == 4
    by_c = analyze(layer, accel, one_mapping(2, {1: {"K": 4}}, spatial_x={0: {"C": 4}}))
    assert by_c.reads[0, 0].tolist() == [16, 4, 0]
    assert by_c.updates[0, 0, OUT] == 4  # 4 PEs x 4 partial sums reduced to 4 outputs
    assert by_c.instances[0].tolist() == [1, 4] and by_c.compute_instances[0] == 4


def test_stationarity_depends_on_loop_order():
    """A loop irrelevant to a tensor keeps its tile stationary only when it is innermost."""
    layer = Layer("x", "conv", K=4, P=8)
    accel = Accelerator("two", (buffer("DRAM", None), buffer("B", 64)), mac())
    inner_p = analyze(layer, accel, one_mapping(2, {0: {"K": 4, "P": 8}}, {0: "PK"}))
    inner_k = analyze(layer, accel, one_mapping(2, {0: {"K": 4, "P": 8}}, {0: "KP"}))
    # tile: 1 weight, 1 output; P innermost keeps the weight for 8 steps: 4 weight fills;
    # K innermost re-fetches it every step: 32.
    assert inner_p.fills[0, 1, WT] == 4 and inner_k.fills[0, 1, WT] == 32


def test_bypassed_level_promotes_reads_to_parent():
    path = REFERENCE / "model-conv1d-oc-3level-bypass"
    tl = load_timeloop_input(path)
    a = analyze(tl.problem, tl.accelerator, tl.mapping)
    # RegisterFile keeps only Outputs: the MAC's 1536 weight/input reads go to GlobalBuffer.
    assert a.reads[0, 1, WT] == 1536 and a.reads[0, 1, IN] == 1536
    assert not a.keep[0, 2, WT] and a.reads[0, 2, WT] == 0


# --------------------------------------------------------------------- mixed precision

def eyeriss():
    tl = load_timeloop_input(REFERENCE / "mapper-eyeriss-like-conv")
    from jaqmoo.hardware.yaml_io import load_yaml
    from jaqmoo.mapping.timeloop_map import parse_mapping

    data, label = load_yaml(REFERENCE / "mapper-eyeriss-like-conv" / "timeloop-mapper.map.yaml")
    return tl, parse_mapping(data["mapping"], tl.accelerator, tl.problem, label)


def test_values_per_word():
    tl, _ = eyeriss()
    vpw = values_per_word(tl.accelerator, (4, 2, 8))
    names = [lvl.name for lvl in tl.accelerator.levels]
    # columns: weights, inputs, completed outputs, partial sums (at the level's datawidth here)
    assert vpw[names.index("shared_glb")].tolist() == [16, 32, 8, 8]  # 64-bit words, 8-bit datawidth
    assert vpw[names.index("psum_spad")].tolist() == [4, 8, 2, 1]  # 16-bit words, 16-bit datawidth
    assert values_per_word(tl.accelerator, None)[names.index("psum_spad")].tolist() == [1, 1, 1, 1]


def test_bits_equal_to_datawidth_reproduce_timeloop():
    tl = load_timeloop_input(REFERENCE / "model-conv1d-oc-3level-spatial-k")  # all datawidths 8
    a = analyze(tl.problem, tl.accelerator, tl.mapping)
    c_none, c_8 = cost(a, tl.accelerator, None), cost(a, tl.accelerator, (8, 8, 8))
    assert c_8.energy[0] == pytest.approx(c_none.energy[0])
    assert c_8.cycles[0] == c_none.cycles[0]
    assert np.array_equal(c_8.occupancy_words, c_none.occupancy_words)


def test_lower_bits_pack_more_and_cost_less():
    tl, mapping = eyeriss()
    a = analyze(tl.problem, tl.accelerator, mapping)
    c8, c4 = cost(a, tl.accelerator, (8, 8, 16)), cost(a, tl.accelerator, (4, 4, 8))
    glb = [lvl.name for lvl in tl.accelerator.levels].index("shared_glb")
    assert c4.tile_words[0, glb, IN] == -(-a.tile[0, glb, IN] // 16)
    assert c8.tile_words[0, glb, IN] == -(-a.tile[0, glb, IN] // 8)
    assert c4.energy[0] < c8.energy[0]
    assert c4.mac_energy[0] == pytest.approx(c8.mac_energy[0] / 4)  # (4*4)/(8*8)
    assert c4.energy_by_level[0, glb] < c8.energy_by_level[0, glb]


def test_tensor_wider_than_word_is_infeasible_with_reason():
    tl = load_timeloop_input(REFERENCE / "model-conv1d-oc-3level-spatial-k")
    c = evaluate(tl.problem, tl.accelerator, tl.mapping, bits=(16, 8, 8))  # RegisterFile is 8 bits wide
    assert not c.width_ok[0] and not c.feasible[0]
    reason = c.reason(0)
    assert "Weights" in reason and "RegisterFile" in reason


def test_capacity_overflow_reason():
    tl = load_timeloop_input(REFERENCE / "model-conv1d-oc-3level-spatial-k")
    small = tuple(lvl if lvl.name != "RegisterFile" else Level(**{**lvl.__dict__, "depth": 16})
                  for lvl in tl.accelerator.levels)
    accel = Accelerator(tl.accelerator.name, small, tl.accelerator.compute)
    c = cost(analyze(tl.problem, tl.accelerator, tl.mapping), accel)
    assert not c.capacity_ok[0] and c.fail_level[0] == 3
    assert "RegisterFile" in c.reason(0) and "33 words" in c.reason(0) and "only 16 fit" in c.reason(0)


def test_bad_bits_and_topology_mismatch():
    tl = load_timeloop_input(REFERENCE / "model-conv1d-oc-3level-spatial-k")
    a = analyze(tl.problem, tl.accelerator, tl.mapping)
    with pytest.raises(JaqmooError, match="bits"):
        cost(a, tl.accelerator, (8, 0, 8))
    other = load_timeloop_input(REFERENCE / "model-conv1d-oc-3level").accelerator
    with pytest.raises(JaqmooError, match="topology"):
        cost(a, other)


def test_describe_mapping():
    tl, mapping = eyeriss()
    text = describe(mapping, 0, tuple(lvl.name for lvl in tl.accelerator.levels))
    assert text == "DRAM[P8 Q2 K4] shared_glb[P14 Q4] X[Q14] Y[C3 S3] weights_spad[R3] psum_spad[K8]"


def test_mapping_batch_checks():
    layer = conv1d()
    good = one_mapping(1, {0: {"P": 16, "R": 3}})
    good.check(layer)
    bad = one_mapping(1, {0: {"P": 8, "R": 3}})
    with pytest.raises(JaqmooError, match="P: 8 != 16"):
        bad.check(layer)
    with pytest.raises(JaqmooError):
        MappingBatch(np.ones((1, 2, 7)), np.ones((1, 2, 7)), np.ones((1, 2, 7)), np.ones((1, 2, 7)),
                     np.ones((1, 2, 3)))
    both = MappingBatch.concat([good, good.take(0)])
    assert len(both) == 2


def test_bandwidth_throttles_cycles_by_hand():
    """Timeloop's rule: a level whose per-instance read (or write) demand exceeds its
    bandwidth slows the compute by bandwidth / demand. One buffer, 48 MACs: reads are
    48 weights + 48 inputs + 32 partial sums = 128 per 48 cycles; at 1 read/cycle the layer
    takes 128 cycles. Writes (48 updates) at 0.5/cycle would need 96 cycles: reads dominate."""
    layer = conv1d()
    level = buffer("Buffer", 64, read_bandwidth=1.0, write_bandwidth=0.5)
    accel = Accelerator("bw", (level,), mac())
    c = evaluate(layer, accel, one_mapping(1, {0: {"P": 16, "R": 3}}))
    assert c.cycles[0] == 128
    assert c.utilization[0] == pytest.approx(48 / 128)
    unlimited = Accelerator("bw", (buffer("Buffer", 64),), mac())
    assert evaluate(layer, unlimited, one_mapping(1, {0: {"P": 16, "R": 3}})).cycles[0] == 48
    # packed 4-bit weights and inputs need half the 8-bit word bandwidth, but the buffer
    # still reduces the outputs (R loop), so the partial sums stay at the 8-bit datawidth:
    # reads 24 + 24 + 32 = 80 (80 cycles at 1/cycle), writes 48 updates at 0.5/cycle = 96
    packed = evaluate(layer, accel, one_mapping(1, {0: {"P": 16, "R": 3}}), bits=(4, 4, 4))
    assert packed.cycles[0] == 96
    # with 4-bit accumulators everything packs two per word: reads 64, writes 24 / 0.5 = 48
    narrow = dataclasses.replace(accel, accumulator_bits=4)
    assert evaluate(layer, narrow, one_mapping(1, {0: {"P": 16, "R": 3}}), bits=(4, 4, 4)).cycles[0] == 64
