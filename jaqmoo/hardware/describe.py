"""A few plain lines saying which accelerator a run costs on and where its energies come from
(printed by ``jaqmoo run`` at start)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def technology_node(template: Any, fixed: Mapping[str, int] | None = None) -> int | None:
    """The technology node (nm) whose energy table a run's accelerator uses: a Timeloop design's
    ``technology: NNnm``, else the template's ``technology`` parameter (``fixed`` first, then the
    template default); None when neither names one (a Timeloop architecture without a node)."""
    node = getattr(template, "technology_nm", None)
    if node is None and hasattr(template, "defaults"):
        node = {**template.defaults(), **dict(fixed or {})}.get("technology")
    return None if node is None else int(node)


def describe_accelerator(template: Any, fixed: Mapping[str, int], genes: Sequence[Any],
                         label: str, accumulator_bits: int | None = None) -> list[str]:
    """Lines describing the accelerator of a run: energy source (table, technology node),
    storage levels (instances, depth x width, datawidth), compute, the hardware parameters
    (fixed, defaults) and the searched ones with their choices.

    ``template``: a :class:`~jaqmoo.hardware.templates.base.Template` (or a Timeloop design);
    ``fixed``: parameters held fixed; ``genes``: :class:`~jaqmoo.search.genome.HardwareGene`-like
    objects (``name``, ``choices``); ``label``: the spec's accelerator label."""
    design = {g.name: g.default for g in genes} | dict(fixed)
    accel = template.build(**design).with_accumulator_bits(accumulator_bits, "quantization.accumulator_bits")
    node = technology_node(template, fixed)
    lines = [f"accelerator: {label}" + (f", technology node {node} nm" if node is not None else ""),
             f"  energy source: {accel.energy_source or 'not recorded'}"]
    for level in accel.levels:
        if level.cls == "dummy_storage":  # a spatial fan-out between levels, stores nothing
            continue
        depth = "unbounded" if level.depth is None else f"{level.depth} words x {level.width} bit"
        keeps = f", keeps {'/'.join(level.keep)}" if level.keep else ""
        lines.append(f"  level {level.name}: {level.instances} instance(s) (mesh {level.mesh_x}x{level.mesh_y}), "
                     f"{depth}, datawidth {level.datawidth} bit{keeps}")
    c = accel.compute
    lines.append(f"  compute {c.name}: {c.instances} MAC(s) (mesh {c.mesh_x}x{c.mesh_y}), "
                 f"{c.energy:.4g} pJ per {c.operand_bits}-bit MAC")
    if accel.accumulator_bits is not None:
        lines.append(f"  partial sums at {accel.accumulator_bits} bit")
    if hasattr(template, "defaults"):
        values = {**template.defaults(), **design}
        lines.append("  parameters: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    if genes:
        lines.append("  searched: " + "; ".join(f"{g.name} in {{{', '.join(map(str, g.choices))}}}" for g in genes))
    else:
        lines.append("  searched: none (fixed hardware)")
    return lines
