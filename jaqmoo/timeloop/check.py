"""Compare our model with a Timeloop reference folder (input + ERT + mapping + stats).

``check_reference(folder)`` loads the folder's Timeloop input with our loader, evaluates the
mapping of ``*.map.yaml`` (else the input's ``mapping:``, else ``*.map.txt``) with
:func:`jaqmoo.mapping.model.evaluate`, and compares per level and tensor: reads, fills and
updates (must be equal), energy per level and in total (within ``rel_tol``) and cycles
(equal). Energies are taken from Timeloop's ``fJ/Compute`` breakdown, which includes
leakage, and its printed precision (two decimals of fJ/compute) sets a small absolute slack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.spec import TENSORS
from jaqmoo.hardware.timeloop_yaml import find_input_file
from jaqmoo.hardware.yaml_io import load_yaml
from jaqmoo.mapping.mapping import MappingBatch, describe
from jaqmoo.mapping.model import Costs, evaluate
from jaqmoo.mapping.timeloop_map import parse_map_txt, parse_mapping
from jaqmoo.timeloop.inputs import TimeloopInput, load_timeloop_input
from jaqmoo.timeloop.stats import TimeloopStats, parse_stats


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

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    def text(self) -> str:
        lines = [f"reference: {self.folder}", f"mapping:   {self.mapping}",
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
    """The folder's input, the mapping Timeloop evaluated, and its parsed stats."""
    folder = Path(folder)
    if not folder.is_dir():
        raise JaqmooError(f"{folder}: not a folder (give a Timeloop reference folder)")
    tl = load_timeloop_input(find_input_file(folder))
    if tl.problem is None:
        raise JaqmooError(f"{tl.source}: missing required field 'problem'; add the problem instance")
    stats_files = sorted(folder.glob("*.stats.txt"))
    if not stats_files:
        raise JaqmooError(f"{folder}: no *.stats.txt to compare with")
    stats = parse_stats(stats_files[0])
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
    report = CheckReport(folder, mapping_text)
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
            for q, ours in (("reads", acc.reads), ("fills", acc.fills), ("updates", acc.updates)):
                value = float(ours[0, lvl, t]) if kept else 0.0
                theirs = None if ref_t is None else getattr(ref_t, q)
                report.rows.append(Row(name, tensor, q, value, theirs, theirs is not None and value == theirs))
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


def check_reference(folder: str | Path, rel_tol: float = 0.01) -> CheckReport:
    """Evaluate the folder's mapping with our model and compare with its ``*.stats.txt``."""
    tl, mapping, stats = load_reference(folder)
    costs = evaluate(tl.problem, tl.accelerator, mapping)
    text = describe(mapping, 0, tuple(lvl.name for lvl in tl.accelerator.levels))
    return compare(tl, costs, stats, str(folder), text, rel_tol)
