"""Parameterised accelerator templates (``eyeriss``, ``simba``, ``weight_stationary``,
``output_stationary``) and :func:`load_accelerator_spec`, the one entry point that turns a
template name, a Timeloop YAML file or a Timeloop output folder into an ``Accelerator``.

Example::

    from jaqmoo.hardware.templates import get_template, load_accelerator_spec
    accel = load_accelerator_spec("eyeriss", pe_x=16, glb_depth=32768)
    tl_dict = get_template("simba").to_timeloop(lanes=8)
"""

from jaqmoo.hardware.templates import eyeriss, simba, simple  # noqa: F401  (each registers its templates)
from jaqmoo.hardware.templates.base import TEMPLATES, HardwareParam, Template
from jaqmoo.hardware.templates.build import accelerator_from_timeloop
from jaqmoo.hardware.templates.registry import (
    get_template,
    load_accelerator_spec,
    parse_overrides,
)

__all__ = [
    "HardwareParam",
    "Template",
    "TEMPLATES",
    "accelerator_from_timeloop",
    "get_template",
    "load_accelerator_spec",
    "parse_overrides",
]
