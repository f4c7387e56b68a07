"""The fork's bit-packing where the bits do not divide the word (16 // 3 = 5, one bit wasted).

The Klhufek et al. fork packs ``floor(word_bits / bits)`` values into a word and rounds each
action's words up to whole vector accesses of ``block size`` words:
``ceil(ceil(values / floor(word_bits / bits)) / block)``. jaqmoo's ``fork`` convention charges
``ceil(values / (block x floor(word_bits / bits)))`` vector accesses, the same integer. Checked
here on hand-worked counts at 3, 5, 6 and 7 bits, on the shared Simba-like run at 3-bit weights
(``mobilenet-l13-simba-16bit_int-w3-a8``, exact), and on that run's mapping re-costed at
3, 5, 6 and 7 bits against the rule written out independently.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import yaml

from jaqmoo.hardware.spec import TENSORS, Level
from jaqmoo.hardware.timeloop_yaml import load_accelerator
from jaqmoo.mapping.model import evaluate
from jaqmoo.timeloop.check import check_reference, load_reference
from jaqmoo.timeloop.energies import energy_table_from_stats, vector_accesses
from jaqmoo.timeloop.stats import LevelStats, TensorStats, TimeloopStats

QUANT = Path(__file__).parent / "data" / "timeloop_quant"
SIMBA_W3 = QUANT / "mobilenet-l13-simba-16bit_int-w3-a8"

# bits: (operands per 16-bit word, wasted bits, words of 2048 values, vector accesses of 4 words)
HAND = {3: (5, 1, 410, 103), 5: (3, 1, 683, 171), 6: (2, 4, 1024, 256), 7: (2, 2, 1024, 256)}


def _buffer(convention_word: int = 16, block: int = 4) -> Level:
    return Level("Buf", "smartbuffer_RF", 1, 1, 1, 4096, convention_word * block, convention_word)


@pytest.mark.parametrize("bits", sorted(HAND))
def test_hand_worked_packing_at_non_dividing_widths(bits):
    per_word, wasted, words, vectors = HAND[bits]
    assert 16 // bits == per_word and 16 - per_word * bits == wasted
    assert math.ceil(2048 / per_word) == words and vector_accesses(words, 4) == vectors
    level = _buffer()
    # the fork: values straddle no word-bits word; a vector holds block x operands per word
    assert level.values_per_word(bits, "fork") == 4 * per_word
    assert math.ceil(2048 / level.values_per_word(bits, "fork")) == vectors
    # jaqmoo's own convention packs the whole 64-bit instance word instead
    assert level.values_per_word(bits, "jaqmoo") == 64 // bits


def test_the_shared_simba_w3_run_is_exact():
    report = check_reference(SIMBA_W3, rel_tol=1e-6)
    assert report.ok, report.text()
    rows = {(r.level, r.tensor, r.quantity): r for r in report.rows}
    assert rows["PEWeightBuffer", "Weights", "operands"].ours == 5
    assert rows["PEWeightBuffer", "Weights", "wasted"].ours == 1
    energy = rows["PEWeightBuffer", "Weights", "energy"]
    assert energy.ours == pytest.approx(energy.theirs, rel=1e-6)


@pytest.mark.parametrize("bits", [3, 5, 6, 7])
def test_simba_mapping_recosted_by_the_fork_rule(bits):
    """The shared run's mapping at weight bits 3/5/6/7: every level's access energy equals the
    fork's rule applied to the unpacked per-instance counts, action by action."""
    tl, mapping, _ = load_reference(SIMBA_W3)
    accel = tl.accelerator
    costs = evaluate(tl.problem, accel, mapping, (bits, 8, 8))
    acc = costs.accesses
    for lvl, level in enumerate(accel.levels):
        if level.is_dummy:
            continue
        block = level.block_size
        for t in range(3):
            if not acc.keep[0, lvl, t]:
                continue
            b = (bits, 8, 8)[t]
            per_word = level.datawidth // b
            expected = 0.0
            for action, energy in enumerate((level.read_energy, level.write_energy, level.update_energy)):
                words = math.ceil(acc.rfu[0, lvl, t, action] / per_word)
                expected += math.ceil(words / block) * energy
            expected *= float(acc.instances[0, lvl])
            assert costs.energy_by_tensor[0, lvl, t] == pytest.approx(expected, rel=1e-12), \
                f"{level.name} {TENSORS[t]} at {b} bits"


@pytest.mark.parametrize("bits", sorted(HAND))
def test_energy_recovery_inverts_the_fork_rule(bits):
    """A fork stats level written by the rule (read 44.7598, fill 51.3 pJ per vector of 4 words)
    gives back both energies exactly, at every width."""
    per_word = 16 // bits
    read_e, write_e = 44.7598, 51.3
    tensors = {}
    for name, (values_r, values_f, values_u) in {"Weights": (2048, 57, 0), "Outputs": (999, 130, 1003)}.items():
        r, f, u = (math.ceil(v / per_word) for v in (values_r, values_f, values_u))
        energy = 2 * (read_e * vector_accesses(r, 4) + write_e * (vector_accesses(f, 4) + vector_accesses(u, 4)))
        tensors[name] = TensorStats(instances=2, reads=r, fills=f, updates=u, energy=energy,
                                    operands_per_word=per_word)
    level = LevelStats("Buf", tensors=tensors, vector_access_energy=51.3, block_size=4.0)
    stats = TimeloopStats({"Buf": level}, cycles=1, utilization=1.0, computes=1, fj_per_compute_total=0.0,
                          source="hand-made", dialect="fork")
    table = energy_table_from_stats(stats)["ERT"]["tables"][0]
    got = {a["name"]: a["energy"] for a in table["actions"]}
    assert got["read"] == pytest.approx(read_e, rel=1e-9)
    assert got["write"] == pytest.approx(write_e, rel=1e-9)


def test_word_bits_set_the_packing_before_datawidth(tmp_path):
    """Timeloop (and the fork) read ``word-bits`` before ``datawidth``: a level inheriting
    ``datawidth: 8`` with ``word-bits: 16`` packs in 16-bit words."""
    arch = {"architecture": {"version": 0.3, "subtree": [{
        "name": "System", "attributes": {"datawidth": 8, "technology": "45nm"},
        "local": [{"name": "DRAM", "class": "DRAM", "attributes": {"word-bits": 16, "block-size": 4}},
                  {"name": "Buf", "class": "SRAM", "attributes": {"word-bits": 16, "block-size": 4, "depth": 64}},
                  {"name": "mac", "class": "intmac", "attributes": {"datawidth": 8}}]}]}}
    path = tmp_path / "arch.yaml"
    path.write_text(yaml.safe_dump(arch))
    accel = load_accelerator(path)
    buf = accel.levels[accel.level_index("Buf")]
    assert (buf.datawidth, buf.block_size, buf.width) == (16, 4, 64)
    assert dataclasses.replace(accel, convention="fork").levels[1].values_per_word(3, "fork") == 20
