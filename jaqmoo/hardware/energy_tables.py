"""Built-in energy and area tables for accelerator components (used when no ERT is given).

The old single-module path, kept working: the code lives in :mod:`jaqmoo.hardware.energy`,
split by source (:mod:`~jaqmoo.hardware.energy.anchors` holds the tables' numbers and the
models' description).
"""

from __future__ import annotations

from jaqmoo.hardware.energy.anchors import (
    ANCHORS,
    DEFAULT_DRAM_TYPE,
    DEFAULT_NODE_NM,
    DRAM_PJ_PER_BIT,
    DUMMY_AREA_UM2,
    KINDS,
    MAC_MULTIPLIER_SHARE,
    NODE_ENERGY_EXPONENT,
    REGFILE_DEPTH_EXPONENT,
    SRAM_DEPTH_EXPONENT,
    SUPPORTED_NODES_NM,
    Anchor,
)
from jaqmoo.hardware.energy.architecture import (
    ENERGY_MODELS,
    NETWORK_CLASSES,
    base_component_name,
    estimate_architecture,
    iter_flattened_components,
    iter_hierarchical_components,
)
from jaqmoo.hardware.energy.builtin import (
    dram_energy_per_bit,
    dram_estimate,
    dummy_estimate,
    estimate_component,
    intmac_estimate,
    regfile_estimate,
    register_estimate,
    sram_estimate,
)
from jaqmoo.hardware.energy.components import ComponentEstimate, component_kind, parse_technology
from jaqmoo.hardware.energy.hwcomponents_model import hwcomponents_available, hwcomponents_estimate

__all__ = [
    "ANCHORS", "DEFAULT_DRAM_TYPE", "DEFAULT_NODE_NM", "DRAM_PJ_PER_BIT", "DUMMY_AREA_UM2", "ENERGY_MODELS", "KINDS",
    "MAC_MULTIPLIER_SHARE", "NETWORK_CLASSES", "NODE_ENERGY_EXPONENT", "REGFILE_DEPTH_EXPONENT",
    "SRAM_DEPTH_EXPONENT", "SUPPORTED_NODES_NM", "Anchor", "ComponentEstimate", "base_component_name",
    "component_kind", "dram_energy_per_bit", "dram_estimate", "dummy_estimate", "estimate_architecture",
    "estimate_component", "hwcomponents_available", "hwcomponents_estimate", "intmac_estimate",
    "iter_flattened_components", "iter_hierarchical_components", "parse_technology", "regfile_estimate",
    "register_estimate", "sram_estimate",
]
