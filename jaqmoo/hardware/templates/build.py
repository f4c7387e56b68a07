"""Templates -> ``Accelerator``: a template's Timeloop input through the Timeloop loader, with
built-in (or hwcomponents) energies; memoised per parameter set (:func:`build_cached`)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from jaqmoo.hardware import timeloop_yaml
from jaqmoo.hardware.energy.architecture import estimate_architecture


def accelerator_from_timeloop(tl_input: Mapping[str, Any], *, name: str,
                              source_label: str | None = None, label: str | None = None,
                              energy_model: str = "builtin"):
    """Load a template's Timeloop dict through the Timeloop loader with built-in energies.

    The built-in tables produce an Accelergy-format ERT/ART for the architecture; the loader
    consumes them exactly as it consumes ``*.ERT.yaml``/``*.ART.yaml`` files.
    """
    ert, art, table_source = estimate_architecture(tl_input["architecture"], energy_model)
    if source_label and table_source.startswith("built-in "):
        nodes = table_source.removeprefix("built-in ").replace(" table", "", 1)
        source = f"{source_label} ({nodes})"
    else:
        source = table_source
    return timeloop_yaml.load_accelerator(dict(tl_input), ert=ert, art=art,
                                          energy_source=source, name=label or name)


@functools.lru_cache(maxsize=1024)
def build_cached(template: Any, values: tuple[tuple[str, int], ...],
                 energy_model: str = "builtin"):
    """``template``'s Accelerator (a :class:`~jaqmoo.hardware.templates.base.Template`) for resolved
    ``values`` (memoised; see Template.build)."""
    params = dict(values)
    changed = {k: v for k, v in params.items() if v != template.param(k).default}
    label = template.name + "".join(f" {k}={v}" for k, v in sorted(changed.items()))
    accel = accelerator_from_timeloop(template.generator(params), name=template.name,
                                      source_label=f"built-in {template.name} table",
                                      label=label, energy_model=energy_model)
    if template.accumulator_param is None:
        return accel
    return dataclasses.replace(accel, accumulator_bits=params[template.accumulator_param])
