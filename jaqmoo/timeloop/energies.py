"""Per-action energies recovered from a Timeloop stats file, for runs that saved no ERT.

The Klhufek et al. fork's MobileNet scenarios keep only ``timeloop-mapper.stats.txt``. Per
level it prints ``Vector access energy`` (the largest action's energy, two decimals) and, per
tensor, the exact ``Energy (total)`` of its accesses. With ``r`` and ``w`` the energies of one
word read and one word write (fills and updates are writes, Timeloop's fallback when a
component has no ``update`` action), each tensor ``t`` of a level gives one equation::

    Energy_t / instances_t = r * reads_t + w * (fills_t + updates_t)

Two independent equations fix ``r`` and ``w`` (least squares over all tensors). With one
(a level that holds one tensor), the larger of the two is the printed vector energy divided by
the block size and the equation gives the other. A level that holds nothing gets the printed
vector energy for both. The compute energy is the MAC level's ``Energy (total) / computes``.
The result is an Accelergy-format ERT (energies per vector access = per word x block size),
so the loader reads it exactly as it reads a saved one.
"""

from __future__ import annotations

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.timeloop.stats import LevelStats, TimeloopStats


def _word_energies(level: LevelStats) -> tuple[float, float]:
    """(read, write) pJ per word access of one storage level."""
    block = level.block_size or 1.0
    printed = (level.vector_access_energy or 0.0) / block
    rows, rhs = [], []
    for t in level.tensors.values():
        if t.energy is None or not t.instances:
            continue
        writes = t.fills + t.updates
        if t.reads + writes == 0:
            continue
        rows.append((t.reads, writes))
        rhs.append(t.energy / t.instances)
    if not rows:
        return printed, printed
    a, b = np.array(rows, dtype=np.float64), np.array(rhs, dtype=np.float64)
    if np.linalg.matrix_rank(a / np.maximum(a.max(axis=0), 1.0)) >= 2:
        (r, w), *_ = np.linalg.lstsq(a, b, rcond=None)
        return float(r), float(w)
    reads, writes, energy = a.sum(axis=0)[0], a.sum(axis=0)[1], b.sum()
    if writes == 0:
        return float(energy / reads), printed
    if reads == 0:
        return printed, float(energy / writes)
    r = (energy - printed * writes) / reads  # writes are the dearer action
    if r <= printed * (1 + 1e-2) + 0.005 / block:
        return float(r), printed
    return printed, float((energy - printed * reads) / writes)


def energy_table_from_stats(stats: TimeloopStats) -> dict:
    """An ERT dict (``{"ERT": {"tables": [...]}}``) with the per-action energies of every level
    and the compute of ``stats`` (see the module docstring)."""
    tables = []
    for name, level in stats.levels.items():
        if level.is_compute:
            if level.energy is not None and stats.computes:
                energy = level.energy / stats.computes
            elif level.compute_energy is not None:
                energy = level.compute_energy
            else:
                raise JaqmooError(f"{stats.source}: compute level {name!r} prints no energy; "
                                  f"give the run's ERT instead")
            tables.append({"name": name, "actions": [{"name": "compute", "energy": energy}]})
            continue
        r, w = _word_energies(level)
        block = level.block_size or 1.0
        tables.append({"name": name, "actions": [{"name": "read", "energy": r * block},
                                                 {"name": "write", "energy": w * block},
                                                 {"name": "update", "energy": w * block}]})
    return {"ERT": {"tables": tables}}
