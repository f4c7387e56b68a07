"""Built-in energy and area tables for accelerator components (used when no ERT is given).

When a design comes with an Accelergy ERT/ART, those numbers win (the Timeloop loader reads
them). Otherwise every component gets per-action energies (pJ) and an area (um^2) from the
small analytical tables below, one per component *kind*:

================  ======================================================================
kind              model
================  ======================================================================
``dram``          energy per access = pJ/bit(type) x ``width``; no leakage, no on-chip area.
                  LPDDR4 8 pJ/bit (both Timeloop references: 512 pJ per 64-bit and
                  2048 pJ per 256-bit access). GDDR5 14 and HBM2 3.9 pJ/bit (O'Connor et
                  al., MICRO'17), DDR3 70 pJ/bit (Malladi et al., ISCA'12).
``sram``          CACTI-like: E(D, W) = E_ref x (W / W_ref) x (D / D_ref) ** 0.5
                  (linear in the word width = bits read per access, square root in the
                  depth = bit-line/word-line length); leakage per cycle and area are
                  proportional to the capacity D x W.
``regfile``       same form with a depth exponent of 0.84 (register files are flip-flop
                  arrays whose decode/compare logic grows almost linearly with the number
                  of entries). 0.84 is the least-squares fit over the three Eyeriss
                  scratchpads (12x16, 16x16, 192x16); leakage and area are proportional
                  to the capacity.
``register``      a depth-1 ``regfile`` (a plain register: no address decode, no compare):
                  energy and leakage proportional to the width (anchored at 45 nm, other
                  nodes by the node^2 rule below); area per bit as a regfile.
``intmac``        E = E_ref x (0.8 x (m_a x m_b) / 64 + 0.2 x adder / 16): an 8x8
                  multiplier with a 16-bit adder is the reference; 80 % of it is the
                  multiplier (array multiplier: partial products ~ m_a x m_b) and 20 % the
                  adder (ripple/carry-select: ~ width), the split of Horowitz (ISSCC'14,
                  45 nm: 8-bit multiply 0.2 pJ, 16-bit add 0.05 pJ). Area uses the same split.
``dummy``         Timeloop ``dummy_storage`` (a level that only hosts a spatial fan-out):
                  no energy, no area (Accelergy's dummy table reports 1 um^2; a level that
                  holds nothing is not hardware, and the hierarchical form has no entry).
================  ======================================================================

Each kind is anchored, per technology node, on one real Accelergy estimate taken from a
Timeloop/Accelergy reference output (``ANCHORS`` lists every number and where it comes from):

* 32 nm: the Eyeriss-like reference (``mapper-eyeriss-like-conv``): shared_glb
  16384x64 smartbuffer_SRAM, the three smartbuffer_RF scratchpads (fitted), the
  8/16-bit intmac.
* 40 nm: the ``model-*`` references: SRAM 32768x64 (read 43.35 pJ), regfile 64x8
  (0.426 pJ), 8-bit intmac (0.845 pJ).
* 45 nm: the Simba-like design of the timeloop-accelergy-exercises (GlobalBuffer
  2048x256 smartbuffer_SRAM, PEAccuBuffer 128x24 smartbuffer_RF, the 1x512
  PEWeightRegs register, 8/16-bit intmac).
* 65 nm: the 45 nm anchors scaled by (65/45)^2 for energy, leakage and area. The exponent
  2 is the least-squares fit of the three SRAM anchors brought to one size
  (32 nm : 40 nm : 45 nm = 0.50 : 0.84 : 1) to E ~ node^k (k = 2.0).

A value the reference ERT does not give (the 40 nm intmac has no leak action) is taken from
the nearest anchored node with the same node^2 rule. All rules are monotone: at a fixed
node a deeper or wider memory never costs less per access, and area grows with capacity.

Note: the 40 nm intmac anchor is Accelergy's Aladdin ``intmac`` primitive, whereas the 32
and 45 nm anchors are the exercises' compound ``intmac`` that models the multiplier with an
adder table; the 40 nm MAC is therefore ~3x the 45 nm one. Each node reproduces its own
reference; do not compare MAC energies across nodes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jaqmoo.errors import JaqmooError

SUPPORTED_NODES_NM: tuple[int, ...] = (32, 40, 45, 65)
"""Technology nodes with a built-in table."""

DEFAULT_NODE_NM = 45
"""Node assumed when a design names no technology at all (said in the energy source)."""

NODE_ENERGY_EXPONENT = 2.0
"""E ~ node ** k between nodes (fitted on the SRAM anchors, see module docstring)."""

SRAM_DEPTH_EXPONENT = 0.5
REGFILE_DEPTH_EXPONENT = 0.84
MAC_MULTIPLIER_SHARE = 0.8
"""Share of an 8x8-multiply/16-bit-add MAC's energy and area spent in the multiplier."""

DUMMY_AREA_UM2 = 0.0

DRAM_PJ_PER_BIT: dict[str, float] = {
    "LPDDR4": 8.0,  # Timeloop references: 512 pJ / 64-bit, 2048 pJ / 256-bit access
    "HBM2": 3.9,  # O'Connor et al., "Fine-grained DRAM", MICRO 2017
    "GDDR5": 14.0,  # O'Connor et al., MICRO 2017
    "DDR3": 70.0,  # Malladi et al., "Towards energy-proportional datacenter memory", ISCA 2012
}
DEFAULT_DRAM_TYPE = "LPDDR4"

KINDS: tuple[str, ...] = ("dram", "sram", "regfile", "register", "intmac", "dummy")


@dataclass(frozen=True)
class Anchor:
    """One Accelergy estimate a table is scaled from.

    ``size`` is ``(depth, width)`` for memories and ``(multiplier_width, adder_width)`` for
    MACs; ``energies`` maps actions to pJ (``leak`` is pJ per cycle); ``area`` is um^2.
    """

    kind: str
    node_nm: int
    size: tuple[int, int]
    energies: tuple[tuple[str, float], ...]
    area_um2: float
    origin: str

    def energy(self, action: str) -> float | None:
        """Anchored energy of ``action`` or None when the reference does not give it."""
        for name, value in self.energies:
            if name == action:
                return value
        return None


# Eyeriss 32 nm smartbuffer_RF: E(16 deep, 16 wide) fitted jointly with the 0.84 exponent on
# ifmap_spad 12x16 (read 0.202442, write 0.176713), psum_spad 16x16 (0.2513, 0.2191) and
# weights_spad 192x16 (1.976602, 1.881657); leakage 5.23e-7 pJ/bit/cycle (mean of the three);
# area from weights_spad (5816.44 um^2 for 3072 bits), the scratchpad that dominates a PE.
ANCHORS: tuple[Anchor, ...] = (
    Anchor("sram", 32, (16384, 64),
           (("read", 18.183829), ("write", 14.137929), ("leak", 0.005652)),
           217363.36892, "mapper-eyeriss-like-conv ERT/ART: shared_glb smartbuffer_SRAM"),
    Anchor("sram", 40, (32768, 64),
           (("read", 43.353054), ("write", 30.878292), ("leak", 0.007972)),
           707084.0, "model-conv1d-2level-os ERT/ART: MainMemory SRAM"),
    Anchor("sram", 45, (2048, 256),
           (("read", 51.843193), ("write", 66.283193), ("leak", 0.001668)),
           199069.98324, "timeloop-accelergy-exercises simba_like: GlobalBuffer smartbuffer_SRAM"),
    Anchor("regfile", 32, (16, 16),
           (("read", 0.251352), ("write", 0.225751), ("leak", 0.000133886)),
           5816.44278 * 256 / 3072,
           "mapper-eyeriss-like-conv ERT/ART: smartbuffer_RF scratchpads (least-squares fit)"),
    Anchor("regfile", 40, (64, 8),
           (("read", 0.42564), ("write", 0.42564), ("leak", 0.000861)),
           887.84, "model-conv1d-1level ERT/ART: Buffer regfile"),
    Anchor("regfile", 45, (128, 24),
           (("read", 3.073534), ("write", 2.857534), ("leak", 0.002415)),
           25268.00388, "timeloop-accelergy-exercises simba_like: PEAccuBuffer smartbuffer_RF"),
    Anchor("register", 45, (1, 512),
           (("read", 0.257632), ("write", 0.077872), ("leak", 2.6e-05)),
           3144.39484, "timeloop-accelergy-exercises simba_like: PEWeightRegs (depth 1)"),
    Anchor("intmac", 32, (8, 16), (("compute", 0.207692), ("leak", 0.002374)),
           191.82, "mapper-eyeriss-like-conv ERT/ART: mac intmac (8-bit multiplier, 16-bit adder)"),
    Anchor("intmac", 40, (8, 16), (("compute", 0.845),),
           332.25, "model-conv1d-1level ERT/ART: MACC intmac (width 8)"),
    Anchor("intmac", 45, (8, 16), (("compute", 0.315), ("leak", 0.0036)),
           417.0, "timeloop-accelergy-exercises simba_like: mac intmac (8/16)"),
)


@dataclass(frozen=True)
class ComponentEstimate:
    """Per-action energies (pJ; ``leak`` per cycle) and area of one component instance."""

    kind: str
    energies: tuple[tuple[str, float], ...]
    area_um2: float
    node_nm: int | None
    source: str

    def energy(self, action: str) -> float:
        """Energy of ``action`` in pJ (0.0 for an action the component does not have)."""
        return dict(self.energies).get(action, 0.0)

    def as_dict(self) -> dict[str, float]:
        """``{action: pJ}``."""
        return dict(self.energies)


# --------------------------------------------------------------------------- parsing helpers


def parse_technology(value: Any) -> int | None:
    """Technology node in nm from ``"45nm"``, ``"45 nm"``, ``45``, ``45e-9``; None if unset.

    Timeloop files use placeholders (``"SET ME"``, ``"must_specify"``, ``-1`` on dummies):
    they mean "not given here" and return None.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if value <= 0:
            return None
        nm = value * 1e9 if value < 1e-3 else value
        return int(round(nm))
    text = str(value).strip().lower().replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(nm)?", text)
    if m:
        return int(round(float(m.group(1))))
    m = re.fullmatch(r"(\d+(?:\.\d+)?(?:e-?\d+)?)", text)
    if m:
        return parse_technology(float(m.group(1)))
    return None


def component_kind(klass: str, subclass: str | None = None) -> str:
    """Map a Timeloop/Accelergy component class onto a table kind (see ``KINDS``).

    ``class: storage`` with a ``subclass`` (the v0.3 style still found in v0.4 dumps) uses the
    subclass. Raises JaqmooError for a class no table covers.
    """
    name = (subclass if str(klass).lower() == "storage" and subclass else klass) or ""
    low = str(name).lower()
    if low == "dram" or low.endswith("dram"):
        return "dram"
    if "dummy" in low:
        return "dummy"
    if "sram" in low:
        return "sram"
    if low == "reg_storage" or "regfile" in low or "register" in low or re.search(
            r"(^|_)rf($|_)", low):
        return "regfile"
    if low in ("intmac", "mac", "lmac") or low.endswith("intmac"):
        return "intmac"
    raise JaqmooError(
        f"component class {name!r}: no built-in energy table for it (built-in kinds: DRAM, "
        "SRAM/smartbuffer_SRAM, regfile/smartbuffer_RF/reg_storage/aladdin_register, intmac, "
        "dummy_storage); "
        "give an Accelergy ERT/ART for this design or use one of those classes")


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


# ------------------------------------------------------------- whole flattened architectures


_INSTANCE_SUFFIX = re.compile(r"\[\s*\d+\s*\.\.\s*\d+\s*\]$")


def iter_flattened_components(architecture: Mapping[str, Any]):
    """Yield ``(path_name, class, subclass, attributes, inherited_technology)`` for every
    component of a flattened Timeloop v0.4 ``architecture`` (``subtree``/``local`` form).

    ``path_name`` is the Accelergy name, e.g. ``system_top_level.shared_glb[1..1]``.
    """

    def walk(node: Mapping[str, Any], prefix: str, tech: Any):
        attrs = node.get("attributes") or {}
        tech = attrs.get("technology", tech) if parse_technology(
            attrs.get("technology")) is not None else tech
        here = f"{prefix}{node['name']}." if "name" in node else prefix
        for comp in node.get("local") or []:
            yield (here + str(comp["name"]), str(comp.get("class", "")), comp.get("subclass"),
                   comp.get("attributes") or {}, tech)
        for sub in node.get("subtree") or []:
            yield from walk(sub, here, tech)

    for top in architecture.get("subtree") or []:
        yield from walk(top, "", None)


NETWORK_CLASSES: tuple[str, ...] = ("XY_NoC", "Legacy", "ReductionTree", "SimpleMulticast")
"""Hierarchical-form network components: not storage or compute, no table entry."""


def iter_hierarchical_components(architecture: Mapping[str, Any]):
    """Like :func:`iter_flattened_components` for the ``nodes:`` form (``!Container`` /
    ``!Component`` / ``!Parallel``, read as dicts carrying a ``_tag`` key). Containers pass
    their ``technology`` down; names are the components' own names.
    """

    def walk(nodes: Any, tech: Any):
        for node in nodes or []:
            if not isinstance(node, Mapping):
                continue
            tag = node.get("_tag", "!Component" if "class" in node else "!Container")
            if tag in ("!Parallel", "!Hierarchical", "!Pipelined"):
                yield from walk(node.get("nodes"), tech)
            elif tag == "!Container":
                attrs = node.get("attributes") or {}
                if parse_technology(attrs.get("technology")) is not None:
                    tech = attrs["technology"]
            elif tag == "!Component" and str(node.get("class", "")) not in NETWORK_CLASSES:
                yield (str(node.get("name", "")), str(node.get("class", "")),
                       node.get("subclass"), node.get("attributes") or {}, tech)

    yield from walk(architecture.get("nodes"), None)


# ------------------------------------------------------------- optional: hwcomponents

_HWC_NAMES = {"dram": "DRAM", "sram": "SRAM", "regfile": "regfile",
              "register": "aladdin_register", "intmac": "intmac"}
"""Generic component names tried when hwcomponents has no model for the design's class."""


def hwcomponents_available() -> bool:
    """True when the optional ``hwcomponents`` package (Python >= 3.12) is importable."""
    try:
        import hwcomponents  # noqa: F401
    except ImportError:
        return False
    return True


def _si_value(estimation: Any) -> float:
    return float(getattr(estimation, "value", estimation))


def hwcomponents_estimate(klass: str, attributes: Mapping[str, Any], *,
                          subclass: str | None = None, technology: Any = None,
                          cycle_seconds: float = 1e-9) -> ComponentEstimate | None:
    """Energies/area from ``hwcomponents`` (Accelergy's successor), or None when none of its
    installed models covers the component. hwcomponents works in SI units (J, m^2, W): they
    are converted to pJ per action, um^2 and pJ of leakage per cycle of ``cycle_seconds``.
    Raises JaqmooError when the package is not installed.
    """
    try:
        import hwcomponents
    except ImportError:
        raise JaqmooError("energy model 'hwcomponents': the package is not installed (it needs "
                          "Python >= 3.12); use the built-in tables or install it") from None
    kind = component_kind(klass, subclass)
    if kind == "dummy":
        return dummy_estimate()
    attrs = dict(attributes)
    node = parse_technology(attrs.get("technology")) or parse_technology(technology)
    if node is not None:
        attrs["technology"] = f"{node}nm"
    actions = ("compute",) if kind == "intmac" else ("read", "write")
    for name in dict.fromkeys((subclass or klass, _HWC_NAMES[kind])):
        try:
            energies = [(a, _si_value(hwcomponents.get_energy(name, attrs, a, {})) * 1e12)
                        for a in actions]
            area = _si_value(hwcomponents.get_area(name, attrs)) * 1e12
            leak = _si_value(hwcomponents.get_leak_power(name, attrs)) * cycle_seconds * 1e12
        except Exception:  # noqa: BLE001 - any model failure means "not covered"
            continue
        if kind != "intmac":
            energies.append(("update", energies[1][1]))
        energies.append(("leak", leak))
        return ComponentEstimate(kind, tuple(energies), area, node, f"hwcomponents ({name})")
    return None


ENERGY_MODELS: tuple[str, ...] = ("builtin", "hwcomponents")


def estimate_architecture(architecture: Mapping[str, Any], energy_model: str = "builtin",
                          cycle_seconds: float = 1e-9) -> tuple[dict, dict, str]:
    """ERT and ART (Accelergy format) for a v0.4 architecture (flattened ``subtree`` form or
    hierarchical ``nodes`` form), plus a source string such as ``built-in 32nm table``.

    The returned dicts look like ``timeloop-*.ERT.yaml`` / ``*.ART.yaml`` so they go through
    the same loader path as real Accelergy output. ``energy_model="hwcomponents"`` asks the
    optional hwcomponents package first and uses the built-in tables for the components it
    does not cover (the source string names both).
    """
    if energy_model not in ENERGY_MODELS:
        raise JaqmooError(f"energy model {energy_model!r}: use one of {', '.join(ENERGY_MODELS)}")
    components = (iter_hierarchical_components(architecture) if "nodes" in architecture
                  else iter_flattened_components(architecture))
    tables, areas, sources, from_hwc, from_tables = [], [], set(), [], []
    assumed = False
    for path, klass, subclass, attrs, tech in components:
        est = None
        if energy_model == "hwcomponents":
            est = hwcomponents_estimate(klass, attrs, subclass=subclass, technology=tech,
                                        cycle_seconds=cycle_seconds)
            if est is not None and est.kind != "dummy":
                from_hwc.append(base_component_name(path))
        if est is None:
            est = estimate_component(klass, attrs, subclass=subclass, technology=tech)
            if est.kind != "dummy":
                from_tables.append(base_component_name(path))
            if est.node_nm is not None:
                sources.add(f"{est.node_nm}nm")
            assumed = assumed or "assumed" in est.source
        tables.append({"name": path, "actions": [
            {"name": action, "arguments": {}, "energy": energy}
            for action, energy in est.energies]})
        areas.append({"name": path, "area": est.area_um2})
    nodes = ", ".join(sorted(sources)) or "no on-chip"
    note = f" (no technology given: {DEFAULT_NODE_NM}nm assumed)" if assumed else ""
    source = f"built-in {nodes} table{note}"
    if from_hwc:
        source = f"hwcomponents ({', '.join(from_hwc)})" + (
            f" + {source} ({', '.join(from_tables)})" if from_tables else "")
    return ({"ERT": {"version": "0.4", "tables": tables}},
            {"ART": {"version": "0.4", "tables": areas}}, source)


def base_component_name(path_name: str) -> str:
    """``system.PE.ifmap_spad[1..168]`` -> ``ifmap_spad``."""
    return _INSTANCE_SUFFIX.sub("", path_name).rsplit(".", 1)[-1]
