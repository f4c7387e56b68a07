"""A Timeloop input read whole: architecture, problem and mapping together.

The hardware layer reads architectures (:mod:`jaqmoo.hardware.timeloop_yaml`), the workload
side problems (:mod:`jaqmoo.hardware.problem_yaml`) and the mapping layer mappings
(:mod:`jaqmoo.mapping.timeloop_map`); this module, above all three, combines them into the
:class:`TimeloopInput` that ``jaqmoo timeloop check`` compares with a Timeloop run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.problem_yaml import DIM_ALIASES, parse_problem_and_aliases, problem_bits
from jaqmoo.hardware.spec import Accelerator, MapConstraint
from jaqmoo.hardware.timeloop_yaml import accelerator_from_data
from jaqmoo.hardware.yaml_io import load_yaml
from jaqmoo.mapping.mapping import MappingBatch
from jaqmoo.mapping.timeloop_map import parse_mapping
from jaqmoo.strict import malformed_input
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
    bits: tuple[int, int, int] | None = None
    """(weight, input, output) bits from the fork's ``commonBitwidth`` / ``bitwidths``; None:
    every tensor at each level's own word bits (plain Timeloop)."""


def input_from_data(data: dict, label: str, source: str | Path | dict | None = None,
                    ert: str | Path | dict | None = None, art: str | Path | dict | None = None,
                    energy_source: str | None = None, name: str | None = None) -> TimeloopInput:
    """Combine the ``architecture``, ``problem`` and ``mapping`` sections of loaded Timeloop data."""
    accel = accelerator_from_data(data, label, source, ert, art, energy_source, name)
    problem, aliases, bits = None, dict(DIM_ALIASES), None
    if data.get("problem") is not None:
        problem, aliases = parse_problem_and_aliases(data["problem"], label)
        bits = problem_bits(data["problem"], label)
    mapping = None
    directives = data.get("mapping")
    if problem is not None and isinstance(directives, list) and directives:
        mapping = parse_mapping(directives, accel, problem, label, aliases)
    return TimeloopInput(accel, problem, mapping, accel.constraints, label, dict(aliases), bits)


_MERGED_LISTS = ("architecture_constraints", "mapspace_constraints")
_SINGLE = ("architecture", "problem", "mapping")


def _is_output(path: Path) -> bool:
    """Timeloop/Accelergy outputs that sit beside the inputs (read by the check, not merged)."""
    name = path.name
    return any(k in name for k in ("ERT", "ART", ".stats.", "flattened_architecture")) or name.endswith(".map.yaml")


def read_input_folder(folder: str | Path) -> tuple[dict, str, Path]:
    """A folder's Timeloop input as one dict -> ``(data, label, architecture file)``.

    ``parsed-processed-input.yaml`` (Timeloop v0.4's own merge) wins. Otherwise every input
    YAML of the folder and its subfolders is merged, as the Timeloop front-end does for a
    scenario of the Klhufek et al. fork (``arch/`` with the top architecture and its Accelergy
    compound components, ``*_arch_constraints.yaml``, ``*_map_constraints.yaml``,
    ``prob.yaml``, ``map.yaml``): ``architecture``, ``problem`` and ``mapping`` must each come
    from one file; constraint ``targets`` lists are concatenated; other sections
    (``compound_components``, ``mapper``...) are not needed by the model and are skipped.
    Outputs (``*.ERT*``, ``*.ART*``, ``*.stats.*``, ``*.map.yaml``) are not merged.
    """
    folder = Path(folder)
    preferred = folder / "parsed-processed-input.yaml"
    if preferred.exists():
        data, label = load_yaml(preferred, "Timeloop input")
        return data, label, preferred
    files = sorted(p for p in folder.rglob("*.yaml") if not _is_output(p))
    merged: dict = {}
    origin: dict[str, Path] = {}
    for path in files:
        data, _ = load_yaml(path, "Timeloop input")
        for key, value in data.items():
            if key in _SINGLE:
                if key in origin:
                    raise JaqmooError(f"{folder}: '{key}' is given twice ({origin[key]} and {path}); "
                                      f"keep one of them")
                merged[key], origin[key] = value, path
            elif key in _MERGED_LISTS:
                targets = value.get("targets") if isinstance(value, dict) else value
                if not isinstance(targets, list):
                    raise JaqmooError(f"{path}: '{key}' must hold a 'targets' list")
                merged.setdefault(key, {"targets": []})["targets"] += targets
    if "architecture" not in origin:
        raise JaqmooError(f"{folder}: no Timeloop input here (no parsed-processed-input.yaml and no YAML "
                          f"with an 'architecture:' section)")
    label = str(origin["architecture"]) if len(origin) == 1 else f"{folder} ({len(files)} input files)"
    return merged, label, origin["architecture"]


def load_timeloop_input(source: str | Path | dict, ert: str | Path | dict | None = None,
                        art: str | Path | dict | None = None, energy_source: str | None = None,
                        name: str | None = None) -> TimeloopInput:
    """Read a Timeloop input (a file, a folder holding one, or a dict): its accelerator, problem
    and ``mapping:`` section.

    ``ert``/``art`` override the ``*.ERT.yaml``/``*.ART*.yaml`` found next to the input;
    ``energy_source`` overrides the provenance string.
    """
    with malformed_input(str(source) if not isinstance(source, dict) else "<dict>", "Timeloop input"):
        if not isinstance(source, dict) and Path(source).is_dir():
            data, label, arch_file = read_input_folder(source)
            return input_from_data(data, label, arch_file, ert, art, energy_source, name or Path(source).name)
        data, label = load_yaml(source, "Timeloop input")
        return input_from_data(data, label, source, ert, art, energy_source, name)
