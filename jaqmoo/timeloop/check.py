"""Compare our model with a Timeloop reference folder (input + ERT + mapping + stats).

``check_reference(folder)`` loads the folder's Timeloop input with our loader, evaluates the
mapping of ``*.map.yaml`` (else the input's ``mapping:``, else ``*.map.txt``) with
:func:`jaqmoo.mapping.model.evaluate`, and compares per level and tensor: reads, fills and
updates (must be equal), energy per level and in total (within ``rel_tol``) and cycles
(equal). Energies are taken from Timeloop's ``fJ/Compute`` breakdown, which includes
leakage, and its printed precision (two decimals of fJ/compute) sets a small absolute slack.

Two stats dialects are recognised (``TimeloopStats.dialect``): Timeloop v0.4, and the
Klhufek et al. mixed-precision fork (``pJ/Compute`` summary, per-tensor ``Data operands per
word``). A fork run is costed under the fork's counting convention (``convention="fork"``)
at the problem's ``commonBitwidth`` / ``bitwidths``; its counts are in packed words, and the
operands per word, wasted bits per word, utilized capacity (words) and wasted bits of that
capacity are compared too. Its per-level energies are the sums of the exact per-tensor
``Energy (total)`` lines (the pJ/Compute summary has two decimals).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.ert import find_sibling
from jaqmoo.hardware.spec import TENSORS
from jaqmoo.hardware.yaml_io import load_yaml
from jaqmoo.mapping.mapping import MappingBatch, describe
from jaqmoo.mapping.model import Costs, evaluate
from jaqmoo.mapping.timeloop_map import parse_map_txt, parse_mapping
from jaqmoo.timeloop.energies import energy_table_from_stats
from jaqmoo.timeloop.inputs import TimeloopInput, load_timeloop_input
from jaqmoo.timeloop.stats import TensorStats, TimeloopStats, parse_stats

JAQMOO_STATS = "jaqmoo.stats.txt"
"""The stats file an export writes with jaqmoo's own figures (:mod:`jaqmoo.timeloop.export`); the
check compares with any other ``*.stats.txt`` of the folder (Timeloop's) before it."""


@dataclass
class Row:
    """One compared quantity."""

    level: str
    tensor: str
    quantity: str
    ours: float
    theirs: float | None
    ok: bool


@dataclass
class CheckReport:
    folder: str
    mapping: str
    rows: list[Row] = field(default_factory=list)
    energy_pj: float = 0.0
    reference_energy_pj: float = 0.0
    cycles: int = 0
    reference_cycles: int = 0
    utilization: float = 0.0
    reference_utilization: float = 0.0
    stats: str = ""
    """The stats file compared with."""

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    def text(self) -> str:
        lines = [f"reference: {self.folder}", *([f"stats:     {self.stats}"] if self.stats else []),
                 f"mapping:   {self.mapping}",
                 f"{'level':24s} {'tensor':8s} {'quantity':8s} {'ours':>16s} {'timeloop':>16s}  status"]
        for r in self.rows:
            theirs = "-" if r.theirs is None else f"{r.theirs:16.2f}" if r.quantity == "energy" else f"{r.theirs:16.0f}"
            ours = f"{r.ours:16.2f}" if r.quantity == "energy" else f"{r.ours:16.0f}"
            lines.append(f"{r.level:24s} {r.tensor:8s} {r.quantity:8s} {ours:>16s} {theirs:>16s}  "
                         f"{'ok' if r.ok else 'MISMATCH'}")
        lines.append(f"total energy: ours {self.energy_pj / 1e6:.4f} uJ, timeloop "
                     f"{self.reference_energy_pj / 1e6:.4f} uJ")
        lines.append(f"cycles: ours {self.cycles}, timeloop {self.reference_cycles}; utilization: ours "
                     f"{self.utilization:.2%}, timeloop {self.reference_utilization:.2%}")
        lines.append("PASS" if self.ok else f"FAIL ({len(self.failures)} mismatches)")
        return "\n".join(lines)


def load_reference(folder: str | Path) -> tuple[TimeloopInput, MappingBatch, TimeloopStats]:
    """The folder's input, the mapping Timeloop evaluated, and its parsed stats.

    The stats file's dialect picks the counting convention: a run of the Klhufek et al. fork
    is costed with ``convention="fork"`` (see :data:`jaqmoo.hardware.spec.CONVENTIONS`). A run
    that saved no ERT gets its per-action energies from the stats file
    (:mod:`jaqmoo.timeloop.energies`), and the accelerator's ``energy_source`` says so.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise JaqmooError(f"{folder}: not a folder (give a Timeloop reference folder)")
    # Timeloop's output first: an export's own figures (jaqmoo.stats.txt) only when Timeloop has not run
    stats_files = sorted(folder.glob("*.stats.txt"), key=lambda p: (p.name == JAQMOO_STATS, p.name))
    if not stats_files:
        layers = sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / JAQMOO_STATS).is_file())
        if layers:  # the top of a --timeloop export
            raise JaqmooError(f"{folder}: an export of {len(layers)} layers; check one layer's folder, e.g. "
                              f"jaqmoo timeloop check {folder / layers[0]}")
        raise JaqmooError(f"{folder}: no *.stats.txt to compare with")
    stats = parse_stats(stats_files[0])
    if find_sibling(folder, "ERT") is None:
        tl = load_timeloop_input(folder, ert=energy_table_from_stats(stats),
                                 energy_source=f"stats file {stats_files[0]} (no ERT saved: per-action "
                                               f"energies recovered from its Vector access energy and "
                                               f"per-tensor Energy lines)")
    else:
        tl = load_timeloop_input(folder)
    if tl.problem is None:
        raise JaqmooError(f"{tl.source}: missing required field 'problem'; add the problem instance")
    if stats.dialect == "fork":
        tl = dataclasses.replace(tl, accelerator=dataclasses.replace(tl.accelerator, convention="fork"))
    map_yaml = sorted(folder.glob("*.map.yaml"))
    if map_yaml:
        data, label = load_yaml(map_yaml[0], "mapping")
        mapping = parse_mapping(data.get("mapping"), tl.accelerator, tl.problem, label, tl.dim_aliases)
    elif tl.mapping is not None:
        mapping = tl.mapping
    else:
        map_txt = sorted(folder.glob("*.map.txt"))
        if not map_txt:
            raise JaqmooError(f"{folder}: no mapping (*.map.yaml, the input's 'mapping:' or *.map.txt)")
        mapping = parse_map_txt(map_txt[0].read_text(), tl.accelerator, tl.problem, str(map_txt[0]),
                                tl.dim_aliases)
    return tl, mapping, stats


def compare(tl: TimeloopInput, costs: Costs, stats: TimeloopStats, folder: str, mapping_text: str,
            rel_tol: float = 0.01) -> CheckReport:
    """Row-by-row comparison of our costs (a batch of 1) with Timeloop's stats."""
    acc = costs.accesses
    computes = stats.computes
    report = CheckReport(folder, mapping_text, stats=stats.source)
    for lvl, name in enumerate(acc.level_names):
        ref = stats.levels.get(name)
        level = tl.accelerator.levels[lvl]
        if level.is_dummy:
            continue
        for t, tensor in enumerate(TENSORS):
            ref_t = ref.tensors.get(tensor) if ref else None
            kept = bool(acc.keep[0, lvl, t])
            if not kept and ref_t is None:
                continue
            report.rows += _tensor_rows(name, tensor, ref_t, tensor_counts(costs, level, lvl, t, stats.dialect, kept))
            if ref_t is not None and ref_t.energy is not None:  # access energy (no leakage)
                ours_t = float(costs.energy_by_tensor[0, lvl, t])
                ok_t = abs(ours_t - ref_t.energy) <= rel_tol * abs(ref_t.energy) + 0.01
                report.rows.append(Row(name, tensor, "energy", ours_t, ref_t.energy, ok_t))
        ours_e = float(costs.energy_by_level[0, lvl])
        theirs_e = None if ref is None or ref.fj_per_compute is None else stats.level_energy_pj(name)
        # fJ/compute is printed with 2 decimals: allow that rounding on top of rel_tol.
        slack = 0.005 * computes / 1000.0
        ok = theirs_e is not None and abs(ours_e - theirs_e) <= rel_tol * abs(theirs_e) + slack
        report.rows.append(Row(name, "", "energy", ours_e, theirs_e, ok))
    comp = tl.accelerator.compute
    mac_theirs = None
    if comp.name in stats.levels and stats.levels[comp.name].fj_per_compute is not None:
        mac_theirs = stats.level_energy_pj(comp.name)
    mac_ours = float(costs.mac_energy[0])
    slack = 0.005 * computes / 1000.0
    report.rows.append(Row(comp.name, "", "energy", mac_ours, mac_theirs,
                           mac_theirs is not None and abs(mac_ours - mac_theirs) <= rel_tol * mac_theirs + slack))
    report.rows.append(Row(comp.name, "", "computes", float(acc.macs), float(computes), acc.macs == computes))
    report.energy_pj = float(costs.energy[0])
    report.reference_energy_pj = stats.energy_pj
    tot_ok = abs(report.energy_pj - report.reference_energy_pj) <= rel_tol * report.reference_energy_pj + slack
    report.rows.append(Row("total", "", "energy", report.energy_pj, report.reference_energy_pj, tot_ok))
    report.cycles = int(costs.cycles[0])
    report.reference_cycles = stats.cycles
    report.rows.append(Row("total", "", "cycles", report.cycles, stats.cycles, report.cycles == stats.cycles))
    report.utilization = float(costs.utilization[0])
    report.reference_utilization = stats.utilization
    return report


_COUNTS = ("reads", "fills", "updates")
_FORK_FIELDS = (("operands", "operands_per_word"), ("wasted", "wasted_bits_per_word"),
                ("capacity", "capacity"), ("fragment", "wasted_bits_storage"))


def tensor_counts(costs: Costs, level, lvl: int, t: int, dialect: str, kept: bool) -> dict[str, float]:
    """Our per-instance counts of one tensor at one level, in the stats file's units.

    v0.4 counts values. The fork counts words of the level's ``word-bits``: ``ceil(values /
    operands per word)`` with ``floor(word bits / bits)`` operands per word, and reports the
    packing (operands per word, wasted bits per word, utilized capacity in words and the
    wasted bits of that capacity)."""
    acc = costs.accesses
    values = {q: float(getattr(acc, q)[0, lvl, t]) if kept else 0.0 for q in _COUNTS}
    if dialect != "fork":
        return values
    bits = level.datawidth if costs.bits is None else costs.bits[t]
    per_word = level.datawidth // bits
    if per_word < 1:
        return {q: math.nan for q in (*_COUNTS, *(f for f, _ in _FORK_FIELDS))}
    wasted = level.datawidth - per_word * bits
    capacity = math.ceil(float(acc.tile[0, lvl, t]) / per_word) if kept else 0
    out = {q: float(math.ceil(v / per_word)) for q, v in values.items()}
    out.update(operands=float(per_word), wasted=float(wasted), capacity=float(capacity),
               fragment=float(capacity * wasted))
    return out


def _tensor_rows(level: str, tensor: str, ref: TensorStats | None, ours: dict[str, float]) -> list[Row]:
    rows = []
    for q in _COUNTS:
        theirs = None if ref is None else getattr(ref, q)
        rows.append(Row(level, tensor, q, ours[q], theirs, theirs is not None and ours[q] == theirs))
    for q, attr in _FORK_FIELDS:
        theirs = None if ref is None else getattr(ref, attr)
        if q in ours and (theirs is not None or q == "operands"):
            if q == "capacity" and (ref is None or ref.operands_per_word is None):
                continue
            rows.append(Row(level, tensor, q, ours[q], theirs, theirs is not None and ours[q] == theirs))
    return rows


def check_reference(folder: str | Path, rel_tol: float = 0.01) -> CheckReport:
    """Evaluate the folder's mapping with our model and compare with its ``*.stats.txt``."""
    tl, mapping, stats = load_reference(folder)
    costs = evaluate(tl.problem, tl.accelerator, mapping, tl.bits)
    text = describe(mapping, 0, tuple(lvl.name for lvl in tl.accelerator.levels))
    return compare(tl, costs, stats, str(folder), text, rel_tol)
