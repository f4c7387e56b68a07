"""Eyeriss-like row-stationary accelerator (Chen et al., ISSCC'16 / JSSC'17), Timeloop style.

DRAM -> shared global buffer (inputs and outputs; weights bypass it) -> a pe_x x pe_y PE
array (two dummy levels host the column and row fan-outs) -> per PE an input, a weight and a
partial-sum scratchpad -> one MAC. The defaults reproduce the Timeloop reference
``mapper-eyeriss-like-conv`` exactly (architecture and constraints; 14 x 12 PEs, 32 nm).
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
    HardwareParam("pe_x", 14, pow2_choices(14, 2, 32), "PE columns (meshX)"),
    HardwareParam("pe_y", 12, pow2_choices(12, 2, 32), "PEs per column (meshY)"),
    HardwareParam("glb_depth", 16384, pow2_choices(16384, 1024, 131072),
                  "shared global buffer depth (words)"),
    HardwareParam("glb_width", 64, pow2_choices(64, 16, 256), "global buffer word width (bits)"),
    HardwareParam("glb_bandwidth", 16, pow2_choices(16, 2, 64),
                  "global buffer read and write bandwidth (words/cycle)"),
    HardwareParam("ifmap_spad_depth", 12, pow2_choices(12, 4, 64, 24),
                  "input scratchpad depth (words)"),
    HardwareParam("ifmap_spad_width", 16, pow2_choices(16, 8, 64), "input scratchpad word width"),
    HardwareParam("weights_spad_depth", 192, pow2_choices(192, 32, 512, 96, 384),
                  "weight scratchpad depth (words)"),
    HardwareParam("weights_spad_width", 16, pow2_choices(16, 8, 64),
                  "weight scratchpad word width"),
    HardwareParam("psum_spad_depth", 16, pow2_choices(16, 4, 64, 24), "psum scratchpad depth"),
    HardwareParam("psum_spad_width", 16, pow2_choices(16, 16, 64), "psum scratchpad word width"),
    HardwareParam("spad_bandwidth", 2, pow2_choices(2, 1, 8),
                  "scratchpad read and write bandwidth (words/cycle)"),
    HardwareParam("dram_width", 64, pow2_choices(64, 16, 256), "DRAM access width (bits)"),
    HardwareParam("datawidth", 8, (4, 8, 16), "bits per weight/activation value "
                  "(Timeloop datawidth; also the multiplier width)", searchable=False),
    HardwareParam("psum_datawidth", 16, (8, 16, 24, 32),
                  "bits per partial sum (also the adder width)", searchable=False),
    HardwareParam("technology", 32, SUPPORTED_NODES_NM, "technology node (nm) of the tables",
                  searchable=False, discrete=True),
)

WIDTH_RULES = (
    ("glb_width", "datawidth"),
    ("ifmap_spad_width", "datawidth"),
    ("weights_spad_width", "datawidth"),
    ("psum_spad_width", "psum_datawidth"),
    ("dram_width", "datawidth"),
)

_BYPASS = "bypass"  # the reference dump's keep/bypass constraint type


def generate(p: Mapping[str, int]) -> dict:
    """Timeloop v0.4 input dict of an Eyeriss-like design with parameters ``p``."""
    tech = f"{p['technology']}nm"
    x, y = p["pe_x"], p["pe_y"]

    def spad(name: str, depth: int, width: int, datawidth: int, extra: dict | None = None):
        attrs = {"depth": depth, "width": width, **(extra or {}), "datawidth": datawidth,
                 "read_bandwidth": p["spad_bandwidth"], "write_bandwidth": p["spad_bandwidth"]}
        return storage(name, "smartbuffer_RF", x, y, attrs, technology=tech)

    local = [
        storage("DRAM", "DRAM", 1, 1, {"type": "LPDDR4", "width": p["dram_width"],
                                      "datawidth": p["datawidth"]}),
        storage("shared_glb", "smartbuffer_SRAM", 1, 1, {
            "depth": p["glb_depth"], "width": p["glb_width"], "n_banks": 32,
            "datawidth": p["datawidth"], "read_bandwidth": p["glb_bandwidth"],
            "write_bandwidth": p["glb_bandwidth"]}, technology=tech),
        dummy("inter_PE_column_spatial", 1, 1),
        dummy("inter_PE_spatial", x, 1),
        spad("ifmap_spad", p["ifmap_spad_depth"], p["ifmap_spad_width"], p["datawidth"]),
        spad("weights_spad", p["weights_spad_depth"], p["weights_spad_width"], p["datawidth"]),
        spad("psum_spad", p["psum_spad_depth"], p["psum_spad_width"], p["psum_datawidth"],
             {"update_fifo_depth": 2}),
        compute("mac", "intmac", x, y, {"multiplier_width": p["datawidth"],
                                        "adder_width": p["psum_datawidth"]}, technology=tech),
    ]
    arch = architecture("system_top_level", {
        "technology": "SET ME", "global_cycle_seconds": 1e-9, "has_power_gating": False,
        "power_gated_at": None}, local)
    targets = [
        temporal("DRAM", "N"),
        dataspace("shared_glb", keep=("Inputs", "Outputs"), bypass=("Weights",),
                  type_name=_BYPASS),
        temporal("shared_glb", "N"),
        # PE columns: each column computes a different output row (Q) / filter (M).
        spatial("inter_PE_column_spatial", "NCPRSQM", "N=1,C=1,P=1,R=1,S=1", split=999),
        *fanout_only("inter_PE_column_spatial", _BYPASS),
        # PEs of a column: each gets a different filter row (S), channel (C) or filter (M).
        spatial("inter_PE_spatial", "NPQRSCM", "N=1,P=1,Q=1,R=1", split=0),
        *fanout_only("inter_PE_spatial", _BYPASS),
        dataspace("ifmap_spad", keep=("Inputs",), bypass=("Weights", "Outputs"),
                  type_name=_BYPASS),
        temporal("ifmap_spad", "NMCPQRS", "N=1,M=1,C=1,P=1,Q=1,R=1,S=1"),
        dataspace("weights_spad", keep=("Weights",), bypass=("Outputs", "Inputs"),
                  type_name=_BYPASS),
        temporal("weights_spad", "NMPQSCR", "N=1,M=1,P=1,Q=1,S=1"),
        dataspace("psum_spad", keep=("Outputs",), bypass=("Weights", "Inputs"),
                  type_name=_BYPASS),
        temporal("psum_spad", "NCPQRSM", "N=1,C=1,R=1,S=1,P=1,Q=1"),
    ]
    return timeloop_input(arch, targets)


EYERISS = Template(
    name="eyeriss",
    params=PARAMS,
    generator=generate,
    doc="Eyeriss-like row-stationary PE array (defaults = Timeloop mapper-eyeriss-like-conv)",
    width_rules=WIDTH_RULES,
    accumulator_param="psum_datawidth",
)

TEMPLATES.register(EYERISS.name, EYERISS, aliases=("eyeriss_like",))
