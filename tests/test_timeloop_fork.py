"""The Klhufek et al. mixed-precision Timeloop fork: its input and stats dialects, its counting
conventions, and jaqmoo's check against its 36 published runs (tests/data/timeloop_quant)."""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from test_model_properties import SETTINGS, layer_and_mapping, make_accel

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.problem_yaml import parse_problem, problem_bits
from jaqmoo.hardware.spec import Level
from jaqmoo.hardware.timeloop_fields import parse_factors, parse_permutation
from jaqmoo.hardware.timeloop_yaml import load_accelerator
from jaqmoo.mapping.model import analyze, cost, evaluate, mac_energy_scale
from jaqmoo.timeloop.check import check_reference, load_reference
from jaqmoo.timeloop.energies import energy_table_from_stats
from jaqmoo.timeloop.inputs import load_timeloop_input
from jaqmoo.timeloop.stats import parse_stats

DATA = Path(__file__).parent / "data"
QUANT = DATA / "timeloop_quant"
FORK_FOLDERS = sorted(p.name for p in QUANT.iterdir() if p.is_dir())
V04 = DATA / "timeloop_reference"


def test_fork_folders_and_license_present():
    """The 36 published runs of the shared reference set (README lists them)."""
    assert len(FORK_FOLDERS) == 36
    assert {f"mobilenet-l{i}-eyeriss-16bit_int-w8-a8" for i in range(1, 29)} <= set(FORK_FOLDERS)
    assert "MIT" in (QUANT / "LICENSE").read_text()


@pytest.mark.parametrize("folder", FORK_FOLDERS)
def test_fork_run_reproduced_exactly(folder):
    """Every per-level, per-tensor count, operands per word, wasted bits and utilized capacity
    exact; energies within 1e-6 (the per-tensor Energy lines have 2 decimals of pJ); cycles equal."""
    report = check_reference(QUANT / folder, rel_tol=1e-6)
    assert report.ok, report.text()
    tl, _, stats = load_reference(QUANT / folder)
    assert stats.dialect == "fork" and tl.accelerator.convention == "fork"
    for level in stats.levels.values():
        for tensor in level.tensors:
            got = {r.quantity for r in report.rows if r.level == level.name and r.tensor == tensor}
            assert {"reads", "fills", "updates", "operands", "wasted", "capacity", "fragment"} <= got
    assert report.cycles == report.reference_cycles
    assert report.energy_pj == pytest.approx(report.reference_energy_pj, rel=1e-3)


@pytest.mark.parametrize("folder", sorted(p.name for p in V04.iterdir() if p.is_dir()))
def test_v04_runs_stay_exact_at_1e3(folder):
    report = check_reference(V04 / folder, rel_tol=1e-3)
    assert report.ok, report.text()
    assert load_reference(V04 / folder)[0].accelerator.convention == "jaqmoo"


def test_fork_bits_and_packing_read_from_the_folders():
    tl = load_timeloop_input(QUANT / "alexnet-l1-3level-model-different_quantization")
    assert tl.bits == (3, 8, 8)
    assert load_timeloop_input(QUANT / "alexnet-l1-3level-model-same_quantization").bits == (4, 4, 4)
    assert load_timeloop_input(QUANT / "alexnet-l1-3level-model-native").bits is None
    simba = load_timeloop_input(QUANT / "mobilenet-l3-simba-16bit_int-w2-a8")
    assert simba.bits == (2, 8, 8)
    accu = simba.accelerator.levels[simba.accelerator.level_index("PEAccuBuffer")]
    assert (accu.width, accu.datawidth, accu.depth) == (16, 16, 128)  # no width, no block-size: 1 word
    regs = simba.accelerator.levels[simba.accelerator.level_index("PEWeightRegs")]
    assert (regs.cluster_size, regs.width, regs.block_size, regs.size) == (64, 1024, 1, 1)  # Timeloop's Size 1
    glb = simba.accelerator.levels[simba.accelerator.level_index("GlobalBuffer")]
    assert (glb.width, glb.datawidth, glb.block_size) == (256, 16, 16)


def test_no_ert_energies_come_from_the_stats_file_and_say_so():
    tl, _, _ = load_reference(QUANT / "mobilenet-l2-eyeriss-16bit_int-w4-a8")
    assert "stats file" in tl.accelerator.energy_source and "no ERT" in tl.accelerator.energy_source
    alex, _, _ = load_reference(QUANT / "alexnet-l1-3level-model-native")
    assert alex.accelerator.energy_source.startswith("ERT ")


def test_fork_conventions_differ_from_v04_as_documented():
    """Same mapping, same bits: the fork counts each partial sum's first fill (v0.4 does not),
    packs within word-bits words and does not scale MAC energy with the bits."""
    tl, mapping, _ = load_reference(QUANT / "alexnet-l1-3level-model-different_quantization")
    fork = tl.accelerator
    ours = dataclasses.replace(fork, convention="jaqmoo")
    a_fork = analyze(tl.problem, fork, mapping)
    a_ours = analyze(tl.problem, ours, mapping)
    diff = a_fork.fills - a_ours.fills
    assert np.all(diff[:, :, :2] == 0)
    assert np.array_equal(diff[0, 1:, 2], a_ours.partition[0, 1:, 2] * a_ours.keep[0, 1:, 2])
    assert diff[0, 0, 2] == 0 and diff[0, 1:, 2].sum() > 0
    assert mac_energy_scale(fork, tl.bits) == 1.0
    assert mac_energy_scale(ours, tl.bits) == pytest.approx(3 * 8 / 64)


def test_packing_unit_word_vs_vector():
    lvl = Level("glb", "SRAM", 1, 1, 1, 128, 64, 16)
    assert lvl.values_per_word(3, "fork") == 4 * 5  # 5 per 16-bit word, 4 words per vector
    assert lvl.values_per_word(3, "jaqmoo") == 21  # 21 per 64-bit vector
    assert lvl.values_per_word(16, "fork") == lvl.values_per_word(16, "jaqmoo") == 4
    assert lvl.values_per_word(17, "fork") == 0  # wider than a word: cannot be stored
    assert lvl.values_per_word(17, "jaqmoo") == 3


# ------------------------------------------------------------------ hand-written dialect inputs

_SHAPE_V03 = {
    "name": "conv", "dimensions": ["C", "M", "R", "S", "N", "P", "Q"],
    "data-spaces": [
        {"name": "Weights", "projection": [[["C"]], [["M"]], [["R"]], [["S"]]]},
        {"name": "Inputs", "projection": [[["N"]], [["C"]], [["R"], ["P"]], [["S"], ["Q"]]]},
        {"name": "Outputs", "projection": [[["N"]], [["M"]], [["Q"]], [["P"]]], "read-write": True},
    ],
}
_INSTANCE = {"C": 4, "M": 8, "R": 3, "S": 3, "N": 1, "P": 6, "Q": 6}


def _v04_shape() -> dict:
    shape = dict(_SHAPE_V03)
    spaces = shape.pop("data-spaces")
    shape["data_spaces"] = [{("read_write" if k == "read-write" else k): v for k, v in sp.items()} for sp in spaces]
    return shape


def test_data_spaces_and_read_write_spellings_give_the_same_layer():
    fork = parse_problem({"shape": _SHAPE_V03, "instance": _INSTANCE}, "x")
    v04 = parse_problem({"shape": _v04_shape(), "instance": _INSTANCE}, "x")
    assert fork == v04 and fork.K == 8 and fork.C == 4


def test_common_bitwidth_and_bitwidths():
    assert problem_bits({"instance": {**_INSTANCE, "commonBitwidth": 4}}, "x") == (4, 4, 4)
    per = {"bitwidths": {"Inputs": 8, "Weights": 3, "Outputs": 6}}
    assert problem_bits({"instance": {**_INSTANCE, **per}}, "x") == (3, 8, 6)
    partial = {"commonBitwidth": 5, "bitwidths": {"Weights": 2}}
    assert problem_bits({"instance": {**_INSTANCE, **partial}}, "x") == (2, 5, 5)
    assert problem_bits({"instance": _INSTANCE}, "x") is None
    with pytest.raises(JaqmooError, match="no Inputs entry"):
        problem_bits({"instance": {**_INSTANCE, "bitwidths": {"Weights": 2, "Outputs": 8}}}, "x")
    with pytest.raises(JaqmooError, match="bitwidths.Biases: unknown tensor"):
        problem_bits({"instance": {**_INSTANCE, "commonBitwidth": 8, "bitwidths": {"Biases": 2}}}, "x")
    with pytest.raises(JaqmooError, match="commonBitwidth must be a number"):
        problem_bits({"instance": {**_INSTANCE, "commonBitwidth": "eight"}}, "x")


def _arch_v03(glb: dict) -> dict:
    return {"architecture": {"version": 0.3, "subtree": [{
        "name": "System", "local": [{"name": "DRAM", "class": "DRAM",
                                     "attributes": {"width": 64, "block-size": 4, "word-bits": 16}}],
        "subtree": [{"name": "chip", "attributes": {"technology": "45nm"},
                     "local": [{"name": "GLB", "class": "SRAM", "attributes": glb},
                               {"name": "mac", "class": "intmac", "attributes": {"datawidth": 16}}]}]}]}}


def test_word_bits_and_block_size():
    accel = load_accelerator(_arch_v03({"depth": 512, "block-size": 4, "word-bits": 16}))
    glb = accel.levels[1]
    assert (glb.width, glb.datawidth, glb.block_size, glb.size) == (64, 16, 4, 2048)
    one = load_accelerator(_arch_v03({"memory_depth": 128, "word-bits": 8})).levels[1]
    assert (one.width, one.datawidth, one.block_size) == (8, 8, 1)
    dram = accel.levels[0]
    assert (dram.width, dram.datawidth, dram.depth) == (64, 16, None)


def test_constraint_factor_zero_and_spaced_permutation():
    assert parse_factors("N=1 S=0", "x", "f", allow_zero=True) == {"N": 1, "S": 0}
    with pytest.raises(JaqmooError, match="must be >= 1"):
        parse_factors("S=0", "x", "f")  # a mapping needs real factors
    assert parse_permutation("NPQR SCM", "x", "p") == ["N", "P", "Q", "R", "S", "C", "K"]
    assert parse_permutation("N M", "x", "p") == ["N", "K"]


def _tensor(name, partition, capacity, per_word, wasted, fragment, reads, updates, fills, energy) -> str:
    """One tensor's block of a fork stats file."""
    rows = [("Partition size", partition), ("Utilized capacity", capacity), ("Data operands per word", per_word),
            ("Wasted bits per word", wasted), ("Wasted bits per data storage due to fragmentation", fragment),
            ("Utilized instances (max)", 1), ("Scalar reads (per-instance)", reads),
            ("Scalar updates (per-instance)", updates), ("Scalar fills (per-instance)", fills),
            ("Energy (total)", f"{energy:.2f} pJ")]
    return f"    {name}:\n" + "".join(f"        {k:54s}: {v}\n" for k, v in rows)


_STATS = f"""Buffer and Arithmetic Levels
----------------------------
Level 0
-------
=== mac ===

    SPECS
    -----
    Word bits             : 16
    Instances             : 1 (1*1)
    Compute energy        : 2.20 pJ

    STATS
    -----
    Utilized instances      : 1
    Computes (total)        : 1000
    Cycles                  : 1000
    Energy (total)          : 2200.50 pJ

Level 1
-------
=== Buf ===

    SPECS
    -----
        Word bits                   : 16
        Block size                  : 4
        Cluster size                : 1
        Instances                   : 1 (1*1)
        Vector access energy        : 8.00 pJ

    STATS
    -----
    Cycles               : 1000
{_tensor("Weights", 64, 22, 3, 1, 22, 300, 0, 22, 498.0)}{_tensor("Outputs", 10, 5, 2, 0, 0, 40, 50, 10, 188.0)}
Summary Stats
-------------
Utilization: 0.50
Cycles: 1000
Energy: 0.00 uJ

Computes = 1000
pJ/Compute
    mac                          = 2.20
    Buf                          = 0.69
    Total                        = 2.89
"""


def test_pj_per_compute_stats_dialect():
    stats = parse_stats(_STATS)
    assert stats.dialect == "fork"
    assert stats.utilization == pytest.approx(0.5)
    assert stats.fj_per_compute_total == pytest.approx(2890.0)
    buf = stats.levels["Buf"]
    assert (buf.tensors["Weights"].operands_per_word, buf.tensors["Weights"].wasted_bits_per_word,
            buf.tensors["Weights"].wasted_bits_storage) == (3, 1, 22)
    assert (buf.vector_access_energy, buf.block_size) == (8.0, 4.0)
    # the 2-decimal pJ/Compute summary is too coarse: totals come from the exact Energy lines
    assert stats.level_energy_pj("Buf") == pytest.approx(686.0)
    assert stats.energy_pj == pytest.approx(2200.5 + 686.0)


def test_energies_recovered_from_stats():
    """Two tensors: read 6, write 8 pJ per vector access of 4 words, each action's words rounded
    up to whole vectors (Weights: 300 reads -> 75, 22 fills -> 6; Outputs: 40 -> 10, 10 -> 3,
    50 -> 13); compute 2.2005."""
    ert = energy_table_from_stats(parse_stats(_STATS))["ERT"]["tables"]
    by_name = {t["name"]: {a["name"]: a["energy"] for a in t["actions"]} for t in ert}
    assert by_name["Buf"]["read"] == pytest.approx(6.0)
    assert by_name["Buf"]["write"] == pytest.approx(8.0)
    assert by_name["mac"]["compute"] == pytest.approx(2.2005)
    one = parse_stats(_STATS.replace(_tensor("Outputs", 10, 5, 2, 0, 0, 40, 50, 10, 188.0), ""))
    # one tensor: the printed vector energy (8.00) is the dearer action -> writes
    tables = energy_table_from_stats(one)["ERT"]["tables"]
    buf = {a["name"]: a["energy"] for a in tables[1]["actions"]}
    assert buf["write"] == pytest.approx(8.0)
    assert buf["read"] == pytest.approx((498.0 - 8.0 * 6) / 75)


def test_scenario_folder_merge_and_conflicts(tmp_path):
    src = QUANT / "mobilenet-l3-eyeriss-16bit_int-w4-a8"
    shutil.copytree(src, tmp_path / "s")
    tl = load_timeloop_input(tmp_path / "s")
    assert tl.problem.K == 64 and tl.mapping is None  # the mapper's *.map.yaml is an output, read by the check
    assert any(c.target == "DummyBuffer" and c.type == "spatial" for c in tl.constraints)
    assert any(c.target == "DRAM" and c.type == "temporal" for c in tl.constraints)  # from the map constraints
    (tmp_path / "s" / "extra.yaml").write_text(yaml.safe_dump({"problem": {"shape": {}, "instance": {}}}))
    with pytest.raises(JaqmooError, match="'problem' is given twice"):
        load_timeloop_input(tmp_path / "s")


def test_cli_checks_a_fork_folder(capsys):
    from jaqmoo.cli import main

    assert main(["timeloop", "check", str(QUANT / "mobilenet-l3-simba-16bit_int-w2-a8"), "--tolerance", "1e-3"]) == 0
    out = capsys.readouterr().out
    assert "operands" in out and "PASS" in out


# ------------------------------------------------------------------------- property


@SETTINGS
@given(case=layer_and_mapping(), tensor=st.integers(0, 2), high=st.integers(2, 8), drop=st.integers(1, 6),
       others=st.tuples(st.integers(1, 8), st.integers(1, 8)), convention=st.sampled_from(["jaqmoo", "fork"]))
def test_lower_bits_never_raise_word_traffic(case, tensor, high, drop, others, convention):
    """At a fixed mapping, lowering one tensor's bits never raises its packed-word reads, fills
    or updates (nor their energy) at any level, under either convention."""
    layer, batch = case
    accel = dataclasses.replace(make_accel(), convention=convention)
    low = max(1, high - drop)
    rest = list(others)
    bits_hi = tuple(high if t == tensor else rest.pop(0) for t in range(3))
    bits_lo = tuple(low if t == tensor else b for t, b in enumerate(bits_hi))
    acc = analyze(layer, accel, batch)
    hi, lo = cost(acc, accel, bits_hi), cost(acc, accel, bits_lo)

    def words(c):
        vpw = c.values_per_word[:, tensor].astype(np.float64)
        with np.errstate(divide="ignore"):
            return np.where(vpw[None, :, None] > 0, np.ceil(acc.rfu[:, :, tensor, :] / vpw[None, :, None]), math.inf)

    assert np.all(words(lo) <= words(hi))
    assert np.all(lo.energy_by_tensor[:, :, tensor] <= hi.energy_by_tensor[:, :, tensor] + 1e-9)
    assert np.all(lo.tile_words[:, :, tensor] <= hi.tile_words[:, :, tensor])


def test_fork_mapping_costs_do_not_depend_on_backend():
    tl, mapping, _ = load_reference(QUANT / "mobilenet-l3-simba-16bit_int-w2-a8")
    a = evaluate(tl.problem, tl.accelerator, mapping, tl.bits, backend="numpy")
    b = evaluate(tl.problem, tl.accelerator, mapping, tl.bits, backend="numba")
    assert np.array_equal(a.accesses.rfu, b.accesses.rfu)
    assert a.energy[0] == pytest.approx(b.energy[0], rel=1e-12)
