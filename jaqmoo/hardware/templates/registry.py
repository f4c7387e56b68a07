"""Template lookup (:data:`~jaqmoo.hardware.templates.base.TEMPLATES`) and :func:`load_accelerator_spec`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.energy.architecture import estimate_architecture
from jaqmoo.hardware.templates.base import TEMPLATES, Template


def get_template(name: str) -> Template:
    """The template called ``name`` (aliases: ws, os, eyeriss_like, simba_like)."""
    return TEMPLATES.lookup(name)


def parse_overrides(items: Iterable[str] | None) -> dict[str, int]:
    """``["pe_x=16", "glb_depth=8192"]`` (the CLI's ``--set``) -> ``{"pe_x": 16, ...}``."""
    out: dict[str, int] = {}
    for item in items or ():
        name, sep, value = str(item).partition("=")
        if not sep or not name.strip():
            raise JaqmooError(f"--set {item!r}: expected NAME=VALUE, e.g. --set pe_x=16")
        try:
            out[name.strip()] = int(value.strip())
        except ValueError:
            raise JaqmooError(f"--set {item!r}: value {value.strip()!r} is not an integer") \
                from None
    return out


def load_accelerator_spec(name_or_path: str | Path, **overrides: Any):
    """An ``Accelerator`` from a template name (with parameter overrides), a Timeloop v0.4
    YAML file (flattened or ``!Container`` form), or a folder holding one (e.g. a Timeloop
    output folder with ``parsed-processed-input.yaml`` and its ERT/ART).

    Energies: an ERT next to the input wins; otherwise the built-in tables are used (or,
    with ``energy_model="hwcomponents"``, the optional hwcomponents package first) and the
    Accelerator's ``energy_source`` says which. Keyword overrides apply to templates only;
    ``strict=True`` additionally requires every value to be one of the search choices.
    """
    strict = bool(overrides.pop("strict", False))
    energy_model = str(overrides.pop("energy_model", "builtin"))
    text = str(name_or_path)
    key = TEMPLATES.canonical(text)
    if key is not None and not Path(text).exists():
        return TEMPLATES[key].build(strict=strict, energy_model=energy_model, **overrides)
    path = Path(text).expanduser()
    if not path.exists():
        raise JaqmooError(f"accelerator {text!r}: not a template ({', '.join(TEMPLATES)}) and "
                          "no such file or folder")
    if overrides:
        raise JaqmooError(f"accelerator {text!r}: parameter overrides "
                          f"({', '.join(overrides)}) apply to templates only "
                          f"({', '.join(TEMPLATES)}); edit the YAML instead")
    from jaqmoo.hardware import timeloop_yaml
    from jaqmoo.hardware.ert import find_sibling
    from jaqmoo.hardware.yaml_io import load_yaml

    if path.is_dir():
        path = timeloop_yaml.find_input_file(path)
    if find_sibling(path.parent, "ERT") is not None:
        return timeloop_yaml.load_accelerator(path)
    data, _ = load_yaml(path, "Timeloop input")
    if isinstance(data.get("ERT"), dict):
        return timeloop_yaml.load_accelerator(path)
    architecture = data.get("architecture")
    if not isinstance(architecture, dict):
        raise JaqmooError(f"{path}: missing required field 'architecture'; add it")
    ert, art, table_source = estimate_architecture(architecture, energy_model)
    has_art = find_sibling(path.parent, "ART") is not None
    return timeloop_yaml.load_accelerator(
        path, ert=ert, art=None if has_art else art,
        energy_source=f"{table_source} (no ERT next to {path.name})")
