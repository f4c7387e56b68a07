"""Accelergy energy (ERT) and area (ART) reference tables.

Both the full tables (``ERT: tables: [{name, actions: [{name, arguments, energy}]}]``) and
the summaries (``ERT_summary: table_summary: [{name, actions: [{name, energy |
average_energy}]}]``, ``ART_summary: table_summary: [{name, area}]``) are read. Components
are keyed by their short name: ``system_top_level.psum_spad[1..168]`` -> ``psum_spad``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.yaml_io import load_yaml
from jaqmoo.strict import number, shown

_RANGE = re.compile(r"\[\d+\.\.\d+\]$")


def short_name(name: str) -> str:
    """``"sys.PE.buf[1..16]"`` -> ``"buf"``."""
    return _RANGE.sub("", str(name)).split(".")[-1]


@dataclass
class EnergyTable:
    """pJ per action per component, plus um^2 per component, with their provenance."""

    energy: dict[str, dict[str, float]] = field(default_factory=dict)
    area: dict[str, float] = field(default_factory=dict)
    energy_source: str = ""
    area_source: str = ""

    def action(self, component: str, action: str, default: float = 0.0) -> float:
        return self.energy.get(component, {}).get(action, default)


def _read_energy(data: dict, label: str) -> dict[str, dict[str, float]]:
    if "ERT" in data:
        body, key = data["ERT"], "tables"
    elif "ERT_summary" in data:
        body, key = data["ERT_summary"], "table_summary"
    else:
        body, key = data, "tables" if "tables" in data else "table_summary"
    tables = body.get(key) if isinstance(body, dict) else None
    if not isinstance(tables, list):
        raise JaqmooError(f"{label}: not an Accelergy ERT (expected ERT.tables or ERT_summary.table_summary)")
    out: dict[str, dict[str, float]] = {}
    for i, entry in enumerate(tables):
        if not isinstance(entry, dict) or "name" not in entry:
            raise JaqmooError(f"{label}: ERT entry {i} has no 'name'")
        actions = {}
        for act in entry.get("actions") or []:
            if not isinstance(act, dict) or "name" not in act:
                raise JaqmooError(f"{label}: ERT entry {shown(entry['name'])}: every action needs a 'name' and an "
                                  f"'energy' (got {shown(act)})")
            energy = act.get("energy", act.get("average_energy", act.get("max_energy")))
            if energy is None:
                raise JaqmooError(f"{label}: ERT entry {entry['name']!r} action {act.get('name')!r} has no energy")
            # Several argument sets per action: Timeloop charges the most expensive one.
            name = str(act["name"])
            energy = number(energy, f"{label}: ERT entry {shown(entry['name'])} action {shown(name)} energy", lo=0.0,
                            text=True)  # NaN, inf or negative would silently zero or dominate a level's energy
            actions[name] = max(actions.get(name, 0.0), float(energy))
        out[short_name(entry["name"])] = actions
    return out


def _read_area(data: dict, label: str) -> dict[str, float]:
    if "ART" in data:
        body, key = data["ART"], "tables"
    elif "ART_summary" in data:
        body, key = data["ART_summary"], "table_summary"
    else:
        body, key = data, "tables" if "tables" in data else "table_summary"
    tables = body.get(key) if isinstance(body, dict) else None
    if not isinstance(tables, list):
        raise JaqmooError(f"{label}: not an Accelergy ART (expected ART.tables or ART_summary.table_summary)")
    return {short_name(e["name"]): float(number(e.get("area", 0.0), f"{label}: ART entry {shown(e['name'])} area",
                                                lo=0.0, text=True))
            for e in tables if isinstance(e, dict) and "name" in e}


def load_tables(ert: str | Path | dict | None = None, art: str | Path | dict | None = None,
                energy_source: str | None = None) -> EnergyTable:
    """Read an ERT and/or ART (paths or dicts) into one :class:`EnergyTable`."""
    table = EnergyTable()
    if ert is not None:
        data, label = load_yaml(ert, "ERT")
        table.energy = _read_energy(data, label)
        table.energy_source = energy_source or (f"ERT {label}" if label != "<dict>" else "ERT <dict>")
    if art is not None:
        data, label = load_yaml(art, "ART")
        table.area = _read_area(data, label)
        table.area_source = f"ART {label}"
    return table


def find_sibling(directory: Path, kind: str) -> Path | None:
    """The ``*.{kind}.yaml`` file in ``directory`` (ERT before ERT_summary), or None."""
    for pattern in (f"*.{kind}.yaml", f"*{kind}.yaml", f"*.{kind}_summary.yaml", f"*{kind}_summary.yaml"):
        hits = sorted(directory.glob(pattern))
        if hits:
            return hits[0]
    return None
