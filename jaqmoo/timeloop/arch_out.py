"""An :class:`~jaqmoo.hardware.spec.Accelerator` -> Timeloop's architecture, constraints and
Accelergy tables (the inverse of :func:`jaqmoo.hardware.timeloop_yaml.accelerator_from_data`
and :func:`jaqmoo.hardware.ert.load_tables`).

The architecture is written in the flattened layout Timeloop's own front end hands its model
(``parsed-processed-input.yaml``): one subtree whose ``local`` list holds every level,
outermost first, then the compute; each name carries its instance range (``Buffer[1..16]``)
and its attributes its mesh. ``v0.4`` writes ``version: '0.4'`` and ``datawidth``; ``fork``
writes the fork's ``version: 0.3`` keys (``word-bits``, ``block-size``, ``cluster-size``).

The energies go to an Accelergy ERT (``read``, ``write``, ``update``, ``leak`` per storage
level in pJ per vector access / per cycle, ``compute`` per MAC) and the areas to an ART, named
as Accelergy names them (``System_top_level.Buffer[1..16]``): Timeloop uses an ``ERT:`` given
with its inputs instead of calling Accelergy, so it charges the same energies as jaqmoo.
"""

from __future__ import annotations

from jaqmoo.hardware.spec import Accelerator, Compute, Level, MapConstraint
from jaqmoo.timeloop.problem_out import check_dialect

TOP = "System_top_level"


def _ranged(name: str, instances: int) -> str:
    return f"{name}[1..{instances}]"


def _number(value: float) -> int | float:
    """An integral float as an int (``2.0`` -> ``2``), so the YAML reads as Timeloop writes it."""
    return int(value) if float(value).is_integer() else float(value)


def _level_attributes(level: Level, dialect: str) -> dict:
    if level.is_dummy:
        return {"width": 1, "depth": 1, "datawidth": 1, "meshX": level.mesh_x, "meshY": level.mesh_y}
    attrs: dict = {}
    if level.depth is not None:
        attrs["depth"] = level.depth
    attrs["width"] = level.width
    if dialect == "fork":
        attrs.update({"word-bits": level.datawidth, "block-size": level.block_size, "cluster-size": level.cluster_size})
    else:
        attrs.update({"datawidth": level.datawidth, "cluster_size": level.cluster_size})
    attrs["multiple_buffering"] = _number(level.multiple_buffering)
    for key in ("read_bandwidth", "write_bandwidth", "shared_bandwidth"):
        value = getattr(level, key)
        if value is not None:
            attrs[key] = _number(value)
    attrs.update({"meshX": level.mesh_x, "meshY": level.mesh_y})
    return attrs


def _compute_attributes(compute: Compute) -> dict:
    return {"datawidth": compute.operand_bits, "meshX": compute.mesh_x, "meshY": compute.mesh_y}


def architecture_dict(accel: Accelerator, dialect: str = "v0.4") -> dict:
    """The ``architecture:`` section of ``accel`` (see the module doc)."""
    check_dialect(dialect)
    local = [{"name": _ranged(lvl.name, lvl.instances), "class": lvl.cls, "attributes": _level_attributes(lvl, dialect)}
             for lvl in accel.levels]
    comp = accel.compute
    local.append({"name": _ranged(comp.name, comp.instances), "class": comp.cls, "attributes": _compute_attributes(comp)})
    version = 0.3 if dialect == "fork" else "0.4"
    top = {"name": TOP, "attributes": {"global_cycle_seconds": accel.cycle_seconds}, "local": local}
    return {"version": version, "subtree": [top]}


def constraint_dict(c: MapConstraint, names: dict[str, str], dialect: str = "v0.4") -> dict:
    """One constraint, its dims in the problem's names (``names``: jaqmoo dim -> problem dim);
    dims the problem lacks (unit ``G`` of an ungrouped layer) are left out."""
    out: dict = {"target": c.target, "type": ("datatype" if dialect == "fork" else "bypass") if c.type == "bypass" else c.type}
    if c.type == "bypass":
        out.update(keep=list(c.keep), bypass=list(c.bypass))
        return out
    factors = [(names[d], v) for d, v in c.factors if d in names]
    if factors:
        out["factors"] = " ".join(f"{d}={v}" for d, v in factors)
    if c.permutation is not None:
        out["permutation"] = "".join(names[d] for d in c.permutation if d in names)
    if c.split is not None:
        out["split"] = c.split
    return out


def constraints_dict(accel: Accelerator, names: dict[str, str], dialect: str = "v0.4") -> dict:
    """``{"architecture_constraints": {"targets": [...]}}`` with every constraint of ``accel``."""
    return {"architecture_constraints": {"targets": [constraint_dict(c, names, dialect) for c in accel.constraints]}}


def _actions(pairs: list[tuple[str, float]], cycle_seconds: float) -> list[dict]:
    args = {"global_cycle_seconds": cycle_seconds, "action_latency_cycles": 1}
    return [{"name": n, "arguments": dict(args), "energy": float(e)} for n, e in pairs]


def energy_tables(accel: Accelerator, leakage: bool = True) -> tuple[dict, dict]:
    """``(ERT, ART)`` dicts of ``accel`` in Accelergy's format (see the module doc); without
    ``leakage`` no ``leak`` actions (the fork models none)."""
    tables, areas = [], []
    for lvl in accel.levels:
        name = f"{TOP}.{_ranged(lvl.name, lvl.instances)}"
        if not lvl.is_dummy:
            tables.append({"name": name, "actions": _actions(
                [("read", lvl.read_energy), ("write", lvl.write_energy), ("update", lvl.update_energy)]
                + ([("leak", lvl.leak_energy)] if leakage else []), accel.cycle_seconds)})
        areas.append({"name": name, "area": float(lvl.area)})
    comp = accel.compute
    name = f"{TOP}.{_ranged(comp.name, comp.instances)}"
    tables.append({"name": name, "actions": _actions([("compute", comp.energy)]
                                                     + ([("leak", comp.leak_energy)] if leakage else []),
                                                     accel.cycle_seconds)})
    areas.append({"name": name, "area": float(comp.area)})
    return ({"ERT": {"version": "0.4", "tables": tables}}, {"ART": {"version": "0.4", "tables": areas}})


__all__ = ["architecture_dict", "constraint_dict", "constraints_dict", "energy_tables"]
