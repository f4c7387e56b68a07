"""A Timeloop architecture as the fixed hardware of an experiment (``accelerator: {timeloop: PATH}``).

``PATH`` is a Timeloop v0.4 input file, a Timeloop output folder (``parsed-processed-input.yaml``
with its ``*.ERT.yaml``/``*.ART*.yaml``), or a folder of the Klhufek et al. fork (``arch/``,
``*_arch_constraints.yaml``, ``*_map_constraints.yaml``...; read and merged by
:func:`jaqmoo.timeloop.inputs.read_input_folder`). Only the architecture and its constraints
are used: the workload comes from the model and the mappings from jaqmoo's mapper. The
hardware is fixed (it has no parameters to search).

Energies: the Accelergy ERT (and ART) next to the architecture or in the folder; without one,
the built-in tables estimate them (their node named in ``energy_source``); when they cannot
(e.g. compound components without the attributes they need) loading fails with a message
asking for the ERT, rather than searching on energies of 0.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.templates.base import Template

FIELD = "accelerator.timeloop"


GENERIC_STEMS = ("arch", "architecture", "flattened", "parsed-processed-input", "input", "timeloop-mapper", "timeloop-model")


def design_name(path: str | Path) -> str:
    """A short readable name of a Timeloop input: the folder's name, or the file's stem (its
    folder's name when the stem says nothing, such as ``arch.yaml``)."""
    p = Path(path)
    if p.suffix.lower() in (".yaml", ".yml"):
        return p.parent.name if p.stem.lower() in GENERIC_STEMS and p.parent.name else p.stem
    return p.name


def _fixed_input(data: dict, params: Mapping[str, int]) -> dict:
    """The design's Timeloop input (it takes no parameters)."""
    return copy.deepcopy(data)


@dataclass(frozen=True)
class TimeloopDesign(Template):
    """A :class:`~jaqmoo.hardware.templates.base.Template` without parameters whose
    :meth:`build` is the accelerator read from a Timeloop input."""

    accelerator: Any = None
    path: str = ""
    technology_nm: int | None = None
    """The node the architecture's components name (e.g. ``technology: 32nm``), if one."""

    def build(self, strict: bool = False, energy_model: str = "builtin", **overrides: Any):
        """The design's accelerator (a parameter override is an error: there are none)."""
        self.resolve(strict, **overrides)
        return self.accelerator

    @property
    def label(self) -> str:
        return f"timeloop:{self.name}"


def _technologies(node: Any) -> set[int]:
    """Every ``technology: NNnm`` attribute in an architecture tree."""
    found: set[int] = set()
    if isinstance(node, Mapping):
        for k, v in node.items():
            if k == "technology" and isinstance(v, str) and (m := re.fullmatch(r"\s*(\d+)\s*nm\s*", v)):
                found.add(int(m.group(1)))
            else:
                found |= _technologies(v)
    elif isinstance(node, list):
        for v in node:
            found |= _technologies(v)
    return found


def _read(path: Path, where: str) -> tuple[dict, str, Path, Path]:
    """``(data, label, architecture file, folder to look for the ERT in)``."""
    from jaqmoo.hardware.yaml_io import load_yaml
    from jaqmoo.timeloop.inputs import read_input_folder

    if path.is_dir():
        data, label, arch_file = read_input_folder(path)
        return data, label, arch_file, path
    data, label = load_yaml(path, "Timeloop input")
    if not isinstance(data.get("architecture"), dict):
        raise JaqmooError(f"{path} has no 'architecture:' section")
    return data, label, path, path.parent


def load_design(path: str | Path, where: str = FIELD) -> TimeloopDesign:
    """The :class:`TimeloopDesign` of a Timeloop input file or folder (errors name ``where``)."""
    from jaqmoo.hardware.energy.architecture import estimate_architecture
    from jaqmoo.hardware.ert import find_sibling
    from jaqmoo.hardware.timeloop_yaml import accelerator_from_data

    p = Path(path).expanduser()
    if not p.exists():
        raise JaqmooError(f"{where}: {p} does not exist; give a Timeloop architecture folder or YAML file")
    try:
        data, label, arch_file, folder = _read(p, where)
        ert = find_sibling(arch_file.parent, "ERT") or find_sibling(folder, "ERT")
        art = find_sibling(arch_file.parent, "ART") or find_sibling(folder, "ART")
        source = None
        if ert is None and isinstance(data.get("ERT"), dict):
            ert = {"ERT": data["ERT"]}
        if ert is None:
            try:
                ert, est_art, table = estimate_architecture(data["architecture"], "builtin")
            except JaqmooError as exc:
                raise JaqmooError(f"{p} has no Accelergy ERT (*.ERT.yaml) and the built-in tables cannot estimate "
                                  f"its energies ({exc}); put the ERT Accelergy wrote for it next to the "
                                  "architecture") from None
            art = art or est_art
            source = f"{table} (no ERT in {p})"
        name = design_name(p)
        accel = accelerator_from_data(data, label, arch_file, ert, art, source, name=name)
    except JaqmooError as exc:
        text = str(exc)
        raise JaqmooError(text if text.startswith(where) else f"{where}: {text}") from None
    nodes = _technologies(data["architecture"])
    node = next(iter(nodes)) if len(nodes) == 1 else None
    return TimeloopDesign(name=name, params=(), generator=functools.partial(_fixed_input, data),
                          doc=f"Timeloop architecture {p}", accelerator=accel, path=str(p), technology_nm=node)


def accelerator_template(section: Mapping[str, Any]) -> Template:
    """The template of an experiment spec's ``accelerator`` section in plain form (a name or a
    ``timeloop`` path), e.g. ``meta.json``'s ``spec.accelerator``."""
    from jaqmoo.hardware.templates import get_template

    if section.get("timeloop"):
        return load_design(section["timeloop"])
    return get_template(section.get("template") or "")


__all__ = ["TimeloopDesign", "accelerator_template", "design_name", "load_design"]
