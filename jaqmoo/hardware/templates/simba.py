"""Simba-like accelerator (Shao et al., MICRO'19), as in the Timeloop/Accelergy exercises.

DRAM -> global buffer (inputs and outputs) -> ``pe_x x pe_y`` PEs, each with an input
buffer and ``lanes`` vector lanes; a lane has its own weight buffer and accumulation buffer
and ``macs_per_lane`` MACs, each MAC with a weight register. Spatially, PEs split output
channels (M) and input channels (C), lanes split M, the MACs of a lane split C (a dot product
reduced into the lane's accumulator).

Defaults: 16 PEs x 4 lanes x 4 MACs = 256 MACs at 45 nm, global buffer 2048 x 256 bit,
input buffer 8192 x 64, weight buffer 4096 x 64, accumulation buffer 128 x 24 (24-bit
partial sums), weight registers 1 x 512 shared by 64 MACs (``cluster_size: 64``: each MAC
holds one weight) -- the v0.4 Simba-like design of the timeloop-accelergy-exercises.
"""

from __future__ import annotations

import math
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
    HardwareParam("pe_x", 16, pow2_choices(16, 1, 64), "PEs in X (meshX)"),
    HardwareParam("pe_y", 1, pow2_choices(1, 1, 16), "PEs in Y (meshY)"),
    HardwareParam("lanes", 4, pow2_choices(4, 1, 16), "vector lanes per PE (weight and "
                  "accumulation buffer pairs)"),
    HardwareParam("macs_per_lane", 4, pow2_choices(4, 1, 16), "MACs per lane"),
    HardwareParam("glb_depth", 2048, pow2_choices(2048, 256, 16384), "global buffer depth"),
    HardwareParam("glb_width", 256, pow2_choices(256, 32, 1024), "global buffer word width"),
    HardwareParam("input_buffer_depth", 8192, pow2_choices(8192, 256, 32768),
                  "PE input buffer depth"),
    HardwareParam("input_buffer_width", 64, pow2_choices(64, 8, 256),
                  "PE input buffer word width"),
    HardwareParam("weight_buffer_depth", 4096, pow2_choices(4096, 128, 16384),
                  "lane weight buffer depth"),
    HardwareParam("weight_buffer_width", 64, pow2_choices(64, 8, 256),
                  "lane weight buffer word width"),
    HardwareParam("accu_buffer_depth", 128, pow2_choices(128, 16, 1024),
                  "lane accumulation buffer depth"),
    HardwareParam("accu_buffer_width", 24, pow2_choices(24, 32, 128, 48),
                  "lane accumulation buffer word width"),
    HardwareParam("weight_reg_width", 512, pow2_choices(512, 8, 1024),
                  "MAC weight register width (one word)"),
    HardwareParam("dram_width", 64, pow2_choices(64, 16, 256), "DRAM access width (bits)"),
    HardwareParam("datawidth", 8, (4, 8, 16), "bits per weight/activation value "
                  "(also the multiplier width; the adder is twice as wide)", searchable=False),
    HardwareParam("accu_datawidth", 24, (16, 24, 32), "bits per partial sum",
                  searchable=False),
    HardwareParam("technology", 45, SUPPORTED_NODES_NM, "technology node (nm) of the tables",
                  searchable=False, discrete=True),
)

WIDTH_RULES = (
    ("glb_width", "datawidth"),
    ("input_buffer_width", "datawidth"),
    ("weight_buffer_width", "datawidth"),
    ("accu_buffer_width", "accu_datawidth"),
    ("weight_reg_width", "datawidth"),
    ("dram_width", "datawidth"),
)


def weight_reg_cluster(p: Mapping[str, int]) -> int:
    """Timeloop ``cluster_size`` of the MAC weight registers: how many MACs share one
    ``weight_reg_width``-bit word. As many as one word serves at ``datawidth`` bits, and a
    divisor of the MAC count: ``gcd(weight_reg_width / datawidth, MACs)``. Each MAC's register
    then holds ``weight_reg_width / (datawidth * cluster_size)`` weights: 1 at the defaults
    (512 / (8 * 64)), as in the exercises' simba_like, where one access serves 64 MACs."""
    macs = p["pe_x"] * p["pe_y"] * p["lanes"] * p["macs_per_lane"]
    return math.gcd(max(1, p["weight_reg_width"] // p["datawidth"]), macs)


def generate(p: Mapping[str, int]) -> dict:
    """Timeloop v0.4 input dict of a Simba-like design with parameters ``p``."""
    tech = f"{p['technology']}nm"
    dw = p["datawidth"]
    x = p["pe_x"]
    pe_y = p["pe_y"]
    lane_y = pe_y * p["lanes"]
    mac_y = lane_y * p["macs_per_lane"]

    def level(name: str, klass: str, mx: int, my: int, attrs: dict, subclass=None):
        return storage(name, klass, mx, my, attrs, technology=tech, subclass=subclass,
                       power_gated_at=name)

    local = [
        level("DRAM", "DRAM", 1, 1, {"type": "LPDDR4", "width": p["dram_width"],
                                     "datawidth": dw}),
        level("GlobalBuffer", "smartbuffer_SRAM", 1, 1, {
            "depth": p["glb_depth"], "width": p["glb_width"], "datawidth": dw, "n_banks": 4,
            "nports": 2}),
        dummy("inter_PE_spatial", 1, 1, power_gated_at="inter_PE_spatial"),
        level("PEInputBuffer", "storage", x, pe_y, {
            "depth": p["input_buffer_depth"], "width": p["input_buffer_width"],
            "datawidth": dw}, subclass="smartbuffer_RF"),
        dummy("inter_distributed_buffers_spatial", x, pe_y,
              power_gated_at="inter_distributed_buffers_spatial"),
        level("PEWeightBuffer", "storage", x, lane_y, {
            "depth": p["weight_buffer_depth"], "width": p["weight_buffer_width"],
            "datawidth": dw, "n_banks": 8}, subclass="smartbuffer_RF"),
        level("PEAccuBuffer", "storage", x, lane_y, {
            "depth": p["accu_buffer_depth"], "width": p["accu_buffer_width"],
            "datawidth": p["accu_datawidth"]}, subclass="smartbuffer_RF"),
        dummy("inter_reg_mac_spatial", x, lane_y, power_gated_at="inter_reg_mac_spatial"),
        level("PEWeightRegs", "storage", x, mac_y, {
            "depth": 1, "width": p["weight_reg_width"], "cluster_size": weight_reg_cluster(p), "num_ports": 2,
            "datawidth": dw}, subclass="smartbuffer_RF"),
        compute("mac", "intmac", x, mac_y, {"multiplier_width": dw, "adder_width": 2 * dw,
                                            "datawidth": dw},
                technology=tech, power_gated_at="mac"),
    ]
    arch = architecture("System_top_level", {
        "technology": tech, "global_cycle_seconds": 1e-9, "datawidth": dw,
        "has_power_gating": False}, local)
    targets = [
        temporal("DRAM", "N"),
        dataspace("GlobalBuffer", keep=("Inputs", "Outputs"), bypass=("Weights",)),
        temporal("GlobalBuffer", "N"),
        # PEs: output channels across X (and Y), input channels across the rest.
        spatial("inter_PE_spatial", "MCRSPQN", "R=1,S=1,P=1,Q=1,N=1"),
        *fanout_only("inter_PE_spatial"),
        dataspace("PEInputBuffer", keep=("Inputs",), bypass=("Weights", "Outputs")),
        temporal("PEInputBuffer", "N"),
        # Lanes: output channels.
        spatial("inter_distributed_buffers_spatial", "MCQRSPN", "P=1,Q=1,R=1,S=1,C=1,N=1"),
        *fanout_only("inter_distributed_buffers_spatial"),
        dataspace("PEWeightBuffer", keep=("Weights",), bypass=("Inputs", "Outputs")),
        temporal("PEWeightBuffer", "N"),
        dataspace("PEAccuBuffer", keep=("Outputs",), bypass=("Inputs", "Weights")),
        temporal("PEAccuBuffer", "N"),
        # MACs of a lane: input channels (spatial reduction into the accumulator).
        spatial("inter_reg_mac_spatial", "CMQRSPN", "P=1,Q=1,R=1,S=1,M=1,N=1"),
        *fanout_only("inter_reg_mac_spatial"),
        dataspace("PEWeightRegs", keep=("Weights",), bypass=("Inputs", "Outputs")),
        temporal("PEWeightRegs", "N"),
    ]
    return timeloop_input(arch, targets)


SIMBA = Template(
    name="simba",
    params=PARAMS,
    generator=generate,
    doc="Simba-like PE array with vector-MAC lanes (defaults = the Timeloop/Accelergy "
        "exercises' simba_like)",
    width_rules=WIDTH_RULES,
    accumulator_param="accu_datawidth",
)

TEMPLATES.register(SIMBA.name, SIMBA, aliases=("simba_like",))
