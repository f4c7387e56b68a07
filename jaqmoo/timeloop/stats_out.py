"""jaqmoo's costs of one mapping -> Timeloop's ``*.stats.txt`` text (the inverse of
:func:`jaqmoo.timeloop.stats.parse_stats`).

The text has Timeloop's layout: per level, innermost (the compute, ``Level 0``) first, its
``SPECS`` and ``STATS`` (per tensor the partition size, utilized capacity and instances, the
per-instance scalar reads, fills and updates and the access energy), then ``Summary Stats``
with the cycles, the utilization, the computes and the energy per compute of every level.
Dummy levels (fan-outs only) are left out, as Timeloop leaves them out.

``v0.4`` counts values and prints ``fJ/Compute``; ``fork`` (the Klhufek et al. fork) counts
packed words of the level's word bits, adds each tensor's data operands per word and wasted
bits, and prints ``pJ/Compute``. The counts are those ``jaqmoo timeloop check`` compares
(:func:`jaqmoo.timeloop.check.tensor_counts`), so a check of the folder against this file
passes by construction and a check against Timeloop's own file compares like with like.
"""

from __future__ import annotations

from jaqmoo.hardware.spec import TENSORS, Accelerator
from jaqmoo.mapping.model import Costs
from jaqmoo.timeloop.check import tensor_counts
from jaqmoo.timeloop.problem_out import check_dialect

_INDENT = " " * 8


def _kv(key: str, value: str, width: int = 40) -> str:
    return f"{_INDENT}{key:{width}s} : {value}"


def _compute_block(accel: Accelerator, costs: Costs, macs: int) -> list[str]:
    comp = accel.compute
    acc = costs.accesses
    return ["Level 0", "-------", f"=== {comp.name} ===", "", "    SPECS", "    -----",
            f"    Word bits             : {comp.operand_bits}",
            f"    Instances             : {comp.instances} ({comp.mesh_x}*{comp.mesh_y})",
            f"    Compute energy        : {float(costs.mac_energy[0]) / max(macs, 1):.6f} pJ", "",
            "    STATS", "    -----",
            f"    Utilized instances      : {int(acc.compute_instances[0])}",
            f"    Computes (total)        : {macs}",
            f"    Cycles                  : {int(costs.cycles[0])}",
            f"    Energy (total)          : {float(costs.mac_energy[0]):.6f} pJ", ""]


def _level_block(number: int, accel: Accelerator, costs: Costs, lvl: int, dialect: str) -> list[str]:
    level = accel.levels[lvl]
    acc = costs.accesses
    vector = max(level.read_energy, level.write_energy, level.update_energy)
    size = "-" if level.size is None else str(level.size)
    lines = [f"Level {number}", "-" * len(f"Level {number}"), f"=== {level.name} ===", "", "    SPECS", "    -----",
             _kv("Technology", level.cls, 32), _kv("Size", size, 32), _kv("Word bits", str(level.datawidth), 32),
             _kv("Block size", str(level.block_size), 32), _kv("Cluster size", str(level.cluster_size), 32),
             _kv("Instances", f"{level.instances} ({level.mesh_x}*{level.mesh_y})", 32),
             _kv("Vector access energy", f"{vector:.6f} pJ", 32),
             _kv("Per-instance-cycle leakage", f"{level.leak_energy:.6f} pJ", 32),
             _kv("Leakage energy (total)", f"{float(costs.leakage[0, lvl]):.6f} pJ", 32), "",
             "    STATS", "    -----", f"    Cycles               : {int(costs.cycles[0])}"]
    for t, tensor in enumerate(TENSORS):
        if not acc.keep[0, lvl, t]:
            continue
        counts = tensor_counts(costs, level, lvl, t, "fork" if dialect == "fork" else "v0.4", True)
        lines.append(f"    {tensor}:")
        partition = int(acc.partition[0, lvl, t]) or int(acc.tile[0, lvl, t])
        capacity = counts["capacity"] if dialect == "fork" else float(acc.tile[0, lvl, t])  # the fork: in words
        lines += [_kv("Partition size", str(partition)), _kv("Utilized capacity", f"{capacity:.0f}")]
        if dialect == "fork":
            lines += [_kv("Data operands per word", f"{counts['operands']:.0f}"),
                      _kv("Wasted bits per word", f"{counts['wasted']:.0f}"),
                      _kv("Wasted bits per data storage due to fragmentation", f"{counts['fragment']:.0f}")]
        lines += [_kv("Utilized instances (max)", str(int(acc.instances[0, lvl]))),
                  _kv("Scalar reads (per-instance)", f"{counts['reads']:.0f}"),
                  _kv("Scalar fills (per-instance)", f"{counts['fills']:.0f}"),
                  _kv("Scalar updates (per-instance)", f"{counts['updates']:.0f}"),
                  _kv("Energy (total)", f"{float(costs.energy_by_tensor[0, lvl, t]):.6f} pJ")]
    return lines + [""]


def stats_text(accel: Accelerator, costs: Costs, dialect: str = "v0.4", title: str = "") -> str:
    """The ``*.stats.txt`` text of mapping 0 of ``costs`` on ``accel`` (see the module doc);
    ``title`` goes on a first comment line (Timeloop's parser and jaqmoo's skip it)."""
    check_dialect(dialect)
    macs = int(costs.accesses.macs)
    lines = ([f"# {title}"] if title else []) + ["Buffer and Arithmetic Levels", "----------------------------"]
    lines += _compute_block(accel, costs, macs)
    number = 0
    storage = [lvl for lvl in reversed(range(accel.n_levels)) if not accel.levels[lvl].is_dummy]
    for lvl in storage:
        number += 1
        lines += _level_block(number, accel, costs, lvl, dialect)
    per = 1.0 if dialect == "fork" else 1000.0  # pJ/Compute or fJ/Compute
    utilization = float(costs.utilization[0])
    energy = float(costs.energy[0])
    lines += ["", "Summary Stats", "-------------",
              f"Utilization: {utilization:.4f}" if dialect == "fork" else f"Utilization: {100 * utilization:.2f}%",
              f"Cycles: {int(costs.cycles[0])}", f"Energy: {energy * 1e-6:.6f} uJ",
              f"Area: {accel.area_um2 * 1e-6:.6f} mm^2", "", f"Computes = {macs}",
              "pJ/Compute" if dialect == "fork" else "fJ/Compute",
              f"    {accel.compute.name:34s} = {float(costs.mac_energy[0]) * per / macs:.6f}"]
    for lvl in storage:
        lines.append(f"    {accel.levels[lvl].name:34s} = {float(costs.energy_by_level[0, lvl]) * per / macs:.6f}")
    lines.append(f"    {'Total':34s} = {energy * per / macs:.6f}")
    return "\n".join(lines) + "\n"


__all__ = ["stats_text"]
