"""``jaqmoo export RUN --point K --timeloop DIR``: one front point of a run as Timeloop files.

The point's per-layer costs are recomputed through the run's own evaluator, rebuilt from
``meta.json`` (:func:`jaqmoo.reporting.breakdown.run_evaluator`, as the report's breakdown
does), so each layer gets the mapping the run chose at the point's bits and hardware; then
:func:`jaqmoo.timeloop.export.export_network` writes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.reporting.breakdown import run_evaluator
from jaqmoo.reporting.run import Run
from jaqmoo.timeloop.export import LayerExport, choices_of, export_network


@dataclass
class PointExport:
    """What ``--timeloop`` wrote for one front point."""

    layers: list[LayerExport]
    energy_pj_stored: float
    energy_pj_recomputed: float

    @property
    def matches_run(self) -> bool:
        """The recomputed total energy is the one the run stored for the point."""
        return math.isclose(self.energy_pj_stored, self.energy_pj_recomputed, rel_tol=1e-6)


def export_point_timeloop(run: Run, k: int, out_dir: str | Path, dialect: str = "v0.4") -> PointExport:
    """Write front point ``k`` of ``run`` into ``out_dir`` as Timeloop files (see the module doc)."""
    row = run.front_point(k)
    evaluator, space, _ = run_evaluator(run.meta, run.evaluations)
    cand = space.decode_one(np.asarray([int(v) for v in str(row["genes"]).split()], dtype=int))
    cost = evaluator.network_cost(cand)
    if not cost.feasible:
        raise JaqmooError(f"--point {k}: the recomputed point is infeasible ({cost.reason}); nothing to export")
    accel = evaluator.accelerator(dict(cand.hardware))
    source = f"jaqmoo export {run.dir} --point {k} --timeloop {out_dir} --dialect {dialect}"
    layers = export_network(out_dir, accel, choices_of(cost.layers), dialect,
                            f"front point {k} of {run.dir.name} ({run.meta.get('model', 'model')})", source)
    return PointExport(layers, float(row.get("energy_pj", float("nan"))), float(cost.energy_pj))


__all__ = ["PointExport", "export_point_timeloop"]
