"""Template registry and :func:`load_accelerator_spec`."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.energy_tables import estimate_architecture
from jaqmoo.hardware.templates.base import Template
from jaqmoo.hardware.templates.eyeriss import EYERISS
from jaqmoo.hardware.templates.simba import SIMBA
from jaqmoo.hardware.templates.simple import OUTPUT_STATIONARY, WEIGHT_STATIONARY

TEMPLATES: dict[str, Template] = {
    t.name: t for t in (EYERISS, SIMBA, WEIGHT_STATIONARY, OUTPUT_STATIONARY)
}

_ALIASES = {"ws": "weight_stationary", "os": "output_stationary",
            "eyeriss_like": "eyeriss", "simba_like": "simba"}


def get_template(name: str) -> Template:
    """The template called ``name`` (aliases: ws, os, eyeriss_like, simba_like)."""
    key = str(name).strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in TEMPLATES:
        raise JaqmooError(f"unknown accelerator template {name!r}; templates: "
                          f"{', '.join(TEMPLATES)} (or give a Timeloop YAML file / folder)")
    return TEMPLATES[key]


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


def accelerator_from_timeloop(tl_input: Mapping[str, Any], *, name: str,
                              source_label: str | None = None, label: str | None = None,
                              energy_model: str = "builtin"):
    """Load a template's Timeloop dict through the Timeloop loader with built-in energies.

    The built-in tables produce an Accelergy-format ERT/ART for the architecture; the loader
    consumes them exactly as it consumes ``*.ERT.yaml``/``*.ART.yaml`` files.
    """
    from jaqmoo.hardware import timeloop_yaml

    ert, art, table_source = estimate_architecture(tl_input["architecture"], energy_model)
    if source_label and table_source.startswith("built-in "):
        nodes = table_source.removeprefix("built-in ").replace(" table", "", 1)
        source = f"{source_label} ({nodes})"
    else:
        source = table_source
    return timeloop_yaml.load_accelerator(dict(tl_input), ert=ert, art=art,
                                          energy_source=source, name=label or name)


@functools.lru_cache(maxsize=1024)
def build_cached(template: Template, values: tuple[tuple[str, int], ...],
                 energy_model: str = "builtin"):
    """``template``'s Accelerator for resolved ``values`` (memoised; see Template.build)."""
    params = dict(values)
    changed = {k: v for k, v in params.items() if v != template.param(k).default}
    label = template.name + "".join(f" {k}={v}" for k, v in sorted(changed.items()))
    accel = accelerator_from_timeloop(template.generator(params), name=template.name,
                                      source_label=f"built-in {template.name} table",
                                      label=label, energy_model=energy_model)
    if template.accumulator_param is None:
        return accel
    return dataclasses.replace(accel, accumulator_bits=params[template.accumulator_param])


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
    key = _ALIASES.get(text.strip().lower().replace("-", "_"), text.strip().lower())
    if key in TEMPLATES and not Path(text).exists():
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
