"""The built-in tables as estimates: each kind's scaling rule (node, depth, width) applied to
the anchors of :mod:`jaqmoo.hardware.energy.anchors` (see its docstring for the models)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.energy.anchors import (
    ANCHORS,
    DEFAULT_DRAM_TYPE,
    DEFAULT_NODE_NM,
    DRAM_PJ_PER_BIT,
    DUMMY_AREA_UM2,
    MAC_MULTIPLIER_SHARE,
    NODE_ENERGY_EXPONENT,
    REGFILE_DEPTH_EXPONENT,
    SRAM_DEPTH_EXPONENT,
    SUPPORTED_NODES_NM,
    Anchor,
)
from jaqmoo.hardware.energy.components import ComponentEstimate, component_kind, parse_technology


def _positive_int(attributes: Mapping[str, Any], key: str, klass: str,
                  default: int | None = None) -> int:
    value = attributes.get(key, default)
    if value is None:
        raise JaqmooError(f"component class {klass!r}: attribute {key!r} is missing; "
                          f"the built-in energy table needs it (a positive integer)")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise JaqmooError(f"component class {klass!r}: attribute {key!r} = {value!r} is not "
                          "an integer; give a positive integer") from None
    if number <= 0 or number != float(value):
        raise JaqmooError(f"component class {klass!r}: attribute {key!r} = {value!r} must be "
                          "a positive integer")
    return number


# ------------------------------------------------------------------------------ table lookups


def _anchors_for(kind: str) -> dict[int, Anchor]:
    return {a.node_nm: a for a in ANCHORS if a.kind == kind}


def _node_factor(from_nm: int, to_nm: int) -> float:
    return (to_nm / from_nm) ** NODE_ENERGY_EXPONENT


def _check_node(node_nm: int) -> None:
    if node_nm not in SUPPORTED_NODES_NM:
        raise JaqmooError(
            f"technology {node_nm}nm: no built-in energy table (supported: "
            f"{', '.join(f'{n}nm' for n in SUPPORTED_NODES_NM)}); set technology to one of "
            "those or give an Accelergy ERT/ART for this design")


def _anchor_value(kind: str, node_nm: int, action: str | None) -> tuple[float, Anchor]:
    """Anchored value (energy of ``action`` or area if None) at ``node_nm``, node-scaled
    from the nearest anchored node that has it."""
    _check_node(node_nm)
    anchors = _anchors_for(kind)
    candidates = [a for a in anchors.values()
                  if action is None or a.energy(action) is not None]
    nearest = min(candidates, key=lambda a: (abs(math.log(a.node_nm / node_nm)), -a.node_nm))
    value = nearest.area_um2 if action is None else nearest.energy(action)
    assert value is not None
    return value * _node_factor(nearest.node_nm, node_nm), nearest


def dram_energy_per_bit(dram_type: str | None) -> float:
    """pJ per bit transferred for a DRAM ``type`` (default LPDDR4)."""
    key = (dram_type or DEFAULT_DRAM_TYPE).upper().replace("-", "")
    if key not in DRAM_PJ_PER_BIT:
        raise JaqmooError(f"DRAM type {dram_type!r}: no built-in energy (known: "
                          f"{', '.join(DRAM_PJ_PER_BIT)}); use one of those or give an ERT")
    return DRAM_PJ_PER_BIT[key]


def dram_estimate(width: int, dram_type: str | None = None) -> ComponentEstimate:
    """DRAM: the same energy for read/write/update, proportional to the access width."""
    if width <= 0:
        raise JaqmooError(f"DRAM width {width}: must be a positive number of bits")
    e = dram_energy_per_bit(dram_type) * width
    return ComponentEstimate(
        "dram", (("read", e), ("write", e), ("update", e), ("leak", 0.0)), 0.0, None,
        f"built-in DRAM table ({(dram_type or DEFAULT_DRAM_TYPE).upper()}, "
        f"{dram_energy_per_bit(dram_type)} pJ/bit)")


def _memory_estimate(kind: str, depth: int, width: int, node_nm: int,
                     exponent: float, area_kind: str | None = None) -> ComponentEstimate:
    if depth <= 0 or width <= 0:
        raise JaqmooError(f"{kind} depth {depth} x width {width}: both must be positive")
    energies = []
    origins = set()
    for action in ("read", "write"):
        e_ref, anchor = _anchor_value(kind, node_nm, action)
        d_ref, w_ref = anchor.size
        energies.append((action, e_ref * (width / w_ref) * (depth / d_ref) ** exponent))
        origins.add(anchor.node_nm)
    energies.append(("update", energies[1][1]))  # a read-modify-write's write half
    leak_ref, anchor = _anchor_value(kind, node_nm, "leak")
    capacity_ratio = depth * width / (anchor.size[0] * anchor.size[1])
    energies.append(("leak", leak_ref * capacity_ratio))
    area_ref, anchor = _anchor_value(area_kind or kind, node_nm, None)
    area = area_ref * depth * width / (anchor.size[0] * anchor.size[1])
    return ComponentEstimate(kind, tuple(energies), area, node_nm,
                             f"built-in {node_nm}nm {kind} table")


def sram_estimate(depth: int, width: int, node_nm: int) -> ComponentEstimate:
    """SRAM of ``depth`` words of ``width`` bits at ``node_nm`` (CACTI-like scaling)."""
    return _memory_estimate("sram", depth, width, node_nm, SRAM_DEPTH_EXPONENT)


def regfile_estimate(depth: int, width: int, node_nm: int) -> ComponentEstimate:
    """Register file of ``depth`` words of ``width`` bits at ``node_nm`` (depth 1: a plain
    register, see :func:`register_estimate`)."""
    if depth == 1:
        return register_estimate(width, node_nm)
    return _memory_estimate("regfile", depth, width, node_nm, REGFILE_DEPTH_EXPONENT)


def register_estimate(width: int, node_nm: int) -> ComponentEstimate:
    """A single ``width``-bit register: everything proportional to the width; the area per
    bit is the register file's (a register-file entry is such a register)."""
    return _memory_estimate("register", 1, width, node_nm, 0.0, area_kind="regfile")


def intmac_estimate(multiplier_width: int, adder_width: int, node_nm: int) -> ComponentEstimate:
    """Integer MAC: ``multiplier_width`` x ``multiplier_width`` multiply, ``adder_width`` add."""
    if multiplier_width <= 0 or adder_width <= 0:
        raise JaqmooError(f"intmac multiplier_width {multiplier_width}, adder_width "
                          f"{adder_width}: both must be positive")

    def scale(anchor: Anchor) -> float:
        m_ref, a_ref = anchor.size
        return (MAC_MULTIPLIER_SHARE * (multiplier_width ** 2) / (m_ref ** 2)
                + (1 - MAC_MULTIPLIER_SHARE) * adder_width / a_ref)

    compute, anchor = _anchor_value("intmac", node_nm, "compute")
    compute *= scale(anchor)
    leak, anchor = _anchor_value("intmac", node_nm, "leak")
    leak *= scale(anchor)
    area, anchor = _anchor_value("intmac", node_nm, None)
    area *= scale(anchor)
    return ComponentEstimate("intmac", (("compute", compute), ("leak", leak)), area, node_nm,
                             f"built-in {node_nm}nm intmac table")


def dummy_estimate() -> ComponentEstimate:
    """A ``dummy_storage`` level: holds nothing, costs nothing."""
    return ComponentEstimate("dummy", (("read", 0.0), ("write", 0.0), ("update", 0.0),
                                       ("leak", 0.0)), DUMMY_AREA_UM2, None,
                             "built-in dummy table")


def estimate_component(klass: str, attributes: Mapping[str, Any], *,
                       subclass: str | None = None,
                       technology: Any = None) -> ComponentEstimate:
    """Energies and area of one component from its Timeloop class and attributes.

    ``technology`` is the node inherited from enclosing containers; the component's own
    ``technology`` attribute wins over it. Memories need ``depth`` and ``width``; an intmac
    needs ``multiplier_width`` (and ``adder_width``, default 2x) or ``width``; DRAM uses
    ``width`` and ``type``.
    """
    kind = component_kind(klass, subclass)
    name = subclass or klass
    if kind == "dummy":
        return dummy_estimate()
    if kind == "dram":
        return dram_estimate(_positive_int(attributes, "width", name), attributes.get("type"))
    node = parse_technology(attributes.get("technology"))
    if node is None:
        node = parse_technology(technology)
    assumed = node is None
    if node is None:
        node = DEFAULT_NODE_NM
    if kind == "intmac":
        width = attributes.get("multiplier_width", attributes.get("width"))
        if width is None:
            width = attributes.get("datawidth")
        mult = _positive_int({"multiplier_width": width}, "multiplier_width", name)
        adder = _positive_int(attributes, "adder_width", name, default=2 * mult)
        est = intmac_estimate(mult, adder, node)
    else:
        depth = _positive_int(attributes, "depth", name)
        width = _positive_int(attributes, "width", name)
        est = (sram_estimate if kind == "sram" else regfile_estimate)(depth, width, node)
    if assumed:
        est = ComponentEstimate(est.kind, est.energies, est.area_um2, est.node_nm,
                                est.source + " (no technology given; assumed)")
    return est


__all__ = ["dram_energy_per_bit", "dram_estimate", "dummy_estimate", "estimate_component", "intmac_estimate",
           "register_estimate", "regfile_estimate", "sram_estimate"]
