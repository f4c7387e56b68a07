"""A Timeloop input read whole: architecture, problem and mapping together.

The hardware layer reads architectures (:mod:`jaqmoo.hardware.timeloop_yaml`), the workload
side problems (:mod:`jaqmoo.hardware.problem_yaml`) and the mapping layer mappings
(:mod:`jaqmoo.mapping.timeloop_map`); this module, above all three, combines them into the
:class:`TimeloopInput` that ``jaqmoo timeloop check`` compares with a Timeloop run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jaqmoo.hardware.problem_yaml import DIM_ALIASES, parse_problem_and_aliases
from jaqmoo.hardware.spec import Accelerator, MapConstraint
from jaqmoo.hardware.timeloop_yaml import accelerator_from_data, find_input_file
from jaqmoo.hardware.yaml_io import load_yaml
from jaqmoo.mapping.mapping import MappingBatch
from jaqmoo.mapping.timeloop_map import parse_mapping
from jaqmoo.workload import Layer


@dataclass
class TimeloopInput:
    """Everything read from one Timeloop input."""

    accelerator: Accelerator
    problem: Layer | None
    mapping: MappingBatch | None
    constraints: tuple[MapConstraint, ...]
    source: str
    dim_aliases: dict[str, str] = field(default_factory=lambda: dict(DIM_ALIASES))
    """Problem dim names -> jaqmoo dims, for parsing this problem's mappings."""


def input_from_data(data: dict, label: str, source: str | Path | dict | None = None,
                    ert: str | Path | dict | None = None, art: str | Path | dict | None = None,
                    energy_source: str | None = None, name: str | None = None) -> TimeloopInput:
    """Combine the ``architecture``, ``problem`` and ``mapping`` sections of loaded Timeloop data."""
    accel = accelerator_from_data(data, label, source, ert, art, energy_source, name)
    problem, aliases = None, dict(DIM_ALIASES)
    if data.get("problem") is not None:
        problem, aliases = parse_problem_and_aliases(data["problem"], label)
    mapping = None
    directives = data.get("mapping")
    if problem is not None and isinstance(directives, list) and directives:
        mapping = parse_mapping(directives, accel, problem, label, aliases)
    return TimeloopInput(accel, problem, mapping, accel.constraints, label, dict(aliases))


def load_timeloop_input(source: str | Path | dict, ert: str | Path | dict | None = None,
                        art: str | Path | dict | None = None, energy_source: str | None = None,
                        name: str | None = None) -> TimeloopInput:
    """Read a Timeloop input (a file, a folder holding one, or a dict): its accelerator, problem
    and ``mapping:`` section.

    ``ert``/``art`` override the ``*.ERT.yaml``/``*.ART*.yaml`` found next to the input;
    ``energy_source`` overrides the provenance string.
    """
    if not isinstance(source, dict) and Path(source).is_dir():
        source = find_input_file(Path(source))
    data, label = load_yaml(source, "Timeloop input")
    return input_from_data(data, label, source, ert, art, energy_source, name)
