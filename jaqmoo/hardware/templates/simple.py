"""Simple weight-stationary and output-stationary PE arrays (Timeloop/Accelergy exercises).

DRAM -> shared global buffer (all tensors) -> ``pe_x x pe_y`` PEs, each with a scratchpad
(``pe_spad``) that keeps the stationary tensor -- weights (WS) or partial sums (OS) -- and
one register per operand (weight, input activation, output activation) in front of a MAC.
Defaults: 16 x 16 PEs, 16-bit data, glb 16384 x 64, pe_spad 192 x 16, 45 nm, as in the
exercises' ``simple_weight_stationary`` / ``simple_output_stationary``, except that output
channels are spread across the PE columns (see ``SPATIAL_PERMUTATION``).
"""

from __future__ import annotations

from collections.abc import Mapping

from jaqmoo.hardware.energy.anchors import SUPPORTED_NODES_NM
from jaqmoo.hardware.templates.base import (
    TEMPLATES,
    HardwareParam,
    Template,
    architecture,
    compute,
    dataspace,
    dummy,
    fanout_only,
    pow2_choices,
    spatial,
    storage,
    temporal,
    timeloop_input,
)

PARAMS: tuple[HardwareParam, ...] = (
    HardwareParam("pe_x", 16, pow2_choices(16, 2, 64), "PE columns (meshX)"),
    HardwareParam("pe_y", 16, pow2_choices(16, 2, 64), "PE rows (meshY)"),
    HardwareParam("glb_depth", 16384, pow2_choices(16384, 1024, 131072), "global buffer depth"),
    HardwareParam("glb_width", 64, pow2_choices(64, 16, 256), "global buffer word width"),
    HardwareParam("glb_bandwidth", 16, pow2_choices(16, 2, 64),
                  "global buffer read and write bandwidth (words/cycle)"),
    HardwareParam("pe_spad_depth", 192, pow2_choices(192, 16, 1024, 96, 384),
                  "PE scratchpad depth (words)"),
    HardwareParam("pe_spad_width", 16, pow2_choices(16, 16, 128), "PE scratchpad word width"),
    HardwareParam("reg_width", 16, pow2_choices(16, 16, 64), "operand register width (bits)"),
    HardwareParam("dram_width", 64, pow2_choices(64, 16, 256), "DRAM access width (bits)"),
    HardwareParam("datawidth", 16, (4, 8, 16), "bits per value (Timeloop datawidth)",
                  searchable=False),
    HardwareParam("multiplier_width", 8, (4, 8, 16), "MAC multiplier operand width",
                  searchable=False),
    HardwareParam("adder_width", 16, (8, 16, 24, 32), "MAC adder width", searchable=False),
    HardwareParam("technology", 45, SUPPORTED_NODES_NM, "technology node (nm) of the tables",
                  searchable=False, discrete=True),
)

SPATIAL_PERMUTATION = "MNQPSRC"
"""The first dim (M) goes to X, the rest to Y. The exercises write ``NQPSRCM`` with split 1,
which puts only N on X: at batch 1 whole PE columns idle (their reference map uses 12 of 256
PEs). Moving M first keeps the same constraint otherwise and makes ``pe_x`` useful."""

WIDTH_RULES = (
    ("glb_width", "datawidth"),
    ("pe_spad_width", "datawidth"),
    ("reg_width", "datawidth"),
    ("dram_width", "datawidth"),
)

def _generator(stationary: str, bypassed: tuple[str, str], spad_permutation: str):
    """Generator for a design whose PE scratchpad keeps ``stationary`` only."""

    def generate(p: Mapping[str, int]) -> dict:
        tech = f"{p['technology']}nm"
        x, y, dw = p["pe_x"], p["pe_y"], p["datawidth"]

        def reg(name: str) -> dict:
            return storage(name, "storage", x, y, {"depth": 1, "width": p["reg_width"],
                                                   "datawidth": dw},
                           technology=tech, subclass="aladdin_register", power_gated_at=name)

        local = [
            storage("DRAM", "DRAM", 1, 1, {"type": "LPDDR4", "width": p["dram_width"],
                                          "datawidth": dw}, power_gated_at="DRAM"),
            storage("shared_glb", "smartbuffer_SRAM", 1, 1, {
                "depth": p["glb_depth"], "width": p["glb_width"], "n_banks": 32,
                "datawidth": dw, "read_bandwidth": p["glb_bandwidth"],
                "write_bandwidth": p["glb_bandwidth"]},
                technology=tech, power_gated_at="shared_glb"),
            dummy("inter_PE_spatial", 1, 1, power_gated_at="inter_PE_spatial"),
            storage("pe_spad", "smartbuffer_SRAM", x, y, {
                "depth": p["pe_spad_depth"], "width": p["pe_spad_width"], "datawidth": dw},
                technology=tech, power_gated_at="pe_spad"),
            reg("weight_reg"),
            reg("input_activation_reg"),
            reg("output_activation_reg"),
            compute("mac", "intmac", x, y, {"multiplier_width": p["multiplier_width"],
                                            "adder_width": p["adder_width"]},
                    technology=tech, power_gated_at="mac"),
        ]
        arch = architecture("system_top_level", {
            "technology": "SET ME", "global_cycle_seconds": 1e-9, "has_power_gating": False},
            local)
        targets = [
            temporal("DRAM", "N"),
            temporal("shared_glb", "N"),
            # PE array: output channels (M) across X; input channels (C) and batch across Y.
            spatial("inter_PE_spatial", SPATIAL_PERMUTATION, "R=1,S=1,P=1,Q=1", split=1),
            *fanout_only("inter_PE_spatial"),
            dataspace("pe_spad", keep=(stationary,), bypass=bypassed),
            temporal("pe_spad", spad_permutation),
            dataspace("weight_reg", keep=("Weights",), bypass=("Inputs", "Outputs")),
            temporal("weight_reg", "NCMSR", "R=1,S=1,M=1,C=1"),
            dataspace("input_activation_reg", keep=("Inputs",), bypass=("Weights", "Outputs")),
            temporal("input_activation_reg", "NCQP", "P=1,Q=1,C=1,N=1"),
            dataspace("output_activation_reg", keep=("Outputs",),
                      bypass=("Weights", "Inputs")),
            temporal("output_activation_reg", "NMQP", "P=1,Q=1,M=1,N=1"),
        ]
        return timeloop_input(arch, targets)

    return generate


WEIGHT_STATIONARY = Template(
    name="weight_stationary",
    params=PARAMS,
    generator=_generator("Weights", ("Inputs", "Outputs"), "NPQRS"),
    doc="PE array whose scratchpads keep weights (exercises' simple_weight_stationary)",
    width_rules=WIDTH_RULES,
)

OUTPUT_STATIONARY = Template(
    name="output_stationary",
    params=PARAMS,
    generator=_generator("Outputs", ("Inputs", "Weights"), "NRSPQ"),
    doc="PE array whose scratchpads keep partial sums (exercises' simple_output_stationary)",
    width_rules=WIDTH_RULES,
)

TEMPLATES.register(WEIGHT_STATIONARY.name, WEIGHT_STATIONARY, aliases=("ws",))
TEMPLATES.register(OUTPUT_STATIONARY.name, OUTPUT_STATIONARY, aliases=("os",))
