"""Policy files: one front point taken out whole (``jaqmoo export RUN --point K --policy-file F``).

A policy file is the point's bits file (:meth:`jaqmoo.reporting.run.Run.point_file`: per-layer
bits, the point's hardware parameters, where it came from and its stored figures) whose layers
also carry their mapping, as Timeloop mapping directives
(:func:`jaqmoo.mapping.timeloop_map.mapping_directives`)::

    layers:
      conv1:
        w: 6
        a: 8
        mapping:
        - {target: DRAM, type: temporal, factors: N=1 G=1 K=1 C=1 P=2 Q=1 R=1 S=1, permutation: NGKCPQRS}
        - {target: shared_glb, type: spatial, factors: K=8 C=1, permutation: KC..., split: 1}
        - {target: shared_glb, type: bypass, keep: [Inputs, Outputs], bypass: [Weights]}
        ...
    last_output_bits: 8
    hardware: {pe_x: 14, glb_depth: 16384, ...}
    point: {run: ..., point: K, energy_pj: ..., cycles: ..., ...}

``jaqmoo cost --policy-file F`` costs each layer with exactly that mapping (no mapper search), so it
reproduces the point's energy, cycles and memory; ``jaqmoo supernet eval --bits-file F`` reads the
same file for its accuracy (the policy ignores the mappings).

The mappings are recomputed with the run's own evaluator rebuilt from ``meta.json`` (the store
keeps each mapping as one line of text, not the bypass choices): the recomputed point must
match the stored energy, else the export is refused rather than written with other numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import yaml

from jaqmoo.errors import JaqmooError
from jaqmoo.mapping.timeloop_map import mapping_directives
from jaqmoo.reporting.breakdown import CostBreakdown
from jaqmoo.reporting.run import Run
from jaqmoo.safe_write import atomic_write_text


def point_policy(run: Run, k: int) -> dict:
    """The policy file of front point ``k`` of ``run`` (see the module doc)."""
    data = run.point_file(k)  # bits, hardware, provenance; errors for a bad k or an architecture point
    row = run.front.iloc[k]
    breakdown = CostBreakdown.from_meta(run.meta, run.evaluations)
    if breakdown.evaluator is None or not hasattr(breakdown.evaluator, "accelerator"):
        raise JaqmooError(f"--policy-file: {run.dir} is an architecture search; a policy file describes a fixed "
                          "network (use --bits-file for the bits)")
    cand = breakdown.space.decode_one(np.asarray([int(v) for v in str(row["genes"]).split()], dtype=int))
    accel = breakdown.evaluator.accelerator(dict(cand.hardware))
    cost = breakdown.evaluator.network_cost(cand)
    stored = float(row.get("energy_pj", math.nan))
    if not getattr(cost, "feasible", True) or not math.isclose(cost.energy_pj, stored, rel_tol=1e-6):
        raise JaqmooError(f"--policy-file: point {k} recomputed with the run's evaluator costs "
                          f"{getattr(cost, 'energy_pj', math.nan):.6g} pJ, not the stored {stored:.6g} pJ (the cost "
                          "model or the model code changed since the run); --bits-file still exports its bits")
    for lc in cost.layers:
        if lc.name in data["layers"]:
            data["layers"][lc.name]["mapping"] = mapping_directives(lc.mapping_batch, 0, accel)
    return data


def export_point_policy(run: Run, k: int, path: str | Path) -> Path:
    """Write :func:`point_policy` to ``path`` as YAML, headed by the commands that read it back."""
    data = point_policy(run, k)
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=200)
    head = [line.replace("--bits-file", "--policy-file", 1) if line.startswith("# costs:") else line
            for line in run.point_header(k, path)]
    head[0] = head[0].replace("bits per layer", "bits and mapping per layer")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(Path(path), "\n".join(head) + "\n" + text, "the policy file")


__all__ = ["export_point_policy", "point_policy"]
