"""Per-action energies recovered from a Timeloop stats file, for runs that saved no ERT.

The Klhufek et al. fork's MobileNet scenarios keep only ``timeloop-mapper.stats.txt``. Per
level it prints ``Vector access energy`` (the largest action's energy, two decimals) and, per
tensor, the exact ``Energy (total)`` of its accesses.

How the fork charges a level's access energy (its ``ComputeVectorAccesses``): per action, the
scalar count in values is first packed into words (``ceil(values / floor(word_bits / bits))``,
the ``Scalar reads / fills / updates`` the stats print), then the words are grouped into vector
accesses of ``block size`` words, rounded up per action: ``ceil(words / block)``. With ``R``
and ``W`` the energies of one vector read and one vector write (fills and updates are writes,
Timeloop's fallback when a component has no ``update`` action), each tensor ``t`` of a level
gives one equation::

    Energy_t / instances_t = R * ceil(reads_t / block) + W * (ceil(fills_t / block) + ceil(updates_t / block))

Two independent equations fix ``R`` and ``W`` (least squares over all tensors). With one (a
level that holds one tensor), the larger of the two is the printed vector energy and the
equation gives the other. A level that holds nothing gets the printed vector energy for both.
The compute energy is the MAC level's ``Energy (total) / computes``. The result is an
Accelergy-format ERT (energies per vector access), so the loader reads it exactly as it reads
a saved one. (Dividing by the block size instead of rounding up per action, as if a word cost
``R / block``, is off by up to half a vector per action: 0.5 % on the Simba-like
``PEWeightBuffer`` at 3-bit weights.)
"""

from __future__ import annotations

import math

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.timeloop.stats import LevelStats, TimeloopStats


def vector_accesses(words: float, block: float) -> float:
    """Vector accesses of one action: ``words`` (packed words) grouped ``block`` at a time,
    rounded up (the fork's and Timeloop's per-action rounding)."""
    return float(math.ceil(words / block)) if block > 1 else float(words)


def _vector_energies(level: LevelStats) -> tuple[float, float]:
    """(read, write) pJ per vector access of one storage level."""
    block = level.block_size or 1.0
    printed = level.vector_access_energy or 0.0
    rows, rhs = [], []
    for t in level.tensors.values():
        if t.energy is None or not t.instances:
            continue
        reads = vector_accesses(t.reads, block)
        writes = vector_accesses(t.fills, block) + vector_accesses(t.updates, block)
        if reads + writes == 0:
            continue
        rows.append((reads, writes))
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
    if r <= printed * (1 + 1e-2) + 0.005:
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
        r, w = _vector_energies(level)
        tables.append({"name": name, "actions": [{"name": "read", "energy": r},
                                                 {"name": "write", "energy": w},
                                                 {"name": "update", "energy": w}]})
    return {"ERT": {"tables": tables}}
