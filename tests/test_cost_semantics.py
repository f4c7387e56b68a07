"""Timeloop v0.4 semantics the exercises' designs need, and partial sums at accumulator width.

Worked by hand: ``cluster_size`` (block size ``width / (datawidth * cluster_size)``, capacity
``depth * block size``, one vector access per utilized cluster), leakage of a level that keeps
nothing, and a low-bit policy whose partial-sum traffic stays at the accumulator width.
Property: lowering the activation bits never lowers the partial-sum energy.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_model_handworked import buffer, conv1d, mac, one_mapping
from test_model_properties import layer_and_mapping, make_accel

from jaqmoo.cost import network_cost
from jaqmoo.errors import JaqmooError
from jaqmoo.experiment.spec import _quantization
from jaqmoo.hardware.spec import Accelerator, Level
from jaqmoo.hardware.templates import get_template
from jaqmoo.mapping.model import BACKENDS, analyze, cost, evaluate, values_per_word
from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.timeloop.inputs import load_timeloop_input
from jaqmoo.workload import Layer, Workload

REFERENCE = Path(__file__).parent / "data" / "timeloop_reference"
FOLDERS = sorted(p.name for p in REFERENCE.iterdir() if p.is_dir())
WT, IN, OUT = 0, 1, 2


# ----------------------------------------------------------------------------- cluster_size

def regs(cluster: int, width: int = 32, instances: int = 4, e: float = 8.0) -> Level:
    """Weight registers: depth 1, ``width``-bit words shared by ``cluster`` instances."""
    return Level("Regs", "regfile", instances, instances, 1, 1, width, 8, keep=("Weights",),
                 bypass=("Inputs", "Outputs"), read_energy=e, write_energy=e, update_energy=e,
                 cluster_size=cluster)


def test_cluster_size_sets_block_size_and_capacity():
    """The exercises' Simba PEWeightRegs: depth 1, width 512, datawidth 8, cluster_size 64:
    block size 512 / (8 * 64) = 1, so one register holds ONE weight, not 64."""
    lvl = Level("PEWeightRegs", "regfile", 256, 256, 1, 1, 512, 8, cluster_size=64)
    assert (lvl.instance_word_bits, lvl.block_size, lvl.size, lvl.clusters) == (8, 1, 1, 4)
    flat = dataclasses.replace(lvl, cluster_size=1)
    assert (flat.block_size, flat.size, flat.clusters) == (64, 64, 256)
    accel = Accelerator("r", (buffer("DRAM", None), lvl), dataclasses.replace(mac(256), mesh_x=256))
    # bit-packing applies to the instance's share of the word: two 4-bit weights in 8 bits
    assert values_per_word(accel, (4, 8, 8))[1, WT] == 2
    assert values_per_word(accel, None)[1].tolist() == [1, 1, 1, 1]
    with pytest.raises(JaqmooError, match="cluster_size 64 needs a word of at least 512"):
        dataclasses.replace(lvl, width=256)


def test_simba_template_weight_registers_hold_one_weight():
    simba = get_template("simba").build()
    regs_lvl = simba.levels[simba.level_index("PEWeightRegs")]
    assert (regs_lvl.cluster_size, regs_lvl.block_size, regs_lvl.size) == (64, 1, 1)
    assert simba.accumulator_bits == 24 and get_template("eyeriss").build().accumulator_bits == 16
    # the loader reads the attribute (flattened dict written by the template)
    tl = get_template("simba").to_timeloop()
    loaded = load_timeloop_input(tl).accelerator
    assert loaded.levels[loaded.level_index("PEWeightRegs")].cluster_size == 64


def test_loader_reads_cluster_size_with_entries():
    """Timeloop's ``entries`` is the capacity in values: with cluster_size 64 (block size 1)
    4 entries are 4 one-value words, not one 64-value word."""
    tl = get_template("simba").to_timeloop()
    regs_node = next(c for c in tl["architecture"]["subtree"][0]["local"] if c["name"].startswith("PEWeightRegs"))
    del regs_node["attributes"]["depth"]
    regs_node["attributes"]["entries"] = 4
    accel = load_timeloop_input(tl).accelerator
    lvl = accel.levels[accel.level_index("PEWeightRegs")]
    assert (lvl.cluster_size, lvl.depth, lvl.size) == (64, 4, 4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cluster_size_capacity_and_energy_by_hand(backend):
    """fc K=8 on DRAM -> 4 weight registers (depth 1, 32-bit words) -> 4 MACs, K split 4
    across the registers. Unclustered, a register holds 4 weights, so keeping K=2 in time at
    the registers (a 2-weight tile) fits; with cluster_size 4 the four registers share one
    32-bit word (8 bits, 1 weight each) and the same tile does not fit.
    With the K=2 loop at DRAM instead (1-weight tile), each register sees 2 fills and 2 reads.
    Unclustered: ceil(2/4) = 1 word each, per instance: (1 + 1) x 8 pJ x 4 instances = 64 pJ.
    Clustered: 2 + 2 vector accesses, charged once per utilized cluster
    (min(4 instances, 4 / 4) = 1, Timeloop's utilized clusters): 4 x 8 pJ = 32 pJ."""
    layer = Layer("fc", "linear", K=8, C=1)
    weights_only = [[True, True, True], [True, False, False]]
    in_regs = one_mapping(2, {1: {"K": 2}}, spatial_x={0: {"K": 4}}, keep=weights_only)
    at_dram = one_mapping(2, {0: {"K": 2}}, spatial_x={0: {"K": 4}}, keep=weights_only)
    flat = Accelerator("flat", (buffer("DRAM", None, e=0.0), regs(1)), mac(4, energy=0.0))
    clustered = Accelerator("cl", (buffer("DRAM", None, e=0.0), regs(4)), mac(4, energy=0.0))
    assert evaluate(layer, flat, in_regs, backend=backend).feasible[0]
    c = evaluate(layer, clustered, in_regs, backend=backend)
    assert not c.feasible[0] and "'Regs' needs 2 words" in c.reason(0)
    c_flat = evaluate(layer, flat, at_dram, backend=backend)
    c = evaluate(layer, clustered, at_dram, backend=backend)
    assert c.feasible[0]
    assert c.accesses.fills[0, 1, WT] == 2 and c.accesses.reads[0, 1, WT] == 2  # per instance
    assert c_flat.energy_by_level[0, 1] == pytest.approx((1 + 1) * 8.0 * 4)
    assert c.energy_by_level[0, 1] == pytest.approx((2 + 2) * 8.0 * 1)


# ----------------------------------------------------------------------------- leakage

@pytest.mark.parametrize("backend", BACKENDS)
def test_unused_level_still_leaks(backend):
    """MainMemory[P16 R3] with a Buffer that bypasses every tensor: the buffer leaks
    0.5 pJ per instance per cycle for all 48 cycles anyway (Timeloop charges every level)."""
    layer = conv1d()
    accel = Accelerator("leaky", (buffer("MainMemory", None, e=0.0), buffer("Buffer", 64, e=0.0, leak_energy=0.5)),
                        mac(energy=0.0))
    nothing = one_mapping(2, {0: {"P": 16, "R": 3}}, keep=[[True, True, True], [False, False, False]])
    c = evaluate(layer, accel, nothing, backend=backend)
    assert c.cycles[0] == 48
    assert c.leakage[0].tolist() == [0.0, 0.5 * 48]
    assert c.energy[0] == pytest.approx(0.5 * 48)


# ------------------------------------------------------------------------ accumulator bits

def os_accel(accumulator_bits: int | None) -> Accelerator:
    """MainMemory (10 pJ per 16-bit word) -> Buffer (1 pJ per 16-bit word) -> 1 MAC."""
    return Accelerator("os", (buffer("MainMemory", None, width=16, e=10.0), buffer("Buffer", 64, width=16, e=1.0)),
                       mac(energy=0.0), accumulator_bits=accumulator_bits)


@pytest.mark.parametrize("backend", BACKENDS)
def test_low_bit_psum_traffic_stays_at_accumulator_width(backend):
    """MainMemory[P16] Buffer[R3] at 4-bit weights and activations, 16-bit accumulators.
    The buffer reduces over R, so its outputs are partial sums at 16 bits, one per word:
    32 reads + 48 updates = 80 words. Weights (3 fills, 48 reads) and inputs (18 fills, 48
    reads) pack 4 per word: 1 + 12 + 5 + 12 = 30 words. MainMemory receives 16 completed
    outputs, written at the 4-bit activation width: 4 words, plus 1 + 5 words of weights and
    inputs."""
    layer = conv1d()
    mapping = one_mapping(2, {0: {"P": 16}, 1: {"R": 3}})
    a = analyze(layer, os_accel(16), mapping, backend=backend)
    assert a.psum_f[0].tolist() == [0.0, 1.0]
    c = cost(a, os_accel(16), (4, 4, 4), backend=backend)
    assert c.energy_by_level[0].tolist() == pytest.approx([10.0 * (1 + 5 + 4), 1.0 * (30 + 80)])
    assert c.psum_energy[0].tolist() == pytest.approx([0.0, 80.0])
    # the same traffic at 8 bits: psums still one 16-bit word each
    assert cost(a, os_accel(16), (8, 8, 8), backend=backend).psum_energy[0].tolist() == pytest.approx([0.0, 80.0])
    # the old convention (partial sums at the 4-bit output width) would have packed them 4 per word
    c4 = cost(a, os_accel(4), (4, 4, 4), backend=backend)
    assert c4.psum_energy[0, 1] == pytest.approx(8 + 12)
    # capacity counts partial sums at 16 bits too: the buffer's 1-output tile takes 1 word
    assert c.tile_words[0, 1, OUT] == 1


def test_reduction_above_a_level_makes_its_outputs_partial():
    """MainMemory[R3] Buffer[P16]: the buffer hands unfinished sums back to MainMemory
    between filter taps, so BOTH levels hold partial sums."""
    a = analyze(conv1d(), os_accel(16), one_mapping(2, {0: {"R": 3}, 1: {"P": 16}}))
    assert a.psum_f[0].tolist() == [1.0, 1.0]
    c = cost(a, os_accel(16), (4, 4, 4))
    # MainMemory: 16 final + 32 intermediate updates and 32 reads back, all 16-bit
    assert c.psum_energy[0, 0] == pytest.approx(10.0 * (a.updates[0, 0, OUT] + a.reads[0, 0, OUT]))


@pytest.mark.parametrize("folder", FOLDERS)
def test_uniform_8bit_with_reference_datawidths_equals_timeloop(folder):
    """bits=(8, 8, 8) with each level's datawidth as accumulator width costs exactly what
    Timeloop's own convention (every level at its datawidth) costs on every reference
    folder whose storage datawidths are 8 (psum_spad's 16 bits hold partial sums)."""
    from jaqmoo.timeloop.check import check_reference, load_reference

    tl, mapping, _ = load_reference(REFERENCE / folder)
    accel = tl.accelerator
    if any(lvl.datawidth != 8 for lvl in accel.levels if not lvl.is_dummy and lvl.name != "psum_spad"):
        pytest.skip("not an 8-bit design")
    a = analyze(tl.problem, accel, mapping)
    if "psum_spad" in a.level_names:
        assert a.psum_f[0, a.level_names.index("psum_spad")] == 1.0
    c8, c_none = cost(a, accel, (8, 8, 8)), cost(a, accel, None)
    np.testing.assert_allclose(c8.energy_by_level, c_none.energy_by_level, rtol=1e-12)
    assert c8.cycles[0] == c_none.cycles[0]
    assert check_reference(REFERENCE / folder).ok


@settings(max_examples=60, deadline=None)
@given(layer_and_mapping(), st.integers(2, 8), st.integers(1, 7), st.integers(2, 8), st.sampled_from([8, 16, 24]))
def test_lowering_activation_bits_never_lowers_psum_energy(case, a_hi, drop, w, acc):
    """Partial sums do not depend on the activation width: lowering it leaves the partial-sum
    energy of every level unchanged (so it can never go down)."""
    layer, batch = case
    a_lo = max(1, a_hi - drop)
    accel = dataclasses.replace(make_accel(), accumulator_bits=acc)
    acc_ = analyze(layer, accel, batch)
    hi, lo = cost(acc_, accel, (w, a_hi, a_hi)), cost(acc_, accel, (w, a_lo, a_lo))
    assert (lo.psum_energy >= hi.psum_energy).all()
    np.testing.assert_array_equal(lo.psum_energy, hi.psum_energy)


# ------------------------------------------------------------------------------- plumbing

def test_spec_and_network_cost_carry_accumulator_bits():
    assert _quantization({"accumulator_bits": 20}, "spec").accumulator_bits == 20
    assert _quantization(None, "spec").accumulator_bits is None
    with pytest.raises(JaqmooError, match="quantization.accumulator_bits"):
        _quantization({"accumulator_bits": "wide"}, "spec")
    with pytest.raises(JaqmooError, match="1..64"):
        os_accel(None).with_accumulator_bits(0)
    layer = dataclasses.replace(conv1d(), name="l0")
    wl = Workload("w", (layer,))
    policy = QuantPolicy.uniform(["l0"], 4)
    narrow = network_cost(wl, os_accel(None).with_accumulator_bits(8), policy=policy)
    wide = network_cost(wl, os_accel(None).with_accumulator_bits(16), policy=policy)
    assert wide.energy_pj >= narrow.energy_pj
    levels = {name: (e, p) for name, e, p in wide.level_energy()}
    assert 0 < levels["Buffer"][1] <= levels["Buffer"][0]
    assert "psum share" in wide.level_table()
