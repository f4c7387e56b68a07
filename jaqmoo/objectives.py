"""The objectives a search can optimise, in one table.

Each :class:`Objective` names its direction (``max`` or ``min``), the record key of its metric
(``energy`` -> ``energy_pj``), the column that shows it in front.csv / evaluations.csv and the
report (``column``: a name with its unit, e.g. ``edp`` -> ``edp_pj_cycles``), its unit and its axis
label. pymoo minimises, so a
maximised objective enters the search as ``1 - value`` (:func:`minimised`) and comes back with
the same conversion (:func:`from_minimised`); the search, the exports, the plots and the report
all read this table.

Adding an objective: one row here, and the evaluator that writes its metric into the records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jaqmoo.errors import JaqmooError, did_you_mean


@dataclass(frozen=True)
class Objective:
    """One objective: its name in specs, direction, metric key in the records, unit, label and
    output column (:mod:`jaqmoo.reporting.columns`)."""

    name: str
    direction: str  # "max" or "min"
    metric: str
    unit: str
    label: str
    column: str = ""

    @property
    def column_name(self) -> str:
        """The front.csv / report column of the objective (``column``, else the metric key)."""
        return self.column or self.metric

    @property
    def maximised(self) -> bool:
        """True for an objective the search maximises (accuracy)."""
        return self.direction == "max"


TABLE: tuple[Objective, ...] = (
    Objective("accuracy", "max", "accuracy", "fraction", "accuracy (fraction 0-1)"),
    Objective("energy", "min", "energy_pj", "pJ", "energy (pJ)"),
    Objective("latency", "min", "latency_s", "s", "latency (s)"),
    Objective("edp", "min", "edp", "pJ x cycles", "EDP (pJ x cycles)", column="edp_pj_cycles"),
    Objective("memory", "min", "memory_bits", "bits", "memory (bits)"),
    Objective("area", "min", "area_mm2", "mm²", "area (mm²)"),
)
#: objective name -> :class:`Objective`
BY_NAME: dict[str, Objective] = {o.name: o for o in TABLE}
#: objective name -> "max" or "min"
OBJECTIVES: dict[str, str] = {o.name: o.direction for o in TABLE}
#: objective name -> record key of the metric
METRIC_OF: dict[str, str] = {o.name: o.metric for o in TABLE}
#: objective name -> its column in front.csv / evaluations.csv / the report (unit in the name)
COLUMN_OF: dict[str, str] = {o.name: o.column_name for o in TABLE}
#: objective name -> axis label
LABELS: dict[str, str] = {o.name: o.label for o in TABLE}
NAMES: tuple[str, ...] = tuple(BY_NAME)


def objective(name: str) -> Objective:
    """The objective called ``name`` (a :class:`~jaqmoo.errors.JaqmooError` naming the choices otherwise)."""
    if name not in BY_NAME:
        raise JaqmooError(f"unknown objective {name!r}; {did_you_mean(name, list(NAMES))}"
                          f"choose from {', '.join(NAMES)}")
    return BY_NAME[name]


def check_names(names: Iterable[str]) -> None:
    """Raise for any name that is not an objective."""
    unknown = [o for o in names if o not in BY_NAME]
    if unknown:
        raise JaqmooError(f"unknown objectives {unknown}; choose from {', '.join(NAMES)}")


def minimised(name: str, value: Any) -> Any:
    """``value`` of objective ``name`` as the search minimises it (``1 - value`` for a maximised
    one); works on floats and numpy arrays alike."""
    return 1.0 - value if BY_NAME[name].maximised else value


def from_minimised(name: str, value: Any) -> Any:
    """The inverse of :func:`minimised` (the conversion is its own inverse)."""
    return minimised(name, value)


__all__ = ["BY_NAME", "COLUMN_OF", "LABELS", "METRIC_OF", "NAMES", "OBJECTIVES", "TABLE", "Objective", "check_names",
           "from_minimised", "minimised", "objective"]
